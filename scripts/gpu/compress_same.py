"""The outlier compress kernels of two builds on the same inputs, byte for byte.

A rewrite that keeps every group's operations and their order (session 16's
key composites shared by a kv head's groups) must give the bits of the kernel
it replaces. The compress-alone entries of
scripts/gpu/outlier_compress_entry.mlir (check.OUTLIER_COMPRESS_ENTRIES),
compiled by each build, run on the same inputs (structured at 962, 4099 and,
at D 128, 32768 tokens; exact ones at 962 and 4098, batch 2); their outputs
are compared as raw bytes (NaN payloads included).

  UNISPARSE_CUDA_RUNTIME=... python3 scripts/gpu/compress_same.py BEFORE.so AFTER.so

(--device cpu runs the same entries built for the CPU on CPU tensors: a dry
run of this script.) Exit status 1 if any output differs or a call fails.
"""

import argparse
import os
import pathlib
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
import check  # noqa: E402

from unisparse import _build, gpu  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(2), "little"))
    a = p.parse_args()
    if a.device == "cuda":
        gpu.load_runtime(os.environ["UNISPARSE_CUDA_RUNTIME"])
    else:
        from unisparse import cpu

        cpu.runtime()  # the CPU entries resolve unisparse_rt_* from it
    libs = [_build.load_library(pathlib.Path(x)) for x in (a.before, a.after)]
    rng = np.random.default_rng(a.seed)
    print(f"seed {a.seed}", flush=True)
    failed = 0
    for name, (dtype, d, hq, hkv, keys, at) in check.OUTLIER_COMPRESS_ENTRIES.items():
        tdt = torch.bfloat16 if dtype == "bf16" else torch.float16
        runs = [("structured", n) for n in (962, 4099, 32768) if n < 5000 or d == 128]
        runs += [("exact", n) for n in (962, 4098)]
        for kind, n in runs:
            q, k = check.outlier_compress_inputs(kind, n, hq, hkv, d, a.seed, rng)
            qt, kt = (torch.from_numpy(np.ascontiguousarray(x)).to(a.device, tdt) for x in (q, k))
            x = kt if keys else qt
            c, r, hot = at["c"], at["r"], at["hot"]
            groups = (x.shape[1] * at["kvg"]) // at["hf"]
            slots = r + 1 + int(at["spread"])
            outs = []
            for lib in libs:
                out = torch.full((2, groups, -(-n // c), slots, d), float("nan"), device=a.device)
                fn = getattr(lib, "_mlir_ciface_" + name)
                fn.restype = None
                check.run_entry(fn, [x, qt, out] if hot else [x, out], a.device)
                outs.append(out.view(torch.int32).cpu())
            same = torch.equal(outs[0], outs[1])
            differ = int((outs[0] != outs[1]).sum())
            failed += not same
            print(
                f"{'PASS' if same else 'FAIL'} {name} {kind} N={n}: "
                f"{'bit for bit' if same else f'{differ} of {outs[0].numel()} words differ'}",
                flush=True,
            )
    print(f"{'all equal' if not failed else f'{failed} outputs differ'}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
