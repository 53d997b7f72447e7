#!/bin/bash
# Session 12: the key rest slot as two sigma points (19), with ut_pc (20; also at c_q 32, the same cost as today) next to the baseline (0), 8K, peak 2.5,
# tau 0.995 / 0.997, preset `peaked`.   run_kut.sh [seeds] [generators] [N]
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-04-cpu-s12-unscented
N=${3:-8192}
for s in ${1:-0 1 2}; do for g in ${2:-peaked structured}; do
  f=$L/kut_${g}_s${s}_n${N}.txt
  [ -s $f ] && continue
  C=""; for t in 0.995 0.997; do for c in 0 19 20; do C="$C --config preset=peaked,tau=$t,max_blocks=$((1000 + c))"; done; C="$C --config preset=peaked,tau=$t,c_q=32,max_blocks=1020"; done
  PYTHONPATH=python nice python3 $L/unscented.py -- --n $N --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png '' \
    --seed $s --generator $g $C > $f.tmp 2>&1 && mv $f.tmp $f
done; done
