"""GPU benchmark of the estimation alone (compress + block_score +
block_select, the compiled ``@layout`` of ``unisparse-to-nvptx``), next to a
plain unfused PyTorch estimator (pool, bf16 QKᵀ on composites, fp32 softmax,
block sums; no selection) on the same inputs.

    UNISPARSE_CUDA_RUNTIME=... UNISPARSE_AOT_DIR=... \\
        python3 bench/bench_gpu_estimation.py [--n 8192 32768 131072]

The libraries are configs.BENCH_ESTIMATION (scripts/gpu/compile_all.py
--only estimation). Batch 1, 32 query / 8 kv heads, head dim 128, bf16,
causal; median of CUDA-event timings (bench_gpu.time_ms).
"""

import argparse
import os
import pathlib
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts" / "gpu"))
sys.path.insert(0, str(ROOT / "bench"))

import configs  # noqa: E402
from bench_gpu import structured, time_ms  # noqa: E402

from unisparse import gpu  # noqa: E402


def torch_estimator(q, k, block, cq, ck):
    """Unfused PyTorch estimation of block scores (causal): the baseline the
    compiled estimation is measured against (mean pooling, one QKᵀ of the
    composites, softmax, block sums)."""
    b, hq, n, d = q.shape
    g = hq // k.shape[1]
    tq, tk = -(-n // cq), -(-n // ck)
    qp = torch.nn.functional.pad(q, (0, 0, 0, tq * cq - n)).view(b, hq, tq, cq, d).float().sum(3)
    qp = (qp / torch.clamp(n - torch.arange(tq, device=q.device) * cq, max=cq)[:, None]).bfloat16()
    kp = torch.nn.functional.pad(k, (0, 0, 0, tk * ck - n)).view(b, k.shape[1], tk, ck, d).float().sum(3)
    kp = (kp / torch.clamp(n - torch.arange(tk, device=q.device) * ck, max=ck)[:, None]).bfloat16()
    kp = kp.repeat_interleave(g, 1)
    logits = (qp @ kp.transpose(-1, -2)).float() * d**-0.5
    t = torch.arange(tq, device=q.device)[:, None]
    u = torch.arange(tk, device=q.device)[None, :]
    logits.masked_fill_(u * ck > (t + 1) * cq - 1, float("-inf"))
    p = torch.softmax(logits, -1)
    rq, rk = block // cq, block // ck
    nb = -(-n // block)
    p = torch.nn.functional.pad(p, (0, nb * rk - tk, 0, nb * rq - tq))
    return p.view(b, hq, nb, rq, nb, rk).sum((3, 5))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="*", default=[8192, 32768, 131072])
    a = ap.parse_args()
    print(torch.cuda.get_device_name(), flush=True)
    for name, (cfg, hq, hkv, d, dtype, _) in configs.BENCH_ESTIMATION.items():
        c = configs.parse_config(cfg)
        lib = gpu.load_compiled(
            pathlib.Path(os.environ["UNISPARSE_AOT_DIR"]) / configs.lib_name(name, "cuda"),
            runtime=os.environ["UNISPARSE_CUDA_RUNTIME"],
            heads=hq,
            kv_heads=hkv,
            head_dim=d,
            block=c["block"],
        )
        for n in a.n:
            q, k, _ = structured(n, hq, hkv, d, seed=n)
            try:
                t_est = time_ms(lambda: lib.layout(q, k), min_reps=3, budget_ms=500.0)
            except Exception as e:  # report and go on (e.g. out of memory)
                t_est = float("nan")
                print(f"  {name} N={n}: {type(e).__name__}: {e}", flush=True)
            t_torch = time_ms(
                lambda: torch_estimator(q, k, c["block"], c["c_q"], c["c_k"]), min_reps=3, budget_ms=500.0
            )
            print(
                f"{name} ({cfg}) N={n}: compiled estimation {t_est:.2f} ms, unfused PyTorch {t_torch:.2f} ms",
                flush=True,
            )
            q = k = None  # free the device memory before the next size
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
