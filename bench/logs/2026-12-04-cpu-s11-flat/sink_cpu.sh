# Session 11 (issue 17): the sink block not forced (Config sink = false: block 0 competes in the top-p like any block;
# the first pass's hot key outlier still scores it), against the baseline, on the CPU (reference), 8K x 8 heads (Hkv
# 2), peak 2.5, seeds 0-2, both generators, tau 0.995 / 0.997; then 16K, seed 0. Plain harness (no patch). Also the
# seed-0 record of flat_refine.py's oracle with the probe rows' true masses (codes 19, 21) and the unguarded
# verification (7, 9).
cd "$(dirname "$0")/../../.."
L=bench/logs/2026-12-04-cpu-s11-flat
B=c_k=32,estimator=outlier,query_reduce=max,last_q=16,refine_norm=true
A="--n 8192 --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png ''"
for s in 0 1 2; do for g in peaked structured; do
  C=""; for t in 0.995 0.997; do C="$C --config $B,tau=$t --config $B,tau=$t,sink=false"; done
  eval PYTHONPATH=python nice python3 -m unisparse.fidelity $A --seed $s --generator $g $C > $L/sink_${g}_s${s}_n8192.txt 2>&1
done; done
for g in peaked structured; do
  C=""; for n in 16 23 25 35 37; do C="$C --config $B,tau=0.995,n_offsets=$n"; done
  eval PYTHONPATH=python nice python3 $L/flat_refine.py -- $A --seed 0 --generator $g $C > $L/verify_${g}_s0_n8192.txt 2>&1
done
A16="--n 16384 --heads 8 --kv-heads 2 --peak 2.5 --device cpu --png ''"
for g in peaked structured; do
  C=""; for t in 0.995 0.997; do C="$C --config $B,tau=$t --config $B,tau=$t,sink=false"; done
  eval PYTHONPATH=python nice python3 -m unisparse.fidelity $A16 --seed 0 --generator $g $C > $L/sink_${g}_s0_n16384.txt 2>&1
done
