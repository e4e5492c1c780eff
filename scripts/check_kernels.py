#!/usr/bin/env python3
"""Compile-check every CUDA kernel file without a GPU.

For each .cu file in kernels/cuda/ and each target architecture:

1. NVRTC (libnvrtc, through ctypes) compiles it to PTX for compute_XX, with
   the project's headers handed over by name and content, as the runtime
   loader does;
2. ptxas assembles that PTX for sm_XX with -v, which reports every kernel's
   register use;
3. NVRTC also compiles it straight to a CUBIN for sm_XX, the path the
   runtime loader takes on a device (DESIGN.md: the PTX version trap).

Any error prints the compiler's log and exits 1. At the end it prints the
kernel count and each kernel's registers per architecture.

Usage: check_kernels.py KERNEL_DIR LIBNVRTC PTXAS ARCH...
"""

import ctypes
import os
import re
import subprocess
import sys
import tempfile


def fail(message):
    print(f"check_kernels: {message}", file=sys.stderr)
    sys.exit(1)


class Nvrtc:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def check(self, status, what):
        if status != 0:
            fail(f"{what}: {self.lib.nvrtcGetErrorString(status).decode()}")

    def version(self):
        major, minor = ctypes.c_int(), ctypes.c_int()
        self.check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        return f"{major.value}.{minor.value}"

    def compile(self, name, source, headers, options, want):
        """Compiles `source`; returns its PTX or CUBIN bytes (`want`), or
        fails with NVRTC's log."""
        prog = ctypes.c_void_p()
        names = [h.encode() for h in headers]
        texts = [headers[h].encode() for h in headers]
        self.check(
            self.lib.nvrtcCreateProgram(
                ctypes.byref(prog),
                source.encode(),
                name.encode(),
                len(headers),
                (ctypes.c_char_p * len(texts))(*texts),
                (ctypes.c_char_p * len(names))(*names),
            ),
            f"{name}: nvrtcCreateProgram",
        )
        opts = [o.encode() for o in options]
        status = self.lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        self.lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        self.lib.nvrtcGetProgramLog(prog, log)
        if status != 0:
            fail(f"{name} ({' '.join(options)}) did not compile:\n{log.value.decode()}")
        get_size, get = {
            "ptx": (self.lib.nvrtcGetPTXSize, self.lib.nvrtcGetPTX),
            "cubin": (self.lib.nvrtcGetCUBINSize, self.lib.nvrtcGetCUBIN),
        }[want]
        self.check(get_size(prog, ctypes.byref(size)), f"{name}: get {want} size")
        out = ctypes.create_string_buffer(size.value)
        self.check(get(prog, out), f"{name}: get {want}")
        self.lib.nvrtcDestroyProgram(ctypes.byref(prog))
        return out.raw


def registers(ptxas_log):
    """{kernel: registers} from `ptxas -v` output."""
    found, current = {}, None
    for line in ptxas_log.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            current = m.group(1)
        m = re.search(r"Used (\d+) registers", line)
        if m and current:
            found[current] = int(m.group(1))
            current = None
    return found


def main():
    if len(sys.argv) < 5:
        fail(__doc__)
    kernel_dir, libnvrtc, ptxas, archs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    nvrtc = Nvrtc(libnvrtc)
    headers = {
        h: open(os.path.join(kernel_dir, h)).read()
        for h in sorted(os.listdir(kernel_dir))
        if h.endswith(".cuh")
    }
    sources = sorted(f for f in os.listdir(kernel_dir) if f.endswith(".cu"))
    if not sources:
        fail(f"no .cu files in {kernel_dir}")
    ptxas_version = subprocess.run([ptxas, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"NVRTC {nvrtc.version()}; {ptxas_version.splitlines()[-1]}")
    print(f"headers: {', '.join(headers)}; sources: {', '.join(sources)}")

    table = {}  # kernel -> {arch: registers}
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            text = open(os.path.join(kernel_dir, source)).read()
            for arch in archs:
                base = ["--std=c++17", "--ptxas-options=-Werror"]
                ptx = nvrtc.compile(source, text, headers, base + [f"--gpu-architecture=compute_{arch}"], "ptx")
                ptx_path = os.path.join(tmp, f"{source}.{arch}.ptx")
                with open(ptx_path, "wb") as f:
                    f.write(ptx.rstrip(b"\0"))
                run = subprocess.run(
                    [ptxas, f"-arch=sm_{arch}", "-v", "--warning-as-error", ptx_path, "-o", ptx_path + ".cubin"],
                    capture_output=True,
                    text=True,
                )
                if run.returncode != 0:
                    fail(f"ptxas refused {source} for sm_{arch}:\n{run.stdout}{run.stderr}")
                regs = registers(run.stdout + run.stderr)
                if not regs:
                    fail(f"ptxas -v reported no kernels for {source} (sm_{arch}):\n{run.stderr}")
                for kernel, count in regs.items():
                    table.setdefault(kernel, {})[arch] = (source, count)
                cubin = nvrtc.compile(source, text, headers, base + [f"--gpu-architecture=sm_{arch}"], "cubin")
                if not cubin.startswith(b"\x7fELF"):
                    fail(f"NVRTC's CUBIN for {source} (sm_{arch}) is not an ELF image")

    missing = [k for k, per_arch in table.items() if set(per_arch) != set(archs)]
    if missing:
        fail(f"kernels missing for some architectures: {missing}")
    print(f"{len(table)} kernels in {len(sources)} files, each compiled for " + ", ".join(f"sm_{a}" for a in archs))
    print(f"{'kernel':32} {'file':18} " + " ".join(f"{'sm_' + a + ' regs':>12}" for a in archs))
    for kernel in sorted(table, key=lambda k: (table[k][archs[0]][0], k)):
        source = table[kernel][archs[0]][0]
        print(f"{kernel:32} {source:18} " + " ".join(f"{table[kernel][a][1]:>12}" for a in archs))
    worst = max(table, key=lambda k: table[k][archs[-1]][1])
    print(f"most registers: {worst} ({table[worst][archs[-1]][1]} on sm_{archs[-1]})")


if __name__ == "__main__":
    main()
