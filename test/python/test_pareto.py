"""The harness's additions for comparing estimators: the cost model, the
second (peaked) generator, the generator option of the harness and the
Pareto summary, on cases whose answer is known by construction."""

import math

import numpy as np
import pytest

from unisparse import fidelity as F
from unisparse import peaked as G
from unisparse.config import preset
from unisparse.fidelity import cost as C
from unisparse.fidelity import pareto as P


def test_cost_model_on_a_case_counted_by_hand():
    """N = 64, D = 4, causal. Mean pooling at c_q 16, c_k 8: query composite
    t (tokens 16t .. 16t + 15) sees key composites u with 8u <= 16t + 15,
    2, 4, 6 and 8 of them: 20 pairs, 80 multiply-adds, 20 exponentials.
    The outlier estimator at c_q 16, c_k 32 with 1 / 2 outliers: with 32u <=
    16t + 15, 1, 1, 2, 2 key composites (6 pairs) of 2 x 3 slot pairs, 36
    slot logits of 4 products (144), the key slot norms 2 x 3 x 4 (24), the
    compression 4 x 64 x 4 (1024): 1192 multiply-adds, 72 exponentials (two
    softmaxes). Dense causal QK^T: 64 x 65 / 2 x 4 = 8320."""
    mean = C.scoring_cost(preset("mean", block=64), 64, 4)
    assert mean["madds"] == 80 and mean["exps"] == 20 and mean["rel_default"] == 1.0
    assert mean["rel_dense"] == 80 / 8320
    out = C.scoring_cost(preset("mean", block=64, c_k=32, estimator="outlier"), 64, 4)
    assert out["madds"] == 144 + 24 + 1024 and out["exps"] == 72
    assert out["rel_default"] == 1192 / 80 and out["rel_dense"] == 1192 / 8320
    assert out["exps_rel_default"] == 72 / 20
    # Non-causal: 4 x 8 = 32 mean pairs (128); 4 x 2 = 8 outlier pairs (192).
    assert C.scoring_cost(preset("mean", block=64, causal=False), 64, 4)["madds"] == 128
    out = C.scoring_cost(preset("mean", block=64, c_k=32, estimator="outlier", causal=False), 64, 4)
    assert out["madds"] == 192 + 24 + 1024 and out["rel_default"] == 1240 / 128
    # A head group of two heads shares one scoring: half the cost per head.
    half = C.scoring_cost(preset("mean", block=64, c_k=32, c_h=2, estimator="outlier"), 64, 4)
    assert half["madds"] == 1192 / 2


