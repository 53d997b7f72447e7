"""NumPy reference of the exact UniSparse semantics.

This module is the executable specification of the method described in
``DESIGN.md`` section 1.  Every compiled path (CPU pipeline, NVPTX pipeline,
runtime kernels) is checked against it, so it favours clarity and exactness
over speed; it is nevertheless vectorised enough for sequences of a few
thousand tokens.

Conventions
-----------
* ``q`` has shape ``[B, Hq, N, D]``; ``k`` and ``v`` have shape
  ``[B, Hkv, N, D]`` with ``Hq = G * Hkv`` (GQA).  Query head ``h`` reads kv
  head ``h // G``.
* A *head group* is ``c_h`` consecutive query heads; there are
  ``Hg = Hq / c_h`` groups and all heads of a group share one block layout.
  Query head ``h`` uses the layout of group ``h // c_h``.
* ``block`` (``S`` in the design) is the block size in tokens; ``N`` need not
  be a multiple of it: the last block is partial.  ``NB = ceil(N / block)``.
* All arithmetic is float64 except :func:`block_select`, whose threshold
  arithmetic is float32 on purpose (see its docstring).
* The softmax scale is ``1 / sqrt(D)`` unless given.
* The log-sum-exp (``lse``) uses the natural logarithm and includes the scale:
  ``lse[i] = log(sum_j exp(scale * q_i . k_j))`` over the keys visible to row
  ``i``.  A row that sees no key has ``o = 0`` and ``lse = -inf``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "ESTIMATORS",
    "compress",
    "compress_strided",
    "block_score",
    "estimate",
    "block_select",
    "dense_layout",
    "layout_mask",
    "block_sparse_attention",
    "dense_attention",
    "unisparse_attention",
    "density",
    "relative_l2",
    "attention_recall",
    "recall_summary",
]

# Upper bound (in elements) for the temporary score matrices built per chunk.
_CHUNK_ELEMS = 1 << 23


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _check_pos_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _as_4d(name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name} must have rank 4, got shape {x.shape}")
    return x


def _default_scale(scale, D: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(D) if D > 0 else 1.0
    return float(scale)


# --------------------------------------------------------------------------- #
# Stage 1: composite tokens
# --------------------------------------------------------------------------- #


def compress(x, seq_factor: int, head_factor: int = 1, kv_group: int = 1) -> np.ndarray:
    """Average-pool ``x`` over consecutive tokens and (expanded) heads.

    Parameters
    ----------
    x : array ``[B, H, N, D]``
    seq_factor : tokens per composite (``c_q`` for queries, ``c_k`` for keys).
    head_factor : expanded heads per output head (``c_h``).
    kv_group : how many times each source head is replicated before head
        pooling.  Use ``1`` for queries and ``Hq // Hkv`` for keys, so that the
        pooled keys of a head group are the mean, over the group's query heads,
        of the keys each of them reads.

    Returns
    -------
    float64 array ``[B, H * kv_group / head_factor, ceil(N / seq_factor), D]``.

    Semantics
    ---------
    "Expanded head" ``e`` in ``[0, H * kv_group)`` reads source head
    ``e // kv_group``.  Output head ``g`` averages expanded heads
    ``g * head_factor .. (g + 1) * head_factor - 1`` and composite ``t``
    averages tokens ``t * seq_factor .. min((t + 1) * seq_factor, N) - 1``:
    a partial last composite is the mean of the tokens it has (not a
    zero-padded mean).
    """
    x = _as_4d("x", x)
    seq_factor = _check_pos_int("seq_factor", seq_factor)
    head_factor = _check_pos_int("head_factor", head_factor)
    kv_group = _check_pos_int("kv_group", kv_group)
    B, H, N, D = x.shape
    E = H * kv_group
    if E % head_factor != 0:
        raise ValueError(
            f"H * kv_group = {H} * {kv_group} = {E} is not a multiple of head_factor = {head_factor}"
        )
    G = E // head_factor
    T = _ceil_div(N, seq_factor)
    xf = x.astype(np.float64, copy=False)

    # Head pooling. src[g, i] = source head of the i-th expanded head of group g.
    src = (np.arange(E).reshape(G, head_factor)) // kv_group
    xh = xf[:, src[:, 0]].copy()
    for i in range(1, head_factor):
        xh += xf[:, src[:, i]]
    xh /= head_factor

    # Sequence pooling with a partial last composite.
    pad = T * seq_factor - N
    if pad:
        xh = np.concatenate([xh, np.zeros((B, G, pad, D), dtype=np.float64)], axis=2)
    sums = xh.reshape(B, G, T, seq_factor, D).sum(axis=3)
    n_tok = np.minimum(seq_factor, N - np.arange(T) * seq_factor).astype(np.float64)
    return sums / n_tok[None, None, :, None]


def compress_strided(x, stride: int, head_factor: int = 1, kv_group: int = 1, reverse: bool = False) -> np.ndarray:
    """Group ``stride`` consecutive tokens into one composite *without* pooling them.

    The composite of an antidiagonal estimator (``estimator="antidiag"`` or
    ``"antidiag_lse"`` in :func:`block_score`).  Heads are pooled exactly as
    in :func:`compress` (mean over ``head_factor`` expanded heads, each
    source head repeated ``kv_group`` times).

    Returns float64 ``[B, G, T, stride, D]`` with ``T = ceil(N / stride)``:
    slot ``a`` of composite ``t`` holds token ``t * stride + a``, or with
    ``reverse`` (queries) token ``t * stride + stride - 1 - a``.  Slots whose
    token is ``>= N`` (a partial last composite) hold zeros (zero padding,
    as XAttention pads).
    Concatenating the slots gives XAttention's composite of width
    ``stride * D``: the dot product of a reversed query composite with a key
    composite is the sum of one antidiagonal of the ``stride x stride`` tile
    of ``q kᵀ``.
    """
    stride = _check_pos_int("stride", stride)
    # Head pooling only (seq_factor 1; it checks x and the head factors),
    # then a reshape into [T, stride].
    xh = compress(x, 1, head_factor=head_factor, kv_group=kv_group)
    B, G, N, D = xh.shape
    T = _ceil_div(N, stride)
    pad = T * stride - N
    if pad:
        xh = np.concatenate([xh, np.zeros((B, G, pad, D), dtype=np.float64)], axis=2)
    xs = xh.reshape(B, G, T, stride, D)
    return xs[:, :, :, ::-1].copy() if reverse else xs


# --------------------------------------------------------------------------- #
# Stage 2: block scoring
# --------------------------------------------------------------------------- #


#: Composite estimators and query reductions of :func:`block_score` (see its
#: docstring); defined once, in :mod:`unisparse.config`.
from .config import ESTIMATORS, QUERY_REDUCES  # noqa: E402


def check_estimation(block: int, c_q: int, c_k: int, estimator: str, query_reduce: str):
    """The argument rules of the estimation stages (shared by
    :func:`block_score` and the PyTorch transcription
    ``unisparse.estimate_torch``); raises ``ValueError``."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if query_reduce not in QUERY_REDUCES:
        raise ValueError(f"query_reduce must be one of {QUERY_REDUCES}, got {query_reduce!r}")
    block = _check_pos_int("block", block)
    c_q = _check_pos_int("c_q", c_q)
    c_k = _check_pos_int("c_k", c_k)
    if block % c_q or block % c_k:
        raise ValueError(f"block = {block} must be a multiple of c_q = {c_q} and c_k = {c_k}")
    if estimator != "mean" and c_q != c_k:
        raise ValueError(f"estimator {estimator!r} needs c_q == c_k, got c_q = {c_q}, c_k = {c_k}")
    return block, c_q, c_k


