"""The scoring cost of each estimator, in multiply-adds and exponentials.

One head group, sequence length ``N``, head dim ``D``. The unit of
comparison is dense attention's ``QKᵀ``: ``N² D`` multiply-adds, half of it
when causal. Every estimator's dominant term is a product of composites
(``D`` multiply-adds per composite pair, or per slot pair); causal scoring
visits about half of the pairs, so that term is halved too, as for dense
attention. Exponentials are counted apart (on a GPU one costs far more
than a multiply-add on the tensor cores, so a scheme can be cheap in
multiply-adds and still be dominated by them).

=================  ==========================================================  ==========================
estimator          multiply-adds (non-causal)                                   exponentials (non-causal)
=================  ==========================================================  ==========================
``mean``           ``Tq Tk D``, ``Tq = N/c_q``, ``Tk = N/c_k``                  ``Tq Tk``
``antidiag``       ``(N/s)² s D = N² D / s``                                    ``(N/s)²``
``antidiag_lse``   the same                                                     ``(N/s)² (s + 1)``
``outlier``        ``(rq + 1)(rk + 1) Tq Tk D`` + ``6 N D`` (compression)       ``2 (rq + 1)(rk + 1) Tq Tk``
=================  ==========================================================  ==========================

(``rq``, ``rk``: ``Config.q_outliers``, ``Config.k_outliers``; the
``outlier`` compression computes a center, a score and, for the queries,
a spread: about three passes of ``N D`` per side.) Mean pooling at
``c_q = 16, c_k = 8`` (the compiled default) is ``N² D / 128``: 1/128 of
dense ``QKᵀ``.
"""

from __future__ import annotations

__all__ = ["scoring_cost", "DEFAULT_COST_CONFIG"]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


#: The estimator every cost is also compared with: the compiled default
#: (mean pooling, c_q = 16, c_k = 8).
DEFAULT_COST_CONFIG = dict(estimator="mean", c_q=16, c_k=8, q_outliers=1, k_outliers=2)


def scoring_cost(cfg, N: int, D: int) -> dict:
    """Cost of scoring one head group with ``cfg`` (a :class:`unisparse.Config`
    or an object with its fields): ``dict(madds, exps, rel_dense,
    rel_default, exps_rel_default)``, where ``rel_dense`` is ``madds`` over
    dense ``QKᵀ`` (``N² D``, halved when causal) and the ``*_rel_default``
    are over mean pooling at ``c_q = 16, c_k = 8`` with the same causality."""
    madds, exps = _raw(
        cfg.estimator, cfg.c_q, cfg.c_k, getattr(cfg, "q_outliers", 1), getattr(cfg, "k_outliers", 2), N, D
    )
    d = DEFAULT_COST_CONFIG
    dm, de = _raw(d["estimator"], d["c_q"], d["c_k"], d["q_outliers"], d["k_outliers"], N, D)
    half = 0.5 if cfg.causal else 1.0
    madds, exps, dm, de = madds * half, exps * half, dm * half, de * half
    if cfg.estimator == "outlier":  # the compression is not halved by causality
        madds += 6 * N * D
    return dict(
        madds=madds, exps=exps, rel_dense=madds / (N * N * D * half), rel_default=madds / dm, exps_rel_default=exps / de
    )


def _raw(estimator, c_q, c_k, rq, rk, N, D):
    """Non-causal composite-product multiply-adds and exponentials."""
    if estimator == "mean":
        pairs = _ceil_div(N, c_q) * _ceil_div(N, c_k)
        return pairs * D, pairs
    if estimator in ("antidiag", "antidiag_lse"):
        pairs = _ceil_div(N, c_q) ** 2
        return pairs * c_q * D, pairs * (c_q + 1 if estimator == "antidiag_lse" else 1)
    if estimator == "outlier":
        pairs = (rq + 1) * (rk + 1) * _ceil_div(N, c_q) * _ceil_div(N, c_k)
        return pairs * D, 2 * pairs
    raise ValueError(f"no cost model for estimator {estimator!r}")
