"""Smoke test of the fidelity harness (python -m unisparse.fidelity) at tiny sizes."""

import math

import numpy as np
import pytest

from unisparse import Config
from unisparse import fidelity as F
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import preset
from unisparse.fidelity import harness as FH

pytest.importorskip("matplotlib")


def test_cli_writes_table_and_png(tmp_path, capsys):
    png = tmp_path / "fid.png"
    rc = F.main(
        [
            "--n",
            "512",
            "1000",
            "--heads",
            "2",
            "--kv-heads",
            "1",
            "--dim",
            "32",
            "--needles",
            "2",
            "--config",
            "block=64,tau=0.9",
            "--config",
            "block=64,c_k=8,tau=0.99",
            "--config",
            "block=64,tau=1.0",
            "--config",
            "block=64,c_q=8,c_k=8,tau=0.9,estimator=antidiag_lse,query_reduce=max",
            "--config",
            "block=64,c_q=16,c_k=32,tau=0.95,estimator=outlier,query_reduce=max",
            "--full-rows",
            "600",
            "--rows-per-block",
            "4",
            "--check-compiled",
            "--png",
            str(png),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "rec_mean" in out and "floor" in out and "ratio_f" in out and "sampled" in out
    assert "exact top-p" in out
    # reference layout == compiled layout, for every config (estimators included)
    assert out.count("100.00% of rows identical") == 5
    lines = [line for line in out.splitlines() if line.strip().startswith(("512", "1000"))]
    assert len(lines) == 10


def test_metrics_are_exact_against_reference():
    q, k, v, nd = S.structured_qkv(1, 4, 2, 700, 32, seed=3, peak=1.5, needles=2)
    cfgs = [
        preset("mean", block=64, tau=0.8),
        preset("mean", block=32, c_q=8, c_k=8, c_h=2, tau=0.9),
        preset("mean", block=64, tau=1.0),
    ]
    lays = F.layouts(q, k, cfgs)
    res = F.evaluate(q, k, v, cfgs, lays, np.arange(700))
    q64, k64, v64 = (x.astype(np.float64) for x in (q, k, v))
    od, _ = R.dense_attention(q64, k64, v64)
    for c in cfgs:
        o, _, counts, indices = R.unisparse_attention(q64, k64, v64, **c.reference_kwargs())
        np.testing.assert_array_equal(lays[c][0], counts)
        rec = R.attention_recall(q64, k64, counts, indices, c.block)[0]
        np.testing.assert_allclose(res[c]["recall"], rec, atol=1e-12)
        assert math.sqrt(res[c]["err2"] / res[c]["ref2"]) == pytest.approx(R.relative_l2(o, od), rel=1e-9)
    rows = F.run(700, cfgs, heads=4, kv_heads=2, dim=32, needles=2, full_rows=1000, log=lambda *_: None)
    dense = rows[-1]
    assert dense["density"] == 1.0 and dense["recall_mean"] == pytest.approx(1.0)
    assert dense["needles"] == 1.0 and dense["rel_l2"] < 1e-12 and dense["spans"] == "2/2"
    assert all(0 < r["floor"] <= 1 for r in rows)
    assert dense["floor"] == pytest.approx(1.0, abs=0.05)


def test_sampling_is_stratified():
    rows = F.sample_rows(1000, 64, 4, seed=0)
    assert len(rows) == 16 * 4 - (4 - min(4, 1000 - 15 * 64))
    assert np.all(np.diff(rows) > 0)
    assert np.array_equal(np.bincount(rows // 64), [4] * 16)
    assert np.array_equal(F.sample_rows(100, 64, None, 0), np.arange(100))


def test_parse_config():
    # The harness's fields are over mean pooling (its logged runs'); preset=
    # starts from another preset.
    assert F.parse_config("tau=0.95,c_k=8,causal=false") == preset("mean", tau=0.95, c_k=8, causal=False)
    assert F.parse_config("tau=0.95,c_k=8,causal=false").estimator == "mean"
    assert F.parse_config("preset=peaked,causal=false") == Config(causal=False)
    assert F.parse_config("preset=peaked,tau=0.997") == Config(tau=0.997)
    last_q = F.parse_config("estimator=outlier,c_k=32,query_reduce=max,last_q=16")
    assert (last_q.refine, last_q.refine_norm) == ("slash", False)
    with pytest.raises(ValueError, match="unknown Config field"):
        F.parse_config("tua=0.9")


def brute_keep(d, forced, tau):
    """The blocks a top-p keeps of the masses ``d``: ``forced``, then the
    largest of the rest (ties: smaller block) until ``tau`` of the total."""
    sel = sorted(forced)
    acc = d[sel].sum()
    for j in sorted((j for j in range(len(d)) if j not in sel), key=lambda j: (-d[j], j)):
        if tau < 1 and acc >= tau * d.sum() * (1 - 1e-9):
            break
        sel.append(j)
        acc += d[j]
    return sel


def brute_top_p(bm, block, tau, forced):
    """Per (head, query block): keep the blocks ``forced(I)``, then the
    largest of the rest (ties: smaller block) until the block mean reaches
    tau. Returns (kept pairs, per-row recall [H, N], masks [H, NB, NB])."""
    H, N, NB = bm.shape
    kept, rec, masks = 0, np.empty((H, N)), np.zeros((H, NB, NB), bool)
    for h in range(H):
        for I in range(NB):
            sel = brute_keep(bm[h, I * block : (I + 1) * block, : I + 1].mean(0), forced(I), tau)
            kept += len(sel)
            masks[h, I, sel] = True
            rec[h, I * block : (I + 1) * block] = bm[h, I * block : (I + 1) * block][:, sel].sum(1)
    return kept, rec, masks


def test_oracle_curve_is_exact_top_p_on_true_masses():
    """Brute force per (head, query block): sort the evaluated rows' mean
    distribution, keep the smallest prefix reaching tau; recall per row."""
    N, block = 640, 64
    q, k, v, nd = S.structured_qkv(1, 2, 1, N, 32, seed=11, peak=2.0, needles=2)
    cfg = preset("mean", block=block, tau=1.0)
    rows = np.arange(N)
    res = F.evaluate(q, k, v, [cfg], F.layouts(q, k, [cfg]), rows)
    bm = res["block_mass"].astype(np.float64)  # [H, R, NB]
    taus = (0.5, 0.9, 0.97, 1.0)
    dens, rmean, rp1, spans = F.oracle_curve(res["block_mass"], rows, N, block, block, taus, needles=nd)
    # With the estimators' forced blocks (sink, diagonal, one local block).
    fd, fm, _, _ = F.oracle_curve(res["block_mass"], rows, N, block, block, taus, local_blocks=1)
    NB = N // block
    pairs = 2 * NB * (NB + 1) / 2
    for i, tau in enumerate(taus):
        kept, rec, masks = brute_top_p(bm, block, tau, lambda I: set())
        assert dens[i] == pytest.approx(kept / pairs)
        assert rmean[i] == pytest.approx(rec.mean()) and rp1[i] == pytest.approx(np.percentile(rec, 1))
        want_spans = sum(
            all(
                masks[h, I, J]
                for h in range(2)
                for I in range(x["q_start"] // block, (x["q_stop"] - 1) // block + 1)
                for J in range(x["k_start"] // block, (x["k_stop"] - 1) // block + 1)
            )
            for x in nd
        )
        assert spans[i] == want_spans
        kept, rec, _ = brute_top_p(bm, block, tau, lambda I: {0, max(0, I - 1), I})
        assert fd[i] == pytest.approx(kept / pairs) and fm[i] == pytest.approx(rec.mean())
    assert dens[-1] == 1.0 and rmean[-1] == pytest.approx(1.0) and spans[-1] == len(nd)
    assert np.all(fd >= dens - 1e-12)
    assert np.all(np.diff(dens) >= 0) and np.all(np.diff(rmean) >= -1e-12)
    # by_head: each head's own curve, the brute force on that head alone.
    curve_bh, heads = F.oracle_curve(res["block_mass"], rows, N, block, block, taus, needles=nd, by_head=True)
    assert all(np.array_equal(a, b) for a, b in zip(curve_bh, (dens, rmean, rp1, spans)))
    for h, (hd, hm) in enumerate(heads):
        for i, tau in enumerate(taus):
            kept, rec, _ = brute_top_p(bm[h : h + 1], block, tau, lambda I: set())
            assert hd[i] == pytest.approx(kept / (pairs / 2)) and hm[i] == pytest.approx(rec.mean())
    assert not np.allclose(heads[0][0], heads[1][0])  # the two heads differ
    curve = (dens, rmean, rp1, spans)
    assert F.floor_at(curve, rmean[1]) == pytest.approx(dens[1])
    mid = 0.5 * (rmean[1] + rmean[2])
    assert dens[1] <= F.floor_at(curve, mid) <= dens[2]


def brute_row_spans(q, k, needles, block, tau, forced):
    """Per (head, needle row): the row's own softmax mass per key block, its
    forced blocks, then the largest others (ties: smaller block) until tau;
    a span counts if every (head, row) keeps all its key blocks."""
    D = q.shape[-1]
    G = q.shape[1] // k.shape[1]
    kept = 0
    for x in needles:
        kb = range(x["k_start"] // block, (x["k_stop"] - 1) // block + 1)
        ok = True
        for h in range(q.shape[1]):
            for i in range(x["q_start"], x["q_stop"]):
                lg = k[0, h // G, : i + 1].astype(np.float64) @ q[0, h, i].astype(np.float64) / math.sqrt(D)
                p = np.exp(lg - lg.max())
                I = i // block
                d = np.array([p[J * block : (J + 1) * block].sum() for J in range(I + 1)]) / p.sum()
                sel = brute_keep(d, forced(I), tau)
                ok &= all(J in sel for J in kb)
        kept += ok
    return kept


def test_row_oracle_spans_is_the_per_row_top_p():
    """The per-row top-p's needle spans against a brute force, with and
    without forced blocks. On this data some heads' rows ignore a needle
    (spans dropped at tau < 1) and the forced sink changes which (the
    three variants differ: the test sees both)."""
    N, block, fine = 1024, 64, 32
    q, k, v, nd = S.structured_qkv(1, 4, 2, N, 32, seed=0, peak=1.5, needles=6)
    rows = F.needle_rows(nd)
    assert np.array_equal(rows, np.unique(np.concatenate([np.arange(x["q_start"], x["q_stop"]) for x in nd])))
    mass = np.zeros((4, len(rows), N // fine))
    for h, r0, m, _ in FH._dense_chunks_numpy(q, k, v, rows, fine, 1 / math.sqrt(32), True, 1 << 20):
        mass[h, r0 : r0 + len(m)] = m / m.sum(1, keepdims=True)
    taus = (0.5, 0.9, 0.99, 0.9999, 1.0)
    ok_f = F.row_oracle_spans(mass, rows, nd, fine, block, taus, local_blocks=1)
    assert ok_f.shape == (len(taus), len(nd)) and ok_f.dtype == bool
    got = F.row_oracle_spans(mass, rows, nd, fine, block, taus).sum(-1)
    got_f = ok_f.sum(-1)
    got_nosink = F.row_oracle_spans(mass, rows, nd, fine, block, taus, sink=False, local_blocks=0).sum(-1)
    for i, tau in enumerate(taus):
        assert got[i] == brute_row_spans(q, k, nd, block, tau, lambda I: set())
        assert got_f[i] == brute_row_spans(q, k, nd, block, tau, lambda I: {0, max(0, I - 1), I})
        assert got_nosink[i] == brute_row_spans(q, k, nd, block, tau, lambda I: {I})
    assert got[-1] == len(nd) and got[0] < len(nd)
    assert np.any(got_f != got) and np.any(got_f != got_nosink)
    assert np.all(np.diff(got) >= 0)
    assert F.row_oracle_spans(mass, rows, [], fine, block, taus).shape == (len(taus), 0)
    # In the harness: spans_row at each config's tau, and lost, the spans the
    # per-row top-p keeps that the layout drops (max_blocks 3 caps the
    # second layout below what tau 0.99 needs: it loses some).
    cfgs = [preset("mean", block=block, tau=0.9), preset("mean", block=block, tau=0.99, max_blocks=3)]
    out = F.run(N, cfgs, heads=4, kv_heads=2, dim=32, peak=1.5, seed=0, needles=6, log=lambda *_: None)
    lays = F.layouts(q, k, cfgs)
    lost = []
    for cfg, row in zip(cfgs, out):
        need = F.row_oracle_spans(mass, rows, nd, fine, block, [cfg.tau], local_blocks=1)[0]
        kept = [S.needle_hits([x], *lays[cfg], block, 4)[1] == 1 for x in nd]
        assert row["spans_row"] == f"{int(need.sum())}/6"
        assert sum(kept) == int(row["spans"].split("/")[0])
        lost.append(sum(n_ and not k_ for n_, k_ in zip(need, kept)))
        assert row["spans_lost"] == lost[-1]
    assert out[0]["spans_row"] == f"{got_f[1]}/6"
    assert lost[0] == 0 and lost[1] > 0


def test_modes_sweep_runs_every_estimator():
    cfgs = [
        F.parse_config("block=64,c_q=8,c_k=8,tau=0.9,estimator=antidiag_lse,query_reduce=max"),
        F.parse_config("block=64,c_q=8,c_k=8,tau=0.9,estimator=antidiag"),
    ]
    assert cfgs[0] == preset("mean", block=64, c_q=8, c_k=8, tau=0.9, estimator="antidiag_lse", query_reduce="max")
    assert F.label(cfgs[0]) == "tau=0.9,antidiag_lse(s=8),block=64,query_reduce=max"
    rows = F.run(700, cfgs, heads=2, kv_heads=1, dim=32, needles=2, full_rows=1000, log=lambda *_: None)
    for r, c in zip(rows, cfgs):
        counts, _ = R.block_select(
            R.estimate(
                *S.structured_qkv(1, 2, 1, 700, 32, seed=0, peak=1.5, needles=2)[:2],
                64,
                8,
                8,
                estimator=c.estimator,
                query_reduce=c.query_reduce,
            ),
            0.9,
        )
        assert r["density"] == pytest.approx(R.density(counts, 700, 64))
        assert 0 < r["ratio"] and 0 < r["recall_mean"] <= 1
    assert {c.get("estimator", "mean") for c in F.SWEEPS["modes"]} == set(R.ESTIMATORS)


def test_frontier_sweep_holds_the_default_and_its_neighbours():
    """The Pareto plot of docs/Fidelity.md ("The estimators against the
    default") draws `frontier`: it must hold the default configuration
    itself, the `mean` and `recommended` presets, and the default at a tau
    on either side; `frontier-long` is the same without the antidiagonal
    estimators (16x the products) and nothing else."""
    cfgs = [F.parse_config(d) for d in F.SWEEPS["frontier"]]
    assert Config() in cfgs and preset("mean") in cfgs and preset("recommended") in cfgs
    taus = sorted(c.tau for c in cfgs if c == preset("peaked", tau=c.tau))
    assert taus[0] < Config().tau < taus[-1]
    long = [F.parse_config(d) for d in F.SWEEPS["frontier-long"]]
    assert long == [c for c in cfgs if c.estimator not in ("antidiag", "antidiag_lse")]
    assert {c.estimator for c in cfgs} - {c.estimator for c in long} == {"antidiag", "antidiag_lse"}


def test_per_head_rows_add_up_to_the_run():
    """The JSON rows' per-head entries: the run's density and mean recall
    are the means of the heads' (exact identities of the layout and the
    evaluated rows), a head's density is its group's (c_h 2: the two heads
    of a group agree), and each head's floor is its own exact top-p at its
    own mean recall, at most its share of the grid."""
    cfgs = [
        F.parse_config("block=64,c_q=8,c_k=8,tau=0.9"),
        F.parse_config("block=64,c_q=8,c_k=8,tau=0.95,c_h=2"),
    ]
    rows = F.run(700, cfgs, heads=4, kv_heads=2, dim=32, needles=2, peak=2.0, full_rows=1000, log=lambda *_: None)
    for r, c in zip(rows, cfgs):
        heads = r["heads"]
        assert len(heads) == 4
        assert np.mean([h["density"] for h in heads]) == pytest.approx(r["density"], rel=1e-12)
        assert np.mean([h["recall_mean"] for h in heads]) == pytest.approx(r["recall_mean"], rel=1e-12)
        for h in heads:
            assert 0 < h["floor"] <= 1 and h["ratio"] == pytest.approx(h["density"] / h["floor"])
            assert 0 < h["recall_p1"] <= h["recall_mean"] <= 1
        if c.c_h == 2:
            assert heads[0]["density"] == heads[1]["density"] and heads[2]["density"] == heads[3]["density"]
    # the heads differ (the generator draws each head's gains): a per-head split that says something
    assert len({round(h["density"], 12) for h in rows[0]["heads"]}) > 1
