"""The two-level estimation of the reference (``unisparse.reference.twolevel``):
the evidence, the slash offsets, the probe rows' scores and their
combination with the first pass against loops written from the
docstrings, on structured inputs (never zeros), the case it exists for (a
slash line that composites average away), its configuration and its cost
model."""

import dataclasses
import math

import numpy as np
import pytest

from unisparse import Config
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import preset
from unisparse.fidelity.cost import scoring_cost
from unisparse.fidelity.harness import label, parse_config
from unisparse.reference import twolevel as T


def brute_last_rows(q, k, m, c_h, scale=None):
    """last_rows, one (row, key) pair at a time, from its docstring."""
    B, Hq, N, D = q.shape
    G = Hq // k.shape[1]
    scale = 1 / math.sqrt(D) if scale is None else scale
    m = min(m, N)
    vert = np.zeros((B, Hq // c_h, N))
    slash = np.zeros((B, Hq // c_h, N))
    for b in range(B):
        for g in range(Hq // c_h):
            p = np.zeros((N, N))
            for h in range(g * c_h, (g + 1) * c_h):
                for i in range(N - m, N):
                    qi, kh = q[b, h, i].astype(np.float64), k[b, h // G].astype(np.float64)
                    x = np.array([qi @ kh[j] * scale for j in range(i + 1)])
                    e = np.exp(x - x.max())
                    p[i, : i + 1] += e / e.sum() / (m * c_h)
            v0 = [sum(p[i, j] for i in range(N - m, N)) for j in range(N)]
            s0 = [sum(p[i, i - d] for i in range(N - m, N) if i - d >= 0) for d in range(N)]
            for i in range(N - m, N):
                for j in range(i + 1):
                    if v0[j] >= s0[i - j]:
                        vert[b, g, j] += p[i, j]
                    else:
                        slash[b, g, i - j] += p[i, j]
    return vert, slash


def brute_slash_scores(q, k, offsets, block, r, lb, sink, c_h, width, scale=None):
    """slash_scores, one probe row at a time, from its docstring."""
    B, Hq, N, D = q.shape
    G = Hq // k.shape[1]
    scale = 1 / math.sqrt(D) if scale is None else scale
    NB = math.ceil(N / block)
    E = np.zeros((B, Hq // c_h, NB, NB))
    for b in range(B):
        for g in range(Hq // c_h):
            for I in range(NB):
                rows = [I * block + (2 * t + 1) * block // (2 * r) for t in range(r)]
                rows = [i for i in rows if i < N]
                for h in range(g * c_h, (g + 1) * c_h):
                    for i in rows:
                        x = lambda j: scale * q[b, h, i].astype(np.float64) @ k[b, h // G, j].astype(np.float64)  # noqa: E731
                        F = [j for j in range(i + 1) if (sink and j // block == 0) or max(0, I - lb) <= j // block <= I]
                        C = sorted(
                            {
                                i - d + e
                                for d in offsets[b, g]
                                if d >= 0
                                for e in range(-width, width + 1)
                                if 0 <= i - d + e <= i and i - d + e not in F
                            }
                        )
                        zf = sum(math.exp(x(j)) for j in F)
                        for j in C:
                            E[b, g, I, j // block] += math.exp(x(j)) / zf / (len(rows) * c_h)
    return E


@pytest.mark.parametrize("N,m,c_h", [(48, 8, 1), (50, 7, 2), (20, 64, 1)])
def test_evidence_follows_the_docstring(N, m, c_h):
    q, k, _ = S.structured_qkv(2, 4, 2, N, 16, seed=N + m, peak=1.5)
    vert, slash = T.last_rows(q, k, m, c_h=c_h)
    bv, bs = brute_last_rows(q, k, m, c_h)
    # one softmax per row, summed over at most m * c_h rows: a few ulps of each term
    tol = 8 * m * c_h * np.finfo(np.float64).eps
    np.testing.assert_allclose(vert, bv, rtol=0, atol=tol)
    np.testing.assert_allclose(slash, bs, rtol=0, atol=tol)
    np.testing.assert_allclose((vert + slash).sum(-1), 1.0, atol=tol * N)


def test_offsets_and_probe_rows():
    slash = np.array([[[0.5, 0.1, 0.3, 0.0, 0.3, 0.2]]])
    np.testing.assert_array_equal(T.slash_offsets(slash, 3, 1), [[[2, 4, 5]]])
    np.testing.assert_array_equal(T.slash_offsets(slash, 5, 1), [[[2, 4, 5, -1, -1]]])
    np.testing.assert_array_equal(T.probe_rows(40, 16, 4), [[2, 6, 10, 14], [18, 22, 26, 30], [34, 38, -1, -1]])


@pytest.mark.parametrize("N,block,lb,sink,c_h,width", [(96, 16, 1, True, 1, 1), (100, 16, 2, False, 2, 0)])
def test_slash_scores_follow_the_docstring(N, block, lb, sink, c_h, width):
    q, k, _ = S.structured_qkv(1, 4, 2, N, 16, seed=N, peak=2.0)
    rng = np.random.default_rng(N)
    offsets = rng.integers(-1, N, size=(1, 4 // c_h, 5))
    E = T.slash_scores(q, k, offsets, block, 4, lb, sink, c_h=c_h, width=width)
    want = brute_slash_scores(q, k, offsets, block, 4, lb, sink, c_h, width)
    assert want.sum() > 0
    # each entry: a few exponentials over a sum of at most 4 * block, summed over 4 * c_h rows
    np.testing.assert_allclose(E, want, rtol=1e-12, atol=1e-15)


def test_combine_normalises_the_first_pass_and_takes_the_max():
    rng = np.random.default_rng(3)
    s = rng.uniform(0.1, 2.0, size=(1, 2, 3, 3))
    Rf = rng.uniform(0.0, 0.6, size=s.shape)
    out = T.combine(s, Rf)
    want = np.maximum(s / s.sum(-1, keepdims=True), Rf)
    np.testing.assert_array_equal(out, want)
    s[0, 1, 2, 0] = np.nan
    assert np.isnan(T.combine(s, Rf)[0, 1, 2]).all()
    with pytest.raises(ValueError, match="differ in shape"):
        T.combine(s, Rf[..., :2])


@pytest.mark.parametrize("lb,sink", [(1, True), (2, False)])
def test_normalised_refinement_follows_the_docstring(lb, sink):
    """refine_norm divides each row of R = E * (forced share of the first
    pass) by 1 + its sum; off, refine is combine(s, R) as before. On slash
    lines the mean-pooled first pass misses, some rows' R sums far above 1
    (the candidates outweigh the whole first pass), normalised below 1."""
    N, block, n_off = 1024, 64, 8
    q, k, _ = S.structured_qkv(1, 4, 2, N, 32, seed=11, peak=2.5, slash_lines=2)[:3]
    s = R.estimate(q, k, block, 16, 16, 1, causal=True)
    _, slash = T.last_rows(q, k, 16)
    E = T.slash_scores(q, k, T.slash_offsets(slash, n_off, lb * block), block, 8, lb, sink)
    I, J = np.arange(N // block)[:, None], np.arange(N // block)[None, :]
    forced = ((J <= I) & (J >= I - lb)) | ((J == 0) & sink)
    Rr = E * np.where(forced, s, 0.0).sum(-1, keepdims=True) / s.sum(-1, keepdims=True)
    Rn = Rr / (1.0 + Rr.sum(-1, keepdims=True))
    kw = dict(local_blocks=lb, sink=sink, n_offsets=n_off)
    plain = T.refine(s, q, k, block, 16, **kw)
    normed = T.refine(s, q, k, block, 16, refine_norm=True, **kw)
    np.testing.assert_array_equal(plain, T.refine(s, q, k, block, 16, refine_norm=False, **kw))
    # R's entries: a few operations on E's, so within a few ulp of float64
    np.testing.assert_allclose(plain, T.combine(s, Rr), rtol=1e-13, atol=0)
    np.testing.assert_allclose(normed, T.combine(s, Rn), rtol=1e-13, atol=0)
    assert Rr.sum(-1).max() > 10.0 and np.all(Rn.sum(-1) < 1.0)
    # where the refinement wins, the normalised one is smaller; elsewhere equal
    assert np.all(normed <= plain) and np.any(normed < plain / 2)
    # through the Config and refine_config
    cfg = preset("mean", block=block, local_blocks=lb, sink=sink, refine="slash", n_offsets=n_off, refine_norm=True)
    np.testing.assert_array_equal(T.refine_config(s, q, k, cfg), normed)
    np.testing.assert_array_equal(T.refine_config(s, q, k, cfg, refine_norm=False), plain)


def test_refinement_finds_the_slash_line_that_composites_lose():
    """A slash line far behind the diagonal, on top of a sink and a local
    band: the composites put almost no mass on its blocks, the refined
    scores put about the true mass there."""
    N, block = 2048, 128
    planted = {}
    q, k, _ = S.structured_qkv(1, 2, 1, N, 64, seed=9, peak=2.5, vertical_lines=0, planted=planted)
    (off,) = planted["slash"][(0, 0)]
    s = R.estimate(q, k, block, 16, 16, 1, causal=True)
    refined = T.refine(s, q, k, block, 16)
    I = N // block - 1
    rows = np.arange(I * block, N)
    x = q[0, 0, rows].astype(np.float64) @ k[0, 0].astype(np.float64).T / 8.0
    x[np.arange(N)[None, :] > rows[:, None]] = -np.inf
    p = np.exp(x - x.max(1, keepdims=True))
    true = (p / p.sum(1, keepdims=True)).reshape(block, -1, block).sum(-1).mean(0)
    J = max({(I * block - off) // block, (N - 1 - off) // block}, key=lambda b: true[b])  # the slash's key blocks
    assert I - J >= 2
    first = s[0, 0, I] / s[0, 0, I].sum()
    assert true[J] > 0.2 and first[J] < true[J] / 10, (true[J], first[J])
    assert true[J] / 2 < refined[0, 0, I, J] < 2 * true[J], (true[J], refined[0, 0, I, J])


def test_two_level_configuration_and_cost():
    N, D = 32768, 128
    base = preset("mean", c_k=32, tau=0.995, estimator="outlier", query_reduce="max")
    two = parse_config("c_k=32,tau=0.995,estimator=outlier,query_reduce=max,last_q=16")
    # The harness's last_q= is the Config field (refine = slash implied).
    assert two == preset("mean", c_k=32, tau=0.995, estimator="outlier", query_reduce="max", refine="slash", last_q=16)
    assert parse_config("tau=0.99,last_q=8,refine=none").refine == "none"
    assert label(two).endswith(",last_q=16")
    extra = scoring_cost(two, N, D)["madds"] - scoring_cost(base, N, D)["madds"]
    per_row = 3 * 128 + 3 * two.n_offsets
    assert extra == (16 * N - 16 * 15 // 2 + (N // 128) * two.rows_per_block * per_row) * D
    assert scoring_cost(two, N, D)["rel_default"] < 2.0
    wide = preset("mean", refine="slash", n_offsets=8, width=2, rows_per_block=4)
    assert (
        scoring_cost(wide, N, D)["madds"] - scoring_cost(preset("mean"), N, D)["madds"]
        == (16 * N - 16 * 15 // 2 + (N // 128) * 4 * (3 * 128 + 5 * 8)) * D
    )
    with pytest.raises(ValueError, match="needs 'causal' = true"):
        Config(causal=False, refine="slash")
    # refine_norm: a field of the refinement, in the text with refine = slash
    norm = parse_config("c_k=32,tau=0.995,estimator=outlier,query_reduce=max,last_q=16,refine_norm=true")
    assert norm == dataclasses.replace(two, refine_norm=True)
    assert norm.mlir_attr() == two.mlir_attr()[: -len("false>")] + "true>"
    assert two.mlir_attr().endswith(", refine_norm = false>") and label(norm) != label(two)
    assert scoring_cost(norm, N, D) == scoring_cost(two, N, D)
    with pytest.raises(ValueError, match="'refine_norm' = true needs 'refine' = slash"):
        parse_config("tau=0.99,refine_norm=true")
    with pytest.raises(ValueError, match="'last_q' must be positive"):
        parse_config("tau=0.99,last_q=0")
    with pytest.raises(ValueError, match="'last_q' must be int"):
        parse_config("tau=0.99,last_q=x")
    with pytest.raises(ValueError, match="last_q"):
        T.last_rows(np.ones((1, 1, 4, 4)), np.ones((1, 1, 4, 4)), 0)


@pytest.mark.parametrize("norm", [False, True])
def test_reference_attention_refines_with_the_config_fields(norm):
    """unisparse_attention with refine = slash selects on
    twolevel.refine of the first pass's scores, with the fields of the
    Config (not the defaults)."""
    q, k, v = S.structured_qkv(1, 4, 2, 300, 16, seed=5, peak=2.5)[:3]
    cfg = preset(
        "mean", block=32, c_q=8, c_k=8, c_h=2, tau=0.9, refine="slash", last_q=8, n_offsets=4, rows_per_block=4, width=2
    )
    cfg = dataclasses.replace(cfg, refine_norm=norm)
    _, _, counts, indices = R.unisparse_attention(q, k, v, **cfg.reference_kwargs())
    s = R.estimate(q, k, 32, 8, 8, 2, causal=True)
    refined = T.refine(s, q, k, 32, 8, c_h=2, n_offsets=4, rows_per_block=4, width=2, refine_norm=norm)
    want = R.block_select(refined, 0.9)
    np.testing.assert_array_equal(counts, want[0])
    np.testing.assert_array_equal(indices, want[1])
    assert not np.array_equal(want[1], R.block_select(s, 0.9)[1])


def test_diagnosis_splits_exactly_the_missed_mass():
    """unisparse.fidelity.diagnose: the missed mass of every row, split by
    planted component, adds up to one minus its recall, and each component
    is attributed where the generator planted it."""
    from unisparse.fidelity import diagnose as Dg

    cfg = preset("mean", tau=0.9, c_k=16)
    out = Dg.diagnose(1024, cfg, heads=2, kv_heads=1, dim=32, peak=2.0, seed=3, needles=2, log=lambda *_: None)
    np.testing.assert_allclose(out["missed"].sum(-1), 1.0 - out["recall"], atol=1e-9)
    assert out["missed"].sum() > 0
    nd = [dict(batch=0, q_start=600, q_stop=610, k_start=100, k_stop=104)]
    rows = np.array([0, 300, 605])
    cat = Dg._categories(rows, 1024, nd, vert=[(500, 502)], slash=[40])
    name = lambda r, j: Dg.CATEGORIES[cat[r, j]]  # noqa: E731
    assert name(2, 101) == "needle" and name(1, 101) == "local" and name(0, 101) == "noise"
    assert name(1, 2) == "sink" and name(2, 501) == "vertical" and name(2, 565) == "slash" and name(2, 900) == "noise"


def test_needle_masses_are_the_dense_shares():
    from unisparse.fidelity import diagnose as Dg

    m = Dg.needle_masses(1024, heads=2, kv_heads=1, dim=32, peak=2.0, seed=4, needles=2, log=lambda *_: None)
    q, k, _, nd = S.structured_qkv(1, 2, 1, 1024, 32, seed=4, peak=2.0, needles=2)
    for n_i, x in enumerate(nd):
        for h in range(2):
            shares = []
            for i in range(x["q_start"], x["q_stop"]):
                lg = np.array([q[0, h, i].astype(np.float64) @ k[0, 0, j].astype(np.float64) for j in range(i + 1)])
                p = np.exp(lg / math.sqrt(32) - (lg / math.sqrt(32)).max())
                lo, hi = x["k_start"] // 128 * 128, ((x["k_stop"] - 1) // 128 + 1) * 128
                shares.append(p[lo:hi].sum() / p.sum())
            assert m[n_i, h] == pytest.approx(np.mean(shares), rel=1e-12)


def test_diagnosis_on_the_independent_generator():
    """diagnose(generator="peaked"): the planted components come from
    unisparse.peaked (its outputs unchanged by asking for them), the missed
    mass still adds up to one minus the recall, and a key of the row's
    topic is attributed to "topic" unless a component of higher precedence
    claims it."""
    from unisparse.fidelity import diagnose as Dg
    from unisparse.peaked import peaked_qkv

    planted = {}
    with_p = peaked_qkv(1, 2, 1, 1024, 32, seed=3, peak=2.0, needles=2, planted=planted)
    plain = peaked_qkv(1, 2, 1, 1024, 32, seed=3, peak=2.0, needles=2)
    assert all(np.array_equal(a, b) for a, b in zip(with_p[:3], plain[:3])) and with_p[3] == plain[3]
    ktop, qtop = planted["topic"][(0, 0)]
    assert ktop.shape == qtop.shape == (1024,) and 0 < (ktop >= 0).mean() < 0.2
    assert len(planted["slash"][(0, 0)]) == 2 and len(planted["vertical"][(0, 0)]) == 6
    assert planted["sharpness"][(0, 0)].shape == planted["sink"][(0, 0)].shape == (2,)

    cfg = preset("mean", tau=0.9, c_k=16)
    out = Dg.diagnose(
        1024, cfg, heads=2, kv_heads=1, dim=32, peak=2.0, seed=3, needles=2, generator="peaked", log=lambda *_: None
    )
    np.testing.assert_allclose(out["missed"].sum(-1), 1.0 - out["recall"], atol=1e-9)
    assert out["missed"].sum() > 0

    ktop = np.full(1024, -1)
    ktop[[50, 700, 900]] = [2, 2, 5]
    qtop = np.full(1024, 2)
    rows = np.array([800, 950])
    cat = Dg._categories(rows, 1024, [], vert=[(900, 901)], slash=[], n_sink=1, topic=(ktop, qtop))
    name = lambda r, j: Dg.CATEGORIES[cat[r, j]]  # noqa: E731
    assert name(0, 50) == "topic" and name(0, 700) == "topic" and name(1, 900) == "vertical"
    assert name(0, 1) == "noise" and name(0, 0) == "sink" and name(1, 940) == "local"
    with pytest.raises(ValueError, match="generator"):
        Dg.diagnose(1024, cfg, heads=2, kv_heads=1, dim=32, generator="nope", log=lambda *_: None)
