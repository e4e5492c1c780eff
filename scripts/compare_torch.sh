#!/usr/bin/env bash
# Runs gradtape's bench and PyTorch's peer script (../shared/peers/torch_bench.py)
# in alternation, one workload at a time, and prints a markdown table with
# both rates, the ratio gradtape / PyTorch, and both final losses.
#
#   [ROUNDS=k] scripts/compare_torch.sh [workload ...]
#
# PyTorch lives in a virtual environment of its own, never a dependency of the
# project:  python3 -m venv .venv && .venv/bin/pip install torch numpy
# Override its interpreter with PYTHON=..., the peer script with PEER=...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PEER=${PEER:-../shared/peers/torch_bench.py}
if [ ! -x "$PY" ]; then
    echo "compare_torch.sh: no Python with PyTorch at $PY (python3 -m venv .venv && .venv/bin/pip install torch numpy)" >&2
    exit 2
fi
# ROUNDS=k runs each workload k times per engine (alternating) and reports
# the median rate of each, which steadies the ratio on a noisy machine.
ROUNDS=${ROUNDS:-1}
cargo build --release -q -p gradtape-examples --bin bench
if [ $# -gt 0 ]; then workloads=("$@"); else
    workloads=(toy cae_notebook deep_ae cae_mnist cae_mnist_closed vae dae gemm_256x784x128)
fi
echo "# gradtape (release build) vs $("$PY" -c 'import torch; print("torch", torch.__version__, "threads", torch.get_num_threads())'); $(nproc) cores; $(date -u +%Y-%m-%d); median of $ROUNDS round(s)"
echo
echo "| workload | unit | gradtape | PyTorch | ratio | gradtape loss | PyTorch loss |"
echo "|---|---|---:|---:|---:|---:|---:|"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for w in "${workloads[@]}"; do
    grs=(); trs=()
    for _ in $(seq "$ROUNDS"); do
        g=$(./target/release/bench "$w" | awk -F'\t' -v w="$w" '$1 == w')
        t=$("$PY" "$PEER" "$w" | awk -F'\t' -v w="$w" '$1 == w')
        grs+=("$(echo "$g" | cut -f3)"); trs+=("$(echo "$t" | cut -f3)")
    done
    unit=$(echo "$g" | cut -f2)
    gr=$(printf '%s\n' "${grs[@]}" | median)
    tr=$(printf '%s\n' "${trs[@]}" | median)
    gl=$(echo "$g" | cut -f4 | sed 's/loss=//')
    tl=$(echo "$t" | cut -f4 | sed 's/loss=//')
    ratio=$(awk -v a="$gr" -v b="$tr" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
    echo "| $w | $unit | $gr | $tr | $ratio | $gl | $tl |"
done
