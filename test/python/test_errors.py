"""Bad input gives a Python exception that names the problem (never a crash
or garbage), on the NumPy path, the tensor path and the custom op."""

import numpy as np
import pytest

import unisparse
from unisparse import Config
from unisparse.config import preset

torch = pytest.importorskip("torch")
from unisparse import torch_ops  # noqa: E402

CFG = preset("mean", block=32, c_q=8, c_k=8, tau=0.8)


def np_qkv(Hq=4, Hkv=2, N=64, D=16, dtype=np.float32, B=1):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, Hq, N, D)).astype(dtype)
    k = rng.standard_normal((B, Hkv, N, D)).astype(dtype)
    return q, k, k.copy()


def t_qkv(**kw):
    return tuple(torch.from_numpy(x) for x in np_qkv(**kw))


BAD = [
    # (description, make inputs, exception, message)
    ("list input", lambda: ([[1.0]], *np_qkv()[1:]), TypeError, "q must be a torch.Tensor or a numpy.ndarray"),
    ("mixed kinds", lambda: (np_qkv()[0], *t_qkv()[1:]), TypeError, "all be torch tensors or all numpy"),
    ("float64 numpy", lambda: np_qkv(dtype=np.float64), TypeError, "unsupported dtype float64"),
    ("int torch", lambda: tuple(x.to(torch.int32) for x in t_qkv()), TypeError, "unsupported dtype torch.int32"),
    ("float64 torch", lambda: tuple(x.double() for x in t_qkv()), TypeError, "unsupported dtype torch.float64"),
    ("mixed dtypes numpy", lambda: (np_qkv()[0].astype(np.float16), *np_qkv()[1:]), TypeError, "one dtype"),
    ("mixed dtypes torch", lambda: (t_qkv()[0].half(), *t_qkv()[1:]), TypeError, "one dtype"),
    ("rank 3", lambda: (np_qkv()[0][0], *np_qkv()[1:]), ValueError, "rank 4"),
    ("heads not a multiple", lambda: (np_qkv(Hq=3)[0], *np_qkv()[1:]), ValueError, r"multiple of key/value heads"),
    ("N mismatch", lambda: (np_qkv(N=64)[0], *np_qkv(N=48)[1:]), ValueError, "sequence length mismatch"),
    ("N mismatch torch", lambda: (t_qkv(N=64)[0], *t_qkv(N=48)[1:]), ValueError, "sequence length mismatch"),
    ("batch mismatch", lambda: (np_qkv(B=2)[0], *np_qkv()[1:]), ValueError, "batch mismatch"),
    ("head_dim mismatch", lambda: (np_qkv(D=32)[0], *np_qkv()[1:]), ValueError, "head_dim mismatch"),
    ("k/v mismatch", lambda: (np_qkv()[0], np_qkv()[1], np_qkv(Hkv=4)[2]), ValueError, "must equal v shape"),
    (
        "non-contiguous numpy",
        lambda: (np.swapaxes(np.swapaxes(np_qkv()[0], 2, 3).copy(), 2, 3), *np_qkv()[1:]),
        ValueError,
        "C-contiguous",
    ),
    (
        "non-contiguous torch",
        lambda: (t_qkv()[0].transpose(2, 3).contiguous().transpose(2, 3), *t_qkv()[1:]),
        ValueError,
        "must be contiguous",
    ),
    ("device mismatch", lambda: (t_qkv()[0].to("meta"), *t_qkv()[1:]), ValueError, "one device"),
]


