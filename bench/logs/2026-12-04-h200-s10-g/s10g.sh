#!/bin/bash
# Session 10 call G: issue 17 on the independent generator, 32K x 32 heads, peak 2.5, two-level at tau 0.995: the
# excess split with the forced blocks apart (rank_split.py) and the missed mass per head and planted component
# (diagnose --generator peaked), float64 on the GPU.
set -u
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
C=c_k=32,estimator=outlier,query_reduce=max,tau=0.995,last_q=16
for s in 0 1; do
  echo "=== split seed $s $(date +%T)"
  timeout 100 python3 bench/logs/2026-12-04-h200-s10-e/rank_split.py --n 32768 --heads 32 --kv-heads 8 --peak 2.5 \
    --seed $s --generator peaked --config $C --device cuda > $OUT/split_peaked_$s.txt 2>&1; echo "rc=$?"
  head -1 $OUT/split_peaked_$s.txt | cut -c150-420
  echo "=== diagnose seed $s $(date +%T)"
  timeout 150 python3 -m unisparse.fidelity.diagnose --n 32768 --heads 32 --kv-heads 8 --peak 2.5 --seed $s \
    --generator peaked --config $C --device cuda > $OUT/diagnose_peaked_$s.txt 2>&1; echo "rc=$?"
  sed -n 2,5p $OUT/diagnose_peaked_$s.txt | cut -c1-250; grep "^  head" $OUT/diagnose_peaked_$s.txt | head -8 | cut -c1-250
done
echo "=== done $(date +%T)"
