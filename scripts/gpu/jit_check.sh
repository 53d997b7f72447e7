#!/usr/bin/env bash
# Run ON THE GPU MACHINE (no LLVM, no build tree), from the repository root,
# with the wheel that scripts/build-wheel.sh made here carried in
# .device/wheel/. Installs the wheel into an empty directory, then, from
# outside the source tree and with an empty compile cache, compiles a
# configuration no one compiled before with unisparse.compile(...,
# device="cuda"), checks it against the float64 reference and times the
# import, the first compile and the cached second calls
# (scripts/gpu/jit_check.py). Logs go to $OUT (or ./gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
LOGS=${OUT:-$REPO/gpu-logs}
mkdir -p "$LOGS"
PY=${PYTHON:-python3}
WHEEL=$(ls "$REPO"/.device/wheel/unisparse-*.whl 2>/dev/null | head -1)
[ -n "$WHEEL" ] || { echo "no wheel in .device/wheel/ (scripts/build-wheel.sh makes it)"; exit 2; }

{
  echo "wheel: $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  "$PY" --version
  ldd --version | head -1
  for t in clang clang-22 llc mlir-opt ld.lld cc gcc ptxas; do
    printf '%-9s %s\n' "$t" "$(command -v "$t" || echo -)"
  done
  echo "CUDA_HOME=${CUDA_HOME:-} ($(ls -d /usr/local/cuda 2>/dev/null || echo 'no /usr/local/cuda'))"
} 2>&1 | tee "$LOGS/jit_machine.txt"

SITE=$(mktemp -d /tmp/unisparse-site.XXXXXX)
CACHE=$(mktemp -d /tmp/unisparse-cache.XXXXXX)
chmod 700 "$CACHE"
start=$(date +%s%N)
"$PY" -m pip install --quiet --no-deps --no-index --target "$SITE" "$WHEEL" || exit 1
echo "pip install --target: $(( ($(date +%s%N) - start) / 1000000 )) ms" | tee -a "$LOGS/jit_machine.txt"

cd /tmp
env -u UNISPARSE_BUILD_DIR -u UNISPARSE_AOT_DIR -u UNISPARSE_CUDA_RUNTIME \
  PYTHONPATH="$SITE" UNISPARSE_CACHE_DIR="$CACHE" PYTHONUNBUFFERED=1 \
  "$PY" "$REPO/scripts/gpu/jit_check.py" --site "$SITE" --json "$LOGS/jit_check.json" \
  2>&1 | tee "$LOGS/jit_check.txt"
exit "${PIPESTATUS[0]}"
