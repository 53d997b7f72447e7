#!/usr/bin/env bash
# The outlier compress kernels after the session-9 rewrite (issue 17;
# docs/GPU.md, "The outlier compress kernels": the reduce-scatter, full
# composites with static offsets, the key center once per kv head, the
# partial sums' L2 prefetch) on a GPU:
#
#   scripts/gpu/prepare_ocompress2.sh prepare [--before BUILD_DIR]
#       HERE (where LLVM is), from the repo root: compiles into .device/aot/
#       only the libraries the run needs (ocompress.sh prepare's: the outlier
#       checks, the compress-alone entries, est_default and est_outlier, the
#       runtime with CUDA into .device/rt/ unless it is there), and
#       tune_outlier (est_outlier as a tuning variant); with --before, also
#       tune_ocompress_before: est_outlier compiled by BUILD_DIR's
#       unisparse-compile (a build of main before the rewrite, e.g. one at
#       9d34bc8), so that both forms run in one process.
#   scripts/gpu/prepare_ocompress2.sh device [STEP...]
#       ON THE GPU MACHINE, from the repo root, with .device/ carried; the
#       steps (default 1 2 3; each run stays well within 10 minutes if the
#       steps are split, e.g. `device 1` then `device 2 3` then `device 4`):
#       1. check.py --only outlier_bf16_d128 outlier_ch2_f16_d64
#          outlier_h32_bf16_d128 outlier_compress (the picks against float64,
#          exact on exact inputs, near-ties only on structured ones; the
#          slots within their bounds; bf16 = f32 rounded once);
#       2. bench_gpu_estimation.py --only est_default est_outlier at 32K and
#          128K (est_outlier's compress column is these kernels);
#       3. if tune_ocompress_before was built: the same bench --tuning of
#          tune_ocompress_before and tune_outlier (before / after, one process);
#       4. with ncu on PATH: ncu of the six compress launches of one
#          est_outlier layout() at 32K and 128K (time, DRAM, issue, regs).
#       Logs under $OUT (else ./gpu-logs).
set -uo pipefail
cd "$(dirname "$0")/../.."
CHECKS=(outlier_bf16_d128 outlier_ch2_f16_d64 outlier_h32_bf16_d128)
AOT=.device/aot
case "${1:-}" in
prepare)
  set -e
  # The libraries of scripts/gpu/ocompress.sh prepare (the checks, the
  # compress-alone entries, est_default, est_outlier, the runtime), then
  # est_outlier as the tuning variant tune_outlier, and with --before the
  # same built by an earlier compiler.
  scripts/gpu/ocompress.sh prepare
  BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
  python3 scripts/gpu/compile_all.py --out .device/aot --build "$BUILD" --only tuning --names tune_outlier
  if [ "${2:-}" = --before ]; then
    python3 scripts/gpu/compile_all.py --out .device/aot --only tuning --names tune_ocompress_before \
      --before "${3:?--before needs a build directory}"
  fi
  ;;
device)
  shift
  STEPS=" ${*:-1 2 3} "
  LOGS=${OUT:-$PWD/gpu-logs}
  mkdir -p "$LOGS"
  export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
  status=0
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$LOGS/device.txt"
  export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/$AOT
  export UNISPARSE_COMMIT=$(cat "$AOT/COMMIT" 2>/dev/null)
  if [[ $STEPS == *" 1 "* ]]; then
    echo "=== 1. checks: the outlier estimator end to end, the compress kernels alone $(date +%T)"
    python3 scripts/gpu/check.py --only "${CHECKS[@]}" outlier_compress 2>&1 | tee "$LOGS/check_ocompress2.txt" \
      | grep -v "^PASS" | tail -40
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
    grep -c "^PASS" "$LOGS/check_ocompress2.txt"
    grep "outlier compress alone .*picks\|outlier compress alone .*bounds" "$LOGS/check_ocompress2.txt" | cut -c1-220
  fi
  if [[ $STEPS == *" 2 "* ]]; then
    echo "=== 2. estimation benchmark (compress / score / select per estimator) $(date +%T)"
    python3 bench/bench_gpu_estimation.py --only est_default est_outlier --n 32768 131072 2>&1 \
      | tee "$LOGS/bench_ocompress2.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
  fi
  if [[ $STEPS == *" 3 "* ]] && [ -f "$AOT/$(python3 -c 'import sys; sys.path.insert(0, "scripts/gpu"); import configs; print(configs.lib_name("tune_ocompress_before", "cuda"))')" ]; then
    echo "=== 3. before / after in one process $(date +%T)"
    python3 bench/bench_gpu_estimation.py --tuning --only tune_ocompress_before tune_outlier --n 32768 131072 2>&1 \
      | tee "$LOGS/bench_ocompress2_ab.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
  fi
  if [[ $STEPS == *" 4 "* ]] && command -v ncu >/dev/null; then
    echo "=== 4. ncu of the compress launches $(date +%T)"
    for n in 32768 131072; do
      f=$LOGS/ncu_ocompress2_$n
      timeout 150 ncu --set full --import-source no -k regex:unisparse_compress_outlier -c 6 -o "$f" -f \
        python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py est_outlier $n > "$f.log" 2>&1
      echo "ncu $n rc=$?"
      ncu -i "$f.ncu-rep" --page raw --csv --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum 2>/dev/null | cut -c1-400
      ncu -i "$f.ncu-rep" --page details --csv 2>/dev/null | gzip > "$f.details.csv.gz"
      rm -f "$f.ncu-rep"
    done
  fi
  echo "prepare_ocompress2.sh status=$status"
  exit $status
  ;;
*)
  echo "usage: $0 prepare [--before BUILD_DIR] | device [STEP...]" >&2
  exit 2
  ;;
esac
