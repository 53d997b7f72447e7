"""Times the CPU estimation (compress + block_score + block_select) of a
configuration compiled by ``unisparse-compile --target=cpu``.

    PYTHONPATH=python python3 bench/bench_cpu_estimation.py [--n 8192] [--runs 3] [--estimators]

Prints one line per configuration: N, config, median / min wall seconds and
median process CPU seconds of ``CompiledCPU.layout`` (the estimation entry
point) on structured inputs (never zeros), after one warm-up call.
Single-threaded, as compiled; on a shared machine quote the CPU seconds.
"""

import argparse
import os
import time

# NumPy's BLAS threads would spin on the second core while the estimation runs.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from unisparse._memref import bf16_from_f32
from unisparse.config import Config
from unisparse.cpu import compile_cpu
from unisparse.synthetic import structured_qkv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[8192])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument(
        "--estimators",
        action="store_true",
        help="time the estimators of docs/Fidelity.md instead (mean, recommended, antidiag, the default)",
    )
    args = ap.parse_args()
    from unisparse.config import preset

    # mean pooling (the default until 2026-12-04: the names keep their meaning)
    configs = {
        "mean (c_q=16, c_k=8)": preset("mean"),
        "c=16": preset("mean", c_q=16, c_k=16),
        "c=16, c_h=2": preset("mean", c_q=16, c_k=16, c_h=2),
    }
    if args.estimators:
        from unisparse.config import PRESETS

        configs = {
            "mean (c_q=16, c_k=8)": preset("mean"),
            "recommended (outlier, max)": PRESETS["recommended"],
            "antidiag s=8 (XAttention)": preset("mean", c_q=8, c_k=8, estimator="antidiag"),
            "default (peaked: outlier, slash refinement)": Config(),
        }
    for n in args.n:
        q, k, _ = structured_qkv(1, args.heads, args.kv_heads, n, args.head_dim, seed=0, peak=1.5)[:3]
        if args.dtype == "bf16":
            q, k = bf16_from_f32(q.astype(np.float32)), bf16_from_f32(k.astype(np.float32))
        else:
            q, k = q.astype(np.float32), k.astype(np.float32)
        for name, cfg in configs.items():
            kern = compile_cpu(cfg, args.heads, args.kv_heads, args.head_dim, args.dtype)
            kern.layout(q, k)
            times, cpu = [], []
            for _ in range(args.runs):
                t0, c0 = time.perf_counter(), time.process_time()
                kern.layout(q, k)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            print(
                f"N={n} {name}: median {np.median(times):.3f} s, min {min(times):.3f} s, "
                f"cpu median {np.median(cpu):.3f} s "
                f"({args.runs} runs, B=1, {args.heads}/{args.kv_heads} heads, D={args.head_dim}, {args.dtype})",
                flush=True,
            )


if __name__ == "__main__":
    main()
