"""Property-based test of the public API (Hypothesis): for any Config field
values (valid, extreme and invalid), shapes, dtypes and value magnitudes,
``unisparse.attention`` either raises a clear exception or returns what the
NumPy reference computes.

"Clear exception": ``ValueError``/``TypeError`` that names what is wrong, or
``UnisparseError`` from the memory guard. A configuration that ``Config``
accepts on valid shapes must compile and run: a compiler error there is a
failure of this test.

"What the reference computes", in three parts, each to a tolerance derived
from the float32 arithmetic of the compiled code (the reference is float64):

* the block scores (``unisparse.compile(...).layout``) against
  ``reference.estimate``;
* the layout against ``reference.block_select`` applied to the compiled
  scores (selection mirrors float32 exactly, so it must match bit for bit;
  comparing through the compiled scores keeps near-ties of the float64
  scores from deciding the test);
* the output and LSE against ``reference.block_sparse_attention`` on that
  layout.

Logits are kept within +-60 (the data is rescaled when a drawn magnitude and
scale would exceed it): beyond that float32's 2^-24 relative precision makes
the compiled scores and the float64 reference differ by more than any useful
tolerance, which is a property of float32, not of the compiler.

The example budget is fixed and the examples are derandomized, so the test
runs the same cases in the same time every run (``UNISPARSE_HYPOTHESIS_EXAMPLES``
raises the budget for a longer local search).
"""

import math
import os

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import unisparse
from conftest import to_np_dtype, widen
from unisparse import Config, UnisparseError
from unisparse import reference as R
from unisparse import synthetic as S

EXAMPLES = int(os.environ.get("UNISPARSE_HYPOTHESIS_EXAMPLES", "40"))
U = 2.0**-24  # float32 unit roundoff
OUT_EPS = {"f32": 2.0**-24, "f16": 2.0**-11, "bf16": 2.0**-8}
MAX_LOGIT = 60.0
INT64_MAX = 2**63 - 1


def gamma(n: int) -> float:
    """Higham's bound on the relative error of an n-term float32 sum."""
    return n * U / (1 - n * U)


VALID = {
    "block": [8, 16, 16, 32, 32, 64, 2**20],
    "c_q": [1, 2, 4, 8, 8, 16],
    "c_k": [1, 2, 4, 8, 8, 16],
    "c_h": [1, 1, 2],
    "tau": [5e-324, 1e-300, 1e-5, 0.3, 0.8, 0.8, 0.99, 0.99, 1.0],
    "local_blocks": [0, 1, 1, 2, 2**62],
    "min_blocks": [0, 0, 0, 1, 3, 2**62],
    "max_blocks": [0, 0, 0, 1, 2, 2**62],
    "sink": [True, False],
    "causal": [True, False],
    "scale": [0.0, 0.0, 0.0, 1.401298464324817e-45, 1e-5, 0.125, 1.0, 4.0],
    "estimator": ["mean", "mean", "antidiag", "antidiag_lse"],
    "query_reduce": ["sum", "max"],
    # the first pass alone (the check compares the scores with
    # reference.estimate); the refinement's properties are test_twolevel's
    # and test_slash_compiled's
    "refine": ["none"],
}
INVALID = {
    "block": [0, -8, True, 2**63, 12.0],
    "c_q": [0, 3, False, 2**63],
    "c_k": [0, -4, True],
    "c_h": [0, True],
    "tau": [0.0, -0.5, 1.5, math.nan, math.inf, True],
    "local_blocks": [-1, 2**62 + 1, INT64_MAX, True],
    "min_blocks": [-2, INT64_MAX],
    "max_blocks": [-3, 2**64],
    "scale": [-1.0, 3.5e38, 1e-300, math.inf, math.nan, True],
    "estimator": ["median"],
    "query_reduce": ["min"],
}


@st.composite
def problems(draw):
    """A configuration (valid, or with one field invalid a quarter of the
    time), a shape, a dtype and how to make the values."""
    fields = {name: draw(st.sampled_from(values)) for name, values in VALID.items()}
    if fields["estimator"] != "mean":
        fields["c_k"] = fields["c_q"]  # the antidiagonal estimators need c_q == c_k
    fields["block"] = math.lcm(fields["block"], fields["c_q"], fields["c_k"])
    if fields["max_blocks"] and fields["min_blocks"] > fields["max_blocks"]:
        fields["min_blocks"], fields["max_blocks"] = fields["max_blocks"], fields["min_blocks"]
    bad = draw(st.sampled_from([None] * (3 * len(INVALID)) + list(INVALID)))
    if bad is not None:
        fields[bad] = draw(st.sampled_from(INVALID[bad]))
    shape = dict(
        B=draw(st.integers(1, 2)),
        Hkv=draw(st.integers(1, 2)),
        G=draw(st.integers(1, 2)),
        N=draw(st.integers(1, 160)),
        D=draw(st.sampled_from([1, 4, 16])),
    )
    dtype = draw(st.sampled_from(["f32", "f16", "bf16"]))
    values = dict(
        seed=draw(st.integers(0, 2**31)),
        magnitude=draw(st.sampled_from([1e-4, 1e-2, 1.0, 3.0, 30.0])),
        ties=draw(st.booleans()),
    )
    return fields, shape, dtype, values


