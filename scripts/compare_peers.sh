#!/usr/bin/env bash
# Runs gradtape's bench and the PyTorch and JAX peer scripts
# (../shared/peers/torch_bench.py, jax_bench.py) in alternation, one workload
# at a time, k rounds each, and prints a markdown table with the median rate
# of each engine, the ratios gradtape / PyTorch and gradtape / JAX jit, and
# the final losses (a check that all three did the same work). After the
# table: deep_ae's fraction of its matrix-product ceiling, from the same
# rounds.
#
#   [ROUNDS=k] scripts/compare_peers.sh [workload ...]
#
# The peers live in a virtual environment of their own, never a dependency
# of the project:
#   python3 -m venv .venv && .venv/bin/pip install torch numpy "jax[cpu]"
# Override its interpreter with PYTHON=..., the peer scripts with
# TORCH_PEER=... and JAX_PEER=...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
TORCH_PEER=${TORCH_PEER:-../shared/peers/torch_bench.py}
JAX_PEER=${JAX_PEER:-../shared/peers/jax_bench.py}
if ! [ -x "$PY" ] || ! "$PY" -c 'import torch, jax' 2>/dev/null; then
    echo "compare_peers.sh: no Python with PyTorch and JAX at $PY" \
        "(python3 -m venv .venv && .venv/bin/pip install torch numpy 'jax[cpu]')" >&2
    exit 2
fi
ROUNDS=${ROUNDS:-1}
cargo build --release -q -p gradtape-examples --bin bench
if [ $# -gt 0 ]; then workloads=("$@"); else
    workloads=(toy cae_notebook deep_ae cae_mnist cae_mnist_closed vae dae gemm_256x784x128)
fi
versions=$("$PY" -c 'import torch, jax; print("torch", torch.__version__, "threads", torch.get_num_threads(), "/ jax", jax.__version__)')
echo "# gradtape (release build) vs $versions; $(nproc) cores; $(date -u +%Y-%m-%d); median of $ROUNDS round(s), engines alternating"
echo
echo "| workload | unit | gradtape | PyTorch | JAX jit | gradtape / PyTorch | gradtape / JAX | gradtape loss | PyTorch loss | JAX loss |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
loss() { echo "$1" | cut -f4 | sed 's/loss=//'; }
# deep_ae samples/s $1 against a product's GFLOP/s $2 (1.31 MFLOP per sample)
fraction() { awk -v r="$1" -v g="$2" 'BEGIN { if (g > 0) printf "%.3f", r / (g * 1e9 / 1.31e6); else print "-" }'; }
ceilings=()
declare -A g_rate t_rate j_rate
for w in "${workloads[@]}"; do
    grs=(); trs=(); jrs=()
    for _ in $(seq "$ROUNDS"); do
        out=$(./target/release/bench "$w")
        g=$(echo "$out" | awk -F'\t' -v w="$w" '$1 == w')
        c=$(echo "$out" | awk -F'\t' '$1 == "deep_ae_ceiling" { print $3 }')
        [ -n "$c" ] && ceilings+=("$c")
        t=$("$PY" "$TORCH_PEER" "$w" | awk -F'\t' -v w="$w" '$1 == w')
        j=$("$PY" "$JAX_PEER" "$w" 2>/dev/null | awk -F'\t' -v w="$w" '$1 == w')
        grs+=("$(echo "$g" | cut -f3)"); trs+=("$(echo "$t" | cut -f3)"); jrs+=("$(echo "$j" | cut -f3)")
    done
    unit=$(echo "$g" | cut -f2)
    gr=$(printf '%s\n' "${grs[@]}" | median)
    tr=$(printf '%s\n' "${trs[@]}" | median)
    jr=$(printf '%s\n' "${jrs[@]}" | median)
    g_rate[$w]=$gr; t_rate[$w]=$tr; j_rate[$w]=$jr
    echo "| $w | $unit | $gr | $tr | $jr | $(ratio "$gr" "$tr") | $(ratio "$gr" "$jr") | $(loss "$g") | $(loss "$t") | $(loss "$j") |"
done
if [ ${#ceilings[@]} -gt 0 ]; then
    echo
    echo "deep_ae at $(printf '%s\n' "${ceilings[@]}" | median) of its matrix-product ceiling" \
        "(median of ${#ceilings[@]}; the ceiling is the 256x784x128 product's GFLOP/s in the same run / 1.31 MFLOP per sample)"
fi
# Each engine's deep_ae against its own product's rate, from the medians
# above: samples/s / (GFLOP/s of 256x784x128 / 1.31 MFLOP per sample).
if [ -n "${g_rate[deep_ae]:-}" ] && [ -n "${g_rate[gemm_256x784x128]:-}" ]; then
    echo
    echo "deep_ae against each engine's own 256x784x128 product (medians above):" \
        "gradtape $(fraction "${g_rate[deep_ae]}" "${g_rate[gemm_256x784x128]}")," \
        "PyTorch $(fraction "${t_rate[deep_ae]}" "${t_rate[gemm_256x784x128]}")," \
        "JAX jit $(fraction "${j_rate[deep_ae]}" "${j_rate[gemm_256x784x128]}")"
fi
