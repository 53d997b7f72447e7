#!/usr/bin/env bash
# Session 22, a later call: ncu duration / DRAM throughput / issue of every
# kernel of one est_peaked_default layout() (main e1c47e6's kernels) at 32K
# and 128K: the per-kernel table after the CTA center (session 18's is older).
set -uo pipefail
export PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot_default
bash bench/logs/2026-12-05-h200-s14-a/run.sh > $OUT/rt.txt 2>&1; nvidia-smi --query-gpu=name --format=csv,noheader
for n in 32768 131072; do
  timeout 200 ncu --section SpeedOfLight --section SchedulerStats --section Occupancy -k regex:unisparse_ -c 20 --csv \
    python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py est_peaked_default $n > $OUT/ncu_all_$n.csv 2>&1
  echo "--- $n rc=$?"; grep -E '"Duration"' $OUT/ncu_all_$n.csv | awk -F'","' '{print $5, $NF}' | cut -c1-100
done
