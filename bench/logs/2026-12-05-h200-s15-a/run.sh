#!/usr/bin/env bash
# Session 15 on the H200: the runtime of this commit built on the GPU machine
# (as session 14's run.sh), then the steps named:
#   kt16       next_kt16.sh device (key tile 16 against 32, one process)
#   graph      the e2e call eagerly and from a CUDA graph, and --host, for
#              est_peaked_default
#   slashcheck check.py of three slash_* configurations (their libraries
#              compiled into .device/aot_default by compile_all.py)
#   ocompress  check.py --only outlier_compress (the compress alone vs float64)
#   e2e        the whole call at peak 2.5 (session 14's run.sh e2e)
#   check      run_default.sh check
#   src:TAG:REGEX:N  ncu --set full of the kernels matching REGEX at N tokens,
#              with the per-SASS-instruction page (stall samples) kept
#   (anything else: session 14's run.sh step)
set -uo pipefail
cd "$(dirname "$0")/../../.."
LOGS=${OUT:-$PWD/gpu-logs}; mkdir -p "$LOGS"
S14=bench/logs/2026-12-05-h200-s14-a
for s in "$@"; do
  echo "=== $s $(date +%T)"
  case "$s" in
    kt16) bash $S14/next_kt16.sh device ;;
    graph) # the whole call eagerly and replayed from a CUDA graph (the launch
       # gaps between the estimation's ~25 kernels), and where one layout()
       # call's time goes (--host: kernels' sum against the call's events)
       export PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
         UNISPARSE_AOT_DIR=$PWD/.device/aot_default UNISPARSE_COMMIT=$(cat .device/aot_default/COMMIT)
       timeout 300 python3 bench/bench_gpu_estimation.py --e2e --graph --peak 2.5 --only est_peaked_default \
         --n 32768 131072 > "$LOGS/e2e_graph.txt" 2>&1
       grep -E "cuDNN|Error" "$LOGS/e2e_graph.txt" | cut -c1-400
       timeout 200 python3 bench/bench_gpu_estimation.py --host --host-repeat 3 --only est_peaked_default \
         --n 32768 131072 > "$LOGS/host_peaked.txt" 2>&1
       tail -12 "$LOGS/host_peaked.txt" | cut -c1-300 ;;
    slashcheck) # the refinement's own checks whose probe shapes differ from
       # the default's: width 2 (entries per unit), 7 offsets and 12 probe
       # rows, width 8 (two ballot words a unit), 32 / 8 heads at 32K and 100K
       PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
         UNISPARSE_AOT_DIR=$PWD/.device/aot_default timeout 400 python3 scripts/gpu/check.py \
         --only slash_ch2_f16_d64 slash_odd_bf16_d128 slash_w8_bf16_d128 slash_h32_bf16_d128 \
         > "$LOGS/check_slash.txt" 2>&1
       grep -E "FAIL|passed" "$LOGS/check_slash.txt" | cut -c1-240 | tail -12 ;;
    src:*) IFS=: read -r _ tag regex n <<< "$s"
       f=$LOGS/src_${tag}_$n
       PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
         UNISPARSE_AOT_DIR=$PWD/.device/aot_default timeout 200 ncu --set full --import-source no \
         -k "regex:$regex" -c 4 -o "$f" -f python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py est_peaked_default "$n" > "$f.log" 2>&1
       ncu -i "$f.ncu-rep" --page details --csv 2>/dev/null | gzip > "$f.details.csv.gz"
       ncu -i "$f.ncu-rep" --page source --csv --print-source sass 2>"$f.src.err" | gzip > "$f.sass.csv.gz"
       ncu -i "$f.ncu-rep" --page raw --csv --metrics gpu__time_duration.sum,launch__registers_per_thread,smsp__inst_executed.sum 2>/dev/null | cut -c1-400 | tail -4
       ls -la "$LOGS" | grep "src_$tag" ; rm -f "$f.ncu-rep" ;;
    *) bash $S14/run.sh "$s" ;;
  esac
done
