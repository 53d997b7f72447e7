"""Fidelity harness: how much of dense attention a configuration keeps.

    python -m unisparse.fidelity [--n 8192 16384 32768] [--sweep quick|default|wide]
                                 [--config tau=0.95,c_k=8 ...] [--png fidelity.png]

For each sequence length it generates structured Q/K/V
(:func:`unisparse.synthetic.structured_qkv`: sinks, local windows, vertical
and slash lines, GQA, needle spans at random depths; ``--peak`` sharpens the
whole map), computes the block layout of every configuration with the NumPy
reference (:mod:`unisparse.reference`; its layouts equal the compiled path's
bit for bit, ``--check-compiled`` verifies that on the first length), and
measures it against dense attention in float64:

* **density**: kept (query block, key block) pairs / pairs of the causal
  block grid (exact, all rows); **oracle**: the density an exact top-p on
  the true block masses would need for the same ``tau``
  (:func:`oracle_density`), the floor of any estimator on this data;
* **recall**: per query row, the share of its dense softmax mass that falls
  in the kept blocks; reported as the mean over rows, the 1st percentile over
  rows (``p1``), and the 1st percentile over (head, query block) of the
  per-block mean (``blk_p1``);
* **needles**: share of (needle, query head, needle query row) whose layout
  row keeps every key block of the needle's key span
  (:func:`unisparse.synthetic.needle_hit_rate`, exact, all rows);
  ``spans`` counts needle spans kept for every head and row;
* **rel_l2**: ``||O_sparse - O_dense|| / ||O_dense||`` over the evaluated
  rows, where ``O_sparse`` is exact attention restricted to the layout (what
  the compiled kernel computes, up to its rounding).

Sampling: recall and ``rel_l2`` need each evaluated row's dense softmax over
all ``N`` keys. Up to ``--full-rows`` tokens (default 8192) every row is
evaluated. Beyond it, ``--rows-per-block`` rows (default 8) are drawn
uniformly at random without replacement from every query block (seeded, the
same rows for every head and configuration): stratified sampling, so every
block, early and late, is represented equally and the per-block statistics
exist. Density and needle retrieval never sample. The dense pass is shared by
all configurations: per evaluated row it keeps the softmax mass and the
``p @ V`` partial sum of every key block (at the finest block size of the
sweep), so a configuration costs one small contraction, not an attention.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time

import numpy as np

from . import reference as ref
from .config import Config
from .synthetic import needle_hit_rate, structured_qkv

__all__ = ["parse_config", "SWEEPS", "layouts", "evaluate", "run", "plot", "main"]

#: Named sweeps: each entry is a dict of Config fields (block defaults to 128).
SWEEPS = {
    "quick": [
        dict(tau=0.9),
        dict(tau=0.99, c_k=8),
    ],
    "default": [
        dict(tau=0.9),                      # the design's starting default
        dict(tau=0.95),
        dict(tau=0.99),
        dict(tau=0.9, c_k=8),
        dict(tau=0.95, c_k=8),
        dict(tau=0.98, c_k=8),
        dict(tau=0.99, c_k=8),              # the proposed default
        dict(tau=0.995, c_k=8),
        dict(tau=0.99, c_k=4),
        dict(tau=0.99, c_q=8, c_k=8),
        dict(tau=0.99, c_k=8, c_h=2),
        dict(tau=0.95, local_blocks=2),
        dict(tau=0.95, min_blocks=8),
    ],
}
SWEEPS["wide"] = SWEEPS["default"] + [
    dict(tau=0.8),
    dict(tau=0.95, c_k=4),
    dict(tau=0.999, c_k=8),
    dict(tau=0.99, c_h=2),
    dict(tau=0.99, c_q=32, c_k=8),
    dict(tau=0.9, min_blocks=16),
    dict(tau=0.99, block=64, c_k=8),
]

def parse_config(spec: str) -> Config:
    """``"tau=0.95,c_k=8"`` -> ``Config(tau=0.95, c_k=8)`` (:meth:`Config.parse`)."""
    return Config.parse(spec)


def label(cfg: Config) -> str:
    """Short label: the fields that differ from ``Config()`` plus tau."""
    base = Config()
    parts = [f"tau={cfg.tau:g}"]
    for f in dataclasses.fields(Config):
        if f.name != "tau" and getattr(cfg, f.name) != getattr(base, f.name):
            parts.append(f"{f.name}={getattr(cfg, f.name)}")
    return ",".join(parts)


# --------------------------------------------------------------------------- #
# Layouts (NumPy reference, shared compression and scoring)
# --------------------------------------------------------------------------- #


def layouts(q, k, configs):
    """``{cfg: (counts, indices)}`` from the NumPy reference; compression and
    scores are computed once per (block, c_q, c_k, c_h, causal, scale)."""
    Hq, Hkv = q.shape[1], k.shape[1]
    comp, scores, out = {}, {}, {}
    for cfg in configs:
        kw = cfg.reference_kwargs()
        for key, x, f, g in (("q", q, cfg.c_q, 1), ("k", k, cfg.c_k, Hq // Hkv)):
            if (key, f, cfg.c_h) not in comp:
                comp[(key, f, cfg.c_h)] = ref.compress(x, f, head_factor=cfg.c_h, kv_group=g)
        skey = (cfg.block, cfg.c_q, cfg.c_k, cfg.c_h, cfg.causal, cfg.scale)
        if skey not in scores:
            scores[skey] = ref.block_score(comp[("q", cfg.c_q, cfg.c_h)], comp[("k", cfg.c_k, cfg.c_h)],
                                           cfg.block, cfg.c_q, cfg.c_k, causal=cfg.causal, scale=kw["scale"])
        out[cfg] = ref.block_select(scores[skey], cfg.tau, local_blocks=cfg.local_blocks, sink=cfg.sink,
                                    min_blocks=cfg.min_blocks, max_blocks=cfg.max_blocks, causal=cfg.causal)
    return out


# --------------------------------------------------------------------------- #
# Metrics against dense attention
# --------------------------------------------------------------------------- #


def sample_rows(N: int, block: int, rows_per_block: int | None, seed: int) -> np.ndarray:
    """All rows, or ``rows_per_block`` rows drawn from every block of ``block``
    tokens (the last block may be partial), sorted."""
    if rows_per_block is None:
        return np.arange(N)
    rng = np.random.default_rng(seed + 7919)
    rows = []
    for i0 in range(0, N, block):
        i1 = min(N, i0 + block)
        rows.append(np.sort(rng.choice(np.arange(i0, i1), size=min(rows_per_block, i1 - i0), replace=False)))
    return np.concatenate(rows)


def evaluate(q, k, v, configs, lays, rows, *, scale=None, causal=True, chunk_elems=1 << 24):
    """Recall and output error of each layout on the query ``rows``.

    Returns ``{cfg: dict(recall=[Hq, R] float64, err2=float, ref2=float)}``
    where ``err2``/``ref2`` are the squared norms of ``O_sparse - O_dense``
    and ``O_dense`` over the rows (summed over heads and batch 0), plus
    ``"block_mass"``: each row's dense softmax mass per key block of the
    finest block size, float32 ``[Hq, R, NBf]``. Only batch 0 is evaluated.
    """
    _, Hq, N, D = q.shape
    Hkv = k.shape[1]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    fine = math.gcd(*(c.block for c in configs))
    NBf = -(-N // fine)
    pad = NBf * fine - N
    R = len(rows)
    res = {c: dict(recall=np.empty((Hq, R)), err2=0.0, ref2=0.0) for c in configs}
    res["block_mass"] = np.empty((Hq, R, NBf), dtype=np.float32)  # normalised, per fine block
    # layout of each config expanded to fine key blocks: [Hg, NBq, NBf] bool
    fine_masks = {}
    for c in configs:
        counts, indices = lays[c]
        m = ref.layout_mask(counts[:1], indices[:1])[0]  # [Hg, NB, NB]
        fine_masks[c] = np.repeat(m, c.block // fine, axis=-1)[..., :NBf]
    step = max(1, chunk_elems // max(1, N))
    for h in range(Hq):
        kh = h // (Hq // Hkv)
        kf = k[0, kh].astype(np.float64)
        vf = v[0, kh].astype(np.float64)
        if pad:
            vpad = np.concatenate([vf, np.zeros((pad, D))])
        else:
            vpad = vf
        vblk = vpad.reshape(NBf, fine, D)
        for r0 in range(0, R, step):
            rr = rows[r0:r0 + step]
            qf = q[0, h, rr].astype(np.float64)
            logits = (qf @ kf.T) * scale
            if causal:
                logits[np.arange(N)[None, :] > rr[:, None]] = -np.inf
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            del logits
            if pad:
                p = np.concatenate([p, np.zeros((len(rr), pad))], axis=1)
            pb = p.reshape(len(rr), NBf, fine)
            mass = pb.sum(axis=2)  # [r, NBf]
            wsum = np.matmul(pb.transpose(1, 0, 2), vblk).transpose(1, 0, 2)  # [r, NBf, D]
            del p, pb
            l = mass.sum(axis=1)
            res["block_mass"][h, r0:r0 + len(rr)] = mass / l[:, None]
            o_dense = wsum.sum(axis=1) / l[:, None]
            for c in configs:
                g = h // c.c_h
                sel = fine_masks[c][g, rr // c.block].astype(np.float64)  # [r, NBf]
                kept = (mass * sel).sum(axis=1)
                res[c]["recall"][h, r0:r0 + len(rr)] = kept / l
                o_sp = np.matmul(sel[:, None, :], wsum)[:, 0] / np.where(kept > 0, kept, 1.0)[:, None]
                res[c]["err2"] += float(((o_sp - o_dense) ** 2).sum())
                res[c]["ref2"] += float((o_dense ** 2).sum())
    return res


def oracle_density(block_mass, rows, N, fine, block, tau):
    """Density of an exact top-p on the true block masses: for each (head,
    query block), the evaluated rows' mean dense distribution over key blocks
    is kept, largest first, until it reaches ``tau`` (no forced blocks, one
    layout per head). The floor any estimator faces for that ``tau``."""
    Hq, _, NBf = block_mass.shape
    r = block // fine
    NB = -(-N // block)
    bm = np.pad(block_mass, ((0, 0), (0, 0), (0, NB * r - NBf))).reshape(Hq, len(rows), NB, r).sum(-1)
    kept = 0
    for I in range(NB):
        sel = (rows // block) == I
        if not sel.any():
            continue
        d = np.sort(bm[:, sel, : I + 1].mean(axis=1), axis=-1)[:, ::-1]  # [Hq, I+1]
        need = (np.cumsum(d, axis=-1) < tau * d.sum(axis=-1, keepdims=True) * (1 - 1e-9)).sum(-1) + 1
        kept += np.minimum(need, I + 1).sum()
    return float(kept) / (Hq * NB * (NB + 1) / 2)


def run(N, configs, *, heads=4, kv_heads=2, dim=128, peak=1.5, needles=16, seed=0,
        full_rows=8192, rows_per_block=8, check_compiled=False, log=print):
    """Generates the data for ``N`` and returns one row dict per config."""
    t0 = time.perf_counter()
    q, k, v, nd = structured_qkv(1, heads, kv_heads, N, dim, seed=seed, peak=peak, needles=needles)
    t1 = time.perf_counter()
    lays = layouts(q, k, configs)
    t2 = time.perf_counter()
    if check_compiled:
        _check_compiled(q, k, lays, log)
    block = min(c.block for c in configs)
    sampled = N > full_rows
    rows = sample_rows(N, block, rows_per_block if sampled else None, seed)
    res = evaluate(q, k, v, configs, lays, rows)
    t3 = time.perf_counter()
    log(f"  N={N}: data {t1 - t0:.1f} s, layouts {t2 - t1:.1f} s, dense pass over "
        f"{len(rows)} rows x {heads} heads {t3 - t2:.1f} s")
    fine = math.gcd(*(c.block for c in configs))
    oracle = {}
    out = []
    for c in configs:
        if (c.block, c.tau) not in oracle:
            oracle[(c.block, c.tau)] = oracle_density(res["block_mass"], rows, N, fine, c.block, c.tau)
        counts, indices = lays[c]
        rec = res[c]["recall"]
        nbq = -(-N // c.block)
        # per (head, query block) mean recall over the evaluated rows
        blk = np.array([[rec[h, (rows // c.block) == I].mean() for I in range(nbq)] for h in range(heads)])
        spans = 0
        for n_ in nd:
            spans += needle_hit_rate([n_], counts, indices, c.block, heads) == 1.0
        out.append(dict(
            N=N, config=label(c), cfg=c, tau=c.tau,
            density=ref.density(counts, N, c.block, c.causal), oracle=oracle[(c.block, c.tau)],
            recall_mean=float(rec.mean()), recall_p1=float(np.percentile(rec, 1)),
            block_p1=float(np.percentile(blk, 1)), recall_min=float(rec.min()),
            needles=needle_hit_rate(nd, counts, indices, c.block, heads),
            spans=f"{spans}/{len(nd)}",
            rel_l2=math.sqrt(res[c]["err2"] / res[c]["ref2"]) if res[c]["ref2"] else 0.0,
            rows="sampled" if sampled else "all", n_rows=len(rows),
        ))
    return out


def _check_compiled(q, k, lays, log):
    """Compares the reference layouts with the compiled CPU path (f32)."""
    from .api import compile as compile_
    for c, (counts, indices) in lays.items():
        kern = compile_(c, heads=q.shape[1], kv_heads=k.shape[1], head_dim=q.shape[3], dtype="f32")
        _, cc, ci = kern.layout(np.ascontiguousarray(q, np.float32), np.ascontiguousarray(k, np.float32))
        same = float((np.all(ci == indices, axis=-1) & (cc == counts)).mean())
        log(f"  compiled layout vs reference ({label(c)}): {same * 100:.2f}% of rows identical")


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #

_COLUMNS = [("N", "{:>6}"), ("config", "{:<28}"), ("density", "{:>7.3f}"), ("oracle", "{:>6.3f}"), ("recall_mean", "{:>7.4f}"),
            ("recall_p1", "{:>7.4f}"), ("block_p1", "{:>7.4f}"), ("needles", "{:>7.1%}"),
            ("spans", "{:>6}"), ("rel_l2", "{:>8.2e}"), ("rows", "{:>7}")]
_HEAD = ["N", "config", "density", "oracle", "rec_mean", "rec_p1", "blk_p1", "needles", "spans", "rel_l2", "rows"]


def table(rows, markdown=False) -> str:
    if markdown:
        lines = ["| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
        for r in rows:
            lines.append("| " + " | ".join(f.format(r[k]).strip() for k, f in _COLUMNS) + " |")
        return "\n".join(lines)
    widths = [len(f.format(rows[0][k])) if rows else 8 for k, f in _COLUMNS]
    head = "  ".join(h.rjust(w) if i != 1 else h.ljust(w) for i, (h, w) in enumerate(zip(_HEAD, widths)))
    return "\n".join([head] + ["  ".join(f.format(r[k]) for k, f in _COLUMNS) for r in rows])


def plot(rows, path, title=None):
    """Density vs recall (mean and 1st percentile), one colour per N."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5), sharex=True)
    ns = sorted({r["N"] for r in rows})
    cmap = plt.get_cmap("viridis")
    for ax, key, name in ((axes[0], "recall_mean", "mean recall"), (axes[1], "recall_p1", "1st-percentile recall")):
        for i, n in enumerate(ns):
            sub = [r for r in rows if r["N"] == n]
            col = cmap(i / max(1, len(ns) - 1) * 0.85)
            ax.scatter([r["density"] for r in sub], [r[key] for r in sub], color=col,
                       label=f"N={n // 1024}K" if n % 1024 == 0 else f"N={n}", s=28, zorder=3)
            for r in sub:
                miss = r["needles"] < 1.0
                ax.annotate(r["config"].replace("tau=", "τ") + (" ✗" if miss else ""), (r["density"], r[key]),
                            fontsize=6, alpha=0.8, xytext=(3, 2), textcoords="offset points",
                            color="crimson" if miss else "black")
        ax.axhline(0.99, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("density (kept / causal block grid)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_title("mean attention-mass recall")
    axes[1].set_title("1st-percentile recall (rows)")
    fig.suptitle(title or "UniSparse fidelity vs density (✗: a needle span was missed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m unisparse.fidelity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[8192, 16384, 32768], help="sequence lengths")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--peak", type=float, default=1.5, help="inverse temperature of the synthetic map")
    p.add_argument("--needles", type=int, default=16, help="needle spans per sequence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sweep", choices=sorted(SWEEPS), default="default")
    p.add_argument("--config", action="append", default=[],
                   help="a config as field=value,... (repeatable; replaces --sweep)")
    p.add_argument("--full-rows", type=int, default=8192, help="evaluate every row up to this N")
    p.add_argument("--rows-per-block", type=int, default=8, help="rows sampled per query block beyond it")
    p.add_argument("--png", default="fidelity.png", help="plot path ('' for none)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--check-compiled", action="store_true",
                   help="compare the reference layouts with the compiled CPU path on the first N")
    a = p.parse_args(argv)

    configs = [parse_config(s) for s in a.config] or [Config(**d) for d in SWEEPS[a.sweep]]
    configs = list(dict.fromkeys(configs))
    print(f"UniSparse fidelity: Hq={a.heads} Hkv={a.kv_heads} D={a.dim} peak={a.peak} needles={a.needles} "
          f"seed={a.seed}; {len(configs)} configs; all rows up to N={a.full_rows}, "
          f"else {a.rows_per_block} sampled rows per query block")
    rows = []
    t0 = time.perf_counter()
    for i, n in enumerate(a.n):
        rows += run(n, configs, heads=a.heads, kv_heads=a.kv_heads, dim=a.dim, peak=a.peak,
                    needles=a.needles, seed=a.seed, full_rows=a.full_rows, rows_per_block=a.rows_per_block,
                    check_compiled=a.check_compiled and i == 0)
    print(table(rows, markdown=a.markdown))
    print(f"total {time.perf_counter() - t0:.1f} s")
    if a.png:
        plot(rows, a.png, title=f"UniSparse fidelity: Hq={a.heads}/Hkv={a.kv_heads}, D={a.dim}, "
                                f"peak={a.peak}, {a.needles} needles (✗: a needle span missed)")
        print(f"wrote {a.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
