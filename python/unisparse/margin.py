"""The boundary rule: how far two layouts may differ when their scores do.

The GPU scores from 16-bit composites on tensor cores; the CPU path scores
from f32 composites. Their scores differ by a small ``eps`` per row, and the
top-p selection (the same rule, bit for bit, on each path's own scores) may
then keep a different set of blocks near the row's top-p boundary, and only
there. This module states that rule and checks two layouts against it.

The rule (per ``(batch, head group, query block)`` row, with ``a`` the
reference scores and layout, ``b`` the other; ``eps`` the largest
``|a[J] - b[J]|`` over the row's visible blocks, ``n`` the number of visible
blocks, ``S`` the free blocks (not forced) that ``a`` takes and ``beta`` the
smallest reference score among them):

1. *drop*: a block that ``a`` takes and ``b`` drops has
   ``a[J] <= max(beta + 2 eps, 2 n eps)``;
2. *add*: the blocks that ``b`` takes and ``a`` drops (``E``) have a total
   reference score ``sum_E a[J] <= sum_{S \\ K} a[J] + 2 n eps + a[last]``,
   where ``K`` is what ``b`` takes and ``last`` is the last block ``b``'s
   top-p walk took.

What ``eps`` is on the GPU: the logit error of 16-bit composites (see
``scripts/gpu/check.py``), plus, with the scoring kernel's default f16
partial sums (``score-partials=f16``), at most ``partials_f16_error``: each
per-(query composite, key block) partial sum P lies in [0, rk] relative to
an integer max and is rounded once to f16 (2^-11 relative; below 2^-14 the
subnormal step 2^-24), and a composite's share is P 2^(m_tile - m) / l with
l > 1/2, so a block score (a sum or max over its rq composites) moves by at
most 2^-11 of itself plus rq 2^-24.

Both follow from the selection rule alone (the walk stops at the first
prefix whose mass reaches ``tau * total``, and every mass or total moves by
at most ``eps`` per block), so a violation means a selection bug, not
rounding. Rows where ``min_blocks``/``max_blocks`` bind, or whose total is
NaN on either side, are not judged (they are counted).
"""

from __future__ import annotations

import numpy as np

from .reference.selection import _visible_and_forced

#: Relative rounding of an f16 partial sum in the GPU scoring kernel's scratch.
PARTIALS_F16_REL = 2.0**-11


#: The outlier scoring kernel's exp2 on the FMA pipe
#: (``score-outlier-exp2-poly``, OutlierScoreKernel.cpp's exp2Poly): the f32
#: coefficients c0..c3 of its degree-3 minimax polynomial of 2^f on
#: [-1/2, 1/2] (f = x - round(x)), and a bound on the relative error of 2^x
#: so computed with f32 FMAs where the result is normal (x >= -125.5): the
#: Remez fit's 7.478e-5, 7.484e-5 evaluated in f32, bounded by 2^-13.7 =
#: 7.514e-5 (test_margin checks it; below -125.5 the result is positive and
#: below 2^-125).
EXP2_POLY_COEFFS = (0.99992806, 0.69326097, 0.24261113, 0.05517167)
EXP2_POLY_REL = 2.0**-13.7


def exp2_poly(x):
    """The kernel's exp2Poly in float32, elementwise: x clamped to >= -126,
    j = round(x) by the 1.5 * 2^23 shift, f = x - j, 2^f by Horner (each
    FMA rounded once: the product is exact in float64, the sum rounded to
    float64 then float32, which differs from a fused rounding by at most an
    ulp in rare double-rounding cases), j added to the exponent field."""
    x = np.maximum(np.asarray(x, dtype=np.float32), np.float32(-126.0))
    shift = np.float32(12582912.0)
    shifted = (x + shift).astype(np.float32)
    f = (x - (shifted - shift).astype(np.float32)).astype(np.float32)
    c0, c1, c2, c3 = (np.float32(c) for c in EXP2_POLY_COEFFS)
    p = (c3.astype(np.float64) * f + c2).astype(np.float32)
    p = (p.astype(np.float64) * f + c1).astype(np.float32)
    p = (p.astype(np.float64) * f + c0).astype(np.float32)
    bits = p.view(np.uint32) + (shifted.view(np.uint32) << np.uint32(23))
    return bits.astype(np.uint32).view(np.float32)


