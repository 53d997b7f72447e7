#!/usr/bin/env bash
# Session 18: is peaked_noncausal_f16_d64's failure at N=4099 (seed 30318,
# "GPU scores vs float64 on the same bf16 outlier composites (the reference's
# picks)", 11.69x the bound, H100) a regression of the pending commits or a
# near tie of the check's reference picks? Steps:
#   ocsame   the outlier compress alone before / after byte for byte, now
#            with the default's keys at f16, D 64 (oc_k_f16_d64)
#   refpicks check.py --only peaked_noncausal_f16_d64 at seed 30318 with the
#            before and the after compiler's libraries, no compress library in
#            the directory (so the reference's picks, as in the failing run)
#   own      the same with the GPU's own composites (gpu_outlier_composites'
#            new f16 D 64 entries), seed 30318 and two fresh seeds
#   pftime   the probe rows' forced keys loaded a step ahead (tune_peaked_pf)
#            against tune_peaked, one process, twice
#   pfcheck  check.py of the default's refined configurations
#   (anything else: bench/logs/2026-12-05-s16-prep/run.sh's step, e.g.
#    slashcheck, narrowcheck)
set -uo pipefail
cd "$(dirname "$0")/../../.."
LOGS=${OUT:-$PWD/gpu-logs}; mkdir -p "$LOGS"
bash bench/logs/2026-12-05-h200-s14-a/run.sh
RT=$PWD/.device/rt1/libunisparse_runtime.so
chk() {  # $1 log, $2 aot dir, rest: check.py arguments
  local log=$1 dir=$2; shift 2
  PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$RT UNISPARSE_AOT_DIR=$dir timeout 200 \
    python3 scripts/gpu/check.py --only peaked_noncausal_f16_d64 "$@" > "$LOGS/$log" 2>&1
  echo "--- $log"; grep -E "FAIL|passed|seed|Error|scores vs float64" "$LOGS/$log" | cut -c1-220
}
for s in "$@"; do
  echo "=== $s $(date +%T)"
  case "$s" in
    ocsame)
      PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$RT timeout 300 python3 scripts/gpu/compress_same.py \
        .device/aot_s18/liboutlier_compress_before_cuda.so .device/aot_s18/liboutlier_compress_cuda.so \
        > "$LOGS/compress_same.txt" 2>&1
      grep -E "FAIL|all equal|differ|Error" "$LOGS/compress_same.txt" | tail -8 ;;
    refpicks)
      for v in before after; do
        d=/tmp/ref_$v; mkdir -p $d
        src=.device/aot_s18; [ $v = before ] && src=.device/aot_s18b
        cp $src/libpeaked_noncausal_f16_d64_* $d/
        chk refpicks_$v.txt $d --seed 30318
      done ;;
    own)
      chk own_before_30318.txt $PWD/.device/aot_s18b --seed 30318
      chk own_after_30318.txt $PWD/.device/aot_s18 --seed 30318
      chk own_after_fresh1.txt $PWD/.device/aot_s18
      chk own_after_fresh2.txt $PWD/.device/aot_s18 ;;
    pftime) # the probe rows' forced keys loaded a step ahead (tune_peaked_pf,
       # this tree's compiler) against tune_peaked (2c9930c's, prepare.sh), one
       # process, twice
       for r in 1 2; do
         PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$RT UNISPARSE_AOT_DIR=$PWD/.device/aot_default \
           UNISPARSE_COMMIT=$(cat .device/aot_default/COMMIT) timeout 200 python3 bench/bench_gpu_estimation.py \
           --tuning --only tune_peaked tune_peaked_pf --n 32768 131072 > "$LOGS/pftime_$r.txt" 2>&1
         grep -E "^tune_peaked|Error" "$LOGS/pftime_$r.txt" | sed -E 's/ \(block=[^)]*\)//' | cut -c1-220
       done ;;
    pfcheck) # the default's refined configurations with the new probe kernel
       PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$RT UNISPARSE_AOT_DIR=$PWD/.device/aot_default timeout 300 \
         python3 scripts/gpu/check.py --only peaked_bf16_d128 peaked_h32_bf16_d128 > "$LOGS/pfcheck.txt" 2>&1
       grep -E "FAIL|passed" "$LOGS/pfcheck.txt" | cut -c1-240 | tail -8 ;;
    *) bash bench/logs/2026-12-05-s16-prep/run.sh "$s" ;;
  esac
done
