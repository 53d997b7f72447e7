#!/bin/bash
# Session 7 call B: FA4 assembled; the default sm_90a kernel (k17spec) vs FA4 vs cuDNN in one run, d128 and d64.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
mkdir -p /tmp/fa4site && cat /tmp/fa4/fa4part.aa .device/fa4b/fa4part.ab | xz -d | tar x -C /tmp/fa4site && echo "fa4 unpacked"
FA4PATH=/tmp/fa4site/site:/tmp/fa4site/site/nvidia_cutlass_dsl/dsl_packages
V=$PWD/.device/variants
echo "=== default + FA4 $(date +%T)"
mkdir -p $OUT/k && PYTHONPATH=$FA4PATH OUT=$OUT/k VARIANTS="k17spec=$V/k17spec" \
  BENCH_ARGS="--kernels sm90 --head-dims 128 64 --budget-ms 400 --fa4" timeout 420 scripts/gpu/run_kernels.sh bench 2>&1 | tail -40
echo "=== done $(date +%T)"
