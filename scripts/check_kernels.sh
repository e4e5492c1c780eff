#!/usr/bin/env bash
# Compile-checks every CUDA kernel (kernels/cuda/*.cu) with NVRTC and ptxas,
# without a GPU: for sm_80 and sm_90, NVRTC -> PTX -> ptxas -v, and NVRTC ->
# CUBIN (the runtime loader's path). Fails with the compiler's log on any
# error; prints the kernel count and each kernel's registers.
#
# The compilers come from NVIDIA's pip wheels, pinned to CUDA 13.0 (the GPU
# machine's driver is CUDA 13.0, and PTX from a newer NVRTC would be refused
# there), in a virtual environment of their own under target/, made on the
# first run and reused after.
set -euo pipefail
cd "$(dirname "$0")/.."

NVRTC_VERSION=13.0.88
NVCC_VERSION=13.0.88
VENV=${CUDA_CHECK_VENV:-target/cuda-check-venv}
PY=${PYTHON:-python3}

# The versions pip recorded in the environment ("" when it is missing).
installed() { "$VENV/bin/pip" show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
if [ "$(installed nvidia-cuda-nvrtc)" != "$NVRTC_VERSION" ] || [ "$(installed nvidia-cuda-nvcc)" != "$NVCC_VERSION" ]; then
    echo "check_kernels: installing nvidia-cuda-nvrtc==$NVRTC_VERSION nvidia-cuda-nvcc==$NVCC_VERSION into $VENV"
    [ -x "$VENV/bin/pip" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "nvidia-cuda-nvrtc==$NVRTC_VERSION" "nvidia-cuda-nvcc==$NVCC_VERSION"
    [ "$(installed nvidia-cuda-nvrtc)" = "$NVRTC_VERSION" ] && [ "$(installed nvidia-cuda-nvcc)" = "$NVCC_VERSION" ] ||
        { echo "check_kernels: the pinned wheels did not install into $VENV" >&2; exit 1; }
fi

CU13=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
export LD_LIBRARY_PATH="$CU13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$VENV/bin/python" scripts/check_kernels.py kernels/cuda "$CU13/lib/libnvrtc.so.13" "$CU13/bin/ptxas" 80 90
