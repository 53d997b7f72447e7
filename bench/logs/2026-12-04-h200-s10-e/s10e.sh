#!/bin/bash
# Session 10 call E: issue 17, where the two-level estimator's excess density comes from (ranking within a row or
# the spread of recall over rows), 32K x 32 heads, peak 2.5, both generators, float64 on the GPU.
set -u
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
C=c_k=32,estimator=outlier,query_reduce=max,tau=0.995,last_q=16
for g in peaked structured; do for s in 0 1; do
  echo "=== $g seed $s $(date +%T)"
  timeout 100 python3 bench/logs/2026-12-04-h200-s10-e/rank_split.py --n 32768 --heads 32 --kv-heads 8 --peak 2.5 \
    --seed $s --generator $g --config $C --device cuda > $OUT/split_${g}_$s.txt 2>&1; echo "rc=$?"
  head -1 $OUT/split_${g}_$s.txt | cut -c1-400; sed -n 3,8p $OUT/split_${g}_$s.txt; tail -3 $OUT/split_${g}_$s.txt
done; done
echo "=== done $(date +%T)"
