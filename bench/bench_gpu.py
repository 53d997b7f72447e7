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
import ctypes
import datetime
import os
import pathlib
import subprocess
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts" / "gpu"))
sys.path.insert(0, str(ROOT / "bench"))

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


def load_aot(name, entry):
    """(the compiled library `name` of $UNISPARSE_AOT_DIR, loaded after the
    runtime of $UNISPARSE_CUDA_RUNTIME; its config's fields) for a configs
    table entry (config, Hq, Hkv, D, dtype, targets)."""
    cfg, hq, hkv, d, _, _ = entry
    c = configs.parse_config(cfg)
    lib = gpu.load_compiled(
        pathlib.Path(os.environ["UNISPARSE_AOT_DIR"]) / configs.lib_name(name, "cuda"),
        runtime=os.environ["UNISPARSE_CUDA_RUNTIME"],
        heads=hq,
        kv_heads=hkv,
        head_dim=d,
        block=c["block"],
    )
    return lib, c


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
        return BlockMask.from_kv_blocks(
            torch.zeros_like(cnt), torch.zeros_like(idx), cnt, idx, BLOCK_SIZE=block, seq_lengths=(n, n)
        )
    rows = torch.arange(cnt.shape[-1], device=idx.device)[None, None, :, None]

    def pack(sel):  # the selected entries first, in ascending order
        order = torch.argsort((~sel).int(), dim=-1, stable=True)
        return sel.sum(-1).int().contiguous(), torch.gather(idx, -1, order).contiguous()

    pc, pi = pack(valid & (idx == rows))
    fc, fi = pack(valid & (idx < rows))
    return BlockMask.from_kv_blocks(
        pc, pi, fc, fi, BLOCK_SIZE=block, mask_mod=lambda b, h, qi, ki: qi >= ki, seq_lengths=(n, n)
    )


def visited_flops(counts, hq, n, block, d, causal):
    nb = counts.shape[-1]
    g = hq // counts.shape[1]
    blocks = counts.sum().item() * g
    if causal:  # diagonal blocks are half full
        blocks -= 0.5 * nb * counts.shape[0] * counts.shape[1] * g
    return 4.0 * blocks * block * block * d


def fa4_call(q, k, v, counts, indices, block, causal, dense):
    """FlashAttention-4 (`flash_attn.cute`, PyPI flash-attn-4) on the same
    problem, or None where it has no equivalent: [B, N, H, D] copies of q/k/v
    (GQA native); a full layout through its own causal flag (`dense`), a
    non-causal layout as FA4 block sparsity with every selected block full
    (no mask evaluated). Returns fn() -> O as [B, H, N, D]."""
    from flash_attn.cute import flash_attn_func
    from flash_attn.cute.block_sparsity import BlockSparseTensorsTorch

    qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))
    if dense:
        kwargs = dict(causal=causal)
    elif causal:
        return None
    else:
        kwargs = dict(
            block_sparse_tensors=BlockSparseTensorsTorch(
                mask_block_cnt=torch.zeros_like(counts),
                mask_block_idx=torch.zeros_like(indices),
                full_block_cnt=counts,
                full_block_idx=indices,
                block_size=(block, block),
            )
        )

    def run():
        out = flash_attn_func(qt, kt, vt, **kwargs)
        return (out[0] if isinstance(out, tuple) else out).transpose(1, 2)

    return run


KERNELS = {"sm90": 2, "mma_sync": 1}


def dense_problem(n, hq, hkv, d, causal, budget_ms=1500.0):
    """The inputs of one (N, D, causal) row of the kernel benchmarks, K/V
    repeated to Hq heads for SDPA, the dense FLOPs and cuDNN's time."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = structured(n, hq, hkv, d, seed=n + causal + d)
    kr, vr = k.repeat_interleave(hq // hkv, 1), v.repeat_interleave(hq // hkv, 1)
    dense_flops = 4.0 * hq * n * n * d * (0.5 if causal else 1.0)
    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        t_cudnn = time_ms(
            lambda: torch.nn.functional.scaled_dot_product_attention(q, kr, vr, is_causal=causal), budget_ms=budget_ms
        )
    return q, k, v, kr, vr, dense_flops, t_cudnn


def random_layout(hg, nb, density, causal, seed):
    """Random per-head layout of 128-blocks: each visible block kept with
    probability `density`, the sink (block 0) and the diagonal always kept;
    counts [1, Hg, NB], indices [1, Hg, NB, NB] ascending (tail unused)."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    sel = torch.rand(hg, nb, nb, device="cuda", generator=g) < density
    j = torch.arange(nb, device="cuda")
    sel |= (j[None, None, :] == 0) | (j[None, None, :] == j[None, :, None])
    if causal:
        sel &= j[None, None, :] <= j[None, :, None]
    counts = sel.sum(-1).int()
    key = torch.where(sel, j, nb + j)
    indices = (key.sort(-1).values % nb).int()
    return counts[None].contiguous(), indices[None].contiguous()


