"""GPU checks of the compiled CUDA path against PyTorch, on fresh structured inputs.

Run on a GPU machine by run.sh, after the runtime is built there with CUDA and
the libraries of configs.py were compiled (prepare.sh) and carried over:

  1. the layout computed by the compiled GPU estimation equals the one the
     selection rule gives on the GPU's own scores (exact), the GPU scores
     match the CPU path's, and the GPU layout equals the CPU path's layout
     on the same inputs (rows that differ must be ties of the threshold,
     counted and printed);
  2. at tau = 1 the output matches torch SDPA (dense) by relative L2 at bf16
     tolerance, and the LSE matches;
  3. under the sparse layout the output matches FlexAttention given the same
     block layout, and a float64 reference restricted to the layout;
  4. every output element was written (outputs are poisoned first), and a
     CUDA-graph capture of the whole call replays to the same result;
  5. the attention_layout entry returns, bit for bit, the attention's output
     and the layout entry's layout (one estimation for both).
Prints one line per check and "N passed, M failed"; exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pathlib
import sys

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts" / "gpu"))

import configs  # noqa: E402

from unisparse import gpu  # noqa: E402
from unisparse import reference as ref  # noqa: E402
from unisparse.synthetic import structured_qkv  # noqa: E402

results = []


def record(name, ok, detail=""):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


def rel_l2(x, y):
    x, y = x.double(), y.double()
    return float((x - y).norm() / y.norm())


def flex_block_mask(counts, indices, hq, n, block, causal):
    """A FlexAttention BlockMask with exactly the given layout (per query head).

    The mask_mod itself encodes the layout: FlexAttention's eager (unfused)
    path evaluates only mask_mod over the full matrix, while the compiled
    kernel also skips the blocks the BlockMask does not list; with the layout
    in mask_mod both compute the same function."""
    from torch.nn.attention.flex_attention import BlockMask

    g = hq // counts.shape[1]
    nb = counts.shape[-1]
    cnt = counts.repeat_interleave(g, dim=1).int().contiguous()
    idx = indices.repeat_interleave(g, dim=1).clamp_min(0).int().contiguous()
    keep = torch.zeros(counts.shape[0], hq, nb, nb + 1, dtype=torch.bool, device=counts.device)
    valid = torch.arange(indices.shape[-1], device=counts.device) < cnt[..., None]
    keep.scatter_(-1, torch.where(valid, idx.long(), nb), True)
    keep = keep[..., :nb].contiguous()

    def mask_mod(b, h, q_idx, kv_idx):
        inside = keep[b, h, q_idx // block, kv_idx // block]
        return inside & (q_idx >= kv_idx) if causal else inside

    return BlockMask.from_kv_blocks(cnt, idx, BLOCK_SIZE=block, mask_mod=mask_mod, seq_lengths=(n, n))


def load(name, target="cuda"):
    cfg, hq, hkv, d, dtype, _ = configs.CHECK.get(name) or configs.BENCH[name]
    c = configs.parse_config(cfg)
    path = pathlib.Path(os.environ["UNISPARSE_AOT_DIR"]) / configs.lib_name(name, target)
    if target == "cuda":
        lib = gpu.load_compiled(
            path,
            runtime=os.environ["UNISPARSE_CUDA_RUNTIME"],
            heads=hq,
            kv_heads=hkv,
            head_dim=d,
            block=c["block"],
            c_h=c.get("c_h", 1),
        )
    else:
        from unisparse.config import Config
        from unisparse.cpu import CompiledCPU

        # The CPU kernels live in the runtime library loaded already.
        lib = CompiledCPU(Config(**c), hq, hkv, d, dtype, path)
    return lib, c, hq, hkv, d, dtype


def inputs(hq, hkv, n, d, dtype, seed, batch=2):
    q, k, v = structured_qkv(batch, hq, hkv, n, d, seed=seed, peak=1.5)[:3]
    tdt = torch.bfloat16 if dtype == "bf16" else torch.float16
    return [torch.from_numpy(x).to("cuda", tdt) for x in (q, k, v)]


def selection_fields(c):
    """The selection's fields of config fields `c`, as keyword arguments."""
    return {f: c[f] for f in ("tau", "local_blocks", "sink", "min_blocks", "max_blocks", "causal")}


def reference_selection(scores, c):
    """The reference's block selection of `scores` under config fields `c`."""
    return ref.block_select(scores, **selection_fields(c))


