"""One compiled layout() call at N tokens (for ncu): python3 .device/one_layout.py NAME N"""

import os
import pathlib
import sys

import torch

sys.path[:0] = ["scripts/gpu", "python", "bench"]
import configs  # noqa: E402
from bench_gpu import structured  # noqa: E402

from unisparse import gpu  # noqa: E402

name, n = sys.argv[1], int(sys.argv[2])
base = configs.TUNING[name][0] if name in configs.TUNING else name
cfg, hq, hkv, d, dtype, _ = configs.BENCH_ESTIMATION[base]
c = configs.parse_config(cfg)
lib = gpu.load_compiled(
    pathlib.Path(os.environ["UNISPARSE_AOT_DIR"]) / configs.lib_name(name, "cuda"),
    runtime=os.environ["UNISPARSE_CUDA_RUNTIME"],
    heads=hq,
    kv_heads=hkv,
    head_dim=d,
    block=c["block"],
)
q, k, v = structured(n, hq, hkv, d, seed=1)
for _ in range(2):
    lib.layout(q, k)
torch.cuda.synchronize()
print("done")
