#!/bin/bash
# Session 10 call H (the vertical part of vertical_refine.py unused here): the two-level refinement with R normalised by the row's candidate mass (R = E f / (1 + sum E f),
# vertical_refine.py's n_offsets = 20) against the merged rule (16), tau 0.995 / 0.997, float64 on the GPU.
set -u
cd "$(dirname "$0")/../../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
O=c_k=32,estimator=outlier,query_reduce=max,last_q=16
C=""; for t in 0.995 0.997; do for n in 16 20; do C="$C --config $O,tau=$t,n_offsets=$n"; done; done
run() { # n seed generator timeout
  echo "=== n $1 seed $2 $3 $(date +%T)"
  timeout $4 python3 bench/logs/2026-12-04-h200-s10-e/vertical_refine.py -- --n $1 --heads 32 --kv-heads 8 --peak 2.5 \
    --seed $2 --generator $3 --device cuda --png '' $C > $OUT/norm_n$1_s$2_$3.txt 2>&1; echo "rc=$?"
  grep -E "^ *[0-9]+  tau" $OUT/norm_n$1_s$2_$3.txt | sed -E 's/outlier\(c=16\/32,r=1\/2\),query_reduce=max,//' | cut -c1-150
}
run 131072 1 structured 130
run 32768 0 peaked 45
run 32768 0 structured 40
echo "=== done $(date +%T)"
