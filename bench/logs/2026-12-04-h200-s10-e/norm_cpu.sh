# The normalised refinement (vertical_refine.py, n_offsets = 20) against the merged one (16) on the CPU (reference),
# 8K x 8 heads, peak 2.5, seeds 1 and 2, both generators, tau 0.995 / 0.997.
cd /work/main
O=c_k=32,estimator=outlier,query_reduce=max,last_q=16
C=""; for t in 0.995 0.997; do for n in 16 20; do C="$C --config $O,tau=$t,n_offsets=$n"; done; done
for s in 1 2; do for g in peaked structured; do
PYTHONPATH=python timeout 1500 nice python3 bench/logs/2026-12-04-h200-s10-e/vertical_refine.py -- --n 8192 --heads 8 --kv-heads 2 --peak 2.5 --seed $s --generator $g --png '' $C > bench/logs/2026-12-04-h200-s10-e/norm_cpu_${g}_s${s}_n8192.txt 2>&1
done; done
