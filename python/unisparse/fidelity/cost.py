"""The scoring cost of each estimator, in multiply-adds and exponentials.

Counted per query head, exactly, for sequence length ``N`` and head dim
``D``, as the estimators compute: a multiply-add is one product accumulated
into a sum (``x += a * b``); passes that only add (means, the pooling of
heads) are not counted, for any estimator. The unit of comparison is dense
attention's ``QKᵀ``: ``N² D`` multiply-adds, ``N (N + 1) / 2 · D`` causal.

With ``Tq = ceil(N / c_q)`` query and ``Tk = ceil(N / c_k)`` key composites,
``V`` is the number of visible composite pairs: ``Tq Tk``, or causal the
pairs ``(t, u)`` with ``u c_k <= (t + 1) c_q - 1`` (summed exactly, so a
key composite that a query composite sees only in part counts whole, as
the estimators compute it). Per head group:

=================  ===========================================================  =============================
estimator          multiply-adds                                                 exponentials
=================  ===========================================================  =============================
``mean``           ``V D``: one dot product per composite pair                  ``V``
``antidiag``       ``V s D`` (stride ``s = c_q = c_k``): one per slot pair      ``V``
``antidiag_lse``   the same                                                     ``V (s + 1)``
``outlier``        ``V nq sk D + Tk sk D + 4 N D``                              ``2 V nq sk``
=================  ===========================================================  =============================

For ``outlier``, ``nq = q_outliers + 1`` query slots and ``sk = k_outliers
+ 1`` key slots: the slot logits ``V nq sk D``, the squared norms of the key
slots (the spread correction) ``Tk sk D``, and the compression: the squared
distance of every token to the center (queries and keys), the spread of the
queries' rest and the heat ``x . probe`` of every key, ``N D`` each. Its
exponentials are its two softmaxes (the CPU lowering computes each once
more, for the row sums). A head group of ``c_h`` heads shares all of it:
per head, divide by ``c_h``. Mean pooling at ``c_q = 16, c_k = 8`` (the
default when issue 17 set the cost budget; the `mean` preset now) is ``N² D / 128`` non-causal, about half that causal.

The two-level refinement (``refine = "slash"`` with ``last_q = m``,
causal only; :func:`unisparse.reference.twolevel.refine`) adds, per query head (each head of a
group computes its own rows): the exact logits of the ``m`` last queries
against the keys they see, ``(m N - m (m - 1) / 2) D``; and, for each of
the ``r = rows_per_block`` probe rows of each of the ``NB = ceil(N / block)``
query blocks, its logits against the keys of its forced blocks (at most
``(local_blocks + 2) block``: the sink block, the diagonal and
``local_blocks`` before it) and against the ``(2 width + 1) n_offsets``
slash candidates, counted at that bound: ``NB r ((local_blocks + 2) block
+ (2 width + 1) n_offsets) D``. As many exponentials. At ``m = 16``, ``D =
128``, block 128: ``0.33x`` the default's multiply-adds at 32K and
``0.083x`` at 128K.
"""

from __future__ import annotations

__all__ = ["scoring_cost", "visible_pairs", "DEFAULT_COST_CONFIG"]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


#: The estimator every cost is also compared with: mean pooling, c_q = 16,
#: c_k = 8, one head per group (the default when issue 17 set its budget of
#: 2x these multiply-adds; the `mean` preset's c_k now).
DEFAULT_COST_CONFIG = dict(estimator="mean", c_q=16, c_k=8, c_h=1, q_outliers=1, k_outliers=2)


def visible_pairs(N: int, c_q: int, c_k: int, causal: bool) -> int:
    """The composite pairs ``(t, u)`` the scoring visits: every one, or
    causal those with ``u c_k <= (t + 1) c_q - 1``."""
    tq, tk = _ceil_div(N, c_q), _ceil_div(N, c_k)
    if not causal:
        return tq * tk
    return sum(min(tk, ((t + 1) * c_q - 1) // c_k + 1) for t in range(tq))


def _raw(estimator, c_q, c_k, rq, rk, N, D, causal):
    """Multiply-adds and exponentials of one head group."""
    V = visible_pairs(N, c_q, c_k, causal)
    if estimator == "mean":
        return V * D, V
    if estimator in ("antidiag", "antidiag_lse"):
        return V * c_q * D, V * (c_q + 1 if estimator == "antidiag_lse" else 1)
    if estimator == "outlier":
        nq, sk = rq + 1, rk + 1
        return V * nq * sk * D + _ceil_div(N, c_k) * sk * D + 4 * N * D, 2 * V * nq * sk
    raise ValueError(f"no cost model for estimator {estimator!r}")


def _refinement(cfg, N: int) -> int:
    """Dot products of the two-level refinement per query head (0 without one)."""
    if getattr(cfg, "refine", "none") != "slash":
        return 0
    m = min(cfg.last_q, N)
    per_row = (cfg.local_blocks + 2) * cfg.block + (2 * cfg.width + 1) * cfg.n_offsets
    return m * N - m * (m - 1) // 2 + _ceil_div(N, cfg.block) * cfg.rows_per_block * per_row


def scoring_cost(cfg, N: int, D: int) -> dict:
    """Cost of scoring one query head with ``cfg`` (a
    :class:`unisparse.Config` or an object with its fields):
    ``dict(madds, exps, rel_dense, rel_default, exps_rel_default)``, where
    ``rel_dense`` is ``madds`` over dense ``QKᵀ`` (``N² D``, ``N (N + 1) / 2
    · D`` causal) and the ``*_rel_default`` are over mean pooling at ``c_q =
    16, c_k = 8`` with the same causality."""
    c_h = getattr(cfg, "c_h", 1)
    rq, rk = getattr(cfg, "q_outliers", 1), getattr(cfg, "k_outliers", 2)
    madds, exps = _raw(cfg.estimator, cfg.c_q, cfg.c_k, rq, rk, N, D, cfg.causal)
    madds, exps = madds / c_h, exps / c_h
    extra = _refinement(cfg, N)
    madds += extra * D
    exps += extra
    d = DEFAULT_COST_CONFIG
    dm, de = _raw(d["estimator"], d["c_q"], d["c_k"], d["q_outliers"], d["k_outliers"], N, D, cfg.causal)
    dense = (N * (N + 1) // 2 if cfg.causal else N * N) * D
    return dict(madds=madds, exps=exps, rel_dense=madds / dense, rel_default=madds / dm, exps_rel_default=exps / de)
