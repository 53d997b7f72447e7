#!/bin/bash
# Session 8 call A: FA4 first half to /tmp; slash_h32 check in full (32/8 heads to 100000 tokens);
# tune_noprefetch vs tune_qfuse repeat; fidelity at 128K x 32 heads, seeds 1 and 2, peak 2.5.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
mkdir -p /tmp/fa4 && cp .device/fa4a/* /tmp/fa4/ && echo "fa4a copied"
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot1 PYTHONPATH=$PWD/python
export UNISPARSE_COMMIT=$(cat .device/aot1/COMMIT)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
echo "=== tuning repeat $(date +%T)"
for r in 1 2; do
timeout 80 python3 bench/bench_gpu_estimation.py --tuning --only tune_qfuse tune_noprefetch --n 32768 131072 > $OUT/tune$r.txt 2>&1; echo "rc=$?"; grep -vE "Warning|warn" $OUT/tune$r.txt | tail -5
done
echo "=== fidelity 128K x 32 heads $(date +%T)"
O=c_k=32,estimator=outlier,query_reduce=max
for s in 1 2; do
timeout 170 python3 -m unisparse.fidelity --n 131072 --heads 32 --kv-heads 8 --peak 2.5 --seed $s --device cuda --png '' \
  --config tau=0.99 --config $O,tau=0.995 --config $O,tau=0.995,last_q=16 --config $O,tau=0.99,last_q=16 \
  --json $OUT/n131072_p2.5_s${s}_h32.json > $OUT/fid_128k_s$s.txt 2>&1; echo "rc=$?"
tail -7 $OUT/fid_128k_s$s.txt
done
echo "=== slash_h32 $(date +%T)"
timeout 210 python3 scripts/gpu/check.py --only slash_h32_bf16_d128 > $OUT/check_slash_h32.txt 2>&1; echo "rc=$?"
grep -E "FAIL|PASS|passed|negative|groups" $OUT/check_slash_h32.txt | cut -c1-260 | tail -10
echo "=== done $(date +%T)"
