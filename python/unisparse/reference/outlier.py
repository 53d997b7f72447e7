"""The outlier-aware composite estimator (``estimator="outlier"``) of the NumPy reference.

Mean pooling scores a composite pair by the logit of two means, so a key
that stands out of its composite (a one-token vertical line, a few needle
keys) keeps ``1/c`` of its logit, and the softmax of a pooled query is
sharper than the mean of its rows' softmaxes (the rows' own fluctuations
are averaged away before the exponential): both make the tail of the
estimated distribution too light, and top-p on it stops early. This
estimator fixes both at a small multiple of mean pooling's cost:

1. **Outlier composites** (:func:`compress_outlier`): a composite of ``c``
   tokens keeps ``r`` of its tokens as they are and pools the rest, so a
   line or a needle key enters the softmax at its full logit, with the
   weight of one token. For the keys one of them is the token the mean
   query attends to most (a sink), the others the tokens farthest from the
   sequence mean (a needle, a line); for the queries, the farthest rows.
2. **Spread correction** (:func:`block_score`): each query composite also
   carries the spread of its pooled rows; the softmax is taken twice, the
   second time with every logit moved by the second-order (delta-method)
   correction of the mean of the rows' softmaxes, exponentiated. A key the
   pooled query barely prefers gains mass, the dominant key loses some.

The semantics are written out in the docstrings; the compiled lowering
(``unisparse.compress {pooling = outlier}``, ``unisparse.block_score
{estimator = outlier}``) follows them, and ``docs/Fidelity.md`` gives the
measurements behind the choice. Everything is float64.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import _CHUNK_ELEMS, _ceil_div, _check_pos_int, _default_scale, block_sums, composite_shapes
from .composites import compress
from .estimators import check_estimation

__all__ = ["compress_outlier", "block_score", "estimate"]


def compress_outlier(
    x,
    seq_factor: int,
    outliers: int,
    head_factor: int = 1,
    kv_group: int = 1,
    spread: bool = False,
    hot: int = 0,
    queries=None,
) -> np.ndarray:
    """Outlier composites of ``x [B, H, N, D]``.

    Heads are pooled exactly as :func:`unisparse.reference.compress` pools
    them (``head_factor`` expanded heads, each source head repeated
    ``kv_group`` times), giving ``xh [B, G, N, D]``. Then, for composite
    ``t`` (tokens ``t*c .. min((t+1)*c, N) - 1``, ``c = seq_factor``), its
    ``r = outliers`` **outliers** are, in this order:

    * ``hot`` **hot** tokens: those with the largest ``probe[g] . x_n``,
      where ``probe[g]`` is the mean of ``queries [B, G * head_factor, Nq,
      D]`` over the group's query heads ``g * head_factor ..`` and all
      ``Nq`` tokens (the key the average query of the head group attends to
      most: a sink, a vertical line);
    * ``r - hot`` **rare** tokens: among the others, those farthest (squared
      distance) from the **center**, the mean of ``xh`` over all ``N``
      tokens of the head group (a needle, a line);

    each kind in descending order of its score (ties: the lower token
    first). The **rest** is the composite's other tokens, or all of its
    tokens when it has no other (a last composite of ``r`` tokens or fewer).

    Returns float64 ``[B, G, T, r + 1, D]`` (``T = ceil(N / c)``): slot 0
    holds the mean of the rest, slots ``1 .. r`` the outliers (hot ones
    first); an outlier slot past the composite's tokens holds the mean of
    the rest. With ``spread`` a last slot ``r + 1`` is added: the
    per-coordinate variance of the rest around its mean
    (``mean_n (x_n - mean)^2``), which :func:`block_score` reads for the
    query composites.
    """
    c = _check_pos_int("seq_factor", seq_factor)
    r = _check_pos_int("outliers", outliers)
    hot = _check_pos_int("hot", hot, 0)
    if r >= c:
        raise ValueError(f"outliers = {r} must be smaller than seq_factor = {c}")
    if hot > r:
        raise ValueError(f"hot = {hot} must not exceed outliers = {r}")
    xh = compress(x, 1, head_factor=head_factor, kv_group=kv_group)  # checks x and the head factors
    B, G, N, D = xh.shape
    if hot:
        if queries is None:
            raise ValueError("hot outliers need the queries")
        qh = compress(queries, 1, head_factor=head_factor)
        if qh.shape[0] != B or qh.shape[1] != G or qh.shape[3] != D:
            raise ValueError(
                f"queries shape {np.shape(queries)} is inconsistent with {G} head groups of "
                f"{head_factor} heads over x shape {np.shape(x)}"
            )
        probe = qh.mean(axis=2)  # [B, G, D]
    T = _ceil_div(N, c)
    center = xh.mean(axis=2, keepdims=True) if N else xh.sum(axis=2, keepdims=True)
    score = ((xh - center) ** 2).sum(-1)
    pad = T * c - N
    if pad:
        xh = np.concatenate([xh, np.zeros((B, G, pad, D))], axis=2)
        score = np.concatenate([score, np.full((B, G, pad), -np.inf)], axis=2)
    xs = xh.reshape(B, G, T, c, D)
    score = score.reshape(B, G, T, c)
    valid = np.isfinite(score)
    if hot:
        heat = np.where(valid, np.einsum("bgtcd,bgd->bgtc", xs, probe), -np.inf)
        hot_order = np.argsort(-heat, axis=-1, kind="stable")[..., :hot]
        score = score.copy()
        np.put_along_axis(score, hot_order, -np.inf, axis=-1)
        rare_order = np.argsort(-score, axis=-1, kind="stable")[..., : r - hot]
        order = np.concatenate([hot_order, rare_order], axis=-1)
        picked = np.take_along_axis(valid, order, axis=-1)
        # a rare slot past the composite's other tokens (score -inf) is empty
        picked[..., hot:] &= np.isfinite(np.take_along_axis(score, rare_order, axis=-1))
    else:
        order = np.argsort(-score, axis=-1, kind="stable")[..., :r]  # [B, G, T, r]
        picked = np.take_along_axis(valid, order, axis=-1)
    # (Or over the picks: an empty rare slot may name a hot token's slot,
    # which must stay out of the rest.)
    is_out = ((np.arange(c) == order[..., None]) & picked[..., None]).any(-2)
    rest = valid & ~is_out
    rest = np.where(rest.any(-1, keepdims=True), rest, valid)
    n_rest = rest.sum(-1)[..., None]
    mean = np.where(rest[..., None], xs, 0.0).sum(-2) / np.maximum(n_rest, 1)
    out = np.empty((B, G, T, r + 1 + int(spread), D))
    out[:, :, :, 0] = mean
    tokens = np.take_along_axis(xs, order[..., None], axis=-2)  # [B, G, T, r, D]
    out[:, :, :, 1 : r + 1] = np.where(picked[..., None], tokens, mean[:, :, :, None])
    if spread:
        dev = np.where(rest[..., None], xs - mean[:, :, :, None], 0.0)
        out[:, :, :, r + 1] = (dev**2).sum(-2) / np.maximum(n_rest, 1)
    return out


def block_score(
    qc, kc, block: int, c_q: int, c_k: int, causal: bool = True, scale=None, query_reduce: str = "sum"
) -> np.ndarray:
    """Block scores of the outlier estimator.

    ``qc [B, Hg, Tq, rq + 2, D]`` is :func:`compress_outlier` of the queries
    with ``spread`` (slots: rest mean, ``rq`` outlier rows, spread) and
    ``kc [B, Hg, Tk, rk + 1, D]`` that of the keys without it (rest mean,
    ``rk`` outlier keys). With ``s`` the scale (default ``1/sqrt(D)``):

    * key slot ``b`` stands for ``w_b`` tokens: ``w_0 = c_k - rk`` (the
      rest) and ``w_b = 1`` (an outlier); query slot ``a`` for a share
      ``omega_a`` of the composite's rows: ``omega_0 = (c_q - rq) / c_q``
      and ``omega_a = 1 / c_q``. Every composite weighs as a full one, a
      partial last composite included (as mean pooling weighs it);
    * the logit of (query slot ``(t, a)``, key slot ``(u, b)``) is
      ``x = s * qc[t, a] . kc[u, b] + log w_b``, ``-inf`` where key
      composite ``u`` is not visible from query composite ``t`` (the
      causal rule of :func:`unisparse.reference.block_score`);
    * ``p = softmax(x)`` over all key slots ``(u, b)`` of the row
      ``(t, a)``;
    * the spread correction: ``sigma2 = s^2 * v[t, a] * |kc[u, b]|^2`` with
      ``v[t, 0]`` the mean over ``d`` of the spread slot and ``v[t, a] = 0``
      for an outlier row; ``y = x + sigma2 * (1 - 2 p) / 2`` and
      ``p' = softmax(y)`` over the same slots. (For logits with independent
      Gaussian noise of variance ``sigma2``, ``E[softmax]_j`` is ``p_j``
      times ``1 + (sigma2_j (1 - 2 p_j) + C) / 2`` to second order, ``C``
      the same for the whole row; the exponential of it keeps the limit
      of a dominant key exact: every other key gains ``exp(sigma2 / 2)``.)
    * ``A[t, u] = sum_a omega_a sum_b p'[t, a, u, b]`` (a row of ``A``
      sums to 1), then the block sums and the query reduction of
      :func:`unisparse.reference.block_score` (``sum`` or ``max`` over the
      query composites of a block).

    A row whose logits are all ``-inf`` gives NaN, as in the other
    estimators.
    """
    block, c_q, c_k = check_estimation(block, c_q, c_k, "outlier", query_reduce)
    qc, kc, (B, Hg, Tq, Tk, D) = composite_shapes(qc, kc, 5, "outlier")
    sq, sk = qc.shape[3], kc.shape[3]
    rq, rk = sq - 2, sk - 1
    if not (1 <= rq < c_q) or not (1 <= rk < c_k):
        raise ValueError(
            f"estimator 'outlier' needs 1 <= rq < c_q and 1 <= rk < c_k, got rq = {rq} "
            f"(qc slots {sq} = rq + 2), c_q = {c_q}, rk = {rk} (kc slots {sk} = rk + 1), c_k = {c_k}"
        )
    rq_blk, rk_blk = block // c_q, block // c_k
    NBq, NBk = _ceil_div(Tq, rq_blk), _ceil_div(Tk, rk_blk)
    scale = _default_scale(scale, D)

    qf = qc.astype(np.float64, copy=False)
    kf = kc.astype(np.float64, copy=False)
    reps = qf[:, :, :, : rq + 1]  # [B, Hg, Tq, rq+1, D]
    v = np.zeros((B, Hg, Tq, rq + 1))
    v[..., 0] = qf[:, :, :, rq + 1].mean(-1)
    logw = np.zeros(sk)
    logw[0] = math.log(c_k - rk)
    knorm2 = (kf**2).sum(-1)  # [B, Hg, Tk, sk]
    omega = np.full(rq + 1, 1.0 / c_q)
    omega[0] = (c_q - rq) / c_q
    kflat = kf.reshape(B, Hg, Tk * sk, D)

    s = np.zeros((B, Hg, NBq, NBk))
    if NBq == 0 or NBk == 0:
        return s
    u = np.arange(Tk)
    step = max(1, _CHUNK_ELEMS // max(1, B * Hg * rq_blk * (rq + 1) * Tk * sk))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for I0 in range(0, NBq, step):
            I1 = min(NBq, I0 + step)
            t0, t1 = I0 * rq_blk, min(Tq, I1 * rq_blk)
            tq = t1 - t0
            x = np.matmul(reps[:, :, t0:t1].reshape(B, Hg, tq * (rq + 1), D), np.swapaxes(kflat, -1, -2))
            x = x.reshape(B, Hg, tq, rq + 1, Tk, sk) * scale + logw
            if causal:
                t = np.arange(t0, t1)
                vis = u[None, :] * c_k <= (t[:, None] + 1) * c_q - 1  # [tq, Tk]
                x = np.where(vis[:, None, :, None], x, -np.inf)
            p = _softmax(x)
            sig = (scale * scale) * v[:, :, t0:t1, :, None, None] * knorm2[:, :, None, None]
            p = _softmax(x + 0.5 * sig * (1.0 - 2.0 * p))
            A = np.einsum("bgtaus,a->bgtu", p, omega)
            s[:, :, I0:I1] = block_sums(A, I1 - I0, rq_blk, NBk, rk_blk, query_reduce)
    return s


def _softmax(x):
    """Softmax over the key slots (the last two axes) of every row."""
    m = x.max(axis=(-2, -1), keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=(-2, -1), keepdims=True)


def estimate(
    q,
    k,
    block: int,
    c_q: int,
    c_k: int,
    c_h: int = 1,
    causal: bool = True,
    scale=None,
    query_reduce: str = "sum",
    q_outliers: int = 1,
    k_outliers: int = 2,
) -> np.ndarray:
    """Stages 1 and 2 of the outlier estimator for ``q [B, Hq, N, D]``,
    ``k [B, Hkv, N, D]``: :func:`compress_outlier` of the queries
    (``q_outliers`` rare rows, with spread) and of the keys (``k_outliers``:
    one hot key, the rest rare; brought to the query heads with
    ``kv_group = Hq / Hkv``), then :func:`block_score`."""
    Hq, Hkv = np.shape(q)[1], np.shape(k)[1]
    qc = compress_outlier(q, c_q, q_outliers, head_factor=c_h, kv_group=1, spread=True)
    kc = compress_outlier(k, c_k, k_outliers, head_factor=c_h, kv_group=Hq // Hkv, hot=1, queries=q)
    return block_score(qc, kc, block, c_q, c_k, causal=causal, scale=scale, query_reduce=query_reduce)
