#!/bin/bash
# Session 9 call D: the budgeted top-p experiment (budget_select.py, reference only) at 128K x 32 heads, peak 2.5:
# tau 0.995 with 1 - tau_row = 0.005 min(1, sqrt(256 / n_visible)) against plain tau 0.997, seeds given as arguments.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
O=c_k=32,estimator=outlier,query_reduce=max
for s in "$@"; do
  f=$OUT/budget_n131072_p2.5_s$s
  echo "=== seed $s $(date +%T)"
  timeout 200 python3 bench/logs/2026-12-04-h200-s9-d/budget_select.py 256 -- --n 131072 --heads 32 --kv-heads 8 \
    --peak 2.5 --seed $s --device cuda --png '' --config $O,tau=0.995,last_q=16 --config $O,tau=0.997,last_q=16 \
    --json $f.json > $f.txt 2>&1; echo "rc=$?"
  grep -E "^1?[0-9]+  tau" $f.txt | cut -c1-190
done
echo "=== done $(date +%T)"
