#!/bin/bash
# Session 10: bundles for the H200 under /work/main/.device/s10/{A,B,R}: each branch's python/scripts/bench tree and its libraries.
set -eo pipefail
export CCACHE_BASEDIR=/work
S=/work/main/.device/s10
rm -rf $S; mkdir -p $S
tree() { # $1 worktree, $2 dest
  mkdir -p $2; (cd $1 && tar cf - --exclude=bench/logs --exclude=__pycache__ python scripts bench) | (cd $2 && tar xf -); git -C $1 rev-parse --short HEAD > $2/COMMIT_TREE; }
# A: wt-oscore-mufu
W=/work/wt-oscore-mufu; tree $W $S/A; cd $W
python3 scripts/gpu/compile_all.py --out $S/A/aot --build $W/build --only check --names outlier_bf16_d128 outlier_poly_bf16_d128 outlier_h32_bf16_d128 outlier_compress
python3 scripts/gpu/compile_all.py --out $S/A/aot --build $W/build --only tuning --names tune_outlier tune_outlier_tf tune_outlier_poly2
git rev-parse --short HEAD > $S/A/aot/COMMIT
# B: wt-mufu2
W=/work/wt-mufu2; tree $W $S/B; cd $W
python3 scripts/gpu/compile_all.py --out $S/B/aot --build $W/build --only check --names outlier_poly_bf16_d128 outlier_compress
python3 scripts/gpu/compile_all.py --out $S/B/aot --build $W/build --only tuning --names tune_outlier_tf tune_outlier_poly2_tf
git rev-parse --short HEAD > $S/B/aot/COMMIT
mv $S/B/aot/libtune_outlier_tf_cuda.so $S/A/aot/libtune_outlier_tfB_cuda.so
mv $S/B/aot/libtune_outlier_poly2_tf_cuda.so $S/A/aot/libtune_outlier_poly2_tfB_cuda.so
cat >> $S/A/scripts/gpu/configs.py <<'PY'
# session 10 bundle: issue13-mufu2's libraries under other names, timed in the same process
TUNING["tune_outlier_tfB"] = TUNING["tune_outlier_tf"]
TUNING["tune_outlier_poly2_tfB"] = TUNING["tune_outlier_tf"]
PY
# R: wt-refine3 (+ refine3b's staged)
W=/work/wt-refine3; tree $W $S/R; cd $W
NAMES=(); for c in slash_bf16_d128 slash_f32_d128 slash_ch2_f16_d64 slash_peaked_bf16_d128 slash_h32_bf16_d128; do NAMES+=("$c" "${c}_first"); done
python3 scripts/gpu/compile_all.py --out $S/R/aot --build $W/build --only check --names "${NAMES[@]}"
python3 scripts/gpu/compile_all.py --out $S/R/aot --build $W/build --only estimation --names est_refine
python3 scripts/gpu/compile_all.py --out $S/R/aot --build $W/build --only tuning --names tune_refine tune_refine_hoist
read -r CFG HQ HKV D DTYPE < <(python3 -c "
import sys; sys.path.insert(0, 'scripts/gpu'); import configs
c = configs.BENCH_ESTIMATION['est_refine']; print(*c[:5])")
/work/main/build/bin/unisparse-compile --config="$CFG" --heads="$HQ" --kv-heads="$HKV" --head-dim="$D" --dtype="$DTYPE" --target=cuda -o $S/R/aot/libtune_refine_before_cuda.so
git rev-parse --short HEAD > $S/R/aot/COMMIT
W=/work/wt-refine3b; cd $W
python3 scripts/gpu/compile_all.py --out $S/R/aot3b --build $W/build --only tuning --names tune_refine tune_refine_staged
mv $S/R/aot3b/libtune_refine_staged_cuda.so $S/R/aot/; mv $S/R/aot3b/libtune_refine_cuda.so $S/R/aot/libtune_refine_3bbase_cuda.so; rm -rf $S/R/aot3b
python3 scripts/gpu/compile_all.py --out $S/R/aot_staged --build $W/build --only check --names slash_bf16_d128 slash_bf16_d128_first slash_h32_bf16_d128 slash_h32_bf16_d128_first --extra-flag=--refine-stage-candidates=true
git rev-parse --short HEAD > $S/R/aot_staged/COMMIT
cat >> $S/R/scripts/gpu/configs.py <<'PY'
# session 10 bundle: issue17-refine3b's libraries, timed in the same process
TUNING["tune_refine_staged"] = ("est_refine", ["--refine-stage-candidates=true"])
TUNING["tune_refine_3bbase"] = ("est_refine", [])
PY
du -sh $S $S/*
echo PREP DONE
