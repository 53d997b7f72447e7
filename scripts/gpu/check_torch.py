"""GPU checks of the Python layer (the PyTorch op, CUDA graphs, Hugging Face).

Run on the GPU machine by run.sh with $UNISPARSE_AOT_DIR holding the libraries
of configs.TORCH (compiled where LLVM is by compile_all.py):
  - unisparse.attention on CUDA tensors: layout equal to the selection rule
    on float64 reference scores, output vs float64 block-sparse reference;
  - torch.library.opcheck of torch.ops.unisparse.attention on CUDA;
  - torch.compile(fullgraph=True) of a function calling the op == eager;
  - CUDA-graph capture of the op replays to the same output;
  - a tiny random Llama (GQA 4/2, head dim 64) on CUDA, bf16:
    attn_implementation="unisparse" at tau = 1 vs "sdpa" logits, and the
    difference at the default configuration.
Prints one line per check and "N passed, M failed".
"""

import os
import pathlib
import sys

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts" / "gpu"))

import configs  # noqa: E402

import unisparse  # noqa: E402
from unisparse import reference as ref  # noqa: E402
from unisparse import torch_ops  # noqa: E402
from unisparse.config import Config  # noqa: E402
from unisparse.synthetic import structured_qkv  # noqa: E402

results = []


def record(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


def rel(x, y):
    x, y = torch.as_tensor(x).double(), torch.as_tensor(y).double()
    return float((x - y).norm() / y.norm())


def op_checks(dtype, fields=configs.TORCH_OP, what=""):
    """The op on CUDA with the configuration ``fields``: mean pooling
    (TORCH_OP: the layout against the float64 selection too) or the default
    (TORCH_OP_DEFAULT, the peaked configuration: the refined layout is
    check.py's peaked_*; here the output on the op's own layout)."""
    cfg = Config(**fields)
    tdt = {"bf16": torch.bfloat16, "f16": torch.float16}[dtype]
    seed = int.from_bytes(os.urandom(2), "little")
    q, k, v = (torch.from_numpy(x).to("cuda", tdt) for x in structured_qkv(2, 4, 2, 1000, 64, seed=seed, peak=1.5)[:3])
    r = unisparse.attention(q, k, v, cfg, return_lse=True, return_layout=True)
    q64, k64, v64 = (x.double().cpu().numpy() for x in (q, k, v))
    dtype += what  # from here on the records' label
    if cfg.estimator == "mean" and cfg.refine == "none":
        s = ref.block_score(
            ref.compress(q64, cfg.c_q), ref.compress(k64, cfg.c_k, 1, 2), cfg.block, cfg.c_q, cfg.c_k, True
        )
        c_ref, i_ref = ref.block_select(s, cfg.tau, cfg.local_blocks, cfg.sink)
        nd = int(np.sum(np.any(r.indices.cpu().numpy() != i_ref, -1) | (r.counts.cpu().numpy() != c_ref)))
        record(
            f"{dtype} unisparse.attention layout vs float64 reference",
            nd == 0,
            f"{nd} of {c_ref.size} rows differ, density {float(r.density):.3f}",
        )
    else:
        record(f"{dtype} unisparse.attention density (reported)", 0 < float(r.density) <= 1, f"{float(r.density):.3f}")
    o_ref, lse_ref = ref.block_sparse_attention(
        q64, k64, v64, r.counts.cpu().numpy(), r.indices.cpu().numpy(), cfg.block, True
    )
    err = rel(r.output.cpu(), o_ref)
    record(f"{dtype} unisparse.attention output vs float64 reference", err < 1e-2, f"rel L2 {err:.2e}")
    args = (q, k, v) + torch_ops.config_args(cfg)
    try:
        torch.library.opcheck(torch.ops.unisparse.attention.default, args)
        record(f"{dtype} opcheck(torch.ops.unisparse.attention) on CUDA", True)
    except Exception as e:  # noqa: BLE001
        record(f"{dtype} opcheck(torch.ops.unisparse.attention) on CUDA", False, repr(e)[:300])

    def f(q, k, v):
        o, lse = torch.ops.unisparse.attention(q, k, v, *torch_ops.config_args(cfg))
        return o * 2, lse

    eager = f(q, k, v)
    compiled = torch.compile(f, fullgraph=True)(q, k, v)
    record(
        f"{dtype} torch.compile(fullgraph=True) == eager",
        rel(compiled[0], eager[0]) == 0.0,
        f"rel {rel(compiled[0], eager[0]):.1e}",
    )
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        f(q, k, v)
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(g):
            og, _ = f(q, k, v)
        g.replay()
        torch.cuda.synchronize()
        record(f"{dtype} CUDA-graph capture of the op", rel(og, eager[0]) == 0.0, f"rel {rel(og, eager[0]):.1e}")
    except Exception as e:  # noqa: BLE001
        record(f"{dtype} CUDA-graph capture of the op", False, repr(e)[:300])


def hf_checks():
    import transformers

    from unisparse.integrations import hf

    dense_name = hf.register("unisparse_dense", Config(block=64, tau=1.0))
    default_name = hf.register("unisparse_default", Config(block=64))
    torch.manual_seed(0)
    conf = transformers.LlamaConfig(
        vocab_size=512,
        hidden_size=configs.HF_HEADS * configs.HF_HEAD_DIM,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=configs.HF_HEADS,
        num_key_value_heads=configs.HF_KV_HEADS,
        max_position_embeddings=4096,
    )
    ids = torch.randint(0, 512, (1, 1024), device="cuda")

    def model(impl, state=None):
        m = (
            transformers.AutoModelForCausalLM.from_config(conf, attn_implementation=impl, torch_dtype=torch.bfloat16)
            .cuda()
            .eval()
        )
        if state is not None:
            m.load_state_dict(state)
        return m

    base = model("sdpa")
    with torch.no_grad():
        ref_logits = base(ids).logits.float()
        dense = model(dense_name, base.state_dict())(ids).logits.float()
        default = model(default_name, base.state_dict())(ids).logits.float()
    e1, e2 = rel(dense, ref_logits), rel(default, ref_logits)
    record("HF Llama on CUDA: unisparse tau=1 logits vs sdpa", e1 < 2e-2, f"rel L2 {e1:.2e}")
    record("HF Llama on CUDA: unisparse default-config logits vs sdpa (reported)", np.isfinite(e2), f"rel L2 {e2:.2e}")


def main():
    print(torch.cuda.get_device_name(), flush=True)
    for dtype in ("bf16", "f16"):
        op_checks(dtype)
        op_checks(dtype, configs.TORCH_OP_DEFAULT, " default (peaked)")
    hf_checks()
    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
