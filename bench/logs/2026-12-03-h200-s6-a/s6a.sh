#!/bin/bash
# Session 6 call A: the runtime's CUDA tests (main's k16 runtime), the full estimation check (review mends,
# outlier estimator's structured GPU path with the refusal lifted locally, 1M-token configs), ncu of the
# d64 / d128 attention kernels with per-instruction stall sampling.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot PYTHONPATH=$PWD/python
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
echo "=== cuda tests $(date +%T)"
timeout 90 .device/rt/unisparse_runtime_cuda_tests > $OUT/cuda_tests.txt 2>&1; echo "cuda tests rc=$?"; tail -2 $OUT/cuda_tests.txt
echo "=== check $(date +%T)"
timeout 380 python3 scripts/gpu/check.py > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "FAIL|passed" $OUT/check.txt | cut -c1-260 | tail -14
for d in 64 128; do
  echo "=== ncu d$d $(date +%T)"
  timeout 75 ncu --clock-control none -k regex:sm90_fwd_bf16_d$d -c 1 --set full --import-source no -f -o $OUT/ncu_d$d \
    python3 bench/bench_gpu.py --kernels sm90 --head-dims $d --n 32768 --densities 1.0 --no-flex --no-fa2 --budget-ms 50 > $OUT/ncu_d${d}_run.txt 2>&1
  echo "ncu rc=$?"
  ncu -i $OUT/ncu_d$d.ncu-rep --page details > $OUT/ncu_d${d}_details.txt 2>&1
  ncu -i $OUT/ncu_d$d.ncu-rep --page source --csv --print-source sass > $OUT/ncu_d${d}_sass.csv 2>&1
  grep -E "Duration|Issue Slots|Issued Ipc|No Eligible|Warp Cycles Per Issued|Eligible Warps|Registers|Compute \(SM\) Th" $OUT/ncu_d${d}_details.txt | head -12
  rm -f $OUT/ncu_d$d.ncu-rep
done
echo "=== done $(date +%T)"
