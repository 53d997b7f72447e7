#!/usr/bin/env bash
# Run HERE (where LLVM is), from the repo root: the libraries that measure
# the outlier scoring kernel at 128K (issue 13; docs/GPU.md, "The outlier
# estimator on the tensor cores", "Coalesced f16 scratch and the folded
# logits") into .device/aot/ (or $AOT): prepare_outlier_fold.sh's (the
# outlier checks, est_default, est_outlier, tune_outlier, tune_outlier_kt64
# and tune_outlier_before, est_outlier compiled by BEFORE/bin/unisparse-compile:
# the kernel as session 8 merged it), plus the check outlier_f32p_bf16_d128
# and tune_outlier_f32p (this form with f32 partial sums), so that before,
# this form (f16 partial sums) and its f32 variant run in one process.
#   prepare_oscore128.sh [BEFORE_BUILD_DIR]   (default: /work/main/build, a
#   build of main before this branch is merged)
# Then, on the GPU machine (with .device/ carried; UNISPARSE_CUDA_RUNTIME and
# UNISPARSE_AOT_DIR set as run_estimation.sh sets them):
#   python3 scripts/gpu/check.py --only outlier_bf16_d128 outlier_ch2_f16_d64 outlier_f32p_bf16_d128 outlier_h32_bf16_d128
#   python3 bench/bench_gpu_estimation.py --only est_default est_outlier --n 32768 131072
#   python3 bench/bench_gpu_estimation.py --tuning \
#     --only tune_outlier_before tune_outlier tune_outlier_f32p --n 32768 131072
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
BEFORE=${1:-/work/main/build}
AOT=${AOT:-.device/aot}
[ -x "$BEFORE/bin/unisparse-compile" ] || { echo "no $BEFORE/bin/unisparse-compile" >&2; exit 1; }
AOT=$AOT scripts/gpu/prepare_outlier_fold.sh --before "$BEFORE"
python3 scripts/gpu/compile_all.py --out "$AOT" --build "$BUILD" --only check --names outlier_f32p_bf16_d128
python3 scripts/gpu/compile_all.py --out "$AOT" --build "$BUILD" --only tuning --names tune_outlier_f32p
git rev-parse --short HEAD > "$AOT/COMMIT"