def kernel_bench(a):
    """The attention kernels alone on random per-head layouts (FA4's
    block-sparse benchmark setup): the sm_90a and the mma.sync kernel, cuDNN
    and FA2 dense, FlexAttention with the same layout; effective TFLOP/s
    over the visited blocks."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import flex_attention

    lib = gpu.load_runtime(os.environ["UNISPARSE_CUDA_RUNTIME"])
    flex = torch.compile(flex_attention, dynamic=False)
    hq, hkv, block = 32, 8, 128
    rows = []
    for d in a.head_dims:
        for n in a.n:
            for causal in (True, False):
                q, k, v, kr, vr, dense_flops, t_cudnn = dense_problem(n, hq, hkv, d, causal)
                t_fa2 = float("nan")
                if not a.no_fa2:
                    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                        t_fa2 = time_ms(
                            lambda: torch.nn.functional.scaled_dot_product_attention(q, kr, vr, is_causal=causal)
                        )
                for density in a.densities:
                    nb = (n + block - 1) // block
                    counts, indices = random_layout(hq, nb, density, causal, seed=n + int(density * 100))
                    flops = visited_flops(counts, hq, n, block, d, causal)
                    r = dict(
                        D=d,
                        N=n,
                        causal=causal,
                        density=flops / dense_flops,
                        cudnn=t_cudnn,
                        fa2=t_fa2,
                        cudnn_tflops=dense_flops / (t_cudnn * 1e-3) / 1e12,
                    )
                    outs = {}
                    for name, code in KERNELS.items():
                        if name not in a.kernels:
                            r[name] = float("nan")
                            continue
                        lib.unisparse_rt_set_cuda_attention_kernel(code)
                        outs[name] = gpu.block_sparse_attention(q, k, v, counts, indices, block, causal)[0]
                        assert lib.unisparse_rt_last_cuda_attention_kernel() == code, name
                        r[name] = time_ms(lambda: gpu.block_sparse_attention(q, k, v, counts, indices, block, causal))
                    lib.unisparse_rt_set_cuda_attention_kernel(0)
                    if "sm90" in outs and "mma_sync" in outs:
                        r["err"] = float(
                            (outs["sm90"].float() - outs["mma_sync"].float()).norm() / outs["mma_sync"].float().norm()
                        )
                    else:
                        r["err"] = float("nan")
                    r["flex"] = float("nan")
                    if not a.no_flex and (a.flex_n is None or n in a.flex_n):
                        bm = flex_layout(counts, indices, hq, n, block, causal)
                        r["flex"] = time_ms(lambda: flex(q, kr, vr, block_mask=bm))
                    for key in ("sm90", "mma_sync", "flex"):
                        r[key + "_tflops"] = flops / (r[key] * 1e-3) / 1e12
                    rows.append(r)
                    print(
                        f"d={d} N={n:6d} causal={causal!s:5} density={r['density']:.3f} | "
                        f"sm90 {r['sm90']:8.2f} ms ({r['sm90_tflops']:4.0f}) "
                        f"mma.sync {r['mma_sync']:8.2f} ms ({r['mma_sync_tflops']:4.0f}) "
                        f"Flex {r['flex']:8.2f} ms ({r['flex_tflops']:4.0f}) | cuDNN dense "
                        f"{t_cudnn:8.2f} ms ({r['cudnn_tflops']:4.0f}) FA2 {t_fa2:8.2f} ms | "
                        f"sm90 vs mma.sync rel L2 {r['err']:.1e}",
                        flush=True,
                    )
                q = k = v = kr = vr = None  # free the device memory before the next size
                torch.cuda.empty_cache()

    commit = (
        os.environ.get("UNISPARSE_COMMIT")
        or subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "?"
    )
    lines = [
        f"### {datetime.date.today()} — kernels alone, {torch.cuda.get_device_name()}, commit {commit}",
        "",
        f"Command: `{' '.join(sys.argv)}` (batch 1, Hq=32, Hkv=8, bf16, block 128, random "
        "per-head layouts with sink and diagonal kept; median of CUDA-event timings; TFLOP/s "
        "over visited blocks, dense for cuDNN/FA2)",
        "",
        "| D | N | causal | density | sm90 ms (TFLOP/s) | mma.sync ms (TFLOP/s) | Flex ms (TFLOP/s) "
        "| cuDNN dense ms (TFLOP/s) | FA2 dense ms | sm90 / cuDNN rate | sm90 vs mma.sync rel L2 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['D']} | {r['N']} | {r['causal']} | {r['density']:.3f} "
            f"| {r['sm90']:.2f} ({r['sm90_tflops']:.0f}) | {r['mma_sync']:.2f} ({r['mma_sync_tflops']:.0f}) "
            f"| {r['flex']:.2f} ({r['flex_tflops']:.0f}) | {r['cudnn']:.2f} ({r['cudnn_tflops']:.0f}) "
            f"| {r['fa2']:.2f} | {r['sm90_tflops'] / r['cudnn_tflops']:.2f} | {r['err']:.1e} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        pathlib.Path(a.out).write_text(text)
    if a.png:
        try:
            import plot_kernels

            plot_kernels.plot(rows, a.png)
        except Exception as e:  # the table is written; the plot can be redone from it
            print(f"no plot ({type(e).__name__}: {e}); run bench/plot_kernels.py on {a.out}")


def load_variant(path):
    """A runtime build loaded privately (RTLD_LOCAL | RTLD_DEEPBIND), so that
    several builds of the kernels can be timed in one process, each calling
    its own functions."""
    lib = ctypes.CDLL(str(path), mode=os.RTLD_LOCAL | os.RTLD_DEEPBIND)
    lib.unisparse_rt_set_cuda_attention_kernel.argtypes = [ctypes.c_int32]
    lib.unisparse_rt_last_cuda_attention_kernel.restype = ctypes.c_int32
    lib.unisparse_rt_last_error_message.restype = ctypes.c_char_p
    if not lib.unisparse_rt_has_cuda():
        raise RuntimeError(f"{path} was built without CUDA")
    lib.unisparse_rt_set_cuda_attention_kernel(KERNELS["sm90"])
    return lib


def variant_attention(lib, q, k, v, counts, indices, block, causal):
    """unisparse_rt_block_sparse_attention of one variant, on the current stream."""
    o = torch.empty_like(q)
    lse = torch.empty(q.shape[:3], device=q.device, dtype=torch.float32)
    ts = [gpu._runtime_tensor(t) for t in (q, k, v, counts, indices, o, lse)]
    params = gpu._Params(block, 1 if causal else 0, 0.0)
    status = lib.unisparse_rt_block_sparse_attention(
        *[ctypes.byref(t) for t in ts], ctypes.byref(params), ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    )
    if status != 0:
        raise RuntimeError(f"status {status}: {lib.unisparse_rt_last_error_message().decode()}")
    return o, lse


def variants_bench(a):
    """The sm_90a kernel of several runtime builds (--variants NAME=LIB ...)
    on the same inputs and layouts as kernel_bench, with cuDNN dense in the
    same run; each variant's output against the first one's (rel L2 of O, max
    |dLSE| over the rows that see a key)."""
    variants = []
    for spec in a.variants:
        name, path = spec.split("=", 1)
        variants.append((name, load_variant(path)))
    hq, hkv, block = 32, 8, 128
    rows = []
    for d in a.head_dims:
        for n in a.n:
            for causal in (True, False):
                q, k, v, kr, vr, dense_flops, t_cudnn = dense_problem(n, hq, hkv, d, causal, a.budget_ms)
                del kr, vr
                for density in a.densities:
                    nb = (n + block - 1) // block
                    counts, indices = random_layout(hq, nb, density, causal, seed=n + int(density * 100))
                    flops = visited_flops(counts, hq, n, block, d, causal)
                    r = dict(
                        D=d,
                        N=n,
                        causal=causal,
                        density=flops / dense_flops,
                        cudnn=t_cudnn,
                        cudnn_tflops=dense_flops / (t_cudnn * 1e-3) / 1e12,
                        ms={},
                        err={},
                    )
                    ref = None
                    for name, lib in variants:
                        o, lse = variant_attention(lib, q, k, v, counts, indices, block, causal)
                        assert lib.unisparse_rt_last_cuda_attention_kernel() == KERNELS["sm90"], name
                        if ref is None:
                            ref = (o.float(), lse)
                        seen = torch.isfinite(ref[1]) & torch.isfinite(lse)
                        r["err"][name] = (
                            float((o.float() - ref[0]).norm() / ref[0].norm()),
                            float((lse - ref[1])[seen].abs().max()),
                        )
                        del o, lse
                        r["ms"][name] = time_ms(
                            lambda: variant_attention(lib, q, k, v, counts, indices, block, causal),
                            budget_ms=a.budget_ms,
                        )
                    if a.fa4:
                        # dense rows only where the layout is full (density 1.0); block-sparse: non-causal
                        full = density >= 1.0
                        calls = [("fa4", True)] if causal and full else []
                        calls += [("fa4_bs", False)] + ([("fa4_dense", True)] if full else []) if not causal else []
                        for label, dense in calls:
                            fn = fa4_call(q, k, v, counts, indices, block, causal, dense)
                            o = fn().float()
                            r["err"][label] = (float((o - ref[0]).norm() / ref[0].norm()), float("nan"))
                            del o
                            r["ms"][label] = time_ms(fn, budget_ms=a.budget_ms)
                    r["tflops"] = {name: flops / (ms * 1e-3) / 1e12 for name, ms in r["ms"].items()}
                    del ref
                    rows.append(r)
                    print(
                        f"d={d} N={n:6d} causal={causal!s:5} density={r['density']:.3f} | cuDNN dense "
                        f"{t_cudnn:8.2f} ms ({r['cudnn_tflops']:4.0f}) | "
                        + " ".join(
                            f"{name} {r['ms'][name]:8.2f} ms ({r['tflops'][name]:4.0f}, "
                            f"{r['err'][name][0]:.1e}/{r['err'][name][1]:.1e})"
                            for name in r["ms"]
                        ),
                        flush=True,
                    )
                q = k = v = None  # free before the next size (the lambdas above name them)
                torch.cuda.empty_cache()

    commit = os.environ.get("UNISPARSE_COMMIT", "?")
    names = [name for name, _ in variants]
    if a.fa4:
        names += [m for m in ("fa4", "fa4_bs", "fa4_dense") if any(m in r["ms"] for r in rows)]
    lines = [
        f"### {datetime.date.today()} — sm_90a kernel variants, {torch.cuda.get_device_name()}, commit {commit}",
        "",
        f"Command: `{' '.join(sys.argv)}` (batch 1, Hq=32, Hkv=8, bf16, "
        "block 128, random per-head layouts with sink and diagonal kept; median of CUDA-event "
        "timings; TFLOP/s over visited blocks, dense for cuDNN; rel L2 of O / max |dLSE| "
        f"against {names[0]})",
        "",
        "| D | N | causal | density | cuDNN dense ms (TFLOP/s) | "
        + " | ".join(f"{name} ms (TFLOP/s)" for name in names)
        + " | "
        + " | ".join(f"{name} err" for name in names[1:])
        + " |",
        "|---" * (5 + len(names) + len(names) - 1) + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['D']} | {r['N']} | {r['causal']} | {r['density']:.3f} | {r['cudnn']:.2f} "
            f"({r['cudnn_tflops']:.0f}) | "
            + " | ".join(f"{r['ms'][m]:.2f} ({r['tflops'][m]:.0f})" if m in r["ms"] else "" for m in names)
            + " | "
            + " | ".join(f"{r['err'][m][0]:.1e} / {r['err'][m][1]:.1e}" if m in r["err"] else "" for m in names[1:])
            + " |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        pathlib.Path(a.out).write_text(text)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, nargs="*", default=[8192, 32768, 65536, 131072])
    p.add_argument("--out", default=None)
    p.add_argument("--no-flex", action="store_true")
    p.add_argument(
        "--kernels",
        nargs="*",
        default=None,
        help="benchmark the attention kernels alone (sm90, mma_sync) on random layouts",
    )
    p.add_argument("--densities", type=float, nargs="*", default=[0.1, 0.3, 1.0])
    p.add_argument("--head-dims", type=int, nargs="*", default=[128])
    p.add_argument("--no-fa2", action="store_true")
    p.add_argument("--png", default=None)
    p.add_argument(
        "--flex-n",
        type=int,
        nargs="*",
        default=None,
        help="run FlexAttention only at these N (each N compiles it anew)",
    )
    p.add_argument(
        "--variants",
        nargs="*",
        default=None,
        metavar="NAME=LIB",
        help="with --kernels: time the sm_90a kernel of these runtime builds "
        "(libunisparse_runtime.so paths) against each other and cuDNN",
    )
    p.add_argument(
        "--fa4",
        action="store_true",
        help="with --variants: FlashAttention-4 (flash_attn.cute) in the same run: dense causal at density 1.0 "
        "(fa4), non-causal block-sparse with the same layouts (fa4_bs), dense non-causal at density 1.0 (fa4_dense)",
    )
    p.add_argument(
        "--budget-ms", type=float, default=1500.0, help="timing budget per measurement (at least 3 timed runs)"
    )
    a = p.parse_args()
    if a.kernels is not None and a.variants:
        a.n = a.n if a.n != [8192, 32768, 65536, 131072] else [32768, 131072]
        return variants_bench(a)
    if a.kernels is not None:
        a.n = a.n if a.n != [8192, 32768, 65536, 131072] else [8192, 32768, 131072]
        return kernel_bench(a)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import flex_attention

    flex = torch.compile(flex_attention, dynamic=False)
    rows = []
    for causal, name in ((True, "bench_causal"), (False, "bench_noncausal")):
        cfg, hq, hkv, d, dtype, _ = configs.BENCH[name]
        lib, c = load_aot(name, configs.BENCH[name])
        block = c["block"]
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
                t_cudnn = time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, kr, vr, is_causal=causal))
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                t_fa2 = time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, kr, vr, is_causal=causal))
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
            rows.append(
                dict(
                    N=n,
                    causal=causal,
                    density=density,
                    est=t_est,
                    attn=t_attn,
                    e2e=t_e2e,
                    cudnn=t_cudnn,
                    fa2=t_fa2,
                    flex=t_flex,
                    eff=eff,
                    cudnn_tflops=dense_flops / (t_cudnn * 1e-3) / 1e12,
                )
            )
            r = rows[-1]
            print(
                f"N={n:6d} causal={causal!s:5} density={density:.3f} est={t_est:8.2f} ms "
                f"attn={t_attn:8.2f} ms ({eff:5.0f} TFLOP/s) e2e={t_e2e:8.2f} ms | "
                f"cuDNN {t_cudnn:8.2f} ms ({r['cudnn_tflops']:.0f}) FA2 {t_fa2:8.2f} ms "
                f"Flex {t_flex:8.2f} ms | e2e vs cuDNN {t_cudnn / t_e2e:5.2f}x, "
                f"attn vs Flex {t_flex / t_attn:5.2f}x",
                flush=True,
            )
            q = k = v = kr = vr = None  # free the device memory before the next size
            torch.cuda.empty_cache()

    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip() or os.environ.get("UNISPARSE_COMMIT", "?")
    lines = [
        f"### {datetime.date.today()} — {torch.cuda.get_device_name()}, commit {commit}",
        "",
        f"Command: `{' '.join(sys.argv)}` (batch 1, Hq=32, Hkv=8, d=128, bf16, "
        "block 128, c_q=c_k=16, tau=0.9; median of CUDA-event timings)",
        "",
        "| N | causal | density | estimation ms | attention ms | eff. TFLOP/s | end-to-end ms "
        "| cuDNN ms (TFLOP/s) | FA2 ms | Flex (same layout) ms | e2e vs cuDNN | attention vs Flex |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['N']} | {r['causal']} | {r['density']:.3f} | {r['est']:.2f} | {r['attn']:.2f} "
            f"| {r['eff']:.0f} | {r['e2e']:.2f} | {r['cudnn']:.2f} ({r['cudnn_tflops']:.0f}) "
            f"| {r['fa2']:.2f} | {r['flex']:.2f} | {r['cudnn'] / r['e2e']:.2f}x "
            f"| {r['flex'] / r['attn']:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        pathlib.Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
