#!/bin/bash
# Session 9 call A: the 128K seed-1 tail of the two-level estimator split by component (diagnose on the GPU);
# ncu of the outlier estimation's kernels (scoring at 128K, compress at 32K and 128K).
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot2 PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot2/COMMIT)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
O=c_k=32,estimator=outlier,query_reduce=max
echo "=== diagnose 128K seed 1 $(date +%T)"
timeout 200 python3 -m unisparse.fidelity.diagnose --n 131072 --heads 32 --kv-heads 8 --peak 2.5 --seed 1 --device cuda \
  --config $O,tau=0.995,last_q=16 > $OUT/diagnose_n131072_p2.5_s1.log 2>&1; echo "rc=$?"
head -30 $OUT/diagnose_n131072_p2.5_s1.log | cut -c1-400
echo "=== ncu outlier $(date +%T)"
for n in 32768 131072; do
f=$OUT/ncu_outlier_$n
timeout 150 ncu --set full --import-source no -k regex:unisparse_.*outlier -c 9 -o $f -f \
  python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py est_outlier $n > $f.log 2>&1; echo "ncu $n rc=$?"
ncu -i $f.ncu-rep --page raw --csv --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size,launch__block_size,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum 2>/dev/null | cut -c1-400
ncu -i $f.ncu-rep --page details --csv 2>/dev/null | gzip > $f.details.csv.gz; rm -f $f.ncu-rep
done
echo "=== done $(date +%T)"
