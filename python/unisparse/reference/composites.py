"""Stage 1: composite tokens (:func:`compress` pools tokens and heads;
:func:`compress_strided` groups tokens without pooling, for the antidiagonal
estimators)."""

from __future__ import annotations

import numpy as np

from ._common import _as_4d, _ceil_div, _check_pos_int


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
        raise ValueError(f"H * kv_group = {H} * {kv_group} = {E} is not a multiple of head_factor = {head_factor}")
    G = E // head_factor
    T = _ceil_div(N, seq_factor)
    if T == 0:  # no tokens (and no [T, seq_factor] view, whatever seq_factor is)
        return np.zeros((B, G, 0, D))
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
