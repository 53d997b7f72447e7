cd /work/main
O=estimator=outlier,query_reduce=max,tau=0.995,last_q=16
C="--config c_k=32,$O --config c_k=32,k_outliers=3,$O --config c_q=32,q_outliers=2,c_k=32,k_outliers=3,$O --config c_k=64,k_outliers=5,$O --config c_k=16,k_outliers=1,$O"
for g in peaked structured; do
PYTHONPATH=python timeout 1200 nice python3 -m unisparse.fidelity --n 8192 --heads 8 --kv-heads 2 --peak 2.5 --seed 0 --generator $g --png '' $C > /tmp/kout/$g.txt 2>&1
done
echo done >> /tmp/kout/structured.txt
