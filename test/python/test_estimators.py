"""The composite estimators of the NumPy reference: antidiagonal
composites (XAttention), their outlier-aware log-mean-exp form, the max
query reduction, and the presets that name them.

Every expected value comes from a loop written straight from the docstring
of ``reference.block_score``; inputs are structured (never zeros)."""

import dataclasses
import math

import numpy as np
import pytest

from conftest import gpu_scripts
from unisparse import Config
from unisparse import config as C
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import preset


def brute_antidiag_score(q, k, block, s, c_h, estimator, query_reduce, causal, scale=None):
    """Loops over (t, u, a) from the spec: per-slot logits of tokens
    ``t*s + s-1-a`` and ``u*s + a`` (a token past N is a zero vector), mean
    or log-mean-exp, then a row softmax over key composites and block sums
    (or maxes over t)."""
    B, Hq, N, D = q.shape
    Hkv = k.shape[1]
    G = Hq // Hkv
    Hg = Hq // c_h
    scale = 1 / math.sqrt(D) if scale is None else scale
    T = math.ceil(N / s)
    r = block // s
    NB = math.ceil(T / r)
    out = np.zeros((B, Hg, NB, NB))
    for b in range(B):
        for g in range(Hg):
            heads = range(g * c_h, (g + 1) * c_h)
            pad = np.zeros((T * s - N, D))
            qh = np.concatenate([np.mean([q[b, h].astype(np.float64) for h in heads], axis=0), pad])
            kh = np.concatenate([np.mean([k[b, h // G].astype(np.float64) for h in heads], axis=0), pad])
            for t in range(T):
                x = np.full(T, -np.inf)
                for u in range(T):
                    if causal and not u * s <= (t + 1) * s - 1:
                        continue
                    vals = np.array([scale * qh[t * s + s - 1 - a] @ kh[u * s + a] for a in range(s)])
                    if estimator == "antidiag":
                        x[u] = vals.mean()
                    else:
                        x[u] = vals.max() + math.log(np.exp(vals - vals.max()).mean())
                if not np.isfinite(x).any():
                    continue
                a_ = np.exp(x - x.max())
                a_ /= a_.sum()
                per_block = np.array([a_[J * r : (J + 1) * r].sum() for J in range(NB)])
                I = t // r
                if query_reduce == "sum":
                    out[b, g, I] += per_block
                else:
                    out[b, g, I] = np.maximum(out[b, g, I], per_block)
    return out


@pytest.mark.parametrize("estimator", ["antidiag", "antidiag_lse"])
@pytest.mark.parametrize("query_reduce", ["sum", "max"])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("N,block,s,Hq,Hkv,c_h", [(256, 64, 8, 2, 1, 1), (203, 32, 8, 4, 2, 2), (150, 32, 4, 2, 2, 1)])
def test_antidiag_score_matches_brute_force(N, block, s, Hq, Hkv, c_h, causal, query_reduce, estimator):
    # N = 203: the last composite has 3 of 8 tokens (5 zero slots); N = 150,
    # s = 4: 2 of 4.
    q, k, _ = S.structured_qkv(1, Hq, Hkv, N, 16, seed=N, peak=2.0)
    got = R.estimate(q, k, block, s, s, c_h, causal=causal, estimator=estimator, query_reduce=query_reduce)
    want = brute_antidiag_score(q, k, block, s, c_h, estimator, query_reduce, causal)
    assert got.shape == want.shape == (1, Hq // c_h, math.ceil(N / block), math.ceil(N / block))
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)


def test_mean_max_reduce_matches_brute_force():
    q, k, _ = S.structured_qkv(1, 2, 1, 300, 16, seed=4, peak=2.0)
    qc, kc = R.compress(q, 16), R.compress(k, 8, kv_group=2)
    got = R.block_score(qc, kc, 64, 16, 8, query_reduce="max")
    x = np.einsum("bgtd,bgud->bgtu", qc, kc) / 4.0
    t, u = np.arange(qc.shape[2])[:, None], np.arange(kc.shape[2])[None, :]
    x = np.where(u * 8 <= (t + 1) * 16 - 1, x, -np.inf)
    a = np.exp(x - x.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    NB = 5
    per = np.stack([a[..., J * 8 : (J + 1) * 8].sum(-1) for J in range(NB)], -1)  # [b, g, t, J]
    want = np.stack([per[:, :, I * 4 : (I + 1) * 4].max(2) for I in range(NB)], 2)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # the sum of a block row is at most rq times its max
    s_sum = R.block_score(qc, kc, 64, 16, 8)
    assert np.all(s_sum <= 4 * got + 1e-12) and np.all(got <= s_sum + 1e-12)


def test_compress_strided_slots_and_antidiagonal_sum():
    q, k, _ = S.structured_qkv(1, 2, 1, 21, 8, seed=7)
    qs = R.compress_strided(q, 4, reverse=True)
    ks = R.compress_strided(k, 4, kv_group=2)
    assert qs.shape == (1, 2, 6, 4, 8) and ks.shape == (1, 2, 6, 4, 8)
    np.testing.assert_array_equal(ks[0, 1, 2, 3], k[0, 0, 11])  # slot a of t: token t*s + a
    np.testing.assert_array_equal(qs[0, 1, 2, 0], q[0, 1, 11])  # reversed: token t*s + s-1-a
    np.testing.assert_array_equal(qs[0, 0, 5, 3], q[0, 0, 20])
    assert not qs[0, :, 5, :3].any() and not ks[0, :, 5, 1:].any()  # past N: zeros
    # concatenated composites: one dot product = one antidiagonal of the tile
    qk = q[0, 1].astype(np.float64) @ k[0, 0].astype(np.float64).T
    t, u = 3, 1
    anti = sum(qk[t * 4 + 3 - a, u * 4 + a] for a in range(4))
    assert qs[0, 1, t].ravel() @ ks[0, 1, u].ravel() == pytest.approx(anti, rel=1e-12)


def test_lse_keeps_a_narrow_line_that_mean_pooling_dilutes():
    """A key line one token wide: the outlier-aware estimate of its block's
    share is close to the true share; mean pooling's is far below it."""
    N, D, block = 1024, 64, 128
    q, k, _ = S.structured_qkv(1, 1, 1, N, D, seed=5, peak=1.5, vertical_lines=0, slash_lines=0)
    q, k = q.astype(np.float64), k.astype(np.float64)
    u = np.linalg.svd(np.concatenate([q[0, 0], k[0, 0]]), full_matrices=True)[2][-1]  # a free direction
    line = 421
    k[0, 0, line] += 6.0 * math.sqrt(math.sqrt(D)) * 1.5 * u
    q[0, 0] += math.sqrt(math.sqrt(D)) * u
    logits = q[0, 0] @ k[0, 0].T / math.sqrt(D)
    logits[np.triu_indices(N, 1)] = -np.inf
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    I, J = 7, line // block
    true = p[I * block : (I + 1) * block, J * block : (J + 1) * block].sum() / block
    est = {}
    for name, cq, ck in (("mean", 16, 8), ("antidiag_lse", 8, 8), ("antidiag", 8, 8)):
        s = R.estimate(q, k, block, cq, ck, estimator=name)
        est[name] = s[0, 0, I, J] / s[0, 0, I].sum()
    assert true > 0.2, true
    assert abs(est["antidiag_lse"] - true) < 0.5 * true, (est, true)
    assert est["mean"] < 0.5 * true and est["antidiag"] < 0.5 * true, (est, true)


@pytest.mark.parametrize("estimator,query_reduce", [("antidiag", "sum"), ("antidiag_lse", "max"), ("mean", "max")])
def test_unisparse_attention_with_estimator(estimator, query_reduce):
    q, k, v = S.structured_qkv(1, 4, 2, 400, 32, seed=9, peak=2.0)
    s = 8 if estimator != "mean" else 16
    o, _, c, i = R.unisparse_attention(
        q, k, v, block=64, c_q=s, c_k=8, tau=0.9, estimator=estimator, query_reduce=query_reduce, refine="none"
    )
    sc = R.estimate(q, k, 64, s, 8, estimator=estimator, query_reduce=query_reduce)
    bc, bi = R.block_select(sc, 0.9)
    np.testing.assert_array_equal(c, bc)
    np.testing.assert_array_equal(i, bi)
    assert R.density(c, 400, 64) < 1.0
    o1, _, c1, _ = R.unisparse_attention(
        q, k, v, block=64, c_q=s, c_k=8, tau=1.0, estimator=estimator, query_reduce=query_reduce, refine="none"
    )
    od, _ = R.dense_attention(q, k, v)
    assert R.density(c1, 400, 64) == 1.0 and R.relative_l2(o1, od) < 1e-12


def test_estimator_errors():
    q, k, _ = S.structured_qkv(1, 2, 1, 64, 8, seed=1)
    with pytest.raises(ValueError, match="'estimator' must be one of"):
        R.estimate(q, k, 32, 8, 8, estimator="median")
    with pytest.raises(ValueError, match="'c_q' == 'c_k'"):
        R.estimate(q, k, 32, 16, 8, estimator="antidiag")
    with pytest.raises(ValueError, match="rank-5"):
        R.block_score(R.compress(q, 8), R.compress(k, 8, kv_group=2), 32, 8, 8, estimator="antidiag_lse")
    with pytest.raises(ValueError, match="query_reduce"):
        R.estimate(q, k, 32, 8, 8, query_reduce="mean")


def test_config_estimator_fields_and_presets():
    # The default is the peaked configuration (outlier composites, the max
    # over query composites, the normalised slash refinement); mean pooling,
    # the default before 2026-12-04, is the preset "mean".
    d = Config()
    assert (d.estimator, d.query_reduce, d.c_q, d.c_k, d.tau) == ("outlier", "max", 16, 32, 0.9965)
    assert (d.q_outliers, d.k_outliers, d.refine, d.refine_norm) == (1, 2, "slash", True)
    m = C.preset("mean")
    assert (m.estimator, m.query_reduce, m.c_k, m.tau, m.refine, m.refine_norm) == (
        "mean",
        "sum",
        8,
        0.99,
        "none",
        False,
    )
    with pytest.raises(ValueError, match="estimator"):
        Config(estimator="xattn")
    with pytest.raises(ValueError, match="'c_q' == 'c_k'"):
        Config(estimator="antidiag_lse", c_q=16, c_k=8)
    with pytest.raises(ValueError, match="query_reduce"):
        Config(query_reduce="min")
    attr = Config(estimator="antidiag_lse", c_q=8, c_k=8, query_reduce="max", refine="none").mlir_attr()
    assert attr.endswith("estimator = antidiag_lse, query_reduce = max, refine = none>")
    assert m.mlir_attr().endswith("estimator = mean, query_reduce = sum, refine = none>")
    assert d.mlir_attr().endswith(
        "estimator = outlier, query_reduce = max, q_outliers = 1, k_outliers = 2, refine = slash, last_q = 16, "
        "n_offsets = 16, rows_per_block = 8, width = 1, refine_norm = true>"
    )
    assert Config.parse("c_q=8,c_k=8,estimator=antidiag,query_reduce=max") == Config(
        c_q=8, c_k=8, estimator="antidiag", query_reduce="max"
    )
    assert C.ESTIMATORS == R.ESTIMATORS and C.QUERY_REDUCES == R.QUERY_REDUCES
    for name, cfg in C.PRESETS.items():
        assert C.preset(name) is cfg
        assert cfg.tau < 1.0
    assert C.PRESETS["compiled"] == Config() == C.PRESETS["peaked"]
    assert C.preset("mean", tau=0.95) == dataclasses.replace(m, tau=0.95)
    assert C.preset("conservative").tau >= C.preset("recommended").tau
    with pytest.raises(KeyError, match="recommended"):
        C.preset("fastest")


@pytest.mark.parametrize(
    "estimator,query_reduce,cq,ck,c_h",
    [
        ("mean", "sum", 16, 8, 1),
        ("mean", "max", 16, 8, 2),
        ("antidiag", "sum", 8, 8, 1),
        ("antidiag_lse", "sum", 8, 8, 2),
        ("antidiag_lse", "max", 4, 4, 1),
    ],
)
@pytest.mark.parametrize("causal", [True, False])
def test_torch_transcription_matches_reference(estimator, query_reduce, cq, ck, c_h, causal):
    pytest.importorskip("torch")
    from unisparse import estimate_torch as T

    q, k, _ = S.structured_qkv(1, 4, 2, 203, 16, seed=3, peak=2.0)
    want = R.estimate(q, k, 32, cq, ck, c_h, causal=causal, estimator=estimator, query_reduce=query_reduce)
    got = T.estimate(
        q, k, 32, cq, ck, c_h, causal=causal, estimator=estimator, query_reduce=query_reduce, chunk_elems=1 << 12
    )
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_torch_dense_pass_matches_numpy():
    pytest.importorskip("torch")
    from unisparse import fidelity as F

    q, k, v = S.structured_qkv(1, 4, 2, 300, 16, seed=5, peak=2.0)
    cfgs = [
        preset("mean", block=64, tau=0.8),
        preset("mean", block=32, c_q=8, c_k=8, tau=0.9, estimator="antidiag_lse"),
    ]
    lays = F.layouts(q, k, cfgs)
    lays_t = F.layouts(q, k, cfgs, device="cpu")
    for c in cfgs:
        np.testing.assert_array_equal(lays[c][1], lays_t[c][1])
    rows = np.arange(0, 300, 3)
    a = F.evaluate(q, k, v, cfgs, lays, rows)
    b = F.evaluate(q, k, v, cfgs, lays, rows, device="cpu")
    np.testing.assert_allclose(a["block_mass"], b["block_mass"], rtol=1e-6)
    for c in cfgs:
        np.testing.assert_allclose(a[c]["recall"], b[c]["recall"], rtol=1e-10)
        assert a[c]["err2"] == pytest.approx(b[c]["err2"], rel=1e-8)


def test_config_default_refinement_follows_causal():
    # Not given, refine is slash for causal attention and none otherwise, and
    # refine_norm is true iff refine is slash; stored resolved.
    assert (Config().refine, Config().refine_norm) == ("slash", True)
    nc = Config(causal=False)
    assert (nc.refine, nc.refine_norm) == ("none", False)
    assert nc == Config(causal=False, refine="none", refine_norm=False)
    assert "refine = none" in nc.mlir_attr() and "refine_norm" not in nc.mlir_attr()
    assert (Config(refine="none").refine_norm, Config(refine="slash").refine_norm) == (False, True)
    assert Config(refine=None, refine_norm=None) == Config()
    # Given explicitly, the conflicts stay errors.
    with pytest.raises(ValueError, match="'refine' slash needs 'causal' = true"):
        Config(causal=False, refine="slash")
    with pytest.raises(ValueError, match="'refine_norm' = true needs 'refine' = slash"):
        Config(causal=False, refine_norm=True)
    with pytest.raises(ValueError, match="'refine_norm' = true needs 'refine' = slash"):
        Config(refine="none", refine_norm=True)
    # dataclasses.replace resolves a resolved field again, and keeps a given one.
    assert dataclasses.replace(Config(), causal=False) == nc
    assert dataclasses.replace(nc, causal=True) == Config()
    assert dataclasses.replace(Config(), refine="none") == Config(refine="none", refine_norm=False)
    assert dataclasses.replace(Config(), refine_norm=False).refine_norm is False
    assert dataclasses.replace(dataclasses.replace(Config(), refine_norm=False), causal=True).refine_norm is False
    with pytest.raises(ValueError, match="'refine' slash needs 'causal' = true"):
        dataclasses.replace(Config(refine="slash"), causal=False)
    with pytest.raises(ValueError, match="'refine' slash needs 'causal' = true"):
        dataclasses.replace(C.preset("mean", refine="slash"), causal=False)
    assert dataclasses.replace(Config(refine="slash"), causal=False, refine=None) == nc
    assert C.preset("peaked", causal=False) == nc and C.preset("mean", causal=False).refine == "none"
    # The text form and the dict form resolve the same way.
    assert Config.parse("causal=false") == nc and Config.parse({"causal": False}) == nc
    with pytest.raises(ValueError, match="'refine' slash needs 'causal' = true"):
        Config.parse("causal=false,refine=slash")
    # The resolved fields are not dataclass fields (the op schema, asdict, ==).
    assert [f.name for f in dataclasses.fields(Config)][-1] == "refine_norm"
    assert "_resolved" not in dataclasses.asdict(Config()) and "_resolved" not in repr(Config())
    assert hash(Config()) == hash(Config(refine="slash", refine_norm=True))


def test_gpu_configs_spell_out_their_configuration():
    # scripts/gpu/configs.py: DEFAULT is Config() (the peaked configuration),
    # DEFAULT_FIRST its first pass, and the names recorded when mean pooling
    # was the default keep that meaning (est_default, default_*).
    (configs,) = gpu_scripts("configs")
    assert Config.parse(configs.DEFAULT) == Config()
    assert Config.parse(configs.DEFAULT_FIRST) == Config(refine="none")
    assert Config.parse(configs.BENCH_ESTIMATION["est_default"][0]) == C.preset("mean")
    assert Config.parse(configs.BENCH_ESTIMATION["est_peaked_default"][0]) == Config()
    for name in ("default_bf16_d128", "default_fused_bf16_d128", "default_chunk_bf16_d128", "qfuse_bf16_d128"):
        assert Config.parse(configs.CHECK[name][0]) == C.preset("mean"), name
    assert Config.parse(configs.CHECK["peaked_noncausal_f16_d64"][0]) == Config(causal=False)
    # every entry parses, and every refined one has its unrefined `_first` twin
    for table in (configs.CHECK, configs.BENCH, configs.BENCH_ESTIMATION):
        for name, (text, *_) in table.items():
            cfg = Config.parse(text)
            if name + "_first" in table:
                first = Config.parse(table[name + "_first"][0])
                assert cfg.refine == "slash" and first.refine == "none", name
                refinement = {"refine", "refine_norm", "last_q", "n_offsets", "rows_per_block", "width"}
                for f in dataclasses.fields(Config):
                    assert f.name in refinement or getattr(first, f.name) == getattr(cfg, f.name), (name, f.name)
    assert Config(**configs.TORCH_OP) == C.preset("mean", block=64, c_q=16, c_k=16, tau=0.8)


def test_compile_all_never_builds_a_hand_built_tuning_entry_as_its_base():
    # configs.TUNING entries with flags None are libraries of another build
    # (an earlier commit, a patch): compile_all.py compiles them only from
    # that build (--before) and by name, and says which names it skipped.
    compile_all, configs = gpu_scripts("compile_all", "configs")
    hand = {n for n, (_, flags) in configs.TUNING.items() if flags is None}
    assert {"tune_peaked_before", "tune_peaked_q5", "tune_peaked_cpf"} <= hand
    plan, skipped = compile_all.tuning_plan(None, before=False)
    assert {n for n, _, _ in plan} == set(configs.TUNING) - hand and not skipped
    plan, skipped = compile_all.tuning_plan(["tune_peaked", "tune_peaked_q5"], before=False)
    assert [n for n, _, _ in plan] == ["tune_peaked"]
    assert skipped == [("tune_peaked_q5", "built by hand: --before BUILD_DIR")]
    plan, skipped = compile_all.tuning_plan(["tune_peaked", "tune_peaked_q5"], before=True)
    assert [(n, flags) for n, _, flags in plan] == [("tune_peaked_q5", None)]
    assert skipped == [("tune_peaked", "not a hand-built entry")]
    with pytest.raises(ValueError, match="--names"):
        compile_all.tuning_plan(None, before=True)
