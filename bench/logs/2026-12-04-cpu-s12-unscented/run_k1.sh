#!/bin/bash
# Session 12: the unscented rest slot within the budget by trading elsewhere: k_outliers 1 (the hot key only: nq 3 x
# sk 2 = today's 2 x 3 dot products a composite pair) or c_q 32 (half the query composites); with the baseline
# correction under the same trade and the rows' oracle (code 11). 8K, peak 2.5, tau 0.995 / 0.997, preset `peaked`.
#   run_k1.sh [seeds] [generators] [N]
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-04-cpu-s12-unscented
N=${3:-8192}
for s in ${1:-0 1 2}; do for g in ${2:-peaked structured}; do
  f=$L/k1_${g}_s${s}_n${N}.txt
  [ -s $f ] && continue
  C=""; for t in 0.995 0.997; do
    for c in 0 1 4 11; do C="$C --config preset=peaked,tau=$t,k_outliers=1,max_blocks=$((1000 + c))"; done
    for c in 0 1; do C="$C --config preset=peaked,tau=$t,c_q=32,max_blocks=$((1000 + c))"; done
  done
  PYTHONPATH=python nice python3 $L/unscented.py -- --n $N --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png '' \
    --seed $s --generator $g $C > $f.tmp 2>&1 && mv $f.tmp $f
done; done
