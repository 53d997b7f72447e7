#!/usr/bin/env bash
# Run ON THE GPU MACHINE from the repo root: builds the runtime with CUDA
# (sm_90a), checks the attention kernels against the CPU path, and measures
# them. Needs no LLVM and no compiled configurations. Logs go to $OUT (or
# ./gpu-logs). Steps run in the order given (default: all):
#   scripts/gpu/run_kernels.sh [tests] [sass] [bench] [ncu] [sanitize]
# BENCH_ARGS overrides the benchmark's arguments; SAN_FILTER the test-name
# filter of the racecheck/synccheck pass, MEM_FILTER that of memcheck
# (default: every sm90 case); SAN_TIMEOUT bounds each sanitizer run (s).
#
# Prebuilt variants (built elsewhere; saves the build on the GPU machine):
# VARIANTS="name=DIR ..." names runtime build directories, each holding
# libunisparse_runtime.so and bin/unisparse_runtime_cuda_tests. Nothing is
# built then; `tests` runs every variant's tests, `sanitize`, `sass` and
# `ncu` use the first variant, and `bench` times the sm_90a kernel of every
# variant in one process against cuDNN (bench_gpu.py --variants).
set -uo pipefail
cd "$(dirname "$0")/../.."
LOGS=${OUT:-$PWD/gpu-logs}
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1
STEPS=${*:-tests sass bench ncu sanitize}
status=0
step() { echo; echo "=== $* ($(date +%T))"; }

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
VARIANTS=${VARIANTS:-}
PREBUILT=${VARIANTS:+1}
if [ -z "$VARIANTS" ]; then
  BUILD=/tmp/unisparse-build-kernels
  cmake -S runtime -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DUNISPARSE_RUNTIME_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a >"$LOGS/build.log" 2>&1 \
    && ninja -C "$BUILD" >>"$LOGS/build.log" 2>&1 || { tail -40 "$LOGS/build.log"; exit 1; }
  grep -E "registers|spill|C75" "$LOGS/build.log" | sort | uniq -c | head -12
  VARIANTS="build=$BUILD"
fi
FIRST=${VARIANTS%% *}
BUILD=${FIRST#*=}
RT=$BUILD/libunisparse_runtime.so
TESTS=$BUILD/bin/unisparse_runtime_cuda_tests
export UNISPARSE_CUDA_RUNTIME=$RT
export LD_LIBRARY_PATH=$BUILD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

for s in $STEPS; do
  case $s in
  tests)
    for v in $VARIANTS; do
      name=${v%%=*} dir=${v#*=}
      step "CUDA tests of $name (both kernels against the CPU path)"
      LD_LIBRARY_PATH=$dir "$dir/bin/unisparse_runtime_cuda_tests" >"$LOGS/cuda_tests_$name.txt" 2>&1; rc=$?
      grep -E "FAIL|passed" "$LOGS/cuda_tests_$name.txt" | head -40; [ $rc = 0 ] || status=1
    done ;;
  sass)
    step "SASS of the sm_90a kernels"
    f=$(find "$BUILD" -name "BlockSparseAttentionSm90.fatbin" | head -1)
    cuobjdump --dump-sass "$f" >"$LOGS/sm90.sass" 2>&1
    echo "HGMMA: $(grep -c HGMMA "$LOGS/sm90.sass")  UTMALDG: $(grep -c UTMALDG "$LOGS/sm90.sass")" \
         " LDL/STL: $(grep -cE 'LDL|STL' "$LOGS/sm90.sass")  BAR: $(grep -cE 'BAR\.' "$LOGS/sm90.sass")" ;;
  bench)
    step "benchmark"
    if [ -n "$PREBUILT" ]; then
      vargs=""
      for v in $VARIANTS; do vargs="$vargs ${v%%=*}=${v#*=}/libunisparse_runtime.so"; done
      python3 bench/bench_gpu.py ${BENCH_ARGS:---kernels sm90 --head-dims 128 64} --variants $vargs \
        --out "$LOGS/bench_variants.md" >"$LOGS/bench.txt" 2>&1 || { status=1; tail -20 "$LOGS/bench.txt"; }
    else
      python3 bench/bench_gpu.py ${BENCH_ARGS:---kernels sm90 mma_sync --out $LOGS/bench.md --png $LOGS/bench.png} \
        >"$LOGS/bench.txt" 2>&1 || { status=1; tail -20 "$LOGS/bench.txt"; }
    fi
    grep -E "^d=" "$LOGS/bench.txt" ;;
  ncu)
    step "ncu of the sm_90a kernel (d=128, N=32K, density 0.3, non-causal)"
    ncu --clock-control none -k regex:unisparse_bsa_sm90 -c 1 --section SpeedOfLight \
      --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
      --section Occupancy --section MemoryWorkloadAnalysis --section LaunchStats \
      --section InstructionStats \
      python3 bench/bench_gpu.py --kernels sm90 --n 32768 --densities 0.3 --no-flex --no-fa2 \
      >"$LOGS/ncu.txt" 2>&1 || status=1
    grep -E "Duration|Throughput|Hit Rate|Issue Slots|Issued Ipc|No Eligible|Warp Cycles Per Issued|Eligible Warps|Pipe" \
      "$LOGS/ncu.txt" | head -30 ;;
  sanitize)
    step "compute-sanitizer on the sm_90a kernel"
    timeout "${SAN_TIMEOUT:-150}" compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 9 "$TESTS" \
      "${MEM_FILTER:-[sm90]}" >"$LOGS/san_memcheck.txt" 2>&1; rc=$?
    echo "memcheck rc=$rc: $(grep -E 'ERROR SUMMARY|passed' "$LOGS/san_memcheck.txt" | tr '\n' ' ')"
    [ $rc = 0 ] || status=1
    for tool in racecheck synccheck; do
      # racecheck: every hazard with its threads and access type, and the analysis
      report=""; [ $tool = racecheck ] && report="--racecheck-report all"
      timeout "${SAN_TIMEOUT:-90}" compute-sanitizer --tool $tool $report --error-exitcode 9 "$TESTS" \
        "${SAN_FILTER:-causal N=1000 S=128 B=2 Hq/Hkv/Hg=8/2/4 sparse [sm90]}" >"$LOGS/san_$tool.txt" 2>&1; rc=$?
      echo "$tool rc=$rc: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|passed' "$LOGS/san_$tool.txt" | tr '\n' ' ')"
      [ $rc = 0 ] || status=1
    done ;;
  esac
done
echo "run_kernels.sh status=$status"
exit $status
