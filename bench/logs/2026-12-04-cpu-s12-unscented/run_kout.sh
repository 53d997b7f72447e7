#!/bin/bash
# Session 12: more key outliers (rare: farthest from the head's key mean) paid for by coarser query composites:
# c_q 32 with k_outliers 5 (nq 2 x sk 6 over half the pairs = today's multiply-adds), c_q 32 / k_outliers 3 and
# c_q 16 / k_outliers 3 (sk 4: +0.5x at 32K), the plain reference (code 0 = no change), next to the baseline.
#   run_kout.sh [seeds] [generators] [N]
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-04-cpu-s12-unscented
N=${3:-8192}
for s in ${1:-0}; do for g in ${2:-peaked structured}; do
  f=$L/kout_${g}_s${s}_n${N}.txt
  [ -s $f ] && continue
  C=""; for t in 0.995 0.997; do for x in "" ",c_q=32,k_outliers=5" ",c_q=32,k_outliers=3" ",k_outliers=3"; do
    C="$C --config preset=peaked,tau=$t,max_blocks=1000$x"; done; done
  PYTHONPATH=python nice python3 $L/unscented.py -- --n $N --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png '' \
    --seed $s --generator $g $C > $f.tmp 2>&1 && mv $f.tmp $f
done; done
