#!/usr/bin/env bash
# Session 22, first call: the CTA center (b37380c) checked (peaked_h32 at the
# seed that failed in session 21 and a fresh one; the default set; the compress
# against float64), timed against main before it (abtime1) and per kernel (ncuk).
set -uo pipefail
L=$OUT; R=bench/logs/2026-12-05-s21/run.sh
export PYTHONPATH=$PWD/python UNISPARSE_CUDA_RUNTIME=$PWD/.device/rt1/libunisparse_runtime.so UNISPARSE_AOT_DIR=$PWD/.device/aot_default
bash bench/logs/2026-12-05-h200-s14-a/run.sh > $L/rt.txt 2>&1; tail -1 $L/rt.txt; nvidia-smi --query-gpu=name --format=csv,noheader
for s in 9809 ""; do
  echo "=== peaked_h32 seed ${s:-fresh} $(date +%T)"
  timeout 200 python3 scripts/gpu/check.py --only peaked_h32_bf16_d128 ${s:+--seed $s} > $L/check_h32_${s:-fresh}.txt 2>&1
  echo rc=$?; grep -E "^seed|FAIL|passed|failed" $L/check_h32_${s:-fresh}.txt | cut -c1-260
done
VARIANTS="tune_peaked tune_peaked_q5 tune_peaked_q6" bash $R check:peaked_bf16_d128,outlier_compress abtime1 2>&1
VARIANTS="tune_peaked tune_peaked_q5" bash $R ncuk:compress_outlier 2>&1
bash $R check:peaked_noncausal_f16_d64 2>&1
