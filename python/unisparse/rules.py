"""The rules of a UniSparse configuration and of its head counts, defined once.

Every Python layer calls these functions: :class:`unisparse.Config`, the
stages of the NumPy reference (:mod:`unisparse.reference`), the shape checks
of the compiled paths (``_core.check_shapes``, ``registry``, ``cpu``) and
the PyTorch op. The C++ side has the same rules as free functions in
``include/unisparse/Dialect/Unisparse/IR/ShapeRules.h``, called by the
parser and verifier of ``#unisparse.config``, by the op verifiers and by the
entry module of ``unisparse-compile``; both sides word each rule the same way
(``'block' (100) must be a multiple of 'c_q' (16)``), and
``test/python/test_rules.py`` feeds the same edge values through
:class:`~unisparse.Config`, the reference and the C API and checks that they
accept or reject together, for the same reason.

Kinds (a value of the wrong type) raise ``TypeError``; everything else
``ValueError``. A message starts with the quoted name of the field and ends
with ``found <value>``.

Rules of a configuration, in the order they are checked (the order of the C++
parser, then of ``ConfigAttr::verify``):

1. each field has its kind: ``int`` fields are integers (not ``bool``) that
   fit in a signed 64-bit integer, ``float`` fields real numbers (not
   ``bool``), ``bool`` fields booleans, and ``estimator`` /
   ``query_reduce`` one of :data:`ESTIMATORS` / :data:`QUERY_REDUCES`;
2. ``block``, ``c_q``, ``c_k``, ``c_h`` are positive, and ``block`` is a
   multiple of ``c_q`` and of ``c_k``;
3. ``tau`` is in (0, 1] (NaN is not);
4. ``local_blocks``, ``min_blocks``, ``max_blocks`` are block counts in
   [0, 2^62] (a count of at least the number of blocks already means all of
   them; the lowering adds a block index to ``local_blocks``, which must not
   overflow) and ``min_blocks <= max_blocks`` unless ``max_blocks = 0`` (no
   cap);
5. ``scale`` is non-negative and at most the largest f32 (the runtime and
   the kernels take it as an f32; 0 selects ``1/sqrt(head_dim)``), so
   neither NaN nor infinity, and a non-zero ``scale`` does not round to 0
   in f32 (which would select ``1/sqrt(head_dim)`` instead);
6. the antidiagonal estimators need ``c_q == c_k`` (the stride);
7. one block's score map, ``(block / c_q) x (block / c_k)`` f32 values, fits
   in 2^63 - 1 bytes (the lowering's buffers of one block have static
   sizes that must not overflow);
8. ``q_outliers`` and ``k_outliers`` are positive, and smaller than ``c_q``
   / ``c_k`` for the ``outlier`` estimator (which reads them);
9. ``last_q``, ``n_offsets`` and ``rows_per_block`` are positive, ``width``
   non-negative, all four at most 2^20; with
   ``refine`` ``slash`` (which reads them) also ``rows_per_block <= block``
   and ``causal`` (the last queries see every key); ``refine_norm`` only
   with ``refine`` ``slash`` (it changes that refinement's combination).
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "ESTIMATORS",
    "QUERY_REDUCES",
    "REFINES",
    "ANTIDIAGONAL",
    "CONFIG_KINDS",
    "INT64_MAX",
    "F32_MAX",
    "integer",
    "real",
    "boolean",
    "keyword",
    "positive",
    "non_negative",
    "multiple_of",
    "tau",
    "scale",
    "block_count",
    "min_max_blocks",
    "estimator_stride",
    "block_fits",
    "outliers",
    "refinement",
    "resolve_refine",
    "check_kind",
    "check_config",
    "check_heads",
    "gqa",
    "head_groups",
    "check_scale_arg",
    "check_positive_int",
    "check_non_negative_int",
]

#: Values of ``estimator``: the composite logit (mean pooling, XAttention's
#: antidiagonal, the outlier-aware antidiagonal, outlier composites with the
#: spread correction); ``UnisparseEnums.td``.
ESTIMATORS = ("mean", "antidiag", "antidiag_lse", "outlier")
#: Values of ``query_reduce``: how a block's query composites combine.
QUERY_REDUCES = ("sum", "max")
#: Values of ``refine``: the second level of the estimation (none, or the
#: slash refinement of ``unisparse.slash_refine``).
REFINES = ("none", "slash")
#: The estimators whose stride is ``c_q == c_k``.
ANTIDIAGONAL = ("antidiag", "antidiag_lse")

#: The kind of each configuration field, in the order of ``#unisparse.config``
#: (and of the :class:`unisparse.Config` dataclass): ``"int"``, ``"float"``,
#: ``"bool"`` or the tuple of allowed keywords.
CONFIG_KINDS = {
    "block": "int",
    "c_q": "int",
    "c_k": "int",
    "c_h": "int",
    "tau": "float",
    "local_blocks": "int",
    "sink": "bool",
    "min_blocks": "int",
    "max_blocks": "int",
    "causal": "bool",
    "scale": "float",
    "estimator": ESTIMATORS,
    "query_reduce": QUERY_REDUCES,
    "q_outliers": "int",
    "k_outliers": "int",
    "refine": REFINES,
    "last_q": "int",
    "n_offsets": "int",
    "rows_per_block": "int",
    "width": "int",
    "refine_norm": "bool",
}

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: The largest finite f32, 0x1.fffffep+127.
F32_MAX = float(np.finfo(np.float32).max)
#: The largest ``last_q``, ``n_offsets``, ``rows_per_block`` and ``width`` of
#: the refinement.
MAX_REFINE_PARAM = 2**20
#: The largest block count (``local_blocks``, ``min_blocks``, ``max_blocks``).
MAX_BLOCK_COUNT = 2**62


# --------------------------------------------------------------------------- #
# Kinds
# --------------------------------------------------------------------------- #


def integer(name: str, value) -> int:
    """``value`` as an ``int``: an integer (Python or NumPy, not ``bool``)
    that fits in a signed 64-bit integer (the dialect's ``int64_t``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be an int, found {value!r}")
    value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"'{name}' must fit in a signed 64-bit integer, found {value}")
    return value


