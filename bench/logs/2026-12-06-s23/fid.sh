#!/usr/bin/env bash
# Session 23 on the GPU machine (issue 17's Pareto plot and the default's missing target runs), from the repository
# root, logs under $OUT. The fidelity harness in float64 on the GPU (the reference's layouts; no compiled library):
#   fid.sh short    the `frontier` sweep, Hq 32 / Hkv 8, 8K and 32K, peaks 1.5 / 2.0 / 2.5, seeds 0-2 (3 at a time)
#   fid.sh long     the `frontier-long` sweep at 128K, Hq 8 / Hkv 2 (the GQA ratio of 32 / 8), same peaks and seeds
#   fid.sh long32   the same at 128K with Hq 32 / Hkv 8 (three at a time ran out of the H100's memory on 3 of the 9
#                   runs, ~28 GB each; those 3 ran again two at a time with the same command)
#   fid.sh indep    the independent generator at peak 2.5, 32K and 128K, seeds 0-2: mean, recommended, the default
#   fid.sh diag     fidelity.diagnose of the default at 128K, peak 2.5, Hq 8 / Hkv 2, seeds 1 and 2
#   fid.sh heads    the default at peak 2.5: 128K with Hq 16 / Hkv 4 and 32K with Hq 8 / Hkv 2, seeds 0-2
#   fid.sh target   the default alone at 128K, Hq 32 / Hkv 8, peak 1.5, seeds 1 and 2 (the target runs not yet measured)
set -u
cd "$(dirname "$0")/../../.."
LOGS=${OUT:?}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
status=0
fid() { # name timeout args...
  local f="$LOGS/$1.txt" t=$2
  shift 2
  timeout "$t" python3 -m unisparse.fidelity --device cuda --png '' --json "${f%.txt}.json" "$@" > "$f" 2>&1 || {
    echo "FAILED: $f"
    tail -3 "$f"
    return 1
  }
  grep -E "^total" "$f" | sed "s|^|$(basename "$f"): |"
}
case "${1:?step}" in
  short | long | long32)
    # name prefix, timeout, the harness's shape and sweep: one process per (peak, seed), the three peaks at a time.
    case $1 in
      short) set -- short 290 --n 8192 32768 --heads 32 --kv-heads 8 --sweep frontier ;;
      long) set -- long 290 --n 131072 --heads 8 --kv-heads 2 --sweep frontier-long ;;
      long32) set -- long32 400 --n 131072 --heads 32 --kv-heads 8 --sweep frontier-long ;;
    esac
    name=$1 t=$2
    shift 2
    for s in 0 1 2; do
      for p in 1.5 2.0 2.5; do
        fid "${name}_p${p}_s$s" "$t" "$@" --peak $p --seed $s &
      done
      wait
    done ;;
  indep)
    # The independent generator (unisparse.peaked, the held-out set's likeness) at peak 2.5: the mean preset, the
    # outlier first pass and the default; 32K three seeds at a time, 128K two at a time (~28 GB each in float64).
    for s in 0 1 2; do
      fid "indep_n32768_s$s" 200 --n 32768 --heads 32 --kv-heads 8 --peak 2.5 --seed $s --generator peaked \
        --config preset=mean --config preset=recommended --config preset=peaked &
    done
    wait
    for s in 0 1 2; do
      fid "indep_n131072_s$s" 280 --n 131072 --heads 32 --kv-heads 8 --peak 2.5 --seed $s --generator peaked \
        --config preset=mean --config preset=recommended --config preset=peaked &
      [ $s = 1 ] && wait
    done
    wait ;;
  diag)
    # Where the default's missed mass goes at 128K, peak 2.5, Hq 8 / Hkv 2, seeds 1 and 2 (the runs that miss p1).
    for s in 1 2; do
      timeout 280 python3 -m unisparse.fidelity.diagnose --n 131072 --heads 8 --kv-heads 2 --peak 2.5 --seed $s \
        --config preset=peaked --device cuda > "$LOGS/diag_hq8_n131072_s${s}_p2.5.txt" 2>&1 || status=1 &
    done
    wait ;;
  heads)
    # The default at peak 2.5 with other head counts: 128K Hq 16 / Hkv 4 and 32K Hq 8 / Hkv 2, seeds 0-2.
    for s in 0 1 2; do
      fid "heads16_n131072_s$s" 170 --n 131072 --heads 16 --kv-heads 4 --peak 2.5 --seed $s --config preset=peaked &
      fid "heads8_n32768_s$s" 170 --n 32768 --heads 8 --kv-heads 2 --peak 2.5 --seed $s --config preset=peaked &
    done
    wait ;;
  target)
    for s in 1 2; do
      fid "target_n131072_s${s}_p1.5" 290 --n 131072 --heads 32 --kv-heads 8 --peak 1.5 --seed $s \
        --config preset=peaked &
    done
    wait ;;
esac
for f in "$LOGS"/*.txt; do grep -q "Traceback\|Error" "$f" && { echo "error in $f"; status=1; }; done
exit $status
