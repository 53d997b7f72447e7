#!/bin/bash
# Session 4 call 2a: FA4 first half to /tmp; kernel variants' CUDA tests and sanitizers.
set -u
cd "$(dirname "$0")/.."
mkdir -p /tmp/fa4 && cp .device/fa4a/* /tmp/fa4/ && ls -la /tmp/fa4
V=$PWD/.device/variants
echo "=== variant tests $(date +%T)"
VARIANTS="v7r=$V/v7r k15grid=$V/k15grid k15pers=$V/k15pers" timeout 200 scripts/gpu/run_kernels.sh tests 2>&1 | tail -12
echo "=== sanitize k15pers $(date +%T)"
mkdir -p $OUT/san && OUT=$OUT/san SAN_TIMEOUT=80 VARIANTS="k15pers=$V/k15pers" timeout 280 scripts/gpu/run_kernels.sh sanitize 2>&1 | tail -6
echo "=== done $(date +%T)"