def partials_f16_error(scores, rq):
    """The most the GPU's f16 partial sums move block scores ``scores``
    (query blocks of ``rq`` composites): 2^-11 of each plus rq 2^-24 (the
    subnormal step of shares whose P fell below 2^-14, over l > 1/2)."""
    return PARTIALS_F16_REL * np.asarray(scores, dtype=np.float64) + rq * 2.0**-24


def _selection_order(s32, free):
    """Free blocks by descending float32 score, ties by ascending index."""
    idx = np.nonzero(free)[0]
    return idx[np.lexsort((idx, -s32[idx]))]


def check_margin(
    a_scores,
    a_counts,
    a_indices,
    b_scores,
    b_counts,
    b_indices,
    *,
    tau,
    local_blocks=1,
    sink=True,
    causal=True,
    min_blocks=0,
    max_blocks=0,
):
    """Checks layout ``b`` against reference layout ``a`` under the rule
    above. Returns a dict: ``rows`` (judged), ``rows_differ``,
    ``blocks_differ``, ``skipped`` (rows not judged), ``eps_max`` and
    ``violations`` (a list of ``(b, g, I, kind, detail)``)."""
    a_scores = np.asarray(a_scores, dtype=np.float32)
    b_scores = np.asarray(b_scores, dtype=np.float32)
    B, Hg, NBq, NBk = a_scores.shape
    visible, forced = _visible_and_forced(NBq, NBk, local_blocks, sink, causal)
    out = dict(rows=0, rows_differ=0, blocks_differ=0, skipped=0, eps_max=0.0, violations=[])
    if tau >= 1.0:
        return out
    for bi in range(B):
        for g in range(Hg):
            for I in range(NBq):
                vis = visible[I]
                n = int(vis.sum())
                a = a_scores[bi, g, I]
                b = b_scores[bi, g, I]
                kept_a = np.zeros(NBk, bool)
                kept_a[a_indices[bi, g, I, : a_counts[bi, g, I]]] = True
                kept_b = np.zeros(NBk, bool)
                kept_b[b_indices[bi, g, I, : b_counts[bi, g, I]]] = True
                ta = np.cumsum(np.where(vis, a, 0), dtype=np.float32)[-1]
                tb = np.cumsum(np.where(vis, b, 0), dtype=np.float32)[-1]
                capped = (min_blocks > 0 and min(a_counts[bi, g, I], b_counts[bi, g, I]) <= min_blocks) or (
                    max_blocks > 0 and max(a_counts[bi, g, I], b_counts[bi, g, I]) >= max_blocks
                )
                if np.isnan(ta) or np.isnan(tb) or capped:
                    out["skipped"] += 1
                    continue
                out["rows"] += 1
                eps = float(np.max(np.abs(a[vis] - b[vis]))) if n else 0.0
                out["eps_max"] = max(out["eps_max"], eps)
                differ = kept_a != kept_b
                if differ.any():
                    out["rows_differ"] += 1
                    out["blocks_differ"] += int(differ.sum())
                free = vis & ~forced[I]
                S = kept_a & free
                K = kept_b & free
                beta = float(a[S].min()) if S.any() else np.inf
                # 1. drop
                dropped = S & ~K
                limit = max(beta + 2 * eps, 2 * n * eps)
                bad = dropped & (a > limit)
                if bad.any():
                    out["violations"].append(
                        (
                            bi,
                            g,
                            I,
                            "drop",
                            f"blocks {np.nonzero(bad)[0].tolist()} with "
                            f"scores {a[bad].tolist()} > {limit:.3g} (eps {eps:.3g})",
                        )
                    )
                # 2. add
                E = K & ~S
                if E.any():
                    order_b = _selection_order(b, free)
                    taken_b = [j for j in order_b if K[j]]
                    last = taken_b[-1]
                    allowed = float(a[S & ~K].sum()) + 2 * n * eps + float(a[last])
                    mass = float(a[E].sum())
                    if mass > allowed * (1 + 1e-6):
                        out["violations"].append(
                            (
                                bi,
                                g,
                                I,
                                "add",
                                f"mass {mass:.3g} of blocks "
                                f"{np.nonzero(E)[0].tolist()} > {allowed:.3g} (eps {eps:.3g})",
                            )
                        )
    return out
