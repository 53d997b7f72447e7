"""PyTorch transcription of the reference's estimation, for the fidelity harness at 32K-128K.

:func:`estimate` computes exactly what :func:`unisparse.reference.estimate`
specifies (compress + block_score for every estimator and query reduction),
on any torch device, in float64 unless told otherwise; the tests hold it to
the NumPy reference. :func:`dense_chunks` is the harness's shared dense
pass (per evaluated row: softmax mass and ``p @ V`` per key block) on torch.
Neither is a compiled path: they exist so that ``python -m unisparse.fidelity
--device cuda`` can measure long sequences on a GPU machine without LLVM.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["estimate", "dense_chunks"]


def _pool_heads(x: torch.Tensor, head_factor: int, kv_group: int) -> torch.Tensor:
    B, H, N, D = x.shape
    e = torch.arange(H * kv_group, device=x.device) // kv_group
    return x[:, e].reshape(B, H * kv_group // head_factor, head_factor, N, D).mean(dim=2)


def _composites(x, stride, head_factor, kv_group, strided, reverse=False):
    """Mean composites ``[B, G, T, D]`` or strided ``[B, G, T, s, D]`` (zero-padded)."""
    xh = _pool_heads(x, head_factor, kv_group)
    B, G, N, D = xh.shape
    T = -(-N // stride)
    xp = torch.nn.functional.pad(xh, (0, 0, 0, T * stride - N)).reshape(B, G, T, stride, D)
    if strided:
        return xp.flip(3) if reverse else xp
    n_tok = torch.clamp(N - torch.arange(T, device=x.device) * stride, max=stride).to(xp.dtype)
    return xp.sum(dim=3) / n_tok[:, None]


def estimate(
    q,
    k,
    block,
    c_q,
    c_k,
    c_h=1,
    causal=True,
    scale=None,
    estimator="mean",
    query_reduce="sum",
    device="cpu",
    dtype=torch.float64,
    chunk_elems=1 << 26,
    q_outliers=1,
    k_outliers=2,
) -> np.ndarray:
    """Block scores ``[B, Hq/c_h, NB, NB]`` (NumPy float64), as
    :func:`unisparse.reference.estimate` defines them."""
    from .reference import check_estimation

    block, c_q, c_k = check_estimation(block, c_q, c_k, estimator, query_reduce)
    q = torch.as_tensor(np.asarray(q), device=device).to(dtype)
    k = torch.as_tensor(np.asarray(k), device=device).to(dtype)
    if estimator == "outlier":
        return _estimate_outlier(
            q, k, block, c_q, c_k, c_h, causal, scale, query_reduce, q_outliers, k_outliers, chunk_elems
        )
    B, Hq, N, D = q.shape
    G = Hq // k.shape[1]
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    strided = estimator != "mean"
    qc = _composites(q, c_q, c_h, 1, strided, reverse=True)
    kc = _composites(k, c_k, c_h, G, strided)
    Hg, Tq, Tk = qc.shape[1], qc.shape[2], kc.shape[2]
    rq, rk = block // c_q, block // c_k
    NBq, NBk = -(-Tq // rq), -(-Tk // rk)
    s = torch.zeros((B, Hg, NBq, NBk), dtype=dtype, device=device)
    u = torch.arange(Tk, device=device)
    step = max(1, chunk_elems // max(1, B * Hg * rq * Tk * (c_q if strided else 1)))
    for I0 in range(0, NBq, step):
        I1 = min(NBq, I0 + step)
        t0, t1 = I0 * rq, min(Tq, I1 * rq)
        if not strided:
            x = torch.matmul(qc[:, :, t0:t1], kc.transpose(-1, -2)) * scale
        else:
            xs = torch.einsum("bgtad,bguad->bgtua", qc[:, :, t0:t1], kc) * scale
            if estimator == "antidiag":
                x = xs.sum(-1) / c_q
            else:
                m = xs.amax(-1)
                m_safe = torch.where(torch.isfinite(m), m, 0.0)
                x = m_safe + torch.log(torch.exp(xs - m_safe[..., None]).sum(-1) / c_q)
            del xs
        if causal:
            t = torch.arange(t0, t1, device=device)
            x = torch.where(u[None, :] * c_k <= (t[:, None] + 1) * c_q - 1, x, -math.inf)
        # As the reference: a row of -inf logits (only -inf/NaN inputs make
        # one) gives NaN.
        p = torch.exp(x - x.amax(-1, keepdim=True))
        p = p / p.sum(-1, keepdim=True)
        p = torch.nn.functional.pad(p, (0, NBk * rk - Tk, 0, (I1 - I0) * rq - (t1 - t0)))
        pb = p.reshape(B, Hg, I1 - I0, rq, NBk, rk).sum(5)
        s[:, :, I0:I1] = pb.sum(3) if query_reduce == "sum" else pb.amax(3)
    return s.cpu().numpy()


def dense_chunks(q, k, v, rows, fine, causal=True, scale=None, device="cpu", dtype=torch.float64, chunk_elems=1 << 26):
    """The harness's shared dense pass (batch 0) on torch: yields, per query
    head ``h`` and chunk of evaluated rows starting at ``r0``,
    ``(h, r0, mass [r, NBf], wsum [r, NBf, D])`` as torch tensors on
    ``device``: each row's unnormalised softmax mass and ``p @ V`` partial
    sum per key block of ``fine`` tokens (what
    :func:`unisparse.fidelity.evaluate` consumes)."""
    _, Hq, N, D = q.shape
    Hkv = k.shape[1]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    NBf = -(-N // fine)
    pad = NBf * fine - N
    rows_t = torch.as_tensor(np.asarray(rows), device=device)
    step = max(1, chunk_elems // max(1, N))
    j = torch.arange(N, device=device)
    for h in range(Hq):
        kh = h // (Hq // Hkv)
        kf = torch.as_tensor(np.asarray(k[0, kh]), device=device).to(dtype)
        vf = torch.nn.functional.pad(torch.as_tensor(np.asarray(v[0, kh]), device=device).to(dtype), (0, 0, 0, pad))
        vblk = vf.reshape(NBf, fine, D)
        qh = torch.as_tensor(np.asarray(q[0, h]), device=device).to(dtype)
        for r0 in range(0, len(rows), step):
            rr = rows_t[r0 : r0 + step]
            x = (qh[rr] @ kf.T) * scale
            if causal:
                x = torch.where(j[None, :] > rr[:, None], -math.inf, x)
            p = torch.exp(x - x.amax(1, keepdim=True))
            pb = torch.nn.functional.pad(p, (0, pad)).reshape(len(rr), NBf, fine)
            yield h, r0, pb.sum(2), torch.einsum("rbf,bfd->rbd", pb, vblk)


def _outlier_composites(x, c, r, head_factor, kv_group, spread, hot=0, queries=None):
    """:func:`unisparse.outlier.compress_outlier` on torch."""
    xh = _pool_heads(x, head_factor, kv_group)
    B, G, N, D = xh.shape
    T = -(-N // c)
    score = ((xh - xh.mean(2, keepdim=True)) ** 2).sum(-1)
    xs = torch.nn.functional.pad(xh, (0, 0, 0, T * c - N)).reshape(B, G, T, c, D)
    score = torch.nn.functional.pad(score, (0, T * c - N), value=-math.inf).reshape(B, G, T, c)
    valid = torch.isfinite(score)

    def top(v, n):  # a stable descending order: ties go to the lower token
        return torch.sort(-v, dim=-1, stable=True).indices[..., :n]

    if hot:
        probe = _pool_heads(queries, head_factor, 1).mean(2)  # [B, G, D]
        heat = torch.where(valid, torch.einsum("bgtcd,bgd->bgtc", xs, probe), -math.inf)
        hot_order = top(heat, hot)
        score = score.scatter(-1, hot_order, -math.inf)
        rare_order = top(score, r - hot)
        order = torch.cat([hot_order, rare_order], -1)
        picked = torch.gather(valid, -1, order)
        picked[..., hot:] &= torch.isfinite(torch.gather(score, -1, rare_order))
    else:
        order = top(score, r)
        picked = torch.gather(valid, -1, order)
    is_out = torch.zeros_like(valid).scatter(-1, order, picked)
    rest = valid & ~is_out
    rest = torch.where(rest.any(-1, keepdim=True), rest, valid)
    n_rest = rest.sum(-1, keepdim=True).clamp(min=1).to(xh.dtype)
    mean = torch.where(rest[..., None], xs, 0.0).sum(-2) / n_rest
    tokens = torch.gather(xs, -2, order[..., None].expand(B, G, T, r, D))
    slots = [mean[:, :, :, None], torch.where(picked[..., None], tokens, mean[:, :, :, None])]
    if spread:
        dev = torch.where(rest[..., None], xs - mean[:, :, :, None], 0.0)
        slots.append(((dev**2).sum(-2) / n_rest)[:, :, :, None])
    return torch.cat(slots, 3)


def _estimate_outlier(q, k, block, c_q, c_k, c_h, causal, scale, query_reduce, rq, rk, chunk_elems):
    """:func:`unisparse.outlier.estimate` on torch."""
    B, Hq, N, D = q.shape
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    qc = _outlier_composites(q, c_q, rq, c_h, 1, True)
    kc = _outlier_composites(k, c_k, rk, c_h, Hq // k.shape[1], False, hot=1, queries=q)
    Hg, Tq, Tk = qc.shape[1], qc.shape[2], kc.shape[2]
    sk = rk + 1
    rq_blk, rk_blk = block // c_q, block // c_k
    NBq, NBk = -(-Tq // rq_blk), -(-Tk // rk_blk)
    reps = qc[:, :, :, : rq + 1]
    v = torch.zeros((B, Hg, Tq, rq + 1), dtype=q.dtype, device=q.device)
    v[..., 0] = qc[:, :, :, rq + 1].mean(-1)
    logw = torch.zeros(sk, dtype=q.dtype, device=q.device)
    logw[0] = math.log(c_k - rk)
    knorm2 = (kc**2).sum(-1)
    omega = torch.full((rq + 1,), 1.0 / c_q, dtype=q.dtype, device=q.device)
    omega[0] = (c_q - rq) / c_q
    s = torch.zeros((B, Hg, NBq, NBk), dtype=q.dtype, device=q.device)
    u = torch.arange(Tk, device=q.device)
    step = max(1, chunk_elems // max(1, B * Hg * rq_blk * (rq + 1) * Tk * sk))

    def softmax(x):
        e = torch.exp(x - x.amax((-2, -1), keepdim=True))
        return e / e.sum((-2, -1), keepdim=True)

    for I0 in range(0, NBq, step):
        I1 = min(NBq, I0 + step)
        t0, t1 = I0 * rq_blk, min(Tq, I1 * rq_blk)
        x = torch.einsum("bgtad,bgusd->bgtaus", reps[:, :, t0:t1], kc) * scale + logw
        if causal:
            t = torch.arange(t0, t1, device=q.device)
            vis = u[None, :] * c_k <= (t[:, None] + 1) * c_q - 1
            x = torch.where(vis[:, None, :, None], x, -math.inf)
        p = softmax(x)
        sig = (scale * scale) * v[:, :, t0:t1, :, None, None] * knorm2[:, :, None, None]
        p = softmax(x + 0.5 * sig * (1.0 - 2.0 * p))
        A = torch.einsum("bgtaus,a->bgtu", p, omega)
        A = torch.nn.functional.pad(A, (0, NBk * rk_blk - Tk, 0, (I1 - I0) * rq_blk - (t1 - t0)))
        pb = A.reshape(B, Hg, I1 - I0, rq_blk, NBk, rk_blk).sum(5)
        s[:, :, I0:I1] = pb.sum(3) if query_reduce == "sum" else pb.amax(3)
    return s.cpu().numpy()