@pytest.mark.parametrize("desc,make,exc,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_input_public_api(desc, make, exc, msg):
    q, k, v = make()
    with pytest.raises(exc, match=msg):
        unisparse.attention(q, k, v, CFG)


@pytest.mark.parametrize(
    "desc,make,exc,msg",
    [b for b in BAD if "torch" in b[0] or b[0] == "device mismatch"],
    ids=[b[0] for b in BAD if "torch" in b[0] or b[0] == "device mismatch"],
)
def test_bad_input_custom_op(desc, make, exc, msg):
    q, k, v = make()
    with pytest.raises(exc, match=msg):
        torch.ops.unisparse.attention(q, k, v, *torch_ops.config_args(CFG))


def test_c_h_must_divide_heads():
    q, k, v = np_qkv(Hq=4, Hkv=1)
    with pytest.raises(ValueError, match=r"multiple of 'c_h' \(3\)"):
        unisparse.attention(q, k, v, preset("mean", block=32, c_h=3))


def test_config_type_and_values():
    q, k, v = np_qkv()
    with pytest.raises(TypeError, match="unisparse.Config"):
        unisparse.attention(q, k, v, {"tau": 0.9})
    with pytest.raises(ValueError, match="tau"):
        Config(tau=1.5)
    with pytest.raises(ValueError, match="multiple of 'c_q'"):
        Config(block=100)


def test_compile_arguments():
    with pytest.raises(ValueError, match="multiple of key/value heads"):
        unisparse.compile(CFG, heads=6, kv_heads=4, head_dim=16, dtype="f32")
    with pytest.raises(TypeError, match="unsupported dtype"):
        unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=16, dtype="int8")
    with pytest.raises(ValueError, match="unsupported device"):
        unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=16, dtype="f32", device="tpu")
    with pytest.raises(ValueError, match="'head_dim' must be positive"):
        unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=0, dtype="f32")


def test_compiled_object_rejects_wrong_signature():
    kern = unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=16, dtype="f32")
    q, k, v = np_qkv(D=32)
    with pytest.raises(ValueError, match="shape"):
        kern.attention(q, k, v)
    q, k, v = np_qkv(dtype=np.float16)
    with pytest.raises(TypeError, match="dtype float32"):
        kern.attention(q, k, v)


def test_nan_propagates_not_crashes():
    q, k, v = np_qkv(N=64)
    v[0, 0, 5, 0] = np.nan
    o = unisparse.attention(q, k, v, preset("mean", block=32, c_q=8, c_k=8, tau=1.0))
    assert not np.isnan(o[0, :2, :5]).any()
    assert np.isnan(o[0, :2, 5:, 0]).all()


# --------------------------------------------------------------------------- #
# Caller-provided output buffers (CompiledCPU.attention(o=, lse=))
# --------------------------------------------------------------------------- #


def _compiled_and_outputs():
    q, k, v = np_qkv()
    kern = unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=16, dtype="f32")
    return kern, q, k, v


def test_read_only_output_is_refused():
    kern, q, k, v = _compiled_and_outputs()
    o = np.zeros(q.shape, np.float32)
    o.flags.writeable = False
    with pytest.raises(ValueError, match="o must be a writable array"):
        kern.attention(q, k, v, o=o)


def test_output_over_immutable_bytes_is_refused_and_untouched():
    kern, q, k, v = _compiled_and_outputs()
    raw = bytes(q.nbytes)
    o = np.frombuffer(raw, np.float32).reshape(q.shape)
    with pytest.raises(ValueError, match="o must be a writable array"):
        kern.attention(q, k, v, o=o)
    assert raw == bytes(q.nbytes)


def test_output_aliasing_an_input_is_refused():
    kern, q, k, v = _compiled_and_outputs()
    # o over the same memory as k (k has fewer heads: view a larger buffer).
    buf = np.random.default_rng(1).standard_normal(q.size).astype(np.float32)
    o = buf.reshape(q.shape)
    k_alias = buf[: k.size].reshape(k.shape)
    with pytest.raises(ValueError, match="o overlaps k"):
        kern.attention(q, k_alias, k_alias.copy(), o=o)
    with pytest.raises(ValueError, match="o overlaps q"):
        kern.attention(q, k, v, o=q)


def test_overlapping_outputs_are_refused():
    kern, q, k, v = _compiled_and_outputs()
    buf = np.empty(q.nbytes + 64, np.uint8)
    o = buf[: q.nbytes].view(np.float32).reshape(q.shape)
    lse = buf[64 : 64 + 4 * q.shape[0] * q.shape[1] * q.shape[2]].view(np.float32).reshape(q.shape[:3])
    with pytest.raises(ValueError, match="o overlaps lse"):
        kern.attention(q, k, v, o=o, lse=lse)


def test_distinct_caller_outputs_receive_the_result():
    kern, q, k, v = _compiled_and_outputs()
    o = np.full(q.shape, np.nan, np.float32)
    lse = np.full(q.shape[:3], np.nan, np.float32)
    got_o, got_lse = kern.attention(q, k, v, o=o, lse=lse)
    assert got_o is o and got_lse is lse
    want_o, want_lse = kern.attention(q, k, v)
    np.testing.assert_array_equal(o, want_o)  # same code, same order: exact
    np.testing.assert_array_equal(lse, want_lse)
