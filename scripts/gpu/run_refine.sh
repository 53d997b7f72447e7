#!/usr/bin/env bash
# Run ON THE GPU MACHINE, from the repo root, with .device/aot_refine/ from
# scripts/gpu/refine_prepare.sh: the slash refinement's kernels (issue 17)
# checked and timed, logs under $OUT.
#   1. check.py on the slash_* configurations (against float64 within the
#      float32 bound, the CPU path, the layouts by the boundary rule);
#   1b. (same) the layouts of tune_refine_before and tune_refine on the same
#      inputs (scripts/gpu/refine_same.py; SAME_MODE=--report describes the
#      differences of a change that reorders sums instead of failing on them:
#      the third rewrite's probe rows, judged by check.py's float32 bound);
#   2. the refine stage before (tune_refine_before: the "before" compiler's kernels)
#      and after (tune_refine) in one process, twice, at 32K and 128K;
#   3. ncu of the refinement's kernels of both libraries at 32K and 128K
#      (per-kernel durations: each step measured on its own kernel).
#   run_refine.sh [all | check | same | bench | ncu]
# The runtime: RT=path/to/libunisparse_runtime.so, else .device/rt*/, else
# built here. NCU_LIBS / NCU_N narrow the ncu step (each ncu run up to 150 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
LOGS=${OUT:-$PWD/gpu-logs}
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1
RT=${RT:-$(ls .device/rt*/libunisparse_runtime.so 2>/dev/null | head -1)}
if [ -z "$RT" ]; then
  BUILD=/tmp/unisparse-build-gpu
  cmake -S runtime -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNISPARSE_RUNTIME_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90a >"$LOGS/cmake.log" 2>&1 && ninja -C "$BUILD" >"$LOGS/build.log" 2>&1 \
    || { tail -30 "$LOGS/build.log"; exit 1; }
  RT=$(find "$BUILD" -name libunisparse_runtime.so | head -1)
fi
export UNISPARSE_CUDA_RUNTIME=$RT UNISPARSE_AOT_DIR=$PWD/.device/aot_refine PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot_refine/COMMIT)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$LOGS/device.txt"
status=0
step=${1:-all}
if [ "$step" = all ] || [ "$step" = check ]; then
  echo "=== check $(date +%T)"
  timeout 420 python3 scripts/gpu/check.py --only slash_bf16_d128 slash_f32_d128 slash_ch2_f16_d64 \
    slash_peaked_bf16_d128 slash_h32_bf16_d128 > "$LOGS/check_slash.txt" 2>&1 || status=1
  grep -E "FAIL|passed|groups" "$LOGS/check_slash.txt" | cut -c1-260 | tail -30
fi
if [ "$step" = all ] || [ "$step" = same ]; then
  echo "=== before and after bit for bit $(date +%T)"
  timeout 200 python3 scripts/gpu/refine_same.py ${SAME_MODE:-} > "$LOGS/refine_same.txt" 2>&1 || status=1
  grep -E "PASS|FAIL|DIFF|refine_same|Error" "$LOGS/refine_same.txt" | tail -20
fi
if [ "$step" = all ] || [ "$step" = bench ]; then
  echo "=== refine before / after $(date +%T)"
  for r in 1 2; do
    timeout 150 python3 bench/bench_gpu_estimation.py --tuning --only tune_refine_before tune_refine \
      --n 32768 131072 > "$LOGS/bench_refine_$r.txt" 2>&1 || status=1
    grep -E "^tune_refine|Error" "$LOGS/bench_refine_$r.txt" | sed -E 's/ \(block=[^)]*\)//' | cut -c1-200
  done
fi
if [ "$step" = all ] || [ "$step" = ncu ]; then
  echo "=== ncu $(date +%T)"
  for name in ${NCU_LIBS:-tune_refine_before tune_refine}; do
    for n in ${NCU_N:-32768 131072}; do
      f="$LOGS/ncu_${name}_$n"
      count=5 # one call's launches (both libraries: five at last_q 16)
      timeout 150 ncu --set full --import-source no -k regex:unisparse_slash -c $count -o "$f" -f \
        python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py "$name" "$n" > "$f.log" 2>&1 || status=1
      echo "$name N=$n"
      ncu -i "$f.ncu-rep" --page raw --csv --metrics \
        gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread \
        2>/dev/null | cut -c1-400
      ncu -i "$f.ncu-rep" --page details --csv 2>/dev/null | gzip > "$f.details.csv.gz"
      rm -f "$f.ncu-rep"
    done
  done
fi
echo "run_refine.sh status=$status $(date +%T)"
exit $status
