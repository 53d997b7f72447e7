"""Where an estimator's lost recall goes, on the project's generator or the independent one.

    python -m unisparse.fidelity.diagnose --n 32768 --heads 32 --kv-heads 8 --peak 2.5 --seed 1 \\
        --config c_k=32,tau=0.995,estimator=outlier,query_reduce=max

For one configuration it computes the layout (as the harness does), the
dense softmax of the harness's sampled rows token by token, and splits each
row's **missed mass** (the dense mass on key blocks the layout drops) by the
planted component that the missed key belongs to
(:func:`unisparse.synthetic.structured_qkv` with ``planted``; with
``--generator peaked``, :func:`unisparse.peaked.peaked_qkv`'s): the sink
tokens, a vertical line of the row's kv head, the slash line (key ``i - o``
within 2 tokens), a needle (the row is in the needle's query span and the
key in its key span), a key of the row's topic (``peaked`` only), the local
band (``i - j < 256``), or none of them (noise). It prints the split over all rows and over the rows below a recall
threshold, the low rows per head and per kind of row, and for every needle
span the heads and query blocks that drop one of its key blocks with the
number of the block's rows that read the needle, and per such head the
dense mass on the needle's key blocks (mean over the needle rows / over
all the block's rows) and the key blocks it drops (``J:keys``, with the
number of the needle's keys in block ``J``). ``--needle-mass`` prints, per needle, the heads
whose needle rows put the least dense mass on it.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from .. import reference as ref
from ..peaked import peaked_qkv
from ..synthetic import structured_qkv
from .harness import layouts, parse_config, sample_rows

__all__ = ["CATEGORIES", "diagnose", "needle_masses", "main"]

#: The planted components a missed key is attributed to, in order of
#: precedence (a key that is both, e.g. a vertical line inside the local
#: band, counts for the first).
CATEGORIES = ("sink", "needle", "vertical", "slash", "topic", "local", "noise")
LOCAL_SPAN = 256
SLASH_WIDTH = 2


def _categories(rows, N, nd, vert, slash, n_sink=4, topic=None):
    """``[R, N]`` int8 category index (into :data:`CATEGORIES`) of every
    (row, key) pair of one kv head; ``topic``: ``(key_topic [N],
    query_topic [N])`` (``peaked_qkv``'s), a key of the row's topic."""
    j = np.arange(N)
    cat = np.full((len(rows), N), CATEGORIES.index("noise"), dtype=np.int8)
    d = rows[:, None] - j[None, :]
    cat[(d >= 0) & (d < LOCAL_SPAN)] = CATEGORIES.index("local")
    if topic is not None:
        ktop, qtop = (np.asarray(t) for t in topic)
        cat[(ktop[None, :] >= 0) & (ktop[None, :] == qtop[rows][:, None])] = CATEGORIES.index("topic")
    for o in slash:
        cat[np.abs(d - o) <= SLASH_WIDTH] = CATEGORIES.index("slash")
    for a, b in vert:
        cat[:, a:b] = CATEGORIES.index("vertical")
    for x in nd:
        r = (rows >= x["q_start"]) & (rows < x["q_stop"])
        cat[np.ix_(r, np.arange(x["k_start"], x["k_stop"]))] = CATEGORIES.index("needle")
    cat[:, :n_sink] = CATEGORIES.index("sink")
    return cat


def _needle_mass(q, k, x, I, block, h, G, scale, device="cpu"):
    """``(mean over the block's needle rows, mean over all its rows)`` of the
    dense mass head ``h`` puts on the needle's key blocks, in query block ``I``
    (float64, on ``device``)."""
    import torch

    N = q.shape[2]
    rows = torch.arange(I * block, min(N, (I + 1) * block), device=device)
    qh = torch.as_tensor(q[0, h], dtype=torch.float64, device=device)[rows]
    kf = torch.as_tensor(k[0, h // G], dtype=torch.float64, device=device)
    logits = (qh @ kf.T) * scale
    logits = torch.where(torch.arange(N, device=device)[None, :] > rows[:, None], -math.inf, logits)
    p = torch.softmax(logits, dim=1)
    kb0, kb1 = x["k_start"] // block * block, ((x["k_stop"] - 1) // block + 1) * block
    m = p[:, kb0:kb1].sum(1)
    is_needle = (rows >= x["q_start"]) & (rows < x["q_stop"])
    return float(m[is_needle].mean()), float(m.mean())


def needle_masses(N, *, heads, kv_heads, dim=128, peak=2.5, seed=0, needles=16, block=128, log=print):
    """``[needles, heads]``: the dense mass each query head's needle rows
    put on the needle's key blocks (mean over the needle's query rows);
    logs, per needle, the five heads with the least and the median."""
    q, k, _, nd = structured_qkv(1, heads, kv_heads, N, dim, seed=seed, peak=peak, needles=needles)
    G, scale = heads // kv_heads, 1.0 / math.sqrt(dim)
    out = np.empty((len(nd), heads))
    for n_i, x in enumerate(nd):
        rows = np.arange(x["q_start"], x["q_stop"])
        kb0, kb1 = x["k_start"] // block * block, ((x["k_stop"] - 1) // block + 1) * block
        for h in range(heads):
            lg = (q[0, h, rows].astype(np.float64) @ k[0, h // G].astype(np.float64).T) * scale
            lg[np.arange(N)[None, :] > rows[:, None]] = -np.inf
            p = np.exp(lg - lg.max(1, keepdims=True))
            out[n_i, h] = (p[:, kb0:kb1].sum(1) / p.sum(1)).mean()
        low = np.argsort(out[n_i])[:5]
        log(
            f"{n_i} lowest needle-row mass heads: "
            + ", ".join(f"{h}:{out[n_i, h]:.3f}" for h in low)
            + f"  median {np.median(out[n_i]):.3f}"
        )
    return out


def diagnose(
    N,
    cfg,
    *,
    heads,
    kv_heads,
    dim=128,
    peak=2.5,
    seed=0,
    needles=16,
    rows_per_block=8,
    low=0.9,
    device="cpu",
    generator="structured",
    log=print,
):
    """Runs the diagnosis (see the module docstring) with the block scores
    and the dense rows in float64 on ``device`` (``"cpu"``: the NumPy
    reference's estimate); returns a dict with
    ``recall [Hq, R]``, ``missed [Hq, R, C]`` (missed mass per category),
    ``rows`` and the needle report lines. ``generator``: ``"structured"``
    (:func:`unisparse.synthetic.structured_qkv`) or ``"peaked"``
    (:func:`unisparse.peaked.peaked_qkv`: one sink token, topics, and per
    head its sharpness and whether it has the sink in the report)."""
    import torch

    planted = {}
    if generator == "structured":
        q, k, v, nd = structured_qkv(1, heads, kv_heads, N, dim, seed=seed, peak=peak, needles=needles, planted=planted)
        n_sink = 4
    elif generator == "peaked":
        q, k, v, nd = peaked_qkv(1, heads, kv_heads, N, dim, seed=seed, peak=peak, needles=needles, planted=planted)
        n_sink = 1
    else:
        raise ValueError(f"generator must be 'structured' or 'peaked', got {generator!r}")
    counts, indices = layouts(q, k, [cfg], device=None if device == "cpu" else device)[cfg]
    mask = ref.layout_mask(counts, indices)[0]  # [Hg, NB, NB]
    rows = sample_rows(N, cfg.block, rows_per_block if N > 8192 else None, seed)
    R, G = len(rows), heads // kv_heads
    scale = 1.0 / math.sqrt(dim)
    recall = np.empty((heads, R))
    missed = np.zeros((heads, R, len(CATEGORIES)))
    j = torch.arange(N, device=device)
    rows_t = torch.as_tensor(rows, device=device)
    step = max(1, (1 << 25) // N)
    for kh in range(kv_heads):
        cat = (
            torch.as_tensor(
                _categories(
                    rows,
                    N,
                    nd,
                    planted["vertical"].get((0, kh), []),
                    planted["slash"].get((0, kh), []),
                    n_sink=n_sink,
                    topic=planted.get("topic", {}).get((0, kh)),
                )
            )
            .long()
            .to(device)
        )
        kf = torch.as_tensor(k[0, kh], dtype=torch.float64, device=device)
        for h in range(kh * G, (kh + 1) * G):
            qh = torch.as_tensor(q[0, h], dtype=torch.float64, device=device)
            keep = torch.as_tensor(np.repeat(mask[h // cfg.c_h], cfg.block, axis=-1)[:, :N], device=device)  # [NB, N]
            for r0 in range(0, R, step):
                rr = rows_t[r0 : r0 + step]
                x = (qh[rr] @ kf.T) * scale
                x = torch.where(j[None, :] > rr[:, None], -math.inf, x)
                p = torch.softmax(x, dim=1)
                lost = torch.where(keep[rr // cfg.block], 0.0, p)
                recall[h, r0 : r0 + len(rr)] = (1.0 - lost.sum(1)).cpu().numpy()
                m = torch.zeros((len(rr), len(CATEGORIES)), dtype=torch.float64, device=device)
                m.scatter_add_(1, cat[r0 : r0 + len(rr)], lost)
                missed[h, r0 : r0 + len(rr)] = m.cpu().numpy()
    p1 = np.percentile(recall, 1)
    log(
        f"N={N} peak={peak} seed={seed} heads={heads}/{kv_heads} {cfg}: density "
        f"{ref.density(counts, N, cfg.block, cfg.causal):.3f}, recall mean {recall.mean():.4f}, p1 {p1:.3f}"
    )
    lowm = recall < low
    for name, sel in (("all rows", np.ones_like(lowm)), (f"rows with recall < {low}", lowm)):
        tot = missed[sel].sum(0)
        log(
            f"  missed mass, {name} ({int(sel.sum())} of {sel.size}): "
            + ", ".join(f"{c} {t / max(tot.sum(), 1e-300):.1%}" for c, t in zip(CATEGORIES, tot))
        )
    in_needle = np.zeros(R, dtype=bool)
    for x in nd:
        in_needle |= (rows >= x["q_start"]) & (rows < x["q_stop"])
    log(
        f"  low rows in needle query spans: {int(lowm[:, in_needle].sum())} of {int(lowm.sum())} "
        f"(needle rows are {in_needle.mean():.1%} of the rows)"
    )
    per_head = lowm.sum(1)
    log("  low rows per head: " + " ".join(f"{h}:{n}" for h, n in enumerate(per_head) if n))
    if generator == "peaked":
        for h in np.argsort(recall.mean(1)):
            kh, g = divmod(int(h), G)
            tot = missed[h].sum(0)
            log(
                f"  head {h}: sharpness {planted['sharpness'][(0, kh)][g]:.2f}, sink "
                f"{'yes' if planted['sink'][(0, kh)][g] else 'no'}, local width {planted['local'][(0, kh)]:.0f}, "
                f"recall mean {recall[h].mean():.4f} p1 {np.percentile(recall[h], 1):.3f}, low rows {per_head[h]}, "
                "missed: " + ", ".join(f"{c} {t / max(tot.sum(), 1e-300):.0%}" for c, t in zip(CATEGORIES, tot) if t)
            )
    for kh in range(kv_heads):
        hs = slice(kh * G, (kh + 1) * G)
        log(
            f"  kv head {kh}: slash offsets {planted['slash'].get((0, kh), [])}, vertical lines "
            f"{planted['vertical'].get((0, kh), [])}, low rows {int(lowm[hs].sum())}, missed slash mass "
            f"{missed[hs, :, CATEGORIES.index('slash')].sum() / max(missed[hs].sum(), 1e-300):.1%}"
        )
    lines = []
    grp = np.arange(heads) // cfg.c_h
    for n_i, x in enumerate(nd):
        kb = np.arange(x["k_start"] // cfg.block, (x["k_stop"] - 1) // cfg.block + 1)
        drops = []
        for I in range(x["q_start"] // cfg.block, (x["q_stop"] - 1) // cfg.block + 1):
            n_rows = min(x["q_stop"], (I + 1) * cfg.block) - max(x["q_start"], I * cfg.block)
            bad = [h for h in range(heads) if not mask[grp[h], I][kb].all()]
            if bad:
                mass = [_needle_mass(q, k, x, I, cfg.block, h, G, scale, device) for h in bad]

                def dropped(h):  # the needle's key blocks the head drops, with the needle keys each holds
                    return ",".join(
                        f"{J}:{min(x['k_stop'], (J + 1) * cfg.block) - max(x['k_start'], J * cfg.block)}"
                        for J in kb
                        if not mask[grp[h], I, J]
                    )

                drops.append(
                    f"qblock {I} ({n_rows} needle rows): heads "
                    + ", ".join(f"{h} ({m[0]:.2f}/{m[1]:.3f}; kb {dropped(h)})" for h, m in zip(bad, mass))
                )
        lines.append(
            f"  needle {n_i}: q {x['q_start']}-{x['q_stop']}, k {x['k_start']}-{x['k_stop']} "
            + ("kept" if not drops else "DROPPED in " + "; ".join(drops))
        )
    for line in lines:
        log(line)
    return dict(recall=recall, missed=missed, rows=rows, needles=lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m unisparse.fidelity.diagnose", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32768)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--peak", type=float, default=2.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--needles", type=int, default=16)
    ap.add_argument("--rows-per-block", type=int, default=8)
    ap.add_argument("--low", type=float, default=0.9, help="recall below which a row counts as low")
    ap.add_argument("--config", default="c_k=32,tau=0.995,estimator=outlier,query_reduce=max")
    ap.add_argument("--device", default="cpu", help="where the float64 estimate and dense rows run (cpu, cuda)")
    ap.add_argument(
        "--generator",
        choices=("structured", "peaked"),
        default="structured",
        help="the project's generator or the independent one (unisparse.peaked)",
    )
    ap.add_argument(
        "--needle-mass", action="store_true", help="only the dense mass of every head's needle rows on the needle"
    )
    a = ap.parse_args(argv)
    if a.needle_mass:
        needle_masses(a.n, heads=a.heads, kv_heads=a.kv_heads, dim=a.dim, peak=a.peak, seed=a.seed, needles=a.needles)
        return
    diagnose(
        a.n,
        parse_config(a.config),
        heads=a.heads,
        kv_heads=a.kv_heads,
        dim=a.dim,
        peak=a.peak,
        seed=a.seed,
        needles=a.needles,
        rows_per_block=a.rows_per_block,
        low=a.low,
        device=a.device,
        generator=a.generator,
    )


if __name__ == "__main__":
    main()
