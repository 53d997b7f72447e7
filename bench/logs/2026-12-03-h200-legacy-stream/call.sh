#!/bin/bash
# Session 4 call 1: the legacy-stream fix (order + asynchrony), estimation at 32K/128K, full check.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader
echo "=== host sync $(date +%T)"
timeout 60 python3 .device/host_sync.py > $OUT/host_sync.txt 2>&1; echo "rc=$?"; grep -v -i warn $OUT/host_sync.txt
echo "=== default stream check $(date +%T)"
timeout 100 python3 scripts/gpu/check.py --quick --only default_bf16_d128 > $OUT/check_stream.txt 2>&1; echo "rc=$?"
grep -E "FAIL|passed|default stream" $OUT/check_stream.txt | cut -c1-220
echo "=== e2e bench $(date +%T)"
UNISPARSE_COMMIT=$(cat .device/aot/COMMIT) timeout 150 python3 bench/bench_gpu_estimation.py --e2e --only est_default est_c16 est_qmax --n 32768 131072 > $OUT/bench.txt 2>&1; echo "bench rc=$?"
grep -vE "Warning|warn" $OUT/bench.txt | tail -14
echo "=== full check $(date +%T)"
timeout 330 python3 scripts/gpu/check.py > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -vE "^PASS|Warn|warn|SOLUTION|torch.compile|debug|breakpoints|^$|_warn_once" $OUT/check.txt | tail -12
echo "=== done $(date +%T)"
