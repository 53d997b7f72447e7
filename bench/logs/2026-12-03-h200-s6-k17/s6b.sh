#!/bin/bash
# Session 6 call B: the k17 attention-kernel variants (tests, bench in one process with cuDNN, sanitize of k17spec).
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
V=.device/variants
echo "=== tests+bench $(date +%T)"
VARIANTS="k17base=$V/k17base k17spec=$V/k17spec k17split=$V/k17split k17specp2=$V/k17specp2" \
  BENCH_ARGS="--kernels sm90 --head-dims 64 128 --budget-ms 250 --no-flex" timeout 330 scripts/gpu/run_kernels.sh tests bench 2>&1 | tail -45
for v in k17spec; do
  echo "=== sanitize $v $(date +%T)"
  mkdir -p $OUT/san_$v; OUT=$OUT/san_$v SAN_TIMEOUT=40 MEM_FILTER="[sm90]" SAN_FILTER="ramp [sm90]" VARIANTS="$v=$V/$v" timeout 150 scripts/gpu/run_kernels.sh sanitize 2>&1 | tail -12
done
echo "=== done $(date +%T)"
