#!/usr/bin/env bash
# Run ON THE GPU MACHINE, from the repo root, with .device/aot_rnorm/ from
# scripts/gpu/prepare_rnorm.sh: the normalised slash refinement (refine_norm,
# issue 17) checked, timed and measured for fidelity, logs under $OUT.
#   run_rnorm.sh check     check.py slash_norm_bf16_d128 (the GPU against the
#                          float64 reference within the float32 bound, the
#                          unnormalised refinement rejected, the CPU path, the
#                          layouts) and slash_peaked_bf16_d128 (off: as before)
#                          (~2 min)
#   run_rnorm.sh bench     est_peaked and est_peaked_norm at 32K and 128K in
#                          one process, twice (~2 min)
#   run_rnorm.sh fid32     the fidelity harness (float64 on the GPU), 32K x 32
#                          heads, peak 2.5, seeds 0-2, both generators, tau
#                          0.995-0.998 without and with refine_norm (~5 min)
#   run_rnorm.sh fid128 G  the same at 128K for generator G (peaked or
#                          structured), seeds 0-2 (~7 min each)
#   run_rnorm.sh mild N    peak 1.5 on the project's generator, tau 0.995
#                          and 0.997 without and with refine_norm: N = 32
#                          seeds 0-2 at 32K (~1.5 min), N = 128 seed 0 at
#                          128K (~2.5 min)
# check and bench need the runtime: RT=path/to/libunisparse_runtime.so, else
# .device/rt*/ (carried). The fidelity steps need neither.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOGS=${OUT:-$PWD/gpu-logs}
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
step=${1:?usage: run_rnorm.sh check | bench | fid32 | fid128 peaked|structured | mild 32|128}
status=0
runtime() {
  RT=${RT:-$(ls .device/rt*/libunisparse_runtime.so 2>/dev/null | head -1)}
  [ -n "$RT" ] || { echo "no runtime: carry .device/rt1 (run.sh builds one) or set RT"; exit 1; }
  export UNISPARSE_CUDA_RUNTIME=$RT UNISPARSE_AOT_DIR=$PWD/.device/aot_rnorm
  export UNISPARSE_COMMIT=$(cat .device/aot_rnorm/COMMIT)
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$LOGS/device.txt"
}
# The peaked preset's first pass (tau added per config); last_q implies refine = slash.
O=c_k=32,estimator=outlier,query_reduce=max,last_q=16
CONFIGS=""
for t in 0.995 0.996 0.997 0.998; do CONFIGS="$CONFIGS --config $O,tau=$t --config $O,tau=$t,refine_norm=true"; done
PEAK=2.5
fidelity() { # n seed generator timeout
  local f="$LOGS/rnorm_n$1_s$2_$3_p$PEAK.txt"
  echo "=== n $1 seed $2 $3 peak $PEAK $(date +%T)"
  timeout "$4" python3 -m unisparse.fidelity --n "$1" --heads 32 --kv-heads 8 --peak "$PEAK" --seed "$2" \
    --generator "$3" --device cuda --png '' $CONFIGS > "$f" 2>&1 || { echo "rc=$?"; status=1; }
  grep -E "^ *[0-9]+  tau" "$f" | sed -E 's/outlier\(c=16\/32,r=1\/2\),query_reduce=max,//' | cut -c1-160
}
case "$step" in
  check)
    runtime
    timeout 300 python3 scripts/gpu/check.py --only slash_norm_bf16_d128 slash_peaked_bf16_d128 \
      > "$LOGS/check_rnorm.txt" 2>&1 || status=1
    grep -E "FAIL|passed|refine_norm|bound" "$LOGS/check_rnorm.txt" | cut -c1-260 | tail -30 ;;
  bench)
    runtime
    for r in 1 2; do
      timeout 200 python3 bench/bench_gpu_estimation.py --only est_peaked est_peaked_norm --n 32768 131072 \
        > "$LOGS/bench_rnorm_$r.txt" 2>&1 || status=1
      grep -E "^est_peaked|Error" "$LOGS/bench_rnorm_$r.txt" | sed -E 's/ \(block=[^)]*\)//' | cut -c1-200
    done ;;
  fid32)
    for g in peaked structured; do for s in 0 1 2; do fidelity 32768 $s $g 90; done; done ;;
  fid128)
    g=${2:?fid128 needs the generator: peaked or structured}
    for s in 0 1 2; do fidelity 131072 $s "$g" 190; done ;;
  mild)
    PEAK=1.5 CONFIGS=""
    for t in 0.995 0.997; do CONFIGS="$CONFIGS --config $O,tau=$t --config $O,tau=$t,refine_norm=true"; done
    case "${2:?mild needs 32 or 128}" in
      32) for s in 0 1 2; do fidelity 32768 $s structured 90; done ;;
      128) fidelity 131072 0 structured 190 ;;
      *) echo "mild: 32 or 128"; exit 2 ;;
    esac ;;
  *) echo "unknown step $step"; exit 2 ;;
esac
echo "=== done $(date +%T)"
exit $status
