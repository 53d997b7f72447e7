"""Pareto plot and summary table of the estimators: ratio to the floor against scoring cost.

    python -m unisparse.fidelity.pareto RUN.json [RUN.json ...] [--png pareto.png] [--markdown]

Reads the ``--json`` rows of ``python -m unisparse.fidelity`` runs (any mix
of sequence lengths, peaks, seeds and generators), and

* prints one line per (generator, peak, N, configuration) over the seeds
  of the runs: scoring cost (multiply-adds over mean pooling's at c_q 16 / c_k 8, and
  in percent of dense ``QKᵀ``'s; :mod:`unisparse.fidelity.cost`), density,
  floor, ratio (median, min-max), mean recall, 1st-percentile recall and
  block p1 (each the worst seed), needle spans, the per-row top-p's spans
  and the spans it keeps that the layout loses (each the worst seed);
* plots ratio against cost, one panel per (generator, peak), one colour per
  configuration, one marker per N, the median over seeds with its min-max
  range, the targets dashed (ratio 1.3 at peak 2.5, 1.15 otherwise; cost 2).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import numpy as np

__all__ = ["summarize", "plot", "main"]

_MARKERS = "os^Dv<>ph*"


def _key(r):
    return (r.get("generator", "structured"), float(r.get("peak", float("nan"))), int(r["N"]), r["config"])


def summarize(rows):
    """One dict per (generator, peak, N, config) over the seeds present."""
    groups = defaultdict(list)
    for r in rows:
        groups[_key(r)].append(r)
    out = []
    for (gen, peak, n, config), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        ratio = np.array([r["ratio"] for r in rs])
        spans = [r["spans"] for r in rs]
        out.append(
            dict(
                generator=gen,
                peak=peak,
                N=n,
                config=config,
                family=rs[0].get("family", config),
                tau=rs[0]["tau"],
                seeds=sorted({int(r.get("seed", 0)) for r in rs}),
                cost=rs[0].get("cost", float("nan")),
                cost_dense=rs[0].get("cost_dense", float("nan")),
                exps=rs[0].get("exps", float("nan")),
                density=float(np.median([r["density"] for r in rs])),
                floor=float(np.median([r["floor"] for r in rs])),
                ratio=float(np.median(ratio)),
                ratio_min=float(ratio.min()),
                ratio_max=float(ratio.max()),
                recall_mean=min(r["recall_mean"] for r in rs),
                recall_p1=min(r["recall_p1"] for r in rs),
                block_p1=min(r["block_p1"] for r in rs),
                spans=min(spans, key=lambda s: int(str(s).split("/")[0])),
                spans_row=min(
                    (r.get("spans_row", "-") for r in rs),
                    key=lambda s: int(str(s).split("/")[0]) if str(s)[:1].isdigit() else -1,
                ),
                spans_lost=max((r.get("spans_lost", "-") for r in rs), key=lambda v: v if isinstance(v, int) else -1),
            )
        )
    return out


def table(summary, markdown=False) -> str:
    head = [
        "generator",
        "peak",
        "N",
        "config",
        "seeds",
        "cost",
        "QK^T %",
        "exps",
        "density",
        "floor",
        "ratio (min-max)",
        "rec_mean",
        "rec_p1",
        "blk_p1",
        "spans",
        "spans_row",
        "lost",
    ]
    lines = []
    for s in summary:
        cells = [
            s["generator"],
            f"{s['peak']:g}",
            f"{s['N'] // 1024}K" if s["N"] % 1024 == 0 else str(s["N"]),
            s["config"],
            ",".join(map(str, s["seeds"])),
            f"{s['cost']:.2f}",
            f"{100 * s['cost_dense']:.2f}",
            f"{s['exps']:.2f}",
            f"{s['density']:.3f}",
            f"{s['floor']:.3f}",
            f"{s['ratio']:.2f} ({s['ratio_min']:.2f}-{s['ratio_max']:.2f})",
            f"{s['recall_mean']:.4f}",
            f"{s['recall_p1']:.3f}",
            f"{s['block_p1']:.3f}",
            str(s["spans"]),
            str(s["spans_row"]),
            str(s["spans_lost"]),
        ]
        lines.append(cells)
    if markdown:
        return "\n".join(
            ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(c) + " |" for c in lines]
        )
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head)] + [fmt(c) for c in lines])


def plot(summary, path, title=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(s["generator"], s["peak"]) for s in summary})
    configs = list(dict.fromkeys(s["config"] for s in summary))
    ns = sorted({s["N"] for s in summary})
    cmap = plt.get_cmap("tab10")
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6.2 * cols, 5.2 * nrows), squeeze=False)
    for i, (gen, peak) in enumerate(panels):
        ax = axes[i // cols, i % cols]
        for ci, cfg in enumerate(configs):
            color = cmap(ci % 10)
            pts = sorted(
                (s for s in summary if (s["generator"], s["peak"], s["config"]) == (gen, peak, cfg)),
                key=lambda s: s["N"],
            )
            for s in pts:
                m = _MARKERS[ns.index(s["N"]) % len(_MARKERS)]
                miss = not str(s["spans"]).startswith(str(s["spans"]).split("/")[-1] + "/")
                ax.errorbar(
                    s["cost"],
                    s["ratio"],
                    yerr=[[s["ratio"] - s["ratio_min"]], [s["ratio_max"] - s["ratio"]]],
                    fmt=m,
                    color=color,
                    ms=6,
                    mfc="none" if miss or s["recall_p1"] < 0.9 else color,
                    capsize=2,
                    lw=0.8,
                )
            if pts:
                ax.plot([s["cost"] for s in pts], [s["ratio"] for s in pts], color=color, lw=0.6, alpha=0.5)
        ax.axhline(1.3 if peak >= 2.5 else 1.15, color="grey", ls="--", lw=0.8)
        ax.axvline(2.0, color="grey", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("scoring cost (multiply-adds / mean pooling's at c_q 16, c_k 8)")
        ax.set_ylabel("density / floor at the same mean recall")
        ax.set_title(f"{gen} generator, peak {peak:g}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    for j in range(len(panels), nrows * cols):
        axes[j // cols, j % cols].axis("off")
    handles = [plt.Line2D([], [], color=cmap(ci % 10), marker="o", ls="", label=c) for ci, c in enumerate(configs)]
    handles += [
        plt.Line2D(
            [],
            [],
            color="black",
            marker=_MARKERS[i % len(_MARKERS)],
            ls="",
            label=f"N = {n // 1024}K" if n % 1024 == 0 else f"N = {n}",
        )
        for i, n in enumerate(ns)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.suptitle(
        title
        or "Estimators: ratio to the floor against scoring cost (median over seeds, min-max bars; "
        "hollow: a needle span missed or p1 < 0.9)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.04 + 0.02 * (len(handles) // 4), 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    from .report import load_json

    p = argparse.ArgumentParser(
        prog="python -m unisparse.fidelity.pareto",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("json", nargs="+", help="--json outputs of python -m unisparse.fidelity")
    p.add_argument("--png", default="", help="write the plot here")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    a = p.parse_args(argv)
    summary = summarize(load_json(a.json))
    print(table(summary, markdown=a.markdown))
    if a.png:
        plot(summary, a.png)
        print(f"wrote {a.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
