#!/bin/bash
# Session 7 call D: the k18 kernel variants (tests, bench in one process with cuDNN, sanitize of k18all).
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
V=.device/variants; VARIANTS="k18base=$V/k18base k18slot=$V/k18slot k18start=$V/k18start k18all=$V/k18all" BENCH_ARGS="--kernels sm90 --head-dims 128 64 --budget-ms 250 --no-flex" timeout 260 scripts/gpu/run_kernels.sh tests bench 2>&1 | tail -45
mkdir -p $OUT/san_k18all; OUT=$OUT/san_k18all SAN_TIMEOUT=30 MEM_FILTER="[sm90]" SAN_FILTER="empty-rows [sm90]" VARIANTS="k18all=$V/k18all" timeout 100 scripts/gpu/run_kernels.sh sanitize 2>&1 | tail -10
echo "=== done $(date +%T)"
