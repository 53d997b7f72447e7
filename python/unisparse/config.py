"""`unisparse.Config`: the knobs of a UniSparse attention, and their MLIR form."""

from __future__ import annotations

import dataclasses
import math

from . import rules
from .rules import ESTIMATORS, QUERY_REDUCES, REFINES

__all__ = ["Config", "ESTIMATORS", "QUERY_REDUCES", "REFINES", "PRESETS", "preset"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def mlir_float(x: float) -> str:
    """`x` as an MLIR float literal that parses back to the same double.
    Python's shortest round-trip ``repr`` is exact, but drops the decimal
    point in exponent form (``1e-05``), which MLIR reads as an integer; the
    point is put back (``1.0e-05``)."""
    text = repr(float(x))
    if not math.isfinite(float(x)):
        raise ValueError(f"{text} has no MLIR float literal")
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + e + exponent


def text_items(spec: str) -> list:
    """The ``(name, value)`` pairs of the text form ``"tau=0.95,c_k=8"``
    (values as text); ``ValueError`` for a part without ``=``."""
    items = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"expected field=value, got {part!r} in {spec!r}")
        items.append((name.strip(), value.strip()))
    return items


def parse_fields(spec) -> dict:
    """The fields of a configuration given as ``"tau=0.95,c_k=8"`` text or
    a dict, by name, text values converted to their kind: what
    :meth:`Config.parse` builds a Config from (``ValueError`` for an unknown
    field or malformed text; the rules are checked by ``Config`` itself)."""
    if isinstance(spec, str):
        items = text_items(spec)
    elif isinstance(spec, dict):
        items = list(spec.items())
    else:
        raise TypeError(f"a Config is given as a Config, a dict or 'field=value,...' text, got {type(spec).__name__}")
    names = [f.name for f in dataclasses.fields(Config)]
    fields = {}
    for name, value in items:
        if name not in names:
            raise ValueError(f"unknown Config field {name!r} (fields: {', '.join(names)})")
        fields[name] = _from_text(name, value) if isinstance(value, str) else value
    return fields


def _from_text(name: str, text: str):
    """The value of field ``name`` written as text (``Config.parse``)."""
    kind = rules.CONFIG_KINDS[name]
    try:
        if kind == "bool":
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        return text
    except ValueError:
        raise ValueError(f"Config: '{name}' must be {kind}, found {text!r}") from None


