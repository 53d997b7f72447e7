#!/bin/bash
# Session 11: the floor with forced blocks (flat_refine.py code 3: top-p on the true block masses, sink + diagonal +
# local forced) next to the baseline, 8K x 8 heads, peak 2.5, seed 0, both generators: what the forced blocks alone
# cost in `ratio` at 8K.
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-04-cpu-s11-flat
B=c_k=32,estimator=outlier,query_reduce=max,last_q=16,refine_norm=true
for g in peaked structured; do
  eval PYTHONPATH=python nice python3 $L/flat_refine.py -- --n 8192 --heads 8 --kv-heads 2 --peak 2.5 --device cpu \
    --png "''" --seed 0 --generator $g --config $B,tau=0.995 --config $B,tau=0.995,n_offsets=19 > $L/forced_${g}_s0_n8192.txt 2>&1
done
