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

The bound on the refined scores and the near-tie margin of the offsets are
those of :mod:`unisparse.reference.twolevel_f32` (derived there from the
float32 reductions). The inputs below are checked to have no near tie among
the offsets (the precondition fails loudly otherwise), so the comparison
is exact in what it selects.
"""

import dataclasses
import math

import numpy as np
import pytest

import unisparse
from conftest import to_np_dtype, widen
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import PRESETS, preset
from unisparse.margin import check_margin
from unisparse.reference import twolevel as T
from unisparse.reference.twolevel_f32 import logit_error, offset_margin, refined_tolerance

CASES = [
    # (config, Hq, Hkv, N, D, dtype, seed): GQA with partial last blocks;
    # mean pooling, then the outlier first pass of the "peaked" preset's
    # family with head groups of 2 and no sink, then last_q past N (every
    # row), no width and no local blocks (f16); the first two again with the
    # refinement normalised (refine_norm); the `peaked` preset as it is.
    (
        preset("mean", block=32, c_q=8, c_k=8, tau=0.95, refine="slash", last_q=8, n_offsets=4, rows_per_block=4),
        4,
        2,
        300,
        32,
        "f32",
        1,
    ),
    (
        preset(
            "mean",
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
        preset(
            "mean",
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
CASES += [(dataclasses.replace(c[0], refine_norm=True),) + c[1:] for c in CASES[:2]]
CASES += [(PRESETS["peaked"], 4, 2, 700, 32, "bf16", 3)]


@pytest.mark.parametrize("cfg,hq,hkv,n,d,dtype,seed", CASES)
def test_compiled_refinement_within_the_float32_bound(cfg, hq, hkv, n, d, dtype, seed):
    q, k, _ = S.structured_qkv(2, hq, hkv, n, d, seed=seed, peak=2.5, slash_lines=2)[:3]
    qd, kd = to_np_dtype(q, dtype), to_np_dtype(k, dtype)
    q64, k64 = widen(qd, dtype), widen(kd, dtype)
    scale = 1 / math.sqrt(d)
    dx = logit_error(q64, k64, scale)
    margin = offset_margin(q64, k64, cfg, dx)
    assert margin > 1.0, f"a near tie among slash offsets (gap / bound {margin:.2f}): pick other inputs"

    kern = unisparse.compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype=dtype)
    first = unisparse.compile(
        dataclasses.replace(cfg, refine="none", refine_norm=False), heads=hq, kv_heads=hkv, head_dim=d, dtype=dtype
    )
    scores, counts, indices = kern.layout(qd, kd)
    s, _, _ = first.layout(qd, kd)
    want = T.refine_config(s.astype(np.float64), q64, k64, cfg)
    tol = refined_tolerance(want, cfg, dx)
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
    # ... and the normalisation (or its absence) is what the compiled code did
    flipped = T.refine_config(s.astype(np.float64), q64, k64, cfg, refine_norm=not cfg.refine_norm)
    assert np.max(np.abs(scores - flipped) / tol) > 100.0

    # The compiled selection of the compiled scores against the reference
    # layout: equal up to the top-p boundary rule.
    c_ref, i_ref = R.block_select(want, cfg.tau, local_blocks=cfg.local_blocks, sink=cfg.sink, causal=True)
    res = check_margin(
        want, c_ref, i_ref, scores, counts, indices, tau=cfg.tau, local_blocks=cfg.local_blocks, sink=cfg.sink
    )
    assert not res["violations"], res["violations"][:3]
    assert res["rows"] == counts.size
    print(f"layout: {res['rows_differ']} of {res['rows']} rows differ (boundary rule)")
