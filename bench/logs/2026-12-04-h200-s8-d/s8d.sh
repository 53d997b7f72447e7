#!/bin/bash
# Session 8 call D: ncu of the rewritten refinement kernels at 32K and 128K; end to end (estimation + attention)
# of the outlier preset against the default and cuDNN on the generator's peaked inputs.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot2 PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot2/COMMIT)
echo "=== e2e $(date +%T)"
timeout 200 python3 bench/bench_gpu_estimation.py --e2e --only est_default est_outlier --n 32768 131072 --peak 2.5 > $OUT/e2e.txt 2>&1; echo "rc=$?"
grep -vE "Warning|warn" $OUT/e2e.txt | tail -12
echo "=== ncu refine $(date +%T)"
for n in 32768 131072; do
timeout 130 ncu --set full --import-source no -k regex:unisparse_slash -c 5 -o $OUT/ncu_refine_$n -f \
  python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py est_refine $n > $OUT/ncu_refine_$n.log 2>&1; echo "ncu $n rc=$?"
ncu -i $OUT/ncu_refine_$n.ncu-rep --page raw --csv --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,launch__block_size,launch__registers_per_thread 2>/dev/null | cut -c1-300
ncu -i $OUT/ncu_refine_$n.ncu-rep --page details --csv 2>/dev/null | gzip > $OUT/ncu_refine_${n}_details.csv.gz; rm -f $OUT/ncu_refine_$n.ncu-rep
done
echo "=== done $(date +%T)"
