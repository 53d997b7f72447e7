"""Config at its limits: every value that Config accepts reaches the compiler
in a form the MLIR parser reads back exactly, and every value the compiler or
the runtime would reject (or misread) is rejected by Config with a
ValueError naming the field."""

import math
import re
import struct
import subprocess

import numpy as np
import pytest

import unisparse
from unisparse import Config, _build
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import mlir_float, preset

INT64_MAX = 2**63 - 1
FLT_MAX = float(np.finfo(np.float32).max)
TINY = [5e-324, 1e-323, 2.2250738585072009e-308, 2.2250738585072014e-308, 1e-300, 1e-5, 5e-5]
HUGE = [1e30, FLT_MAX, 1e300, 1.7976931348623157e308]


def _read_float(text: str) -> float:
    """An MLIR float literal: decimal, or hexadecimal bits of an f64."""
    if text.lower().startswith("0x"):
        return struct.unpack("<d", struct.pack("<Q", int(text, 16)))[0]
    return float(text)


def _bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


@pytest.mark.parametrize("x", [0.0, -0.0, 1.0, 0.1, 1 / 3, -2.5] + TINY + HUGE + [-v for v in TINY + HUGE])
def test_mlir_float_is_read_back_exactly_by_the_mlir_parser(x):
    text = mlir_float(x)
    module = f"func.func @f() -> f64 {{\n  %c = arith.constant {text} : f64\n  return %c : f64\n}}\n"
    proc = subprocess.run(
        [str(_build.build_dir() / "bin" / "unisparse-opt")], input=module, capture_output=True, text=True
    )
    assert proc.returncode == 0, (text, proc.stderr)
    printed = re.search(r"arith.constant (\S+) : f64", proc.stdout).group(1)
    assert _bits(_read_float(printed)) == _bits(x), (x, text, printed)


