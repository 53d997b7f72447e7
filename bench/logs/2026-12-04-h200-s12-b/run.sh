#!/usr/bin/env bash
# Session 12 on the H200 (issue 17), from the repository root, logs under $OUT:
#   run.sh check   check.py --only outlier_ck8_f16_d64 outlier_ck2_bf16_d128 slash_odd_bf16_d128 (libraries in
#                  .device/aot_s12: scripts/gpu/compile_all.py --only check --names <those, slash_odd's _first>)
#   run.sh e2e     the default's whole call on the project's generator at peak 2.5 against cuDNN (and mean pooling's):
#                  bench_gpu_estimation.py --e2e --peak 2.5 --only est_default est_peaked_default --n 32768 131072
#                  (libraries in .device/aot_default, scripts/gpu/prepare_default.sh)
#   run.sh lost    the default's needle spans against the per-row top-p's (spans_row, lost), 32K seeds 0-2 at
#                  peak 2.5 and 1.5, the independent generator 32K seed 0, 128K seed 0 (the harness on the GPU)
#   run.sh fid32   bench/logs/2026-12-04-cpu-s11-flat/run_sink_h200.sh fid32 (the default with and without the sink
#                  forced, both generators, 32K, seeds 0-2; the harness now reports spans_row too)
set -u
cd "$(dirname "$0")/../../.."
LOGS=${OUT:?}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so
status=0
case "${1:?step}" in
  check)
    UNISPARSE_AOT_DIR=$PWD/.device/aot_s12 UNISPARSE_COMMIT=$(cat .device/aot_s12/COMMIT) timeout 300 \
      python3 scripts/gpu/check.py --only outlier_ck8_f16_d64 outlier_ck2_bf16_d128 slash_odd_bf16_d128 \
      > "$LOGS/check_s12.txt" 2>&1 || status=1
    grep -E "FAIL|passed" "$LOGS/check_s12.txt" | cut -c1-240 ;;
  e2e)
    UNISPARSE_AOT_DIR=$PWD/.device/aot_default UNISPARSE_COMMIT=$(cat .device/aot_default/COMMIT) timeout 420 \
      python3 bench/bench_gpu_estimation.py --e2e --peak 2.5 --only est_default est_peaked_default --n 32768 131072 \
      > "$LOGS/bench_peak.txt" 2>&1 || status=1
    grep -E "^est_|end to end|Error" "$LOGS/bench_peak.txt" | sed -E 's/ \(block=[^)]*\)//' | cut -c1-220 ;;
  lost)
    # The default's spans, spans_row and lost (the spans the per-row top-p keeps that the layout drops).
    run() { # n seed generator peak timeout
      local f="$LOGS/lost_n$1_s$2_$3_p$4.txt"
      timeout "$5" python3 -m unisparse.fidelity --n "$1" --heads 32 --kv-heads 8 --peak "$4" --seed "$2" \
        --generator "$3" --device cuda --png '' --config preset=peaked --json "${f%.txt}.json" > "$f" 2>&1 || status=1
      echo "n $1 s $2 $3 p $4: $(grep -E '^ *[0-9]+  tau' "$f" | awk '{print "ratio", $6, "p1", $9, "spans", $12, "row", $13, "lost", $14}')"
    }
    for p in 2.5 1.5; do for s in 0 1 2; do run 32768 $s structured $p 80; done; done
    run 32768 0 peaked 2.5 80
    run 131072 0 structured 2.5 200 ;;
  fid32)
    OUT=$LOGS bash bench/logs/2026-12-04-cpu-s11-flat/run_sink_h200.sh fid32 || status=1 ;;
esac
exit $status
