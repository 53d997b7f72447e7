# RUN: %PYTHON %s 2>&1 | FileCheck %s
#
# Compiles unisparse.attention (and the estimation stages alone) with the
# unisparse-to-cpu pipeline, runs the shared library on structured inputs and
# compares with the NumPy reference of the exact semantics:
#  (a) tau = 1 equals dense attention;
#  (b) the selected layout equals the reference layout exactly;
#  (c) the output under the sparse layout equals dense attention restricted
#      to that layout (reference block-sparse attention), LSE included.
# The configurations are mean pooling's (the default before 2026-12-04) with
# the fields given; the compiled slash refinement of the default is checked
# in test/python/test_slash_compiled.py.
import dataclasses

import numpy as np

from unisparse import reference as ref
from unisparse._memref import bf16_from_f32, f32_from_bf16
from unisparse.config import preset
from unisparse.cpu import compile_cpu
from unisparse.synthetic import structured_qkv

TOL = {"f32": 2e-5, "f16": 2e-3, "bf16": 1.5e-2}


def mean(**fields):
    """Mean pooling (``preset("mean")``) with ``fields``."""
    return dataclasses.replace(preset("mean"), **fields)


def to_dtype(x, dtype):
    if dtype == "f32":
        return x.astype(np.float32)
    if dtype == "f16":
        return x.astype(np.float16)
    return bf16_from_f32(x.astype(np.float32))


def from_dtype(x, dtype):
    return f32_from_bf16(x) if dtype == "bf16" else x.astype(np.float64)


