"""Reporting of the fidelity harness: the table, the Pareto plot, earlier
runs' JSON, and the command line (``python -m unisparse.fidelity``)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .harness import GENERATORS, ORACLE_TAUS, SWEEPS, parse_config, run

__all__ = ["table", "plot", "load_json", "main"]

_COLUMNS = [
    ("N", "{:>6}"),
    ("config", "{:<44}"),
    ("cost", "{:>5.2f}"),
    ("density", "{:>7.3f}"),
    ("floor", "{:>6.3f}"),
    ("ratio", "{:>5.2f}"),
    ("ratio_f", "{:>7.2f}"),
    ("recall_mean", "{:>7.4f}"),
    ("recall_p1", "{:>7.4f}"),
    ("block_p1", "{:>7.4f}"),
    ("needles", "{:>7.1%}"),
    ("spans", "{:>6}"),
    ("spans_row", "{:>9}"),
    ("spans_lost", "{:>4}"),
    ("rel_l2", "{:>8.2e}"),
    ("rows", "{:>7}"),
]
_HEAD = [
    "N",
    "config",
    "cost",
    "density",
    "floor",
    "ratio",
    "ratio_f",
    "rec_mean",
    "rec_p1",
    "blk_p1",
    "needles",
    "spans",
    "spans_row",
    "lost",
    "rel_l2",
    "rows",
]


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
    """Pareto curves: density against mean and 1st-percentile recall, one
    column per N, one line per estimator family (through its tau values),
    and the exact top-p on the true block masses as the black floor curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted({r["N"] for r in rows})
    fams = list(dict.fromkeys(r["family"] for r in rows))
    cmap = plt.get_cmap("tab10")
    curves = {r["N"]: r["curves"] for r in rows if "curves" in r}
    fig, axes = plt.subplots(2, len(ns), figsize=(5.2 * len(ns), 9), squeeze=False)
    for col, n in enumerate(ns):
        for row, (key, name) in enumerate((("recall_mean", "mean recall"), ("recall_p1", "1st-percentile recall"))):
            ax = axes[row, col]
            for b, cv in curves.get(n, {}).items():
                dens, rec = cv[0], cv[1 + row]
                ok = rec >= (0.9 if row else 0.95)
                ax.plot(
                    dens[ok],
                    rec[ok],
                    color="black",
                    lw=1.4,
                    marker=".",
                    ms=3,
                    label="exact top-p (floor)" if b == min(curves[n]) else None,
                )
            for i, fam in enumerate(fams):
                sub = sorted((r for r in rows if r["N"] == n and r["family"] == fam), key=lambda r: r["tau"])
                if not sub:
                    continue
                color = cmap(i % 10)
                ax.plot(
                    [r["density"] for r in sub], [r[key] for r in sub], color=color, marker="o", ms=4, lw=1.2, label=fam
                )
                for r in sub:
                    miss = r["needles"] < 1.0
                    ax.annotate(
                        f"{r['tau']:g}" + (" ✗" if miss else ""),
                        (r["density"], r[key]),
                        fontsize=6,
                        xytext=(3, 2),
                        textcoords="offset points",
                        color="crimson" if miss else color,
                    )
            lo = 0.95 if row == 0 else 0.8
            ax.set_ylim(lo, 1.0005)
            ax.set_xlim(0, 1)
            ax.axhline(0.97 if row == 0 else 0.9, color="grey", ls="--", lw=0.8)
            ax.set_xlabel("density (kept / causal block grid)")
            ax.set_ylabel(name)
            ax.grid(alpha=0.3)
            ax.set_title(f"N = {n // 1024}K: {name}" if n % 1024 == 0 else f"N = {n}: {name}", fontsize=9)
            if row == 0 and col == 0:
                ax.legend(loc="lower right", fontsize=7)
    fig.suptitle(title or "UniSparse fidelity vs density (labels: tau; ✗: a needle span was missed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def load_json(paths):
    """Rows (with their exact top-p curves) of earlier ``--json`` runs, for
    re-plotting and tables across runs (e.g. CPU runs at 8K-32K and a GPU run
    at 64K-128K)."""
    import json

    rows = []
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        seen = set()
        for r in d["rows"]:
            r = dict(r)
            r.setdefault("family", r["config"].partition(",")[2] or "mean")
            r.setdefault("ratio_f", float("nan"))  # runs before the forced floor
            for key in ("cost", "cost_dense", "exps"):  # runs before the cost columns
                r.setdefault(key, float("nan"))
            r.setdefault("spans_row", "-")  # runs before the per-row top-p's spans
            r.setdefault("spans_lost", "-")
            n = str(r["N"])
            if n not in seen and n in d.get("floor", {}):
                seen.add(n)
                r["curves"] = {
                    int(b): tuple(np.asarray(cv[k]) for k in ("density", "recall_mean", "recall_p1", "spans"))
                    for b, cv in d["floor"][n].items()
                }
            rows.append(r)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m unisparse.fidelity",
        description=sys.modules[__package__].__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--n", type=int, nargs="+", default=[8192, 16384, 32768], help="sequence lengths")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--peak", type=float, default=1.5, help="inverse temperature of the synthetic map")
    p.add_argument("--needles", type=int, default=16, help="needle spans per sequence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--generator",
        choices=sorted(GENERATORS),
        default="structured",
        help="synthetic data: the project's generator or the independent peaked one (unisparse.peaked)",
    )
    p.add_argument("--sweep", choices=sorted(SWEEPS), default="default")
    p.add_argument(
        "--config", action="append", default=[], help="a config as field=value,... (repeatable; replaces --sweep)"
    )
    p.add_argument("--full-rows", type=int, default=8192, help="evaluate every row up to this N")
    p.add_argument("--rows-per-block", type=int, default=8, help="rows sampled per query block beyond it")
    p.add_argument("--png", default="fidelity.png", help="plot path ('' for none)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument(
        "--device",
        default=None,
        help="run the estimation and the dense pass in PyTorch (float64) on this device, e.g. cuda",
    )
    p.add_argument("--json", default="", help="also write the rows (and the exact top-p curves) as JSON here")
    p.add_argument(
        "--check-compiled",
        action="store_true",
        help="compare the reference layouts with the compiled CPU path on the first N",
    )
    p.add_argument(
        "--from-json",
        nargs="+",
        default=None,
        metavar="JSON",
        help="print and plot the rows of earlier --json runs instead of measuring",
    )
    a = p.parse_args(argv)
    if a.from_json:
        rows = load_json(a.from_json)
        print(table(rows, markdown=a.markdown))
        if a.png:
            plot(
                rows,
                a.png,
                title=f"UniSparse fidelity ({', '.join(a.from_json)}; labels: tau; ✗: a needle span missed)",
            )
            print(f"wrote {a.png}")
        return 0

    configs = [parse_config(s) for s in a.config] or [parse_config(d) for d in SWEEPS[a.sweep]]
    configs = list(dict.fromkeys(configs))
    print(
        f"UniSparse fidelity ({a.generator}): Hq={a.heads} Hkv={a.kv_heads} D={a.dim} peak={a.peak} "
        f"needles={a.needles} seed={a.seed}; {len(configs)} configs; all rows up to N={a.full_rows}, "
        f"else {a.rows_per_block} sampled rows per query block"
    )
    rows = []
    t0 = time.perf_counter()
    for i, n in enumerate(a.n):
        rows_n = run(
            n,
            configs,
            heads=a.heads,
            kv_heads=a.kv_heads,
            dim=a.dim,
            peak=a.peak,
            needles=a.needles,
            seed=a.seed,
            full_rows=a.full_rows,
            rows_per_block=a.rows_per_block,
            check_compiled=a.check_compiled and i == 0,
            device=a.device,
            generator=a.generator,
        )
        rows += rows_n
        if len(a.n) > 1 and i + 1 < len(a.n):
            print(table(rows_n, markdown=a.markdown), file=sys.stderr, flush=True)  # partial results
    print(table(rows, markdown=a.markdown))
    print(f"total {time.perf_counter() - t0:.1f} s")
    if a.json:
        import json

        dump = dict(
            args=vars(a),
            rows=[{k: v for k, v in r.items() if k not in ("cfg", "curves")} for r in rows],
            floor={
                str(r["N"]): {
                    str(b): dict(
                        zip(("density", "recall_mean", "recall_p1", "spans"), (np.asarray(x).tolist() for x in cv)),
                        tau=list(ORACLE_TAUS),
                    )
                    for b, cv in r["curves"].items()
                }
                for r in rows
                if "curves" in r
            },
        )
        with open(a.json, "w") as f:
            json.dump(dump, f, indent=1)
        print(f"wrote {a.json}")
    if a.png:
        plot(
            rows,
            a.png,
            title=f"UniSparse fidelity: Hq={a.heads}/Hkv={a.kv_heads}, D={a.dim}, "
            f"peak={a.peak}, {a.needles} needles (✗: a needle span missed)",
        )
        print(f"wrote {a.png}")
    return 0
