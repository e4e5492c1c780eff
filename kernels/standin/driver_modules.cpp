// driver_modules.cpp: modules, kernel lookups and launches. A module is
// NVRTC's real CUBIN, checked and read for its kernel names; a function is
// the kernel of that name in the .cu file's C++ build (the tables generated
// by kernels/build.rs); a launch checks its shape against the device's
// limits and plays the grid through launch.h.

#include "driver.h"

#include <cstring>

extern const gt::KernelTable gt_kernel_tables[];
extern const std::size_t gt_kernel_table_count;

namespace gt {
namespace {

// ---- CUBIN reading ----------------------------------------------------------

template <typename T>
T read_at(const unsigned char* image, std::size_t offset) {
    T value;
    std::memcpy(&value, image + offset, sizeof value);
    return value;
}

// Checks an ELF CUBIN for `arch` (90 for sm_90) and lists its kernels (its
// global function symbols). Returns an error message, or "" if it is good.
std::string read_cubin(const unsigned char* image, int arch, std::set<std::string>* kernels) {
    if (std::memcmp(image, "\x7f" "ELF", 4) != 0) {
        return "the image is not an ELF file (the stand-in takes the CUBIN that NVRTC produced, not PTX)";
    }
    if (image[4] != 2) return "the CUBIN is not a 64-bit ELF";
    const auto machine = read_at<std::uint16_t>(image, 18);
    if (machine != 190) return format("the ELF is for machine %u, not CUDA (190)", machine);
    const auto flags = read_at<std::uint32_t>(image, 48);
    const int image_arch = (int)((flags >> 8) & 0xff);
    if (image_arch != arch) {
        return format("the CUBIN is for sm_%d, but the device is sm_%d", image_arch, arch);
    }
    const auto shoff = read_at<std::uint64_t>(image, 40);
    const auto shentsize = read_at<std::uint16_t>(image, 58);
    const auto shnum = read_at<std::uint16_t>(image, 60);
    if (shentsize != 64 || shnum == 0) return "the CUBIN's section table is malformed";
    auto section = [&](std::size_t i, std::size_t field) { return image + shoff + i * 64 + field; };
    for (std::size_t i = 0; i < shnum; ++i) {
        const auto type = read_at<std::uint32_t>(section(i, 4), 0);
        if (type != 2) continue;  // SHT_SYMTAB
        const auto offset = read_at<std::uint64_t>(section(i, 24), 0);
        const auto size = read_at<std::uint64_t>(section(i, 32), 0);
        const auto link = read_at<std::uint32_t>(section(i, 40), 0);
        const auto strings = read_at<std::uint64_t>(section(link, 24), 0);
        for (std::size_t at = offset; at + 24 <= offset + size; at += 24) {
            const auto name = read_at<std::uint32_t>(image, at);
            const unsigned char info = image[at + 4];
            const bool global_function = (info & 0xf) == 2 && (info >> 4) == 1;  // STT_FUNC, STB_GLOBAL
            if (global_function) kernels->insert(reinterpret_cast<const char*>(image + strings + name));
        }
    }
    if (kernels->empty()) return "the CUBIN holds no kernels";
    return "";
}

// The .cu file whose C++ build holds exactly the kernels of a CUBIN.
const KernelTable* table_for(const std::set<std::string>& kernels) {
    for (std::size_t t = 0; t < gt_kernel_table_count; ++t) {
        const KernelTable& table = gt_kernel_tables[t];
        std::set<std::string> names;
        for (std::size_t i = 0; i < table.len; ++i) names.insert(table.entries[i].name);
        if (names == kernels) return &table;
    }
    return nullptr;
}

}  // namespace
}  // namespace gt

using namespace gt;

// ---- modules and functions ------------------------------------------------------

GT_EXPORT int cuModuleLoadData(void** module, const void* image) {
    if (int r = need_context("cuModuleLoadData")) return r;
    REQUIRE(module && image, ERROR_INVALID_VALUE, "cuModuleLoadData", "null pointer");
    std::set<std::string> kernels;
    const std::string bad = read_cubin(static_cast<const unsigned char*>(image), CC_MAJOR * 10 + CC_MINOR, &kernels);
    if (!bad.empty()) {
        report("cuModuleLoadData", bad);
        return bad.find("sm_") != std::string::npos ? ERROR_NO_BINARY_FOR_GPU : ERROR_INVALID_IMAGE;
    }
    const KernelTable* table = table_for(kernels);
    if (table == nullptr) {
        std::string names;
        for (const auto& k : kernels) names += (names.empty() ? "" : ", ") + k;
        report("cuModuleLoadData", format("no kernel file of the C++ build holds exactly this CUBIN's kernels (%s)",
                                          names.c_str()));
        return ERROR_INVALID_IMAGE;
    }
    std::lock_guard<std::mutex> lock(handles_mutex);
    Module* m = new Module{current, table->file, kernels};
    modules.insert(m);
    *module = m;
    return SUCCESS;
}

