"""Two compiled estimators' layouts on the same inputs, bit for bit.

A code-generation change that keeps every operation and its order (the
outlier scoring kernel's key slot loops unrolled, --score-outlier-unroll-slots)
must give the bits of the library it replaces: the scores (compared as raw
f32 words, NaN payloads included), the counts and the block indices. Both
names are entries of configs.TUNING or configs.BENCH_ESTIMATION whose
libraries are in $UNISPARSE_AOT_DIR (compile_all.py) and which share a
signature (heads, head dim, block). Inputs: the bench's structured ones
(bench_gpu.structured, a seed per N) and the project's generator at peak 2.5,
at every N given (odd N too: the masked key tiles and the last composites).

  UNISPARSE_CUDA_RUNTIME=... UNISPARSE_AOT_DIR=... \\
    python3 scripts/gpu/layout_same.py tune_peaked tune_peaked_unroll --n 4099 32768 131072

Exit status 1 if any output differs.
"""

import argparse
import pathlib
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts" / "gpu"))
sys.path.insert(0, str(ROOT / "bench"))

import check  # noqa: E402
import configs  # noqa: E402
from bench_gpu import load_aot, structured  # noqa: E402
from bench_gpu_estimation import generator_inputs  # noqa: E402


def entry(name):
    """The BENCH_ESTIMATION entry behind `name` (a tuning variant's base)."""
    base = configs.TUNING[name][0] if name in configs.TUNING else name
    return configs.BENCH_ESTIMATION[base]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--n", type=int, nargs="+", default=[4099, 32768])
    p.add_argument("--peak", type=float, default=2.5)
    args = p.parse_args()
    ea, eb = entry(args.a), entry(args.b)
    if ea[1:5] != eb[1:5]:
        sys.exit(f"{args.a} and {args.b} have different signatures: {ea[1:5]} and {eb[1:5]}")
    _, hq, hkv, d, _, _ = ea
    libs = [load_aot(args.a, ea)[0], load_aot(args.b, eb)[0]]
    failed = 0
    for n in args.n:
        for kind in ("structured", f"generator peak={args.peak:g}"):
            if kind == "structured":
                q, k, _ = structured(n, hq, hkv, d, seed=n)
            else:
                q, k, _ = generator_inputs(n, hq, hkv, d, args.peak)
            outs = [lib.layout(q, k) for lib in libs]
            torch.cuda.synchronize()
            diffs = []
            for what, x, y in zip(("scores", "counts", "indices"), outs[0], outs[1]):
                if x.is_floating_point():  # raw words: NaNs and signed zeros too
                    x, y = check.bits(x), check.bits(y)
                if x.shape != y.shape:
                    diffs.append(f"{what} shapes {tuple(x.shape)} / {tuple(y.shape)}")
                elif not torch.equal(x, y):
                    diffs.append(f"{what}: {int((x != y).sum())} of {x.numel()} differ")
            failed += bool(diffs)
            print(
                f"{'FAIL' if diffs else 'PASS'} {args.a} / {args.b} N={n} {kind}: "
                + ("; ".join(diffs) if diffs else "scores, counts and indices bit for bit"),
                flush=True,
            )
            q = k = outs = None
            torch.cuda.empty_cache()
    print("all equal" if not failed else f"{failed} runs differ", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
