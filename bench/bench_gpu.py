"""GPU benchmark: UniSparse estimation and attention vs dense and sparse baselines.

Times, in one run on one GPU, at N = 8K, 32K, 64K, 128K (batch 1, 32 query /
8 kv heads, d = 128, bf16, causal and non-causal, default config):
  - estimation: the compiled compress + block_score + block_select (@layout);
  - attention: the runtime's block-sparse kernel on that layout;
  - end to end: the compiled @attention (estimation + attention);
  - cuDNN SDPA and FlashAttention-2 (SDPA flash backend), dense;
  - FlexAttention (torch.compile) with the same block layout.
Median of repeated CUDA-event timings after warm-up, on fresh structured
random inputs (never zeros). FLOPs: 4*B*Hq*N^2*D, halved for causal; sparse
kernels report effective TFLOP/s over the visited blocks. Prints a table and
writes it (with the device, commit and command) as Markdown to --out.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import subprocess
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts" / "gpu"))

import configs  # noqa: E402
from unisparse import gpu  # noqa: E402


def time_ms(fn, min_reps=3, budget_ms=1500.0):
    """Median time of fn() in ms with CUDA events, after one warm-up."""
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    one = start.elapsed_time(end)
    reps = max(min_reps, min(50, int(budget_ms / max(one, 1e-3))))
    times = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def structured(n, hq, hkv, d, seed):
    """Structured inputs built on the GPU (sink, local, vertical lines)."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    q = torch.randn(1, hq, n, d, device="cuda", generator=g)
    k = torch.randn(1, hkv, n, d, device="cuda", generator=g) * 0.5
    v = torch.randn(1, hkv, n, d, device="cuda", generator=g)
    sink = torch.randn(d, device="cuda", generator=g)
    sink = sink / sink.norm()
    q += 1.5 * sink
    k[:, :, :4] += 6.0 * sink
    pos = torch.arange(n, device="cuda", dtype=torch.float32)[:, None]
    freq = torch.exp(-torch.arange(d // 4, device="cuda") / (d // 4) * 6.0)
    feat = torch.cat([torch.sin(pos * freq), torch.cos(pos * freq)], dim=1) * 0.6
    q[..., : d // 2] += feat
    k[..., : d // 2] += feat
    lines = torch.randint(0, n, (8,), device="cuda", generator=g)
    k[:, :, lines] += 4.0 * sink
    return (x.to(torch.bfloat16).contiguous() for x in (q, k, v))


def flex_layout(counts, indices, hq, n, block, causal):
    """FlexAttention's best use of our layout: off-diagonal blocks as full
    blocks (no mask evaluated), the diagonal as a partial block with the
    causal mask; the compiled kernel visits only the listed blocks."""
    from torch.nn.attention.flex_attention import BlockMask

    g = hq // counts.shape[1]
    cnt = counts.repeat_interleave(g, 1).int().contiguous()
    idx = indices.repeat_interleave(g, 1).int().clamp_min(0).contiguous()
    valid = torch.arange(idx.shape[-1], device=idx.device) < cnt[..., None]
    if not causal:  # every selected block is full; rows are already packed
        return BlockMask.from_kv_blocks(torch.zeros_like(cnt), torch.zeros_like(idx), cnt, idx,
                                        BLOCK_SIZE=block, seq_lengths=(n, n))
    rows = torch.arange(cnt.shape[-1], device=idx.device)[None, None, :, None]

    def pack(sel):  # the selected entries first, in ascending order
        order = torch.argsort((~sel).int(), dim=-1, stable=True)
        return sel.sum(-1).int().contiguous(), torch.gather(idx, -1, order).contiguous()

    pc, pi = pack(valid & (idx == rows))
    fc, fi = pack(valid & (idx < rows))
    return BlockMask.from_kv_blocks(pc, pi, fc, fi, BLOCK_SIZE=block,
                                    mask_mod=lambda b, h, qi, ki: qi >= ki, seq_lengths=(n, n))


def visited_flops(counts, hq, n, block, d, causal):
    nb = counts.shape[-1]
    g = hq // counts.shape[1]
    blocks = counts.sum().item() * g
    if causal:  # diagonal blocks are half full
        blocks -= 0.5 * nb * counts.shape[0] * counts.shape[1] * g
    return 4.0 * blocks * block * block * d


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, nargs="*", default=[8192, 32768, 65536, 131072])
    p.add_argument("--out", default=None)
    p.add_argument("--no-flex", action="store_true")
    a = p.parse_args()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import flex_attention

    flex = torch.compile(flex_attention, dynamic=False)
    rows = []
    for causal, name in ((True, "bench_causal"), (False, "bench_noncausal")):
        cfg, hq, hkv, d, dtype, _ = configs.BENCH[name]
        c = configs.parse_config(cfg)
        block = c["block"]
        lib = gpu.load_compiled(pathlib.Path(os.environ["UNISPARSE_AOT_DIR"]) / configs.lib_name(name, "cuda"),
                                runtime=os.environ["UNISPARSE_CUDA_RUNTIME"], heads=hq, kv_heads=hkv,
                                head_dim=d, block=block)
        for n in a.n:
            q, k, v = structured(n, hq, hkv, d, seed=n + causal)
            kr, vr = k.repeat_interleave(hq // hkv, 1), v.repeat_interleave(hq // hkv, 1)
            _, counts, indices = lib.layout(q, k)
            torch.cuda.synchronize()
            dense_flops = 4.0 * hq * n * n * d * (0.5 if causal else 1.0)
            density = visited_flops(counts, hq, n, block, d, causal) / dense_flops
            t_est = time_ms(lambda: lib.layout(q, k), min_reps=3)
            t_attn = time_ms(lambda: gpu.block_sparse_attention(q, k, v, counts, indices, block, causal))
            t_e2e = time_ms(lambda: lib.attention(q, k, v), min_reps=3)
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                t_cudnn = time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(
                    q, kr, vr, is_causal=causal))
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                t_fa2 = time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(
                    q, kr, vr, is_causal=causal))
            t_flex = float("nan")
            if not a.no_flex:
                bm = flex_layout(counts, indices, hq, n, block, causal)
                t_flex = time_ms(lambda: flex(q, kr, vr, block_mask=bm))
                # Same function? (compiled Flex visits only the listed blocks)
                o_ours, _ = gpu.block_sparse_attention(q, k, v, counts, indices, block, causal)
                o_flex = flex(q, kr, vr, block_mask=bm)
                flex_err = float((o_ours.float() - o_flex.float()).norm() / o_flex.float().norm())
                print(f"  Flex vs UniSparse output rel L2 {flex_err:.2e}", flush=True)
            eff = visited_flops(counts, hq, n, block, d, causal) / (t_attn * 1e-3) / 1e12
            rows.append(dict(N=n, causal=causal, density=density, est=t_est, attn=t_attn,
                             e2e=t_e2e, cudnn=t_cudnn, fa2=t_fa2, flex=t_flex, eff=eff,
                             cudnn_tflops=dense_flops / (t_cudnn * 1e-3) / 1e12))
            r = rows[-1]
            print(f"N={n:6d} causal={causal!s:5} density={density:.3f} est={t_est:8.2f} ms "
                  f"attn={t_attn:8.2f} ms ({eff:5.0f} TFLOP/s) e2e={t_e2e:8.2f} ms | "
                  f"cuDNN {t_cudnn:8.2f} ms ({r['cudnn_tflops']:.0f}) FA2 {t_fa2:8.2f} ms "
                  f"Flex {t_flex:8.2f} ms | e2e vs cuDNN {t_cudnn / t_e2e:5.2f}x, "
                  f"attn vs Flex {t_flex / t_attn:5.2f}x", flush=True)
            del q, k, v, kr, vr
            torch.cuda.empty_cache()

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or os.environ.get("UNISPARSE_COMMIT", "?")
    lines = [f"### {datetime.date.today()} — {torch.cuda.get_device_name()}, commit {commit}",
             "", f"Command: `{' '.join(sys.argv)}` (batch 1, Hq=32, Hkv=8, d=128, bf16, "
             "block 128, c_q=c_k=16, tau=0.9; median of CUDA-event timings)", "",
             "| N | causal | density | estimation ms | attention ms | eff. TFLOP/s | end-to-end ms "
             "| cuDNN ms (TFLOP/s) | FA2 ms | Flex (same layout) ms | e2e vs cuDNN | attention vs Flex |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['N']} | {r['causal']} | {r['density']:.3f} | {r['est']:.2f} | {r['attn']:.2f} "
                     f"| {r['eff']:.0f} | {r['e2e']:.2f} | {r['cudnn']:.2f} ({r['cudnn_tflops']:.0f}) "
                     f"| {r['fa2']:.2f} | {r['flex']:.2f} | {r['cudnn'] / r['e2e']:.2f}x "
                     f"| {r['flex'] / r['attn']:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        pathlib.Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
