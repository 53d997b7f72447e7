#!/bin/bash
# Session 7 call A: FA4 first half to /tmp; layout checks with f16 partial sums (8K/100000/128K) and the selection;
# host-side profile of a 32K estimation call; ncu of the six refinement kernels at 32K and 128K.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
mkdir -p /tmp/fa4 && cp .device/fa4a/* /tmp/fa4/ && echo "fa4a copied"
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot8 PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot8/COMMIT)
echo "=== host profile $(date +%T)"
timeout 120 python3 .device/host_profile.py $OUT/host > $OUT/host.txt 2>&1; echo "rc=$?"
grep -E "^N=|cuLaunch|cuMem|cudaMem|cuStream|cuEvent|cuModule|cuCtx|Self CPU time total" $OUT/host.txt | cut -c1-200 | head -40
gzip -f $OUT/host/*.json
echo "=== ncu refine $(date +%T)"
for n in 32768 131072; do
timeout 150 ncu --set full --import-source no -k regex:unisparse_slash -c 6 -o $OUT/ncu_refine_$n -f \
  python3 .device/one_layout.py est_refine $n > $OUT/ncu_refine_$n.log 2>&1; echo "ncu $n rc=$?"
ncu -i $OUT/ncu_refine_$n.ncu-rep --page details --csv > $OUT/ncu_refine_${n}_details.csv 2>/dev/null
ncu -i $OUT/ncu_refine_$n.ncu-rep --page raw --csv --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,launch__block_size,launch__registers_per_thread 2>/dev/null | cut -c1-400
done
echo "=== check $(date +%T)"
timeout 250 python3 scripts/gpu/check.py --only select default_bf16_d128 outlier_bf16_d128 > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "FAIL|passed|layout" $OUT/check.txt | cut -c1-240 | tail -24
echo "=== done $(date +%T)"
