#!/usr/bin/env bash
# Run ON THE GPU MACHINE, from the repo root, with .device/aot_default/ from
# scripts/gpu/prepare_default.sh: the default configuration (Config(), the
# peaked one since issue 17's switch) through the paths that ran the old
# default (mean pooling), logs under $OUT.
#   run_default.sh check   check.py peaked_bf16_d128 (the refinement against
#                          float64 within its bound, the CPU path, the
#                          layouts; 1000 and 4099 tokens), peaked_h32_bf16_d128
#                          (32 / 8 heads, 32K and 100000 tokens, the GPU
#                          against float64) and peaked_noncausal_f16_d64 (the
#                          default non-causal: outlier first pass alone,
#                          output vs FlexAttention and float64) (~4 min)
#   run_default.sh bench   est_default (mean pooling) and est_peaked_default
#                          at 32K and 128K in one process with --e2e (the
#                          whole call against cuDNN), twice (~3 min)
#   run_default.sh demo    python -m unisparse.demo on CUDA at its defaults
#                          (the default config), 4K and 32K tokens (~1 min)
#   run_default.sh torch   check_torch.py (the op with mean pooling and with
#                          the default: output vs float64, opcheck,
#                          torch.compile, CUDA graphs; Hugging Face at tau 1
#                          and at the default) and the CUDA test of the op
#                          with the default in test/python/test_torch_op.py
#                          (test_cuda_attention_default: no CPU path, which
#                          needs LLVM; test_cuda_attention compares with the
#                          CPU path and runs where the build is) (~3 min)
#   run_default.sh ncu     ncu --set full of every kernel of one est_peaked_default
#                          layout() at 32K and 128K (per-kernel time, SM and
#                          DRAM throughput, registers, instructions) (~5 min)
# All need the runtime: RT=path/to/libunisparse_runtime.so, else
# .device/rt*/ (carried; scripts/gpu/run.sh builds one).
set -uo pipefail
cd "$(dirname "$0")/../.."
LOGS=${OUT:-$PWD/gpu-logs}
mkdir -p "$LOGS"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/python
step=${1:?usage: run_default.sh check | bench | demo | torch | ncu}
status=0
RT=${RT:-$(ls .device/rt*/libunisparse_runtime.so 2>/dev/null | head -1)}
[ -n "$RT" ] || { echo "no runtime: carry .device/rt1 (run.sh builds one) or set RT"; exit 1; }
export UNISPARSE_CUDA_RUNTIME=$RT UNISPARSE_AOT_DIR=$PWD/.device/aot_default
export UNISPARSE_COMMIT=$(cat .device/aot_default/COMMIT)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee "$LOGS/device.txt"
case "$step" in
  check)
    timeout 540 python3 scripts/gpu/check.py --only peaked_bf16_d128 peaked_h32_bf16_d128 peaked_noncausal_f16_d64 \
      > "$LOGS/check_default.txt" 2>&1 || status=1
    grep -E "FAIL|passed|bound" "$LOGS/check_default.txt" | cut -c1-260 | tail -30 ;;
  bench)
    for r in 1 2; do
      timeout 250 python3 bench/bench_gpu_estimation.py --e2e --only est_default est_peaked_default --n 32768 131072 \
        > "$LOGS/bench_default_$r.txt" 2>&1 || status=1
      grep -E "^est_|cuDNN|Error" "$LOGS/bench_default_$r.txt" | sed -E 's/ \(block=[^)]*\)//' | cut -c1-200
    done ;;
  demo)
    for n in 4096 32768; do
      timeout 200 python3 -m unisparse.demo --n "$n" > "$LOGS/demo_n$n.txt" 2>&1 || status=1
      cat "$LOGS/demo_n$n.txt"
    done ;;
  torch)
    timeout 300 python3 scripts/gpu/check_torch.py > "$LOGS/check_torch_default.txt" 2>&1 || status=1
    tail -30 "$LOGS/check_torch_default.txt"
    timeout 300 python3 -m pytest -q test/python/test_torch_op.py -k cuda_attention_default \
      > "$LOGS/pytest_torch_op_cuda.txt" 2>&1 || status=1
    tail -15 "$LOGS/pytest_torch_op_cuda.txt" ;;
  ncu)
    # Where the default's estimation spends its time: ncu of every kernel of
    # one layout() call (after none: the first call's kernels; the
    # benchmark's mild inputs) at 32K and 128K, Hq 32 / Hkv 8, D 128.
    command -v ncu >/dev/null || { echo "no ncu"; exit 1; }
    for n in 32768 131072; do
      f=$LOGS/ncu_default_$n
      timeout 240 ncu --set full --import-source no -k regex:unisparse_ -c 24 -o "$f" -f \
        python3 bench/logs/2026-12-04-h200-s7-a/one_layout.py est_peaked_default $n > "$f.log" 2>&1 || status=1
      ncu -i "$f.ncu-rep" --page raw --csv --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,launch__grid_size \
        2>/dev/null > "$f.csv"
      cut -c1-300 "$f.csv" | head -30
      ncu -i "$f.ncu-rep" --page details --csv 2>/dev/null | gzip > "$f.details.csv.gz"
      rm -f "$f.ncu-rep"
    done ;;
  *) echo "unknown step $step"; exit 2 ;;
esac
echo "=== done $(date +%T)"
exit $status
