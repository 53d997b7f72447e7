#!/bin/bash
# Session 13 (keyside): the fidelity harness at N with the key-side variants of keyside.py (codes, max_blocks = 1000
# + code), preset `peaked`, 8 / 2 heads, D 128, peak 2.5, CPU reference; one file per (generator, seed).
#   run.sh PREFIX "CODES" ["SEEDS"] ["GENERATORS"] [N] ["TAUS"] [extra fidelity args]
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-05-cpu-s13-keyside
P=$1; CODES=$2; N=${5:-8192}; TAUS=${6:-0.995}
for s in ${3:-0 1 2}; do for g in ${4:-peaked structured}; do
  f=$L/${P}_${g}_s${s}_n${N}.txt
  [ -s $f ] && continue
  C=""; for t in $TAUS; do for c in $CODES; do C="$C --config preset=peaked,tau=$t,max_blocks=$((1000 + c))"; done; done
  PYTHONPATH=python nice -n 15 python3 $L/keyside.py -- --n $N --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png '' \
    --seed $s --generator $g $C "${@:7}" > $f.tmp 2>&1 && mv $f.tmp $f
done; done