def real(name: str, value) -> float:
    """``value`` as a ``float``: a real number (not ``bool``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"'{name}' must be a float, found {value!r}")
    return float(value)


def boolean(name: str, value) -> bool:
    """``value`` as a ``bool``: ``True`` or ``False`` (Python or NumPy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"'{name}' must be a bool, found {value!r}")
    return bool(value)


def keyword(name: str, value, choices) -> str:
    """``value``, one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"'{name}' must be one of {', '.join(choices)}, found {value!r}")
    return value


# --------------------------------------------------------------------------- #
# Values (ShapeRules.h: verifyPositive, verifyNonNegative, ...)
# --------------------------------------------------------------------------- #


def positive(name: str, value):
    if not value > 0:
        raise ValueError(f"'{name}' must be positive, found {value}")
    return value


def non_negative(name: str, value, note: str = ""):
    if not value >= 0:
        raise ValueError(f"'{name}' must be non-negative{' ' + note if note else ''}, found {value}")
    return value


def multiple_of(name: str, value, factor_name: str, factor):
    """``value`` is a multiple of ``factor`` (> 0)."""
    if value % factor:
        raise ValueError(f"'{name}' ({value}) must be a multiple of '{factor_name}' ({factor})")
    return value


def tau(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"'tau' must be in (0, 1], found {value!r}")
    return value


def scale(value: float) -> float:
    if not 0.0 <= value <= F32_MAX:
        raise ValueError(f"'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found {value!r}")
    if value > 0.0 and np.float32(value) == 0.0:
        raise ValueError(f"'scale' must not round to 0 in f32 (0 selects 1/sqrt(D)), found {value!r}")
    return value


def block_count(name: str, value, note: str = ""):
    """A count of blocks: in [0, 2^62]."""
    non_negative(name, value, note)
    if value > MAX_BLOCK_COUNT:
        raise ValueError(
            f"'{name}' must be at most 2^62 (a count of at least the number of blocks already means all), found {value}"
        )
    return value


def min_max_blocks(min_blocks: int, max_blocks: int):
    block_count("min_blocks", min_blocks)
    block_count("max_blocks", max_blocks, "(0: no cap)")
    if max_blocks and min_blocks > max_blocks:
        raise ValueError(f"'min_blocks' ({min_blocks}) must not exceed 'max_blocks' ({max_blocks})")


def estimator_stride(estimator: str, c_q: int, c_k: int):
    if estimator in ANTIDIAGONAL and c_q != c_k:
        raise ValueError(f"'estimator' {estimator} needs 'c_q' == 'c_k' (the stride), found {c_q} and {c_k}")


def block_fits(block: int, c_q: int, c_k: int):
    """One block's score map, ``(block / c_q) x (block / c_k)`` f32 values,
    fits in 2^63 - 1 bytes."""
    rq, rk = block // c_q, block // c_k
    if rq * rk * 4 > INT64_MAX:
        raise ValueError(
            f"'block' ({block}) is too large for 'c_q' ({c_q}) and 'c_k' ({c_k}): one block's score map, "
            f"{rq} x {rk} f32 values, needs more than 2^63 - 1 bytes"
        )


def outliers(estimator: str, c_q: int, c_k: int, q_outliers: int, k_outliers: int):
    """The outlier counts are positive; the ``outlier`` estimator keeps
    fewer outliers than a composite has tokens."""
    positive("q_outliers", q_outliers)
    positive("k_outliers", k_outliers)
    if estimator == "outlier":
        for name, value, size_name, size in (
            ("q_outliers", q_outliers, "c_q", c_q),
            ("k_outliers", k_outliers, "c_k", c_k),
        ):
            if value >= size:
                raise ValueError(
                    f"'{name}' ({value}) must be smaller than '{size_name}' ({size}) for 'estimator' outlier"
                )


def refinement(
    refine: str,
    block: int,
    causal: bool,
    last_q: int,
    n_offsets: int,
    rows_per_block: int,
    width: int,
    refine_norm: bool = False,
):
    """The slash refinement's parameters (``ShapeRules.h``:
    ``verifyRefinement``)."""
    positive("last_q", last_q)
    positive("n_offsets", n_offsets)
    positive("rows_per_block", rows_per_block)
    non_negative("width", width)
    for name, value in (
        ("last_q", last_q),
        ("n_offsets", n_offsets),
        ("rows_per_block", rows_per_block),
        ("width", width),
    ):
        if value > MAX_REFINE_PARAM:
            raise ValueError(f"'{name}' must be at most 2^20, found {value}")
    if refine != "slash":
        if refine_norm:
            raise ValueError(
                "'refine_norm' = true needs 'refine' = slash (it normalises the slash refinement), "
                f"found refine = {refine}"
            )
        return
    if rows_per_block > block:
        raise ValueError(f"'rows_per_block' ({rows_per_block}) must not exceed 'block' ({block}) for 'refine' slash")
    if not causal:
        raise ValueError("'refine' slash needs 'causal' = true (the last queries see every key), found causal = false")


def resolve_refine(causal, refine, refine_norm):
    """``(refine, refine_norm)`` with an omitted one (``None``) given its
    default, as the parser of ``#unisparse.config`` does
    (``ConfigAttr::defaultRefine`` / ``defaultRefineNorm``): ``refine`` is
    ``"slash"`` for causal attention and ``"none"`` otherwise (the slash
    refinement needs causal attention), ``refine_norm`` true iff ``refine``
    is ``"slash"``. Values given are returned as they are (and checked by
    :func:`refinement`)."""
    if refine is None:
        refine = "slash" if isinstance(causal, (bool, np.bool_)) and bool(causal) else "none"
    if refine_norm is None:
        refine_norm = refine == "slash"
    return refine, refine_norm


# --------------------------------------------------------------------------- #
# A whole configuration; head counts
# --------------------------------------------------------------------------- #


def check_kind(name: str, value):
    """``value`` of configuration field ``name`` converted to its kind."""
    kind = CONFIG_KINDS[name]
    if kind == "int":
        return integer(name, value)
    if kind == "float":
        return real(name, value)
    if kind == "bool":
        return boolean(name, value)
    return keyword(name, value, kind)


def check_config(fields) -> dict:
    """Checks a complete configuration (a mapping with every field of
    :data:`CONFIG_KINDS`) and returns it with each value converted to its
    kind. Raises on the first rule broken, in the order of the module
    docstring (the order in which the C++ parser and verifier report)."""
    missing = [name for name in CONFIG_KINDS if name not in fields]
    if missing:
        raise TypeError(f"a configuration needs every field; missing {', '.join(missing)}")
    c = {name: check_kind(name, fields[name]) for name in CONFIG_KINDS}
    for name in ("block", "c_q", "c_k", "c_h"):
        positive(name, c[name])
    multiple_of("block", c["block"], "c_q", c["c_q"])
    multiple_of("block", c["block"], "c_k", c["c_k"])
    tau(c["tau"])
    block_count("local_blocks", c["local_blocks"])
    min_max_blocks(c["min_blocks"], c["max_blocks"])
    scale(c["scale"])
    estimator_stride(c["estimator"], c["c_q"], c["c_k"])
    block_fits(c["block"], c["c_q"], c["c_k"])
    outliers(c["estimator"], c["c_q"], c["c_k"], c["q_outliers"], c["k_outliers"])
    refinement(
        c["refine"],
        c["block"],
        c["causal"],
        c["last_q"],
        c["n_offsets"],
        c["rows_per_block"],
        c["width"],
        c["refine_norm"],
    )
    return c


def check_heads(heads, kv_heads, head_dim, c_h) -> None:
    """The head counts of an attention: ``heads`` (query heads Hq),
    ``kv_heads`` (Hkv) and ``head_dim`` positive, Hq a multiple of Hkv (GQA)
    and of the head-group size ``c_h``. The sizes may be symbolic (the
    PyTorch op's fake implementation): only comparisons and ``%``."""
    positive("heads", heads)
    positive("kv_heads", kv_heads)
    positive("head_dim", head_dim)
    gqa(heads, kv_heads)
    head_groups(heads, c_h)


def gqa(heads, kv_heads) -> None:
    """Query heads are a multiple of the (positive) key/value heads."""
    if heads % kv_heads:
        raise ValueError(f"query heads ({heads}) must be a multiple of key/value heads ({kv_heads}) (GQA)")


def head_groups(heads, c_h) -> None:
    """Query heads are a multiple of the head-group size ``c_h``."""
    if heads % c_h:
        raise ValueError(f"query heads ({heads}) must be a multiple of 'c_h' ({c_h})")


def check_scale_arg(value) -> float | None:
    """The ``scale`` argument of the reference's stages: ``None`` (or 0)
    selects ``1/sqrt(D)``; anything else must pass :func:`scale`."""
    if value is None:
        return None
    value = scale(real("scale", value))
    return None if value == 0.0 else value


def check_positive_int(name: str, value) -> int:
    """An integer argument that must be positive (``block``, a factor)."""
    return positive(name, integer(name, value))


def check_non_negative_int(name: str, value) -> int:
    """An integer argument that must be non-negative (``local_blocks``)."""
    return non_negative(name, integer(name, value))