def _compiled_entry(cfg: Config) -> str:
    proc = subprocess.run(
        [
            str(_build.compiler_path()),
            f"--config={cfg.mlir_attr()}",
            "--heads=2",
            "--kv-heads=1",
            "--head-dim=8",
            "--dtype=f32",
            "--emit=entry",
            "-o",
            "-",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, (cfg.mlir_attr(), proc.stderr)
    return proc.stdout


@pytest.mark.parametrize("tau", TINY + [0.5, math.nextafter(1.0, 0.0), 1.0])
def test_config_tau_reaches_the_compiler_exactly(tau):
    # Every op that carries it (the CPU entry module holds the estimation's
    # stages, `tau = <f64> : f64`; a unisparse.attention's config `tau = <f64>`).
    entry = _compiled_entry(preset("mean", block=32, c_q=8, c_k=8, tau=tau))
    printed = re.findall(r"\btau = ([^,>}\s]+)", entry)
    assert printed and all(_read_float(x) == tau for x in printed), (tau, printed)


@pytest.mark.parametrize("scale", [1.401298464324817e-45, 1e-40, 1e-5, 1e30, FLT_MAX])
def test_config_scale_reaches_the_compiler_exactly(scale):
    entry = _compiled_entry(preset("mean", block=32, c_q=8, c_k=8, scale=scale))
    printed = re.findall(r"\bscale = ([^,>}\s]+)", entry)
    assert printed and all(_read_float(x) == scale for x in printed), (scale, printed)


@pytest.mark.parametrize("field,value", [("scale", 1e-5), ("tau", 5e-5), ("tau", 1e-300), ("scale", 1e-44)])
def test_small_floats_compile_and_match_the_reference(field, value):
    q, k, v = S.structured_qkv(1, 2, 1, 96, 16, seed=7, peak=1.5)
    cfg = preset("mean", block=32, c_q=8, c_k=8, **{field: value})
    r = unisparse.attention(q, k, v, cfg, return_layout=True)
    o_ref, _, c_ref, i_ref = R.unisparse_attention(*(x.astype(np.float64) for x in (q, k, v)), **cfg.reference_kwargs())
    np.testing.assert_array_equal(r.counts, c_ref)
    np.testing.assert_array_equal(r.indices, i_ref)
    assert R.relative_l2(r.output, o_ref) < 2e-5


INT_FIELDS = ["block", "c_q", "c_k", "c_h", "local_blocks", "min_blocks", "max_blocks"]


@pytest.mark.parametrize("name", INT_FIELDS)
def test_ints_beyond_int64_are_rejected(name):
    with pytest.raises(ValueError, match=rf"Config: '{name}' must fit in a signed 64-bit integer"):
        Config(**{name: 2**63})


@pytest.mark.parametrize("name", INT_FIELDS + ["tau", "scale"])
def test_bools_are_not_numbers(name):
    for value in (True, False):
        with pytest.raises(TypeError, match=rf"Config: '{name}' must be an? (int|float), found {value}"):
            Config(**{name: value})


@pytest.mark.parametrize("scale", [3.5e38, 1e39, 1e300, 1.7976931348623157e308])
def test_scales_that_overflow_float32_are_rejected(scale):
    with pytest.raises(ValueError, match=r"Config: 'scale' must be non-negative and at most the largest f32"):
        Config(scale=scale)
    assert Config(scale=FLT_MAX).scale == FLT_MAX  # the largest float32 itself is fine


@pytest.mark.parametrize("scale", [5e-324, 1e-300, 1e-46])
def test_scales_that_round_to_zero_in_float32_are_rejected(scale):
    # float32(scale) = 0 would select 1/sqrt(D): another softmax than asked.
    with pytest.raises(ValueError, match=r"Config: 'scale' must not round to 0 in f32"):
        Config(scale=scale)
    assert Config(scale=1.401298464324817e-45).scale > 0  # float32's smallest subnormal


def test_parse_applies_the_same_limits():
    with pytest.raises(ValueError, match="must fit in a signed 64-bit integer"):
        Config.parse(f"local_blocks={2**63}")
    with pytest.raises(ValueError, match="at most the largest f32"):
        Config.parse("scale=3.5e38")
    with pytest.raises(TypeError, match="'tau' must be a float"):
        Config.parse({"tau": True})


def test_block_whose_own_score_map_cannot_be_addressed_is_rejected():
    with pytest.raises(ValueError, match=r"Config: 'block' \(1099511627776\) is too large for 'c_q' \(1\)"):
        Config(block=2**40, c_q=1, c_k=1)
    Config(block=2**62, c_q=2**62, c_k=2**62)  # one composite per block: fine


COUNTS = ["local_blocks", "min_blocks", "max_blocks"]


@pytest.mark.parametrize("field", COUNTS)
def test_block_counts_are_bounded_by_2_62(field):
    with pytest.raises(ValueError, match=rf"Config: '{field}' must be at most 2\^62"):
        Config(**{field: 2**62 + 1})
    with pytest.raises(ValueError, match=rf"Config: '{field}' must be at most 2\^62"):
        Config(**{field: INT64_MAX})


@pytest.mark.parametrize("field", COUNTS)
def test_largest_block_counts_compile_and_run(field):
    # What Config accepts, the compiler accepts too, and the result is the
    # reference's (such a count keeps every block, or caps nothing).
    kw = {field: 2**62}
    cfg = preset("mean", block=32, c_q=8, c_k=8, tau=0.5, **kw)
    q, k, v = S.structured_qkv(1, 2, 1, 100, 16, seed=2, peak=1.5)
    r = unisparse.attention(q, k, v, cfg, return_layout=True)
    o_ref, _, c_ref, i_ref = R.unisparse_attention(*(x.astype(np.float64) for x in (q, k, v)), **cfg.reference_kwargs())
    np.testing.assert_array_equal(r.counts, c_ref)
    np.testing.assert_array_equal(r.indices, i_ref)
    assert R.relative_l2(r.output, o_ref) < 2e-5
