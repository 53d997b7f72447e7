"""Structured synthetic Q/K/V for testing and measuring sparse attention.

Sparse attention is meaningless on i.i.d. noise (the attention map is flat),
so these generators plant the patterns seen in real long-context models on
top of a Gaussian base:

* **sink** - the first few keys (mostly key 0) carry a direction that every
  query aligns with, so they receive a large share of every row's mass;
* **local** - queries and keys share a slowly varying positional component
  (random Fourier features of a Gaussian kernel of width ``local_width``
  tokens), so nearby keys score high: a band along the diagonal;
* **vertical lines** - a few key positions (1-4 tokens wide) that all queries
  attend to;
* **slash lines** - keys at a fixed offset ``o`` behind the query
  (``j = i - o``), built from high-frequency phase features;
* **needles** - spans of a few dozen query tokens whose queries match a short
  span of keys at a random earlier depth (retrieval).

All components are expressed in *logit units*: a component of strength ``L``
adds ``L`` to ``q . k / sqrt(D)`` where it applies.  Each component lives in
its own direction(s) of a random orthonormal basis per (batch, kv head)
(falling back to random unit vectors if ``D`` is too small), and each query
head scales its query-side components by its own gain in ``[0.6, 1.4]``, so
heads of a GQA group differ.  The key noise is projected off the
directions every query shares (sink, vertical) so that it does not act as a
random per-key bias that drowns them.  ``peak`` multiplies the queries at the end,
i.e. it acts as an inverse temperature on the whole attention map.

Everything is a deterministic function of ``seed`` (``np.random.default_rng``).
"""

from __future__ import annotations

import math

import numpy as np

from . import rules

__all__ = ["structured_qkv", "needle_hit_rate", "needle_hits", "needle_span_hits", "STRENGTHS"]

#: Logit strength of each component at ``peak = 1``.
STRENGTHS = {
    "sink": 8.0,
    "vertical": 6.0,
    "local": 4.0,
    "slash": 4.0,
    "needle": 10.0,
}
#: Standard deviation of the i.i.d. Gaussian noise on q and k entries (v has unit noise).
#: The noise of a logit comes mostly from (structured q) . (k noise), about
#: KEY_NOISE * |q_struct| / sqrt(D), i.e. roughly one logit at peak = 1.
QUERY_NOISE = 0.5
KEY_NOISE = 0.5
#: Relative strength of the sink on the first tokens (token 0 is the main sink).
SINK_PROFILE = np.array([1.0, 0.7, 0.5, 0.4])
N_SINK_TOKENS = len(SINK_PROFILE)


def _basis(rng, D: int, m: int) -> np.ndarray:
    """``m`` unit vectors in R^D (columns), orthonormal when ``m <= D``."""
    g = rng.standard_normal((D, max(m, 1)))
    if m <= D:
        qmat, _ = np.linalg.qr(g)
        return qmat[:, :m]
    return (g / np.linalg.norm(g, axis=0, keepdims=True))[:, :m]


