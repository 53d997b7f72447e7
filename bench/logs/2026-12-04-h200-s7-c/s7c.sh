#!/bin/bash
# Session 7 call C: end to end at several input sharpnesses (densities) against cuDNN; the fidelity harness at 128K
# with 32 / 8 heads on the GPU (float64 estimation and dense pass in PyTorch), peak 2.5, seed 0.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot8 PYTHONPATH=$PWD/python
echo "=== e2e $(date +%T)"
timeout 170 python3 bench/bench_gpu_estimation.py --e2e --only est_default --n 32768 131072 --peak 1 2 3 > $OUT/e2e.txt 2>&1; echo "rc=$?"
grep -vE "Warning|warn" $OUT/e2e.txt | tail -12
echo "=== fidelity 128K x 32 heads $(date +%T)"
O=c_k=32,estimator=outlier,query_reduce=max
timeout 380 python3 -m unisparse.fidelity --n 131072 --heads 32 --kv-heads 8 --peak 2.5 --seed 0 --device cuda --png '' \
  --config tau=0.99 --config $O,tau=0.995 --config $O,tau=0.995,last_q=16 --config $O,tau=0.99,last_q=16 \
  --json $OUT/n131072_p2.5_s0_h32.json > $OUT/fid_128k.txt 2>&1; echo "rc=$?"
tail -12 $OUT/fid_128k.txt
echo "=== done $(date +%T)"
