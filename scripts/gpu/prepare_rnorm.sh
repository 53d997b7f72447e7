#!/usr/bin/env bash
# Run HERE (where LLVM is), for scripts/gpu/run_rnorm.sh on the GPU machine:
# the libraries of the normalised slash refinement (refine_norm, issue 17)
# into .device/aot_rnorm/ (git-ignored): check.py's slash_norm_bf16_d128 and
# slash_peaked_bf16_d128 (each with its `_first` library, CUDA and CPU) and
# the estimation benchmark's est_peaked and est_peaked_norm (the same
# configuration without and with the option, timed in one process). The
# runtime is taken from .device/rt*/ (or built by run_rnorm.sh).
#   UNISPARSE_BUILD_DIR   this tree's build (default ./build)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.device/aot_rnorm
BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
mkdir -p "$OUT"
NAMES=()
for c in slash_norm_bf16_d128 slash_peaked_bf16_d128; do
  NAMES+=("$c" "${c}_first")
done
python3 scripts/gpu/compile_all.py --out "$OUT" --build "$BUILD" --only check --names "${NAMES[@]}"
python3 scripts/gpu/compile_all.py --out "$OUT" --build "$BUILD" --only estimation --names est_peaked est_peaked_norm
git rev-parse --short HEAD > "$OUT/COMMIT"
ls "$OUT"
