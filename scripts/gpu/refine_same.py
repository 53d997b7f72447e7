"""The slash refinement's kernels before and after a change, on the same
inputs: python3 scripts/gpu/refine_same.py [--report] [--libs A B] [N ...]

Loads tune_refine_before and tune_refine (or the TUNING entries A and B)
from $UNISPARSE_AOT_DIR
(scripts/gpu/refine_prepare.sh) and compares their layout() outputs (the
refined block scores, the counts and the indices) bit for bit (NaN equal to
NaN) on structured inputs at each N: issue 17's second rewrite keeps every
fixed-order result, so any difference is a fault of the change, not
rounding. Odd block counts and N not a multiple of 8 are among the defaults
(the probe rows' pairing, the logits' padded rows).

--report: for a change that reorders sums (issue 17's third rewrite: the probe
rows' log-sum-exp and E), where check.py's float32 bound is the judge, the
differences are described (how many, the largest absolute and relative ones
among finite scores) and the exit status is 0; DIFF marks what differs.
"""

import sys

import torch

sys.path[:0] = ["scripts/gpu", "python", "bench"]
import configs  # noqa: E402
from bench_gpu import load_aot, structured  # noqa: E402


def load(name):
    entry = configs.BENCH_ESTIMATION[configs.TUNING[name][0]]
    return load_aot(name, entry)[0], entry[1:4]


def same(a, b):
    """Bit-equal up to NaN payloads; the number of differing elements and
    the largest absolute difference among finite ones."""
    if a.shape != b.shape:
        return False, f"shapes {tuple(a.shape)} and {tuple(b.shape)}"
    if a.is_floating_point():
        nan = torch.isnan(a) & torch.isnan(b)
        diff = ~((a == b) | nan)
        finite = torch.isfinite(a) & torch.isfinite(b)
        worst = rel = 0.0
        if (diff & finite).any():
            gap = (a - b).abs()[diff & finite]
            worst = gap.max().item()
            rel = (gap / torch.maximum(a.abs(), b.abs())[diff & finite]).max().item()
        return not diff.any().item(), (
            f"{int(diff.sum())} of {a.numel()} differ, max |diff| {worst:.3g}, max relative {rel:.3g}"
        )
    diff = a != b
    return not diff.any().item(), f"{int(diff.sum())} differ"


def main():
    args = sys.argv[1:]
    report = "--report" in args
    names = ["tune_refine_before", "tune_refine"]
    if "--libs" in args:
        at = args.index("--libs")
        names = args[at + 1 : at + 3]
        del args[at : at + 3]
    print("refine_same:", " against ".join(names), flush=True)
    sizes = [int(x) for x in args if x != "--report"] or [1000, 4099, 8195, 32768, 100000, 131072]
    before, shape = load(names[0])
    after, _ = load(names[1])
    ok = True
    for n in sizes:
        q, k, _ = structured(n, *shape, seed=n)
        outs = [lib.layout(q, k) for lib in (before, after)]
        torch.cuda.synchronize()
        (s0, c0, i0), (s1, c1, i1) = outs
        # The indices past a row's count are not written: compare the live
        # ones (where the counts agree).
        live = torch.arange(i0.shape[-1], device=i0.device) < torch.minimum(c0, c1)[..., None]
        for what, x, y in (("scores", s0, s1), ("counts", c0, c1), ("indices", i0[live], i1[live])):
            equal, why = same(x, y)
            ok &= equal
            bad = "DIFF" if report else "FAIL"
            print(f"{'PASS' if equal else bad} N={n} {what}: {'bit for bit' if equal else why}", flush=True)
        q = k = outs = s0 = s1 = c0 = c1 = i0 = i1 = live = None
        torch.cuda.empty_cache()
    print("refine_same:", "all equal" if ok else "DIFFERENCES", "(report)" if report else "", flush=True)
    sys.exit(0 if ok or report else 1)


if __name__ == "__main__":
    main()
