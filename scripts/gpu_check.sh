#!/usr/bin/env bash
# The GPU check, in two halves, because the GPU machine has no Rust
# toolchain: binaries are built here and carried there.
#
#   scripts/gpu_check.sh build   (here, with cargo)
#       Builds with --features cuda, in release mode, the CLI (gradtape),
#       the benchmark (bench) and the verification suite's test binary
#       (suite, which holds the GPU parity tests), strips them and copies
#       them with scripts/torch_gpu_bench.py into .gpu/, which
#       .git/info/exclude keeps out of git. Prints the folder's size: what
#       travels (the working tree plus .gpu/) must stay under 64 MiB.
#
#   scripts/gpu_check.sh run     (there, in the repository root, with .gpu/
#                                 carried; needs python3 with PyTorch and
#                                 NVIDIA's cu13 wheels)
#       Points LD_LIBRARY_PATH at the wheels' nvidia/cu13/lib (NVRTC and
#       cuBLAS), then runs, each under a time limit so the whole run stays
#       under about 9 minutes, and each logged under $OUT (./gpu-out if
#       OUT is unset) even when it fails:
#         1. nvidia-smi                                   nvidia-smi.txt
#         2. the suite's GPU tests, GRADTAPE_REQUIRE_CUDA=1 (a test that
#            would skip for want of a GPU fails instead)  suite.log
#         3. gradtape train deep --device cuda, 3 epochs  train-deep.log,
#            run-deep/ (checkpoint, history, figures)
#         4. bench gpu (gradtape on the GPU)              bench-gpu.log
#            and again with GRADTAPE_NO_CUBLASLT=1        bench-gpu-no-cublaslt.log
#         5. torch_gpu_bench.py (PyTorch eager, same GPU) torch-gpu.log
#       and writes summary.txt with each step's exit status. Exits 0 only
#       if every step passed.
set -o pipefail
cd "$(dirname "$0")/.."

build() {
    set -eu
    local features=(--release --features cuda)
    cargo build "${features[@]}" -p gradtape-examples --bin gradtape --bin bench
    # The suite's test binary has a hashed name: ask cargo for it.
    local suite
    suite=$(cargo test "${features[@]}" -p gradtape-verify --test suite --no-run --message-format=json |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "suite" and m.get("executable"):
        print(m["executable"])
')
    [ -n "$suite" ] || { echo "gpu_check: cargo named no suite test binary" >&2; exit 1; }
    rm -rf .gpu
    mkdir -p .gpu
    cp target/release/gradtape target/release/bench .gpu/
    cp "$suite" .gpu/suite
    cp scripts/torch_gpu_bench.py .gpu/
    strip .gpu/gradtape .gpu/bench .gpu/suite
    local exclude
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"
    ls -l .gpu
    local kib
    kib=$(du -sk .gpu | cut -f1)
    echo "gpu_check: .gpu/ holds $((kib / 1024)) MiB ($kib KiB); carry it with: carry [\".gpu\"]"
    if [ "$kib" -gt $((60 * 1024)) ]; then
        echo "gpu_check: .gpu/ is over 60 MiB: it would not travel with the working tree" >&2
        exit 1
    fi
}

run() {
    OUT=${OUT:-./gpu-out}
    mkdir -p "$OUT"
    chmod +x .gpu/gradtape .gpu/bench .gpu/suite
    local lib
    lib=$(python3 -c '
import os, nvidia
for p in nvidia.__path__:
    d = os.path.join(p, "cu13", "lib")
    if os.path.isdir(d):
        print(d)
        break
' 2>/dev/null)
    if [ -z "$lib" ]; then
        echo "gpu_check: python3 has no nvidia/cu13/lib (the nvidia-* cu13 wheels); NVRTC and cuBLAS will be missing" >&2
    fi
    export LD_LIBRARY_PATH="${lib}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" | tee "$OUT/summary.txt"

    local failed=0
    # step NAME LIMIT_SECONDS LOG COMMAND...: runs COMMAND under `timeout`,
    # its output shown and written to $OUT/LOG, and records its status.
    step() {
        local name=$1 limit=$2 log=$3
        shift 3
        echo "=== $name (limit ${limit}s): $*"
        local t0=$SECONDS rc
        timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$log"
        rc=$?
        [ "$rc" -eq 0 ] || failed=1
        local note=""
        [ "$rc" -eq 124 ] && note=" (timed out)"
        echo "$name: exit $rc$note after $((SECONDS - t0))s, log $log" | tee -a "$OUT/summary.txt"
    }

    step nvidia-smi 30 nvidia-smi.txt nvidia-smi
    step "GPU parity suite" 180 suite.log env GRADTAPE_REQUIRE_CUDA=1 .gpu/suite gpu --test-threads=1
    rm -rf "$OUT/run-deep"
    step "train deep on cuda" 120 train-deep.log \
        .gpu/gradtape train deep --device cuda --epochs 3 --out "$OUT/run-deep" --quiet
    step "bench gpu (gradtape)" 60 bench-gpu.log .gpu/bench gpu
    # The same without cuBLASLt's epilogues (each linear layer the gemm and
    # its kernel): what the fused layers gain on this GPU.
    step "bench gpu (gradtape, no cuBLASLt)" 60 bench-gpu-no-cublaslt.log \
        env GRADTAPE_NO_CUBLASLT=1 .gpu/bench gpu
    step "bench gpu (torch eager)" 90 torch-gpu.log python3 .gpu/torch_gpu_bench.py
    echo "=== summary"
    cat "$OUT/summary.txt"
    return "$failed"
}

case "${1:-}" in
build) build ;;
run) run ;;
*)
    echo "usage: scripts/gpu_check.sh build | run   (see the comment at the top)" >&2
    exit 2
    ;;
esac
