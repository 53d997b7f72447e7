#!/usr/bin/env bash
# Run HERE (where LLVM is), from the repo root: the libraries that measure
# the outlier scoring kernel's fold (docs/GPU.md, "The outlier estimator on
# the tensor cores") into .device/aot/ (or $AOT): the outlier checks, est_default and
# est_outlier, and the tuning variants tune_outlier (the default key tile
# of 32) and tune_outlier_kt64.
#   prepare_outlier_fold.sh [--before BUILD_DIR]
# --before: also tune_outlier_before, est_outlier compiled by
# BUILD_DIR/bin/unisparse-compile (a build of a commit before the fold, e.g.
# main's build before merging it), so that both forms run in one process.
# Then, on the GPU machine (with .device/ carried; UNISPARSE_CUDA_RUNTIME and
# UNISPARSE_AOT_DIR set as run_estimation.sh sets them):
#   python3 scripts/gpu/check.py --only outlier_bf16_d128 outlier_ch2_f16_d64 outlier_h32_bf16_d128
#   python3 bench/bench_gpu_estimation.py --only est_default est_outlier --n 32768
#   python3 bench/bench_gpu_estimation.py --tuning \
#     --only tune_outlier_before tune_outlier tune_outlier_kt64 --n 32768
# or the same through run_estimation.sh (CHECK_ONLY="..." for check.py's
# --only; its bench arguments pass through). 131072 only once the outlier
# compress is a kernel: on the structured path one call takes seconds.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
AOT=${AOT:-.device/aot}
mkdir -p "$AOT"
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
grep -qx '/.device/' "$EXCLUDE" 2>/dev/null || echo '/.device/' >> "$EXCLUDE"
if [ "${1:-}" = --before ]; then
  BEFORE=${2:?--before needs a build directory}
  python3 - "$BEFORE" "$AOT" <<'PY'
import pathlib, subprocess, sys
sys.path.insert(0, "scripts/gpu")
import configs
from compile_all import compile_command
before, aot = sys.argv[1], pathlib.Path(sys.argv[2])
cfg, hq, hkv, d, dtype, _ = configs.BENCH_ESTIMATION["est_outlier"]
lib = aot / configs.lib_name("tune_outlier_before", "cuda")
subprocess.run(compile_command(before, cfg, hq, hkv, d, dtype, "cuda", lib), check=True)
print("compiled", lib.name, "with", before)
PY
fi
python3 scripts/gpu/compile_all.py --out "$AOT" --build "$BUILD" --only check \
  --names outlier_bf16_d128 outlier_ch2_f16_d64 outlier_h32_bf16_d128
python3 scripts/gpu/compile_all.py --out "$AOT" --build "$BUILD" --only estimation --names est_default est_outlier
python3 scripts/gpu/compile_all.py --out "$AOT" --build "$BUILD" --only tuning --names tune_outlier tune_outlier_kt64
git rev-parse --short HEAD > "$AOT/COMMIT"
