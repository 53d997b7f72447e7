#!/bin/bash
# Session 5 call 1a: FA4 first half to /tmp; k15 variants' CUDA tests and sanitizers (multi-tile racecheck).
set -u
cd "$(dirname "$0")/.."
mkdir -p /tmp/fa4 && cp .device/fa4a/* /tmp/fa4/ && ls -la /tmp/fa4
V=$PWD/.device/variants
echo "=== variant tests $(date +%T)"
VARIANTS="k15grid2=$V/k15grid2 k15pers2=$V/k15pers2 v7r=$V/v7r" timeout 200 scripts/gpu/run_kernels.sh tests 2>&1 | tail -12
for var in k15pers2 k15grid2; do
echo "=== sanitize $var $(date +%T)"
mkdir -p $OUT/san_$var && OUT=$OUT/san_$var SAN_TIMEOUT=100 MEM_FILTER="[sm90]" \
  SAN_FILTER="N=4000 S=128 B=2 Hq/Hkv/Hg=8/2/4 empty-rows [sm90]" VARIANTS="$var=$V/$var" \
  timeout 320 scripts/gpu/run_kernels.sh sanitize 2>&1 | tail -6
done
echo "=== done $(date +%T)"
