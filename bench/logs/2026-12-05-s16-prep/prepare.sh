#!/usr/bin/env bash
# HERE (where LLVM is), from the repo root with the pending rewrites applied
# and committed (git revert --no-edit 638e573 9ce556a: 70d85aa and 2805667
# back on main, two commits), and build/ built from it:
#   bash bench/logs/2026-12-05-s16-prep/prepare.sh BEFORE_COMMIT
# 1. BEFORE_COMMIT (main without the rewrites: HEAD~2 after the reverts) in a
#    worktree, its compiler built in its own directory (ccache with
#    CCACHE_BASEDIR=/ shares this tree's objects), which compiles
#    tune_peaked_before (the default configuration) into .device/aot_default;
# 2. this tree's build: scripts/gpu/prepare_default.sh's libraries (COMMIT =
#    HEAD), tune_peaked, and the check libraries run.sh's slashcheck and
#    narrowcheck need.
# On the GPU: run.sh check slashcheck narrowcheck abtime src:probe:... (README).
set -euo pipefail
cd "$(dirname "$0")/../../.."
BEFORE_COMMIT=$(git rev-parse --verify "${1:?usage: prepare.sh BEFORE_COMMIT}^{commit}")  # in this tree, not the worktree
WT=${UNISPARSE_BEFORE_TREE:-/tmp/unisparse-before}
LLVM=/usr/lib/llvm-22
export CCACHE_BASEDIR=/
if [ ! -d "$WT" ]; then
  git worktree add -f --detach "$WT" "$BEFORE_COMMIT"
else
  git -C "$WT" checkout -q --detach "$BEFORE_COMMIT"
fi
if [ ! -f "$WT/build/build.ninja" ]; then
  cmake -G Ninja -S "$WT" -B "$WT/build" -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=$LLVM/lib/cmake/mlir -DLLVM_EXTERNAL_LIT=$LLVM/bin/lit \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 -DLLVM_USE_LINKER=lld \
    -DMLIR_LINK_MLIR_DYLIB=ON -DPython3_EXECUTABLE="$(command -v python3)" \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache > /dev/null
fi
ninja -C "$WT/build" unisparse-compile | tail -n 1
BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
ninja -C "$BUILD" unisparse-compile | tail -n 1
scripts/gpu/prepare_default.sh > /dev/null
python3 scripts/gpu/compile_all.py --out .device/aot_default --only tuning --names tune_peaked_before \
  --before "$WT/build"
# the compress-alone entries by the before compiler, for run.sh ocsame (the
# shared key composites must give the same bits)
"$WT/build/bin/unisparse-compile" scripts/gpu/outlier_compress_entry.mlir --target=cuda \
  -o .device/aot_default/liboutlier_compress_before_cuda.so
python3 scripts/gpu/compile_all.py --out .device/aot_default --build "$BUILD" --only tuning --names tune_peaked \
  tune_peaked_unroll
python3 scripts/gpu/compile_all.py --out .device/aot_default --build "$BUILD" --only check --names \
  slash_ch2_f16_d64 slash_ch2_f16_d64_first slash_odd_bf16_d128 slash_odd_bf16_d128_first \
  slash_w8_bf16_d128 slash_w8_bf16_d128_first slash_rule_bf16_d128 slash_rule_bf16_d128_first \
  slash_h32_bf16_d128 slash_h32_bf16_d128_first slash_narrow_bf16_d64 slash_narrow_bf16_d64_first \
  outlier_compress
echo "before: $(git -C "$WT" rev-parse --short HEAD), after: $(cat .device/aot_default/COMMIT)"
# The working tree and .device/aot_default must stay under the device call's
# 64 MiB: the hash-named libraries prepare_default.sh writes for
# unisparse.compile (the demo and torch checks, not run.sh's steps) go to
# .device/aot_extra, which is not carried.
mkdir -p .device/aot_extra
mv .device/aot_default/unisparse_cuda_*.so .device/aot_extra/ 2>/dev/null || true
du -sh .device/aot_default
ls .device/aot_default | wc -l
