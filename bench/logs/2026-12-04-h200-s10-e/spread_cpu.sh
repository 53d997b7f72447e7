cd /work/main
O=c_k=32,estimator=outlier,query_reduce=max,last_q=16
C=""; for t in 0.995 0.9951 0.9952 0.9953 0.997; do C="$C --config $O,tau=$t"; done
for g in peaked structured; do
SPREAD=forced PYTHONPATH=python timeout 1500 nice python3 bench/logs/2026-12-04-h200-s10-e/spread_select.py -- --n 8192 --heads 8 --kv-heads 2 --peak 2.5 --seed 0 --generator $g --png '' $C > bench/logs/2026-12-04-h200-s10-e/spread_forced_cpu_${g}_n8192.txt 2>&1
done
echo done > /tmp/kout/spread2.done