def _visible_by_enumeration(N, c_q, c_k, causal):
    """Composite pairs counted one by one from their tokens: key composite u
    is visible from query composite t iff its first token is at most the
    last token of t (or always, non-causal)."""
    tq, tk = -(-N // c_q), -(-N // c_k)
    last = [min((t + 1) * c_q, N) - 1 for t in range(tq)]
    first = [u * c_k for u in range(tk)]
    return sum(1 for t in range(tq) for u in range(tk) if not causal or first[u] <= last[t])


@pytest.mark.parametrize("N,c_q,c_k", [(64, 16, 8), (1000, 16, 32), (333, 8, 8), (97, 32, 4)])
@pytest.mark.parametrize("causal", [True, False])
def test_visible_pairs_by_enumeration(N, c_q, c_k, causal):
    assert C.visible_pairs(N, c_q, c_k, causal) == _visible_by_enumeration(N, c_q, c_k, causal)


@pytest.mark.parametrize("causal", [True, False])
def test_cost_model_at_scale(causal):
    N, D = 32768, 128
    c = C.scoring_cost(preset("mean", causal=causal), N, D)  # mean, c_q 16, c_k 8: N^2 D / 128 (about half causal)
    assert c["rel_default"] == 1.0 and c["exps_rel_default"] == 1.0
    assert c["rel_dense"] == pytest.approx(1 / 128, rel=2e-3)
    c = C.scoring_cost(preset("mean", c_k=16, causal=causal), N, D)
    assert c["rel_default"] == pytest.approx(0.5, rel=2e-3)
    for est in ("antidiag", "antidiag_lse"):
        c = C.scoring_cost(preset("mean", estimator=est, c_q=8, c_k=8, causal=causal), N, D)
        assert c["rel_dense"] == pytest.approx(1 / 8, rel=2e-3) and c["rel_default"] == pytest.approx(16.0, rel=2e-3)
    # outlier, c 16/32, r 1/2: 2 x 3 slot pairs per (N/16)(N/32) composite
    # pairs: 1.5x the default, plus its compression (4 N D) and key norms
    c = C.scoring_cost(preset("mean", estimator="outlier", c_k=32, causal=causal), N, D)
    assert 1.5 < c["rel_default"] < 1.55 and c["exps_rel_default"] == pytest.approx(3.0, rel=2e-3)


def test_peaked_generator():
    q, k, v, nd = G.peaked_qkv(1, 4, 2, 2048, 64, seed=4, peak=2.0)
    q2, k2, v2, nd2 = G.peaked_qkv(1, 4, 2, 2048, 64, seed=4, peak=2.0)
    assert q.shape == (1, 4, 2048, 64) and k.shape == v.shape == (1, 2, 2048, 64) and q.dtype == np.float32
    assert np.array_equal(q, q2) and np.array_equal(k, k2) and nd == nd2
    assert not np.array_equal(q, G.peaked_qkv(1, 4, 2, 2048, 64, seed=5, peak=2.0)[0])
    assert len(nd) == 16
    for x in nd:
        assert 2 <= x["k_stop"] - x["k_start"] <= 6 and 8 <= x["q_stop"] - x["q_start"] <= 24
        assert x["k_stop"] <= x["q_start"] and x["q_stop"] <= 2048
        # every needle's keys straddle a 16-token composite boundary
        assert x["k_start"] // 16 != (x["k_stop"] - 1) // 16
    # heads of one kv group differ in sharpness: their logit spreads differ
    spread = [np.std(q[0, h, -256:].astype(np.float64) @ k[0, 0, :1024].T.astype(np.float64)) for h in (0, 1)]
    assert max(spread) / min(spread) > 1.05
    q3, k3, v3 = G.peaked_qkv(1, 2, 2, 300, 32, seed=0, needles=0)
    assert q3.shape == (1, 2, 300, 32)
    with pytest.raises(ValueError, match="too short"):
        G.peaked_qkv(1, 2, 1, 300, 32, seed=0)
    with pytest.raises(ValueError, match="multiple"):
        G.peaked_qkv(1, 3, 2, 1024, 32, seed=0)


def _block_diagonal(B, Hq, Hkv, N, D, seed, peak, needles):
    """Every query attends to the keys of its own 64-token block only (a
    direction per block, 40 logits), plus small noise; two needle records:
    one inside a query's own block (a layout that keeps the diagonal keeps
    it), one in block 0 (dropped by such a layout)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((D, D)))[0]
    blk = np.arange(N) // 64
    a = math.sqrt(40.0 * math.sqrt(D))
    x = a * basis[:, blk % D].T + 0.01 * rng.standard_normal((N, D))
    q = np.broadcast_to(x, (B, Hq, N, D)).astype(np.float32)
    k = np.broadcast_to(x, (B, Hkv, N, D)).astype(np.float32)
    v = rng.standard_normal((B, Hkv, N, D)).astype(np.float32)
    nd = [
        dict(batch=0, q_start=330, q_stop=340, k_start=322, k_stop=326),
        dict(batch=0, q_start=400, q_stop=410, k_start=10, k_stop=14),
    ]
    return q, k, v, nd


def test_harness_on_block_diagonal_attention(monkeypatch):
    """Attention inside the query's own block only: the floor keeps one
    block per row (density 2 / (NB + 1)), a layout of the diagonal alone has
    the same density and full recall, so its ratio is 1; the needle inside
    the diagonal is kept, the other one is not."""
    monkeypatch.setitem(F.GENERATORS, "blockdiag", _block_diagonal)
    N, NB = 512, 8
    cfgs = [
        preset("mean", block=64, c_q=16, c_k=16, tau=0.5, sink=False, local_blocks=0),
        preset("mean", block=64, c_q=16, c_k=32, tau=0.5, sink=False, local_blocks=0, estimator="outlier"),
    ]
    rows = F.run(N, cfgs, heads=2, kv_heads=1, dim=32, generator="blockdiag", log=lambda *_: None)
    for r in rows:
        assert r["density"] == pytest.approx(2 / (NB + 1))
        assert r["recall_mean"] == pytest.approx(1.0, abs=1e-6) and r["recall_p1"] == pytest.approx(1.0, abs=1e-6)
        assert r["floor"] == pytest.approx(2 / (NB + 1))
        assert r["ratio"] == pytest.approx(1.0)
        assert r["spans"] == "1/2" and r["generator"] == "blockdiag"
    assert rows[0]["cost"] == pytest.approx(0.5)  # c 16/16: half the default's products
    with pytest.raises(ValueError, match="generator must be one of"):
        F.run(N, cfgs, generator="nope")


def test_pareto_summary_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    rows = []
    for seed, ratio, p1, spans in ((0, 1.2, 0.95, "16/16"), (1, 1.4, 0.91, "15/16"), (2, 1.3, 0.93, "16/16")):
        rows.append(
            dict(
                N=32768,
                config="tau=0.995,outlier",
                family="outlier",
                tau=0.995,
                peak=2.5,
                seed=seed,
                generator="structured",
                cost=1.55,
                cost_dense=0.0121,
                exps=3.0,
                density=0.04 * ratio,
                floor=0.04,
                ratio=ratio,
                recall_mean=0.99 + seed / 1000,
                recall_p1=p1,
                block_p1=0.9,
                spans=spans,
            )
        )
    rows.append(dict(rows[0], config="tau=0.99", family="mean", cost=1.0, ratio=20.0, seed=0))
    s = P.summarize(rows)
    assert len(s) == 2
    o = next(x for x in s if x["config"] == "tau=0.995,outlier")
    assert o["seeds"] == [0, 1, 2] and o["ratio"] == pytest.approx(1.3)
    assert (o["ratio_min"], o["ratio_max"]) == (1.2, 1.4)
    assert o["recall_p1"] == 0.91 and o["recall_mean"] == 0.99 and o["spans"] == "15/16"
    text = P.table(s, markdown=True)
    assert "| structured | 2.5 | 32K | tau=0.995,outlier | 0,1,2 | 1.55 | 1.21 | 3.00 |" in text
    png = tmp_path / "p.png"
    P.plot(s, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
