"""One set of rules, three implementations that must agree.

The same edge values go through :class:`unisparse.Config`, the NumPy
reference (:func:`unisparse.reference.unisparse_attention`, which checks its
arguments with :mod:`unisparse.rules`) and the C++ verifier of
``#unisparse.config`` (parsed through the C API, ``libUnisparseCAPI.so``);
all three must accept, or reject for the same reason: the same rule, worded
the same way, up to the spelling of the value found. Head counts go through
``unisparse.compile``, the NumPy API and ``unisparse-compile``'s entry module
the same way.
"""

import ctypes
import dataclasses
import os
import pathlib
import re
import struct
import subprocess

import numpy as np
import pytest

from unisparse import Config, rules
from unisparse import reference as R
from unisparse.config import preset

BUILD = pathlib.Path(os.environ.get("UNISPARSE_BUILD_DIR", pathlib.Path(__file__).resolve().parents[2] / "build"))
I64 = 2**63


# --------------------------------------------------------------------------- #
# The C API (include/unisparse-c/Unisparse.h), through ctypes
# --------------------------------------------------------------------------- #


class _StringRef(ctypes.Structure):
    _fields_ = [("data", ctypes.c_char_p), ("length", ctypes.c_size_t)]


class _Handle(ctypes.Structure):  # MlirContext, MlirModule: { void *ptr; }
    _fields_ = [("ptr", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(None, _StringRef, ctypes.c_void_p)


@pytest.fixture(scope="module")
def capi():
    path = BUILD / "lib" / "libUnisparseCAPI.so"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: build the project first (scripts/setup.sh)")
    lib = ctypes.CDLL(str(path))
    lib.unisparseContextCreate.restype = _Handle
    lib.unisparseContextDestroy.argtypes = [_Handle]
    lib.unisparseModuleParse.restype = _Handle
    lib.unisparseModuleParse.argtypes = [_Handle, _StringRef, _CALLBACK, ctypes.c_void_p]
    lib.unisparseModuleDestroy.argtypes = [_Handle]
    ctx = lib.unisparseContextCreate()
    yield lib, ctx
    lib.unisparseContextDestroy(ctx)


def _mlir_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # the bits, exact for inf, NaN and every double
        return "0x%016X" % struct.unpack("<Q", struct.pack("<d", value))[0]
    return str(value)


def cpp_reason(capi, fields):
    """None if ``#unisparse.config<fields>`` parses and verifies, else the
    first diagnostic."""
    lib, ctx = capi
    # A field that is None is not given (refine and refine_norm then follow causal).
    attr = ", ".join(f"{k} = {_mlir_value(v)}" for k, v in fields.items() if v is not None)
    src = f"module attributes {{test.config = #unisparse.config<{attr}>}} {{}}".encode()
    diags = []
    cb = _CALLBACK(lambda s, _: diags.append(ctypes.string_at(s.data, s.length).decode()))
    module = lib.unisparseModuleParse(ctx, _StringRef(src, len(src)), cb, None)
    if module.ptr:
        lib.unisparseModuleDestroy(module)
        assert not diags, diags
        return None
    assert diags, f"the parse of {src!r} failed without a diagnostic"
    return re.sub(r"^loc\(.*?\): ", "", diags[0].strip())


# --------------------------------------------------------------------------- #
# Python: Config and the reference
# --------------------------------------------------------------------------- #


def config_reason(fields):
    try:
        Config(**fields)
    except ValueError as e:
        msg = str(e)
        assert msg.startswith("Config: "), msg
        return msg.removeprefix("Config: ")
    return None


def reference_reason(fields):
    """Runs the reference on tiny structured inputs (no tokens at all when a
    size is so large that a real sequence would not fit in memory)."""
    kw = dict(fields)
    if type(kw["scale"]) is float and kw["scale"] == 0.0:
        kw["scale"] = None
    n = 40 if max(kw["block"], kw["c_q"], kw["c_k"]) < 2**20 else 0
    rng = np.random.default_rng(7)
    q = rng.standard_normal((1, 2, n, 4)) + np.linspace(0, 2, n)[None, None, :, None]
    k = rng.standard_normal((1, 1, n, 4))
    try:
        o, _, counts, _ = R.unisparse_attention(q, k, k.copy(), **kw)
    except ValueError as e:
        return str(e)
    assert np.isfinite(o).all() and counts.shape[2] == -(-n // kw["block"])
    return None


def rule(message):
    """The rule a message states: the text before ``, found <value>`` (the
    spelling of a float differs between Python and C++), or all of it."""
    return None if message is None else message.partition(", found")[0]


#: Mean pooling, every field given (the default when the cases were written;
#: DEFAULT_CASES check the default's resolution).
BASE = dataclasses.asdict(preset("mean"))
#: The default: refine and refine_norm not given (None), resolved from causal.
DEFAULT = {f.name: f.default for f in dataclasses.fields(Config)}
AT_MOST_2_62 = "must be at most 2^62 (a count of at least the number of blocks already means all)"

# (overrides of Config(), the rule they break or None)
CASES = [
    ({}, None),
    (dict(block=0), "'block' must be positive"),
    (dict(block=-128), "'block' must be positive"),
    (dict(c_q=0), "'c_q' must be positive"),
    (dict(c_k=-8), "'c_k' must be positive"),
    (dict(c_h=0), "'c_h' must be positive"),
    (dict(block=100), "'block' (100) must be a multiple of 'c_q' (16)"),
    (dict(block=144, c_q=16, c_k=32), "'block' (144) must be a multiple of 'c_k' (32)"),
    (dict(tau=0.0), "'tau' must be in (0, 1]"),
    (dict(tau=-0.5), "'tau' must be in (0, 1]"),
    (dict(tau=1.0000001), "'tau' must be in (0, 1]"),
    (dict(tau=float("inf")), "'tau' must be in (0, 1]"),
    (dict(tau=float("nan")), "'tau' must be in (0, 1]"),
    (dict(tau=1.0), None),
    (dict(tau=5e-324), None),
    (dict(local_blocks=-1), "'local_blocks' must be non-negative"),
    (dict(min_blocks=-1), "'min_blocks' must be non-negative"),
    (dict(max_blocks=-3), "'max_blocks' must be non-negative (0: no cap)"),
    (dict(min_blocks=8, max_blocks=4), "'min_blocks' (8) must not exceed 'max_blocks' (4)"),
    (dict(min_blocks=8, max_blocks=0), None),
    (dict(min_blocks=4, max_blocks=4), None),
    (dict(scale=-0.5), "'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D))"),
    (dict(scale=float("inf")), "'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D))"),
    (dict(scale=float("-inf")), "'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D))"),
    (dict(scale=float("nan")), "'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D))"),
    (dict(scale=3.5e38), "'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D))"),
    (dict(scale=rules.F32_MAX), None),
    # f32 has no 1e-300: it would become 0, which selects 1/sqrt(D)
    (dict(scale=1e-300), "'scale' must not round to 0 in f32 (0 selects 1/sqrt(D))"),
    (dict(scale=1e-46), "'scale' must not round to 0 in f32 (0 selects 1/sqrt(D))"),
    (dict(scale=1.401298464324817e-45), None),
    (dict(scale=-0.0), None),
    (dict(scale=0.125), None),
    (dict(estimator="antidiag"), "'estimator' antidiag needs 'c_q' == 'c_k' (the stride)"),
    (dict(estimator="antidiag_lse", c_q=8, c_k=4), "'estimator' antidiag_lse needs 'c_q' == 'c_k' (the stride)"),
    (dict(estimator="antidiag_lse", c_q=8, c_k=8, query_reduce="max"), None),
    (dict(estimator="median"), "'estimator' must be one of mean, antidiag, antidiag_lse, outlier"),
    (dict(estimator="outlier", c_k=32, query_reduce="max"), None),
    (dict(estimator="outlier", q_outliers=3, k_outliers=7), None),
    (dict(q_outliers=0), "'q_outliers' must be positive"),
    (dict(k_outliers=-1), "'k_outliers' must be positive"),
    (dict(k_outliers=8), None),
    (
        dict(estimator="outlier", k_outliers=8),
        "'k_outliers' (8) must be smaller than 'c_k' (8) for 'estimator' outlier",
    ),
    (
        dict(estimator="outlier", q_outliers=16),
        "'q_outliers' (16) must be smaller than 'c_q' (16) for 'estimator' outlier",
    ),
    (dict(q_outliers=2**64), "'q_outliers' must fit in a signed 64-bit integer"),
    (dict(query_reduce="min"), "'query_reduce' must be one of sum, max"),
    (dict(refine="slash"), None),
    (dict(refine="slash", last_q=1, n_offsets=1, rows_per_block=128, width=0), None),
    (dict(refine="vertical"), "'refine' must be one of none, slash"),
    (dict(last_q=0), "'last_q' must be positive"),
    (dict(refine="slash", n_offsets=-2), "'n_offsets' must be positive"),
    (dict(rows_per_block=0), "'rows_per_block' must be positive"),
    (dict(width=-1), "'width' must be non-negative"),
    (dict(last_q=2**20 + 1), "'last_q' must be at most 2^20"),
    (dict(refine="slash", width=2**40), "'width' must be at most 2^20"),
    (dict(rows_per_block=256), None),
    (dict(rows_per_block=2**20 + 1, block=2**21), "'rows_per_block' must be at most 2^20"),
    (
        dict(refine="slash", rows_per_block=256),
        "'rows_per_block' (256) must not exceed 'block' (128) for 'refine' slash",
    ),
    (dict(causal=False, last_q=4), None),
    (dict(refine="slash", refine_norm=True), None),
    (dict(refine_norm=False), None),
    (
        dict(refine_norm=True),
        "'refine_norm' = true needs 'refine' = slash (it normalises the slash refinement)",
    ),
    (
        dict(refine_norm=True, causal=False),
        "'refine_norm' = true needs 'refine' = slash (it normalises the slash refinement)",
    ),
    (
        dict(refine="slash", causal=False),
        "'refine' slash needs 'causal' = true (the last queries see every key)",
    ),
    # huge sizes: the int64 range of the dialect
    (dict(block=I64), "'block' must fit in a signed 64-bit integer"),
    (dict(local_blocks=-I64 - 1), "'local_blocks' must fit in a signed 64-bit integer"),
    (dict(max_blocks=2**70), "'max_blocks' must fit in a signed 64-bit integer"),
    (dict(local_blocks=2**62, min_blocks=2**62, max_blocks=2**62), None),
    (dict(local_blocks=I64 - 1), f"'local_blocks' {AT_MOST_2_62}"),
    (dict(min_blocks=2**62 + 1), f"'min_blocks' {AT_MOST_2_62}"),
    (dict(max_blocks=I64 - 1), f"'max_blocks' {AT_MOST_2_62}"),
    (
        dict(block=2**40, c_q=1, c_k=1),
        "'block' (1099511627776) is too large for 'c_q' (1) and 'c_k' (1): one block's score map, "
        "1099511627776 x 1099511627776 f32 values, needs more than 2^63 - 1 bytes",
    ),
    (dict(block=2**62, c_q=2**62, c_k=2**61), None),
    (dict(block=I64 - 1, c_q=1, c_k=3), f"'block' ({I64 - 1}) must be a multiple of 'c_k' (3)"),
    # several broken rules: the first in the common order is reported
    (dict(block=0, tau=2.0), "'block' must be positive"),
    (dict(tau=2.0, scale=-1.0), "'tau' must be in (0, 1]"),
    (dict(scale=-1.0, estimator="antidiag"), "'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D))"),
    (dict(min_blocks=-1, local_blocks=-1), "'local_blocks' must be non-negative"),
]


# (overrides of the default, refine and refine_norm not given unless
# overridden, the rule they break or None): the refinement follows causal in
# every layer, explicit conflicts stay errors.
DEFAULT_CASES = [
    ({}, None),
    (dict(causal=False), None),
    (dict(causal=False, rows_per_block=256), None),
    (dict(rows_per_block=256), "'rows_per_block' (256) must not exceed 'block' (128) for 'refine' slash"),
    (dict(causal=False, refine="slash"), "'refine' slash needs 'causal' = true (the last queries see every key)"),
    (
        dict(causal=False, refine_norm=True),
        "'refine_norm' = true needs 'refine' = slash (it normalises the slash refinement)",
    ),
    (
        dict(refine="none", refine_norm=True),
        "'refine_norm' = true needs 'refine' = slash (it normalises the slash refinement)",
    ),
    (dict(refine="none"), None),
    (dict(refine_norm=False), None),
]


@pytest.mark.parametrize(
    "base,overrides,want",
    [("mean", *c) for c in CASES] + [("default", *c) for c in DEFAULT_CASES],
    ids=[f"mean-{c[0]!r}" for c in CASES] + [f"default-{c[0]!r}" for c in DEFAULT_CASES],
)
def test_config_reference_and_verifier_agree(capi, base, overrides, want):
    fields = {**(BASE if base == "mean" else DEFAULT), **overrides}
    got = {
        "Config": config_reason(fields),
        "reference": reference_reason(fields),
        "C++ verifier": cpp_reason(capi, fields),
    }
    for who, message in got.items():
        assert rule(message) == want, f"{who}: {message!r}"


@pytest.mark.parametrize(
    "field,value",
    [
        ("tau", True),
        ("scale", False),
        ("block", 128.0),
        ("c_h", True),
        ("sink", 1),
        ("causal", "yes"),
        ("refine_norm", 1),
        ("estimator", 3),
    ],
)
def test_values_of_the_wrong_kind_are_refused(field, value):
    # bool is not a number and a number is not a bool, as in the IR, where
    # `tau = true` and `sink = 1` do not parse.
    with pytest.raises((TypeError, ValueError), match=f"'{field}' must be"):
        Config(**{field: value})
    try:
        message = reference_reason({**BASE, field: value})
    except TypeError as e:
        message = str(e)
    assert message is not None and message.startswith(f"'{field}' must be"), message


def test_the_table_is_the_config_dataclass(capi):
    assert list(rules.CONFIG_KINDS) == [f.name for f in dataclasses.fields(Config)]
    kinds = {f.name: f.type for f in dataclasses.fields(Config)}
    for name, kind in rules.CONFIG_KINDS.items():
        assert kinds[name] == (kind if isinstance(kind, str) else "str"), name
    # The keywords are those of UnisparseEnums.td, as the verifier lists them.
    for field, values in (
        ("estimator", rules.ESTIMATORS),
        ("query_reduce", rules.QUERY_REDUCES),
        ("refine", rules.REFINES),
    ):
        msg = cpp_reason(capi, {**BASE, field: "nope"})
        assert msg == f"'{field}' must be one of {', '.join(values)}, found nope"


# --------------------------------------------------------------------------- #
# Head counts: rules.check_heads, unisparse.compile, the NumPy API, and the
# entry module of unisparse-compile
# --------------------------------------------------------------------------- #

HEAD_CASES = [
    ((4, 2, 16, 1), None),
    ((8, 2, 16, 4), None),
    ((6, 4, 16, 1), "query heads (6) must be a multiple of key/value heads (4) (GQA)"),
    ((6, 2, 16, 4), "query heads (6) must be a multiple of 'c_h' (4)"),
    ((0, 2, 16, 1), "'heads' must be positive, found 0"),
    ((4, 0, 16, 1), "'kv_heads' must be positive, found 0"),
    ((4, 2, 0, 1), "'head_dim' must be positive, found 0"),
    ((4, 2, -16, 1), "'head_dim' must be positive, found -16"),
]


def entry_reason(heads, kv_heads, head_dim, c_h):
    tool = BUILD / "bin" / "unisparse-compile"
    r = subprocess.run(
        [
            str(tool),
            f"--config=c_h={c_h},c_q=8,c_k=8,block=32,estimator=mean,query_reduce=sum,tau=0.99,refine=none",
            f"--heads={heads}",
            f"--kv-heads={kv_heads}",
            f"--head-dim={head_dim}",
            "--dtype=f32",
            "--emit=entry",
            "-o",
            os.devnull,
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode == 0:
        return None
    return r.stderr.strip().removeprefix("unisparse-compile: error: ")


@pytest.mark.parametrize("dims,want", HEAD_CASES, ids=[str(c[0]) for c in HEAD_CASES])
def test_head_count_rules_agree(dims, want):
    import unisparse

    heads, kv_heads, head_dim, c_h = dims
    cfg = preset("mean", block=32, c_q=8, c_k=8, c_h=c_h)
    got = {"unisparse-compile": entry_reason(*dims)}
    try:
        rules.check_heads(heads, kv_heads, head_dim, c_h)
        got["rules"] = None
    except ValueError as e:
        got["rules"] = str(e)
    if want is not None:  # (an accepted signature would compile a library here)
        with pytest.raises(ValueError) as e:
            unisparse.compile(cfg, heads=heads, kv_heads=kv_heads, head_dim=head_dim, dtype="f32")
        got["unisparse.compile"] = str(e.value)
    if head_dim >= 0:
        q = np.ones((1, heads, 8, head_dim), np.float32)
        k = np.ones((1, kv_heads, 8, head_dim), np.float32)
        if want is None:
            got["numpy api"] = None  # (runs the compiled path: test_api covers it)
        else:
            with pytest.raises(ValueError) as e:
                unisparse.attention(q, k, k.copy(), cfg)
            got["numpy api"] = str(e.value)
    for who, message in got.items():
        assert message == want, f"{who}: {message!r}"


@pytest.mark.parametrize("causal", [True, False])
def test_config_defaults_agree_with_the_dialect(causal):
    """Config()'s defaults, spelled out by mlir_attr, are the dialect's: the
    attribute parser reads them and its printer, which omits every field
    equal to its default (refine and refine_norm: equal to the value causal
    gives them), prints nothing. Catches a default changed in one of
    config.py, UnisparseAttrs.cpp and the attribute's resolution only."""
    tool = BUILD / "bin" / "unisparse-opt"
    if not tool.exists():
        pytest.skip(f"{tool} not built")
    cfg = Config(causal=causal)
    text = f"module attributes {{test.cfg = {cfg.mlir_attr()}}} {{}}\n"
    r = subprocess.run([str(tool)], input=text, capture_output=True, text=True, check=True)
    want = "#unisparse.config<>" if causal else "#unisparse.config<causal = false>"
    assert f"test.cfg = {want}" in r.stdout, r.stdout


TD = pathlib.Path(__file__).resolve().parents[2] / "include/unisparse/Dialect/Unisparse/IR/UnisparseAttrs.td"


def _td_defaults():
    """The `| field | default | meaning |` table of ConfigAttr's description
    (UnisparseAttrs.td, which docs/ is generated from): field -> default cell."""
    rows = {}
    for line in TD.read_text().splitlines():
        m = re.match(r"\s*\| `(\w+)` \| ([^|]+) \|", line)
        if m:
            rows[m.group(1)] = m.group(2).strip()
    return rows


def test_the_dialect_documents_the_config_defaults():
    """The table of defaults in the attribute's description is a third
    spelling of Config()'s defaults (with UnisparseAttrs.cpp's ConfigValues,
    tied to Config() above): every field listed once, in Config's order, with
    Config()'s default. refine and refine_norm have no constant default; their
    cells state the rule, which Config resolves for both values of causal."""
    table = _td_defaults()
    assert list(table) == [f.name for f in dataclasses.fields(Config)]
    base, noncausal = Config(), Config(causal=False)
    rules_of = {
        "refine": ("slash if `causal`, else none", (base.refine, noncausal.refine), ("slash", "none")),
        "refine_norm": ("true iff `refine` = `slash`", (base.refine_norm, noncausal.refine_norm), (True, False)),
    }
    for name, cell in table.items():
        if name in rules_of:
            text, got, want = rules_of[name]
            assert (cell, got) == (text, want), name
            continue
        value = getattr(base, name)
        if isinstance(value, bool):
            parsed = {"true": True, "false": False}.get(cell)
        elif isinstance(value, (int, float)):
            parsed = type(value)(cell)
        else:
            parsed = cell
        assert parsed == value, f"{name}: the .td says {cell}, Config() has {value!r}"
