"""`unisparse.Config`: the knobs of a UniSparse attention, and their MLIR form."""

from __future__ import annotations

import dataclasses
import math


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
