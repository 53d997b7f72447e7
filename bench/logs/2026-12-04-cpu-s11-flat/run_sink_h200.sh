#!/bin/bash
# Session 11 (issue 17), for the H200 (the lead runs it): the `peaked` preset (tau 0.9965, refine_norm) with and
# without the sink block forced (sink = false), the fidelity harness in float64 on the GPU, Hq 32 / Hkv 8, peak 2.5,
# both generators. Measured on the CPU at 8K / 16K only (docs/Fidelity.md, "The independent generator's excess");
# the prediction: `peaked` 0.02-0.05 lower at 32K, less at 128K, the project's generator within 0.01.
#
#   run_sink_h200.sh fid32                     32K, seeds 0-2, both generators (6 runs, <= 90 s each)
#   run_sink_h200.sh fid128 peaked|structured  128K, seeds 0-2 (3 runs, <= 190 s each)
#
# Logs in $OUT (default bench/logs/2026-12-04-h200-s11-sink). No compiled library needed (reference + harness).
set -u
step=${1:?step}
LOGS=${OUT:-bench/logs/2026-12-04-h200-s11-sink}
mkdir -p "$LOGS"
export PYTHONPATH=python
P=c_k=32,estimator=outlier,query_reduce=max,last_q=16,refine_norm=true,tau=0.9965
CONFIGS="--config $P --config $P,sink=false"
status=0
fidelity() { # n seed generator timeout
  local f="$LOGS/sink_n$1_s$2_$3_p2.5.txt"
  echo "=== n $1 seed $2 $3 $(date +%T)"
  timeout "$4" python3 -m unisparse.fidelity --n "$1" --heads 32 --kv-heads 8 --peak 2.5 --seed "$2" \
    --generator "$3" --device cuda --png '' $CONFIGS --json "${f%.txt}.json" > "$f" 2>&1 || { echo "rc=$?"; status=1; }
  grep -E "^ *[0-9]+  tau" "$f" | sed -E 's/outlier\(c=16\/32,r=1\/2\),query_reduce=max,//' | cut -c1-160
}
case "$step" in
  fid32) for g in peaked structured; do for s in 0 1 2; do fidelity 32768 $s $g 90; done; done ;;
  fid128) for s in 0 1 2; do fidelity 131072 $s "${2:?peaked|structured}" 190; done ;;
  *) echo "unknown step $step"; exit 2 ;;
esac
exit $status
