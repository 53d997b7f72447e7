"""Host time of compiled CUDA calls (run from the repository root on the GPU machine;
UNISPARSE_CUDA_RUNTIME and UNISPARSE_AOT_DIR set as in scripts/gpu/run_estimation.sh)."""

import ctypes
import os
import pathlib
import sys
import time

import torch

sys.path[:0] = ["scripts/gpu", "python", "bench"]
import configs  # noqa: E402
from bench_gpu import structured  # noqa: E402

from unisparse import gpu  # noqa: E402

name = "est_default"
cfg, hq, hkv, d, dtype, _ = configs.BENCH_ESTIMATION[name]
c = configs.parse_config(cfg)
lib = gpu.load_compiled(
    pathlib.Path(os.environ["UNISPARSE_AOT_DIR"]) / configs.lib_name(name, "cuda"),
    runtime=os.environ["UNISPARSE_CUDA_RUNTIME"],
    heads=hq,
    kv_heads=hkv,
    head_dim=d,
    block=c["block"],
)
rt = ctypes.CDLL(os.environ["UNISPARSE_CUDA_RUNTIME"])
q, k, v = structured(32768, hq, hkv, d, seed=1)


def host(fn, reps=20):
    ts = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    torch.cuda.synchronize()
    ts.sort()
    return ts[reps // 2]


for _ in range(3):
    lib.layout(q, k)
print(f"layout host {host(lambda: lib.layout(q, k)):.3f} ms")
os.environ["UNISPARSE_WORKSPACE_LIMIT"] = str(10**15)
print(f"layout host, explicit workspace limit {host(lambda: lib.layout(q, k)):.3f} ms")
del os.environ["UNISPARSE_WORKSPACE_LIMIT"]
rt.unisparse_rt_workspace_limit.restype = ctypes.c_int64
print(f"workspace_limit(cuda) host {host(lambda: rt.unisparse_rt_workspace_limit(1)):.3f} ms")
x = torch.empty(1 << 20, device="cuda")
print(f"torch.empty host {host(lambda: torch.empty(1 << 20, device='cuda')):.3f} ms")
# a big kernel in flight, then layout: does layout wait for it?
big = torch.randn(8192, 8192, device="cuda")


def after_big():
    big @ big
    lib.layout(q, k)


print(f"matmul (8192^2) + layout host {host(after_big):.3f} ms; matmul alone {host(lambda: big @ big):.3f} ms")
