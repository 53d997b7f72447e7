#!/bin/bash
# Session 9 call B: the two-level estimator's tau at 128K x 32 heads (seeds 0-2, peak 2.5; peak 1.5 seed 1) and 32K
# (seeds 0-2, peak 2.5; the independent generator), float64 on the GPU. tau only changes the selection, so the
# estimate and the refinement are computed once per run.
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
O=c_k=32,estimator=outlier,query_reduce=max
T="--config tau=0.99 --config $O,tau=0.995,last_q=16 --config $O,tau=0.996,last_q=16 --config $O,tau=0.997,last_q=16 --config $O,tau=0.998,last_q=16"
run() { # n peak seed [extra]
  f=$OUT/fid_n$1_p$2_s$3${5:-}.txt
  echo "=== n $1 peak $2 seed $3 ${4:-} $(date +%T)"
  timeout 200 python3 -m unisparse.fidelity --n $1 --heads 32 --kv-heads 8 --peak $2 --seed $3 --device cuda --png '' ${4:-} $T \
    --json $OUT/fid_n$1_p$2_s$3${5:-}.json > $f 2>&1; echo "rc=$?"
  grep -E "^ +[0-9]+ " $f | cut -c1-200
}
for s in 0 1 2; do run 131072 2.5 $s; done

for s in 0 1 2; do run 32768 2.5 $s; done
run 32768 2.5 0 "--generator peaked" _peaked
echo "=== done $(date +%T)"
