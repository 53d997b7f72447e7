"""The main job: compile a UniSparse attention end to end and run it.

    python -m unisparse.demo [--n 4096] [--heads 8] [--kv-heads 2] [--dim 64]
                             [--dtype bf16] [--tau 0.997] [--block 128] ...

The configuration is ``Config()`` (the peaked one: outlier composites and
the normalised slash refinement) with the fields given.

Generates structured Q/K/V (sinks, local windows, vertical and slash lines,
needle spans), compiles ``unisparse.attention`` through ``unisparse-to-cpu``
into a shared library, runs it, and prints the block density, the attention-
mass recall and the relative L2 error against dense attention (NumPy, float64)
and the time against the same compiled code at tau = 1 (dense).

Where a CUDA GPU and PyTorch are present (and the dtype is bf16 or f16) it runs
the CUDA path instead: the estimation compiled by ``unisparse-to-nvptx`` and
the runtime's attention kernel, timed with CUDA events.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time

import numpy as np

from . import reference as ref
from ._memref import bf16_from_f32, f32_from_bf16
from .config import Config
from .cpu import compile_cpu
from .synthetic import needle_hit_rate, structured_qkv


def _gpu_present() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _cuda_time(fn, repeats):
    """Median seconds of fn() with CUDA events, after a warm-up."""
    import torch

    fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return float(np.median(times))


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4096, help="sequence length")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=8, help="query heads")
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--dim", type=int, default=64, help="head dim")
    p.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="bf16")
    d = Config()  # the defaults (docs/Fidelity.md says why)
    p.add_argument("--block", type=int, default=d.block)
    p.add_argument("--c-q", type=int, default=d.c_q)
    p.add_argument("--c-k", type=int, default=d.c_k)
    p.add_argument("--c-h", type=int, default=d.c_h)
    p.add_argument("--tau", type=float, default=d.tau)
    p.add_argument("--local-blocks", type=int, default=d.local_blocks)
    p.add_argument("--needles", type=int, default=4)
    p.add_argument("--peak", type=float, default=1.5, help="how peaked attention is")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    cfg = Config(block=a.block, c_q=a.c_q, c_k=a.c_k, c_h=a.c_h, tau=a.tau, local_blocks=a.local_blocks)
    dense_cfg = Config(block=a.block, c_q=a.c_q, c_k=a.c_k, c_h=a.c_h, tau=1.0)
    device = "cuda" if _gpu_present() and _torch_cuda() and a.dtype != "f32" else "cpu"
    note = " (a GPU is present, but f32 runs on the CPU path)" if _gpu_present() and device == "cpu" else ""
    print(f"UniSparse demo on {device}{note}")
    print(f"  shape: B={a.batch} Hq={a.heads} Hkv={a.kv_heads} N={a.n} D={a.dim} {a.dtype}")
    print(f"  config: {cfg.mlir_attr()}")

    q, k, v, needles = structured_qkv(
        a.batch, a.heads, a.kv_heads, a.n, a.dim, seed=a.seed, peak=a.peak, needles=a.needles
    )
    if a.dtype == "bf16":
        qd, kd, vd = (bf16_from_f32(x) for x in (q, k, v))
        widen = f32_from_bf16
    else:
        npdt = np.float32 if a.dtype == "f32" else np.float16
        qd, kd, vd = (x.astype(npdt) for x in (q, k, v))
        widen = lambda x: x.astype(np.float64)  # noqa: E731
    q64, k64, v64 = (widen(x).astype(np.float64) for x in (qd, kd, vd))

    t0 = time.perf_counter()
    if device == "cuda":
        import torch

        from .api import compile as compile_any

        kern = compile_any(cfg, heads=a.heads, kv_heads=a.kv_heads, head_dim=a.dim, dtype=a.dtype, device="cuda")
        dense = compile_any(dense_cfg, heads=a.heads, kv_heads=a.kv_heads, head_dim=a.dim, dtype=a.dtype, device="cuda")
        print(f"  compiled unisparse-to-nvptx -> {kern.path.name} ({time.perf_counter() - t0:.1f} s)")
        tdt = torch.bfloat16 if a.dtype == "bf16" else torch.float16
        qt, kt, vt = (torch.from_numpy(x).to("cuda", tdt) for x in (q, k, v))
        o, _ = kern.attention(qt, kt, vt)
        _, counts_t, indices_t = kern.layout(qt, kt)
        o = o.float().cpu().numpy()
        counts, indices = counts_t.cpu().numpy(), indices_t.cpu().numpy()
        widen = lambda x: x.astype(np.float64)  # noqa: E731
        t_sparse = _cuda_time(lambda: kern.attention(qt, kt, vt), a.repeats)
        t_dense = _cuda_time(lambda: dense.attention(qt, kt, vt), a.repeats)
    else:
        kern = compile_cpu(cfg, a.heads, a.kv_heads, a.dim, a.dtype)
        dense = compile_cpu(dense_cfg, a.heads, a.kv_heads, a.dim, a.dtype)
        print(f"  compiled unisparse-to-cpu -> {kern.lib_path.name} ({time.perf_counter() - t0:.1f} s)")
        o, _ = kern.attention(qd, kd, vd)
        _, counts, indices = kern.layout(qd, kd)
        t_sparse = _median_time(lambda: kern.attention(qd, kd, vd), a.repeats)
        t_dense = _median_time(lambda: dense.attention(qd, kd, vd), a.repeats)

    o_ref, _ = ref.dense_attention(q64, k64, v64, causal=True)
    err = ref.relative_l2(widen(o).astype(np.float64), o_ref)
    recall = ref.attention_recall(q64, k64, counts, indices, cfg.block, causal=True)
    r_mean, r_p1 = ref.recall_summary(recall)
    dens = ref.density(counts, a.n, cfg.block, causal=True)
    hits = needle_hit_rate(needles, counts, indices, cfg.block, a.heads) if needles else float("nan")

    print(f"  density        {dens:.3f} of the causal block grid")
    print(f"  recall         mean {r_mean:.4f}, 1st percentile {r_p1:.4f}")
    print(f"  needle spans   {hits * 100:.1f}% kept")
    print(f"  rel L2 vs dense {err:.3e}  (float64 NumPy dense attention)")
    print(
        f"  time           {t_sparse * 1e3:.1f} ms sparse vs {t_dense * 1e3:.1f} ms dense "
        f"(tau = 1, same compiled path), median of {a.repeats}: {t_dense / t_sparse:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
