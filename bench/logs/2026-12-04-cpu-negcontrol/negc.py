"""check.py's slash negative control reproduced on the CPU (the reference's first pass instead of the GPU's):
which decided group the old rule (the first) and the new one (the most lifted by the refinement) take, and whether
moving that group's offsets by 3 blocks is rejected. python3 negc.py N SEED (run from the repo root)."""

import sys

import numpy as np
import torch

sys.path[:0] = ["scripts/gpu", "python"]
import configs  # noqa: E402

from unisparse import Config  # noqa: E402
from unisparse import reference as ref  # noqa: E402
from unisparse.reference import twolevel  # noqa: E402
from unisparse.reference.twolevel_f32 import (  # noqa: E402
    DECIDED,
    judge_groups,
    logit_error,
    offset_groups,
    refined_tolerance,
)
from unisparse.synthetic import structured_qkv  # noqa: E402


def moved_offsets(offs, target, cfg, n, min_off):
    bad = offs.copy()
    row = bad[target]
    moved = np.where(row - 3 * cfg.block > min_off, row - 3 * cfg.block, np.minimum(row + 3 * cfg.block, n - 1))
    row[row >= 0] = moved[row >= 0]
    return bad


def main():
    n, seed = int(sys.argv[1]), int(sys.argv[2])
    cfg = Config(**configs.parse_config(configs.CHECK["slash_h32_bf16_d128"][0]))
    q, k, _ = structured_qkv(1, 32, 8, n, 128, seed=seed, peak=1.5)[:3]
    q64, k64 = (torch.from_numpy(x).to(torch.bfloat16).double().numpy() for x in (q, k))
    dx = logit_error(q64, k64, cfg.scale or 128**-0.5)
    status, _ = offset_groups(q64, k64, cfg, dx)
    s64 = ref.estimate(q64, k64, block=cfg.block, c_q=cfg.c_q, c_k=cfg.c_k, causal=True)
    print("scores", s64.shape, flush=True)
    want = twolevel.refine_config(s64, q64, k64, cfg)
    tol = refined_tolerance(want, cfg, dx)
    decided = status == DECIDED
    min_off = cfg.local_blocks * cfg.block
    _, slash = twolevel.last_rows(q64, k64, cfg.last_q, c_h=cfg.c_h, scale=cfg.scale)
    offs = twolevel.slash_offsets(slash, cfg.n_offsets, min_off)
    plain = s64 / s64.sum(-1, keepdims=True)
    groups = [bg for bg in np.ndindex(status.shape) if decided[bg] and offs[bg][0] > 0]
    lift = sorted(
        ((float(np.nan_to_num(np.abs(plain[bg] - want[bg]) / tol[bg]).max()), bg) for bg in groups), reverse=True
    )
    print("old rule's group", groups[0], "offsets", offs[groups[0]].tolist(), flush=True)
    print("lift top", lift[:3], "the old rule's group", [x for x in lift if x[1] == groups[0]], flush=True)
    for rule, target in (("old", groups[0]), ("new", lift[0][1])):
        r_bad = twolevel.refine_config(s64, q64, k64, cfg, offsets=moved_offsets(offs, target, cfg, n, min_off))
        verdict = judge_groups(r_bad, want, tol, status, None, None)[target]
        worst = float(np.max(np.abs(r_bad[target] - want[target]) / tol[target]))
        print(rule, target, "judged", verdict, "max ratio to the bound", worst, flush=True)


if __name__ == "__main__":
    main()