def make_inputs(shape, dtype, values, scale):
    B, Hkv, G, N, D = shape["B"], shape["Hkv"], shape["G"], shape["N"], shape["D"]
    q, k, v = S.structured_qkv(B, Hkv * G, Hkv, N, D, seed=values["seed"], peak=1.5)
    q, k = q * values["magnitude"], k * values["magnitude"]
    if values["ties"]:  # equal keys in runs of 8 tokens: equal scores, ties to break
        k = np.repeat(k[:, :, ::8], 8, axis=2)[:, :, :N]
    s = scale if scale > 0 else 1.0 / math.sqrt(D)
    biggest = s * np.abs(q).max() * np.abs(k).max() * D
    if biggest > MAX_LOGIT:
        q = q * (MAX_LOGIT / biggest)
    return tuple(to_np_dtype(x, dtype) for x in (q, k, v))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(problems())
def test_attention_is_a_clear_error_or_the_reference(problem):
    fields, shape, dtype, values = problem
    try:
        cfg = Config(**fields)
    except (ValueError, TypeError) as e:
        assert str(e).startswith("Config: "), str(e)
        event("rejected by Config")
        return
    q, k, v = make_inputs(shape, dtype, values, cfg.scale)
    hq = q.shape[1]
    try:
        r = unisparse.attention(q, k, v, cfg, return_lse=True, return_layout=True)
    except ValueError as e:
        # The only invalid shape this test draws: heads not a multiple of c_h.
        assert hq % cfg.c_h and "must be a multiple of 'c_h'" in str(e), str(e)
        event("heads not a multiple of c_h")
        return
    except UnisparseError as e:
        # Only the memory guard may refuse a valid configuration.
        assert "refusing to run" in str(e) and "workspace" in str(e), str(e)
        assert cfg.block >= 2**20, (cfg, str(e))
        event("refused by the memory guard")
        return
    assert hq % cfg.c_h == 0
    check_against_reference(cfg, q, k, v, r, dtype)
    event("equal to the reference")


def check_against_reference(cfg, q, k, v, r, dtype):
    q64, k64, v64 = (widen(x, dtype) for x in (q, k, v))
    _, Hq, N, D = q.shape
    scale = cfg.scale if cfg.scale > 0 else 1.0 / math.sqrt(D)
    kern = unisparse.compile(cfg, heads=Hq, kv_heads=k.shape[1], head_dim=D, dtype=dtype)
    scores, counts, indices = kern.layout(q, k)
    np.testing.assert_array_equal(counts, r.counts)
    np.testing.assert_array_equal(indices, r.indices)

    # Block scores. A logit's error: its dot product over D (antidiagonal:
    # D * stride) terms and the pooling of up to max(c_q, c_k) tokens, each a
    # float32 sum, times the largest logit magnitude; exp turns that absolute
    # error into a relative one of each share, the row sum over the key
    # composites and the block sum over rq * rk shares add theirs. A block
    # score is a sum of at most rq shares.
    rq, rk = cfg.block // cfg.c_q, cfg.block // cfg.c_k
    stride = cfg.c_q if cfg.estimator != "mean" else 1
    lmax = scale * np.abs(q64).max() * np.abs(k64).max() * D
    delta = (gamma(D * stride) + gamma(max(cfg.c_q, cfg.c_k)) + 8 * U) * lmax
    nk = -(-N // cfg.c_k) * stride
    share = 2 * delta + gamma(nk) + gamma(rq * rk) + 16 * U
    s_ref = R.estimate(
        q64,
        k64,
        cfg.block,
        cfg.c_q,
        cfg.c_k,
        cfg.c_h,
        causal=cfg.causal,
        scale=cfg.scale or None,
        estimator=cfg.estimator,
        query_reduce=cfg.query_reduce,
    )
    np.testing.assert_allclose(scores, s_ref, rtol=0, atol=rq * share + 1e-30)

    # Selection mirrors float32 exactly: the reference's on the compiled
    # scores is the compiled layout.
    c_ref, i_ref = R.block_select(
        scores,
        cfg.tau,
        local_blocks=cfg.local_blocks,
        sink=cfg.sink,
        min_blocks=cfg.min_blocks,
        max_blocks=cfg.max_blocks,
        causal=cfg.causal,
    )
    np.testing.assert_array_equal(r.counts, c_ref)
    np.testing.assert_array_equal(r.indices, i_ref)

    # Attention on that layout: o is a convex combination of v rows, so its
    # error is the probabilities' relative error times max|v|, plus the
    # rounding of o to its dtype; lse errs by the logits' error and the row
    # sum's.
    o_ref, lse_ref = R.block_sparse_attention(
        q64, k64, v64, r.counts, r.indices, cfg.block, causal=cfg.causal, scale=cfg.scale or None
    )
    lmax_att = scale * np.abs(q64).max() * np.abs(k64).max() * D
    d_att = gamma(D) * lmax_att + 8 * U
    vmax = np.abs(v64).max()
    atol = vmax * (4 * d_att + gamma(N) + 16 * U) + 1e-30
    o = widen(r.output, dtype)
    np.testing.assert_allclose(o, o_ref, rtol=OUT_EPS[dtype], atol=atol)
    finite = np.isfinite(lse_ref)
    np.testing.assert_array_equal(np.isfinite(r.lse), finite)
    np.testing.assert_allclose(r.lse[finite], lse_ref[finite], rtol=4 * U, atol=2 * d_att + gamma(N) + 1e-6)
