#!/bin/bash
# Session 5 call 1b: FA4 assembled; k15 variants vs v7r vs FA4 vs cuDNN in one run; ncu of the score epilogue and selection.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
mkdir -p /tmp/fa4site && cat /tmp/fa4/fa4part.aa .device/fa4b/fa4part.ab | xz -d | tar x -C /tmp/fa4site && echo "fa4 unpacked"
FA4PATH=/tmp/fa4site/site:/tmp/fa4site/site/nvidia_cutlass_dsl/dsl_packages
V=$PWD/.device/variants
echo "=== variants + FA4 $(date +%T)"
mkdir -p $OUT/k && PYTHONPATH=$FA4PATH OUT=$OUT/k VARIANTS="v7r=$V/v7r k15grid2=$V/k15grid2 k15pers2=$V/k15pers2" \
  BENCH_ARGS="--kernels sm90 --head-dims 128 64 --budget-ms 500 --fa4" timeout 360 scripts/gpu/run_kernels.sh bench 2>&1 | tail -30
echo "=== ncu epilogue/select $(date +%T)"
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot
PYTHONPATH=$PWD/python timeout 150 ncu --clock-control none -k regex:"epilogue|select" -c 3 --section SpeedOfLight \
  --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section LaunchStats \
  python3 .device/one_layout.py est_default 131072 > $OUT/ncu_est.txt 2>&1; echo "ncu rc=$?"
grep -E "unisparse_|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Compute \(SM\)" $OUT/ncu_est.txt | head -40
echo "=== done $(date +%T)"
