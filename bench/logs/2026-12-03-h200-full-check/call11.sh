#!/bin/bash
# Session 4 call 4: the slash refinement's GPU fault located; the full check.py on merged main.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
export UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot
echo "=== slash debug $(date +%T)"
timeout 90 python3 .device/slash_debug.py > $OUT/slash_debug.txt 2>&1; echo "rc=$?"; grep -v -i warn $OUT/slash_debug.txt | cut -c1-400 | tail -40
echo "=== full check $(date +%T)"
timeout 400 python3 scripts/gpu/check.py > $OUT/check.txt 2>&1; echo "check rc=$?"
grep -E "^FAIL|passed" $OUT/check.txt | cut -c1-260 | tail -14
echo "=== done $(date +%T)"
