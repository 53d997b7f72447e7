#!/bin/bash
# Session 10 call D: issue 17, two-level variants within the multiply-add budget on the project's generator and the
# independent one (unisparse.peaked), peak 2.5, 32K (seeds 0, 1) and 128K (seed 1), Hq 32 / Hkv 8, float64 on the GPU.
set -u
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
O=c_k=32,estimator=outlier,query_reduce=max
Q2=c_q=32,q_outliers=2,$O
C=""
for t in 0.995 0.997; do C="$C --config $O,tau=$t,last_q=16 --config $Q2,tau=$t,last_q=16"; done
C="$C --config $O,tau=0.995,last_q=32 --config $O,tau=0.995,last_q=16,n_offsets=32 --config tau=0.995,last_q=16,refine=slash --config $Q2,tau=0.996,last_q=16 --config $O,tau=0.996,last_q=16"
run() { # n seed gen tag timeout
  f=$OUT/fid_n$1_s$2_$4.txt
  echo "=== n $1 seed $2 $3 $(date +%T)"
  timeout $5 python3 -m unisparse.fidelity --n $1 --heads 32 --kv-heads 8 --peak 2.5 --seed $2 --device cuda --png '' \
    --generator $3 $C --json $OUT/fid_n$1_s$2_$4.json > $f 2>&1; echo "rc=$?"
  grep -E "^ +[0-9]+ " $f | sed -E 's/outlier\(c=([0-9]+)\/32,r=([0-9])\/2\),query_reduce=max/o\1r\2/' | cut -c1-170
}
run 32768 0 structured s 90
run 32768 1 structured s 90
run 32768 0 peaked p 90
run 32768 1 peaked p 90
C="--config $O,tau=0.996,last_q=16 --config $O,tau=0.997,last_q=16 --config $Q2,tau=0.995,last_q=16 --config $Q2,tau=0.996,last_q=16 --config $Q2,tau=0.997,last_q=16"
run 131072 1 structured s 200
echo "=== done $(date +%T)"
