"""Where the slash refinement's GPU scores differ from the CPU path's (the
libraries of d3e0d51, compiled before the GPU pipeline refused the op):
per (batch, head group, query block, key block), twice on the GPU (a race
shows as two different GPU results)."""

import os
import pathlib
import sys

import numpy as np
import torch

sys.path[:0] = ["scripts/gpu", "python"]
import check  # noqa: E402

from unisparse import gpu  # noqa: E402
from unisparse.config import Config  # noqa: E402
from unisparse.cpu import CompiledCPU  # noqa: E402

cfg = "block=128,c_q=8,c_k=8,tau=0.95,estimator=antidiag_lse,query_reduce=max,refine=slash,last_q=16"
c = check.configs.parse_config(cfg)
aot = pathlib.Path(os.environ["UNISPARSE_AOT_DIR"])
name = "slash_antidiag_lse_bf16_d128"
lib = gpu.load_compiled(
    aot / f"lib{name}_cuda.so",
    runtime=os.environ["UNISPARSE_CUDA_RUNTIME"],
    heads=8,
    kv_heads=2,
    head_dim=128,
    block=128,
)
cpu = CompiledCPU(Config(**c), 8, 2, 128, "bf16", aot / f"lib{name}_cpu.so")
for n, seed in ((1000, 3), (1000, 4), (2048, 5), (4096, 6)):
    q, k, v = check.inputs(8, 2, n, 128, "bf16", seed)
    s1 = lib.layout(q, k)[0].cpu().numpy()
    s2 = lib.layout(q, k)[0].cpu().numpy()
    as_np = lambda t: t.view(torch.int16).cpu().numpy().view(np.uint16)  # noqa: E731
    sc = cpu.layout(as_np(q), as_np(k))[0]
    d = np.abs(s1 - sc)
    print(f"N={n} seed={seed}: GPU run-to-run max |diff| {np.abs(s1 - s2).max():.3e}; GPU vs CPU max {d.max():.3e}")
    bad = np.argwhere(d > 1e-3 * (np.abs(sc) + 1e-6) + 1e-6)
    print(
        f"  {len(bad)} of {d.size} entries differ; by (batch, group): "
        f"{sorted(set(map(tuple, bad[:, :2].tolist())))[:16]}"
    )
    rows = sorted(set(map(tuple, bad[:, :3].tolist())))
    print(f"  rows (b, g, I): {rows[:12]}{' ...' if len(rows) > 12 else ''}")
    for b, g, i, j in bad[:6]:
        print(
            f"  [{b},{g},{i},{j}] gpu {s1[b, g, i, j]:.5f} cpu {sc[b, g, i, j]:.5f}; "
            f"row gpu {np.round(s1[b, g, i, : i + 1], 3)} cpu {np.round(sc[b, g, i, : i + 1], 3)}"
        )