@dataclasses.dataclass(frozen=True)
class Config:
    """Configuration of a UniSparse attention (see docs/Rationale.md).

    ``tau = 1`` (or ``min_blocks`` at least the number of key blocks) keeps
    every visible block, i.e. dense attention. ``max_blocks = 0`` means no
    cap; ``scale = 0`` means ``1/sqrt(head_dim)``.

    ``estimator`` picks the composite (``"mean"`` pooling, the XAttention
    ``"antidiag"`` sum, the outlier-aware ``"antidiag_lse"``; the
    antidiagonal ones use ``c_q == c_k`` as their stride; or ``"outlier"``:
    composites that keep ``q_outliers`` / ``k_outliers`` of their tokens
    apart, with the spread correction of
    :mod:`unisparse.reference.outlier`; the counts are read by that
    estimator only) and
    ``query_reduce`` how the query composites of a block are combined into
    its score (``"sum"`` or ``"max"``); see
    :func:`unisparse.reference.block_score`; the dialect carries both
    (``#unisparse.config``, ``unisparse.block_score``).

    The defaults are the ``peaked`` configuration (docs/Fidelity.md, "The
    default"): outlier composites (``c_q = 16`` with one outlier row,
    ``c_k = 32`` with a hot and a far key), the max over a block's query
    composites, ``tau = 0.9965`` and the normalised slash refinement. Mean
    pooling, the default before 2026-12-04 and the cheapest estimation for
    diffuse attention, is ``preset("mean")``.

    ``refine`` and ``refine_norm`` follow ``causal`` when not given
    (``None``): ``refine`` is ``"slash"`` for causal attention and
    ``"none"`` otherwise (the slash refinement needs causal attention), and
    ``refine_norm`` is true iff ``refine`` is ``"slash"``; both are stored
    resolved (``Config(causal=False).refine == "none"``), so ``==`` and
    :meth:`mlir_attr` see concrete values. Given explicitly, ``refine =
    "slash"`` with ``causal = False`` and ``refine_norm = True`` with
    ``refine = "none"`` raise ``ValueError``. A configuration remembers
    which of the two it resolved: ``dataclasses.replace(Config(),
    causal=False)`` resolves them again (the outlier first pass alone),
    while a value given to ``Config`` or changed by ``replace`` is kept (and
    checked). ``replace`` passes the unchanged fields as values, so giving
    it the value a resolved field already has counts as unchanged;
    ``refine=None`` asks for the resolution explicitly.

    ``refine = "slash"`` adds the second level of a two-level estimation
    (:func:`unisparse.reference.twolevel.refine`, the op
    ``unisparse.slash_refine`` between ``block_score`` and
    ``block_select``; causal only): the ``n_offsets`` slash offsets with the
    most evidence in the exact softmax of the ``last_q`` last queries, and
    ``rows_per_block`` exact probe rows per query block that score the keys
    within ``width`` of each offset against the forced blocks. The four are
    read with ``refine = "slash"`` only. ``refine_norm = True`` (with
    ``refine = "slash"`` only) normalises the refinement of each row by one
    plus its sum, ``R / (1 + sum_J R)``: the candidates' share of the forced
    keys, the candidates and the rest of the first pass, so that a row whose
    first pass misses mass cannot outweigh all of it (docs/Fidelity.md,
    "Two-level estimation").
    """

    block: int = 128
    c_q: int = 16
    c_k: int = 32
    c_h: int = 1
    tau: float = 0.9965
    local_blocks: int = 1
    sink: bool = True
    min_blocks: int = 0
    max_blocks: int = 0
    causal: bool = True
    scale: float = 0.0
    estimator: str = "outlier"
    query_reduce: str = "max"
    q_outliers: int = 1
    k_outliers: int = 2
    refine: str = None  # None: "slash" if causal else "none"
    last_q: int = 16
    n_offsets: int = 16
    rows_per_block: int = 8
    width: int = 1
    refine_norm: bool = None  # None: refine == "slash"
    #: The fields resolved from ``causal`` / ``refine`` and their values,
    #: carried by ``dataclasses.replace`` (an init-only pseudo-field: not in
    #: ``dataclasses.fields``, ``==``, ``repr`` or ``asdict``).
    _resolved: dataclasses.InitVar[tuple] = ()

    def __post_init__(self, _resolved=()):
        # A field that was resolved and still holds its resolved value (a
        # copy by dataclasses.replace) is resolved again.
        for name, value in _resolved or ():
            if getattr(self, name) == value:
                object.__setattr__(self, name, None)
        refine, refine_norm = rules.resolve_refine(self.causal, self.refine, self.refine_norm)
        resolved = tuple(
            (name, value)
            for name, given, value in (("refine", self.refine, refine), ("refine_norm", self.refine_norm, refine_norm))
            if given is None
        )
        object.__setattr__(self, "refine", refine)
        object.__setattr__(self, "refine_norm", refine_norm)
        object.__setattr__(self, "_resolved", resolved)
        # The rules live in unisparse.rules (shared with the reference and,
        # word for word, with the C++ verifier); values are stored converted
        # to their kind (e.g. a NumPy integer as an int).
        try:
            checked = rules.check_config({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        except (TypeError, ValueError) as e:
            raise type(e)(f"Config: {e}") from None
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def parse(cls, spec) -> "Config":
        """The one parser of configurations: a :class:`Config` (returned as
        is), a mapping of field names to values, or the text form
        ``"tau=0.95,c_k=8"`` (the form of ``unisparse-compile --config``,
        the fidelity harness and the demo). Unknown fields and malformed
        text raise ``ValueError``; values are then checked by
        :mod:`unisparse.rules` as for ``Config(...)`` (``TypeError`` for a
        value of the wrong kind, ``ValueError`` for a broken rule)."""
        if isinstance(spec, cls):
            return spec
        return cls(**parse_fields(spec))

    def mlir_attr(self) -> str:
        """The ``#unisparse.config<...>`` attribute, every field spelled out
        (the outlier counts with the estimator that reads them, the
        refinement's parameters and ``refine_norm`` with ``refine =
        "slash"``; ``refine`` always, since the dialect's default of an
        omitted ``refine`` follows ``causal``)."""
        b = lambda x: "true" if x else "false"  # noqa: E731
        outliers = (
            f", q_outliers = {self.q_outliers}, k_outliers = {self.k_outliers}" if self.estimator == "outlier" else ""
        )
        refine = (
            f", refine = slash, last_q = {self.last_q}, n_offsets = {self.n_offsets}, "
            f"rows_per_block = {self.rows_per_block}, width = {self.width}, refine_norm = {b(self.refine_norm)}"
            if self.refine == "slash"
            else ", refine = none"
        )
        return (
            f"#unisparse.config<block = {self.block}, c_q = {self.c_q}, c_k = {self.c_k}, "
            f"c_h = {self.c_h}, tau = {mlir_float(self.tau)}, local_blocks = {self.local_blocks}, "
            f"sink = {b(self.sink)}, min_blocks = {self.min_blocks}, "
            f"max_blocks = {self.max_blocks}, causal = {b(self.causal)}, "
            f"scale = {mlir_float(self.scale)}, estimator = {self.estimator}, "
            f"query_reduce = {self.query_reduce}{outliers}{refine}>"
        )

    def reference_kwargs(self) -> dict:
        """Keyword arguments of :func:`unisparse.reference.unisparse_attention`."""
        d = dataclasses.asdict(self)
        d["scale"] = None if self.scale == 0.0 else self.scale
        return d


#: Named configurations (docs/Fidelity.md, "The outlier estimator" and "The
#: default"):
#:
#: * ``"compiled"`` and ``"peaked"``: ``Config()``, the default of the
#:   dialect and of every compiled path: ``recommended`` refined by the slash
#:   refinement (``refine = "slash"``, ``last_q = 16``, 16 offsets, 8 probe
#:   rows per block, width 1), normalised (``refine_norm = True``), at ``tau
#:   = 0.9965`` (docs/Fidelity.md, "Two-level estimation" and "The peaked
#:   preset's tau"): for attention as peaked as real long-context heads; the
#:   refinement follows ``causal`` (``dataclasses.replace(preset("peaked"),
#:   causal=False)`` is the outlier first pass alone). Measured in float64 on
#:   the H200 on the project's generator, Hq 32 / Hkv 8, peak 2.5, seeds 0-2:
#:   density 1.12-1.29x the floor at 32K and 1.19-1.27x at 128K (mean
#:   pooling: 3.2-8.3x at 128K), recall p1 0.910-0.956 (tau 0.9965 measured
#:   on the two binding runs, the others between their 0.996 and 0.997
#:   values); at peak 1.5 1.02-1.06x; 1.87x mean pooling's scoring
#:   multiply-adds at 32K, 1.59x at 128K;
#: * ``"mean"``: mean pooling (``c_k = 8``, ``tau = 0.99``, the sum over a
#:   block's query composites, no refinement; ``refine_norm = False`` given,
#:   so that ``preset("mean", refine="slash")`` is the unnormalised
#:   refinement, as it was), the default before 2026-12-04: the cheapest estimation, for diffuse attention (3.2-8.3x the
#:   floor's density on peaked attention at 128K); the one the GPU
#:   pipeline's tensor-core scoring kernel takes;
#: * ``"recommended"``: the estimator chosen from the harness's Pareto plot
#:   for peaked attention: outlier composites (queries ``c_q = 16`` with one
#:   outlier row, keys ``c_k = 32`` with a hot and a far key), the spread
#:   correction, the max over a block's query composites, ``tau = 0.995``,
#:   no refinement (1.5x mean pooling's scoring multiply-adds);
#: * ``"mild"``: the same estimator at ``tau = 0.99``, for diffuse attention
#:   (within 1.1x of the floor there at a lower density);
#: * ``"conservative"``: the same estimator at ``tau = 0.998``.
#:
#: The compiled paths, the PyTorch op and ``attn_implementation="unisparse"``
#: run all of them.
_OUTLIER = dict(c_q=16, c_k=32, estimator="outlier", query_reduce="max", q_outliers=1, k_outliers=2, refine="none")
PRESETS = {
    "compiled": Config(),
    "mean": Config(c_k=8, tau=0.99, estimator="mean", query_reduce="sum", refine="none", refine_norm=False),
    "recommended": Config(tau=0.995, **_OUTLIER),
    "mild": Config(tau=0.99, **_OUTLIER),
    "conservative": Config(tau=0.998, **_OUTLIER),
    "peaked": Config(),
}


def preset(name: str, **changes) -> Config:
    """The named configuration ``name`` of :data:`PRESETS`, with the fields
    ``changes`` changed (``dataclasses.replace``): ``preset("mean",
    tau=0.95)`` is mean pooling at ``tau = 0.95``."""
    try:
        cfg = PRESETS[name]
    except KeyError:
        raise KeyError(f"no preset {name!r}; presets: {', '.join(PRESETS)}") from None
    return dataclasses.replace(cfg, **changes) if changes else cfg
