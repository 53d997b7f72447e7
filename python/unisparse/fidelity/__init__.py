"""Fidelity harness: how much of dense attention a configuration keeps.

    python -m unisparse.fidelity [--n 8192 16384 32768] [--sweep quick|default|wide]
                                 [--config tau=0.95,c_k=8 ...] [--png fidelity.png]

For each sequence length it generates structured Q/K/V
(:func:`unisparse.synthetic.structured_qkv`: sinks, local windows, vertical
and slash lines, GQA, needle spans at random depths; ``--peak`` sharpens the
whole map), computes the block layout of every configuration with the NumPy
reference (:mod:`unisparse.reference`; its layouts equal the compiled path's
bit for bit, ``--check-compiled`` verifies that on the first length), and
measures it against dense attention in float64:

* **density**: kept (query block, key block) pairs / pairs of the causal
  block grid (exact, all rows); **floor**: the density an exact top-p on
  the true block masses needs for the *same mean recall*
  (:func:`oracle_curve`, :func:`floor_at`), the floor of any estimator on
  this data, and **ratio** = density / floor; **ratio_f**: the same against
  an exact top-p that keeps the estimators' forced blocks too (sink,
  diagonal, ``local_blocks``; ``oracle_curve(local_blocks=...)``);
* **recall**: per query row, the share of its dense softmax mass that falls
  in the kept blocks; reported as the mean over rows, the 1st percentile over
  rows (``p1``), and the 1st percentile over (head, query block) of the
  per-block mean (``blk_p1``);
* **needles**: share of (needle, query head, needle query row) whose layout
  row keeps every key block of the needle's key span
  (:func:`unisparse.synthetic.needle_hit_rate`, exact, all rows);
  ``spans`` counts needle spans kept for every head and row; ``spans_row``
  the spans that the exact top-p of each query *row* on its own true masses
  keeps at the configuration's ``tau`` (:func:`row_oracle_spans`): a span
  it drops is one that some head's row does not need for ``tau`` of its
  mass, so ``spans`` above ``spans_row`` is density spent on blocks the
  attention does not use there; ``lost`` (``spans_lost``) counts the spans
  the per-row top-p keeps and the layout drops: the needles the attention
  reads at ``tau`` that the estimate lost;
* **rel_l2**: ``||O_sparse - O_dense|| / ||O_dense||`` over the evaluated
  rows, where ``O_sparse`` is exact attention restricted to the layout (what
  the compiled kernel computes, up to its rounding);
* **heads** (JSON only, :func:`per_head`): per query head, the density of
  its group's layout, its own floor at its own mean recall, their ratio, and
  its mean and 1st-percentile recall: which heads hold a run's excess or its
  lost tail;
* **cost**: the scoring's multiply-adds over those of mean pooling at
  ``c_q = 16, c_k = 8`` (the budget's unit), from :mod:`.cost` (``cost_dense``:
  over dense ``QKᵀ``; ``exps``: exponentials over the default's), in the
  JSON rows with the run's ``peak``, ``seed`` and ``generator``
  (``--generator peaked``: :mod:`unisparse.peaked`) for
  ``python -m unisparse.fidelity.pareto`` (ratio against cost over seeds).

Sampling: recall and ``rel_l2`` need each evaluated row's dense softmax over
all ``N`` keys. Up to ``--full-rows`` tokens (default 8192) every row is
evaluated. Beyond it, ``--rows-per-block`` rows (default 8) are drawn
uniformly at random without replacement from every query block (seeded, the
same rows for every head and configuration): stratified sampling, so every
block, early and late, is represented equally and the per-block statistics
exist. Density and needle retrieval never sample. The dense pass is shared by
all configurations: per evaluated row it keeps the softmax mass and the
``p @ V`` partial sum of every key block (at the finest block size of the
sweep), so a configuration costs one small contraction, not an attention.
"""

from __future__ import annotations

from .harness import (
    GENERATORS,
    ORACLE_TAUS,
    SWEEPS,
    evaluate,
    family,
    floor_at,
    label,
    layouts,
    needle_rows,
    oracle_curve,
    parse_config,
    per_head,
    row_oracle_spans,
    run,
    sample_rows,
)
from .report import load_json, main, plot, table

__all__ = [
    "parse_config",
    "GENERATORS",
    "SWEEPS",
    "ORACLE_TAUS",
    "family",
    "label",
    "layouts",
    "sample_rows",
    "evaluate",
    "oracle_curve",
    "needle_rows",
    "row_oracle_spans",
    "floor_at",
    "per_head",
    "run",
    "table",
    "plot",
    "load_json",
    "main",
]
