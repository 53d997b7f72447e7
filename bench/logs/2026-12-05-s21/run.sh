#!/usr/bin/env bash
# Session 21. Steps:
#   micro        bench/micro/center_sums (built here: .device/micro/center_sums)
#                at 32K / 128K, 32 heads, and 32K, 8 heads
#   abtime1      bench_gpu_estimation.py --tuning of tune_peaked_before and
#                VARIANTS at 32K and 128K, one process
#   ncuk:RE      ncu duration / DRAM throughput / issue of the kernels
#                matching RE at 32K, tune_peaked_before and VARIANTS
#   prof:TAG:RE  ncu --set full of the est_peaked_default kernels matching RE
#                at 32K: details and the SASS source page (gzipped csv)
#   (anything else: bench/logs/2026-12-05-s20/run.sh's step)
set -uo pipefail
cd "$(dirname "$0")/../../.."
LOGS=${OUT:-$PWD/gpu-logs}; mkdir -p "$LOGS"
# (every step but micro; in session 21's call ncuk lacked them)
export PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so \
  UNISPARSE_AOT_DIR=$PWD/.device/aot_default
for s in "$@"; do
  case "$s" in
    micro)
      echo "=== $s $(date +%T)"
      for a in "32768 32" "131072 32" "32768 8"; do
        timeout 120 .device/micro/center_sums $a 2>&1 | tee -a "$LOGS/micro.txt"
      done ;;
    prof:*) IFS=: read -r _ tag regex <<< "$s"
      echo "=== $s $(date +%T)"
      bash bench/logs/2026-12-05-h200-s14-a/run.sh
      f=$LOGS/prof_$tag
      timeout 200 ncu --set full --import-source no \
        -k "regex:$regex" -c 1 -o "$f" -f python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py est_peaked_default 32768 \
        > "$f.log" 2>&1
      ncu -i "$f.ncu-rep" --page details --csv 2>/dev/null | gzip > "$f.details.csv.gz"
      ncu -i "$f.ncu-rep" --page source --csv --print-source sass 2>"$f.src.err" | gzip > "$f.sass.csv.gz"
      ncu -i "$f.ncu-rep" --page details 2>/dev/null | grep -E "Duration|Memory Throughput|DRAM Throughput|Issue Slots|No Eligible|Registers Per|Achieved Occupancy|L2 Hit|L1/TEX Hit|Executed Ipc A" | head -14
      rm -f "$f.ncu-rep" ;;
    abtime1) # one process: tune_peaked_before and each of VARIANTS, 32K and 128K
      echo "=== $s $(date +%T)"
      bash bench/logs/2026-12-05-h200-s14-a/run.sh
      timeout 240 python3 bench/bench_gpu_estimation.py --tuning \
        --only tune_peaked_before ${VARIANTS:-tune_peaked} --n 32768 131072 > "$LOGS/abtime1.txt" 2>&1
      grep -E "^tune_peaked|Error" "$LOGS/abtime1.txt" | sed -E 's/ \(block=[^)]*\)//' | cut -c1-220 ;;
    ncuk:*) # ncuk:RE: ncu duration / DRAM throughput / issue of every kernel
       # matching RE in one est layout() at 32K, tune_peaked_before and each of VARIANTS
      regex=${s#ncuk:}
      echo "=== $s $(date +%T)"
      bash bench/logs/2026-12-05-h200-s14-a/run.sh
      for v in tune_peaked_before ${VARIANTS:-tune_peaked}; do
        timeout 200 ncu --section SpeedOfLight --section SchedulerStats --section Occupancy -c 8 -k regex:$regex --csv \
          python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py $v 32768 > "$LOGS/ncuk_${regex}_$v.csv" 2>&1
        echo "--- $v"; grep -E '"(Duration|DRAM Throughput|Memory Throughput|Issue Slots Busy|No Eligible|Achieved Occupancy)"' \
          "$LOGS/ncuk_${regex}_$v.csv" | awk -F'","' '{print $5, $(NF-2), $(NF-1), $NF}' | cut -c1-140
      done ;;
    *) bash bench/logs/2026-12-05-s20/run.sh "$s" ;;
  esac
done
