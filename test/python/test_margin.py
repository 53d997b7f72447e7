"""The boundary rule of unisparse.margin: perturbed scores give layouts that
obey it; layouts that break the selection rule are caught."""

from pathlib import Path

import numpy as np
import pytest

from conftest import gpu_scripts
from unisparse import reference as ref
from unisparse.margin import check_margin


def _scores(rng, B, Hg, NB, peaked):
    """Structured block scores: rows of a causal map summing to the rows'
    composites, with a few heavy blocks (sink, diagonal, lines)."""
    s = rng.gamma(0.3 if peaked else 2.0, size=(B, Hg, NB, NB))
    s[..., 0] += rng.uniform(1, 4, size=(B, Hg, NB))
    i = np.arange(NB)
    s[..., i, i] += 2.0
    s[..., rng.integers(0, NB)] += 3.0
    s = np.where(i[None, :] <= i[:, None], s, 0.0)
    return (8 * s / s.sum(-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tau", [0.5, 0.9, 0.99])
def test_perturbed_scores_obey_the_rule(seed, tau):
    rng = np.random.default_rng(seed)
    a = _scores(rng, 2, 3, 40, peaked=seed % 2 == 0)
    for rel in (1e-6, 1e-4, 1e-2):
        b = np.maximum(a * (1 + rng.uniform(-rel, rel, size=a.shape)), 0).astype(np.float32)
        la = ref.block_select(a, tau=tau)
        lb = ref.block_select(b, tau=tau)
        res = check_margin(a, *la, b, *lb, tau=tau)
        assert res["violations"] == [], res["violations"][:3]
        assert res["rows"] == 2 * 3 * 40


def test_perturbation_moves_the_boundary():
    """The rule is not vacuous: at 1% noise some rows differ (and pass)."""
    rng = np.random.default_rng(0)
    a = _scores(rng, 2, 4, 64, peaked=False)
    b = (a * (1 + rng.uniform(-1e-2, 1e-2, size=a.shape))).astype(np.float32)
    res = check_margin(a, *ref.block_select(a, tau=0.9), b, *ref.block_select(b, tau=0.9), tau=0.9)
    assert res["rows_differ"] > 0
    assert res["violations"] == []


def test_dropping_a_heavy_block_is_a_violation():
    rng = np.random.default_rng(1)
    a = _scores(rng, 1, 2, 32, peaked=True)
    counts, indices = ref.block_select(a, tau=0.9)
    counts, indices = counts.copy(), indices.copy()
    # Row 20 of head 0: drop the free block with the largest score.
    row = indices[0, 0, 20, : counts[0, 0, 20]]
    free = [j for j in row if j not in (0, 19, 20)]
    heavy = max(free, key=lambda j: a[0, 0, 20, j])
    keep = [j for j in row if j != heavy]
    indices[0, 0, 20, :] = -1
    indices[0, 0, 20, : len(keep)] = keep
    counts[0, 0, 20] = len(keep)
    res = check_margin(a, *ref.block_select(a, tau=0.9), a, counts, indices, tau=0.9)
    assert [v[:4] for v in res["violations"]] == [(0, 0, 20, "drop")]


def test_adding_mass_is_a_violation():
    rng = np.random.default_rng(2)
    a = _scores(rng, 1, 1, 32, peaked=True)
    counts, indices = ref.block_select(a, tau=0.5)
    sel = set(indices[0, 0, 25, : counts[0, 0, 25]].tolist())
    extra = sorted(set(range(26)) - sel)
    assert extra, "the row keeps everything; pick another"
    allk = sorted(sel | set(extra))
    counts, indices = counts.copy(), indices.copy()
    indices[0, 0, 25, : len(allk)] = allk
    counts[0, 0, 25] = len(allk)
    res = check_margin(a, *ref.block_select(a, tau=0.5), a, counts, indices, tau=0.5)
    assert [v[:4] for v in res["violations"]] == [(0, 0, 25, "add")]


def _one_pass_scores(logits, rq, rk, key_tile, half):
    """Block scores of row-major composite logits [T, Tk] (log2 domain,
    causal mask as -inf) the way the GPU scoring kernel forms them: per key
    tile a running max rounded up to an integer, per key block the partial
    sum P = sum exp2(x - m_tile) (rounded to f16 when `half`), the row sum
    l, and the block score sum_r P 2^(m_tile - m_row) / l."""
    T, Tk = logits.shape
    m = np.full(T, -np.inf)
    tiles = -(-Tk // key_tile)
    tile_max = np.zeros((T, tiles))
    P = np.zeros((T, tiles * key_tile // rk))
    for kt in range(tiles):
        x = logits[:, kt * key_tile : (kt + 1) * key_tile]
        m = np.maximum(m, np.ceil(x.max(axis=1)))
        tile_max[:, kt] = m
        e = np.exp2(x - m[:, None])
        e = np.pad(e, ((0, 0), (0, key_tile - e.shape[1])))
        p = e.reshape(T, key_tile // rk, rk).sum(axis=2)
        P[:, kt * (key_tile // rk) : (kt + 1) * (key_tile // rk)] = p
    l = (P * np.exp2(np.repeat(tile_max, key_tile // rk, axis=1) - m[:, None])).sum(axis=1)
    if half:
        P = P.astype(np.float16).astype(np.float64)
    share = P * np.exp2(np.repeat(tile_max, key_tile // rk, axis=1) - m[:, None]) / l[:, None]
    NBk = -(-Tk // rk)
    return share[:, :NBk].reshape(T // rq, rq, NBk).sum(axis=1)


@pytest.mark.parametrize("seed", range(4))
def test_f16_partial_sums_stay_within_the_stated_error(seed):
    """The GPU's f16 partial sums (score-partials=f16) move block scores by
    at most partials_f16_error, and the layouts they give differ from the
    f32 partial sums' only as the boundary rule allows (counted)."""
    from unisparse.margin import partials_f16_error

    rng = np.random.default_rng(seed)
    rq, rk, key_tile, NB = 8, 16, 64, 48
    T, Tk = NB * rq, NB * rk
    # Structured logits: a sink, a local band, vertical lines and noise, in
    # the log2 domain (so some tiles' partial sums fall below 2^-14).
    t = np.arange(T)[:, None] * rk // rq
    u = np.arange(Tk)[None, :]
    x = rng.normal(0, 2.0, size=(T, Tk))
    x[:, :8] += 6
    x += 8 * np.exp(-np.abs(t - u) / 12.0)
    x[:, rng.integers(0, Tk, size=6)] += rng.uniform(3, 9, size=6)
    x = np.where(u <= t + rk // rq - 1, x, -np.inf)
    exact = _one_pass_scores(x, rq, rk, key_tile, half=False)
    half = _one_pass_scores(x, rq, rk, key_tile, half=True)
    err = np.abs(half - exact)
    assert np.all(err <= partials_f16_error(exact, rq)), float(np.max(err / partials_f16_error(exact, rq)))
    # Rounding does move them (the check is not vacuous).
    assert float(err.max()) > 0
    a = exact.astype(np.float32)[None, None]
    b = half.astype(np.float32)[None, None]
    for tau in (0.9, 0.99):
        res = check_margin(a, *ref.block_select(a, tau=tau), b, *ref.block_select(b, tau=tau), tau=tau)
        assert res["violations"] == [], res["violations"][:3]
        assert res["rows"] == NB
        assert res["eps_max"] <= float(np.max(partials_f16_error(exact, rq)))


def test_exp2_polynomial_stays_within_the_stated_error():
    """The outlier scoring kernel's exp2 on the FMA pipe (unisparse.margin.
    exp2_poly, the kernel's exp2Poly in float32): within EXP2_POLY_REL of
    2^x wherever the result is normal (every 1009th float32 of [-1/2, 1/2]
    by bit pattern, and a uniform sample of [-125.5, 1/2]), positive
    and below 2^-125 below that, 0 < r < 2^-125 at -inf (the clamp); the
    coefficients are the f32 values the kernel emits (its lit test checks
    them)."""
    from unisparse.margin import EXP2_POLY_COEFFS, EXP2_POLY_REL, exp2_poly

    assert [float(np.float32(c)) for c in EXP2_POLY_COEFFS] == [
        0.9999280571937561,
        0.6932609677314758,
        0.2426111251115799,
        0.0551716685295105,
    ]
    half = np.float32(0.5).view(np.uint32)
    # Every 1009th float32 of [0, 1/2] and of [-1/2, 0] (bit patterns).
    pos = np.arange(0, half + 1, 1009, dtype=np.uint32).view(np.float32)
    neg = -np.arange(504, half + 1, 1009, dtype=np.uint32).view(np.float32)
    rng = np.random.default_rng(0)
    wide = rng.uniform(-125.5, 0.5, size=1_000_000).astype(np.float32)
    for x in (neg, pos, wide, np.arange(-125, 1, dtype=np.float32)):
        r = exp2_poly(x).astype(np.float64)
        exact = np.exp2(x.astype(np.float64))
        assert np.max(np.abs(r / exact - 1)) <= EXP2_POLY_REL
    tiny = exp2_poly(np.array([-125.75, -126.0, -200.0, -np.inf], dtype=np.float32)).astype(np.float64)
    assert np.all((tiny > 0) & (tiny < 2.0**-125))


def test_check_scripts_know_the_compilers_exp2_poly_default():
    """scripts/gpu/check.py adds the polynomial's error to the outlier
    checks' bound by configs.outlier_exp2_poly (the entry's flag, else
    OUTLIER_EXP2_POLY_DEFAULT): that default must be the compiler's, in each
    place that states it (the pass option, the pipeline option,
    unisparse-compile's flag, the options struct); otherwise a default
    library would be checked against the wrong bound."""
    import re

    root = Path(__file__).resolve().parents[2]
    (configs,) = gpu_scripts("configs")
    found = {
        "Passes.td": re.search(
            r'"outlier-exp2-poly", "int64_t", /\*default=\*/"(\d+)"',
            (root / "include/unisparse/Conversion/Passes.td").read_text(),
        ),
        "Pipelines.h": re.search(
            r'"score-outlier-exp2-poly",.*?llvm::cl::init\((\d+)\)',
            (root / "include/unisparse/Pipelines/Pipelines.h").read_text(),
            re.S,
        ),
        "unisparse-compile.cpp": re.search(
            r'"score-outlier-exp2-poly",.*?cl::init\((\d+)\)',
            (root / "tools/unisparse-compile/unisparse-compile.cpp").read_text(),
            re.S,
        ),
        "UnisparseToGPU.h": re.search(
            r"int64_t outlierExp2Poly = (\d+);",
            (root / "include/unisparse/Conversion/UnisparseToGPU/UnisparseToGPU.h").read_text(),
        ),
    }
    assert all(found.values()), found
    assert {k: int(m.group(1)) for k, m in found.items()} == dict.fromkeys(found, configs.OUTLIER_EXP2_POLY_DEFAULT)
    assert configs.outlier_exp2_poly([]) == configs.OUTLIER_EXP2_POLY_DEFAULT
    assert configs.outlier_exp2_poly(["--score-outlier-exp2-poly=8", "--score-outlier-exp2-poly=0"]) == 0


def _gpu_center_f32(x: np.ndarray, splits_max: int, min_tokens: int, rows: int, warps: int) -> np.ndarray:
    """The outlier compress's center of x [N, D] (f32) in the GPU kernels'
    order (OutlierCompressKernel.cpp): per = max(ceil(N / splits_max),
    min_tokens) tokens a split; row r of a split's `rows` sums its tokens r,
    r + rows, ... ascending, then the rows' sums in order; warp w sums
    splits w, w + warps, ... ascending; then the warps' sums in warp order;
    one division. Every add in f32."""
    n, d = x.shape
    per = max(min_tokens, -(-n // splits_max))
    splits = max(1, -(-n // per))
    row_sums = np.zeros((splits, rows, d), np.float32)
    for i in range(-(-per // rows)):
        for r in range(rows):
            idx = np.arange(splits) * per + r + i * rows
            ok = (r + i * rows < per) & (idx < n)
            row_sums[ok, r] = row_sums[ok, r] + x[idx[ok]]
    partial = row_sums[:, 0].copy()
    for r in range(1, rows):
        partial = partial + row_sums[:, r]
    warp_sums = np.zeros((warps, d), np.float32)
    for w in range(warps):
        for s in range(w, splits, warps):
            warp_sums[w] = warp_sums[w] + partial[s]
    total = np.zeros(d, np.float32)
    for w in range(warps):
        total = total + warp_sums[w]
    return total / np.float32(n)


def test_check_center_bound_covers_the_kernels_summation_order():
    """scripts/gpu/check.py's center_error bounds the GPU center's f32
    error from the kernels' summation order; simulate that order in f32
    (the split count, the CTA's threads and the warps read from
    OutlierCompressKernel.cpp and required equal to the bound's, so a change
    there without the bound fails here; one sequential sum over all the
    tokens errs 2.3-93x the bound at these lengths) at D 64, 128 and 256
    (32, 16 and 8 rows a CTA) on structured tokens (a common offset plus
    noise) and on constant coordinates (0.1, 1/3: every add rounds the same
    way, so the error grows with the depth of the sum) and require
    |f32 - float64| within the bound everywhere, and the bound within 64x
    of the largest error seen (not vacuous)."""
    import re

    root = Path(__file__).resolve().parents[2]
    src = (root / "lib/Conversion/UnisparseToGPU/OutlierCompressKernel.cpp").read_text()
    splits_max = int(re.search(r"constexpr int64_t kSplits = (\d+);", src).group(1))
    min_tokens = int(re.search(r"constexpr int64_t kMinSplitTokens = (\d+);", src).group(1))
    threads = int(re.search(r"constexpr int64_t kThreads = (\d+);", src).group(1))
    warps = int(re.search(r"constexpr int64_t kWarp = (\d+);", src).group(1))
    (check,) = gpu_scripts("check")
    assert (check.CENTER_SPLITS, check.CENTER_MIN_SPLIT_TOKENS, check.CENTER_THREADS, check.CENTER_WARPS) == (
        splits_max,
        min_tokens,
        threads,
        warps,
    )
    rng = np.random.default_rng(7)
    worst = 0.0
    for n, d in ((962, 128), (4099, 64), (20000, 128), (70000, 256)):
        rows = check.center_rows(d)
        offset = rng.normal(size=(1, 16)) * 8.0
        x = offset + rng.normal(size=(n, 16)) * 0.5 + rng.standard_t(3, size=(n, 16)) * 0.1
        x = np.concatenate([x, np.full((n, 1), 0.1), np.full((n, 1), 1 / 3)], axis=1).astype(np.float32)
        got = _gpu_center_f32(x, splits_max, min_tokens, rows, warps).astype(np.float64)
        exact = x.astype(np.float64).mean(axis=0)
        bound = check.center_error(x.astype(np.float64)[None, None], 1, rows)[0, 0]
        err = np.abs(got - exact)
        assert np.all(err <= bound), (n, float(np.max(err / bound)))
        worst = max(worst, float(np.max(err / bound)))
    assert worst > 1 / 64, worst


def test_check_center_rows_follow_the_element_width():
    """check.py's center_rows is the CTA's rows for the center's first
    stage: kThreads / chunks, a chunk 16 bytes of D (8 elements in 16 bits,
    4 in f32), one element where D is not a multiple of that
    (MeanPooling::chunkWidth, whose rule is read from CompressKernel.cpp).
    It took 16-bit chunks for every input before, so an f32 input's bound
    assumed twice its rows."""
    root = Path(__file__).resolve().parents[2]
    src = (root / "lib/Conversion/UnisparseToGPU/CompressKernel.cpp").read_text()
    assert "int64_t width = 16 * 8 / static_cast<int64_t>(input.getElementTypeBitWidth());" in src
    assert "headDim % width != 0)\n    return 1;" in src
    (check,) = gpu_scripts("check")
    assert check.CENTER_THREADS == 256
    cases = {(128, 2): 16, (64, 2): 32, (256, 2): 8, (128, 4): 8, (64, 4): 16, (40, 2): 51, (36, 2): 7, (36, 4): 28}
    for (d, eb), rows in cases.items():
        assert check.center_rows(d, eb) == rows, (d, eb)
    assert check.center_rows(128) == 16  # 16-bit by default
