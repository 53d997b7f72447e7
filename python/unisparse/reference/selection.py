"""Stage 3: top-p block selection with forced blocks, the dense layout, and
layout validation."""

from __future__ import annotations

import numpy as np

from .. import rules
from ._common import _as_4d


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
    tau : mass fraction to keep, in (0, 1]; ``tau = 1`` keeps every visible block.
    local_blocks : number of blocks before the diagonal that are always kept.
    sink : always keep block 0.
    min_blocks : keep at least this many blocks (if that many are visible).
    max_blocks : cap on the number of blocks; ``0`` means no cap.  Forced
        blocks are kept even when they exceed the cap; ``min_blocks`` must
        not exceed a cap.
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
    * If ``tau = 1``: select all of ``V``.
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
    # The attribute rules of unisparse.block_select (unisparse.rules).
    tau = rules.tau(rules.real("tau", tau))
    local_blocks = rules.block_count("local_blocks", rules.integer("local_blocks", local_blocks))
    min_blocks = rules.integer("min_blocks", min_blocks)
    max_blocks = rules.integer("max_blocks", max_blocks)
    rules.min_max_blocks(min_blocks, max_blocks)
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
        kept_before = np.concatenate([np.zeros(shape[:-1] + (1,), dtype=np.float32), kept_after[..., :-1]], axis=-1)

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
        raise ValueError(f"layout shapes counts {counts.shape} / indices {indices.shape} are inconsistent")
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
