#!/usr/bin/env bash
# ncu --set full of the default's estimation kernels whose names match $1
# (a regex), one layout() at 32K and 128K (run_default.sh ncu's command),
# tag $2; logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")/../../.."
LOGS=${OUT:-$PWD/gpu-logs}; mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
RT=${RT:-$(ls .device/rt*/libunisparse_runtime.so 2>/dev/null | head -1)}
export UNISPARSE_CUDA_RUNTIME=$RT UNISPARSE_AOT_DIR=$PWD/.device/aot_default
for n in 32768 131072; do
  f=$LOGS/ncu_$2_$n
  timeout 200 ncu --set full --import-source no -k "regex:$1" -c 16 -o "$f" -f \
    python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py est_peaked_default $n > "$f.log" 2>&1
  ncu -i "$f.ncu-rep" --page raw --csv --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread,launch__grid_size \
    2>/dev/null > "$f.csv"
  awk -F'","' 'NR>2 {print $5, $12, $13, $14, $15, $16}' "$f.csv"
  ncu -i "$f.ncu-rep" --page details --csv 2>/dev/null | gzip > "$f.details.csv.gz"
  rm -f "$f.ncu-rep"
done
