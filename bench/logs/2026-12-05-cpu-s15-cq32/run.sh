#!/bin/bash
# usage: run.sh N PEAK SEED GEN TAG
cd /work/main
PYTHONPATH=python timeout 3000 python3 -m unisparse.fidelity --n $1 --heads 32 --kv-heads 8 --peak $2 --seed $3 --generator $4 \
  --config "preset=peaked" --config "preset=peaked,c_q=32" --config "preset=peaked,c_q=32,tau=0.997" --config "preset=peaked,c_q=32,tau=0.998" \
  --png '' --markdown --json bench/logs/2026-12-05-cpu-s15-cq32/$5.json > bench/logs/2026-12-05-cpu-s15-cq32/$5.txt 2>&1
