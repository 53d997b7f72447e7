"""The custom ops torch.ops.unisparse.{attention,layout,attention_layout}:
opcheck, fake shapes, the schema derived from Config,
torch.compile(fullgraph=True), and the CUDA registration."""

import dataclasses

import numpy as np
import pytest

import unisparse
from conftest import requires_cuda, sum_order_atol
from unisparse import Config
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import preset

torch = pytest.importorskip("torch")
from unisparse import torch_ops  # noqa: E402

CFG = preset("mean", block=32, c_q=8, c_k=8, tau=0.8)


def tensors(dtype=torch.float32, B=1, Hq=4, Hkv=2, N=200, D=16, seed=0):
    return tuple(torch.from_numpy(x).to(dtype) for x in S.structured_qkv(B, Hq, Hkv, N, D, seed=seed, peak=1.5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_opcheck_attention(dtype):
    args = tensors(dtype) + torch_ops.config_args(CFG)
    torch.library.opcheck(torch.ops.unisparse.attention.default, args)
    args = tensors(dtype, B=2, Hq=4, Hkv=4, N=77, seed=1) + torch_ops.config_args(
        preset("mean", block=32, c_h=2, causal=False)
    )
    torch.library.opcheck(torch.ops.unisparse.attention.default, args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_opcheck_layout(dtype):
    q, k, _ = tensors(dtype)
    torch.library.opcheck(torch.ops.unisparse.layout.default, (q, k) + torch_ops.config_args(CFG))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_opcheck_attention_layout(dtype):
    args = tensors(dtype) + torch_ops.config_args(CFG)
    torch.library.opcheck(torch.ops.unisparse.attention_layout.default, args)


#: A configuration whose every field differs from the default (``refine``
#: and ``refine_norm`` resolved to none / false by ``causal = False``), so
#: that a field lost on the way through the op would show (``refine =
#: "slash"`` needs ``causal``, so it has a configuration of its own,
#: :data:`REFINED`).
EVERY_FIELD = Config(
    block=64,
    c_q=4,
    c_k=4,
    c_h=2,
    tau=0.5,
    local_blocks=2,
    sink=False,
    min_blocks=1,
    max_blocks=9,
    causal=False,
    scale=0.25,
    estimator="antidiag_lse",
    query_reduce="sum",
    q_outliers=2,
    k_outliers=3,
    last_q=8,
    n_offsets=4,
    rows_per_block=4,
    width=2,
)
#: EVERY_FIELD causal and refined (normalised: refine_norm needs refine =
#: slash), with the max over query composites (as before the default became
#: max, so that the refinement changes this layout): the refinement's fields
#: reach the kernel.
REFINED = dataclasses.replace(EVERY_FIELD, causal=True, refine="slash", refine_norm=True, query_reduce="max")


def test_op_schemas_follow_config():
    fields = dataclasses.fields(Config)
    only_refined = ("refine", "refine_norm")
    assert all(getattr(EVERY_FIELD, f.name) != getattr(Config(), f.name) for f in fields)
    assert all(getattr(REFINED, name) != getattr(EVERY_FIELD, name) for name in only_refined)
    want = [(f.name, f.type) for f in fields]
    for op, tensor_names, n_results in (
        (torch.ops.unisparse.attention, ["q", "k", "v"], 2),
        (torch.ops.unisparse.layout, ["q", "k"], 2),
        (torch.ops.unisparse.attention_layout, ["q", "k", "v"], 4),
    ):
        schema = op.default._schema
        args = schema.arguments
        assert [(a.name, str(a.type)) for a in args[: len(tensor_names)]] == [(t, "Tensor") for t in tensor_names]
        assert [(a.name, str(a.type)) for a in args[len(tensor_names) :]] == want, str(schema)
        assert len(schema.returns) == n_results
    assert torch_ops.config_args(EVERY_FIELD) == tuple(getattr(EVERY_FIELD, f.name) for f in fields)
    assert torch_ops.config_from_args(*torch_ops.config_args(EVERY_FIELD)) == EVERY_FIELD
    with pytest.raises(ValueError):  # one scalar short
        torch_ops.config_from_args(*torch_ops.config_args(EVERY_FIELD)[:-1])


@pytest.mark.parametrize("cfg", [EVERY_FIELD, REFINED], ids=["every_field", "refined"])
def test_every_field_reaches_the_kernel(cfg):
    q, k, v = tensors(Hq=4, Hkv=2, N=300, seed=5)
    o, lse, counts, indices = torch.ops.unisparse.attention_layout(q, k, v, *torch_ops.config_args(cfg))
    o_ref, lse_ref, c_ref, i_ref = R.unisparse_attention(
        *(x.double().numpy() for x in (q, k, v)), **cfg.reference_kwargs()
    )
    np.testing.assert_array_equal(counts.numpy(), c_ref)
    np.testing.assert_array_equal(indices.numpy(), i_ref)
    assert R.relative_l2(o.numpy(), o_ref) < 2e-5
    if cfg.refine == "slash":  # the refinement changes this layout
        plain = dataclasses.replace(cfg, refine="none", refine_norm=False).reference_kwargs()
        assert not np.array_equal(R.unisparse_attention(*(x.double().numpy() for x in (q, k, v)), **plain)[3], i_ref)


def test_return_layout_runs_the_estimation_once(monkeypatch):
    # attention(..., return_layout=True) returns the layout the output was
    # computed with; the layout entry (a second estimation) is not called.
    q, k, v = tensors(Hq=4, Hkv=2, N=250, seed=6)
    kern = unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=16, dtype="f32")
    _, c_want, i_want = kern.layout(q.numpy(), k.numpy())
    o_want = unisparse.attention(q, k, v, CFG)

    def no_second_estimation(*args, **kwargs):
        raise AssertionError("the layout was estimated a second time")

    monkeypatch.setattr(type(kern), "layout", no_second_estimation)
    for r in (
        unisparse.attention(q, k, v, CFG, return_layout=True),
        unisparse.attention(q.numpy(), k.numpy(), v.numpy(), CFG, return_layout=True),
    ):
        np.testing.assert_array_equal(np.asarray(r.counts), c_want)
        np.testing.assert_array_equal(np.asarray(r.indices), i_want)
        np.testing.assert_array_equal(np.asarray(r.output), o_want.numpy())
        assert float(r.density) == pytest.approx(R.density(c_want, 250, CFG.block))


def test_fake_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        q = torch.empty(2, 8, 1000, 64, dtype=torch.bfloat16)
        k = torch.empty(2, 2, 1000, 64, dtype=torch.bfloat16)
        args = torch_ops.config_args(preset("mean", c_h=2))
        o, lse = torch.ops.unisparse.attention(q, k, k, *args)
        counts, indices = torch.ops.unisparse.layout(q, k, *args)
        both = torch.ops.unisparse.attention_layout(q, k, k, *args)
    assert [(x.shape, x.dtype) for x in both] == [(x.shape, x.dtype) for x in (o, lse, counts, indices)]
    assert o.shape == q.shape and o.dtype == torch.bfloat16
    assert lse.shape == (2, 8, 1000) and lse.dtype == torch.float32
    assert counts.shape == (2, 4, 8) and indices.shape == (2, 4, 8, 8) and counts.dtype == torch.int32


def test_op_equals_reference():
    q, k, v = tensors()
    o, lse = torch.ops.unisparse.attention(q, k, v, *torch_ops.config_args(CFG))
    o_ref, lse_ref, _, _ = R.unisparse_attention(*(x.double().numpy() for x in (q, k, v)), **CFG.reference_kwargs())
    assert R.relative_l2(o.numpy(), o_ref) < 2e-5
    assert np.abs(lse.numpy() - lse_ref).max() < 1e-4


def test_torch_compile_fullgraph():
    torch._dynamo.reset()

    def f(q, k, v):
        o = unisparse.attention(q, k, v, CFG)
        return torch.nn.functional.gelu(o) * 2

    def g(q, k, v):
        r = unisparse.attention(q, k, v, CFG, return_lse=True, return_layout=True)
        return r.output.sum() + r.lse.mean(), r.counts, r.density

    cf = torch.compile(f, fullgraph=True)
    cg = torch.compile(g, fullgraph=True)
    for n, dtype in ((200, torch.float32), (333, torch.float32), (256, torch.bfloat16)):
        q, k, v = tensors(dtype, N=n, seed=n)
        torch.testing.assert_close(cf(q, k, v), f(q, k, v))
        got, want = cg(q, k, v), g(q, k, v)
        # output.sum() + lse.mean(): Inductor and eager reduce in different
        # orders, so the sums may differ by the derived bound (the outputs
        # themselves are compared elementwise above; counts exactly).
        r = unisparse.attention(q, k, v, CFG, return_lse=True)
        eps = torch.finfo(dtype).eps
        atol = sum_order_atol((r.output, 1.0), out_eps=eps) + sum_order_atol((r.lse, 1.0 / r.lse.numel()))
        torch.testing.assert_close(got[0], want[0], rtol=0, atol=atol)
        torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)
        torch.testing.assert_close(got[2], want[2])


def test_torch_compile_raw_op_dynamic():
    torch._dynamo.reset()
    args = torch_ops.config_args(CFG)
    f = torch.compile(
        lambda q, k, v: torch.ops.unisparse.attention(q, k, v, *args)[0].float().square().sum(),
        fullgraph=True,
        dynamic=True,
    )
    for n in (96, 150):
        q, k, v = tensors(N=n, seed=n)
        o = torch.ops.unisparse.attention(q, k, v, *args)[0]
        want = o.square().sum()
        # A sum of squares reduced in two orders: the derived bound.
        torch.testing.assert_close(f(q, k, v), want, rtol=0, atol=sum_order_atol((o.square(), 1.0)))


def test_torch_compile_reports_bad_shapes_at_trace_time():
    torch._dynamo.reset()
    q, k, v = tensors()
    f = torch.compile(lambda q, k, v: unisparse.attention(q, k, v, CFG), fullgraph=True)
    with pytest.raises(Exception, match="sequence length mismatch"):
        f(q, k[:, :, :100], v[:, :, :100])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_compile_without_a_gpu_says_so():
    # unisparse.gpu exists, but there is no device: the error says so
    with pytest.raises(RuntimeError, match="no CUDA device is available"):
        unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=16, dtype="bf16", device="cuda")


