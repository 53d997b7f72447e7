#!/bin/bash
# Session 11: the spread-correction variants over tau (seed 0, 8K x 8 heads, both generators), to compare them at
# matched mean recall: none (no correction), trunc (bounded lognormal) at tau 0.95-0.997, the baseline at 0.995-0.9995.
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-04-cpu-s11-flat
B=c_k=32,estimator=outlier,query_reduce=max,last_q=16,refine_norm=true
A="--n 8192 --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png '' --seed 0"
for g in peaked structured; do
  for m in "none:0.995" "trunc:0.95 0.97 0.98 0.99 0.995 0.997" "lognormal:0.995 0.997 0.999 0.9995"; do
    C=""; for t in ${m#*:}; do C="$C --config $B,tau=$t"; done
    eval FLAT_SPREAD=${m%%:*} PYTHONPATH=python nice python3 $L/spread_fix.py -- $A --generator $g $C \
      > $L/sweep_${m%%:*}_${g}_s0_n8192.txt 2>&1
  done
done
