#!/usr/bin/env bash
# Session 20. Steps:
#   check:A,B  check.py --only A B
#   wcheck     check.py of every configuration on the outlier scoring kernel
#   ncumem:RE  ncu's memory workload analysis (L1 / L2 hit rates, throughput)
#              of the kernels matching RE at 32K, tune_peaked_before and each
#              of VARIANTS
#   (anything else: bench/logs/2026-12-05-s19/run.sh's step: same, same:A:B,
#    abtime, ncu, ncu:RE, candcheck, and through it s18's and older ones)
set -uo pipefail
cd "$(dirname "$0")/../../.."
LOGS=${OUT:-$PWD/gpu-logs}; mkdir -p "$LOGS"
bash bench/logs/2026-12-05-h200-s14-a/run.sh
export PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
  UNISPARSE_AOT_DIR=$PWD/.device/aot_default UNISPARSE_COMMIT=$(cat .device/aot_default/COMMIT)
VARIANTS=${VARIANTS:-tune_peaked}
for s in "$@"; do
  case "$s" in
    ncumem:*)
      echo "=== $s $(date +%T)"
      regex=${s#ncumem:}
      for v in tune_peaked_before $VARIANTS; do
        timeout 200 ncu --section SpeedOfLight --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
          --section SchedulerStats -c 1 -k regex:$regex --csv \
          python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py $v 32768 > "$LOGS/ncumem_${regex}_$v.csv" 2>&1
        echo "--- $v"; grep -E "Duration|L1/TEX Hit Rate|L2 Hit Rate|Memory Throughput|Issue Slots Busy|No Eligible|Mem Busy" \
          "$LOGS/ncumem_${regex}_$v.csv" | awk -F'","' '{print $(NF-2), $(NF-1), $NF}' | cut -c1-120
      done ;;
    wcheck) # every check configuration whose scoring kernel is the outlier one
      echo "=== $s $(date +%T)"
      timeout 580 python3 scripts/gpu/check.py --only outlier_bf16_d128 outlier_h32_bf16_d128 outlier_f32p_bf16_d128 \
        outlier_poly_bf16_d128 outlier_ch2_f16_d64 outlier_ck8_f16_d64 outlier_ck2_bf16_d128 peaked_bf16_d128 \
        peaked_bf16_d128_first peaked_h32_bf16_d128 peaked_h32_bf16_d128_first peaked_noncausal_f16_d64 \
        > "$LOGS/check_wgmma.txt" 2>&1
      echo "rc=$?"; grep -E "FAIL|passed|failed|Error" "$LOGS/check_wgmma.txt" | cut -c1-240 | tail -16 ;;
    check:*) # check:NAME[,NAME...]: check.py of these configurations
      echo "=== $s $(date +%T)"
      names=${s#check:}
      timeout 300 python3 scripts/gpu/check.py --only ${names//,/ } > "$LOGS/check_${names//,/_}.txt" 2>&1
      echo "rc=$?"; grep -E "FAIL|passed|failed|Error" "$LOGS/check_${names//,/_}.txt" | cut -c1-240 | tail -8 ;;
    *) VARIANTS="$VARIANTS" bash bench/logs/2026-12-05-s19/run.sh "$s" ;;
  esac
done