def test_register_compiled_serves_the_signature():
    class Fake:
        def attention(self, q, k, v):
            return q * 0 + 7, torch.zeros(q.shape[:3])

    fake = Fake()
    got = unisparse.register_compiled(fake, CFG, heads=3, kv_heads=1, head_dim=8, dtype="f32", device="cuda:5")
    assert got is fake
    assert unisparse.compile(CFG, heads=3, kv_heads=1, head_dim=8, dtype=torch.float32, device="cuda:5") is fake


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_attention(dtype):
    # Needs a library built by unisparse-compile for this signature, loaded
    # with unisparse.gpu.load_compiled and registered; otherwise the op must
    # say so.
    q, k, v = (x.cuda() for x in tensors(dtype, N=1000, D=64))
    try:
        unisparse.compile(CFG, heads=4, kv_heads=2, head_dim=64, dtype=dtype, device=str(q.device))
    except NotImplementedError as e:
        assert "unisparse" in str(e)
        with pytest.raises(NotImplementedError):
            unisparse.attention(q, k, v, CFG)
        pytest.skip(f"no CUDA library for the signature: {e}")
    r = unisparse.attention(q, k, v, CFG, return_lse=True, return_layout=True)
    cpu = unisparse.attention(*(x.cpu() for x in (q, k, v)), CFG, return_lse=True, return_layout=True)
    torch.testing.assert_close(r.counts.cpu(), cpu.counts)
    torch.testing.assert_close(r.output.cpu().float(), cpu.output.float(), atol=2e-2, rtol=2e-2)
    # return_layout ran attention_layout: its layout is @layout's, its output @attention's.
    counts, indices = torch.ops.unisparse.layout(q, k, *torch_ops.config_args(CFG))
    torch.testing.assert_close(r.counts, counts)
    torch.testing.assert_close(r.indices, indices)
    torch.testing.assert_close(r.output, unisparse.attention(q, k, v, CFG), atol=0, rtol=0)
    torch.library.opcheck(torch.ops.unisparse.attention.default, (q, k, v) + torch_ops.config_args(CFG))
    torch.library.opcheck(torch.ops.unisparse.attention_layout.default, (q, k, v) + torch_ops.config_args(CFG))


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_attention_default(dtype):
    # The default configuration (the peaked one: outlier first pass, the
    # normalised slash refinement) at block 64 on CUDA (the library of
    # scripts/gpu/configs.py's TORCH_OP_DEFAULT): the output against float64
    # on the op's own layout, the layout of attention_layout equal to
    # @layout's, opcheck. (The refined layout against float64 within its
    # bound is check.py's peaked_* entries.)
    cfg = Config(block=64)
    q, k, v = (x.cuda() for x in tensors(dtype, N=1000, D=64))
    try:
        unisparse.compile(cfg, heads=4, kv_heads=2, head_dim=64, dtype=dtype, device=str(q.device))
    except NotImplementedError as e:
        assert "unisparse" in str(e)
        pytest.skip(f"no CUDA library for the signature: {e}")
    r = unisparse.attention(q, k, v, cfg, return_lse=True, return_layout=True)
    counts, indices = torch.ops.unisparse.layout(q, k, *torch_ops.config_args(cfg))
    torch.testing.assert_close(r.counts, counts)
    torch.testing.assert_close(r.indices, indices)
    q64, k64, v64 = (x.double().cpu().numpy() for x in (q, k, v))
    o_ref, _ = R.block_sparse_attention(q64, k64, v64, r.counts.cpu().numpy(), r.indices.cpu().numpy(), 64, True)
    assert R.relative_l2(r.output.double().cpu().numpy(), o_ref) < 1e-2
    torch.library.opcheck(torch.ops.unisparse.attention.default, (q, k, v) + torch_ops.config_args(cfg))


@pytest.mark.parametrize("estimator,query_reduce", [("antidiag", "sum"), ("antidiag_lse", "max")])
def test_op_carries_the_estimator(estimator, query_reduce):
    # The schema used to stop at `scale`: a tensor call with another
    # estimator silently ran mean pooling. The layout must be the
    # reference's for the estimator asked for.
    cfg = preset("mean", block=32, c_q=8, c_k=8, tau=0.8, estimator=estimator, query_reduce=query_reduce)
    q, k, v = tensors(N=256, seed=3)
    r = unisparse.attention(q, k, v, cfg, return_layout=True)
    _, _, c_ref, i_ref = R.unisparse_attention(*(x.double().numpy() for x in (q, k, v)), **cfg.reference_kwargs())
    np.testing.assert_array_equal(r.counts.numpy(), c_ref)
    np.testing.assert_array_equal(r.indices.numpy(), i_ref)
    mean = unisparse.attention(q, k, v, preset("mean", block=32, c_q=8, c_k=8, tau=0.8), return_layout=True)
    assert not np.array_equal(mean.counts.numpy(), c_ref)  # the estimator changes the layout here
    torch.library.opcheck(torch.ops.unisparse.attention.default, (q, k, v) + torch_ops.config_args(cfg))
