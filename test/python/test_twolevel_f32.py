"""The per-head-group judgement of a compiled refinement against its float64
oracle (unisparse.reference.twolevel_f32.offset_groups / judge_groups), as
scripts/gpu/check.py applies it to the GPU's refined scores: the oracle's
own scores pass, scores refined with a wrong offset fail in that group, and
a group with a near tie accepts either of the two tied offsets; with the
refinement normalised (refine_norm) as without."""

from types import SimpleNamespace

import numpy as np
import pytest

from unisparse.reference import twolevel
from unisparse.reference.twolevel_f32 import (
    DECIDED,
    OPEN,
    TIE,
    U,
    judge_groups,
    logit_error,
    offset_groups,
    refined_tolerance,
)

CFG = SimpleNamespace(
    block=64, last_q=16, c_h=1, local_blocks=1, sink=True, n_offsets=3, rows_per_block=8, width=1, scale=None
)
NORM = SimpleNamespace(**{**vars(CFG), "refine_norm": True})


def slash_inputs(seed, n=640, hq=4, hkv=2, d=32):
    """q, k float64 with slash lines: key j echoes query j + o for a few
    offsets o per kv head (weights decreasing), on random rows."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((1, hq, n, d))
    k = 0.3 * rng.standard_normal((1, hkv, n, d))
    for h in range(hkv):
        for w, o in zip((1.2, 0.9, 0.7, 0.5), rng.choice(np.arange(150, 500), 4, replace=False)):
            k[0, h, : n - o] += w * q[0, h * (hq // hkv), o:] / np.sqrt(d) * 4
    return q, k


def first_pass(q, n):
    """First-pass scores that see only the forced blocks (the sink and the
    local band) and next to nothing elsewhere, so the refinement decides the
    other blocks' scores."""
    nb = -(-n // CFG.block)
    rng = np.random.default_rng(7)
    s = rng.uniform(1e-7, 1e-6, (1, q.shape[1], nb, nb))
    I, J = np.arange(nb)[:, None], np.arange(nb)[None, :]
    forced = ((J <= I) & (J >= I - CFG.local_blocks)) | (J == 0)
    s = np.where(forced, rng.uniform(0.5, 1.0, s.shape), s)
    return np.where(J <= I, s, 0.0)


def judged(seed, cfg=CFG):
    q, k = slash_inputs(seed)
    dx = logit_error(q, k, q.shape[-1] ** -0.5)
    s = first_pass(q, q.shape[2])
    status, alt = offset_groups(q, k, cfg, dx)
    want = twolevel.refine_config(s, q, k, cfg)
    return q, k, s, dx, status, alt, want


def test_the_normalised_bound_is_the_composed_one():
    """refine_norm's bound: R's relative error eps_R composed with the row
    sum (gamma(NB), eps_R of its terms) and the add and the division (u
    each), about 2 eps_R + gamma(NB) + 2 u; without, eps_R."""
    want = np.ones((1, 1, 10, 10))
    dx = 1e-6
    eps_r = refined_tolerance(want, CFG, dx)[0, 0, 0, 0]
    eps_n = refined_tolerance(want, NORM, dx)[0, 0, 0, 0]
    assert 2 * eps_r + 10 * U < eps_n < 2 * eps_r + 10 * U * 1.01 + 2 * U


@pytest.mark.parametrize("cfg", [CFG, NORM], ids=["plain", "norm"])
def test_oracle_passes_and_a_wrong_offset_fails(cfg):
    q, k, s, dx, status, alt, want = judged(0, cfg)
    tol = refined_tolerance(want, cfg, dx)
    assert np.all(status == DECIDED)
    assert all(judge_groups(want, want, tol, status).ravel())
    # The float64 offsets of group 1 with its first one moved by 40 tokens:
    # the refinement of that group only changes, by far more than the bound.
    _, slash = twolevel.last_rows(q, k, CFG.last_q, c_h=CFG.c_h)
    offs = twolevel.slash_offsets(slash, CFG.n_offsets, CFG.local_blocks * CFG.block)
    assert offs[0, 1, 0] > 0
    bad = offs.copy()
    bad[0, 1, 0] += 40
    r = twolevel.refine_config(s, q, k, cfg, offsets=bad)
    verdict = judge_groups(r, want, tol, status)
    assert verdict[0, 1] is False
    assert [verdict[0, g] for g in (0, 2, 3)] == [True, True, True]


def test_a_tie_accepts_either_offset_and_nothing_else():
    q, k, s, dx, status, alt, want = judged(0)
    tol = refined_tolerance(want, CFG, dx)
    # Group 2 declared a near tie between its last kept offset and the next:
    # the refinement with the two exchanged passes there, as does float64's.
    status = status.copy()
    status[0, 2] = TIE
    _, slash = twolevel.last_rows(q, k, CFG.last_q, c_h=CFG.c_h)
    ev = np.where(np.arange(slash.shape[-1]) > CFG.local_blocks * CFG.block, slash[0, 2], -np.inf)
    order = np.argsort(-ev, kind="stable")
    alt = alt.copy()
    alt[0, 2, CFG.n_offsets - 1] = order[CFG.n_offsets]
    want_alt = twolevel.refine_config(s, q, k, CFG, offsets=alt)
    tol_alt = refined_tolerance(want_alt, CFG, dx)
    assert not np.all(np.abs(want_alt[0, 2] - want[0, 2]) <= tol[0, 2])
    for r in (want, want_alt):
        assert judge_groups(r, want, tol, status, want_alt, tol_alt)[0, 2] is True
    # A third offset in its place is neither.
    other = alt.copy()
    other[0, 2, CFG.n_offsets - 1] = order[CFG.n_offsets + 3]
    r = twolevel.refine_config(s, q, k, CFG, offsets=other)
    assert judge_groups(r, want, tol, status, want_alt, tol_alt)[0, 2] is False
    # An open group is not judged.
    status[0, 3] = OPEN
    assert judge_groups(want_alt, want, tol, status, want_alt, tol_alt)[0, 3] is None
