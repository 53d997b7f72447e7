# The vertical refinement on the CPU (reference), 8K x 8 heads, seed 0, peak 2.5, both generators.
cd /work/main
O=c_k=32,estimator=outlier,query_reduce=max,last_q=16,tau=0.995
C=""; for n in 16 20 21 22; do C="$C --config $O,n_offsets=$n"; done
for g in peaked structured; do
PYTHONPATH=python timeout 1500 nice python3 bench/logs/2026-12-04-h200-s10-e/vertical_refine.py -- --n 8192 --heads 8 --kv-heads 2 --peak 2.5 --seed 0 --generator $g --png '' $C > bench/logs/2026-12-04-h200-s10-e/vertical_cpu_${g}_n8192.txt 2>&1
done
