"""`unisparse.Config`: the knobs of a UniSparse attention, and their MLIR form."""

from __future__ import annotations

import dataclasses
import math


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _convert(name: str, kind: str, value):
    """`value` (text or a Python value) as the field's type."""
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() not in _TRUE + _FALSE:
                    raise ValueError
                return value.lower() in _TRUE
            if not isinstance(value, (bool, int)) or value not in (0, 1):
                raise ValueError
            return bool(value)
        if kind == "int":
            if isinstance(value, bool) or (not isinstance(value, str) and int(value) != value):
                raise ValueError
            return int(value)
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Config.{name} must be {kind}, got {value!r}") from None


@dataclasses.dataclass(frozen=True)
class Config:
    """Configuration of a UniSparse attention (see docs/Rationale.md).

    ``tau = 1`` (or ``min_blocks`` at least the number of key blocks) keeps
    every visible block, i.e. dense attention. ``max_blocks = 0`` means no
    cap; ``scale = 0`` means ``1/sqrt(head_dim)``.
    """

    block: int = 128
    c_q: int = 16
    c_k: int = 8
    c_h: int = 1
    tau: float = 0.99
    local_blocks: int = 1
    sink: bool = True
    min_blocks: int = 0
    max_blocks: int = 0
    causal: bool = True
    scale: float = 0.0

    def __post_init__(self):
        for name in ("block", "c_q", "c_k", "c_h"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Config.{name} must be a positive int, got {value!r}")
        if self.block % self.c_q or self.block % self.c_k:
            raise ValueError(
                f"Config.block ({self.block}) must be a multiple of c_q ({self.c_q}) "
                f"and c_k ({self.c_k})")
        if not (0.0 < self.tau <= 1.0):
            raise ValueError(f"Config.tau must be in (0, 1], got {self.tau!r}")
        for name in ("local_blocks", "min_blocks", "max_blocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Config.{name} must be a non-negative int, got {value!r}")
        if self.max_blocks and self.min_blocks > self.max_blocks:
            raise ValueError(
                f"Config.min_blocks ({self.min_blocks}) exceeds max_blocks ({self.max_blocks})")
        if not (self.scale >= 0.0) or math.isinf(self.scale):
            raise ValueError(f"Config.scale must be finite and >= 0, got {self.scale!r}")

    @classmethod
    def parse(cls, spec) -> "Config":
        """The one parser of configurations: a :class:`Config` (returned as
        is), a mapping of field names to values, or the text form
        ``"tau=0.95,c_k=8"`` (the form of ``unisparse-compile --config``,
        the fidelity harness and the demo). Unknown fields and values of
        the wrong kind raise ``ValueError``."""
        if isinstance(spec, cls):
            return spec
        if isinstance(spec, str):
            items = []
            for part in filter(None, (p.strip() for p in spec.split(","))):
                name, eq, value = part.partition("=")
                if not eq:
                    raise ValueError(f"expected field=value, got {part!r} in {spec!r}")
                items.append((name.strip(), value.strip()))
        elif isinstance(spec, dict):
            items = list(spec.items())
        else:
            raise TypeError(f"a Config is given as a Config, a dict or 'field=value,...' text, "
                            f"got {type(spec).__name__}")
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        kw = {}
        for name, value in items:
            if name not in kinds:
                raise ValueError(f"unknown Config field {name!r} (fields: {', '.join(kinds)})")
            kw[name] = _convert(name, kinds[name], value)
        return cls(**kw)

    def mlir_attr(self) -> str:
        """The ``#unisparse.config<...>`` attribute, every field spelled out."""
        b = lambda x: "true" if x else "false"  # noqa: E731
        return (
            f"#unisparse.config<block = {self.block}, c_q = {self.c_q}, c_k = {self.c_k}, "
            f"c_h = {self.c_h}, tau = {float(self.tau)!r}, local_blocks = {self.local_blocks}, "
            f"sink = {b(self.sink)}, min_blocks = {self.min_blocks}, "
            f"max_blocks = {self.max_blocks}, causal = {b(self.causal)}, "
            f"scale = {float(self.scale)!r}>")

    def reference_kwargs(self) -> dict:
        """Keyword arguments of :func:`unisparse.reference.unisparse_attention`."""
        d = dataclasses.asdict(self)
        d["scale"] = None if self.scale == 0.0 else self.scale
        return d
