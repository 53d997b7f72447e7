"""The compiled CPU path of the outlier estimator against the float64 reference.

``unisparse.compile`` lowers ``compress {pooling = outlier}`` and
``block_score {estimator = outlier}`` to linalg and runs them in float32; the
reference (:mod:`unisparse.reference.outlier`) computes the same semantics in
float64 on exactly the values the compiled code reads. The scores are
compared within a bound derived from the float32 reductions (below), the
layouts within the boundary rule of :mod:`unisparse.margin`.

The bound. ``u = 2^-24``; ``gamma(n) = n u / (1 - n u)`` bounds a float32 sum
of ``n`` terms in any order relative to the sum of their magnitudes
(Higham, eq. 4.4). Per composite ``t`` with ``M`` the largest ``|x|`` of its
tokens (heads pooled):

* a pooled token is off by ``P = (hf + 2) u M`` (a mean of ``hf`` heads), a
  slot holding a mean or a token by ``E = gamma(c + 2) M + P``, the spread
  slot (a mean of squares of deviations of at most ``2 M``) by
  ``4 M (P + E + 2 u M) + (P + E + 2 u M)^2 + gamma(c + 2) 4 M^2``;
* a logit ``x = s q . k + log w`` by ``s (gamma(D + 2) sum|q||k| + E_q
  sum|k| + E_k sum|q| + D E_q E_k) + u (|x| + |log w|)``; ``dx`` its largest
  value over a row's visible slots;
* a softmax share ``p = exp(x - m) / l`` then moves by a relative
  ``eps = 2 (e^(2 dx + u |x - m|) - 1 + 4 u) + gamma(K) + u`` (``K`` slots;
  4 ulp for the pipeline's polynomial exp);
* the spread term ``sig = s^2 v |k|^2 / 2``, ``v`` the mean over d of the
  spread slot, by ``s^2 (dv |k|^2 + v dk2 + dv dk2) / 2 + 5 u sig``, with
  ``dk2 = 2 E_k sum|k| + D E_k^2 + gamma(D) |k|^2``;
* a corrected logit ``y = x + sig (1 - 2 p)`` by ``dx + dsig |1 - 2 p| + 2
  sig eps p + 4 u (|sig| + |y|)``, ``dy`` its row maximum; the final shares
  by ``eps' = 2 (e^(2 dy + u |y - m|) - 1 + 4 u) + gamma(K) + u``;
* a block score, a sum (or a max of sums) of non-negative shares, by
  ``(eps' + gamma(nq sk + rq rk) + 2 u) s + 1e-30``.

The outliers are picked by comparing token scores; where two candidates are
closer than the bound on their float32 scores, float32 and float64 may pick
different tokens. The inputs below are checked to have no such near tie
(the precondition fails loudly otherwise), so the comparison is exact in
what it selects.
"""

import math

import numpy as np
import pytest

import unisparse
from conftest import to_np_dtype, widen
from test_outlier import brute_score
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import PRESETS, preset
from unisparse.margin import check_margin
from unisparse.reference import outlier as O

U = 2.0**-24
EXP_ULPS = 4  # unisparse-approximate-exp: a few ulp of expf


def gamma(n):
    return n * U / (1 - n * U)


