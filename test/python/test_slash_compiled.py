"""The compiled CPU path of the slash refinement against the float64 reference.

``unisparse.compile`` of a configuration with ``refine = "slash"`` lowers
``compress -> block_score -> slash_refine -> block_select`` (the
decomposition of ``unisparse.attention``) to the host and runs it in
float32; its ``layout`` returns the refined scores the selection read. The
same configuration without the refinement gives the first pass's scores
``s`` (the same lowering of the same stages, so the same values); the
reference is :func:`unisparse.reference.twolevel.refine` of ``s`` in
float64 on exactly the q and k the compiled code reads. The refined scores
are compared within a bound derived from the float32 reductions (below),
the layouts within the boundary rule of :mod:`unisparse.margin`.

The bound. ``u = 2^-24``; ``gamma(n) = n u / (1 - n u)`` bounds a float32 sum
of ``n`` terms in any order relative to the sum of their magnitudes. With
``Q`` and ``K`` the largest norms of a query and a key row, a logit ``x =
scale q . k`` is off by at most ``dx = 2 scale gamma(D + 1) Q K`` (the dot
product and the product by the scale; ``|x| <= scale Q K``). Then:

* a probe row's term ``exp(x_j - lse)`` moves by a relative ``expm1(2 dx)``
  (its logit and the log-sum-exp of the forced keys, each off by ``dx``),
  the log-sum-exp's own sum by ``gamma(F)`` (``F <= (local_blocks + 2)
  block`` forced keys), the exponentials and the log by a few ulp
  (``unisparse-approximate-exp``: 4 ulp) and the products by ``u``; ``E``,
  a sum of at most ``T = rows_per_block c_h n_offsets (2 width + 1)`` such
  non-negative terms, by ``gamma(T)`` more: ``eps_E``;
* the row total and the forced blocks' sum of the first pass by
  ``gamma(NB)`` each, so ``s / tot`` by ``gamma(NB) + u`` and ``E f / tot``
  by ``eps_E + 2 gamma(NB) + 3 u``; the max of two values is off by at most
  the larger error, so every refined score ``r`` by ``r (eps_E + 2 gamma(NB)
  + 3 u)``.

The offsets are picked by comparing slash evidence: where two candidates
(or a pair's vertical and slash evidence, which decides where its mass
goes) are closer than the bound on their float32 values, float32 and
float64 may pick different offsets. The inputs below are checked to have no
such near tie (the precondition fails loudly otherwise), so the comparison
is exact in what it selects.
"""

import dataclasses
import math

import numpy as np
import pytest

import unisparse
from conftest import to_np_dtype, widen
from unisparse import Config
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.margin import check_margin
from unisparse.reference import twolevel as T

U = 2.0**-24
EXP_ULPS = 4


def gamma(n):
    return n * U / (1 - n * U)


def logit_error(q64, k64, scale):
    """``dx`` of the module docstring: the largest error of a float32 logit."""
    Q = np.sqrt((q64**2).sum(-1)).max()
    K = np.sqrt((k64**2).sum(-1)).max()
    return 2 * scale * gamma(q64.shape[-1] + 1) * Q * K


def evidence_margin(q64, k64, cfg, dx):
    """The smallest gap, relative to its float32 error bound, between the
    last offset kept and the first one left out, over every (batch, head
    group); a value above 1 means float32 keeps the offsets float64 keeps.

    Each offset's evidence is off by ``eps`` of itself (its shares: the
    softmax of a row moves by ``expm1(2 dx)`` and a few ulp, its sums by
    ``gamma(N + m c_h)``) plus the mass of the pairs whose vertical and
    slash evidence are within that bound of each other (they may go either
    way)."""
    B, Hq, N, _ = q64.shape
    G = Hq // k64.shape[1]
    m = min(cfg.last_q, N)
    scale = 1 / math.sqrt(q64.shape[-1])
    eps = math.expm1(2 * dx) + gamma(N + m * cfg.c_h) + 4 * EXP_ULPS * U
    rows = np.arange(N - m, N)
    d = rows[:, None] - np.arange(N)[None, :]
    vis = d >= 0
    worst = math.inf
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
            err = eps * slash + amb
            far = np.arange(N) > cfg.local_blocks * cfg.block
            order = np.argsort(-np.where(far, slash, -np.inf), kind="stable")
            k = cfg.n_offsets
            if far.sum() <= k or slash[order[k]] <= 0:
                continue  # every candidate with positive evidence is kept
            a, c = order[k - 1], order[k]
            worst = min(worst, (slash[a] - slash[c]) / (err[a] + err[c] + 1e-300))
    return worst


