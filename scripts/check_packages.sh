#!/usr/bin/env bash
# Proves that the four published crates (gradtape-kernels, gradtape,
# gradtape-models, gradtape-verify) work as crates.io would serve them, not
# only inside this repository:
#
# 1. `cargo package` makes their `.crate` files (dependencies on each other
#    become plain versions, path-only dev-dependencies are dropped, only the
#    files inside each crate's folder go in). Each file's size is printed;
#    crates.io refuses a crate over 10 MB.
# 2. The `.crate` files alone are unpacked into target/packaged/, with a
#    workspace Cargo.toml of its own that patches crates.io's gradtape-*
#    with the unpacked siblings (as if they had been published), this
#    repository's Cargo.lock (the same registry versions) and its [profile.*]
#    settings.
# 3. Their tests run there, sharing this repository's target/ so that
#    compiled registry dependencies are reused; only the four crates are
#    built again. A file a crate needs but does not package (a kernel
#    source, the built-in MNIST digits, the PyTorch reference data, a
#    licence text) fails the build or a test here.
#
# The crates' dev-dependencies on themselves with test-only features are
# path-only, so cargo drops them when packaging; this script turns the same
# features on instead (kernel-sim and cuda-standin for gradtape-kernels,
# cuda-standin for gradtape-verify), so the packaged tests run the same
# kernel simulation and CPU stand-in for the CUDA driver as the workspace's.
# The stand-in needs NVRTC: GRADTAPE_NVRTC_DIR is pointed at the wheels
# scripts/check_kernels.sh installs under target/cuda-check-venv when they
# are there (otherwise the stand-in tests skip, or fail under
# GRADTAPE_REQUIRE_STANDIN=1, as in .ci/run). The two tests that check the
# workspace README's reading path against the engine's source skip in the
# packaged crate, saying so: that README is not part of any crate.
#
# `cargo package` runs with --no-verify: its own check would build each crate
# once more in another profile; step 3 builds and tests the same files.
#
# Extra arguments go to `cargo test` (e.g. -- --test-threads=1).
set -euo pipefail
cd "$(dirname "$0")/.."

CRATES=(gradtape-kernels gradtape gradtape-models gradtape-verify)
# Folder names in the workspace, in the same order.
FOLDERS=(kernels autograd models verify)
OUT=target/packaged

rm -f target/package/*.crate
cargo package --no-verify --allow-dirty "${CRATES[@]/#/--package=}"

LIMIT=$((10 * 1024 * 1024))
rm -rf "$OUT"
mkdir -p "$OUT"
echo "check_packages: package sizes (crates.io's limit is $LIMIT bytes)"
members=()
patches=""
for i in "${!CRATES[@]}"; do
    name=${CRATES[$i]}
    crate=$(ls target/package/"$name"-[0-9]*.crate)
    size=$(stat -c %s "$crate")
    printf '  %-34s %9d bytes\n' "$(basename "$crate")" "$size"
    [ "$size" -le "$LIMIT" ] || { echo "check_packages: $crate is over crates.io's 10 MB limit" >&2; exit 1; }
    tar -xzf "$crate" -C "$OUT"
    dir=$(basename "$crate" .crate)
    members+=("\"$dir\"")
    patches+="$name = { path = \"$dir\" }"$'\n'
    # The licence texts must be in the package as files (they are symbolic
    # links in the crate folders).
    for licence in LICENSE-MIT LICENSE-APACHE; do
        [ -f "$OUT/$dir/$licence" ] && [ ! -L "$OUT/$dir/$licence" ] && cmp -s "$OUT/$dir/$licence" "$licence" ||
            { echo "check_packages: $dir lacks $licence" >&2; exit 1; }
    done
    [ -f "$OUT/$dir/README.md" ] || { echo "check_packages: $dir lacks its README.md" >&2; exit 1; }
    # Every file the repository tracks in the crate's folder is packaged
    # (cargo's own list also holds generated files: Cargo.toml.orig and so on).
    missing=$(comm -23 <(git ls-files "${FOLDERS[$i]}" | sed "s|^${FOLDERS[$i]}/||" | sort) \
        <(tar -tzf "$crate" | sed "s|^$dir/||" | sort))
    [ -z "$missing" ] || { echo "check_packages: $dir does not package: $missing" >&2; exit 1; }
done

{
    echo "# Written by scripts/check_packages.sh: the packaged crates, patched in as if published."
    echo "[workspace]"
    echo "resolver = \"2\""
    echo "members = [$(IFS=,; echo "${members[*]}")]"
    echo
    echo "[patch.crates-io]"
    printf '%s\n' "$patches"
    # The root's [profile.*] sections, so that compiled registry dependencies
    # in target/ match and are reused.
    awk '/^\[/ { on = ($0 ~ /^\[profile\./) } on' Cargo.toml
} >"$OUT/Cargo.toml"
cp Cargo.lock "$OUT/Cargo.lock"

if [ -z "${GRADTAPE_NVRTC_DIR:-}" ] && [ -x target/cuda-check-venv/bin/python ]; then
    GRADTAPE_NVRTC_DIR=$(target/cuda-check-venv/bin/python -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
    export GRADTAPE_NVRTC_DIR
fi
echo "check_packages: NVRTC for the CUDA stand-in: ${GRADTAPE_NVRTC_DIR:-none (its tests skip)}"

# No incremental compilation: the crates are built once here (its caches
# only cost time), and registry dependencies never use it, so they stay
# shared with the workspace's builds.
CARGO_INCREMENTAL=0 CARGO_TARGET_DIR=$PWD/target cargo test --manifest-path "$OUT/Cargo.toml" --workspace \
    --features gradtape-kernels/kernel-sim,gradtape-kernels/cuda-standin,gradtape-verify/cuda-standin "$@"
echo "check_packages: the packaged crates build and pass their tests (gradtape's two reading-path tests" \
    "skip here, as the header says; cargo test shows their reason with --nocapture)"
