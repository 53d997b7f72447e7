"""Tests of the NumPy reference (python/unisparse/reference/) and the
structured synthetic generator (python/unisparse/synthetic.py).

Run from the repository root:  PYTHONPATH=python python3 -m pytest -q test/python
"""

import math
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))

from unisparse import reference as R  # noqa: E402
from unisparse import synthetic as S  # noqa: E402

# --------------------------------------------------------------------------- #
# Brute-force oracles (loops, written straight from the spec)
# --------------------------------------------------------------------------- #


def brute_compress(x, seq_factor, head_factor, kv_group):
    B, H, N, D = x.shape
    E = H * kv_group
    G = E // head_factor
    T = math.ceil(N / seq_factor)
    out = np.zeros((B, G, T, D))
    for b in range(B):
        for g in range(G):
            for t in range(T):
                acc = np.zeros(D)
                n = 0
                for e in range(g * head_factor, (g + 1) * head_factor):
                    for tok in range(t * seq_factor, min((t + 1) * seq_factor, N)):
                        acc += x[b, e // kv_group, tok].astype(np.float64)
                        n += 1
                out[b, g, t] = acc / n
    return out


def brute_block_score(qc, kc, block, c_q, c_k, causal, scale=None):
    B, Hg, Tq, D = qc.shape
    Tk = kc.shape[2]
    scale = 1 / math.sqrt(D) if scale is None else scale
    rq, rk = block // c_q, block // c_k
    NBq, NBk = math.ceil(Tq / rq), math.ceil(Tk / rk)
    s = np.zeros((B, Hg, NBq, NBk))
    for b in range(B):
        for g in range(Hg):
            for t in range(Tq):
                logits = np.array(
                    [
                        qc[b, g, t] @ kc[b, g, u] * scale if (not causal or u * c_k <= (t + 1) * c_q - 1) else -np.inf
                        for u in range(Tk)
                    ]
                )
                a = np.exp(logits - logits.max())
                a /= a.sum()
                for u in range(Tk):
                    s[b, g, t // rq, u // rk] += a[u]
    return s


def brute_block_select(s, tau, local_blocks, sink, min_blocks, max_blocks, causal):
    """Direct transcription of the spec, float32 scalars, one row at a time."""
    B, Hg, NBq, NBk = s.shape
    counts = np.zeros((B, Hg, NBq), np.int32)
    indices = np.full((B, Hg, NBq, NBk), -1, np.int32)
    for b in range(B):
        for g in range(Hg):
            for I in range(NBq):
                row = s[b, g, I].astype(np.float32)
                V = [J for J in range(NBk) if (J <= I or not causal)]
                F = set(J for J in range(max(0, I - local_blocks), I + 1))
                if sink:
                    F.add(0)
                F = sorted(J for J in F if J in V)
                if tau >= 1:
                    sel = list(V)
                else:
                    total = np.float32(0)
                    for J in V:
                        total = np.float32(total + row[J])
                    thr = np.float32(np.float32(tau) * total)
                    kept = np.float32(0)
                    for J in F:
                        kept = np.float32(kept + row[J])
                    sel = list(F)
                    rest = sorted((J for J in V if J not in F), key=lambda J: (-row[J], J))
                    for J in rest:
                        if max_blocks > 0 and len(sel) >= max_blocks:
                            break
                        if len(sel) < min_blocks or kept < thr:
                            kept = np.float32(kept + row[J])
                            sel.append(J)
                        else:
                            break
                sel = sorted(sel)
                counts[b, g, I] = len(sel)
                indices[b, g, I, : len(sel)] = sel
    return counts, indices


def masked_attention(q, k, v, mask, scale=None):
    """Attention with an explicit [B, Hq, N, N] boolean mask (GQA by head // G)."""
    B, Hq, N, D = q.shape
    G = Hq // k.shape[1]
    scale = 1 / math.sqrt(D) if scale is None else scale
    o = np.zeros((B, Hq, N, D))
    lse = np.full((B, Hq, N), -np.inf)
    for b in range(B):
        for h in range(Hq):
            L = q[b, h].astype(np.float64) @ k[b, h // G].astype(np.float64).T * scale
            for i in range(N):
                js = np.flatnonzero(mask[b, h, i])
                if js.size == 0:
                    continue
                x = L[i, js]
                m = x.max()
                p = np.exp(x - m)
                o[b, h, i] = p @ v[b, h // G, js].astype(np.float64) / p.sum()
                lse[b, h, i] = m + np.log(p.sum())
    return o, lse


def token_mask_from_layout(counts, indices, Hq, N, block, causal):
    B, Hg, NB = counts.shape
    mask = np.zeros((B, Hq, N, N), bool)
    for b in range(B):
        for h in range(Hq):
            g = h // (Hq // Hg)
            for i in range(N):
                I = i // block
                for J in indices[b, g, I, : counts[b, g, I]]:
                    for j in range(J * block, min(N, (J + 1) * block)):
                        if not causal or j <= i:
                            mask[b, h, i, j] = True
    return mask


def rand(rng, *shape):
    return rng.standard_normal(shape)


# --------------------------------------------------------------------------- #
# compress
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "H,seq_factor,head_factor,kv_group",
    [(3, 8, 2, 2), (4, 8, 2, 1), (2, 5, 1, 4), (4, 1, 4, 1), (2, 37, 1, 1), (2, 64, 1, 2)],
)
def test_compress_matches_brute_force(H, seq_factor, head_factor, kv_group):
    rng = np.random.default_rng(0)
    x = rand(rng, 2, H, 37, 5).astype(np.float32)
    got = R.compress(x, seq_factor, head_factor, kv_group)
    want = brute_compress(x, seq_factor, head_factor, kv_group)
    assert got.dtype == np.float64
    assert got.shape == (2, H * kv_group // head_factor, math.ceil(37 / seq_factor), 5)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_compress_partial_composite_is_mean_of_its_tokens():
    x = np.arange(10, dtype=np.float64).reshape(1, 1, 10, 1)
    got = R.compress(x, 4)
    np.testing.assert_array_equal(got[0, 0, :, 0], [1.5, 5.5, 8.5])


def test_compress_rejects_bad_head_factor():
    with pytest.raises(ValueError, match="head_factor"):
        R.compress(np.zeros((1, 3, 8, 2)), 4, head_factor=2)
    with pytest.raises(ValueError):
        R.compress(np.zeros((1, 3, 8)), 4)


# --------------------------------------------------------------------------- #
# block_score
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("N,block,c_q,c_k", [(300, 64, 16, 8), (37, 16, 8, 4), (128, 32, 32, 16)])
def test_block_score_matches_brute_force(N, block, c_q, c_k, causal):
    rng = np.random.default_rng(1)
    q = rand(rng, 1, 2, N, 8)
    k = rand(rng, 1, 2, N, 8)
    qc, kc = R.compress(q, c_q), R.compress(k, c_k)
    s = R.block_score(qc, kc, block, c_q, c_k, causal=causal)
    NB = math.ceil(N / block)
    assert s.shape == (1, 2, NB, NB)
    np.testing.assert_allclose(s, brute_block_score(qc, kc, block, c_q, c_k, causal), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("causal", [True, False])
def test_block_score_rows_sum_to_number_of_composites(causal):
    rng = np.random.default_rng(2)
    N, block, c_q, c_k = 1000, 128, 16, 32
    q = rand(rng, 2, 3, N, 16) * 3
    k = rand(rng, 2, 3, N, 16) * 3
    qc, kc = R.compress(q, c_q), R.compress(k, c_k)
    s = R.block_score(qc, kc, block, c_q, c_k, causal=causal)
    Tq = qc.shape[2]
    rq = block // c_q
    n_comp = np.array([min(Tq, (I + 1) * rq) - I * rq for I in range(s.shape[2])])
    np.testing.assert_allclose(s.sum(axis=-1), np.broadcast_to(n_comp, s.shape[:3]), rtol=1e-12)
    assert np.all(s >= 0)
    if causal:
        assert np.all(np.triu(np.ones(s.shape[2:]), 1) * s == 0)
    else:
        assert s[..., 0, -1].min() > 0


def test_block_score_chunking_does_not_change_result(monkeypatch):
    rng = np.random.default_rng(3)
    qc = rand(rng, 1, 2, 50, 8)
    kc = rand(rng, 1, 2, 100, 8)
    full = R.block_score(qc, kc, 16, 4, 2, causal=True)
    monkeypatch.setattr(R.scores, "_CHUNK_ELEMS", 1)  # block_score reads it there
    np.testing.assert_array_equal(R.block_score(qc, kc, 16, 4, 2, causal=True), full)


def test_block_score_rejects_bad_block():
    with pytest.raises(ValueError, match="multiple"):
        R.block_score(np.zeros((1, 1, 4, 2)), np.zeros((1, 1, 4, 2)), 24, 16, 16)


# --------------------------------------------------------------------------- #
# block_select
# --------------------------------------------------------------------------- #


def random_scores(rng, B, Hg, NB, causal, ties=False):
    s = rng.random((B, Hg, NB, NB))
    if ties:
        s = np.round(s * 4) / 4  # many exact ties, some zeros
    if causal:
        s = s * np.tril(np.ones((NB, NB)))
    return s


SELECT_CASES = [
    dict(tau=0.9, local_blocks=1, sink=True, min_blocks=0, max_blocks=0),
    dict(tau=0.5, local_blocks=0, sink=False, min_blocks=0, max_blocks=0),
    dict(tau=0.95, local_blocks=2, sink=True, min_blocks=4, max_blocks=0),
    dict(tau=0.99, local_blocks=1, sink=True, min_blocks=0, max_blocks=3),
    dict(tau=0.8, local_blocks=3, sink=True, min_blocks=2, max_blocks=2),
    # The smallest positive tau rounds to an f32 threshold of 0: forced blocks only.
    dict(tau=5e-324, local_blocks=1, sink=True, min_blocks=0, max_blocks=0),
    dict(tau=0.7, local_blocks=1, sink=True, min_blocks=5, max_blocks=5),
]


@pytest.mark.parametrize(
    "case,msg",
    [
        (dict(tau=0.0), r"'tau' must be in \(0, 1\], found 0.0"),
        (dict(tau=1.5), r"'tau' must be in \(0, 1\]"),
        (dict(tau=float("nan")), r"'tau' must be in \(0, 1\]"),
        (dict(tau=0.7, min_blocks=5, max_blocks=4), r"'min_blocks' \(5\) must not exceed 'max_blocks' \(4\)"),
        (dict(tau=0.7, local_blocks=-1), "'local_blocks' must be non-negative"),
    ],
)
def test_block_select_rejects_what_the_dialect_rejects(case, msg):
    s = random_scores(np.random.default_rng(4), 1, 1, 4, True, False)
    with pytest.raises(ValueError, match=msg):
        R.block_select(s, **case)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("case", SELECT_CASES)
def test_block_select_matches_brute_force(case, ties, causal):
    rng = np.random.default_rng(4)
    s = random_scores(rng, 2, 3, 11, causal, ties)
    c, i = R.block_select(s, causal=causal, **case)
    bc, bi = brute_block_select(s, causal=causal, **case)
    assert c.dtype == np.int32 and i.dtype == np.int32
    np.testing.assert_array_equal(c, bc)
    np.testing.assert_array_equal(i, bi)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("case", SELECT_CASES)
def test_block_select_invariants(case, causal):
    rng = np.random.default_rng(5)
    NB = 13
    s = random_scores(rng, 2, 2, NB, causal)
    counts, indices = R.block_select(s, causal=causal, **case)
    tau, lb, sink = case["tau"], case["local_blocks"], case["sink"]
    mn, mx = case["min_blocks"], case["max_blocks"]
    s32 = s.astype(np.float32)
    for b in range(2):
        for g in range(2):
            for I in range(NB):
                n = counts[b, g, I]
                row = indices[b, g, I]
                sel = row[:n]
                assert np.all(row[n:] == -1)
                assert np.all(np.diff(sel) > 0), "ascending, no duplicates"
                V = [J for J in range(NB) if J <= I or not causal]
                assert set(sel) <= set(V)
                F = {J for J in range(max(0, I - lb), I + 1)} | ({0} if sink else set())
                F &= set(V)
                assert F <= set(sel), "forced blocks present"
                assert n <= len(V)
                if mx > 0:
                    assert n <= max(mx, len(F)), "cap respected except forced"
                if mx == 0 or mx >= min(mn, len(V)):
                    assert n >= min(mn, len(V)), "min_blocks honoured"
                total = np.float32(np.cumsum(s32[b, g, I, V], dtype=np.float32)[-1])
                thr = np.float32(tau) * total
                taken = [J for J in sel if J not in F]
                kept_all = np.float32(s32[b, g, I, sel].astype(np.float64).sum())
                if mx == 0 and n < len(V):
                    # the walk stopped on the threshold, so it was reached
                    assert kept_all >= thr * (1 - 1e-6)
                if taken and len(sel) > max(mn, len(F)):
                    # minimality: without the smallest taken block we are below the threshold
                    smallest = min(taken, key=lambda J: (s32[b, g, I, J], -J))
                    rest = np.float32(kept_all - s32[b, g, I, smallest])
                    assert rest < thr * (1 + 1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_block_select_tau_one_is_dense(causal):
    rng = np.random.default_rng(6)
    s = random_scores(rng, 2, 3, 9, causal)
    c, i = R.block_select(s, 1.0, max_blocks=2, causal=causal)
    dc, di = R.dense_layout(2, 3, 9, 9, causal)
    np.testing.assert_array_equal(c, dc)
    np.testing.assert_array_equal(i, di)
    c, i = R.block_select(s, 0.3, min_blocks=9, causal=causal)
    np.testing.assert_array_equal(c, dc)
    np.testing.assert_array_equal(i, di)


def test_block_select_tie_break_prefers_smaller_block():
    s = np.zeros((1, 1, 6, 6))
    s[0, 0, 5] = [0.0, 0.25, 0.25, 0.25, 0.0, 0.25]
    c, i = R.block_select(s, 0.5, local_blocks=0, sink=False)
    # forced {5} holds 0.25 < 0.5; the next by (-score, J) is J=1
    assert c[0, 0, 5] == 2
    assert list(i[0, 0, 5, :2]) == [1, 5]


def test_block_select_float32_accumulation_order():
    # In float32, 1 + 2^-24 + 2^-24 == 1 when added sequentially but 1 + 2^-23 is
    # representable: the decision depends on the summation order.
    e = 2.0**-24
    s = np.array([[[[1.0, e, e, 0.0], [1.0, e, e, 0.0], [1.0, e, e, 0.0], [1.0, e, e, 0.0]]]])
    c, i = R.block_select(s, 1.0 - 1e-9, local_blocks=0, sink=True)
    bc, bi = brute_block_select(s, 1.0 - 1e-9, 0, True, 0, 0, True)
    np.testing.assert_array_equal(c, bc)
    np.testing.assert_array_equal(i, bi)


# --------------------------------------------------------------------------- #
# block_sparse_attention / dense_attention
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("Hq,Hkv,Hg", [(2, 2, 2), (4, 2, 2), (4, 1, 4), (4, 2, 1)])
def test_dense_layout_equals_dense_attention(Hq, Hkv, Hg, causal):
    rng = np.random.default_rng(7)
    N, block = 203, 32
    q, k, v = rand(rng, 2, Hq, N, 16) * 2, rand(rng, 2, Hkv, N, 16), rand(rng, 2, Hkv, N, 16)
    NB = math.ceil(N / block)
    c, i = R.dense_layout(2, Hg, NB, NB, causal)
    o, lse = R.block_sparse_attention(q, k, v, c, i, block, causal=causal)
    od, ld = R.dense_attention(q, k, v, causal=causal)
    assert R.relative_l2(o, od) < 1e-12
    assert R.relative_l2(lse, ld) < 1e-12
    full = np.tril(np.ones((N, N), bool)) if causal else np.ones((N, N), bool)
    om, lm = masked_attention(q, k, v, np.broadcast_to(full, (2, Hq, N, N)))
    assert R.relative_l2(od, om) < 1e-12
    assert R.relative_l2(ld, lm) < 1e-12


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("Hq,Hkv,Hg", [(2, 2, 2), (4, 2, 2), (4, 1, 2)])
def test_sparse_layout_equals_masked_attention(Hq, Hkv, Hg, causal):
    rng = np.random.default_rng(8)
    N, block = 150, 16
    NB = math.ceil(N / block)
    q, k, v = rand(rng, 1, Hq, N, 8) * 2, rand(rng, 1, Hkv, N, 8), rand(rng, 1, Hkv, N, 8)
    s = random_scores(rng, 1, Hg, NB, causal)
    c, i = R.block_select(s, 0.6, local_blocks=0, sink=True, causal=causal)
    assert c.sum() < R.dense_layout(1, Hg, NB, NB, causal)[0].sum()
    o, lse = R.block_sparse_attention(q, k, v, c, i, block, causal=causal, scale=0.3)
    mask = token_mask_from_layout(c, i, Hq, N, block, causal)
    om, lm = masked_attention(q, k, v, mask, scale=0.3)
    assert R.relative_l2(o, om) < 1e-12
    np.testing.assert_allclose(lse, lm, rtol=1e-12)


def test_row_without_visible_keys_gives_zero_and_minus_inf():
    rng = np.random.default_rng(9)
    N, block = 40, 16
    q, k, v = rand(rng, 1, 1, N, 4), rand(rng, 1, 1, N, 4), rand(rng, 1, 1, N, 4)
    counts = np.array([[[1, 0, 1]]], np.int32)
    indices = np.array([[[[0, -1, -1], [-1, -1, -1], [2, -1, -1]]]], np.int32)
    o, lse = R.block_sparse_attention(q, k, v, counts, indices, block, causal=True)
    assert np.all(o[0, 0, 16:32] == 0) and np.all(lse[0, 0, 16:32] == -np.inf)
    assert np.all(np.isfinite(lse[0, 0, :16])) and np.all(np.isfinite(lse[0, 0, 32:]))
    # a layout that skips the diagonal in causal mode: block 1 attends only block 2 -> nothing visible
    counts = np.array([[[1, 1, 1]]], np.int32)
    indices = np.array([[[[0, -1, -1], [2, -1, -1], [2, -1, -1]]]], np.int32)
    o, lse = R.block_sparse_attention(q, k, v, counts, indices, block, causal=True)
    assert np.all(o[0, 0, 16:32] == 0) and np.all(lse[0, 0, 16:32] == -np.inf)


def test_nan_propagates():
    rng = np.random.default_rng(10)
    q, k, v = rand(rng, 1, 1, 32, 4), rand(rng, 1, 1, 32, 4), rand(rng, 1, 1, 32, 4)
    v[0, 0, 3, 0] = np.nan
    c, i = R.dense_layout(1, 1, 2, 2, True)
    o, _ = R.block_sparse_attention(q, k, v, c, i, 16)
    od, _ = R.dense_attention(q, k, v)
    np.testing.assert_array_equal(np.isnan(o), np.isnan(od))
    # rows before key 3 do not see it (causal), every later row does
    assert not np.isnan(o[0, 0, :3]).any()
    assert np.isnan(o[0, 0, 3:, 0]).all() and not np.isnan(o[0, 0, :, 1:]).any()
    # a layout that skips block 0 for the second query block hides the NaN from it
    c = np.array([[[1, 1]]], np.int32)
    i = np.array([[[[0, -1], [1, -1]]]], np.int32)
    o, _ = R.block_sparse_attention(q, k, v, c, i, 16)
    assert not np.isnan(o[0, 0, 16:]).any()
    # a NaN key value in a visible position poisons only the rows that see it
    k[0, 0, 20, 1] = np.nan
    o, lse = R.block_sparse_attention(q, k, v, c, i, 16)
    assert np.isnan(lse[0, 0, 20:]).all() and not np.isnan(lse[0, 0, :20]).any()


@pytest.mark.parametrize(
    "counts,indices,msg",
    [
        ([[[1, 3]]], [[[[0, -1], [0, 1]]]], "counts"),
        ([[[1, 1]]], [[[[2, -1], [0, -1]]]], "out of range"),
        ([[[1, 2]]], [[[[0, -1], [1, 0]]]], "ascending"),
        ([[[1, 2]]], [[[[0, -1], [1, 1]]]], "ascending"),
    ],
)
def test_bad_layout_rejected(counts, indices, msg):
    rng = np.random.default_rng(11)
    q, k, v = rand(rng, 1, 1, 20, 4), rand(rng, 1, 1, 20, 4), rand(rng, 1, 1, 20, 4)
    with pytest.raises(ValueError, match=msg):
        R.block_sparse_attention(q, k, v, np.array(counts, np.int32), np.array(indices, np.int32), 16)


# --------------------------------------------------------------------------- #
# unisparse_attention end to end
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("Hq,Hkv,c_h", [(4, 4, 1), (4, 2, 2), (8, 2, 2), (4, 1, 4)])
def test_unisparse_tau_one_is_dense(Hq, Hkv, c_h, causal):
    q, k, v = S.structured_qkv(1, Hq, Hkv, 300, 32, seed=12)
    o, lse, c, i = R.unisparse_attention(q, k, v, block=64, c_q=16, c_k=8, c_h=c_h, tau=1.0, causal=causal)
    assert c.shape == (1, Hq // c_h, 5)
    od, ld = R.dense_attention(q, k, v, causal=causal)
    assert R.relative_l2(o, od) < 1e-12
    assert R.relative_l2(lse, ld) < 1e-12
    assert R.density(c, 300, 64, causal) == 1.0


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("Hq,Hkv,c_h", [(4, 2, 1), (4, 2, 2)])
def test_unisparse_composes_stages(Hq, Hkv, c_h, causal):
    q, k, v = S.structured_qkv(1, Hq, Hkv, 700, 32, seed=13, peak=2.0)
    o, lse, c, i = R.unisparse_attention(
        q,
        k,
        v,
        block=64,
        c_q=16,
        c_k=16,
        c_h=c_h,
        tau=0.8,
        causal=causal,
        estimator="mean",
        query_reduce="sum",
        refine="none",
    )
    qc = brute_compress(q, 16, c_h, 1)
    kc = brute_compress(k, 16, c_h, Hq // Hkv)
    s = R.block_score(qc, kc, 64, 16, 16, causal=causal)
    bc, bi = brute_block_select(s, 0.8, 1, True, 0, 0, causal)
    np.testing.assert_array_equal(c, bc)
    np.testing.assert_array_equal(i, bi)
    assert R.density(c, 700, 64, causal) < 1.0
    mask = token_mask_from_layout(c, i, Hq, 700, 64, causal)
    om, lm = masked_attention(q, k, v, mask)
    assert R.relative_l2(o, om) < 1e-12


# --------------------------------------------------------------------------- #
# metrics
# --------------------------------------------------------------------------- #


def test_density():
    c, _ = R.dense_layout(2, 3, 5, 5, True)
    assert R.density(c, 300, 64, True) == 1.0
    c, _ = R.dense_layout(2, 3, 5, 5, False)
    assert R.density(c, 300, 64, False) == 1.0
    c = np.ones((1, 1, 4), np.int32)
    assert R.density(c, 256, 64, True) == pytest.approx(4 / 10)
    assert R.density(c, 256, 64, False) == pytest.approx(4 / 16)


def test_relative_l2():
    assert R.relative_l2(np.array([3.0, 4.0]), np.array([3.0, 4.0])) == 0.0
    assert R.relative_l2(np.array([3.0, 5.0]), np.array([3.0, 4.0])) == pytest.approx(0.2)
    assert R.relative_l2(np.zeros(2), np.zeros(2)) == 0.0
    assert R.relative_l2(np.ones(2), np.zeros(2)) == math.inf


@pytest.mark.parametrize("causal", [True, False])
def test_recall_dense_is_one_and_sparse_is_below(causal):
    N, block = 1024, 64
    q, k, v = S.structured_qkv(1, 2, 1, N, 32, seed=14, peak=2.0)
    NB = N // block
    c, i = R.dense_layout(1, 2, NB, NB, causal)
    r = R.attention_recall(q, k, c, i, block, causal=causal)
    assert r.shape == (1, 2, N)
    np.testing.assert_allclose(r, 1.0, rtol=0, atol=1e-12)
    _, _, c, i = R.unisparse_attention(
        q, k, v, block=block, c_k=8, tau=0.6, causal=causal, estimator="mean", query_reduce="sum", refine="none"
    )
    r = R.attention_recall(q, k, c, i, block, causal=causal)
    assert np.all((r >= 0) & (r <= 1 + 1e-12))
    assert r.min() < 1.0
    mean, p1 = R.recall_summary(r)
    assert 0 < p1 <= mean < 1
    bm, bp = R.recall_summary(r, block)
    assert bm.shape == (1, 2, NB) and bp.shape == (1, 2, NB)
    assert np.all(bp <= bm + 1e-15)
    np.testing.assert_allclose(bm.mean(), mean, rtol=1e-12)  # all blocks are full


def test_recall_matches_mask_mass():
    rng = np.random.default_rng(15)
    N, block = 50, 16
    q, k = rand(rng, 1, 2, N, 4), rand(rng, 1, 1, N, 4)
    counts = np.array([[[1, 1, 2, 2]]], np.int32)
    indices = np.array([[[[0, -1, -1, -1], [0, -1, -1, -1], [0, 2, -1, -1], [1, 3, -1, -1]]]], np.int32)
    r = R.attention_recall(q, k, counts, indices, block)
    mask = token_mask_from_layout(counts, indices, 2, N, block, True)
    for h in range(2):
        L = q[0, h] @ k[0, 0].T / 2
        for row in range(N):
            p = np.exp(L[row, : row + 1] - L[row, : row + 1].max())
            want = p[mask[0, h, row, : row + 1]].sum() / p.sum()
            assert r[0, h, row] == pytest.approx(want, rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------- #
# synthetic data
# --------------------------------------------------------------------------- #


def test_structured_qkv_deterministic_and_shaped():
    a = S.structured_qkv(2, 4, 2, 512, 32, seed=3, needles=2)
    b = S.structured_qkv(2, 4, 2, 512, 32, seed=3, needles=2)
    c = S.structured_qkv(2, 4, 2, 512, 32, seed=4, needles=2)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)
    assert a[3] == b[3]
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (2, 4, 512, 32) and a[1].shape == (2, 2, 512, 32) and a[2].shape == (2, 2, 512, 32)
    assert a[0].dtype == np.float32
    assert len(a[3]) == 4 and all(n["k_stop"] <= n["q_start"] for n in a[3])
    q16 = S.structured_qkv(1, 2, 2, 64, 16, seed=0, dtype=np.float16)[0]
    assert q16.dtype == np.float16
    assert len(S.structured_qkv(1, 2, 2, 64, 16, seed=0)) == 3


def _dense_probs(q, k, b, h, G):
    L = q[b, h].astype(np.float64) @ k[b, h // G].astype(np.float64).T / math.sqrt(q.shape[-1])
    N = L.shape[0]
    L = np.where(np.tril(np.ones((N, N), bool)), L, -np.inf)
    p = np.exp(L - L.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def test_structured_qkv_has_structure():
    N = 1024
    q, k, v, needles = S.structured_qkv(1, 2, 1, N, 64, seed=5, needles=2)
    p = _dense_probs(q, k, 0, 0, 2)
    col = p.sum(axis=0)  # total mass received per key
    # sink: key 0 receives far more mass than an average key
    assert col[0] > 50 * col.mean()
    # local: mass within 32 tokens behind the query far exceeds its share of keys
    i = np.arange(N)[:, None]
    j = np.arange(N)[None, :]
    near = (i - j >= 0) & (i - j < 32)
    assert (p * near).sum() / N > 3 * (near.sum() / np.tril(np.ones((N, N))).sum())
    # needles: the needle queries put most of their mass on the needle keys
    for nd in needles:
        rows = p[nd["q_start"] : nd["q_stop"]]
        assert rows[:, nd["k_start"] : nd["k_stop"]].sum(axis=1).mean() > 0.5
    # plain i.i.d. noise has none of this
    rng = np.random.default_rng(0)
    qn, kn = rng.standard_normal((1, 1, N, 64)), rng.standard_normal((1, 1, N, 64))
    pn = _dense_probs(qn, kn, 0, 0, 1)
    assert pn.sum(axis=0)[0] < 50 * pn.sum(axis=0).mean()


def test_peak_makes_attention_more_peaked():
    ent = []
    for peak in (0.5, 2.0):
        q, k, _ = S.structured_qkv(1, 1, 1, 512, 32, seed=6, peak=peak)
        p = _dense_probs(q, k, 0, 0, 1)[256:]
        ent.append(-(p * np.log(np.where(p > 0, p, 1))).sum(axis=1).mean())
    assert ent[1] < ent[0] - 0.5


def test_needle_hit_rate():
    N, block = 1024, 64
    q, k, v, needles = S.structured_qkv(1, 2, 2, N, 64, seed=7, needles=3)
    NB = N // block
    c, i = R.dense_layout(1, 2, NB, NB, True)
    assert S.needle_hit_rate(needles, c, i, block, 2) == 1.0
    # a layout with only the diagonal misses every needle (keys are >= one span earlier)
    c = np.ones((1, 2, NB), np.int32)
    i = np.full((1, 2, NB, NB), -1, np.int32)
    i[..., 0] = np.arange(NB)
    far = [n for n in needles if n["k_stop"] - 1 < (n["q_start"] // block) * block]
    rate = S.needle_hit_rate(far, c, i, block, 2)
    assert rate == (0.0 if far else 1.0)


def test_reference_speed_smoke():
    """N=2048, H=4, D=64 end to end should take seconds, not minutes."""
    import time

    q, k, v = S.structured_qkv(1, 4, 4, 2048, 64, seed=8)
    t = time.perf_counter()
    R.unisparse_attention(q, k, v)
    assert time.perf_counter() - t < 30