def _pad_tokens(x, c, fill=0.0):
    """[B, G, N, ...] -> [B, G, T, c, ...], padded with `fill`."""
    B, G, N = x.shape[:3]
    T = -(-N // c)
    pad = np.full((B, G, T * c - N) + x.shape[3:], fill)
    return np.concatenate([x, pad], axis=2).reshape((B, G, T, c) + x.shape[3:])


def selection_margins(x, c, r, hf, kvg, hot, queries):
    """The smallest gap, relative to its float32 error bound, between the
    last outlier picked and the next candidate, over every composite (the
    hot pick by ``x . probe``, the rare ones by the squared distance to the
    center). A value above 1 means float32 picks what float64 picks."""
    xh = R.compress(x, 1, head_factor=hf, kv_group=kvg)
    B, G, N, D = xh.shape
    absx = R.compress(np.abs(x), 1, head_factor=hf, kv_group=kvg)
    e_pool = (hf + 2) * U * absx
    center = xh.mean(2, keepdims=True)
    d_center = gamma(N + 1) * absx.mean(2, keepdims=True) + e_pool.mean(2, keepdims=True)
    dev = xh - center
    err = e_pool + d_center + U * np.abs(dev)
    score = (dev**2).sum(-1)
    d_score = (2 * np.abs(dev) * err + err**2).sum(-1) + gamma(D + 1) * score
    ratios = []
    scores = _pad_tokens(score, c, -np.inf)
    d_scores = _pad_tokens(d_score, c)
    if hot:
        qh = R.compress(queries, 1, head_factor=hf)
        absq = R.compress(np.abs(queries), 1, head_factor=hf)
        probe = qh.mean(2)
        d_probe = gamma(qh.shape[2] + hf + 2) * absq.mean(2)
        heat = np.einsum("bgnd,bgd->bgn", xh, probe)
        d_heat = (
            np.einsum("bgnd,bgd->bgn", e_pool, np.abs(probe))
            + np.einsum("bgnd,bgd->bgn", np.abs(xh) + e_pool, d_probe)
            + gamma(D) * np.einsum("bgnd,bgd->bgn", np.abs(xh), np.abs(probe))
        )
        heats = _pad_tokens(heat, c, -np.inf)
        d_heats = _pad_tokens(d_heat, c)
        order = np.argsort(-heats, axis=-1, kind="stable")
        ratios.append(_gap_ratio(heats, d_heats, order, hot))
        scores = scores.copy()
        np.put_along_axis(scores, order[..., :hot], -np.inf, axis=-1)
    order = np.argsort(-scores, axis=-1, kind="stable")
    ratios.append(_gap_ratio(scores, d_scores, order, r - hot))
    return min(ratios)


def _gap_ratio(values, bounds, order, k):
    """min over composites of (v[k-1] - v[k]) / (b[k-1] + b[k]) in the
    descending `order`, where both candidates are real tokens."""
    v = np.take_along_axis(values, order, -1)
    b = np.take_along_axis(bounds, order, -1)
    last, nxt = v[..., k - 1], v[..., k]
    real = np.isfinite(last) & np.isfinite(nxt)
    gap = last[real] - nxt[real]
    tol = (b[..., k - 1] + b[..., k])[real]
    return float(np.min(gap / tol)) if gap.size else math.inf


def composite_bounds(x, c, hf, kvg, spread_slot=None):
    """Bounds on |compiled - reference| of the composites, per coordinate:
    ``[B, G, T, D]`` for a mean or token slot and, given the reference
    spread slot ``spread_slot [B, G, T, D]``, for the spread (see the module
    docstring)."""
    absx = R.compress(np.abs(x), 1, head_factor=hf, kv_group=kvg)
    M = _pad_tokens(absx, c).max(3)  # the largest |x| of a composite, per d
    P = (hf + 2) * U * M
    E = gamma(c + 2) * M + P
    if spread_slot is None:
        return E, None
    e = P + E + 2 * U * M
    # mean over the rest of (x - m)^2: the cross term 2 |x - m| e averages to
    # at most 2 e sqrt(spread), the sum of squares errs by gamma relative.
    return E, 2 * e * np.sqrt(spread_slot) + e**2 + gamma(c + 3) * 1.01 * spread_slot


def _softmax_errors(z, dz, vis, K):
    """Shares ``p = softmax(z)`` over the visible key slots of each row and a
    bound on their relative error when every ``z`` moves by at most ``dz``:
    ``p_j`` moves by ``e^(dz_j + sum_i p_i dz_i + u |z_j - m|) - 1`` (its
    exponent and the log of the row sum), plus the exponentials' ulps, the
    row sum (``gamma(K)``) and the division."""
    zm = np.where(vis, z, -np.inf)
    m = zm.max(axis=(-2, -1), keepdims=True)
    p = np.exp(zm - m)
    p /= p.sum(axis=(-2, -1), keepdims=True)
    dz = np.where(vis, dz, 0.0)
    mean_dz = (p * dz).sum(axis=(-2, -1), keepdims=True)
    shift = np.where(vis, U * np.abs(z - m), 0.0)
    eps = np.expm1(dz + mean_dz + shift) + 2 * EXP_ULPS * U + gamma(K) + U
    return p, np.where(vis, eps, 0.0)


def score_tolerance(cfg, qc, kc, Eq, Eq_spread, Ek):
    """The bound of the module docstring on |compiled - reference| of every
    block score, [B, Hg, NBq, NBk], propagated element by element."""
    B, G, Tq, sq, D = qc.shape
    Tk, sk = kc.shape[2], kc.shape[3]
    nq = sq - 1
    s = cfg.scale or 1 / math.sqrt(D)
    logw = np.zeros(sk)
    logw[0] = math.log(cfg.c_k - (sk - 1))
    q = qc[:, :, :, :nq]
    aq, ak = np.abs(q), np.abs(kc)
    x = s * np.einsum("bgtad,bgusd->bgtaus", q, kc) + logw
    dx = s * (
        gamma(D + 2) * np.einsum("bgtad,bgusd->bgtaus", aq, ak)
        + np.einsum("bgtd,bgusd->bgtus", Eq, ak)[:, :, :, None]
        + np.einsum("bgtad,bgud->bgtau", aq, Ek)[..., None]
        + np.einsum("bgtd,bgud->bgtu", Eq, Ek)[:, :, :, None, :, None]
    ) + U * (np.abs(x) + np.abs(logw))
    t = np.arange(Tq)[:, None]
    u = np.arange(Tk)[None, :]
    vis = (u * cfg.c_k <= (t + 1) * cfg.c_q - 1) if cfg.causal else np.ones((Tq, Tk), bool)
    vis6 = np.broadcast_to(vis[:, None, :, None], x.shape[2:])
    K = (vis.sum(1) * sk)[:, None, None, None]  # visible slots of a row
    p, eps = _softmax_errors(x, dx, vis6, K)
    # The spread term sig = s^2 v |k|^2 / 2 (query slot 0 only).
    v = np.zeros(q.shape[:4])
    v[..., 0] = qc[:, :, :, nq].mean(-1)
    dv = np.zeros_like(v)
    dv[..., 0] = Eq_spread.mean(-1) + gamma(D + 1) * v[..., 0]
    k2 = (kc**2).sum(-1)
    dk2 = 2 * np.einsum("bgusd,bgud->bgus", ak, Ek) + (Ek**2).sum(-1)[..., None] + gamma(D) * k2
    v6, dv6 = v[..., None, None], dv[..., None, None]
    k26, dk26 = k2[:, :, None, None], dk2[:, :, None, None]
    sig = 0.5 * s * s * v6 * k26
    dsig = 0.5 * s * s * (dv6 * k26 + v6 * dk26 + dv6 * dk26) + 5 * U * sig
    y = x + sig * (1 - 2 * p)
    dy = dx + dsig * np.abs(1 - 2 * p) + 2 * sig * eps * p + 4 * U * (sig + np.abs(y))
    p2, eps2 = _softmax_errors(y, dy, vis6, K)
    # A[t, u] = sum_a omega_a sum_b p2: its error, then the block sums (or
    # the max of the per-row sums) of A and of that error.
    omega = np.full(nq, 1.0 / cfg.c_q)
    omega[0] = (cfg.c_q - (nq - 1)) / cfg.c_q
    A = np.einsum("bgtaus,a->bgtu", p2, omega)
    dA = np.einsum("bgtaus,a->bgtu", p2 * eps2, omega) + (gamma(nq * sk) + U) * A
    rq, rk = cfg.block // cfg.c_q, cfg.block // cfg.c_k
    NBq, NBk = -(-Tq // rq), -(-Tk // rk)

    def blocks(a):  # [B, G, Tq, Tk] -> [B, G, NBq, rq, NBk] summed over each block's keys
        a = np.pad(a, ((0, 0), (0, 0), (0, NBq * rq - Tq), (0, NBk * rk - Tk)))
        return a.reshape(B, G, NBq, rq, NBk, rk).sum(-1)

    if cfg.query_reduce == "sum":
        return blocks(dA).sum(3) + gamma(rq * rk) * blocks(A).sum(3) + 1e-30
    return (blocks(dA) + gamma(rk) * blocks(A)).max(3) + 1e-30


def reference_composites(cfg, q, k):
    """The float64 outlier composites of q and k for `cfg` (as
    reference.outlier.estimate forms them)."""
    Hq, Hkv = q.shape[1], k.shape[1]
    qc = O.compress_outlier(q, cfg.c_q, cfg.q_outliers, head_factor=cfg.c_h, spread=True)
    kc = O.compress_outlier(k, cfg.c_k, cfg.k_outliers, head_factor=cfg.c_h, kv_group=Hq // Hkv, hot=1, queries=q)
    return qc, kc


CASES = [
    # (config, Hq, Hkv, N, D, dtype, seed): the recommended estimator's shape
    # (c 16/32, r 1/2, max) at block 64 with a last key composite of 1
    # token; head groups and other outlier counts (sum); non-causal with
    # one key outlier (f16).
    (
        preset("mean", block=64, c_q=16, c_k=32, tau=0.95, estimator="outlier", query_reduce="max"),
        4,
        2,
        289,
        32,
        "bf16",
        1,
    ),
    (
        preset("mean", block=32, c_q=8, c_k=16, c_h=2, tau=0.9, estimator="outlier", q_outliers=2, k_outliers=3),
        8,
        2,
        203,
        16,
        "f32",
        2,
    ),
    (
        preset("mean", block=64, c_q=16, c_k=16, tau=0.8, estimator="outlier", k_outliers=1, causal=False),
        4,
        4,
        250,
        32,
        "f16",
        3,
    ),
]


@pytest.mark.parametrize("cfg,hq,hkv,n,d,dtype,seed", CASES)
def test_compiled_outlier_scores_within_the_float32_bound(cfg, hq, hkv, n, d, dtype, seed):
    q, k, _ = S.structured_qkv(2, hq, hkv, n, d, seed=seed, peak=2.5)[:3]
    qd, kd = to_np_dtype(q, dtype), to_np_dtype(k, dtype)
    q64, k64 = widen(qd, dtype), widen(kd, dtype)
    # Precondition: float32 picks the outliers float64 picks.
    margin = min(
        selection_margins(q64, cfg.c_q, cfg.q_outliers, cfg.c_h, 1, 0, None),
        selection_margins(k64, cfg.c_k, cfg.k_outliers, cfg.c_h, hq // hkv, 1, q64),
    )
    assert margin > 1.0, f"a near tie among outlier candidates (gap / bound {margin:.2f}): pick other inputs"

    kern = unisparse.compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype=dtype)
    scores, counts, indices = kern.layout(qd, kd)
    qc, kc = reference_composites(cfg, q64, k64)
    want = O.block_score(qc, kc, cfg.block, cfg.c_q, cfg.c_k, cfg.causal, query_reduce=cfg.query_reduce)
    fields = ("block", "c_q", "c_k", "c_h", "causal", "estimator", "query_reduce", "q_outliers", "k_outliers")
    assert np.array_equal(want, R.estimate(q64, k64, **{f: getattr(cfg, f) for f in fields}))
    Eq, Eq_spread = composite_bounds(q64, cfg.c_q, cfg.c_h, 1, qc[:, :, :, -1])
    Ek, _ = composite_bounds(k64, cfg.c_k, cfg.c_h, hq // hkv)
    tol = score_tolerance(cfg, qc, kc, Eq, Eq_spread, Ek)
    err = np.abs(scores - want)
    ratio = float(np.max(err / tol))
    print(f"\n{cfg.mlir_attr()} {dtype}: max |diff| {err.max():.2e}, max ratio to the bound {ratio:.3f}")
    assert np.all(np.isfinite(scores)) and ratio <= 1.0

    # The bound is tight enough to tell the estimator from its near
    # variants: without the spread correction (the spread slot zeroed), with
    # the rest of a key composite weighted as all of its tokens (c_k, not
    # c_k - k_outliers), or with the rest of a query composite as its whole
    # share, the reference scores leave it.
    flat = qc.copy()
    flat[:, :, :, -1] = 0.0
    args = (cfg.block, cfg.c_q, cfg.c_k, cfg.causal, cfg.query_reduce)
    for variant in (
        brute_score(flat, kc, *args),
        brute_score(qc, kc, *args, w0=cfg.c_k),
        brute_score(qc, kc, *args, omega0=1.0),
    ):
        assert np.max(np.abs(scores - variant) / tol) > 10.0

    # The compiled selection of the compiled scores against the reference
    # layout: equal up to the top-p boundary rule.
    c_ref, i_ref = R.block_select(want, cfg.tau, local_blocks=cfg.local_blocks, sink=cfg.sink, causal=cfg.causal)
    res = check_margin(
        want,
        c_ref,
        i_ref,
        scores,
        counts,
        indices,
        tau=cfg.tau,
        local_blocks=cfg.local_blocks,
        sink=cfg.sink,
        causal=cfg.causal,
    )
    assert not res["violations"], res["violations"][:3]
    assert R.density(counts, n, cfg.block, cfg.causal) < 1.0


def test_presets_compile_and_match_the_reference():
    """The three outlier presets (one estimator, three taus) on the compiled
    path: the same scores within the bound, and layouts nested by tau."""
    hq, hkv, n, d = 4, 2, 700, 32
    q, k, _ = S.structured_qkv(1, hq, hkv, n, d, seed=12, peak=2.5)[:3]
    qd, kd = to_np_dtype(q, "bf16"), to_np_dtype(k, "bf16")
    q64, k64 = widen(qd, "bf16"), widen(kd, "bf16")
    base = PRESETS["recommended"]
    assert selection_margins(k64, base.c_k, base.k_outliers, 1, hq // hkv, 1, q64) > 1.0
    assert selection_margins(q64, base.c_q, base.q_outliers, 1, 1, 0, None) > 1.0
    qc, kc = reference_composites(base, q64, k64)
    want = O.block_score(qc, kc, base.block, base.c_q, base.c_k, base.causal, query_reduce=base.query_reduce)
    Eq, Eq_spread = composite_bounds(q64, base.c_q, 1, 1, qc[:, :, :, -1])
    Ek, _ = composite_bounds(k64, base.c_k, 1, hq // hkv)
    tol = score_tolerance(base, qc, kc, Eq, Eq_spread, Ek)
    kept = {}
    for name in ("mild", "recommended", "conservative"):
        cfg = PRESETS[name]
        kern = unisparse.compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype="bf16")
        scores, counts, indices = kern.layout(qd, kd)
        assert np.all(np.abs(scores - want) <= tol), name
        c_ref, i_ref = R.block_select(want, cfg.tau)
        res = check_margin(want, c_ref, i_ref, scores, counts, indices, tau=cfg.tau)
        assert not res["violations"], (name, res["violations"][:3])
        kept[name] = counts
    assert np.all(kept["mild"] <= kept["recommended"]) and np.all(kept["recommended"] <= kept["conservative"])
    assert kept["mild"].sum() < kept["conservative"].sum()