CASES = [
    # (config, Hq, Hkv, N, D, dtype, seed): GQA with partial last blocks;
    # mean pooling, then the outlier first pass of the "peaked" preset's
    # family with head groups of 2 and no sink, then last_q past N (every
    # row), no width and no local blocks (f16).
    (
        Config(block=32, c_q=8, c_k=8, tau=0.95, refine="slash", last_q=8, n_offsets=4, rows_per_block=4),
        4,
        2,
        300,
        32,
        "f32",
        1,
    ),
    (
        Config(
            block=64,
            c_q=16,
            c_k=32,
            c_h=2,
            tau=0.99,
            local_blocks=2,
            sink=False,
            estimator="outlier",
            query_reduce="max",
            refine="slash",
            last_q=16,
            n_offsets=6,
            rows_per_block=8,
            width=2,
        ),
        8,
        2,
        411,
        16,
        "bf16",
        2,
    ),
    (
        Config(
            block=32,
            c_q=8,
            c_k=8,
            tau=0.9,
            local_blocks=0,
            refine="slash",
            last_q=300,
            n_offsets=3,
            rows_per_block=3,
            width=0,
        ),
        4,
        1,
        250,
        32,
        "f16",
        5,
    ),
]


@pytest.mark.parametrize("cfg,hq,hkv,n,d,dtype,seed", CASES)
def test_compiled_refinement_within_the_float32_bound(cfg, hq, hkv, n, d, dtype, seed):
    q, k, _ = S.structured_qkv(2, hq, hkv, n, d, seed=seed, peak=2.5, slash_lines=2)[:3]
    qd, kd = to_np_dtype(q, dtype), to_np_dtype(k, dtype)
    q64, k64 = widen(qd, dtype), widen(kd, dtype)
    scale = 1 / math.sqrt(d)
    dx = logit_error(q64, k64, scale)
    margin = evidence_margin(q64, k64, cfg, dx)
    assert margin > 1.0, f"a near tie among slash offsets (gap / bound {margin:.2f}): pick other inputs"

    kern = unisparse.compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype=dtype)
    first = unisparse.compile(dataclasses.replace(cfg, refine="none"), heads=hq, kv_heads=hkv, head_dim=d, dtype=dtype)
    scores, counts, indices = kern.layout(qd, kd)
    s, _, _ = first.layout(qd, kd)
    want = T.refine_config(s.astype(np.float64), q64, k64, cfg)
    nb = s.shape[-1]
    terms = cfg.rows_per_block * cfg.c_h * cfg.n_offsets * (2 * cfg.width + 1)
    eps_e = math.expm1(2 * dx) + gamma((cfg.local_blocks + 2) * cfg.block) + gamma(terms) + 3 * EXP_ULPS * U + 4 * U
    tol = want * (eps_e + 2 * gamma(nb) + 3 * U) + 1e-30
    err = np.abs(scores - want)
    ratio = float(np.max(err / tol))
    print(f"\n{cfg.mlir_attr()} {dtype}: max |diff| {err.max():.2e}, max ratio to the bound {ratio:.3f}")
    assert np.all(np.isfinite(scores)) and ratio <= 1.0

    # The refinement is what moved the scores: the first pass alone (or a
    # refinement with other offsets) leaves the bound by far.
    plain = s / s.sum(-1, keepdims=True)
    assert np.max(np.abs(plain - want) / tol) > 100.0
    other = T.refine_config(s.astype(np.float64), q64, k64, cfg, n_offsets=cfg.n_offsets + 2)
    assert np.max(np.abs(scores - other) / tol) > 10.0

    # The compiled selection of the compiled scores against the reference
    # layout: equal up to the top-p boundary rule.
    c_ref, i_ref = R.block_select(want, cfg.tau, local_blocks=cfg.local_blocks, sink=cfg.sink, causal=True)
    res = check_margin(
        want, c_ref, i_ref, scores, counts, indices, tau=cfg.tau, local_blocks=cfg.local_blocks, sink=cfg.sink
    )
    assert not res["violations"], res["violations"][:3]
    assert res["rows"] == counts.size
    print(f"layout: {res['rows_differ']} of {res['rows']} rows differ (boundary rule)")
