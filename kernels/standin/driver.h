// driver.h: what the driver stand-in's files share (driver.cpp, driver_memory.cpp,
// driver_modules.cpp): the device's limits, the handles and their registries,
// and the checks every entry point starts with. Internal to libcuda.so.

#ifndef GRADTAPE_STANDIN_DRIVER_H
#define GRADTAPE_STANDIN_DRIVER_H

#include "launch.h"
#include "standin.h"

#include <mutex>
#include <set>
#include <string>

namespace gt {

constexpr int DEVICE_COUNT = 2;
constexpr int CC_MAJOR = 9, CC_MINOR = 0;
constexpr unsigned long long TOTAL_MEMORY = 150754820096ull;  // an H200's 140 GiB

struct Context {
    int device;
    int retained;
};
struct Stream {
    Context* context;
};
struct Event {
    Context* context;
};
struct Module {
    Context* context;
    std::string file;                 // the .cu file whose kernels it holds
    std::set<std::string> kernels;    // the kernel names in its CUBIN
};
struct Function {
    Module* module;
    const KernelEntry* entry;
};

// The live handles, guarded by handles_mutex (driver.cpp).
extern std::mutex handles_mutex;
extern Context contexts[DEVICE_COUNT];
extern std::set<Stream*> streams;
extern std::set<Event*> events;
extern std::set<Module*> modules;
extern std::set<Function*> functions;
extern bool initialised;

// The context current on this thread.
extern thread_local Context* current;

// Reports `call`'s error and returns `code` unless `cond` holds.
#define REQUIRE(cond, code, call, ...)            \
    do {                                          \
        if (!(cond)) {                            \
            report(call, format(__VA_ARGS__));    \
            return code;                          \
        }                                         \
    } while (0)

// cuInit has been called.
int need_init(const char* call);
// ... and a context is current on this thread.
int need_context(const char* call);
// ... and `stream` is the default stream (null) or a live created one of
// the current context.
int need_stream(const char* call, void* stream);

}  // namespace gt

typedef unsigned long long CUdeviceptr;

#endif
