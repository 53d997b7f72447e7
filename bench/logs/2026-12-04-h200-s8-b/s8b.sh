#!/bin/bash
# Session 8 call B: FA4 assembled; the default sm_90a kernel (SLOT_ALL_LANES on) vs FA4 vs cuDNN in one run,
# d128 and d64; then the sanitizers on the default build.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
mkdir -p /tmp/fa4site && cat /tmp/fa4/fa4part.aa .device/fa4b/fa4part.ab | xz -d | tar x -C /tmp/fa4site && echo "fa4 unpacked"
FA4PATH=/tmp/fa4site/site:/tmp/fa4site/site/nvidia_cutlass_dsl/dsl_packages
V=$PWD/.device/variants
echo "=== default + FA4 $(date +%T)"
mkdir -p $OUT/k && PYTHONPATH=$FA4PATH OUT=$OUT/k VARIANTS="default=$V/cur" \
  BENCH_ARGS="--kernels sm90 --head-dims 128 64 --budget-ms 400 --fa4" timeout 400 scripts/gpu/run_kernels.sh tests bench 2>&1 | tail -40
echo "=== sanitize $(date +%T)"
mkdir -p $OUT/san; OUT=$OUT/san SAN_TIMEOUT=30 MEM_FILTER="[sm90]" SAN_FILTER="empty-rows [sm90]" VARIANTS="default=$V/cur" timeout 130 scripts/gpu/run_kernels.sh sanitize 2>&1 | tail -10
echo "=== done $(date +%T)"
