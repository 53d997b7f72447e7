#!/usr/bin/env bash
# The per-row oracle's needle spans (row_oracle.py) on the fidelity runs of
# issue 17's targets: the project's generator, Hq 32 / Hkv 8, D 128, seeds
# 0-2, 32K and 128K, peak 1.5 and 2.5; logs beside this script.
set -euo pipefail
cd "$(dirname "$0")"
export PYTHONPATH=../../../python
for peak in 1.5 2.5; do
  for n in 32768 131072; do
    for s in 0 1 2; do
      python3 row_oracle.py $n 32 8 $s $peak 0.99 0.9965 0.999 0.9999 > oracle_p${peak}_n${n}_s${s}.txt
      tail -1 oracle_p${peak}_n${n}_s${s}.txt
    done
  done
done
