"""The outlier estimator of the reference (``unisparse.outlier``): composites
and scores against loops written from its docstrings, the torch
transcription, and the cases it exists for (a one-token line, a needle that
straddles composites, a sink next to a needle). Inputs are structured,
never zeros."""

import math

import numpy as np
import pytest

from unisparse import Config
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import preset
from unisparse.reference import outlier as O


def brute_compress(x, c, r, hf=1, kvg=1, spread=False, hot=0, queries=None):
    """compress_outlier, one composite at a time, from its docstring."""
    B, H, N, D = x.shape
    G = H * kvg // hf
    T = math.ceil(N / c)
    out = np.zeros((B, G, T, r + 1 + int(spread), D))
    for b in range(B):
        for g in range(G):
            xh = np.mean([x[b, e // kvg].astype(np.float64) for e in range(g * hf, (g + 1) * hf)], axis=0)
            center = xh.mean(0)
            if hot:
                probe = np.mean([queries[b, h].astype(np.float64).mean(0) for h in range(g * hf, (g + 1) * hf)], axis=0)
            for t in range(T):
                toks = list(range(t * c, min((t + 1) * c, N)))
                chosen = []
                if hot:
                    chosen += sorted(toks, key=lambda n: (-(xh[n] @ probe), n))[:hot]
                rest_pool = [n for n in toks if n not in chosen]
                chosen += sorted(rest_pool, key=lambda n: (-((xh[n] - center) ** 2).sum(), n))[: r - hot]
                rest = [n for n in toks if n not in chosen] or toks
                mean = xh[rest].mean(0)
                out[b, g, t, 0] = mean
                for i in range(r):
                    out[b, g, t, 1 + i] = xh[chosen[i]] if i < len(chosen) else mean
                if spread:
                    out[b, g, t, r + 1] = ((xh[rest] - mean) ** 2).mean(0)
    return out


def brute_score(qc, kc, block, cq, ck, causal, query_reduce, scale=None, w0=None, omega0=None):
    """block_score of the outlier estimator, one (t, a) row at a time
    (``w0``, ``omega0``: other weights of the rest slots, for tests that a
    comparison can tell them apart)."""
    B, Hg, Tq, sq, D = qc.shape
    Tk, sk = kc.shape[2], kc.shape[3]
    rq, rk = sq - 2, sk - 1
    scale = 1 / math.sqrt(D) if scale is None else scale
    NBq, NBk = math.ceil(Tq / (block // cq)), math.ceil(Tk / (block // ck))
    out = np.zeros((B, Hg, NBq, NBk))
    w = [ck - rk if w0 is None else w0] + [1] * rk
    omega = [(cq - rq) / cq if omega0 is None else omega0] + [1 / cq] * rq
    for b in range(B):
        for g in range(Hg):
            for t in range(Tq):
                A = np.zeros(Tk)
                for a in range(rq + 1):
                    v = qc[b, g, t, rq + 1].mean() if a == 0 else 0.0
                    x = np.full((Tk, sk), -np.inf)
                    for u in range(Tk):
                        if causal and not u * ck <= (t + 1) * cq - 1:
                            continue
                        for s in range(sk):
                            x[u, s] = scale * qc[b, g, t, a] @ kc[b, g, u, s] + math.log(w[s])
                    p = np.exp(x - x.max())
                    p /= p.sum()
                    sig = scale**2 * v * (kc[b, g] ** 2).sum(-1)
                    y = x + 0.5 * sig * (1 - 2 * p)
                    p2 = np.exp(y - y.max())
                    p2 /= p2.sum()
                    A += omega[a] * p2.sum(1)
                I = t // (block // cq)
                per = np.array([A[J * (block // ck) : (J + 1) * (block // ck)].sum() for J in range(NBk)])
                out[b, g, I] = out[b, g, I] + per if query_reduce == "sum" else np.maximum(out[b, g, I], per)
    return out


@pytest.mark.parametrize(
    "N,c,r,hf,kvg,hot",
    [(203, 16, 2, 1, 2, 1), (150, 8, 1, 2, 1, 0), (100, 32, 3, 1, 1, 2), (33, 16, 2, 1, 1, 1), (66, 32, 3, 1, 1, 2)],
)
def test_compress_outlier_matches_brute_force(N, c, r, hf, kvg, hot):
    # N = 203: a last composite of 11 tokens; N = 33, c = 16: of 1 token
    # (fewer tokens than outliers: the slots past it hold the rest mean);
    # N = 66, c = 32: of 2 tokens, both hot, so no rare one and no other
    # token: the rest is both (the GPU kernel's check found the reference
    # taking a hot token back into the rest there).
    q, k, _ = S.structured_qkv(1, 4, 2, N, 16, seed=N, peak=2.0)
    x = k if kvg > 1 else q
    got = O.compress_outlier(x, c, r, head_factor=hf, kv_group=kvg, spread=True, hot=hot, queries=q)
    want = brute_compress(x, c, r, hf, kvg, spread=True, hot=hot, queries=q)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(
        O.compress_outlier(x, c, r, head_factor=hf, kv_group=kvg, hot=hot, queries=q), got[:, :, :, : r + 1]
    )


@pytest.mark.parametrize("query_reduce", ["sum", "max"])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("N,block,cq,ck,rq,rk,c_h", [(256, 64, 16, 32, 1, 2, 1), (203, 32, 8, 16, 2, 3, 2)])
def test_outlier_score_matches_brute_force(N, block, cq, ck, rq, rk, c_h, causal, query_reduce):
    q, k, _ = S.structured_qkv(1, 4, 2, N, 16, seed=N + 1, peak=2.5)
    got = R.estimate(
        q,
        k,
        block,
        cq,
        ck,
        c_h,
        causal=causal,
        estimator="outlier",
        query_reduce=query_reduce,
        q_outliers=rq,
        k_outliers=rk,
    )
    qc = brute_compress(q, cq, rq, c_h, 1, spread=True)
    kc = brute_compress(k, ck, rk, c_h, 2, hot=1, queries=q)
    want = brute_score(qc, kc, block, cq, ck, causal, query_reduce)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    if query_reduce == "sum":  # a block row sums to its number of query composites
        np.testing.assert_allclose(got.sum(-1)[..., :-1], block // cq)


def test_torch_transcription_of_outlier():
    pytest.importorskip("torch")
    from unisparse import estimate_torch as T

    q, k, _ = S.structured_qkv(1, 4, 2, 203, 16, seed=3, peak=2.0)
    for causal, red in ((True, "max"), (False, "sum")):
        want = R.estimate(
            q, k, 32, 8, 16, 2, causal=causal, estimator="outlier", query_reduce=red, q_outliers=2, k_outliers=3
        )
        got = T.estimate(
            q,
            k,
            32,
            8,
            16,
            2,
            causal=causal,
            estimator="outlier",
            query_reduce=red,
            q_outliers=2,
            k_outliers=3,
            chunk_elems=1 << 12,
        )
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def _true_block_share(q, k, rows, J, block):
    logits = q[0, 0, rows] @ k[0, 0].T / math.sqrt(q.shape[-1])
    logits[np.arange(k.shape[2])[None, :] > rows[:, None]] = -np.inf
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return p[:, J * block : (J + 1) * block].sum(1).mean()


def _plant(q, k, direction, key_tokens, query_rows, logit):
    """Adds a direction orthogonal to the data to some keys and queries so
    that their logit gains `logit`."""
    D = q.shape[-1]
    a = math.sqrt(logit * math.sqrt(D))
    k[0, 0, key_tokens] += a * direction
    q[0, 0, query_rows] += a * direction


def _free_direction(q, k):
    return np.linalg.svd(np.concatenate([q[0, 0], k[0, 0]]), full_matrices=True)[2][-1]


def test_a_needle_straddling_composites_keeps_its_mass():
    """Four needle keys across a key-composite boundary, read by three rows
    that straddle a query composite: the outlier estimate of their block's
    share (max over the block's query composites) is within 3x of the truth;
    mean pooling's is an order of magnitude below it."""
    N, D, block = 1024, 64, 128
    q, k, _ = S.structured_qkv(1, 1, 1, N, D, seed=5, peak=1.5, vertical_lines=0, slash_lines=0)
    q, k = q.astype(np.float64), k.astype(np.float64)
    u = _free_direction(q, k)
    keys, rows = np.arange(318, 322), np.arange(845, 848)  # keys across 320 (c_k = 32), rows across 848 (c_q = 16)
    _plant(q, k, u, keys, rows, 16.0)
    I, J = 845 // block, 318 // block
    t = 845 // 16  # the query composite holding rows 845..847
    logits = q[0, 0, t * 16 : (t + 1) * 16] @ k[0, 0].T / math.sqrt(D)
    logits[np.arange(N)[None, :] > np.arange(t * 16, (t + 1) * 16)[:, None]] = -np.inf
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    true = p[:, J * block : (J + 1) * block].sum(1).mean()  # the composite's mean share
    assert true > 0.1, true
    s = R.estimate(q, k, block, 16, 32, estimator="outlier", query_reduce="max")
    m = R.estimate(q, k, block, 16, 8, query_reduce="max")
    est = s[0, 0, I, J] / s[0, 0, I, : I + 1].max()
    assert true / 3 < s[0, 0, I, J] < 3 * true, (s[0, 0, I, J], true)
    assert m[0, 0, I, J] < true / 10, (m[0, 0, I, J], true)
    assert est > 0.05


def test_the_sink_stays_next_to_a_needle():
    """A composite holding the sink and twelve needle keys: the hot slot
    keeps the sink (the key the mean query prefers) although the needle
    keys are farther from the key mean, so the sink block's estimated share
    stays within 2x of its true share; with two rare slots instead, both
    go to needle keys and the sink, pooled with the rest, is lost."""
    N, D, block = 2048, 64, 128
    q, k, _ = S.structured_qkv(1, 1, 1, N, D, seed=2, peak=2.5, vertical_lines=0, slash_lines=0)
    q, k = q.astype(np.float64), k.astype(np.float64)
    u = _free_direction(q, k)
    _plant(q, k, u, np.arange(18, 30), np.arange(1500, 1532), 30.0)  # far from the key mean, read by 32 rows only
    kc = O.compress_outlier(k, 32, 2, hot=1, queries=q)
    np.testing.assert_array_equal(kc[0, 0, 0, 1], k[0, 0, 0])  # hot: the sink token
    assert np.any(np.all(kc[0, 0, 0, 2] == k[0, 0, 18:30], axis=-1))  # rare: a needle key
    rare = O.compress_outlier(k, 32, 2)
    assert all(np.any(np.all(rare[0, 0, 0, i] == k[0, 0, 18:30], axis=-1)) for i in (1, 2))
    rows = np.arange(1000, 1128)
    I = 1000 // block
    true = _true_block_share(q, k, rows, 0, block)
    qc = O.compress_outlier(q, 16, 1, spread=True)
    share = {}
    for name, keys in (("hot", kc), ("rare", rare)):
        s = R.block_score(qc, keys, block, 16, 32, estimator="outlier")
        share[name] = s[0, 0, I, 0] / s[0, 0, I, : I + 1].sum()
    assert true > 0.3, true
    assert true / 2 < share["hot"] < 2 * true, (share, true)
    assert share["rare"] < true / 5, (share, true)


def test_outlier_errors():
    q, k, _ = S.structured_qkv(1, 2, 1, 64, 8, seed=1)
    with pytest.raises(ValueError, match="smaller than seq_factor"):
        O.compress_outlier(k, 8, 8)
    with pytest.raises(ValueError, match="must not exceed outliers"):
        O.compress_outlier(k, 8, 1, hot=2, queries=q)
    with pytest.raises(ValueError, match="need the queries"):
        O.compress_outlier(k, 8, 2, hot=1)
    with pytest.raises(ValueError, match="inconsistent"):
        O.compress_outlier(k, 8, 2, hot=1, head_factor=1, kv_group=1, queries=q)
    qc = O.compress_outlier(q, 8, 1, spread=True)
    kc = O.compress_outlier(k, 8, 2, kv_group=2, hot=1, queries=q)
    with pytest.raises(ValueError, match="rank-5"):
        R.block_score(qc[:, :, :, 0], kc, 32, 8, 8, estimator="outlier")
    with pytest.raises(ValueError, match="1 <= rq < c_q"):
        R.block_score(qc[:, :, :, :2], kc, 32, 8, 8, estimator="outlier")
    with pytest.raises(ValueError, match="k_outliers"):
        Config(estimator="outlier", c_k=8, k_outliers=8)
    with pytest.raises(ValueError, match="q_outliers"):
        Config(q_outliers=0)
    cfg = preset("mean", estimator="outlier", c_k=32, query_reduce="max")
    assert cfg.mlir_attr().endswith(
        "estimator = outlier, query_reduce = max, q_outliers = 1, k_outliers = 2, refine = none>"
    )
    assert "outliers" not in preset("mean").mlir_attr()
    assert "q_outliers = 1, k_outliers = 2" in Config().mlir_attr()  # the default is the outlier estimator
