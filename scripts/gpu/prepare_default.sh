#!/usr/bin/env bash
# Run HERE (where LLVM is), for scripts/gpu/run_default.sh on the GPU machine:
# the libraries of the default configuration (Config(): the peaked one since
# issue 17's switch) into .device/aot_default/ (git-ignored): check.py's
# peaked_bf16_d128 and peaked_h32_bf16_d128 (each with its `_first` library)
# and peaked_noncausal_f16_d64 (the default non-causal: the outlier first
# pass alone); the estimation benchmark's est_default (mean pooling, the old
# default) and est_peaked_default (the default); the Python layer's
# libraries (configs.TORCH: the op with mean pooling and with the default,
# Hugging Face at tau 1 and the default, the demo at its defaults). The
# runtime is taken from .device/rt*/ (or built by run_default.sh).
#   UNISPARSE_BUILD_DIR   this tree's build (default ./build)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.device/aot_default
BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
mkdir -p "$OUT"
NAMES=(peaked_noncausal_f16_d64)
for c in peaked_bf16_d128 peaked_h32_bf16_d128; do
  NAMES+=("$c" "${c}_first")
done
python3 scripts/gpu/compile_all.py --out "$OUT" --build "$BUILD" --only check --names "${NAMES[@]}"
python3 scripts/gpu/compile_all.py --out "$OUT" --build "$BUILD" --only estimation --names est_default est_peaked_default
python3 scripts/gpu/compile_all.py --out "$OUT" --build "$BUILD" --only torch
git rev-parse --short HEAD > "$OUT/COMMIT"
ls "$OUT"