GT_EXPORT int cuModuleUnload(void* module) {
    if (int r = need_context("cuModuleUnload")) return r;
    std::lock_guard<std::mutex> lock(handles_mutex);
    Module* m = static_cast<Module*>(module);
    REQUIRE(modules.count(m) == 1, ERROR_INVALID_HANDLE, "cuModuleUnload", "%p is not a loaded module", module);
    for (auto it = functions.begin(); it != functions.end();) {
        if ((*it)->module == m) {
            delete *it;
            it = functions.erase(it);
        } else {
            ++it;
        }
    }
    modules.erase(m);
    delete m;
    return SUCCESS;
}

GT_EXPORT int cuModuleGetFunction(void** function, void* module, const char* name) {
    if (int r = need_context("cuModuleGetFunction")) return r;
    REQUIRE(function && name, ERROR_INVALID_VALUE, "cuModuleGetFunction", "null pointer");
    std::lock_guard<std::mutex> lock(handles_mutex);
    Module* m = static_cast<Module*>(module);
    REQUIRE(modules.count(m) == 1, ERROR_INVALID_HANDLE, "cuModuleGetFunction", "%p is not a loaded module", module);
    REQUIRE(m->context == current, ERROR_INVALID_CONTEXT, "cuModuleGetFunction",
            "the module (%s) was loaded in device %d's context, but device %d's is current on this thread",
            m->file.c_str(), m->context->device, current->device);
    REQUIRE(m->kernels.count(name) == 1, ERROR_NOT_FOUND, "cuModuleGetFunction", "there is no kernel %s in %s",
            name, m->file.c_str());
    for (std::size_t t = 0; t < gt_kernel_table_count; ++t) {
        const KernelTable& table = gt_kernel_tables[t];
        if (m->file != table.file) continue;
        for (std::size_t i = 0; i < table.len; ++i) {
            if (std::strcmp(table.entries[i].name, name) == 0) {
                Function* f = new Function{m, &table.entries[i]};
                functions.insert(f);
                *function = f;
                return SUCCESS;
            }
        }
    }
    report("cuModuleGetFunction", format("kernel %s is in the CUBIN but not in the C++ build of %s", name,
                                         m->file.c_str()));
    return ERROR_NOT_FOUND;
}

// ---- launches -------------------------------------------------------------------

GT_EXPORT int cuLaunchKernel(void* function, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                             unsigned int by, unsigned int bz, unsigned int shared_bytes, void* stream,
                             void** params, void** extra) {
    if (int r = need_stream("cuLaunchKernel", stream)) return r;
    const KernelEntry* entry = nullptr;
    {
        std::lock_guard<std::mutex> lock(handles_mutex);
        Function* f = static_cast<Function*>(function);
        REQUIRE(functions.count(f) == 1, ERROR_INVALID_HANDLE, "cuLaunchKernel", "%p is not a kernel function",
                function);
        REQUIRE(f->module->context == current, ERROR_INVALID_CONTEXT, "cuLaunchKernel",
                "kernel %s belongs to device %d's context, but device %d's is current", f->entry->name,
                f->module->context->device, current->device);
        entry = f->entry;
    }
    const char* name = entry->name;
    REQUIRE(extra == nullptr, ERROR_NOT_SUPPORTED, "cuLaunchKernel",
            "kernel %s: parameters through `extra` are not supported by the stand-in", name);
    REQUIRE(shared_bytes == 0, ERROR_NOT_SUPPORTED, "cuLaunchKernel",
            "kernel %s asks for %u bytes of dynamic shared memory; the kernels use none", name, shared_bytes);
    REQUIRE(gx >= 1 && gy >= 1 && gz >= 1 && bx >= 1 && by >= 1 && bz >= 1, ERROR_INVALID_VALUE, "cuLaunchKernel",
            "kernel %s: an empty launch (grid %u x %u x %u, block %u x %u x %u)", name, gx, gy, gz, bx, by, bz);
    const unsigned long long threads = (unsigned long long)bx * by * bz;
    REQUIRE(threads <= 1024 && bx <= 1024 && by <= 1024 && bz <= 64, ERROR_INVALID_VALUE, "cuLaunchKernel",
            "kernel %s: a block of %u x %u x %u = %llu threads is over the device's limit (1024, and 1024 x 1024 x 64)",
            name, bx, by, bz, threads);
    REQUIRE(gx <= 2147483647u && gy <= 65535 && gz <= 65535, ERROR_INVALID_VALUE, "cuLaunchKernel",
            "kernel %s: a grid of %u x %u x %u blocks is over the device's limit (2^31 - 1 x 65535 x 65535)", name,
            gx, gy, gz);
    count(LAUNCHES);
    if (trace_enabled()) std::fprintf(stderr, "gt-standin: launch %s grid %u x %u x %u block %u x %u x %u\n", name, gx, gy, gz, bx, by, bz);
    return entry->run(*entry, params, Shape3{gx, gy, gz}, Shape3{bx, by, bz});
}
