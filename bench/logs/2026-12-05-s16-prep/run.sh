#!/usr/bin/env bash
# Prepared in session 16 (no device lent that session) for the next one: the
# check and timing of the probe rows' pending rewrite (5aec563 + this
# session's log2-domain forced keys; see README.md). Steps:
#   slashcheck  check.py of every slash_* configuration whose probe shapes
#               differ from the default's (width 2: entries per unit; 12 probe
#               rows and 7 offsets; width 8: two ballot words a unit; the
#               probe kernel's own slot rules, slash_rule; 32 / 8 heads at
#               32K and 100K)
#   narrowcheck check.py slash_narrow_bf16_d64 (the one-warp probe kernel,
#               16,386 key blocks at 2^20 + 100 tokens; ~2 min of float64
#               reference on the host)
#   ocsame      the outlier compress alone, before and after, byte for byte
#   abtime      the default's estimation before (main) and after (the pending
#               rewrite) in one process, twice, at 32K and 128K (prepare.sh)
#   (anything else: session 15's run.sh step: check, graph, e2e, ocompress,
#    src:TAG:REGEX:N, ...; session 15's builds the runtime first)
set -uo pipefail
cd "$(dirname "$0")/../../.."
LOGS=${OUT:-$PWD/gpu-logs}; mkdir -p "$LOGS"
S15=bench/logs/2026-12-05-h200-s15-a
# session 14's run.sh builds the runtime of this commit first (once)
bash bench/logs/2026-12-05-h200-s14-a/run.sh
run_check() {  # $1: log name, $2: timeout, rest: configurations
  local log=$1 limit=$2; shift 2
  PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
    UNISPARSE_AOT_DIR=$PWD/.device/aot_default timeout "$limit" python3 scripts/gpu/check.py \
    --only "$@" > "$LOGS/$log" 2>&1
  grep -E "FAIL|passed" "$LOGS/$log" | cut -c1-240 | tail -14
}
for s in "$@"; do
  echo "=== $s $(date +%T)"
  case "$s" in
    slashcheck) run_check check_slash.txt 500 slash_ch2_f16_d64 slash_odd_bf16_d128 slash_w8_bf16_d128 \
                  slash_rule_bf16_d128 slash_h32_bf16_d128 ;;
    narrowcheck) run_check check_narrow.txt 500 slash_narrow_bf16_d64 ;;
    ocsame) # the compress-alone entries of the before and after compilers on
       # the same inputs, byte for byte (scripts/gpu/compress_same.py)
       PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
         timeout 300 python3 scripts/gpu/compress_same.py .device/aot_default/liboutlier_compress_before_cuda.so \
         .device/aot_default/liboutlier_compress_cuda.so > "$LOGS/compress_same.txt" 2>&1
       grep -E "FAIL|all equal|differ|Error" "$LOGS/compress_same.txt" | tail -8 ;;
    same) # session 17: the key slot loops unrolled give the same bits
       PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
         UNISPARSE_AOT_DIR=$PWD/.device/aot_default timeout 300 python3 scripts/gpu/layout_same.py \
         tune_peaked tune_peaked_unroll --n 4099 32768 131072 > "$LOGS/layout_same.txt" 2>&1
       grep -E "FAIL|all equal|differ|Error" "$LOGS/layout_same.txt" | tail -8 ;;
    abtime) # main's default (tune_peaked_before, prepare.sh's before build)
       # against the pending rewrite's (tune_peaked) and session 17's
       # unrolled key slot loops on top of it (tune_peaked_unroll), one
       # process, twice
       for r in 1 2; do
         PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so            UNISPARSE_AOT_DIR=$PWD/.device/aot_default UNISPARSE_COMMIT=$(cat .device/aot_default/COMMIT)            timeout 200 python3 bench/bench_gpu_estimation.py --tuning --only tune_peaked_before tune_peaked tune_peaked_unroll            --n 32768 131072 > "$LOGS/abtime_$r.txt" 2>&1
         grep -E "^tune_peaked|Error" "$LOGS/abtime_$r.txt" | sed -E 's/ \(block=[^)]*\)//' | cut -c1-220
       done ;;
    *) bash $S15/run.sh "$s" ;;
  esac
done
