"""Stage 2: block scores, the softmax among composites summed into the block
grid (:func:`block_score`), and stages 1 + 2 on q and k (:func:`estimate`)."""

from __future__ import annotations

import numpy as np

from .. import rules
from ._common import _CHUNK_ELEMS, _as_4d, _ceil_div, _default_scale, block_sums, composite_shapes
from .estimators import check_estimation, composite_logits, composites
from .outlier import block_score as outlier_block_score
from .outlier import estimate as outlier_estimate

__all__ = ["block_score", "estimate"]


def block_score(
    qc,
    kc,
    block: int,
    c_q: int,
    c_k: int,
    causal: bool = True,
    scale=None,
    estimator: str = "mean",
    query_reduce: str = "sum",
) -> np.ndarray:
    """Block-summed attention among composite tokens.

    Parameters
    ----------
    qc : composite queries: ``[B, Hg, Tq, D]`` (output of :func:`compress`)
        for ``estimator="mean"``, ``[B, Hg, Tq, c_q, D]`` (output of
        :func:`compress_strided` with ``reverse=True``) for the antidiagonal
        estimators.
    kc : composite keys: ``[B, Hg, Tk, D]``, or ``[B, Hg, Tk, c_k, D]``
        (:func:`compress_strided`, ``reverse=False``).
    block : block size in tokens; must be a multiple of ``c_q`` and ``c_k``.
    c_q, c_k : tokens per query / key composite (equal, the stride, for the
        antidiagonal estimators).
    causal : apply the composite-granularity causal mask.
    scale : logit scale, default ``1 / sqrt(D)``.
    estimator : how a (query composite, key composite) pair gets its logit,
        one of :data:`ESTIMATORS`.
    query_reduce : how the query composites of a block combine, ``"sum"``
        or ``"max"`` (below).

    Returns
    -------
    float64 ``s`` of shape ``[B, Hg, NBq, NBk]`` with
    ``NBq = ceil(Tq / (block // c_q))`` and ``NBk = ceil(Tk / (block // c_k))``
    (both equal ``ceil(N / block)`` for self-attention over ``N`` tokens).

    Semantics
    ---------
    The composite logit ``x[t, u]`` of query composite ``t`` and key
    composite ``u`` is, by ``estimator``:

    * ``"mean"`` (mean pooling): ``scale * qc[t] . kc[u]``, i.e. the mean of
      the ``c_q x c_k`` tile of token logits (the composites are means).
    * ``"antidiag"`` (XAttention): with ``s = c_q = c_k``, the mean over the
      slots ``a < s`` of ``scale * q[t*s + s-1-a] . k[u*s + a]``: the mean
      of one antidiagonal of the ``s x s`` tile (XAttention's antidiagonal
      sum divided by ``s``).
    * ``"antidiag_lse"`` (outlier-aware): the same antidiagonal, combined by
      ``log(mean_a exp(.))`` instead of the mean.  ``exp(x)`` is then an
      unbiased sample estimate of the tile's mean ``exp(logit)`` (each
      antidiagonal meets every row and column of the tile once), so a line
      one token wide or a needle keeps its full logit instead of ``1/s`` of it.
    * ``"outlier"``: composites that keep some of their tokens apart, and a
      spread-corrected two-pass softmax; its own semantics, in
      :func:`unisparse.reference.outlier.block_score` (``qc`` and ``kc``
      from :func:`unisparse.reference.outlier.compress_outlier`).

    A partial last composite is zero-padded (XAttention's convention): a
    slot past the last token is a zero vector, whose logit is 0 in every
    pair it meets.  Then ``A = softmax_row(x + mask)``,
    where the softmax of a row runs over *all* key composites of that row
    (not per block).  With ``causal``, key composite ``u`` is visible from
    query composite ``t`` iff ``u * c_k <= (t + 1) * c_q - 1`` (its first
    token is not after the last token of ``t``); otherwise the logit is
    ``-inf``.  A row whose logits are all ``-inf`` (only -inf/NaN inputs
    make one: every row sees key composite 0) gives NaN, as in the compiled
    code, so its selection row goes dense (:func:`block_select`).  Then
    ``s[I, J] = sum A[t, u]`` over ``t // (block // c_q) == I`` and
    ``u // (block // c_k) == J`` (``query_reduce="sum"``).  Hence
    ``sum_J s[I, J]`` is the number of query composites in block ``I``, and ``s[I, J] = 0`` for ``J > I`` when causal.
    With ``query_reduce="max"``, ``s[I, J] = max_t sum_u A[t, u]`` over the
    same ``t`` and ``u``: a key block that one query composite of the block
    needs (a needle read by a few rows) weighs as much as one they all need;
    :func:`block_select` normalises by the row's total either way.
    """
    if estimator == "outlier":  # its own two-pass softmax
        return outlier_block_score(qc, kc, block, c_q, c_k, causal=causal, scale=scale, query_reduce=query_reduce)
    block, c_q, c_k = check_estimation(block, c_q, c_k, estimator, query_reduce)
    strided = estimator != "mean"
    qc, kc, (B, Hg, Tq, Tk, D) = composite_shapes(qc, kc, 5 if strided else 4, estimator)
    if strided:
        if c_q != c_k or qc.shape[3] != c_q or kc.shape[3] != c_k:
            raise ValueError(
                f"estimator {estimator!r} needs c_q == c_k == the composite width, got "
                f"c_q = {c_q}, c_k = {c_k}, widths {qc.shape[3]} and {kc.shape[3]}"
            )
    rq, rk = block // c_q, block // c_k
    NBq, NBk = _ceil_div(Tq, rq), _ceil_div(Tk, rk)
    scale = _default_scale(scale, D)

    qf = qc.astype(np.float64, copy=False)
    kf = kc.astype(np.float64, copy=False)
    s = np.zeros((B, Hg, NBq, NBk), dtype=np.float64)
    if NBq == 0 or NBk == 0:
        return s
    u = np.arange(Tk)
    per_block = max(1, B * Hg * rq * Tk * (c_q if strided else 1))
    step = max(1, _CHUNK_ELEMS // per_block)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for I0 in range(0, NBq, step):
            I1 = min(NBq, I0 + step)
            t0, t1 = I0 * rq, min(Tq, I1 * rq)
            logits = composite_logits(qf, kf, t0, t1, scale, estimator)
            if causal:
                t = np.arange(t0, t1)
                vis = u[None, :] * c_k <= (t[:, None] + 1) * c_q - 1
                logits = np.where(vis, logits, -np.inf)
            # Every row sees key composite 0, so a row of -inf logits comes
            # from -inf/NaN inputs: exp(-inf - -inf) is NaN, as in the
            # compiled lowering, and the row's selection goes dense.
            m = logits.max(axis=-1, keepdims=True)
            p = np.exp(logits - m)
            p = p / p.sum(axis=-1, keepdims=True)
            s[:, :, I0:I1] = block_sums(p, I1 - I0, rq, NBk, rk, query_reduce)
    return s


def estimate(
    q,
    k,
    block: int,
    c_q: int,
    c_k: int,
    c_h: int = 1,
    causal: bool = True,
    scale=None,
    estimator: str = "mean",
    query_reduce: str = "sum",
    q_outliers: int = 1,
    k_outliers: int = 2,
) -> np.ndarray:
    """Stages 1 and 2 for ``q [B, Hq, N, D]`` and ``k [B, Hkv, N, D]``: block scores ``[B, Hq/c_h, NB, NB]``.

    ``mean``: :func:`compress` (queries ``kv_group = 1``, keys
    ``kv_group = Hq // Hkv``, both ``head_factor = c_h``) then
    :func:`block_score`.  Antidiagonal estimators: :func:`compress_strided`
    (queries reversed) with stride ``c_q == c_k``, then :func:`block_score`.
    ``outlier``: :func:`unisparse.reference.outlier.estimate` (``q_outliers``
    / ``k_outliers`` are read by it only).
    """
    q = _as_4d("q", q)
    k = _as_4d("k", k)
    rules.positive("kv_heads", k.shape[1])
    rules.gqa(q.shape[1], k.shape[1])
    rules.head_groups(q.shape[1], rules.check_positive_int("c_h", c_h))
    if estimator == "outlier":
        check_estimation(block, c_q, c_k, estimator, query_reduce)
        return outlier_estimate(
            q,
            k,
            block,
            c_q,
            c_k,
            c_h,
            causal=causal,
            scale=scale,
            query_reduce=query_reduce,
            q_outliers=q_outliers,
            k_outliers=k_outliers,
        )
    qc, kc = composites(q, k, c_q, c_k, c_h, estimator)
    return block_score(
        qc, kc, block, c_q, c_k, causal=causal, scale=scale, estimator=estimator, query_reduce=query_reduce
    )