def check(name, cfg, B, Hq, Hkv, N, D, dtype="f32", seed=0, qkv=None):
    kern = compile_cpu(cfg, Hq, Hkv, D, dtype)
    q, k, v = qkv if qkv is not None else structured_qkv(B, Hq, Hkv, N, D, seed=seed, peak=1.5)[:3]
    qd, kd, vd = (to_dtype(x, dtype) for x in (q, k, v))
    # The reference sees exactly the rounded inputs the kernel sees.
    q64, k64, v64 = (from_dtype(x, dtype) for x in (qd, kd, vd))
    kw = cfg.reference_kwargs()

    # (b) layout: the compiled selection on the compiled scores is exact, the
    # scores match the reference, and so does the end-to-end layout.
    scores, counts, indices = kern.layout(qd, kd)
    s_ref = ref.estimate(
        q64,
        k64,
        cfg.block,
        cfg.c_q,
        cfg.c_k,
        cfg.c_h,
        cfg.causal,
        kw["scale"],
        estimator=cfg.estimator,
        query_reduce=cfg.query_reduce,
        q_outliers=cfg.q_outliers,
        k_outliers=cfg.k_outliers,
    )
    np.testing.assert_allclose(scores, s_ref, rtol=1e-4, atol=1e-5, err_msg=f"{name}: scores")
    sel = dict(
        tau=cfg.tau,
        local_blocks=cfg.local_blocks,
        sink=cfg.sink,
        min_blocks=cfg.min_blocks,
        max_blocks=cfg.max_blocks,
        causal=cfg.causal,
    )
    c_own, i_own = ref.block_select(scores, **sel)
    assert np.array_equal(counts, c_own), f"{name}: counts differ from selecting the kernel's scores"
    assert np.array_equal(indices, i_own), f"{name}: indices differ from selecting the kernel's scores"
    c_ref, i_ref = ref.block_select(s_ref, **sel)
    assert np.array_equal(counts, c_ref), f"{name}: counts differ from the reference layout"
    assert np.array_equal(indices, i_ref), f"{name}: indices differ from the reference layout"

    # (c) attention under that layout.
    o, lse = kern.attention(qd, kd, vd)
    o64 = from_dtype(o, dtype)
    o_ref, lse_ref = ref.block_sparse_attention(q64, k64, v64, counts, indices, cfg.block, cfg.causal, kw["scale"])
    err = ref.relative_l2(o64, o_ref)
    lse_err = float(np.max(np.abs(lse - lse_ref)))
    assert np.isfinite(o64).all(), f"{name}: non-finite output"
    assert err < TOL[dtype], f"{name}: rel L2 error {err:.3g} >= {TOL[dtype]}"
    assert lse_err < 1e-3, f"{name}: max |lse - ref| = {lse_err:.3g}"
    nb = -(-N // cfg.block)
    dens = ref.density(counts, N, cfg.block, cfg.causal)
    print(f"PASS {name}: N={N} blocks={nb} density={dens:.3f} err={err:.2e}")
    return counts, o64, (q64, k64, v64)


# (a) tau = 1 is dense attention (the layout is the dense one, no estimation).
for causal in (True, False):
    cfg = mean(block=64, c_q=16, c_k=16, tau=1.0, causal=causal)
    counts, o64, (q64, k64, v64) = check(f"dense causal={causal}", cfg, 2, 4, 2, 200, 32)
    o_dense, _ = ref.dense_attention(q64, k64, v64, causal=causal)
    err = ref.relative_l2(o64, o_dense)
    assert err < 2e-5, f"tau=1 differs from dense attention: {err}"
    print(f"PASS tau=1 equals dense causal={causal}: err={err:.2e}")
# CHECK: PASS dense causal=True: N=200 blocks=4 density=1.000
# CHECK: PASS tau=1 equals dense causal=True
# CHECK: PASS dense causal=False: N=200 blocks=4 density=1.000
# CHECK: PASS tau=1 equals dense causal=False

# (b), (c): sparse layouts. N not a multiple of the block, GQA, batch 2.
check("sparse causal gqa", mean(block=32, c_q=8, c_k=8, tau=0.6), 2, 4, 2, 300, 32, seed=1)
# CHECK: PASS sparse causal gqa: N=300 blocks=10
check("sparse non-causal", mean(block=32, c_q=8, c_k=16, tau=0.7, causal=False), 1, 4, 4, 250, 32, seed=2)
# CHECK: PASS sparse non-causal: N=250 blocks=8
check("sparse c_h=2", mean(block=32, c_q=16, c_k=8, c_h=2, tau=0.5, local_blocks=0), 1, 8, 2, 320, 16, seed=3)
# CHECK: PASS sparse c_h=2: N=320 blocks=10
# c_h = 4 with 6 query heads per kv head: a head group straddles kv heads
# (gcd(4, 6) = 2), and N is a multiple of neither c_q nor c_k.
check("c_h=4 gqa 6", mean(block=32, c_q=8, c_k=16, c_h=4, tau=0.7), 1, 12, 2, 150, 16, seed=8)
# CHECK: PASS c_h=4 gqa 6: N=150 blocks=5
check(
    "min/max bounds",
    mean(block=32, c_q=8, c_k=8, tau=0.95, min_blocks=3, max_blocks=4, sink=False),
    1,
    2,
    1,
    400,
    16,
    seed=4,
)
# CHECK: PASS min/max bounds: N=400 blocks=13
check("bf16", mean(block=32, c_q=8, c_k=8, tau=0.8), 1, 4, 2, 260, 64, dtype="bf16", seed=5)
# CHECK: PASS bf16: N=260 blocks=9
check("f16", mean(block=64, c_q=16, c_k=16, tau=0.8), 1, 4, 1, 300, 32, dtype="f16", seed=6)
# CHECK: PASS f16: N=300 blocks=5
# The estimators (docs/Fidelity.md): antidiagonal composites (XAttention),
# their log-mean-exp form, and the max over a block's query composites; N is
# not a multiple of the stride (zero-padded slots), GQA, head groups, bf16.
check("antidiag", mean(block=32, c_q=8, c_k=8, tau=0.8, estimator="antidiag"), 2, 4, 2, 300, 32, seed=9)
# CHECK: PASS antidiag: N=300 blocks=10
check(
    "antidiag_lse c_h=2",
    mean(block=32, c_q=8, c_k=8, c_h=2, tau=0.8, estimator="antidiag_lse"),
    1,
    8,
    2,
    203,
    16,
    seed=10,
)
# CHECK: PASS antidiag_lse c_h=2: N=203 blocks=7
check(
    "antidiag_lse max",
    mean(block=64, c_q=16, c_k=16, tau=0.9, estimator="antidiag_lse", query_reduce="max"),
    1,
    4,
    2,
    400,
    32,
    seed=11,
)
# CHECK: PASS antidiag_lse max: N=400 blocks=7
check(
    "mean max non-causal",
    mean(block=32, c_q=8, c_k=16, tau=0.7, query_reduce="max", causal=False),
    1,
    4,
    4,
    250,
    32,
    seed=12,
)
# CHECK: PASS mean max non-causal: N=250 blocks=8
check(
    "antidiag_lse bf16",
    mean(block=32, c_q=4, c_k=4, tau=0.8, estimator="antidiag_lse", query_reduce="max"),
    1,
    4,
    2,
    262,
    64,
    dtype="bf16",
    seed=13,
)
# CHECK: PASS antidiag_lse bf16: N=262 blocks=9
# The outlier estimator (docs/Fidelity.md): outlier composites (a hot and a
# far key per key composite, one outlier row and the spread per query
# composite) and the spread-corrected softmax; N = 289 leaves a last key
# composite of 1 token (fewer than its outliers), peaked inputs, GQA, head
# groups, other outlier counts, non-causal, bf16.
peaked = structured_qkv(2, 4, 2, 289, 32, seed=14, peak=2.5)[:3]
check(
    "outlier max",
    mean(block=64, c_q=16, c_k=32, tau=0.9, estimator="outlier", query_reduce="max"),
    2,
    4,
    2,
    289,
    32,
    qkv=peaked,
)
# CHECK: PASS outlier max: N=289 blocks=5
check(
    "outlier c_h=2 r=2/3",
    mean(block=32, c_q=8, c_k=16, c_h=2, tau=0.95, estimator="outlier", q_outliers=2, k_outliers=3),
    1,
    8,
    2,
    203,
    16,
    seed=15,
)
# CHECK: PASS outlier c_h=2 r=2/3: N=203 blocks=7
check(
    "outlier non-causal",
    mean(block=64, c_q=16, c_k=16, tau=0.8, estimator="outlier", k_outliers=1, causal=False),
    1,
    4,
    4,
    250,
    32,
    seed=16,
)
# CHECK: PASS outlier non-causal: N=250 blocks=4
check(
    "outlier bf16",
    mean(block=64, c_q=16, c_k=32, tau=0.99, estimator="outlier", query_reduce="max"),
    1,
    4,
    2,
    330,
    64,
    dtype="bf16",
    seed=17,
)
# CHECK: PASS outlier bf16: N=330 blocks=6
# Exact ties: every key block holds the same keys and every query is the
# same, so all block scores of a row are equal and the top-p order must fall
# back to the lowest block index first.
rng = np.random.default_rng(7)
q_tie = np.broadcast_to(rng.standard_normal((1, 2, 1, 16)), (1, 2, 256, 16)).copy()
k_tie = np.tile(rng.standard_normal((1, 1, 64, 16)), (1, 1, 4, 1))
v_tie = rng.standard_normal((1, 1, 256, 16))
counts, _, _ = check(
    "ties",
    mean(block=64, c_q=16, c_k=16, tau=0.6, local_blocks=0, sink=False, causal=False),
    1,
    2,
    1,
    256,
    16,
    qkv=(q_tie, k_tie, v_tie),
)
# CHECK: PASS ties: N=256 blocks=4
print("ALL PASSED")
# CHECK: ALL PASSED
