// memory.cpp: device memory for the CPU stand-in, electric-fence style.
//
// Every allocation gets pages of its own, mapped so that its last byte sits
// against an inaccessible guard page:
//
//     [ guard ][ padding | the allocation's bytes ][ guard ]
//                         ^ the device pointer
//
// so a kernel (or cuBLAS) that reads or writes one element past its buffer
// faults at that access, and the fault is turned into an error that names
// the launch (run_guarded). A freed allocation's pages are made
// inaccessible and given back to the system, and its addresses are never
// handed out again, so memory used after it is freed faults too, and a
// stale pointer passed to a launch or a copy is named as such (check_range).
//
// The book of allocations (live and freed) is one ordered map by address,
// under one mutex: launches from several test threads may run at once.

#include "standin.h"

#include <csetjmp>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>

namespace gt {

namespace {

struct Allocation {
    std::size_t bytes;         // what was asked for
    std::uintptr_t map_start;  // the whole mapping, guards included
    std::size_t map_len;
    bool live;
};

std::mutex book_mutex;
// By the allocation's base address (the device pointer).
std::map<std::uintptr_t, Allocation>& book() {
    static std::map<std::uintptr_t, Allocation> b;
    return b;
}

std::size_t page_size() {
    static const std::size_t page = (std::size_t)sysconf(_SC_PAGESIZE);
    return page;
}

// The allocation whose mapping holds `address`, or book().end().
std::map<std::uintptr_t, Allocation>::iterator mapping_of(std::uintptr_t address) {
    auto& b = book();
    auto it = b.upper_bound(address);
    // The allocation just after `address` may hold it in its leading guard.
    if (it != b.end() && address >= it->second.map_start) return it;
    if (it == b.begin()) return b.end();
    --it;
    const Allocation& a = it->second;
    if (address >= a.map_start && address < a.map_start + a.map_len) return it;
    return b.end();
}

}  // namespace

std::string format(const char* fmt, ...) {
    char small[512];
    va_list args;
    va_start(args, fmt);
    int n = std::vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (n < (int)sizeof small) return std::string(small, n < 0 ? 0 : n);
    std::string big((std::size_t)n + 1, '\0');
    va_start(args, fmt);
    std::vsnprintf(&big[0], big.size(), fmt, args);
    va_end(args);
    big.resize((std::size_t)n);
    return big;
}

void report(const char* call, const std::string& message) {
    std::fprintf(stderr, "gradtape CUDA stand-in: %s: %s\n", call, message.c_str());
}

std::uintptr_t allocate(std::size_t bytes) {
    const std::size_t page = page_size();
    const std::size_t data_pages = (bytes + page - 1) / page;
    const std::size_t len = (data_pages + 2) * page;
    void* map = mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) return 0;
    const std::uintptr_t start = (std::uintptr_t)map;
    if (mprotect((void*)(start + page), data_pages * page, PROT_READ | PROT_WRITE) != 0) {
        munmap(map, len);
        return 0;
    }
    const std::uintptr_t base = start + page + data_pages * page - bytes;
    std::lock_guard<std::mutex> lock(book_mutex);
    book()[base] = Allocation{bytes, start, len, true};
    return base;
}

bool release(std::uintptr_t base, const char* call) {
    std::lock_guard<std::mutex> lock(book_mutex);
    auto& b = book();
    auto it = b.find(base);
    if (it == b.end() || !it->second.live) {
        report(call, format("0x%llx is not the start of a live allocation (%s)", (unsigned long long)base,
                            it == b.end() ? "never allocated" : "already freed"));
        return false;
    }
    Allocation& a = it->second;
    const std::size_t page = page_size();
    // Poison: the pages go back to the system and every later access faults.
    madvise((void*)(a.map_start + page), a.map_len - 2 * page, MADV_DONTNEED);
    mprotect((void*)a.map_start, a.map_len, PROT_NONE);
    a.live = false;
    return true;
}

bool check_range(std::uintptr_t address, std::size_t bytes, const char* call, const std::string& what) {
    std::lock_guard<std::mutex> lock(book_mutex);
    auto it = mapping_of(address);
    const char* fail = nullptr;
    std::string detail;
    if (it == book().end()) {
        fail = "is not inside any device allocation";
    } else {
        const std::uintptr_t base = it->first;
        const Allocation& a = it->second;
        if (!a.live) {
            fail = "points into device memory that was already freed";
            detail = format(" (an allocation of %zu bytes at 0x%llx)", a.bytes, (unsigned long long)base);
        } else if (address < base || address >= base + a.bytes) {
            fail = "is not inside any device allocation";
            detail = format(" (next to an allocation of %zu bytes at 0x%llx)", a.bytes, (unsigned long long)base);
        } else if (bytes > base + a.bytes - address) {
            report(call, format("%s: 0x%llx + %zu bytes runs %zu bytes past the end of its allocation "
                                "(%zu bytes at 0x%llx)",
                                what.c_str(), (unsigned long long)address, bytes,
                                (std::size_t)(bytes - (base + a.bytes - address)), a.bytes,
                                (unsigned long long)base));
            return false;
        } else {
            return true;
        }
    }
    report(call, format("%s: 0x%llx %s%s", what.c_str(), (unsigned long long)address, fail, detail.c_str()));
    return false;
}

std::string describe_address(std::uintptr_t address) {
    std::lock_guard<std::mutex> lock(book_mutex);
    auto it = mapping_of(address);
    if (it == book().end()) return "outside every device allocation";
    const std::uintptr_t base = it->first;
    const Allocation& a = it->second;
    std::string where;
    if (!a.live) {
        where = "inside an allocation that was already freed";
    } else if (address >= base + a.bytes) {
        const unsigned long long past = address - (base + a.bytes);
        where = past == 0 ? std::string("the first byte past the end of an allocation")
                          : format("%llu bytes past the end of an allocation", past);
    } else if (address < base) {
        where = format("%llu bytes before the start of an allocation", (unsigned long long)(base - address));
    } else {
        where = "inside an allocation";
    }
    return format("%s of %zu bytes at 0x%llx", where.c_str(), a.bytes, (unsigned long long)base);
}

// ---- fault capture ----------------------------------------------------------

namespace {

thread_local sigjmp_buf* guard_env = nullptr;
thread_local std::uintptr_t fault_address = 0;
struct sigaction previous_segv, previous_bus;

void on_fault(int sig, siginfo_t* info, void* context) {
    if (guard_env != nullptr) {
        fault_address = (std::uintptr_t)info->si_addr;
        sigjmp_buf* env = guard_env;
        guard_env = nullptr;
        siglongjmp(*env, 1);
    }
    // Not ours: hand it to whoever handled it before (Rust's stack-overflow
    // handler, or the default action).
    const struct sigaction& prev = sig == SIGSEGV ? previous_segv : previous_bus;
    if (prev.sa_flags & SA_SIGINFO) {
        prev.sa_sigaction(sig, info, context);
    } else if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
        sigaction(sig, &prev, nullptr);  // the access runs again and takes the default action
    } else {
        prev.sa_handler(sig);
    }
}

void install_handlers() {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv);
    sigaction(SIGBUS, &action, &previous_bus);
}

}  // namespace

bool run_guarded(void (*body)(void*), void* arg, std::uintptr_t* fault) {
    static std::once_flag installed;
    std::call_once(installed, install_handlers);
    sigjmp_buf env;
    if (sigsetjmp(env, 1) != 0) {
        *fault = fault_address;
        return false;
    }
    guard_env = &env;
    body(arg);
    guard_env = nullptr;
    return true;
}

}  // namespace gt
