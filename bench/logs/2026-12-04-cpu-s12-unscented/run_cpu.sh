#!/bin/bash
# Session 12: unscented / low-rank spread corrections (unscented.py codes, max_blocks = 1000 + code) on the CPU
# (reference), Hq 8 / Hkv 2, D 128, peak 2.5, both generators, tau 0.995 / 0.997, preset `peaked`.
#   run_cpu.sh [N] [seeds] [codes]     defaults: 8192, "0 1 2", all codes 0-10
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-04-cpu-s12-unscented
N=${1:-8192}
for s in ${2:-0 1 2}; do for g in peaked structured; do
  f=$L/ut_${g}_s${s}_n${N}.txt
  [ -s $f ] && continue
  C=""; for t in 0.995 0.997; do for c in ${3:-0 1 2 3 4 5 6 7 8 9 10}; do C="$C --config preset=peaked,tau=$t,max_blocks=$((1000 + c))"; done; done
  PYTHONPATH=python nice python3 $L/unscented.py -- --n $N --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png '' \
    --seed $s --generator $g $C > $f.tmp 2>&1 && mv $f.tmp $f
done; done
