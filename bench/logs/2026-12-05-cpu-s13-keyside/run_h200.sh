#!/bin/bash
# Session 13 (helper keyside), for the H200 host (the lead runs it; no compiled library needed: reference + harness):
# the key-side variants of keyside.py at 32K (and 64K) with Hq 32 / Hkv 8, peak 2.5, the `peaked` preset at its own
# tau (0.9965), both generators. The dense pass runs in float64 on the GPU (--device cuda); the hooked first pass
# runs in NumPy on the host's 16 cores (keyside.py replaces the torch estimator by the reference).
# Codes: 0 baseline, 29 kw0_far, 33 kw0_far_px, 21 the key oracle (exact log-sum-exp of the key rest slot: ~10x the
# first pass's work, in NumPy; step `oracle` only).
# Predictions (CPU, 8K / 16K: README.md here): `peaked` 0.05-0.1 lower than the baseline at 32K with rec_p1 not
# lower, the project's generator within +0.03; the key oracle bounds the gain. Not measured.
#
#   run_h200.sh fid32 [GENS] [SEEDS]  32K, codes 0 29 33; default both generators, seeds 0-2 (6 runs of <= 290 s:
#                                     split them over calls of the 600 s limit, e.g. `fid32 peaked "0 1"`)
#   run_h200.sh oracle [GENS]   32K, seed 0, codes 0 21 (the oracle is the slow one: one generator a call)
#   run_h200.sh fid64 GEN       64K, seed 0, codes 0 29 33
#   run_h200.sh smoke           2K, seed 0, codes 0 29 33 21 (seconds; DEVICE=cpu runs it without a GPU)
#
# Logs in $OUT (default bench/logs/2026-12-06-h200-keyside); each run's table lines are echoed.
set -u
step=${1:?step}
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-05-cpu-s13-keyside
LOGS=${OUT:-bench/logs/2026-12-06-h200-keyside}
mkdir -p "$LOGS"
export PYTHONPATH=python
status=0
fid() { # n seed generator timeout codes...
  local n=$1 s=$2 g=$3 t=$4
  shift 4
  local f="$LOGS/ks_n${n}_s${s}_${g}_c$(echo "$@" | tr ' ' '-').txt" C=""
  for c in "$@"; do C="$C --config preset=peaked,max_blocks=$((1000 + c))"; done
  echo "=== n $n seed $s $g codes $* $(date +%T)"
  timeout "$t" python3 $L/keyside.py -- --n "$n" --heads 32 --kv-heads 8 --peak 2.5 --seed "$s" --generator "$g" \
    --device "${DEVICE:-cuda}" --png '' $C > "$f" 2>&1 || { echo "rc=$?"; status=1; }
  grep -E "^ *[0-9]+  tau" "$f" | sed -E 's/outlier\(c=16\/32,r=1\/2\),//' | cut -c1-170
}
case "$step" in
  fid32) for g in ${2:-peaked structured}; do for s in ${3:-0 1 2}; do fid 32768 $s $g 290 0 29 33; done; done ;;
  oracle) for g in ${2:-peaked structured}; do fid 32768 0 $g 580 0 21; done ;;
  smoke) fid 2048 0 peaked 300 0 29 33 21 ;;
  fid64) fid 65536 0 "${2:?peaked|structured}" 590 0 29 33 ;;
  *) echo "unknown step $step"; exit 2 ;;
esac
exit $status
