#!/usr/bin/env bash
# The outlier compress kernels (OutlierCompressKernel.cpp, issue 17) on a GPU:
#
#   scripts/gpu/ocompress.sh prepare   HERE (where LLVM is): compiles only the
#       libraries the run needs into .device/aot/ (the outlier checks, the
#       compress-alone entries, est_default and est_outlier) and, unless
#       .device/rt/ has it already, the runtime with CUDA (prepare.sh
#       --runtime compiles everything, which takes far longer);
#   scripts/gpu/ocompress.sh device    ON THE GPU MACHINE, from the repo root,
#       with .device/ carried: the checks (check.py --only the outlier
#       configurations and outlier_compress), then the estimation benchmark
#       of est_default and est_outlier at 32K and 128K (the compress column
#       of est_outlier is the new kernels). Logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
CHECKS=(outlier_bf16_d128 outlier_ch2_f16_d64 outlier_h32_bf16_d128)
case "${1:-}" in
prepare)
  set -e
  mkdir -p .device/aot .device/rt
  EXCLUDE=$(git rev-parse --git-path info/exclude)
  mkdir -p "$(dirname "$EXCLUDE")"
  grep -qx '/.device/' "$EXCLUDE" 2>/dev/null || echo '/.device/' >> "$EXCLUDE"
  BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
  python3 scripts/gpu/compile_all.py --out .device/aot --build "$BUILD" --only check \
    --names "${CHECKS[@]}" outlier_compress
  python3 scripts/gpu/compile_all.py --out .device/aot --build "$BUILD" --only estimation \
    --names est_default est_outlier
  # The runtime is not changed by these kernels: one built already is kept.
  if [ ! -f .device/rt/libunisparse_runtime.so ]; then
    RT_BUILD=${UNISPARSE_RT_CUDA_BUILD:-$PWD/build-rt-cuda}
    cmake -S runtime -B "$RT_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNISPARSE_RUNTIME_ENABLE_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
    ninja -C "$RT_BUILD" | tail -n 1
    cp "$RT_BUILD/libunisparse_runtime.so" .device/rt/
  fi
  git rev-parse --short HEAD > .device/aot/COMMIT
  ;;
device)
  LOGS=${OUT:-$PWD/gpu-logs}
  mkdir -p "$LOGS"
  export PYTHONUNBUFFERED=1
  status=0
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$LOGS/device.txt"
  export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot
  echo "=== checks: the outlier estimator end to end, the compress kernels alone"
  python3 scripts/gpu/check.py --only "${CHECKS[@]}" outlier_compress 2>&1 | tee "$LOGS/check_ocompress.txt" \
    | grep -v "^PASS" | tail -40
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  grep -c "^PASS" "$LOGS/check_ocompress.txt"
  echo "=== estimation benchmark (compress / score / select per estimator)"
  UNISPARSE_COMMIT=$(cat .device/aot/COMMIT 2>/dev/null) \
    python3 bench/bench_gpu_estimation.py --only est_default est_outlier --n 32768 131072 2>&1 \
    | tee "$LOGS/bench_ocompress.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
  echo "ocompress.sh status=$status"
  exit $status
  ;;
*)
  echo "usage: $0 prepare|device" >&2
  exit 2
  ;;
esac
