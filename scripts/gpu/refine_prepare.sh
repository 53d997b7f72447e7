#!/usr/bin/env bash
# Run HERE (where LLVM is), for scripts/gpu/run_refine.sh on the GPU machine:
# the libraries of the slash refinement's checks and benchmark into
# .device/aot_refine/ (git-ignored): the check.py slash_* configurations
# (each with its `_first` library), est_refine, tune_refine (this tree's
# compiler) and tune_refine_before (the same configuration by the compiler
# of BEFORE_BUILD, default /work/main/build: the kernels before the change,
# timed in the same process). The runtime is taken from .device/rt*/ (or
# built by run_refine.sh).
#   UNISPARSE_BUILD_DIR   this tree's build (default ./build)
#   BEFORE_BUILD          the "before" compiler's build directory
#   BEFORE_LIB            or the "before" library itself
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=.device/aot_refine
BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
BEFORE_BUILD=${BEFORE_BUILD:-/work/main/build}
mkdir -p "$OUT"
NAMES=()
for c in slash_bf16_d128 slash_f32_d128 slash_ch2_f16_d64 slash_peaked_bf16_d128 slash_h32_bf16_d128; do
  NAMES+=("$c" "${c}_first")
done
python3 scripts/gpu/compile_all.py --out "$OUT" --build "$BUILD" --only check --names "${NAMES[@]}"
python3 scripts/gpu/compile_all.py --out "$OUT" --build "$BUILD" --only estimation --names est_refine
python3 scripts/gpu/compile_all.py --out "$OUT" --build "$BUILD" --only tuning --names tune_refine
# tune_refine_before: est_refine's configuration by the "before" compiler
# (or BEFORE_LIB, a library built so earlier).
if [ -n "${BEFORE_LIB:-}" ]; then
  cp "$BEFORE_LIB" "$OUT/libtune_refine_before_cuda.so"
  echo "copied $BEFORE_LIB"; git rev-parse --short HEAD > "$OUT/COMMIT"; ls "$OUT"; exit 0
fi
read -r CFG HQ HKV D DTYPE < <(python3 -c "
import sys; sys.path.insert(0, 'scripts/gpu'); import configs
c = configs.BENCH_ESTIMATION['est_refine']; print(*c[:5])")
"$BEFORE_BUILD/bin/unisparse-compile" --config="$CFG" --heads="$HQ" --kv-heads="$HKV" --head-dim="$D" \
  --dtype="$DTYPE" --target=cuda -o "$OUT/libtune_refine_before_cuda.so"
echo "compiled libtune_refine_before_cuda.so with $BEFORE_BUILD ($(git -C "$BEFORE_BUILD/.." rev-parse --short HEAD 2>/dev/null || echo '?'))"
git rev-parse --short HEAD > "$OUT/COMMIT"
ls "$OUT"
