#!/bin/bash
# Session 12: ut_pc (code 1) at c_q 32 (nq 3 over half the composite pairs: 1.49x at 32K against today's 1.87x),
# seeds 1-2, both generators (seed 0 is in k1_*); the c_q-16 baseline is in ut_*. 8K, tau 0.995 / 0.997.
#   run_cq32.sh [seeds] [generators] [N]
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-04-cpu-s12-unscented
N=${3:-8192}
for s in ${1:-1 2}; do for g in ${2:-peaked structured}; do
  f=$L/k1_${g}_s${s}_n${N}.txt
  [ -s $f ] && continue
  C=""; for t in 0.995 0.997; do C="$C --config preset=peaked,tau=$t,c_q=32,max_blocks=1001"; done
  PYTHONPATH=python nice python3 $L/unscented.py -- --n $N --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png '' \
    --seed $s --generator $g $C > $f.tmp 2>&1 && mv $f.tmp $f
done; done
