#!/bin/bash
# Session 11 (issue 17): per-row calibrations and the spread correction, on the CPU (reference), 8K x 8 heads
# (Hkv 2), peak 2.5, seeds 0-2, both generators, tau 0.995 / 0.997; baseline = the peaked preset with refine_norm.
# flat_refine.py codes (n_offsets = 16 + code): 0 baseline, 1 oracle forced share, 2 oracle ranking, 4 oracle
# verification of the top 4 blocks (13, the probe rows' verification guarded, on seed 0 only: slow in NumPy loops).
# spread_fix.py: FLAT_SPREAD=cap:8 / trunc (the first pass's spread correction bounded).
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-04-cpu-s11-flat
B=c_k=32,estimator=outlier,query_reduce=max,last_q=16,refine_norm=true
A="--n 8192 --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png ''"
for s in ${SEEDS:-0 1 2}; do for g in peaked structured; do
  f=$L/flat_${g}_s${s}_n8192.txt
  if [ ! -s $f ]; then
    C=""; for t in 0.995 0.997; do for n in 16 17 18 20; do C="$C --config $B,tau=$t,n_offsets=$n"; done; done
    eval PYTHONPATH=python nice python3 $L/flat_refine.py -- $A --seed $s --generator $g $C > $f 2>&1
  fi
  C=""; for t in 0.995 0.997; do C="$C --config $B,tau=$t"; done
  for m in cap:8 trunc; do
    eval FLAT_SPREAD=$m PYTHONPATH=python nice python3 $L/spread_fix.py -- $A --seed $s --generator $g $C \
      > $L/spread_${m/:/}_${g}_s${s}_n8192.txt 2>&1
  done
done; done