def composites16(x, sf, hf, kvg, dtype):
    """The compiled compress, emulated: f32 sums (heads outer, tokens inner,
    ascending), divided by the count in f32, rounded to `dtype` (bf16/f16)
    once. [B, H * kvg / hf, ceil(N / sf), D] on the GPU."""
    b, h, n, d = x.shape
    e = h * kvg
    src = torch.arange(e, device=x.device).reshape(e // hf, hf) // kvg
    t = -(-n // sf)
    pad = t * sf - n
    xf = torch.nn.functional.pad(x.float(), (0, 0, 0, pad)).view(b, h, t, sf, d)
    acc = torch.zeros(b, e // hf, t, d, device=x.device, dtype=torch.float32)
    for j in range(hf):
        xs = xf[:, src[:, j]]
        for w in range(sf):
            acc = acc + xs[:, :, :, w]
    cnt = torch.clamp(n - torch.arange(t, device=x.device) * sf, max=sf).float() * hf
    return (acc / cnt[:, None]).to(dtype)


def composites16_strided(x, stride, hf, kvg, reverse, dtype):
    """The antidiagonal estimators' compiled compress, emulated: heads pooled
    as composites16 does (f32, one token a composite), rounded to `dtype`
    once, zero-padded to T * stride tokens and viewed as
    [B, G, T, stride, D], slots reversed for the queries."""
    xh = composites16(x, 1, hf, kvg, torch.float32).to(dtype)
    b, g, n, d = xh.shape
    t = -(-n // stride)
    xs = torch.nn.functional.pad(xh, (0, 0, 0, t * stride - n)).view(b, g, t, stride, d)
    return xs.flip(3) if reverse else xs


def estimator_composites(q, k, c, hq, hkv, dtype):
    """The composites the compiled estimation scores for config fields `c`
    (mean: [B, G, T, D]; antidiagonal: [B, G, T, s, D]), in `dtype`."""
    ch = c.get("c_h", 1)
    if c["estimator"] == "mean":
        return (composites16(q, c["c_q"], ch, 1, dtype), composites16(k, c["c_k"], ch, hq // hkv, dtype))
    return (
        composites16_strided(q, c["c_q"], ch, 1, True, dtype),
        composites16_strided(k, c["c_k"], ch, hq // hkv, False, dtype),
    )


def estimator_logit_bound(qc, kc, c, scale, unit_of_length):
    """A bound on the logit error of config `c`'s estimator when each product
    of the dot products it sums carries a relative error of at most
    `unit_of_length(K)`, K the length of those dot products. mean: x = scale
    qc . kc (K = D). antidiag: x = scale / s * sum_a qc_a . kc_a, one dot
    product of K = s D. antidiag_lse: the log-mean-exp of the slot logits
    scale * qc_a . kc_a (K = D each); the log-mean-exp moves by at most the
    largest move of its arguments, and sum_{a, d} |q| |k| bounds each
    slot's sum_d |q| |k|."""
    if c["estimator"] == "mean":
        return logit_error_bound(qc, kc, scale, unit_of_length(qc.shape[-1]))
    b, g, t, s, d = qc.shape
    qf, kf = qc.reshape(b, g, t, s * d), kc.reshape(kc.shape[0], kc.shape[1], kc.shape[2], s * d)
    if c["estimator"] == "antidiag":
        return logit_error_bound(qf, kf, scale / s, unit_of_length(s * d))
    return logit_error_bound(qf, kf, scale, unit_of_length(d))


def outlier_composites(q, k, c, hq, hkv):
    """The outlier estimator's composites (unisparse.reference.outlier, in
    float64 on the host: the queries with their spread slot, the keys with
    one hot and k_outliers - 1 rare outliers), as the CPU path computes
    them; torch float64 tensors."""
    from unisparse.reference import outlier

    ch = c.get("c_h", 1)
    q64, k64 = q.double().cpu().numpy(), k.double().cpu().numpy()
    qc = outlier.compress_outlier(q64, c["c_q"], c["q_outliers"], head_factor=ch, spread=True)
    kc = outlier.compress_outlier(
        k64, c["c_k"], c["k_outliers"], head_factor=ch, kv_group=hq // hkv, hot=1, queries=q64
    )
    return torch.from_numpy(qc), torch.from_numpy(kc)


def gpu_outlier_composites(q, k, c, hq, hkv, dtype):
    """The composites the GPU's outlier compress kernels give the scoring
    kernel (the entries of scripts/gpu/outlier_compress_entry.mlir: the
    queries' slots in bf16 as the pipeline writes them, the keys' f32 slots
    rounded once to bf16, which check_outlier_compress checks bit for bit
    for the queries' entry), as float64 torch tensors; None when the
    configuration is not the entries' (the default's composites at D 128,
    bf16 and at D 64, f16, c_h 1, 4 query heads a kv head) or the library is not in the AOT
    directory. A reference composite and the GPU's can differ entirely
    where two tokens' distances nearly tie (the kernels sum in another
    order: check_outlier_compress counts those picks), so "the same
    composites" must be the GPU's own."""
    from unisparse import _build

    preset = dict(c_q=16, q_outliers=1, c_k=32, k_outliers=2)
    entries = {
        ("bf16", 128): ("oc_q_bf16_d128_out16", "oc_k_bf16_d128"),
        ("f16", 64): ("oc_q_f16_d64_out16", "oc_k_f16_d64"),
    }
    names = entries.get((dtype, q.shape[-1]))
    if names is None or c.get("c_h", 1) != 1 or hq != 4 * hkv:
        return None
    if any(c[key] != val for key, val in preset.items()):
        return None
    target = "cuda" if q.is_cuda else "cpu"  # cpu: a dry run of the check's code
    path = pathlib.Path(os.environ["UNISPARSE_AOT_DIR"]) / configs.lib_name("outlier_compress", target)
    if not path.exists():
        return None
    lib = _build.load_library(path)
    b, _, n, d = q.shape
    out = []
    for name, x, extra, slots, odt in (
        (names[0], q, [], 3, torch.bfloat16),
        (names[1], k, [q], 3, torch.float32),
    ):
        fn = getattr(lib, "_mlir_ciface_" + name)
        fn.restype = None
        t = -(-n // (16 if x is q else 32))
        o = torch.full((b, hq, t, slots, d), float("nan"), device=q.device, dtype=odt)
        if q.is_cuda:
            gpu.call_entry(fn, [x, *extra, o])
            torch.cuda.synchronize()
        else:
            buf, addresses = gpu.packed_descriptors([x, *extra, o])
            fn(*map(ctypes.c_void_p, addresses))
            del buf
        out.append(o.to(torch.bfloat16).double().cpu())
    return out[0], out[1]


def outlier_logit_bound(qc, kc, scale, unit, spread_rel, p_rel=0.0):
    """A bound on the move of the outlier estimator's corrected logits y = x
    + sig (1 - 2 p) / 2 (sig = scale^2 v |k|^2, p = softmax(x)) when each
    product of the slot dot products (K = D) carries a relative error of at
    most `unit`, sig one of at most `spread_rel` and the exponential of p
    one of at most `p_rel`: x moves by at most dx (logit_error_bound over
    every query slot row and key slot), p by a factor within e^(+-2 dx) (1
    +- p_rel), so y by at most dx + sig_max (e^(2 dx) - 1) + sig_max
    spread_rel / 2 + sig_max p_rel (p <= 1), sig_max = scale^2 max v max
    |k|^2 per head group [B, Hg]."""
    b, g, t, sq, d = qc.shape
    rows = qc[:, :, :, : sq - 1].reshape(b, g, t * (sq - 1), d)
    keys = kc.reshape(kc.shape[0], kc.shape[1], -1, d)
    dx = logit_error_bound(rows, keys, scale, unit)
    v = qc[:, :, :, sq - 1].double().mean(-1).amax(-1)
    knorm = (kc.double() ** 2).sum(-1).flatten(2).amax(-1)
    sig = (scale * scale * v * knorm).cpu().numpy()
    return dx + sig * np.expm1(2 * dx) + sig * spread_rel / 2 + sig * p_rel


def logit_error_bound(qc, kc, scale, unit):
    """A bound on |x' - x| of the logits x = scale * qc . kc when each
    product q_d k_d carries a relative error of at most `unit`: scale * unit
    * max over (t, u) of sum_d |q_d| |k_d|, per head group [B, Hg] (an f32
    GEMM of the absolute values, rounded up by 1%)."""
    a = qc.float().abs()
    bmat = kc.float().abs()
    m = torch.stack(
        [torch.stack([(a[i, g] @ bmat[i, g].T).amax() for g in range(a.shape[1])]) for i in range(a.shape[0])]
    )
    return (scale * unit * 1.01 * m.double()).cpu().numpy()


def score_tolerance(s, dx, extra_rel=0.0, extra_abs=0.0):
    """|s' - s| of block scores whose rows' logits all move by at most dx:
    every probability moves by a factor within e^(+-2 dx), so a block score
    (a sum or max of them) by at most (e^(2 dx) - 1) s, plus `extra_rel`
    relative (the f32 sums and ex2.approx) and `extra_abs` + 1e-6 absolute."""
    return (np.expm1(2 * dx)[..., None, None] + extra_rel) * s + extra_abs + 1e-6


def partials_error_terms(name, c):
    """(relative, absolute) score error of the scoring kernel's partial
    sums for CHECK entry `name`: f16 (the default) rounds each once
    (unisparse.margin.partials_f16_error), f32 adds nothing."""
    from unisparse.margin import PARTIALS_F16_REL

    if "--score-partials=f32" in configs.CHECK_FLAGS.get(name, []):
        return 0.0, 0.0
    return PARTIALS_F16_REL, (c["block"] // c["c_q"]) * 2.0**-24


def exp2_poly_terms(name):
    """(score relative, p relative) error of the outlier scoring kernel's
    exponentials on the FMA pipe for CHECK entry `name`
    (--score-outlier-exp2-poly > 0; unisparse.margin.EXP2_POLY_REL = delta,
    the polynomial's relative error, instead of ex2.approx's, which the
    2^-20 term covers): a block partial sum P and the row sum l are sums of
    the same values, each within a factor 1 +- delta, so a share P / l
    moves by at most 2 delta / (1 - delta) of itself; p = exp2(x - m_x) /
    l_x (l_x from ex2.approx) by delta of itself, which moves y by sig p
    delta (outlier_logit_bound's p_rel). (0, 0) when the option is 0 (the
    compiler's default, configs.OUTLIER_EXP2_POLY_DEFAULT, when the entry
    does not set it)."""
    from unisparse.margin import EXP2_POLY_REL

    if configs.outlier_exp2_poly(configs.CHECK_FLAGS.get(name, [])) == 0:
        return 0.0, 0.0
    return 2 * EXP2_POLY_REL / (1 - EXP2_POLY_REL), EXP2_POLY_REL


def first_row_difference(s, c_gpu, i_gpu, c_ref, i_ref):
    """The first row where two layouts differ, with its scores."""
    rows = np.argwhere((c_gpu != c_ref) | np.any(i_gpu != i_ref, axis=-1))
    b, g, r = rows[0]
    return (
        f"{len(rows)} rows differ; first (b={b}, g={g}, I={r}): GPU {i_gpu[b, g, r, : c_gpu[b, g, r]].tolist()}, "
        f"reference {i_ref[b, g, r, : c_ref[b, g, r]].tolist()}, scores {np.round(s[b, g, r], 5).tolist()}"
    )


def host_array(t, dtype):
    """A GPU tensor as the NumPy array the CPU path reads (bf16 as uint16)."""
    if dtype == "bf16":
        return t.view(torch.int16).cpu().numpy().view(np.uint16)
    return t.cpu().numpy()


def record_own_selection(label, s_np, c_np, i_np, c, n):
    """The GPU selection kernel's layout (c_np, i_np) against the reference
    selection of the GPU's own scores s_np: exact."""
    c_own, i_own = reference_selection(s_np, c)
    exact = np.array_equal(c_own, c_np) and np.array_equal(i_own, i_np)
    record(
        f"{label}: GPU selection of GPU scores is exact",
        exact,
        f"rows {c_np.size}, density {ref.density(c_np, n, c['block'], c['causal']):.3f}"
        + ("" if exact else "; " + first_row_difference(s_np, c_np, i_np, c_own, i_own)),
    )


def record_layout_margin(label, cpu_layout, gpu_layout, c):
    """The GPU layout against the CPU path's, each (scores, counts, indices):
    equal outside the boundary rule of unisparse.margin."""
    from unisparse.margin import check_margin

    res = check_margin(*cpu_layout, *gpu_layout, **selection_fields(c))
    record(
        f"{label}: GPU layout vs the CPU layout (boundary rule)",
        not res["violations"],
        f"{res['rows_differ']} of {res['rows']} rows differ ({res['blocks_differ']} blocks), "
        f"{res['skipped']} rows not judged, eps max {res['eps_max']:.1e}, "
        f"violations {res['violations'][:2]}",
    )


def check_layout(name, n, seed):
    """The GPU estimation (16-bit composites on tensor cores, the GPU
    selection kernel) against
      a. the reference selection of its own scores: exact;
      b. float64 scores from the same 16-bit composites (compress emulated):
         within the f32 accumulation bound;
      c. the CPU path's scores (f32 composites): within the bound of rounding
         the composites to 16 bits;
      d. the CPU path's layout: equal outside the boundary rule of
         unisparse.margin (differences counted and printed)."""
    lib, c, hq, hkv, d, dtype = load(name)
    cpu, *_ = load(name, "cpu")
    q, k, v = inputs(hq, hkv, n, d, dtype, seed)
    scores, counts, indices = lib.layout(q, k)
    torch.cuda.synchronize()
    s_np, c_np, i_np = scores.cpu().numpy(), counts.cpu().numpy(), indices.cpu().numpy()
    record_own_selection(f"{name} N={n}", s_np, c_np, i_np, c, n)
    scale = c["scale"] or d**-0.5
    tensor_core = c["estimator"] in ("mean", "antidiag", "antidiag_lse")
    tk = -(-n // c["c_k"])
    # The f32 terms of a row's sum: one a key composite, antidiag_lse's s
    # slot exponentials each, the outlier estimator's key slots.
    row_terms = tk * (c["c_k"] if c["estimator"] == "antidiag_lse" else 1)
    if c["estimator"] == "outlier":
        row_terms = tk * (c["k_outliers"] + 1)
        check_outlier_scores(name, n, c, q, k, hq, hkv, scale, s_np, row_terms, dtype)
    if tensor_core:
        cdt = torch.bfloat16  # the pipeline's default score precision
        qc, kc = estimator_composites(q, k, c, hq, hkv, cdt)
        s16 = ref.block_score(
            qc.double().cpu().numpy(),
            kc.double().cpu().numpy(),
            c["block"],
            c["c_q"],
            c["c_k"],
            c["causal"],
            scale,
            estimator=c["estimator"],
            query_reduce=c["query_reduce"],
        )
        # Products of 16-bit values are exact in f32; the K-term sums are
        # not (K 2^-24 each), nor ex2.approx and the f32 row sums.
        dx = estimator_logit_bound(qc, kc, c, scale, lambda length: length * 2.0**-24)
        p_rel, p_abs = partials_error_terms(name, c)
        tol = score_tolerance(np.maximum(s16, s_np), dx, 2.0**-20 + row_terms * 2.0**-24 + p_rel, p_abs)
        err = np.abs(s16 - s_np)
        record(
            f"{name} N={n}: GPU scores vs float64 on the same 16-bit composites",
            bool(np.all(err <= tol)),
            f"max |diff| {err.max():.2e}, max ratio to the bound {float(np.max(err / tol)):.2f}",
        )
    # The CPU path on the same (rounded) inputs.
    s_cpu, c_cpu, i_cpu = cpu.layout(host_array(q, dtype), host_array(k, dtype))
    serr = np.abs(s_cpu - s_np)
    if tensor_core:
        # Rounding both composites to bf16 (2^-9 each) moves a product by at
        # most 2^-8 + 2^-18 of it, plus both paths' f32 sums.
        qf, kf = estimator_composites(q, k, c, hq, hkv, torch.float32)
        dx16 = estimator_logit_bound(qf, kf, c, scale, lambda length: 2.0**-8 + 2.0**-18 + 2 * length * 2.0**-24)
        p_rel, p_abs = partials_error_terms(name, c)
        tol16 = score_tolerance(np.maximum(s_cpu, s_np), dx16, 2.0**-19 + row_terms * 2.0**-23 + p_rel, p_abs)
        ok = bool(np.all(serr <= tol16))
        detail = f"max |diff| {serr.max():.2e}, max ratio to the bound {float(np.max(serr / tol16)):.2f}"
    elif c["estimator"] == "outlier":
        # bf16 composites (2^-9 each) against f32: a product moves by at most
        # 2^-8 + 2^-18 of it, |k|^2 and v (sig) by 2^-8 + 2^-9 + their f32 sums.
        qf, kf = outlier_composites(q, k, c, hq, hkv)
        d = qf.shape[-1]
        e_rel, e_p = exp2_poly_terms(name)
        dy16 = outlier_logit_bound(
            qf, kf, scale, 2.0**-8 + 2.0**-18 + 2 * d * 2.0**-24, 2.0**-8 + 2.0**-9 + 4 * d * 2.0**-24, e_p
        )
        p_rel, p_abs = partials_error_terms(name, c)
        tol16 = score_tolerance(np.maximum(s_cpu, s_np), dy16, 2.0**-19 + row_terms * 2.0**-23 + p_rel + e_rel, p_abs)
        ok = bool(np.all(serr <= tol16))
        detail = f"max |diff| {serr.max():.2e}, max ratio to the bound {float(np.max(serr / tol16)):.2f}"
    else:
        ok = float(serr.max()) < 1e-4
        detail = f"max |diff| {serr.max():.2e} (f32 path on both)"
    record(f"{name} N={n}: GPU scores vs the CPU path (f32 composites)", ok, detail)
    record_layout_margin(f"{name} N={n}", (s_cpu, c_cpu, i_cpu), (s_np, c_np, i_np), c)
    return lib, c, (q, k, v), (counts, indices)


def check_outlier_scores(name, n, c, q, k, hq, hkv, scale, s_np, row_terms, dtype):
    """The outlier tensor-core kernel's scores against float64 scores
    (unisparse.reference.outlier.block_score) of the same composites in bf16
    (the pipeline's default score precision): the GPU compress kernels' own
    where the configuration is their check entries' (gpu_outlier_composites),
    else the reference's rounded to bf16; within the bound of
    its f32 dot products (K = D), f32 |k|^2 and v sums, ex2.approx and f32
    row sums (outlier_logit_bound, score_tolerance), and its f16 partial sums
    (partials_error_terms: each P = a block's sum of exp2(y - m) <= 1 terms
    lies in [0, (block / c_k) (k_outliers + 1)], rounded once, and a
    composite's score sum_a P_a 2^(m_tile - m_a) omega_a / l_a has l_a >
    1/2 and omega_0 + omega_1 = 1: 2^-11 of the score plus 2^-24 a
    composite of the query block)."""
    from unisparse.reference import outlier

    own = gpu_outlier_composites(q, k, c, hq, hkv, dtype)
    if own is not None:
        qc, kc = own
        what = "the GPU's own bf16 outlier composites"
    else:
        # Rounded through f32, as the compress kernels round their f32 slots
        # (their sums are not emulated bit for bit: a composite element whose
        # f32 value lies within an f32 ulp of a bf16 rounding boundary may
        # round the other way on the GPU, and a pick may differ at a near
        # tie; check_outlier_compress checks the kernels).
        qf, kf = outlier_composites(q, k, c, hq, hkv)
        qc, kc = (x.float().to(torch.bfloat16).double() for x in (qf, kf))
        what = "the same bf16 outlier composites (the reference's picks)"
    s16 = outlier.block_score(
        qc.numpy(),
        kc.numpy(),
        c["block"],
        c["c_q"],
        c["c_k"],
        c["causal"],
        scale,
        query_reduce=c["query_reduce"],
    )
    d = qc.shape[-1]
    e_rel, e_p = exp2_poly_terms(name)
    dy = outlier_logit_bound(qc, kc, scale, d * 2.0**-24, 4 * d * 2.0**-24, e_p)
    p_rel, p_abs = partials_error_terms(name, c)
    tol = score_tolerance(np.maximum(s16, s_np), dy, 2.0**-20 + row_terms * 2.0**-24 + p_rel + e_rel, p_abs)
    err = np.abs(s16 - s_np)
    record(
        f"{name} N={n}: GPU scores vs float64 on {what}",
        bool(np.all(err <= tol)),
        f"max |diff| {err.max():.2e}, max ratio to the bound {float(np.max(err / tol)):.2f}",
    )


def bits(t):
    """A float tensor's bits, so that == compares NaNs and signed zeros too."""
    return t.contiguous().view(torch.int32 if t.element_size() == 4 else torch.int16)


def check_query_pooling(name, n, seed):
    """The scoring kernel that pools its query composites from the raw
    queries (`name`) against the compress kernel writing them (the library
    `<name>_unfused`), on the same inputs: both pool with the same f32 sums
    in the same order and round once, so the composites are the same bits
    and so must be the scores and the layouts. Both also pass check_layout
    (via check_sparse for `name`). Then the same queries at an address that
    is not 16-byte aligned (a view 2 bytes into a buffer: the fused kernel's
    element-load path, the compress kernel's too): the same bits again."""
    lib, c, (q, k, v), _ = check_layout(name, n, seed)
    unfused, *_ = load(f"{name}_unfused")
    view = torch.empty(q.numel() + 8, dtype=q.dtype, device=q.device)[1 : 1 + q.numel()].view(q.shape)
    view.copy_(q)
    assert view.data_ptr() % 16 != 0
    runs = {
        "fused": lib.layout(q, k),
        "unfused": unfused.layout(q, k),
        "fused, unaligned queries": lib.layout(view, k),
        "unfused, unaligned queries": unfused.layout(view, k),
    }
    torch.cuda.synchronize()
    s_ref, c_ref, i_ref = runs["unfused"]
    for label, (s_x, c_x, i_x) in runs.items():
        if label == "unfused":
            continue
        differ = int((bits(s_x) != bits(s_ref)).sum())
        same_layout = bool(torch.equal(c_x, c_ref) and torch.equal(i_x, i_ref))
        record(
            f"{name} N={n}: {label} vs the compress kernel's composites: scores bit for bit, layout equal",
            differ == 0 and same_layout,
            f"{differ} of {s_ref.numel()} scores differ, layout {'equal' if same_layout else 'differs'}",
        )


# Seeds refine_inputs tries (see there).
REFINE_SEARCH_TRIES = 128


def refine_inputs(hq, hkv, n, d, dtype, seed, cfg, tries=REFINE_SEARCH_TRIES, batch=2):
    """The inputs of the first seed from `seed` on which float32 keeps the
    slash offsets float64 keeps (unisparse.reference.twolevel_f32's offset
    margin above 1; near a tie both are right and the refined scores of
    the two differ by far more than rounding): (q, k on the GPU, q and k
    in float64, the seed, the margin); None if no seed of `tries` has one.
    A seed costs ~0.1 s on the host at N = 650; for slash_rule_bf16_d128
    (40 offsets) only 7.5% of seeds pass at N = 600 and 15% at 650 (40 seeds
    each, session 20), so 16 tries missed 29% / 7% of the time and 128 miss
    at most ~5e-5."""
    from unisparse.reference.twolevel_f32 import logit_error, offset_margin

    scale = cfg.scale or d**-0.5
    for s in range(seed, seed + tries):
        q, k, _ = inputs(hq, hkv, n, d, dtype, s, batch=batch)
        q64, k64 = (x.double().cpu().numpy() for x in (q, k))
        margin = offset_margin(q64, k64, cfg, logit_error(q64, k64, scale))
        if margin > 1.0:
            return q, k, q64, k64, s, margin
    return None


def check_refine(name, n, seed, cpu=True, batch=2, tries=1):
    """The slash refinement (unisparse.slash_refine: the refinement kernels,
    or the loop path where the library was built with
    --refine-kernels=false) against
      a. the float64 refinement (unisparse.reference.twolevel) of the GPU's
         own first-pass scores (the library `<name>_first`: the same
         configuration and flags without the refinement, so the same
         kernels and values): within the float32 bound of
         unisparse.reference.twolevel_f32; the first pass alone must be far
         outside that bound (else the check would not see the refinement);
      b. the CPU path: its refined scores within its own bound of the
         float64 refinement of its first pass, and the GPU's within both
         bounds plus the float64 difference the two first passes make;
      c. the GPU selection of the GPU's refined scores: exact; the GPU
         layout against the CPU layout: the boundary rule.
    On the first inputs from `seed` without a near tie among the offsets.
    With cpu=False (the long shapes, where the CPU path would take minutes)
    a. is judged per head group (check_refine_groups, on the first of
    `tries` seeds from `seed` where enough groups can be judged) and b. and
    the layout comparison of c. are left out."""
    from unisparse.config import Config
    from unisparse.reference import twolevel
    from unisparse.reference.twolevel_f32 import logit_error, refined_tolerance

    lib, c, hq, hkv, d, dtype = load(name)
    first, *_ = load(f"{name}_first")
    cfg = Config(**c)
    label = f"{name} N={n}" + ("" if batch == 2 else f" B={batch}")
    if not cpu:
        check_refine_groups(label, lib, first, cfg, c, (hq, hkv, n, d, dtype), seed, batch, tries)
        return
    found = refine_inputs(hq, hkv, n, d, dtype, seed, cfg, batch=batch)
    if found is None:
        record(
            f"{label}: inputs without a near tie among the slash offsets",
            False,
            f"none of seeds {seed}..+{REFINE_SEARCH_TRIES - 1}",
        )
        return
    q, k, q64, k64, used, margin = found
    dx = logit_error(q64, k64, cfg.scale or d**-0.5)

    def reference(s):
        want = twolevel.refine_config(s.astype(np.float64), q64, k64, cfg)
        return want, refined_tolerance(want, cfg, dx)

    r_g, c_g, i_g = (x.cpu().numpy() for x in lib.layout(q, k))
    s_g = first.layout(q, k)[0].cpu().numpy()
    torch.cuda.synchronize()
    want_g, tol_g = reference(s_g)
    err = np.abs(r_g - want_g)
    plain = s_g / s_g.sum(-1, keepdims=True)
    seen = float(np.max(np.abs(plain - want_g) / tol_g))
    record(
        f"{label}: GPU refined scores vs float64 on the GPU's first pass",
        bool(np.all(np.isfinite(r_g)) and np.all(err <= tol_g) and seen > 100.0),
        f"seed {used} (offset margin {margin:.2f}), max |diff| {err.max():.2e}, "
        f"max ratio to the bound {float(np.max(err / tol_g)):.3f}; the first pass alone {seen:.0f}x the bound",
    )
    if cfg.refine_norm:
        # The normalisation is what the kernels did: the float64 refinement
        # without it is far outside the bound. Its distance depends on the
        # data's slash evidence (the factor 1 + sum E f / tot a row): 6297x-
        # 186440x at 16 offsets, 67x once at 7 offsets and 12 probe rows
        # (session 12), while the kernels' own refinement sits at ~0.001x;
        # 10x keeps the control four orders of magnitude above that.
        unnorm = twolevel.refine_config(s_g.astype(np.float64), q64, k64, cfg, refine_norm=False)
        off = float(np.max(np.abs(r_g - unnorm) / tol_g))
        record(f"{label}: refine_norm (the unnormalised refinement is rejected)", off > 10.0, f"{off:.0f}x the bound")

    cpu_lib, *_ = load(name, "cpu")
    cpu_first, *_ = load(f"{name}_first", "cpu")
    r_c, c_c, i_c = cpu_lib.layout(host_array(q, dtype), host_array(k, dtype))
    s_c = cpu_first.layout(host_array(q, dtype), host_array(k, dtype))[0]
    want_c, tol_c = reference(s_c)
    own = float(np.max(np.abs(r_c - want_c) / tol_c))
    gap = np.abs(r_g - r_c)
    bound = np.abs(want_g - want_c) + tol_g + tol_c
    record(
        f"{label}: GPU refined scores vs the CPU path",
        bool(own <= 1.0 and np.all(gap <= bound)),
        f"CPU vs its float64 {own:.3f}x its bound; GPU vs CPU max |diff| {gap.max():.2e}, "
        f"max ratio to the bound {float(np.max(gap / bound)):.3f}",
    )
    record_own_selection(label, r_g, c_g, i_g, c, n)
    record_layout_margin(label, (r_c, c_c, i_c), (r_g, c_g, i_g), c)


def check_refine_groups(label, lib, first, cfg, c, shape, seed, batch, tries=1):
    """check_refine's comparison a. judged per head group, on the inputs of
    `seed` (with many head groups some group nearly always has a near tie
    among its offsets, so no search there; with few, tries > 1 takes the
    first of that many seeds from `seed` where enough groups are judged). unisparse.reference.twolevel_f32.
    offset_groups sorts the groups: decided ones (float32 must keep
    float64's offsets) are compared with the float64 refinement of the
    GPU's first pass within its bound; near ties between the last offset
    kept and the first left out accept that refinement or the one with the
    two exchanged; groups with more offsets within their bounds are counted,
    not judged. At least half the groups, one of them decided, must be
    judged. A negative control on the same data: the float64 refinement
    with a decided group's offsets moved by 3 blocks must be rejected
    there (the judgement sees wrong offsets). Then the selection."""
    from unisparse.reference import twolevel
    from unisparse.reference.twolevel_f32 import (
        DECIDED,
        OPEN,
        TIE,
        judge_groups,
        logit_error,
        offset_groups,
        refined_tolerance,
    )

    hq, hkv, n, d, dtype = shape
    for seed in range(seed, seed + tries):
        q, k, _ = inputs(hq, hkv, n, d, dtype, seed, batch=batch)
        q64, k64 = (x.double().cpu().numpy() for x in (q, k))
        dx = logit_error(q64, k64, cfg.scale or d**-0.5)
        status, alt = offset_groups(q64, k64, cfg, dx)
        if int((status != OPEN).sum()) >= max(1, status.size // 2) and bool((status == DECIDED).any()):
            break
    r_g, c_g, i_g = (x.cpu().numpy() for x in lib.layout(q, k))
    s_g = first.layout(q, k)[0].cpu().numpy()
    torch.cuda.synchronize()
    s64 = s_g.astype(np.float64)
    want = twolevel.refine_config(s64, q64, k64, cfg)
    tol = refined_tolerance(want, cfg, dx)
    ties = status == TIE
    want_alt = tol_alt = None
    if ties.any():
        want_alt = twolevel.refine_config(s64, q64, k64, cfg, offsets=alt)
        tol_alt = refined_tolerance(want_alt, cfg, dx)
    verdict = judge_groups(r_g, want, tol, status, want_alt, tol_alt)
    decided, judged = status == DECIDED, status != OPEN
    failed = [bg for bg in np.ndindex(status.shape) if verdict[bg] is False]
    enough = int(judged.sum()) >= max(1, status.size // 2) and bool(decided.any())
    ratio = np.abs(r_g - want) / tol
    worst = float(ratio[decided].max()) if decided.any() else float("nan")
    plain = s_g / s_g.sum(-1, keepdims=True)
    seen = float((np.abs(plain - want) / tol)[judged].max()) if judged.any() else 0.0
    record(
        f"{label}: GPU refined scores vs float64 on the GPU's first pass, per head group",
        not failed and enough and seen > 100.0,
        f"seed {seed}: of {status.size} groups {int(decided.sum())} decided, {int(ties.sum())} near ties "
        f"(either offset), {int((~judged).sum())} open (not judged); failed {failed[:8]}; decided groups "
        f"max ratio to the bound {worst:.3f}; the first pass alone {seen:.0f}x the bound",
    )
    # The negative control: the decided group whose scores the refinement
    # moves most (against the first pass alone, in bounds), its offsets
    # each moved by 3 blocks, must fail there. All of them, not one: the
    # strongest "slash" is often the sink seen from the last rows (an offset
    # near N whose keys sit in the forced sink block), which no move can make
    # visible; and in a group where the first pass already exceeds the
    # slash mass everywhere (combine takes the max) no offset matters, so
    # the first decided group is not enough (at 32K, 32 heads, seed 57333,
    # session 10, group (0, 0) had 14 sink offsets and no block moved).
    min_off = cfg.local_blocks * cfg.block
    _, slash = twolevel.last_rows(q64, k64, cfg.last_q, c_h=cfg.c_h, scale=cfg.scale)
    offs = twolevel.slash_offsets(slash, cfg.n_offsets, min_off)
    lift = [
        (float(np.nan_to_num(np.abs(plain[bg] - want[bg]) / tol[bg]).max()), bg)
        for bg in np.ndindex(status.shape)
        if decided[bg] and offs[bg][0] > 0
    ]
    best = max(lift, default=(0.0, None))
    target = best[1] if best[0] > 0 else None
    if target is None:
        record(
            f"{label}: negative control (wrong offsets are rejected)",
            False,
            "no decided group's scores move with its offsets",
        )
    else:
        bad = offs.copy()
        row = bad[target]
        moved = np.where(row - 3 * cfg.block > min_off, row - 3 * cfg.block, np.minimum(row + 3 * cfg.block, n - 1))
        row[row >= 0] = moved[row >= 0]
        r_bad = twolevel.refine_config(s64, q64, k64, cfg, offsets=bad)
        v_bad = judge_groups(r_bad, want, tol, status, want_alt, tol_alt)
        record(
            f"{label}: negative control (wrong offsets are rejected)",
            v_bad[target] is False,
            f"group {target}: offsets {offs[target][:4].tolist()}... moved by 3 blocks, judged {v_bad[target]}, "
            f"max ratio to the bound {float(np.max(np.abs(r_bad[target] - want[target]) / tol[target])):.1f}",
        )
    record_own_selection(label, r_g, c_g, i_g, c, n)


def check_dense(name, n, seed):
    lib, c, hq, hkv, d, dtype = load(name)
    q, k, v = inputs(hq, hkv, n, d, dtype, seed)
    causal = c.get("causal", True)
    o, lse = lib.attention(q, k, v)
    g = hq // hkv
    kr, vr = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
    ref_o = torch.nn.functional.scaled_dot_product_attention(q, kr, vr, is_causal=causal)
    err = rel_l2(o, ref_o)
    record(f"{name} N={n}: tau=1 output vs torch SDPA", err < 1e-2, f"rel L2 {err:.2e}")
    s = (q.float() @ kr.float().transpose(-1, -2)) / d**0.5
    if causal:
        s = s.masked_fill(torch.ones(n, n, device="cuda", dtype=torch.bool).triu(1), float("-inf"))
    lse_ref = torch.logsumexp(s, dim=-1)
    lerr = float((lse - lse_ref).abs().max())
    record(f"{name} N={n}: LSE vs float32 logsumexp", lerr < 2e-2, f"max |diff| {lerr:.2e}")
    record(f"{name} N={n}: every output written", bool(torch.isfinite(o).all()), "")


def check_sparse(name, n, seed):
    lib, c, (q, k, v), (counts, indices) = check_layout(name, n, seed)
    hq = q.shape[1]
    causal = c.get("causal", True)
    o, lse = lib.attention(q, k, v)
    torch.cuda.synchronize()
    record(f"{name} N={n}: every output written", bool(torch.isfinite(o).all()), "")
    # @attention_layout: the attention and the layout it used, one estimation.
    o2, lse2, c2, i2 = lib.attention_layout(q, k, v)
    torch.cuda.synchronize()
    same = torch.equal(o2, o) and torch.equal(lse2, lse) and torch.equal(c2, counts) and torch.equal(i2, indices)
    record(f"{name} N={n}: attention_layout = attention + layout, bit for bit", same, "")
    from torch.nn.attention.flex_attention import flex_attention

    bm = flex_block_mask(counts, indices, hq, n, c["block"], causal)
    g = hq // k.shape[1]
    fo = flex_attention(q, k.repeat_interleave(g, 1), v.repeat_interleave(g, 1), block_mask=bm)
    err = rel_l2(o, fo)
    record(f"{name} N={n}: output vs FlexAttention with the same layout", err < 1e-2, f"rel L2 {err:.2e}")
    # float64 reference restricted to the layout, on the first batch.
    q64, k64, v64 = (x[:1].double().cpu().numpy() for x in (q, k, v))
    o_ref, lse_ref = ref.block_sparse_attention(
        q64, k64, v64, counts[:1].cpu().numpy(), indices[:1].cpu().numpy(), c["block"], causal
    )
    err64 = ref.relative_l2(o[:1].double().cpu().numpy(), o_ref)
    lerr = float(np.max(np.abs(lse[:1].cpu().numpy() - lse_ref)))
    record(
        f"{name} N={n}: output vs float64 block-sparse reference",
        err64 < 1e-2 and lerr < 2e-2,
        f"rel L2 {err64:.2e}, max |lse diff| {lerr:.2e}",
    )
    # CUDA graph capture of the whole compiled call (no host synchronisation).
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        lib.attention(q, k, v)  # warm-up on the side stream
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            og, _ = lib.attention(q, k, v)
        graph.replay()
        torch.cuda.synchronize()
        gerr = rel_l2(og, o)
        record(f"{name} N={n}: CUDA graph capture + replay", gerr < 1e-6, f"rel diff {gerr:.1e}")
    except Exception as e:  # noqa: BLE001
        record(f"{name} N={n}: CUDA graph capture + replay", False, repr(e))


def check_nan(name, n, seed):
    """NaN/Inf in q and k with min_blocks past the forced blocks: the GPU
    selection is total (strictly ascending rows, no runtime error), equals
    the reference selection of its scores and the CPU path's layout, and
    NaN reaches the same outputs as in the float64 reference."""
    lib, c, hq, hkv, d, dtype = load(name)
    cpu, *_ = load(name, "cpu")
    q, k, v = inputs(hq, hkv, n, d, dtype, seed)
    q[0, 1, n // 2, 3] = float("nan")
    k[1, 0, n // 3, 5] = float("nan")
    k[0, 1, n // 4, 7] = float("inf")
    try:
        scores, counts, indices = lib.layout(q, k)
        o, _ = lib.attention(q, k, v)
        torch.cuda.synchronize()
    except Exception as e:  # noqa: BLE001
        record(f"{name} N={n}: NaN/Inf inputs run", False, repr(e))
        return
    c_np, i_np = counts.cpu().numpy(), indices.cpu().numpy()
    c_own, i_own = reference_selection(scores.cpu().numpy(), c)
    asc = all(np.all(np.diff(r[:cnt]) > 0) for r, cnt in zip(i_np.reshape(-1, i_np.shape[-1]), c_np.reshape(-1)))
    record(
        f"{name} N={n}: NaN/Inf: GPU selection total and exact",
        asc and np.array_equal(c_own, c_np) and np.array_equal(i_own, i_np),
        f"{int(np.isnan(scores.cpu().numpy()).any(-1).sum())} NaN rows",
    )
    as_np = lambda t: t.view(torch.int16).cpu().numpy().view(np.uint16)  # noqa: E731
    s_cpu, c_cpu, i_cpu = cpu.layout(as_np(q), as_np(k))
    from unisparse.margin import check_margin

    res = check_margin(
        s_cpu,
        c_cpu,
        i_cpu,
        scores.cpu().numpy(),
        c_np,
        i_np,
        **selection_fields(c),
    )
    nan_rows = np.isnan(s_cpu).any(-1)
    same_nan = (
        np.array_equal(nan_rows, np.isnan(scores.cpu().numpy()).any(-1))
        and np.array_equal(c_cpu[nan_rows], c_np[nan_rows])
        and np.array_equal(i_cpu[nan_rows], i_np[nan_rows])
    )
    record(
        f"{name} N={n}: NaN/Inf: GPU layout vs the CPU layout (NaN rows equal, boundary rule)",
        same_nan and not res["violations"],
        f"{int(nan_rows.sum())} NaN rows, {res['rows_differ']} of {res['rows']} other rows differ, "
        f"violations {res['violations'][:2]}",
    )
    q64, k64, v64 = (x.double().cpu().numpy() for x in (q, k, v))
    o_ref, _ = ref.block_sparse_attention(q64, k64, v64, c_np, i_np, c["block"], c["causal"])
    same = np.array_equal(np.isnan(o.double().cpu().numpy()), np.isnan(o_ref))
    record(
        f"{name} N={n}: NaN/Inf: NaN reaches the outputs the reference says",
        same and bool(np.isnan(o_ref).any()),
        f"{int(np.isnan(o_ref).sum())} NaN outputs",
    )


def check_long(name, n, seed):
    """A million tokens: the estimation launches (T = N / c_q composites) and
    its layout equals the reference selection of its scores; the last query
    block's output matches float64 attention over its selected blocks."""
    lib, c, hq, hkv, d, dtype = load(name)
    q, k, v = inputs(hq, hkv, n, d, dtype, seed, batch=1)
    try:
        scores, counts, indices = lib.layout(q, k)
        o, lse = lib.attention(q, k, v)
        torch.cuda.synchronize()
    except Exception as e:  # noqa: BLE001
        record(f"{name} N={n}: launches", False, repr(e))
        return
    s_np, c_np, i_np = scores.cpu().numpy(), counts.cpu().numpy(), indices.cpu().numpy()
    record_own_selection(f"{name} N={n}", s_np, c_np, i_np, c, n)
    blk = c["block"]
    last = (n - 1) // blk
    keys = np.concatenate([np.arange(j * blk, min((j + 1) * blk, n)) for j in i_np[0, 0, last, : c_np[0, 0, last]]])
    rows = np.arange(last * blk, n)
    qq = q[0, 0, rows].double()
    kk, vv = k[0, 0, keys].double(), v[0, 0, keys].double()
    logits = (qq @ kk.T) / d**0.5
    mask = torch.from_numpy(keys[None, :] > rows[:, None]).cuda()
    ref_o = torch.softmax(logits.masked_fill(mask, float("-inf")), -1) @ vv
    err = rel_l2(o[0, 0, rows], ref_o)
    record(
        f"{name} N={n}: last query block vs float64 over its blocks",
        err < 1e-2 and bool(torch.isfinite(o).all()),
        f"rel L2 {err:.2e}",
    )


def check_guard(name, n, seed):
    """The memory guard of a CUDA entry point: with UNISPARSE_WORKSPACE_LIMIT
    below what the shapes need, layout and attention raise a clear error
    (nothing launched, nothing written); without the limit the same call runs
    and its layout is the reference selection of its scores."""
    from unisparse._core import UnisparseError

    lib, c, hq, hkv, d, dtype = load(name)
    q, k, v = inputs(hq, hkv, n, d, dtype, seed, batch=1)
    old = os.environ.get("UNISPARSE_WORKSPACE_LIMIT")
    os.environ["UNISPARSE_WORKSPACE_LIMIT"] = "4096"
    try:
        for what, call in (("layout", lambda: lib.layout(q, k)), ("attention", lambda: lib.attention(q, k, v))):
            try:
                call()
                torch.cuda.synchronize()
                record(f"{name} N={n}: {what} refused under a 4 KiB workspace limit", False, "it ran")
            except UnisparseError as e:
                msg = str(e)
                record(
                    f"{name} N={n}: {what} refused under a 4 KiB workspace limit",
                    "refusing to run" in msg and "UNISPARSE_WORKSPACE_LIMIT" in msg,
                    msg[:160],
                )
    finally:
        if old is None:
            del os.environ["UNISPARSE_WORKSPACE_LIMIT"]
        else:
            os.environ["UNISPARSE_WORKSPACE_LIMIT"] = old
    scores, counts, indices = lib.layout(q, k)
    torch.cuda.synchronize()
    c_own, i_own = reference_selection(scores.cpu().numpy(), c)
    record(
        f"{name} N={n}: the same call runs without the limit",
        np.array_equal(c_own, counts.cpu().numpy()) and np.array_equal(i_own, indices.cpu().numpy()),
    )


def check_kernel_env():
    """A value of UNISPARSE_CUDA_ATTENTION_KERNEL that names no kernel makes
    CUDA attention fail saying so (it used to run, and be timed as, auto);
    a valid one in another case is accepted."""

    code = (
        "import os, sys, torch; sys.path.insert(0, 'python')\n"
        "from unisparse import gpu\n"
        "gpu.load_runtime(os.environ['UNISPARSE_CUDA_RUNTIME'])\n"
        "q = torch.randn(1, 2, 256, 64, device='cuda', dtype=torch.bfloat16)\n"
        "c = torch.full((1, 2, 2), 2, device='cuda', dtype=torch.int32)\n"
        "i = torch.tensor([0, 1], device='cuda', dtype=torch.int32).expand(1, 2, 2, 2).contiguous()\n"
        "try:\n"
        "    gpu.block_sparse_attention(q, q, q, c, i, 128, causal=False); torch.cuda.synchronize()\n"
        "    print('RAN')\n"
        "except Exception as e:\n"
        "    print('ERROR', e)\n"
    )
    check_variable("UNISPARSE_CUDA_ATTENTION_KERNEL", code, (("sm_90", "names no kernel"), ("MMA_SYNC", "RAN")))


def check_variable(variable, code, cases):
    """Runs `code` in a fresh Python (it prints RAN or ERROR <message>) once
    per (value, wanted text) of `cases` with `variable` set to the value."""
    import subprocess

    for value, want in cases:
        env = dict(os.environ, **{variable: value})
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT).stdout
        record(f"{variable}={value}", want in out, out.strip()[-200:])


def check_pool_env():
    """UNISPARSE_CUDA_POOL_RELEASE (the runtime pool's release threshold):
    a malformed value makes the first device allocation fail saying so; 0
    (hand every freed block back, the driver's default) runs."""

    code = (
        "import sys, torch; sys.path[:0] = ['scripts/gpu', 'python']\n"
        "import check\n"
        "lib, c, hq, hkv, d, dtype = check.load('default_bf16_d128')\n"
        "q, k, v = check.inputs(hq, hkv, 1024, d, dtype, 1, batch=1)\n"
        "try:\n"
        "    lib.layout(q, k); torch.cuda.synchronize()\n"
        "    print('RAN')\n"
        "except Exception as e:\n"
        "    print('ERROR', e)\n"
    )
    check_variable(
        "UNISPARSE_CUDA_POOL_RELEASE",
        code,
        (("12x", "UNISPARSE_CUDA_POOL_RELEASE = '12x' is not a byte count"), ("0", "RAN")),
    )


def check_default_stream(name, n, seed):
    """On PyTorch's default (legacy) stream a compiled call queues its work
    after what the stream already holds and returns without waiting: inputs
    written by a kernel still running when the call is made give the layout
    of the finished inputs, and the host spends less in the call than the
    GPU in the kernel before it."""
    import time

    lib, c, hq, hkv, d, dtype = load(name)
    q, k, v = inputs(hq, hkv, n, d, dtype, seed, batch=1)
    want = [x.cpu() for x in lib.layout(q, k)]
    torch.cuda.synchronize()
    big = torch.randn(8192, 8192, device="cuda")
    q2, k2 = torch.empty_like(q), torch.empty_like(k)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(4):
        big = big @ big * 1e-4  # ~5 ms of GPU work ahead of the inputs
    q2.copy_(q)
    k2.copy_(k)
    t1 = time.perf_counter()
    got = lib.layout(q2, k2)
    t2 = time.perf_counter()
    torch.cuda.synchronize()
    t3 = time.perf_counter()
    same = all(torch.equal(a, b.cpu()) for a, b in zip(want, got))
    record(
        f"{name} N={n}: layout on the default stream waits for the kernels before it",
        same,
        "equal to the layout of the finished inputs" if same else "differs: it ran before its inputs were written",
    )
    record(
        f"{name} N={n}: layout on the default stream returns without waiting for the GPU",
        (t2 - t1) < 0.5 * (t3 - t0),
        f"host time in the call {1e3 * (t2 - t1):.2f} ms, queued GPU work {1e3 * (t3 - t0):.2f} ms",
    )


def check_selection(name, n, seed, ties=False):
    """The GPU selection kernel alone, on rows long enough for its sorts
    through workgroup memory (more than 256 key blocks): the reference
    selection of the GPU's own scores, exactly. With `ties`, every key token
    is one of two vectors, so that whole key blocks score exactly alike and
    the ascending-index rule for equal scores decides most rows."""
    lib, c, hq, hkv, d, dtype = load(name)
    q, k, v = inputs(hq, hkv, n, d, dtype, seed, batch=1)
    if ties:
        g = torch.Generator(device="cpu").manual_seed(seed)
        two = torch.randn(2, d, generator=g).to(k.device, k.dtype)
        half = (torch.arange(n, device=k.device) >= n // 2).long()
        k = two[half].expand(k.shape[0], k.shape[1], n, d).contiguous()
    scores, counts, indices = lib.layout(q, k)
    torch.cuda.synchronize()
    s_np, c_np, i_np = scores.cpu().numpy(), counts.cpu().numpy(), indices.cpu().numpy()
    c_own, i_own = reference_selection(s_np, c)
    exact = np.array_equal(c_own, c_np) and np.array_equal(i_own, i_np)
    # Rows the tie rule decides: a block left out scores exactly the lowest
    # kept score.
    tied = 0
    for row in np.ndindex(*c_np.shape):
        kept = i_np[row][: c_np[row]]
        nvis = row[-1] + 1 if c["causal"] else s_np.shape[-1]
        out = np.setdiff1d(np.arange(min(nvis, s_np.shape[-1])), kept)
        tied += bool(out.size and kept.size and np.isin(s_np[row][out], s_np[row][kept].min()).any())
    dens = ref.density(c_np, n, c["block"], c["causal"])
    detail = f"rows {c_np.size} ({tied} decided by ties), key blocks {s_np.shape[-1]}, density {dens:.3f}"
    record(
        f"{name} N={n}{' (ties)' if ties else ''}: GPU selection of GPU scores is exact",
        exact,
        detail + ("" if exact else "; " + first_row_difference(s_np, c_np, i_np, c_own, i_own)),
    )


# The entries of scripts/gpu/select_entry.mlir and their block_select
# attributes.
SELECT_ENTRIES = {
    "select_p90": dict(tau=0.9, local_blocks=1, sink=True, min_blocks=0, max_blocks=0, causal=True),
    "select_p99_min": dict(tau=0.99, local_blocks=2, sink=True, min_blocks=5, max_blocks=40, causal=True),
    "select_p95_open": dict(tau=0.95, local_blocks=0, sink=False, min_blocks=0, max_blocks=0, causal=False),
}


def select_scores(b, h, nbq, nbk, seed):
    """Scores block_score does not make, per row kind (row index mod 8):
    positive with exact ties (few distinct values), positive continuous,
    negative ones among positive, all negative, zeros and one positive,
    a NaN, an infinity, huge and tiny magnitudes."""
    g = np.random.default_rng(seed)
    s = g.gamma(0.5, 1.0, size=(b, h, nbq, nbk)).astype(np.float32)
    kind = np.arange(nbq) % 8
    s[:, :, kind == 0] = g.integers(0, 4, size=s[:, :, kind == 0].shape).astype(np.float32) / 4
    neg = g.random(size=s.shape) < 0.3
    s[:, :, kind == 2] = np.where(neg[:, :, kind == 2], -s[:, :, kind == 2], s[:, :, kind == 2])
    s[:, :, kind == 3] = -s[:, :, kind == 3]
    s[:, :, kind == 4] = 0.0
    s[:, :, kind == 4, 0] = 1.0
    rows = np.flatnonzero(kind == 5)
    s[:, :, rows, g.integers(0, nbk, size=rows.size)] = np.nan
    rows = np.flatnonzero(kind == 6)
    s[:, :, rows, g.integers(0, nbk, size=rows.size)] = np.inf
    s[:, :, kind == 7] *= np.float32(2.0) ** g.integers(-140, 100, size=s[:, :, kind == 7].shape)
    return s


def check_select_scores(seed):
    """The selection kernel alone (scripts/gpu/select_entry.mlir) on scores
    given by the caller (select_scores: negative scores take the kernel's
    per-position walk, the others its one-test-a-step walk; ties, NaN,
    infinities, subnormal-to-huge magnitudes, min/max blocks): the reference
    selection, exactly, on rows of each register sort (up to 256, 512 and
    1024 keys), rows of more than 1024 keys (sorted chunks merged through
    workgroup memory: 5000 key blocks), and non-causal rows past the
    diagonal with no forced block, whose free blocks fill the whole sort
    (1100 query blocks by 1024)."""
    from unisparse import _build

    gpu.load_runtime(os.environ["UNISPARSE_CUDA_RUNTIME"])
    lib = _build.load_library(pathlib.Path(os.environ["UNISPARSE_AOT_DIR"]) / configs.lib_name("select", "cuda"))
    for nbq, nbk in ((700, 700), (100, 100), (37, 300), (1100, 1024), (40, 5000)):
        s_np = select_scores(2, 3, nbq, nbk, seed + nbq)
        scores = torch.from_numpy(s_np).cuda()
        for entry, sel in SELECT_ENTRIES.items():
            fn = getattr(lib, "_mlir_ciface_" + entry)
            fn.restype = None
            counts = torch.full((2, 3, nbq), -7, dtype=torch.int32, device="cuda")
            indices = torch.full((2, 3, nbq, nbk), -7, dtype=torch.int32, device="cuda")
            gpu.call_entry(fn, [scores, counts, indices])
            torch.cuda.synchronize()
            c_np, i_np = counts.cpu().numpy(), indices.cpu().numpy()
            c_own, i_own = ref.block_select(s_np, **sel)
            exact = np.array_equal(c_own, c_np) and np.array_equal(i_own, i_np)
            negative = int((np.nan_to_num(s_np) < 0).any(-1).sum())
            record(
                f"select alone {entry} [{nbq}, {nbk}]: exact on scores with negatives, ties, NaN, Inf",
                exact,
                f"{c_np.size} rows ({negative} with negative scores)"
                + ("" if exact else "; " + first_row_difference(s_np, c_np, i_np, c_own, i_own)),
            )


# The entries of scripts/gpu/outlier_compress_entry.mlir: (input dtype,
# D, query heads, kv heads, whether the input is the keys, the compress's
# attributes).
OUTLIER_COMPRESS_ENTRIES = {
    "oc_q_bf16_d128": ("bf16", 128, 8, 2, False, dict(c=16, r=1, hf=1, kvg=1, hot=0, spread=True)),
    "oc_k_bf16_d128": ("bf16", 128, 8, 2, True, dict(c=32, r=2, hf=1, kvg=4, hot=1, spread=False)),
    # the default's keys at f16, D 64 (check's peaked_noncausal_f16_d64)
    "oc_k_f16_d64": ("f16", 64, 8, 2, True, dict(c=32, r=2, hf=1, kvg=4, hot=1, spread=False)),
    "oc_q_ch2_f16_d64": ("f16", 64, 8, 4, False, dict(c=12, r=2, hf=2, kvg=1, hot=0, spread=True)),
    "oc_k_ch2_f16_d64": ("f16", 64, 8, 4, True, dict(c=48, r=3, hf=2, kvg=2, hot=2, spread=False)),
}
U32 = 2.0**-24


def pooled_heads64(x, hf, kvg):
    """[B, H, N, D] -> [B, H * kvg / hf, N, D]: the mean of each group's hf
    expanded heads (expanded head e reads source head e / kvg), float64."""
    e = x.shape[1] * kvg
    src = np.arange(e).reshape(e // hf, hf) // kvg
    return x[:, src].mean(axis=2)


# The center kernels' summation order (OutlierCompressKernel.cpp's kSplits,
# kMinSplitTokens, kThreads and kWarp; test_margin checks that these equal
# the source's).
CENTER_SPLITS = 128
CENTER_MIN_SPLIT_TOKENS = 256
CENTER_THREADS = 256
CENTER_WARPS = 32


def center_rows(d, elem_bytes=2):
    """Rows of the center's first-stage CTA for D `d` of `elem_bytes`-byte
    elements: kThreads / chunks (at least 1), a chunk 16 bytes of D, or one
    element where D is not a multiple of that (MeanPooling::chunkWidth)."""
    width = 16 // elem_bytes
    if d % width:
        width = 1
    return max(1, CENTER_THREADS // (d // width))


def center_error(xh, hf, rows=None, elem_bytes=2):
    """A bound on the GPU's f32 center (mean over the N tokens of xh [B, G,
    N, D]) per (b, g, d): its first stage, a CTA per split of per =
    max(ceil(N / 128), 256) tokens, sums in row r of its `rows` (default
    center_rows of D for the input's `elem_bytes`) the tokens r, r + rows, ... ascending,
    then the rows' sums in order; the second, 32 warps, warp w the splits
    w, w + 32, ... ascending, then the 32 warps' sums in order; then one
    division (a sum of depth ceil(per / rows) + rows + ceil(splits / 32) +
    32); a pooled token carries hf u |x| (hf > 1)."""
    n = xh.shape[2]
    rows = center_rows(xh.shape[3], elem_bytes) if rows is None else rows
    per = max(CENTER_MIN_SPLIT_TOKENS, -(-n // CENTER_SPLITS))
    splits = max(1, -(-n // per))
    depth = -(-per // rows) + rows + -(-splits // CENTER_WARPS) + CENTER_WARPS
    err = (depth + 2) * U32 * np.abs(xh).mean(axis=2)
    return err + (hf * U32 * np.abs(xh).mean(axis=2) if hf > 1 else 0.0)


def outlier_model(x, c, r, hf, kvg, hot, spread, queries=None, elem_bytes=2):
    """compress {pooling = outlier} of `x` in float64 with its picks
    (unisparse.reference.outlier.compress_outlier's rule: the hot picks on
    probe . x, then the far ones on |x - center|^2 among the rest, ties to
    the lower slot; c for none) and bounds on the GPU kernels' f32 errors:
    of each token's score and heat (the center and probe sums, x - center,
    D terms as V = D / 32 a lane then a 5-level butterfly) and of the pooled
    tokens (hf u |x| for hf > 1; `elem_bytes`, the GPU input's element
    size, sets the center's rows). The bounds allow a rounding per product
    and per add; the kernels fuse the products into the adds (fma: fewer
    roundings, so within them), and their reduce-scatter of 8 tokens' lane
    sums adds the same operands in the same tree as the butterfly (the same
    bits). The rest's sums and the variance's are ascending in slot order,
    the variance's products fused too."""
    xh = pooled_heads64(x, hf, kvg)
    b, g, n, d = xh.shape
    t = -(-n // c)
    v_lane = d // 32
    ex_tok = hf * U32 * np.abs(xh) if hf > 1 else np.zeros_like(xh)

    def slots(a):
        a = np.concatenate([a, np.zeros((b, g, t * c - n) + a.shape[3:])], axis=2)
        return a.reshape((b, g, t, c) + a.shape[3:])

    xs, exs = slots(xh), slots(ex_tok)
    valid = np.broadcast_to(np.arange(t * c).reshape(t, c) < n, (b, g, t, c))
    center = xh.mean(axis=2)[:, :, None, None]
    dc = center_error(xh, hf, elem_bytes=elem_bytes)[:, :, None, None]
    y = xs - center
    score = (y**2).sum(-1)
    e = U32 * np.abs(y) + dc + exs
    eps = {"score": (2 * np.abs(y) * e + e**2).sum(-1) + (v_lane + 6) * U32 * ((np.abs(y) + e) ** 2).sum(-1)}
    values = {"score": score}
    if hot:
        qh = pooled_heads64(queries, hf, 1)
        probe = qh.mean(axis=2)[:, :, None, None]
        dp = center_error(qh, hf, elem_bytes=elem_bytes)[:, :, None, None]
        values["heat"] = (xs * probe).sum(-1)
        eps["heat"] = (np.abs(xs) * dp + exs * np.abs(probe)).sum(-1) + (v_lane + 6) * U32 * (
            np.abs(xs) * (np.abs(probe) + dp)
        ).sum(-1)
    picks = np.full((b, g, t, r), c)
    taken = np.zeros((b, g, t, c), dtype=bool)
    for i in range(r):
        v = values["heat" if i < hot else "score"]
        free = valid & ~taken
        best = np.argmax(np.where(free, v, -np.inf), axis=-1)
        ok = free.any(-1)
        picks[..., i] = np.where(ok, best, c)
        taken |= (np.arange(c) == best[..., None]) & ok[..., None]
    rest = valid & ~taken
    rest = np.where(rest.any(-1, keepdims=True), rest, valid)
    cnt = rest.sum(-1)[..., None]
    mean = np.where(rest[..., None], xs, 0.0).sum(-2) / cnt
    out = [mean]
    at = np.minimum(picks, c - 1)[..., None]
    for i in range(r):
        tok = np.take_along_axis(xs, at[..., i : i + 1, :], axis=-2)[..., 0, :]
        out.append(np.where((picks[..., i] == c)[..., None], mean, tok))
    dev = np.where(rest[..., None], np.abs(xs - mean[..., None, :]), 0.0)
    ex_rest = np.where(rest[..., None], exs, 0.0)
    # The rest's f32 sum (n terms, ascending) and division; the variance's
    # terms move with the mean's error, their own rounding and the sum's.
    tol_mean = ((cnt + 1) * U32 * np.where(rest[..., None], np.abs(xs), 0.0).sum(-2) + ex_rest.sum(-2)) / cnt
    tol_mean = tol_mean + U32 * np.abs(mean)
    tols = [tol_mean] + [np.take_along_axis(exs, at[..., i : i + 1, :], axis=-2)[..., 0, :] for i in range(r)]
    if spread:
        var = (dev**2).sum(-2) / cnt
        e2 = np.where(rest[..., None], tol_mean[..., None, :] + exs + U32 * dev, 0.0)
        tols.append(((2 * dev * e2 + e2**2).sum(-2) + (cnt + 2) * U32 * ((dev + e2) ** 2).sum(-2)) / cnt + U32 * var)
        out.append(var)
    return {
        "xs": xs,
        "exs": exs,
        "valid": valid,
        "values": values,
        "eps": eps,
        "picks": picks,
        "out": np.stack(out, axis=3),
        "tol": np.stack(tols, axis=3),
    }


def gpu_picks(model, out_gpu, c, r):
    """The tokens the GPU's outlier slots hold: per pick, a real token of
    the composite equal to the slot (within the pooled token's rounding;
    the float64 pick first when it is one of them), or c when the slot is
    the GPU's mean (none); -1 when it is neither."""
    xs, exs, ref = model["xs"], model["exs"], model["picks"]
    picks = np.full(ref.shape, -1)
    for i in range(r):
        slot = out_gpu[:, :, :, i + 1][:, :, :, None, :]
        match = (np.abs(xs - slot) <= exs).all(-1) & model["valid"]
        first = np.where(match.any(-1), np.argmax(match, axis=-1), -1)
        ref_i = np.minimum(ref[..., i], c - 1)
        ref_ok = (ref[..., i] < c) & np.take_along_axis(match, ref_i[..., None], axis=-1)[..., 0]
        is_mean = (out_gpu[:, :, :, i + 1] == out_gpu[:, :, :, 0]).all(-1)
        picks[..., i] = np.where(ref_ok, ref[..., i], np.where(first >= 0, first, np.where(is_mean, c, -1)))
    return picks


def judge_picks(model, picks, c, hot, exact):
    """Composites whose GPU picks differ from float64's: each must differ
    first at a near-tie (the two tokens' values within the sum of their
    error bounds; with `exact` inputs, whose sums are exact, none may
    differ). Returns (differing, violations, first violation)."""
    ref = model["picks"]
    differ = np.argwhere((picks != ref).any(-1))
    bad = []
    for bgt in differ:
        row_gpu, row_ref = picks[tuple(bgt)], ref[tuple(bgt)]
        i = int(np.argmax(row_gpu != row_ref))
        kind = "heat" if i < hot else "score"
        a, g = int(row_ref[i]), int(row_gpu[i])
        v, e = model["values"][kind][tuple(bgt)], model["eps"][kind][tuple(bgt)]
        ok = not exact and 0 <= a < c and 0 <= g < c and abs(v[a] - v[g]) <= e[a] + e[g]
        if not ok:
            bad.append((tuple(int(z) for z in bgt), i, kind, a, g))
    return len(differ), len(bad), bad[:1]


def outlier_compress_inputs(kind, n, hq, hkv, d, seed, rng):
    """check_outlier_compress's (q, k) float32 arrays, batch 2: "structured"
    (unisparse.synthetic at peak 1.5, seed + n) or "exact" (integers in
    {-1, 0, 1} from `rng`, the second half of the tokens the first negated)."""
    if kind == "structured":
        return structured_qkv(2, hq, hkv, n, d, seed=seed + n, peak=1.5)[:2]
    return tuple(
        np.concatenate([h, -h], axis=2)
        for h in (rng.integers(-1, 2, size=(2, h_, n // 2, d)).astype(np.float32) for h_ in (hq, hkv))
    )


def run_entry(fn, tensors, device="cuda"):
    """Entry point `fn` of a compiled library on `tensors` (their memref
    descriptors packed): on the GPU, then synchronized; with device "cpu",
    the same entry built for the CPU on CPU tensors."""
    if device == "cuda":
        gpu.call_entry(fn, tensors)
        torch.cuda.synchronize()
    else:
        buf, addresses = gpu.packed_descriptors(tensors)
        fn(*map(ctypes.c_void_p, addresses))
        del buf


def check_outlier_compress(seed, quick=False, lib=None, device="cuda"):
    """The outlier compress kernels alone (scripts/gpu/outlier_compress_entry.mlir)
    against float64 (outlier_model) on inputs of two kinds: structured
    (unisparse.synthetic, peak 1.5) and exact (integers in {-1, 0, 1}, the
    second half of the tokens the first negated: every sum the kernels form
    is exact, the center and the probe 0, so scores tie often and heats
    always, and the picks must equal float64's, ties to the lower slot).
    Batch 2, lengths with partial last composites and a last composite of
    at most r tokens (962: 2 tokens past the last full composite of 12, 16,
    32, 48), GQA, head pooling, f16 and bf16. Checked: the picks (read back
    from the outlier slots) equal float64's except first at a near-tie
    (within the tokens' score or heat bounds), counted; on composites with
    the same picks every slot within its bound (the rest's mean, the
    outliers, the spread); and the bf16 entry's composites are the f32
    entry's rounded once, bit for bit. (`lib`, `device`: the same entries
    built for the CPU, run on CPU tensors, to try the check without a GPU.)"""
    from unisparse import _build
    from unisparse.reference import outlier

    if lib is None:
        gpu.load_runtime(os.environ["UNISPARSE_CUDA_RUNTIME"])
        aot = pathlib.Path(os.environ["UNISPARSE_AOT_DIR"])
        lib = _build.load_library(aot / configs.lib_name("outlier_compress", "cuda"))

    rng = np.random.default_rng(seed)
    lengths = {"structured": (962,) if quick else (962, 4099, 32768), "exact": (962, 4098)}
    for name, (dtype, d, hq, hkv, keys, at) in OUTLIER_COMPRESS_ENTRIES.items():
        fn = getattr(lib, "_mlir_ciface_" + name)
        fn.restype = None
        tdt = torch.bfloat16 if dtype == "bf16" else torch.float16
        for kind, ns in lengths.items():
            for n in ns:
                if n > 5000 and d != 128:
                    continue
                q, k = outlier_compress_inputs(kind, n, hq, hkv, d, seed, rng)
                qt, kt = (torch.from_numpy(np.ascontiguousarray(a)).to(device, tdt) for a in (q, k))
                x = kt if keys else qt
                q64, x64 = qt.double().cpu().numpy(), x.double().cpu().numpy()
                c, r, hot = at["c"], at["r"], at["hot"]
                model = outlier_model(
                    x64, c, r, at["hf"], at["kvg"], hot, at["spread"], q64 if hot else None, x.element_size()
                )
                b, g, t = model["picks"].shape[:3]
                slots = r + 1 + int(at["spread"])
                out = torch.full((b, g, t, slots, d), float("nan"), device=device, dtype=torch.float32)
                run_entry(fn, [x, qt, out] if hot else [x, out], device)
                o = out.double().cpu().numpy()
                label = f"outlier compress alone {name} {kind} N={n}"
                ref_out = outlier.compress_outlier(
                    x64,
                    c,
                    r,
                    head_factor=at["hf"],
                    kv_group=at["kvg"],
                    spread=at["spread"],
                    hot=hot,
                    queries=q64 if hot else None,
                )
                record(
                    f"{label}: the float64 model is the reference's",
                    bool(np.allclose(model["out"], ref_out, rtol=1e-12, atol=1e-12)),
                    f"max |diff| {np.abs(model['out'] - ref_out).max():.1e}",
                )
                picks = gpu_picks(model, o, c, r)
                differ, bad, first = judge_picks(model, picks, c, hot, exact=kind == "exact")
                record(
                    f"{label}: picks equal float64's{' (exact)' if kind == 'exact' else ' but at near-ties'}",
                    bad == 0 and bool(np.isfinite(o).all()),
                    f"{b * g * t} composites, {differ} differ ({bad} not at a near-tie"
                    + (f"; first {first})" if bad else ")"),
                )
                same = (picks == model["picks"]).all(-1)
                err = np.abs(o - model["out"])[same]
                tol = model["tol"][same] + 1e-30
                record(
                    f"{label}: slots within their f32 bounds (same picks)",
                    bool(np.all(err <= tol)),
                    f"max |diff| {err.max():.2e}, max ratio to the bound {float((err / tol).max()):.2f}",
                )
                if name == "oc_q_bf16_d128" and kind == "structured":
                    fn16 = getattr(lib, "_mlir_ciface_oc_q_bf16_d128_out16")
                    fn16.restype = None
                    out16 = torch.full(out.shape, float("nan"), device=device, dtype=torch.bfloat16)
                    run_entry(fn16, [x, out16], device)
                    record(
                        f"{label}: bf16 composites are the f32 ones rounded once (bits)",
                        bool(torch.equal(bits(out16), bits(out.to(torch.bfloat16)))),
                        "",
                    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument(
        "--only", nargs="+", default=None, metavar="NAME", help="check only these configurations of configs.CHECK"
    )
    p.add_argument("--seed", type=int, default=None, help="the inputs' seed (default: fresh inputs every run)")
    a = p.parse_args()
    torch.manual_seed(0)
    seed = int.from_bytes(os.urandom(2), "little") if a.seed is None else a.seed
    print(f"seed {seed}, {torch.cuda.get_device_name()}", flush=True)
    want = lambda name: a.only is None or name in a.only  # noqa: E731
    for name in ("dense_bf16_d128", "dense_f16_d64_noncausal"):
        for n in (1000, 2048):
            if want(name):
                check_dense(name, n, seed)
    for name in (
        "gqa_bf16_d128",
        "noncausal_f16_d64",
        "ch2_bf16_d128",
        "default_bf16_d128",
        "qmax_bf16_d128",
        "rk2_f16_d64",
        "default_fused_bf16_d128",
        "qmax_fused_bf16_d128",
        "rk2_fused_f16_d64",
        "default_f32p_bf16_d128",
        "default_f32p_fused_bf16_d128",
    ):
        for n in (1000,) if a.quick else (1000, 4096):
            if want(name):
                check_sparse(name, n, seed + 1)
    # The separate epilogue in chunks of one wave of 3 units: 1000 tokens
    # (one query tile per head), 5000 (three: a pair and a middle tile).
    for name in ("default_chunk_bf16_d128", "rk2_chunk_f16_d64"):
        for n in (1000,) if a.quick else (1000, 5000):
            if want(name):
                check_sparse(name, n, seed + 9)
    # The antidiagonal estimators on the tensor-core kernel, at lengths with
    # a partial last block and a partial last composite (zero slots).
    antidiagonal = (
        "antidiag_lse_max_bf16_d128",
        "antidiag_bf16_d128",
        "antidiag_ch2_f16_d64",
        "antidiag_lse_ch4_bf16_d64",
    )
    for name in antidiagonal:
        for n in (1001,) if a.quick else (1001, 4099):
            if want(name):
                check_sparse(name, n, seed + 8)
    if not a.quick:
        for name in antidiagonal[:2]:
            if want(name):
                for n in (8192, 10001):
                    check_layout(name, n, seed + 9)
    # The outlier estimator (its compress kernels, its scoring kernel),
    # partial last blocks and composites, GQA, batch 2;
    # the preset with f32 partial sums in the scoring kernel's scratch, and
    # with pass 2's exponentials on the FMA pipe (also at 16K: most of its
    # key tiles unmasked, where the polynomial runs); then the `recommended`
    # preset at 32 / 8 heads and 32K tokens.
    for name in (
        "outlier_bf16_d128",
        "outlier_ch2_f16_d64",
        "outlier_f32p_bf16_d128",
        "outlier_poly_bf16_d128",
        "outlier_ck8_f16_d64",
        "outlier_ck2_bf16_d128",
    ):
        for n in (1000,) if a.quick else (1000, 4099):
            if want(name):
                check_sparse(name, n, seed + 12)
    if want("outlier_poly_bf16_d128") and not a.quick:
        check_layout("outlier_poly_bf16_d128", 16384, seed + 12)
    if want("outlier_h32_bf16_d128") and not a.quick:
        check_layout("outlier_h32_bf16_d128", 32768, seed + 12)
    # The scoring kernel pooling its queries, against the compress kernel
    # (bit for bit), at lengths with a partial last composite (1000 = 62.5
    # composites of 16) and block, batch 2; and the whole path (attention
    # too) on the first length.
    for name in ("qfuse_bf16_d128", "qfuse_ch2_f16_d64", "qfuse_ch4_bf16_d128"):
        if want(name):
            check_sparse(name, 1000, seed + 13)
            for n in (1000,) if a.quick else (1000, 4099, 8200):
                check_query_pooling(name, n, seed + 13)
    # The slash refinement (the refinement kernels; `_loops`: the loop
    # path) at lengths with a partial last block, GQA, batch 2; a bf16, an
    # f32 and an outlier (`peaked`) first pass, that one also normalised
    # (refine_norm) and with 12 probe rows and 7 offsets, and with width 8
    # (the widest candidates, two ballot words a unit); then the long
    # shapes of 32 / 8 heads (the GPU against float64 only).
    for name in (
        "slash_bf16_d128",
        "slash_f32_d128",
        "slash_ch2_f16_d64",
        "slash_loops_bf16_d128",
        "slash_peaked_bf16_d128",
        "slash_norm_bf16_d128",
        "slash_odd_bf16_d128",
        "slash_w8_bf16_d128",
        "peaked_bf16_d128",
    ):
        for n in (1000,) if a.quick else (1000, 4099):
            if want(name):
                check_refine(name, n, seed + 11)
    for name in ("slash_h32_bf16_d128", "peaked_h32_bf16_d128"):
        if want(name) and not a.quick:
            for n in (32768, 100000):
                check_refine(name, n, seed + 13, cpu=False, batch=1)
    # The probe kernel's own slot rules (more candidate slots than the
    # evidence row holds), and the narrow probe kernel (16,386 key blocks;
    # one head group, so a few seeds for one without a near tie).
    if want("slash_rule_bf16_d128"):
        for n in (600,) if a.quick else (600, 650):
            check_refine("slash_rule_bf16_d128", n, seed + 11)
    if want("slash_narrow_bf16_d64") and not a.quick:
        check_refine("slash_narrow_bf16_d64", (1 << 20) + 100, seed + 3, cpu=False, batch=1, tries=4)
    # The default configuration non-causal: the outlier first pass alone.
    for n in (1000,) if a.quick else (1000, 4099):
        if want("peaked_noncausal_f16_d64"):
            check_sparse("peaked_noncausal_f16_d64", n, seed + 12)
    for n in (1000, 2048):
        if want("nan_minblocks_bf16_d64"):
            check_nan("nan_minblocks_bf16_d64", n, seed + 2)
    # The default configuration's layout against the CPU path's at the
    # lengths the estimation is meant for (8K, 100000 with a partial last
    # block and composite, 128K).
    if want("default_bf16_d128") and not a.quick:
        for n in (8192, 100000, 131072):
            check_layout("default_bf16_d128", n, seed + 7)
    # Rows of 313 and 548 key blocks (sorts of 512 and 1024), and ties.
    for name in ("default_bf16_d128", "noncausal_f16_d64"):
        if want(name):
            for n in (40000, 70100):
                check_selection(name, n, seed + 5)
            check_selection(name, 70100, seed + 6, ties=True)
    if want("long_bf16_d64"):
        check_long("long_bf16_d64", (1 << 20) + 100, seed + 3)
    if want("long_antidiag_lse_bf16_d64"):
        check_long("long_antidiag_lse_bf16_d64", (1 << 20) + 101, seed + 3)
    if want("default_bf16_d128"):
        check_guard("default_bf16_d128", 4096, seed + 4)
    if want("kernel_env"):
        check_kernel_env()
    if want("pool_env"):
        check_pool_env()
    if want("select"):
        check_select_scores(seed + 10)
    if want("outlier_compress"):
        check_outlier_compress(seed + 14, quick=a.quick)
    if want("default_bf16_d128"):
        check_default_stream("default_bf16_d128", 8192, seed + 8)
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
