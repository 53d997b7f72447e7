#!/usr/bin/env bash
# Session 19: the outlier scoring kernel's key tile copies without per-copy
# clamps (tune_peaked), with 8 warps a CTA (tune_peaked_w8) and with its two
# warp groups taking turns on the tensor cores (tune_peaked_pp), against
# main's b12b3ff (tune_peaked_before). Steps:
#   same     scripts/gpu/layout_same.py: before against each, bit for bit
#            (bench inputs and the generator at peak 2.5, 4099 / 32K / 128K)
#   abtime   the four in one process, twice, 32K and 128K
#   ncu      per-kernel time, tensor-pipe and issue activity of the scoring
#            kernels of before and pp at 32K
#   ncu:RE   duration and issue of the kernels matching RE at 32K, before
#            and each of VARIANTS
#   same:A:B layout_same.py of libraries A and B
#   candcheck check.py of the configurations whose probe rows take the
#            candidate tiles through workgroup memory
#   (anything else: bench/logs/2026-12-05-s18/run.sh's step, e.g.
#    narrowcheck, ocompress, slashcheck)
set -uo pipefail
cd "$(dirname "$0")/../../.."
LOGS=${OUT:-$PWD/gpu-logs}; mkdir -p "$LOGS"
bash bench/logs/2026-12-05-h200-s14-a/run.sh
export PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
  UNISPARSE_AOT_DIR=$PWD/.device/aot_default UNISPARSE_COMMIT=$(cat .device/aot_default/COMMIT)
VARIANTS=${VARIANTS:-tune_peaked tune_peaked_w8 tune_peaked_pp}
for s in "$@"; do
  echo "=== $s $(date +%T)"
  case "$s" in
    same)
      for v in $VARIANTS; do
        timeout 300 python3 scripts/gpu/layout_same.py tune_peaked_before $v --n 4099 32768 131072 \
          > "$LOGS/same_$v.txt" 2>&1
        echo "--- $v rc=$?"; grep -E "FAIL|all equal|differ|Error" "$LOGS/same_$v.txt" | tail -4
      done ;;
    abtime)
      for r in 1 2; do
        timeout 300 python3 bench/bench_gpu_estimation.py --tuning --only tune_peaked_before $VARIANTS \
          --n 32768 131072 > "$LOGS/abtime_$r.txt" 2>&1
        grep -E "^tune_peaked|Error" "$LOGS/abtime_$r.txt" | sed -E 's/ \(block=[^)]*\)//' | cut -c1-220
      done ;;
    ncu)
      for v in tune_peaked_before tune_peaked_pp; do
        timeout 300 ncu --section SpeedOfLight --section ComputeWorkloadAnalysis --section SchedulerStats \
          --section Occupancy -c 1 -k regex:unisparse_outlier_score --csv \
          python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py $v 32768 > "$LOGS/ncu_$v.csv" 2>&1
        echo "--- $v"; grep -E "Duration|Issue Slots Busy|Tensor|Executed Ipc|Achieved Occupancy|No Eligible" \
          "$LOGS/ncu_$v.csv" | awk -F'","' '{print $(NF-2), $(NF-1), $NF}' | cut -c1-160
      done ;;
    same:*) # same:A:B: two libraries' layouts bit for bit
      IFS=: read -r _ a bb <<< "$s"
      timeout 300 python3 scripts/gpu/layout_same.py $a $bb --n 4099 32768 131072 > "$LOGS/same_${a}_$bb.txt" 2>&1
      echo "--- $a / $bb rc=$?"; grep -E "FAIL|all equal|differ|Error" "$LOGS/same_${a}_$bb.txt" | tail -4 ;;
    candcheck) # the probe rows' candidate tiles through workgroup memory: the
       # default's refined configurations and the slash_* ones that take them
       timeout 500 python3 scripts/gpu/check.py --only peaked_bf16_d128 peaked_h32_bf16_d128 slash_rule_bf16_d128 \
         slash_odd_bf16_d128 slash_ch2_f16_d64 slash_h32_bf16_d128 > "$LOGS/check_cand.txt" 2>&1
       grep -E "FAIL|passed" "$LOGS/check_cand.txt" | cut -c1-240 | tail -12 ;;
    ncu:*) # ncu:REGEX: duration and issue of the kernels matching REGEX at 32K, before and each variant
      regex=${s#ncu:}
      for v in tune_peaked_before $VARIANTS; do
        timeout 200 ncu --section SpeedOfLight --section SchedulerStats -c 1 -k regex:$regex --csv \
          python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py $v 32768 > "$LOGS/ncu_${regex}_$v.csv" 2>&1
        echo "--- $v"; grep -E "Duration|Issue Slots Busy|No Eligible" "$LOGS/ncu_${regex}_$v.csv" \
          | awk -F'","' '{print $(NF-2), $(NF-1), $NF}' | cut -c1-120
      done ;;
    *) bash bench/logs/2026-12-05-s18/run.sh "$s" ;;
  esac
done
