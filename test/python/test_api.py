"""unisparse.compile / unisparse.attention on NumPy arrays and CPU tensors,
against the NumPy reference of the exact semantics."""

import numpy as np
import pytest

import unisparse
from conftest import TOL, to_np_dtype, widen
from unisparse import Config
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import preset

torch = pytest.importorskip("torch")

CFG = preset("mean", block=64, c_q=16, c_k=8, tau=0.8)


def data(B=1, Hq=4, Hkv=2, N=300, D=32, seed=0):
    return S.structured_qkv(B, Hq, Hkv, N, D, seed=seed, peak=1.5)


def reference(q64, k64, v64, cfg):
    return R.unisparse_attention(q64, k64, v64, **cfg.reference_kwargs())


def test_public_api_surface():
    assert unisparse.__version__ == "0.1.0"
    for name in ("Config", "compile", "attention", "AttentionResult", "UnisparseError"):
        assert hasattr(unisparse, name)


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_numpy_matches_reference(dtype):
    q, k, v = (to_np_dtype(x, dtype) for x in data())
    r = unisparse.attention(q, k, v, CFG, return_lse=True, return_layout=True)
    assert isinstance(r, unisparse.AttentionResult)
    assert r.output.dtype == q.dtype and r.output.shape == q.shape
    assert r.lse.dtype == np.float32 and r.lse.shape == (1, 4, 300)
    o_ref, lse_ref, c_ref, i_ref = reference(*(widen(x, dtype) for x in (q, k, v)), CFG)
    assert R.relative_l2(widen(r.output, dtype), o_ref) < TOL[dtype]
    assert np.abs(r.lse - lse_ref).max() < 1e-3
    np.testing.assert_array_equal(r.counts, c_ref)
    np.testing.assert_array_equal(r.indices, i_ref)
    assert r.density == pytest.approx(R.density(c_ref, 300, 64))
    assert 0 < r.density < 1
    # plain call: the output alone
    o = unisparse.attention(q, k, v, CFG)
    np.testing.assert_array_equal(o, r.output)


@pytest.mark.parametrize("causal", [True, False])
def test_numpy_tau_one_is_dense(causal):
    q, k, v = data(B=2, N=200, seed=1)
    cfg = preset("mean", block=64, tau=1.0, causal=causal)
    r = unisparse.attention(q, k, v, cfg, return_lse=True, return_layout=True)
    od, ld = R.dense_attention(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), causal=causal)
    assert R.relative_l2(r.output, od) < 2e-5
    assert np.abs(r.lse - ld).max() < 1e-4
    assert r.density == 1.0


def test_numpy_head_groups_and_partial_blocks():
    q, k, v = data(B=2, Hq=8, Hkv=2, N=333, D=16, seed=2)
    cfg = preset("mean", block=32, c_q=8, c_k=16, c_h=2, tau=0.7, local_blocks=0)
    r = unisparse.attention(q, k, v, cfg, return_layout=True)
    o_ref, _, c_ref, _ = reference(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), cfg)
    assert r.counts.shape == (2, 4, 11)
    np.testing.assert_array_equal(r.counts, c_ref)
    assert R.relative_l2(r.output, o_ref) < 2e-5
    assert r.lse is None


def test_default_config_is_used():
    q, k, v = data(N=256)
    o = unisparse.attention(q, k, v)
    o_ref, *_ = reference(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), Config())
    assert R.relative_l2(o, o_ref) < 2e-5


@pytest.mark.parametrize("tdtype,dtype", [(torch.float32, "f32"), (torch.float16, "f16"), (torch.bfloat16, "bf16")])
def test_torch_matches_reference(tdtype, dtype):
    q, k, v = (torch.from_numpy(x).to(tdtype) for x in data(B=2, seed=3))
    r = unisparse.attention(q, k, v, CFG, return_lse=True, return_layout=True)
    assert r.output.dtype == tdtype and r.output.shape == q.shape and r.output.is_contiguous()
    assert r.lse.dtype == torch.float32 and r.lse.shape == (2, 4, 300)
    assert r.counts.dtype == torch.int32 and r.indices.shape == (2, 4, 5, 5)
    q64, k64, v64 = (x.double().numpy() for x in (q, k, v))
    o_ref, lse_ref, c_ref, i_ref = reference(q64, k64, v64, CFG)
    assert R.relative_l2(r.output.double().numpy(), o_ref) < TOL[dtype]
    assert np.abs(r.lse.numpy() - lse_ref).max() < 1e-3
    np.testing.assert_array_equal(r.counts.numpy(), c_ref)
    np.testing.assert_array_equal(r.indices.numpy(), i_ref)
    assert float(r.density) == pytest.approx(R.density(c_ref, 300, 64))
    # the tensor path equals the NumPy path on the same bits
    o = unisparse.attention(q, k, v, CFG)
    np_in = [x.view(torch.int16).numpy().view(np.uint16) if dtype == "bf16" else x.numpy() for x in (q, k, v)]
    o_np = unisparse.attention(*np_in, CFG)
    o_t = o.view(torch.int16).numpy().view(np.uint16) if dtype == "bf16" else o.numpy()
    np.testing.assert_array_equal(o_t, o_np)