def _features(pos: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """``[len(pos), 2F]`` cos/sin features of positions at frequencies ``omega``."""
    ang = pos[:, None].astype(np.float64) * omega[None, :]
    return np.concatenate([np.cos(ang), np.sin(ang)], axis=1)


def structured_qkv(
    B: int,
    Hq: int,
    Hkv: int,
    N: int,
    D: int,
    seed: int,
    dtype=np.float32,
    peak: float = 1.0,
    sink: bool = True,
    local: bool = True,
    vertical_lines: int = 2,
    slash_lines: int = 1,
    needles: int = 0,
    local_width: float = 64.0,
    planted: dict | None = None,
):
    """Generate structured ``q [B, Hq, N, D]`` and ``k, v [B, Hkv, N, D]``.

    Parameters
    ----------
    B, Hq, Hkv, N, D : shapes (``Hq`` must be a multiple of ``Hkv``).
    seed : RNG seed; equal arguments give bit-identical outputs.
    dtype : output dtype (computation is float64).
    peak : inverse temperature; ``q`` is multiplied by it.
    sink, local : enable the sink / local-window components.
    vertical_lines : number of vertical lines per (batch, kv head).
    slash_lines : number of slash lines (fixed offsets) per (batch, kv head).
    needles : number of needles per batch (same positions for every head).
    local_width : width, in tokens, of the local (diagonal) kernel.
    planted : if a dict, it is filled with the planted lines (the outputs do
        not change): ``planted["vertical"][(b, kh)]`` the ``(start, stop)``
        key ranges of the vertical lines and ``planted["slash"][(b, kh)]``
        the slash offsets ``o`` (query ``i`` matches key ``i - o``) of kv
        head ``kh`` of batch ``b`` (for diagnosing what an estimator misses).

    Returns
    -------
    ``(q, k, v)``, or ``(q, k, v, needle_info)`` when ``needles > 0``, where
    ``needle_info`` is a list of dicts with keys ``batch``, ``q_start``,
    ``q_stop``, ``k_start``, ``k_stop`` (half-open token ranges): every query in
    ``[q_start, q_stop)`` of every head of batch ``batch`` strongly matches
    every key in ``[k_start, k_stop)``, and ``k_stop <= q_start``.
    """
    for name, val in (("B", B), ("Hq", Hq), ("Hkv", Hkv), ("N", N), ("D", D)):
        if int(val) < 1:
            raise ValueError(f"{name} must be >= 1, got {val}")
    rules.gqa(Hq, Hkv)
    if vertical_lines < 0 or slash_lines < 0 or needles < 0:
        raise ValueError("vertical_lines, slash_lines and needles must be >= 0")
    G = Hq // Hkv
    rng = np.random.default_rng(seed)
    sqrtD = math.sqrt(D)

    def coef(strength: float, n_terms: int = 1) -> float:
        # q-side and k-side coefficient c with c^2 * n_terms / sqrt(D) = strength
        # for a single term; for n_terms phase features the peak sum is strength.
        return math.sqrt(strength * sqrtD / n_terms)

    F_loc = max(2, min(16, D // 8))
    F_sl = max(2, min(16, D // 8))
    n_sink = min(N_SINK_TOKENS, N)

    # Needle placement (per batch, shared by all heads).
    needle_info = []
    if needles:
        lq = max(4, min(32, N // 8))
        lk = max(2, min(16, N // 16))
        lo = max(N // 4, n_sink + lk + lq)
        if lo + lq > N:
            raise ValueError(f"N = {N} is too short for needles")
        for b in range(B):
            for _ in range(needles):
                qs = int(rng.integers(lo, N - lq + 1))
                ks_hi = qs - lq - lk  # keep the key span out of the immediate window
                ks = int(rng.integers(n_sink, max(n_sink, ks_hi) + 1))
                needle_info.append({"batch": b, "q_start": qs, "q_stop": qs + lq, "k_start": ks, "k_stop": ks + lk})

    q = rng.standard_normal((B, Hq, N, D)) * QUERY_NOISE
    k = rng.standard_normal((B, Hkv, N, D)) * KEY_NOISE
    v = rng.standard_normal((B, Hkv, N, D))
    pos = np.arange(N)

    if planted is not None:
        planted["vertical"], planted["slash"] = {}, {}
    n_dirs = int(sink) + int(vertical_lines > 0) + (2 * F_loc if local else 0) + 2 * F_sl * slash_lines + needles
    for b in range(B):
        for kh in range(Hkv):
            basis = _basis(rng, D, n_dirs)
            # Remove the key noise along the directions every query shares
            # (sink, vertical): otherwise that noise acts as a random
            # per-key bias of a few logits that drowns the planted sinks.
            n_glob = int(sink) + int(vertical_lines > 0)
            if n_glob:
                Ug, _ = np.linalg.qr(basis[:, :n_glob])
                k[b, kh] -= (k[b, kh] @ Ug) @ Ug.T
            gains = rng.uniform(0.6, 1.4, size=(G, 5))
            heads = slice(kh * G, (kh + 1) * G)
            qs_ = np.zeros((G, N, D))
            ks_ = np.zeros((N, D))
            col = 0
            if sink:
                u = basis[:, col]
                col += 1
                c = coef(STRENGTHS["sink"])
                ks_[:n_sink] += (c * SINK_PROFILE[:n_sink])[:, None] * u
                qs_ += (gains[:, 0] * c)[:, None, None] * u
            if vertical_lines > 0:
                u = basis[:, col]
                col += 1
                c = coef(STRENGTHS["vertical"])
                lo_v = min(n_sink, N - 1)
                for _ in range(vertical_lines):
                    p0 = int(rng.integers(lo_v, N))
                    w = int(rng.integers(1, 5))
                    ks_[p0 : min(N, p0 + w)] += c * rng.uniform(0.8, 1.2) * u
                    if planted is not None:
                        planted["vertical"].setdefault((b, kh), []).append((p0, min(N, p0 + w)))
                qs_ += (gains[:, 1] * c)[:, None, None] * u
            if local:
                U = basis[:, col : col + 2 * F_loc]
                col += 2 * F_loc
                omega = np.abs(rng.standard_normal(F_loc)) / local_width
                c = coef(STRENGTHS["local"], F_loc)
                f = _features(pos, omega) @ U.T  # [N, D]
                ks_ += c * f
                qs_ += (gains[:, 2] * c)[:, None, None] * f
            for _ in range(slash_lines):
                U = basis[:, col : col + 2 * F_sl]
                col += 2 * F_sl
                off_lo = min(16, N - 1)
                off = int(rng.integers(off_lo, max(off_lo, min(N // 2, 1024)) + 1))
                if planted is not None:
                    planted["slash"].setdefault((b, kh), []).append(off)
                omega = rng.uniform(0.2, math.pi, size=F_sl)
                c = coef(STRENGTHS["slash"], F_sl)
                ks_ += c * (_features(pos, omega) @ U.T)
                qs_ += (gains[:, 3] * c)[:, None, None] * (_features(pos - off, omega) @ U.T)
            c = coef(STRENGTHS["needle"])
            for nd in (x for x in needle_info if x["batch"] == b):
                u = basis[:, col]
                col += 1
                ks_[nd["k_start"] : nd["k_stop"]] += c * u
                qs_[:, nd["q_start"] : nd["q_stop"]] += (gains[:, 4] * c)[:, None, None] * u
            k[b, kh] += ks_
            q[b, heads] += qs_

    q *= peak
    out = (q.astype(dtype), k.astype(dtype), v.astype(dtype))
    return out + (needle_info,) if needles else out


def needle_hit_rate(needle_info, counts, indices, block: int, Hq: int) -> float:
    """Fraction of (needle, query head, query row) whose layout row keeps every
    key block of the needle's key span.

    ``counts``/``indices`` is a layout ``[B, Hg, NB]`` / ``[B, Hg, NB, NB]``;
    query head ``h`` uses group ``h // (Hq // Hg)``.  Returns 1.0 if there are
    no needles.
    """
    return needle_hits(needle_info, counts, indices, block, Hq)[0]


def needle_hits(needle_info, counts, indices, block: int, Hq: int):
    """``(hit rate, spans kept)``: :func:`needle_hit_rate` and the number of
    needles whose every (query head, query row) keeps all of the needle's key
    blocks, from one expansion of the layout."""
    rate, kept = needle_span_hits(needle_info, counts, indices, block, Hq)
    return rate, int(kept.sum())


def needle_span_hits(needle_info, counts, indices, block: int, Hq: int):
    """``(hit rate, kept)``: :func:`needle_hit_rate` and, per needle, whether
    every (query head, query row) of its span keeps all of its key blocks
    (bool ``[len(needle_info)]``), from one expansion of the layout."""
    from .reference import layout_mask  # local import keeps the modules decoupled

    if not needle_info:
        return 1.0, np.zeros(0, dtype=bool)
    counts = np.asarray(counts)
    mask = layout_mask(counts, indices)
    Hg = counts.shape[1]
    grp_of = np.arange(Hq) // (Hq // Hg)
    hits = 0
    total = 0
    kept = np.zeros(len(needle_info), dtype=bool)
    for n_i, nd in enumerate(needle_info):
        kb = np.arange(nd["k_start"] // block, (nd["k_stop"] - 1) // block + 1)
        rows = np.arange(nd["q_start"], nd["q_stop"])
        qb = rows // block
        ok = mask[nd["batch"]][grp_of][:, qb][:, :, kb].all(axis=-1)  # [Hq, rows]
        hits += int(ok.sum())
        total += ok.size
        kept[n_i] = bool(ok.all())
    return hits / total, kept
