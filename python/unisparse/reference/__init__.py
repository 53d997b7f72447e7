"""NumPy reference of the exact UniSparse semantics.

This module is the executable specification of the method described in
``DESIGN.md`` section 1.  Every compiled path (CPU pipeline, NVPTX pipeline,
runtime kernels) is checked against it, so it favours clarity and exactness
over speed; it is nevertheless vectorised enough for sequences of a few
thousand tokens.

Conventions
-----------
* ``q`` has shape ``[B, Hq, N, D]``; ``k`` and ``v`` have shape
  ``[B, Hkv, N, D]`` with ``Hq = G * Hkv`` (GQA).  Query head ``h`` reads kv
  head ``h // G``.
* A *head group* is ``c_h`` consecutive query heads; there are
  ``Hg = Hq / c_h`` groups and all heads of a group share one block layout.
  Query head ``h`` uses the layout of group ``h // c_h``.
* ``block`` (``S`` in the design) is the block size in tokens; ``N`` need not
  be a multiple of it: the last block is partial.  ``NB = ceil(N / block)``.
* All arithmetic is float64 except :func:`block_select`, whose threshold
  arithmetic is float32 on purpose (see its docstring).
* The softmax scale is ``1 / sqrt(D)`` unless given.
* The log-sum-exp (``lse``) uses the natural logarithm and includes the scale:
  ``lse[i] = log(sum_j exp(scale * q_i . k_j))`` over the keys visible to row
  ``i``.  A row that sees no key has ``o = 0`` and ``lse = -inf``.
"""

from __future__ import annotations

from .attention import block_sparse_attention, dense_attention, unisparse_attention
from .composites import compress, compress_strided
from .estimators import ESTIMATORS, QUERY_REDUCES, check_estimation
from .metrics import attention_recall, density, recall_summary, relative_l2
from .scores import block_score, estimate
from .selection import block_select, dense_layout, layout_mask

__all__ = [
    "ESTIMATORS",
    "QUERY_REDUCES",
    "check_estimation",
    "compress",
    "compress_strided",
    "block_score",
    "estimate",
    "block_select",
    "dense_layout",
    "layout_mask",
    "block_sparse_attention",
    "dense_attention",
    "unisparse_attention",
    "density",
    "relative_l2",
    "attention_recall",
    "recall_summary",
]