def test_torch_requires_grad_forward_works_backward_raises():
    q, k, v = (torch.from_numpy(x).requires_grad_() for x in data(seed=4))
    o = unisparse.attention(q, k, v, CFG)
    assert o.requires_grad
    with pytest.raises(NotImplementedError, match="no backward"):
        o.sum().backward()
    with torch.inference_mode():
        assert not unisparse.attention(q, k, v, CFG).requires_grad


def test_compile_is_cached_and_accepts_dtype_spellings():
    a = unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=32, dtype="bf16")
    b = unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=32, dtype=torch.bfloat16)
    c = unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=32, dtype=np.uint16)
    assert a is b is c
    assert unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=32, dtype="float32") is not a
    q, k, v = (to_np_dtype(x, "bf16") for x in data(seed=5))
    o, lse = a.attention(q, k, v)
    _, counts, _ = a.layout(q, k)
    assert o.dtype == np.uint16 and lse.shape == (1, 4, 300) and counts.shape == (1, 4, 5)


def test_empty_sequence():
    q = np.zeros((1, 4, 0, 32), np.float32)
    k = np.zeros((1, 2, 0, 32), np.float32)
    r = unisparse.attention(q, k, k, CFG, return_lse=True)
    assert r.output.shape == q.shape and r.lse.shape == (1, 4, 0)


@pytest.mark.parametrize("where", ["q", "k", "inf_k", "neg_inf_q"])
@pytest.mark.parametrize("max_blocks", [0, 4])
def test_nan_and_inf_inputs_propagate_as_in_dense_attention(where, max_blocks):
    # min_blocks > 0 with a NaN score used to take block 0 twice (the arg-max
    # never took a NaN), which the runtime then rejected ("indices ... must be
    # strictly ascending"). Now: the layout equals the reference's, every row
    # whose scores are NaN keeps all its visible blocks, and NaN reaches
    # exactly the outputs that dense attention makes NaN.
    cfg = preset("mean", block=64, c_q=16, c_k=8, tau=0.6, min_blocks=4, max_blocks=max_blocks)
    q, k, v = (x.astype(np.float32) for x in data(N=300, seed=7))
    token = 150
    if where == "q":
        q[0, 1, token, 3] = np.nan
    elif where == "k":
        k[0, 0, token, 5] = np.nan
    elif where == "inf_k":
        k[0, 1, token, 5] = np.inf
    else:
        # Every key positive in dimension 2 and one query -inf there: its
        # composite's logits are all -inf, which gives NaN scores (the row
        # goes dense) in the reference and the compiled code alike.
        k[:, :, :, 2] = np.abs(k[:, :, :, 2]) + 0.5
        q[0, 2, token, 2] = -np.inf
    r = unisparse.attention(q, k, v, cfg, return_layout=True)
    o_ref, _, c_ref, i_ref = reference(*(x.astype(np.float64) for x in (q, k, v)), cfg)
    np.testing.assert_array_equal(r.counts, c_ref)
    np.testing.assert_array_equal(r.indices, i_ref)
    for row_c, row_i in zip(r.counts.reshape(-1), r.indices.reshape(-1, r.indices.shape[-1])):
        assert np.all(np.diff(row_i[:row_c]) > 0)
    # The attention over the layout propagates exactly as the reference's.
    np.testing.assert_array_equal(np.isnan(r.output), np.isnan(o_ref))
    assert np.isnan(r.output).any()
    finite = ~np.isnan(o_ref)
    assert R.relative_l2(r.output[finite], o_ref[finite]) < 2e-5
    if where in ("q", "k"):
        # A NaN makes its rows' scores NaN: those rows are dense, so NaN
        # reaches exactly the outputs dense attention makes NaN. (An Inf
        # gives +-inf composite logits: a query whose own logit differs in
        # sign from its composite's may differ from dense attention, see
        # docs/Rationale.md.)
        dense = R.dense_attention(*(x.astype(np.float64) for x in (q, k, v)), causal=True)[0]
        np.testing.assert_array_equal(np.isnan(r.output), np.isnan(dense))
