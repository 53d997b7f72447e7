"""Where the host part of a 32K estimation call goes: host time per call, GPU span, and the driver API calls
(torch.profiler / CUPTI), for est_default at 32K and 128K.  python3 .device/host_profile.py OUTDIR"""

import os
import pathlib
import sys
import time

import torch

sys.path[:0] = ["scripts/gpu", "python", "bench"]
import configs  # noqa: E402
from bench_gpu import structured  # noqa: E402

from unisparse import gpu  # noqa: E402

out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
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
for n in (32768, 131072):
    q, k, v = structured(n, hq, hkv, d, seed=n)
    for _ in range(5):
        lib.layout(q, k)
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    one, host, py = [], [], []
    for _ in range(30):
        torch.cuda.synchronize()
        s.record()
        t0 = time.perf_counter()
        lib.layout(q, k)
        host.append((time.perf_counter() - t0) * 1e3)
        e.record()
        torch.cuda.synchronize()
        one.append(s.elapsed_time(e))
    # the Python part alone: descriptors and outputs without the entry point
    for _ in range(30):
        t0 = time.perf_counter()
        lib._check(q, k)
        o = lib._layout_outputs(q, scores=True)
        descs = [gpu.tensor_descriptor(t) for t in [q, k, *o]]
        py.append((time.perf_counter() - t0) * 1e3)
    s.record()
    for _ in range(30):
        lib.layout(q, k)
    e.record()
    torch.cuda.synchronize()
    batched = s.elapsed_time(e) / 30

    def med(xs):
        return sorted(xs)[len(xs) // 2]

    print(
        f"N={n}: one call (events) {med(one):.3f} ms; back to back {batched:.3f} ms/call; host time of a call "
        f"{med(host):.3f} ms; of it python (check, outputs, descriptors) {med(py):.3f} ms",
        flush=True,
    )
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(10):
            lib.layout(q, k)
        torch.cuda.synchronize()
    prof.export_chrome_trace(str(out / f"trace_{n}.json"))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=60))
    print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=15, max_name_column_width=60))
