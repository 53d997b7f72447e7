"""How far the compiled slash refinement (float32, CPU or GPU) may be from
its float64 oracle :func:`unisparse.reference.twolevel.refine`.

``u = 2^-24``; ``gamma(n) = n u / (1 - n u)`` bounds a float32 sum of ``n``
terms in any order (fused multiply-adds included) relative to the sum of
their magnitudes. With ``Q`` and ``K`` the largest norms of a query and a
key row, a logit ``x = scale q . k`` is off by at most ``dx = 2 scale
gamma(D + 2) Q K`` (the dot product, the product by the scale and the
rounding of that scale: the GPU kernels of 16-bit q and k take ``x
log2(e)`` as ``S fl(scale log2(e))``, which ``2^(.)`` turns back into the
natural ``e^x``; ``|x| <= scale Q K``): :func:`logit_error`. Then:

* a probe row's term ``exp(x_j - lse)`` moves by a relative ``expm1(2 dx)``
  (its logit and the log-sum-exp of the forced keys, each off by ``dx``),
  the log-sum-exp's own sum by ``gamma(F)`` (``F <= (local_blocks + 2)
  block`` forced keys), the two exponentials by a few ulp each
  (:data:`EXP_ULPS`: the CPU path's ``unisparse-approximate-exp`` is within
  4 ulp; the GPU kernels work in the log2 domain, ``ex2.approx.ftz`` within
  2 ulp where its result is normal, +0 below ``2^-126``, inside the bound's
  absolute ``1e-30``; the GPU loop path ``expf``, within 2), the log by
  one ulp of ``log F`` (``logf``) or ``ln 2`` times one ulp of ``log2 F``
  (the kernels' ``log2f``), an absolute error in the lse and so a relative
  one in every term: :func:`_log_error`, and the products by
  ``u``; ``E``, a sum of at most ``T = rows_per_block c_h n_offsets (2
  width + 1)`` such non-negative terms, by ``gamma(T)`` more: ``eps_E``;
* the row total and the forced blocks' sum of the first pass by
  ``gamma(NB)`` each, so ``s / tot`` by ``gamma(NB) + u`` and ``E f / tot``
  by ``eps_E + 2 gamma(NB) + 3 u``; the max of two values is off by at most
  the larger error, so every refined score ``r`` by ``r (eps_E + 2 gamma(NB)
  + 3 u)``: :func:`refined_tolerance`, relative to the float64 refinement
  of the same first-pass scores;
* with ``refine_norm``, ``R = E f / tot`` (each off by ``eps_R = eps_E + 2
  gamma(NB) + 3 u``) is divided by ``1 + S``, ``S = sum_J R`` a float32 sum
  of ``NB`` non-negative terms (or ``f / tot`` times the sum of ``E``: the
  same terms, one product): ``S`` is off by ``(1 + eps_R)(1 + gamma(NB)) -
  1`` of itself, and so ``1 + S``, rounded once more, by ``sig = (1 +
  eps_R)(1 + gamma(NB))(1 + u) - 1`` of itself (``S <= 1 + S``); the
  quotient, rounded too, by ``(1 + eps_R)(1 + u) / (1 - sig) - 1``, about
  ``2 eps_R + gamma(NB) + 2 u``, which bounds ``s / tot`` as well.

The offsets are picked by comparing slash evidence: where two candidates
(or a pair's vertical and slash evidence, which decides where its mass
goes) are closer than the bound on their float32 values, float32 and
float64 may pick different offsets, and the refined scores then differ by
much more than the bound, legitimately. :func:`offset_margin` says how far
an input is from such a near tie; a comparison is meaningful only where it
is above 1.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "U",
    "EXP_ULPS",
    "DECIDED",
    "TIE",
    "OPEN",
    "gamma",
    "logit_error",
    "offset_margin",
    "offset_groups",
    "judge_groups",
    "refined_tolerance",
]

U = 2.0**-24
EXP_ULPS = 4


def gamma(n):
    """The relative error bound of a float32 sum of ``n`` terms."""
    return n * U / (1 - n * U)


def logit_error(q64, k64, scale):
    """``dx``: the largest error of a float32 logit ``scale q . k`` (q, k
    float64 ``[B, H, N, D]`` holding the values the compiled code reads)."""
    Q = np.sqrt((q64**2).sum(-1)).max()
    K = np.sqrt((k64**2).sum(-1)).max()
    return 2 * scale * gamma(q64.shape[-1] + 2) * Q * K


def _group_evidence(q64, k64, cfg, dx):
    """Per (batch, head group) ``(b, g, slash, err, order)``: the float64
    slash evidence, its float32 error bound (:func:`offset_margin`) and the
    offsets beyond the forced blocks by decreasing evidence (others last)."""
    B, Hq, N, _ = q64.shape
    G = Hq // k64.shape[1]
    m = min(cfg.last_q, N)
    scale = cfg.scale or 1 / math.sqrt(q64.shape[-1])
    eps = math.expm1(2 * dx) + gamma(N + m * cfg.c_h) + 4 * EXP_ULPS * U
    rows = np.arange(N - m, N)
    d = rows[:, None] - np.arange(N)[None, :]
    vis = d >= 0
    for b in range(B):
        for g in range(Hq // cfg.c_h):
            p = np.zeros((m, N))
            for h in range(g * cfg.c_h, (g + 1) * cfg.c_h):
                x = np.where(vis, q64[b, h, rows] @ k64[b, h // G].T * scale, -np.inf)
                e = np.exp(x - x.max(1, keepdims=True))
                p += e / e.sum(1, keepdims=True) / (m * cfg.c_h)
            jv, dv, pv = np.nonzero(vis)[1], d[vis], p[vis]
            v0 = np.bincount(jv, weights=pv, minlength=N)
            s0 = np.bincount(dv, weights=pv, minlength=N)
            near = np.abs(v0[jv] - s0[dv]) <= eps * (v0[jv] + s0[dv])
            slash = np.bincount(dv, weights=np.where(v0[jv] >= s0[dv], 0.0, pv), minlength=N)
            amb = np.bincount(dv, weights=np.where(near, pv, 0.0), minlength=N)
            far = np.arange(N) > cfg.local_blocks * cfg.block
            order = np.argsort(-np.where(far, slash, -np.inf), kind="stable")
            if far.sum() <= cfg.n_offsets or slash[order[cfg.n_offsets]] <= 0:
                order = None  # every candidate with positive evidence is kept
            yield b, g, slash, eps * slash + amb, order


def _margin(slash, err, a, c):
    """How far offsets ``a`` and ``c`` are apart, relative to their bound."""
    return (slash[a] - slash[c]) / (err[a] + err[c] + 1e-300)


def offset_margin(q64, k64, cfg, dx):
    """The smallest gap, relative to its float32 error bound, between the
    last offset kept and the first one left out, over every (batch, head
    group); a value above 1 means float32 keeps the offsets float64 keeps.

    Each offset's evidence is off by ``eps`` of itself (its shares: the
    softmax of a row moves by ``expm1(2 dx)`` and a few ulp, the GPU's
    ``2^(x - max) (1 / sum)`` a rounding more than a quotient, its sums by
    ``gamma(N + m c_h)``) plus the mass of the pairs whose vertical and
    slash evidence are within that bound of each other (they may go either
    way). ``cfg``: a :class:`unisparse.Config` (or anything with its
    refinement fields)."""
    worst = math.inf
    k = cfg.n_offsets
    for _, _, slash, err, order in _group_evidence(q64, k64, cfg, dx):
        if order is not None:
            worst = min(worst, _margin(slash, err, order[k - 1], order[k]))
    return worst


DECIDED, TIE, OPEN = "decided", "tie", "open"


def offset_groups(q64, k64, cfg, dx):
    """Per (batch, head group), whether float32 must keep the offsets that
    float64 keeps: ``(status, alternative)``, status ``[B, Hg]`` of

    * :data:`DECIDED`: the last offset kept and the first left out are more
      than their bound apart (or every offset with positive evidence is
      kept): float32 keeps float64's offsets;
    * :data:`TIE`: those two are within their bound, and each is more than
      its bound from the offsets on its other side (the one before the last
      kept, the one after the first left out): float32 keeps float64's
      offsets or those with the two exchanged, ``alternative [B, Hg,
      n_offsets]`` (float64's offsets elsewhere);
    * :data:`OPEN`: more than two offsets are within their bounds at the
      boundary; no comparison is meaningful.
    """
    B, Hq = q64.shape[:2]
    k = cfg.n_offsets
    status = np.full((B, Hq // cfg.c_h), DECIDED, dtype=object)
    alt = None
    for b, g, slash, err, order in _group_evidence(q64, k64, cfg, dx):
        if alt is None:
            N = slash.shape[0]
            alt = np.full((B, Hq // cfg.c_h, k), -1, dtype=np.int64)
        ev = np.where(np.arange(N) > cfg.local_blocks * cfg.block, slash, -np.inf)
        top = np.argsort(-ev, kind="stable")[:k]
        alt[b, g, : len(top)] = np.where(ev[top] > 0, top, -1)
        if order is None or _margin(slash, err, order[k - 1], order[k]) > 1:
            continue
        inner = k < 2 or _margin(slash, err, order[k - 2], order[k]) > 1
        outer = k + 1 >= N or _margin(slash, err, order[k - 1], order[k + 1]) > 1
        status[b, g] = TIE if inner and outer else OPEN
        if status[b, g] == TIE:
            alt[b, g, k - 1] = order[k]
    return status, alt


def judge_groups(r, want, tol, status, want_alt=None, tol_alt=None):
    """Per (batch, head group) of refined scores ``r`` ``[B, Hg, NB, NB]``:
    True where every score is within ``tol`` of ``want`` (the float64
    refinement with float64's offsets) or, in a :data:`TIE` group, within
    ``tol_alt`` of ``want_alt`` (the one with the :func:`offset_groups`
    alternative); None in :data:`OPEN` groups (not judged)."""
    out = np.empty(status.shape, dtype=object)
    for b, g in np.ndindex(status.shape):
        if status[b, g] == OPEN:
            out[b, g] = None
            continue
        ok = bool(np.all(np.isfinite(r[b, g])) and np.all(np.abs(r[b, g] - want[b, g]) <= tol[b, g]))
        if not ok and status[b, g] == TIE and want_alt is not None:
            ok = bool(np.all(np.abs(r[b, g] - want_alt[b, g]) <= tol_alt[b, g]))
        out[b, g] = ok
    return out


def _ulp32(x):
    """One ulp of a positive normal float32 near ``x``: ``2^(e - 23)``."""
    return 2.0 ** (math.floor(math.log2(x)) - 23)


def _log_error(forced):
    """The relative error of a term ``exp(x - lse)`` that the lse's log of a
    sum of at most ``forced`` terms each at most 1 makes: one ulp of the
    natural log (``logf``) or ``ln 2`` ulp of the base-2 one (``log2f``),
    whichever is larger."""
    top = max(float(forced), 2.0)
    return max(_ulp32(math.log(top)), math.log(2.0) * _ulp32(math.log2(top)))


def refined_tolerance(want, cfg, dx):
    """The bound on ``|r - want|`` of float32 refined scores ``r`` against
    ``want``, the float64 refinement of the same first-pass scores
    ``[B, Hg, NB, NB]`` (the module docstring; ``cfg.refine_norm``, where
    present and true, the normalised refinement's bound)."""
    nb = want.shape[-1]
    terms = cfg.rows_per_block * cfg.c_h * cfg.n_offsets * (2 * cfg.width + 1)
    forced = (cfg.local_blocks + 2) * cfg.block
    eps_e = math.expm1(2 * dx) + gamma(forced) + gamma(terms) + 2 * EXP_ULPS * U + _log_error(forced) + 4 * U
    eps_r = eps_e + 2 * gamma(nb) + 3 * U
    if getattr(cfg, "refine_norm", False):
        sig = (1 + eps_r) * (1 + gamma(nb)) * (1 + U) - 1
        eps_r = (1 + eps_r) * (1 + U) / (1 - sig) - 1
    return want * eps_r + 1e-30
