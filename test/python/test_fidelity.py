"""Smoke test of the fidelity harness (python -m unisparse.fidelity) at tiny sizes."""

import math

import numpy as np
import pytest

from unisparse import Config
from unisparse import fidelity as F
from unisparse import reference as R
from unisparse import synthetic as S

pytest.importorskip("matplotlib")


def test_cli_writes_table_and_png(tmp_path, capsys):
    png = tmp_path / "fid.png"
    rc = F.main(["--n", "512", "1000", "--heads", "2", "--kv-heads", "1", "--dim", "32", "--needles", "2",
                 "--config", "block=64,tau=0.9", "--config", "block=64,c_k=8,tau=0.99",
                 "--config", "block=64,tau=1.0", "--full-rows", "600", "--rows-per-block", "4",
                 "--check-compiled", "--png", str(png)])
    out = capsys.readouterr().out
    assert rc == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "rec_mean" in out and "oracle" in out and "sampled" in out
    assert "100.00% of rows identical" in out  # reference layout == compiled layout
    lines = [line for line in out.splitlines() if line.strip().startswith(("512", "1000"))]
    assert len(lines) == 6


def test_metrics_are_exact_against_reference():
    q, k, v, nd = S.structured_qkv(1, 4, 2, 700, 32, seed=3, peak=1.5, needles=2)
    cfgs = [Config(block=64, tau=0.8), Config(block=32, c_q=8, c_k=8, c_h=2, tau=0.9), Config(block=64, tau=1.0)]
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
    assert all(0 < r["oracle"] <= 1 for r in rows)


def test_sampling_is_stratified():
    rows = F.sample_rows(1000, 64, 4, seed=0)
    assert len(rows) == 16 * 4 - (4 - min(4, 1000 - 15 * 64))
    assert np.all(np.diff(rows) > 0)
    assert np.array_equal(np.bincount(rows // 64), [4] * 16)
    assert np.array_equal(F.sample_rows(100, 64, None, 0), np.arange(100))


def test_parse_config():
    assert F.parse_config("tau=0.95,c_k=8,causal=false") == Config(tau=0.95, c_k=8, causal=False)
    with pytest.raises(ValueError, match="unknown Config field"):
        F.parse_config("tua=0.9")