def _composite_logits(qf, kf, t0, t1, scale, estimator):
    """Logits of query composites ``t0:t1`` against every key composite.

    ``mean``: ``[B, Hg, t1-t0, Tk]`` of ``scale * qc kcᵀ``.  Antidiagonal
    estimators: the per-slot logits ``scale * qc[t, a] . kc[u, a]``,
    combined over the ``s`` slots by their mean (``antidiag``) or
    log-mean-exp (``antidiag_lse``).
    """
    if estimator == "mean":
        return np.matmul(qf[:, :, t0:t1], np.swapaxes(kf, -1, -2)) * scale
    stride = qf.shape[3]
    x = np.stack([np.matmul(qf[:, :, t0:t1, a], np.swapaxes(kf[:, :, :, a], -1, -2)) * scale
                  for a in range(stride)], axis=-1)  # [B, Hg, tq, Tk, s]
    if estimator == "antidiag":
        return x.sum(axis=-1) / stride
    m = x.max(axis=-1)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    return m_safe + np.log(np.exp(x - m_safe[..., None]).sum(axis=-1) / stride)


def block_score(qc, kc, block: int, c_q: int, c_k: int, causal: bool = True, scale=None,
                estimator: str = "mean", query_reduce: str = "sum") -> np.ndarray:
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
    block, c_q, c_k = check_estimation(block, c_q, c_k, estimator, query_reduce)
    strided = estimator != "mean"
    qc = np.asarray(qc)
    kc = np.asarray(kc)
    rank = 5 if strided else 4
    if qc.ndim != rank or kc.ndim != rank:
        raise ValueError(f"estimator {estimator!r} takes rank-{rank} composites, got shapes {qc.shape} and {kc.shape}")
    B, Hg, Tq = qc.shape[:3]
    D = qc.shape[-1]
    if kc.shape[:2] != (B, Hg) or kc.shape[-1] != D:
        raise ValueError(f"kc shape {kc.shape} is inconsistent with qc shape {qc.shape}")
    Tk = kc.shape[2]
    if strided:
        if c_q != c_k or qc.shape[3] != c_q or kc.shape[3] != c_k:
            raise ValueError(f"estimator {estimator!r} needs c_q == c_k == the composite width, got "
                             f"c_q = {c_q}, c_k = {c_k}, widths {qc.shape[3]} and {kc.shape[3]}")
    rq, rk = block // c_q, block // c_k
    NBq, NBk = _ceil_div(Tq, rq), _ceil_div(Tk, rk)
    scale = _default_scale(scale, D)

    qf = qc.astype(np.float64, copy=False)
    kf = kc.astype(np.float64, copy=False)
    s = np.zeros((B, Hg, NBq, NBk), dtype=np.float64)
    if NBq == 0 or NBk == 0:
        return s
    u = np.arange(Tk)
    kpad = NBk * rk - Tk
    per_block = max(1, B * Hg * rq * Tk * (c_q if strided else 1))
    step = max(1, _CHUNK_ELEMS // per_block)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for I0 in range(0, NBq, step):
            I1 = min(NBq, I0 + step)
            t0, t1 = I0 * rq, min(Tq, I1 * rq)
            logits = _composite_logits(qf, kf, t0, t1, scale, estimator)
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
            rpad = (I1 - I0) * rq - (t1 - t0)
            if rpad or kpad:
                p = np.pad(p, ((0, 0), (0, 0), (0, rpad), (0, kpad)))
            pb = p.reshape(B, Hg, I1 - I0, rq, NBk, rk).sum(axis=5)
            s[:, :, I0:I1] = pb.sum(axis=3) if query_reduce == "sum" else pb.max(axis=3)
    return s


def estimate(q, k, block: int, c_q: int, c_k: int, c_h: int = 1, causal: bool = True, scale=None,
             estimator: str = "mean", query_reduce: str = "sum") -> np.ndarray:
    """Stages 1 and 2 for ``q [B, Hq, N, D]`` and ``k [B, Hkv, N, D]``: block scores ``[B, Hq/c_h, NB, NB]``.

    ``mean``: :func:`compress` (queries ``kv_group = 1``, keys
    ``kv_group = Hq // Hkv``, both ``head_factor = c_h``) then
    :func:`block_score`.  Antidiagonal estimators: :func:`compress_strided`
    (queries reversed) with stride ``c_q == c_k``, then :func:`block_score`.
    """
    q = _as_4d("q", q)
    k = _as_4d("k", k)
    Hq, Hkv = q.shape[1], k.shape[1]
    if Hkv == 0 or Hq % Hkv:
        raise ValueError(f"Hq = {Hq} must be a multiple of Hkv = {Hkv}")
    if estimator == "mean":
        qc = compress(q, c_q, head_factor=c_h, kv_group=1)
        kc = compress(k, c_k, head_factor=c_h, kv_group=Hq // Hkv)
        return block_score(qc, kc, block, c_q, c_k, causal=causal, scale=scale, query_reduce=query_reduce)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if c_q != c_k:
        raise ValueError(f"estimator {estimator!r} needs c_q == c_k (the stride), got {c_q} and {c_k}")
    qc = compress_strided(q, c_q, head_factor=c_h, kv_group=1, reverse=True)
    kc = compress_strided(k, c_k, head_factor=c_h, kv_group=Hq // Hkv)
    return block_score(qc, kc, block, c_q, c_k, causal=causal, scale=scale, estimator=estimator,
                       query_reduce=query_reduce)


# --------------------------------------------------------------------------- #
# Stage 3: block selection
# --------------------------------------------------------------------------- #


def _visible_and_forced(NBq: int, NBk: int, local_blocks: int, sink: bool, causal: bool):
    I = np.arange(NBq)[:, None]
    J = np.arange(NBk)[None, :]
    visible = (J <= I) if causal else np.ones((NBq, NBk), dtype=bool)
    forced = (J >= np.maximum(0, I - local_blocks)) & (J <= I)
    if sink:
        forced = forced | (J == 0)
    return visible, forced & visible


def block_select(
    s,
    tau: float,
    local_blocks: int = 1,
    sink: bool = True,
    min_blocks: int = 0,
    max_blocks: int = 0,
    causal: bool = True,
):
    """Top-p (cumulative mass) block selection with forced blocks.

    Parameters
    ----------
    s : ``[B, Hg, NBq, NBk]`` block scores (output of :func:`block_score`).
    tau : mass fraction to keep; ``tau >= 1`` keeps every visible block.
    local_blocks : number of blocks before the diagonal that are always kept.
    sink : always keep block 0.
    min_blocks : keep at least this many blocks (if that many are visible).
    max_blocks : cap on the number of blocks; ``0`` means no cap.  Forced
        blocks are kept even when they exceed the cap.
    causal : only blocks ``J <= I`` are visible.

    Returns
    -------
    ``counts`` int32 ``[B, Hg, NBq]`` and ``indices`` int32
    ``[B, Hg, NBq, NBk]``: the first ``counts`` entries of a row are the
    selected key blocks in ascending order, the rest is ``-1``.

    Semantics (per row ``(b, g, I)``)
    ---------------------------------
    * Visible ``V = {J : J <= I}`` if causal, else all ``J`` in ``[0, NBk)``.
    * Forced ``F = ({0} if sink) ∪ {J : max(0, I - local_blocks) <= J <= I}``,
      intersected with ``V``.
    * If ``tau >= 1``: select all of ``V``.
    * Otherwise ``total = sum_{J in V} s[I, J]``, ``kept = sum_{J in F} s[I, J]``,
      ``count = |F|``; then walk the remaining visible blocks by descending
      score (ties: smaller ``J`` first, i.e. a stable sort by ``-score``), and
      for each: if ``max_blocks > 0 and count >= max_blocks`` stop; if
      ``count < min_blocks or kept < tau * total`` take it (``kept += s``,
      ``count += 1``) else stop.
    * NaN/Inf: if ``total`` is NaN (a NaN or Inf input reached the scores of
      the row), the row keeps every visible block, ``max_blocks`` included, so
      the NaN reaches the output exactly as in dense attention.  The order
      is total: NaN scores rank below every number (ties: smaller ``J``), so
      no block is taken twice.

    Floating point (normative)
    --------------------------
    The compiled code makes the same decisions bit for bit, so the arithmetic
    is fixed: ``s`` is first rounded to float32; ``total`` is a sequential
    float32 sum over visible ``J`` in ascending order (starting from 0);
    ``kept`` is a sequential float32 sum over the forced blocks in ascending
    ``J`` followed by the taken blocks in selection order; the threshold is
    the float32 product ``float32(tau) * total`` and the comparison
    ``kept < threshold`` is done in float32.  The descending-score order
    compares the float32 scores (``-0.0 == 0.0``; NaN scores sort last).
    Note that NumPy's ``sum`` is pairwise, so the sums are written as
    ``cumsum`` (which is sequential) on purpose.
    """
    s = _as_4d("s", s)
    local_blocks = _check_pos_int("local_blocks", local_blocks, 0)
    min_blocks = _check_pos_int("min_blocks", min_blocks, 0)
    max_blocks = _check_pos_int("max_blocks", max_blocks, 0)
    B, Hg, NBq, NBk = s.shape
    counts = np.zeros((B, Hg, NBq), dtype=np.int32)
    indices = np.full((B, Hg, NBq, NBk), -1, dtype=np.int32)
    if NBq == 0 or NBk == 0:
        return counts, indices

    visible, forced = _visible_and_forced(NBq, NBk, local_blocks, sink, causal)
    shape = s.shape
    J = np.broadcast_to(np.arange(NBk), shape)

    if float(tau) >= 1.0:
        selected = np.broadcast_to(visible, shape)
    else:
        s32 = s.astype(np.float32)
        vis_b = np.broadcast_to(visible, shape)
        s_vis = np.where(vis_b, s32, np.float32(0))
        total = np.cumsum(s_vis, axis=-1, dtype=np.float32)[..., -1]
        threshold = np.float32(tau) * total  # float32 * float32 -> float32

        # Visiting order: forced blocks by ascending J, then the remaining
        # visible blocks by (-score, J), then the invisible blocks.
        category = np.broadcast_to(np.where(forced, 0, np.where(visible, 1, 2)), shape)
        neg = np.where(category == 1, -s32, np.float32(0))
        order = np.lexsort((J, neg, category), axis=-1)
        vals = np.take_along_axis(s_vis, order, axis=-1)
        kept_after = np.cumsum(vals, axis=-1, dtype=np.float32)
        kept_before = np.concatenate(
            [np.zeros(shape[:-1] + (1,), dtype=np.float32), kept_after[..., :-1]], axis=-1
        )

        pos = np.arange(NBk)
        n_forced = forced.sum(axis=-1)[:, None]  # [NBq, 1]
        n_visible = visible.sum(axis=-1)[:, None]
        nan_row = np.isnan(total)[..., None]
        take = (pos < min_blocks) | (kept_before < threshold[..., None]) | nan_row
        if max_blocks > 0:
            take &= (pos < max_blocks) | nan_row
        take &= pos < n_visible
        take |= pos < n_forced
        n_sel = np.cumprod(take, axis=-1).sum(axis=-1)  # leading run of "take"
        in_sel = pos < n_sel[..., None]
        selected = np.zeros(shape, dtype=bool)
        np.put_along_axis(selected, order, in_sel, axis=-1)

    counts[...] = selected.sum(axis=-1)
    asc = np.argsort(~selected, axis=-1, kind="stable")
    indices[...] = np.where(np.arange(NBk) < counts[..., None], asc, -1)
    return counts, indices


def dense_layout(B: int, Hg: int, NBq: int, NBk: int, causal: bool = True):
    """The layout that visits every visible block: ``(counts, indices)``.

    Causal: row ``I`` holds ``0 .. min(I, NBk - 1)``; non-causal: ``0 .. NBk-1``.
    """
    J = np.arange(NBk)[None, :]
    cnt = np.minimum(np.arange(NBq) + 1, NBk) if causal else np.full(NBq, NBk)
    idx = np.where(J < cnt[:, None], J, -1)
    counts = np.broadcast_to(cnt.astype(np.int32), (B, Hg, NBq)).copy()
    indices = np.broadcast_to(idx.astype(np.int32), (B, Hg, NBq, NBk)).copy()
    return counts, indices


def layout_mask(counts, indices, NBk: int | None = None) -> np.ndarray:
    """Validate a block layout and return it as a boolean ``[B, Hg, NBq, NBk]`` mask.

    Only the first ``counts`` entries of a row are read; they must be in
    ``[0, NBk)`` and strictly ascending.  Entries past ``counts`` are ignored.
    Raises ``ValueError`` for an out-of-range or unsorted layout.
    """
    counts = np.asarray(counts)
    indices = np.asarray(indices)
    if counts.ndim != 3 or indices.ndim != 4 or indices.shape[:3] != counts.shape:
        raise ValueError(
            f"layout shapes counts {counts.shape} / indices {indices.shape} are inconsistent"
        )
    if not np.issubdtype(counts.dtype, np.integer) or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError("counts and indices must be integer arrays")
    NBk = indices.shape[3] if NBk is None else NBk
    if indices.shape[3] != NBk:
        raise ValueError(f"indices last dimension {indices.shape[3]} != NBk = {NBk}")
    if counts.size and (counts.min() < 0 or counts.max() > NBk):
        raise ValueError(f"counts must lie in [0, {NBk}]")
    valid = np.arange(NBk) < counts[..., None]
    if np.any(valid & ((indices < 0) | (indices >= NBk))):
        raise ValueError(f"layout index out of range [0, {NBk})")
    if NBk > 1 and np.any(valid[..., 1:] & (np.diff(indices, axis=-1) <= 0)):
        raise ValueError("layout indices must be strictly ascending within a row")
    # Padding entries scatter into an extra column that is dropped afterwards.
    mask = np.zeros(indices.shape[:3] + (NBk + 1,), dtype=bool)
    idx = np.where(valid, indices, NBk).astype(np.intp)
    np.put_along_axis(mask, idx, True, axis=-1)
    return mask[..., :NBk]


# --------------------------------------------------------------------------- #
# Stage 4: block-sparse attention
# --------------------------------------------------------------------------- #


def _check_qkv(q, k, v):
    q = _as_4d("q", q)
    k = _as_4d("k", k)
    v = _as_4d("v", v)
    B, Hq, N, D = q.shape
    if k.shape != v.shape:
        raise ValueError(f"k shape {k.shape} != v shape {v.shape}")
    if k.shape[0] != B or k.shape[2] != N or k.shape[3] != D:
        raise ValueError(f"k/v shape {k.shape} is inconsistent with q shape {q.shape}")
    Hkv = k.shape[1]
    if Hkv == 0 or Hq % Hkv != 0:
        raise ValueError(f"Hq = {Hq} must be a multiple of Hkv = {Hkv}")
    return q, k, v


def _softmax_stats(logits, mask):
    """Masked softmax pieces: (p, l, m_safe) with rows that see no key
    giving l == 0. A row that sees keys whose logits are all ``-inf`` (only
    -inf/NaN inputs make one) gives NaN, as dense attention does."""
    logits = np.where(mask, logits, -np.inf)
    m = logits.max(axis=-1, keepdims=True)
    sees_none = ~np.broadcast_to(mask, logits.shape).any(axis=-1, keepdims=True)
    m_safe = np.where(sees_none, 0.0, m)
    p = np.exp(logits - m_safe)
    l = p.sum(axis=-1, keepdims=True)
    return p, l, m_safe


def _attend(p, l, m_safe, vv, mask):
    """Normalised ``p @ vv`` and the LSE.

    A masked key contributes nothing even when its value is NaN/Inf (it is
    not part of the row's sum); a visible key with a non-finite value
    propagates it, as dense attention does.
    """
    bad = np.flatnonzero(~np.isfinite(vv).all(axis=(0, 1, 3)))
    if bad.size:
        v0 = vv.copy()
        v0[:, :, bad] = 0.0
        o = np.matmul(p, v0)
        mask = np.broadcast_to(mask, p.shape)
        for j in bad:
            contrib = p[..., j, None] * vv[:, :, j, None, :]
            o += np.where(mask[..., j, None], contrib, 0.0)
    else:
        o = np.matmul(p, vv)
    empty = l == 0
    o = np.where(empty, 0.0, o / np.where(empty, 1.0, l))
    lse = (m_safe + np.log(l))[..., 0]
    return o, lse


def block_sparse_attention(q, k, v, counts, indices, block: int, causal: bool = True, scale=None):
    """Exact attention restricted to the blocks of a layout.

    Parameters
    ----------
    q : ``[B, Hq, N, D]``; k, v : ``[B, Hkv, N, D]``.
    counts, indices : a layout ``[B, Hg, NBq]`` / ``[B, Hg, NBq, NBk]`` with
        ``NBq = NBk = ceil(N / block)`` and ``Hq % Hg == 0`` (validated by
        :func:`layout_mask`).
    block : block size in tokens.

    Returns
    -------
    ``o`` float64 ``[B, Hq, N, D]`` and ``lse`` float64 ``[B, Hq, N]``.

    Query ``i`` of head ``h`` attends to key ``j`` iff ``j // block`` is in
    the layout row ``(b, h // (Hq // Hg), i // block)`` and, when causal,
    ``j <= i``.  Query head ``h`` reads kv head ``h // (Hq // Hkv)``.  A row
    with no visible key gives ``o = 0`` and ``lse = -inf``.  NaN/Inf in a
    visible key or value propagates to the row as in dense attention; a key
    that is masked (unselected block or causal) contributes nothing, even if
    its value is not finite.
    """
    q, k, v = _check_qkv(q, k, v)
    block = _check_pos_int("block", block)
    B, Hq, N, D = q.shape
    Hkv = k.shape[1]
    NB = _ceil_div(N, block)
    counts = np.asarray(counts)
    indices = np.asarray(indices)
    if counts.ndim != 3 or counts.shape[0] != B or counts.shape[2] != NB:
        raise ValueError(f"counts shape {counts.shape} must be [B={B}, Hg, NBq={NB}]")
    Hg = counts.shape[1]
    if Hg == 0 or Hq % Hg != 0:
        raise ValueError(f"Hq = {Hq} must be a multiple of the number of head groups {Hg}")
    if indices.shape != (B, Hg, NB, NB):
        raise ValueError(f"indices shape {indices.shape} must be {(B, Hg, NB, NB)}")
    bmask = layout_mask(counts, indices, NB)
    scale = _default_scale(scale, D)

    heads = np.arange(Hq)
    kv_of = heads // (Hq // Hkv)
    grp_of = heads // (Hq // Hg)
    qf = q.astype(np.float64, copy=False)
    kf = k.astype(np.float64, copy=False)[:, kv_of]
    vf = v.astype(np.float64, copy=False)[:, kv_of]

    o = np.zeros((B, Hq, N, D), dtype=np.float64)
    lse = np.full((B, Hq, N), -np.inf, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for I in range(NB):
            i0, i1 = I * block, min(N, (I + 1) * block)
            bm = bmask[:, grp_of, I]  # [B, Hq, NB]
            cols = np.flatnonzero(bm.any(axis=(0, 1)))
            if cols.size == 0:
                continue
            J0, J1 = int(cols[0]), int(cols[-1]) + 1
            j0, j1 = J0 * block, min(N, J1 * block)
            if causal:
                j1 = min(j1, i1)
            if j1 <= j0:
                continue
            tok = np.repeat(bm[..., J0:J1], block, axis=-1)[..., : j1 - j0]  # [B, Hq, len]
            mask = tok[:, :, None, :]
            if causal:
                mask = mask & (np.arange(j0, j1)[None, :] <= np.arange(i0, i1)[:, None])
            logits = np.matmul(qf[:, :, i0:i1], np.swapaxes(kf[:, :, j0:j1], -1, -2)) * scale
            p, l, m_safe = _softmax_stats(logits, mask)
            o[:, :, i0:i1], lse[:, :, i0:i1] = _attend(p, l, m_safe, vf[:, :, j0:j1], mask)
    return o, lse


def dense_attention(q, k, v, causal: bool = True, scale=None):
    """Exact dense (optionally causal: key ``j`` visible iff ``j <= i``) attention.

    Returns ``o`` float64 ``[B, Hq, N, D]`` and ``lse`` float64 ``[B, Hq, N]``
    (natural log, scale included).  GQA as in :func:`block_sparse_attention`.
    """
    q, k, v = _check_qkv(q, k, v)
    B, Hq, N, D = q.shape
    Hkv = k.shape[1]
    scale = _default_scale(scale, D)
    kv_of = np.arange(Hq) // (Hq // Hkv)
    qf = q.astype(np.float64, copy=False)
    kT = np.swapaxes(k.astype(np.float64, copy=False)[:, kv_of], -1, -2)
    vf = v.astype(np.float64, copy=False)[:, kv_of]
    o = np.zeros((B, Hq, N, D), dtype=np.float64)
    lse = np.full((B, Hq, N), -np.inf, dtype=np.float64)
    step = max(1, _CHUNK_ELEMS // max(1, B * Hq * N))
    j = np.arange(N)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i0 in range(0, N, step):
            i1 = min(N, i0 + step)
            jmax = i1 if causal else N
            logits = np.matmul(qf[:, :, i0:i1], kT[..., :jmax]) * scale
            if causal:
                mask = j[None, :jmax] <= np.arange(i0, i1)[:, None]
            else:
                mask = np.ones((i1 - i0, jmax), dtype=bool)
            p, l, m_safe = _softmax_stats(logits, mask)
            o[:, :, i0:i1], lse[:, :, i0:i1] = _attend(p, l, m_safe, vf[:, :, :jmax], mask)
    return o, lse


# --------------------------------------------------------------------------- #
# The whole method
# --------------------------------------------------------------------------- #


def unisparse_attention(
    q,
    k,
    v,
    block: int = 128,
    c_q: int = 16,
    c_k: int = 8,
    c_h: int = 1,
    tau: float = 0.99,
    local_blocks: int = 1,
    sink: bool = True,
    min_blocks: int = 0,
    max_blocks: int = 0,
    causal: bool = True,
    scale=None,
    estimator: str = "mean",
    query_reduce: str = "sum",
):
    """UniSparse attention: compress -> block_score -> block_select -> block_sparse_attention.

    Queries are compressed with ``(seq_factor=c_q, head_factor=c_h,
    kv_group=1)`` and keys with ``(seq_factor=c_k, head_factor=c_h,
    kv_group=Hq // Hkv)``, giving ``Hg = Hq / c_h`` head groups (the
    antidiagonal estimators group tokens instead, see :func:`estimate`).
    The same ``scale`` is used for scoring and for the attention.

    Returns ``(o, lse, counts, indices)``.
    """
    q, k, v = _check_qkv(q, k, v)
    Hq = q.shape[1]
    c_h = _check_pos_int("c_h", c_h)
    if Hq % c_h:
        raise ValueError(f"Hq = {Hq} must be a multiple of c_h = {c_h}")
    s = estimate(q, k, block, c_q, c_k, c_h, causal=causal, scale=scale, estimator=estimator,
                 query_reduce=query_reduce)
    counts, indices = block_select(
        s, tau, local_blocks=local_blocks, sink=sink, min_blocks=min_blocks,
        max_blocks=max_blocks, causal=causal,
    )
    o, lse = block_sparse_attention(q, k, v, counts, indices, block, causal=causal, scale=scale)
    return o, lse, counts, indices


# --------------------------------------------------------------------------- #
# Metrics
# --------------------------------------------------------------------------- #


def density(counts, N: int, block: int, causal: bool = True) -> float:
    """Visited (query block, key block) pairs / pairs of the dense block grid.

    The dense grid has ``NB * (NB + 1) / 2`` pairs per (batch, head group)
    when causal (lower triangle including the diagonal) and ``NB * NB``
    otherwise, ``NB = ceil(N / block)``.
    """
    counts = np.asarray(counts)
    NB = _ceil_div(N, block)
    if counts.ndim != 3 or counts.shape[2] != NB:
        raise ValueError(f"counts shape {counts.shape} must be [B, Hg, {NB}]")
    per = NB * (NB + 1) // 2 if causal else NB * NB
    denom = counts.shape[0] * counts.shape[1] * per
    return float(counts.sum(dtype=np.int64)) / denom if denom else 1.0


def relative_l2(x, ref) -> float:
    """``||x - ref||_2 / ||ref||_2`` in float64 (0 if both are zero, inf if only ref is)."""
    x = np.asarray(x, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if x.shape != ref.shape:
        raise ValueError(f"shape mismatch: {x.shape} vs {ref.shape}")
    num = float(np.linalg.norm((x - ref).ravel()))
    den = float(np.linalg.norm(ref.ravel()))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def attention_recall(q, k, counts, indices, block: int, causal: bool = True, scale=None) -> np.ndarray:
    """Per-row attention-mass recall of a layout.

    For every query row ``(b, h, i)``: the fraction of the dense (causal when
    ``causal``) softmax mass that falls on keys inside the row's selected
    blocks.  Returns float64 ``[B, Hq, N]``.  A row with no visible key has
    recall 1.  Summarise with :func:`recall_summary`.
    """
    q = _as_4d("q", q)
    k = _as_4d("k", k)
    B, Hq, N, D = q.shape
    if k.shape[0] != B or k.shape[2] != N or k.shape[3] != D or Hq % k.shape[1]:
        raise ValueError(f"k shape {k.shape} is inconsistent with q shape {q.shape}")
    block = _check_pos_int("block", block)
    NB = _ceil_div(N, block)
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[0] != B or counts.shape[2] != NB or Hq % max(1, counts.shape[1]):
        raise ValueError(f"counts shape {counts.shape} is inconsistent with q shape {q.shape}")
    Hg = counts.shape[1]
    bmask = layout_mask(counts, indices, NB)
    scale = _default_scale(scale, D)
    heads = np.arange(Hq)
    kv_of = heads // (Hq // k.shape[1])
    grp_of = heads // (Hq // Hg)
    qf = q.astype(np.float64, copy=False)
    kf = k.astype(np.float64, copy=False)[:, kv_of]
    recall = np.ones((B, Hq, N), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for I in range(NB):
            i0, i1 = I * block, min(N, (I + 1) * block)
            jmax = i1 if causal else N
            logits = np.matmul(qf[:, :, i0:i1], np.swapaxes(kf[:, :, :jmax], -1, -2)) * scale
            if causal:
                vis = np.arange(jmax)[None, :] <= np.arange(i0, i1)[:, None]
            else:
                vis = np.ones((i1 - i0, jmax), dtype=bool)
            p, l, _ = _softmax_stats(logits, vis)
            tok = np.repeat(bmask[:, grp_of, I], block, axis=-1)[..., :jmax]  # [B, Hq, jmax]
            inside = (p * tok[:, :, None, :]).sum(axis=-1, keepdims=True)
            r = np.where(l == 0, 1.0, inside / np.where(l == 0, 1.0, l))
            recall[:, :, i0:i1] = r[..., 0]
    return recall


def recall_summary(recall, block: int | None = None, percentile: float = 1.0):
    """Summarise per-row recall as ``(mean, low percentile)``.

    With ``block=None`` both are scalars over all rows.  With a block size the
    rows of each query block are summarised separately and both results have
    shape ``[..., NB]`` (``recall`` is ``[..., N]``).  The percentile uses
    NumPy's default (linear) interpolation.
    """
    recall = np.asarray(recall, dtype=np.float64)
    if block is None:
        return float(recall.mean()), float(np.percentile(recall, percentile))
    block = _check_pos_int("block", block)
    N = recall.shape[-1]
    NB = _ceil_div(N, block)
    mean = np.empty(recall.shape[:-1] + (NB,))
    low = np.empty_like(mean)
    for I in range(NB):
        r = recall[..., I * block : min(N, (I + 1) * block)]
        mean[..., I] = r.mean(axis=-1)
        low[..., I] = np.percentile(r, percentile, axis=-1)
    return mean, low
