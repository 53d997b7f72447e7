"""Plots the kernel-only benchmark (bench_gpu.py --kernels): effective
TFLOP/s of the sm_90a and mma.sync kernels and FlexAttention on the same
layouts, next to cuDNN's dense rate, one panel per (head dim, causal).

    python3 bench/plot_kernels.py TABLE.md [TABLE2.md ...] OUT.png

reads the Markdown tables that bench_gpu.py --kernels writes (no GPU, no
PyTorch needed); bench_gpu.py --png calls plot() directly.
"""

from __future__ import annotations

import re
import sys


def read_rows(path):
    """The rows of a bench_gpu.py --kernels Markdown table."""
    rows = []
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 9 or not cells[0].isdigit():
            continue

        def rate(cell):
            m = re.search(r"\(([^)]+)\)", cell)
            return float(m.group(1)) if m else float("nan")

        rows.append(
            dict(
                D=int(cells[0]),
                N=int(cells[1]),
                causal=cells[2] == "True",
                density=float(cells[3]),
                sm90_tflops=rate(cells[4]),
                mma_sync_tflops=rate(cells[5]),
                flex_tflops=rate(cells[6]),
                cudnn_tflops=rate(cells[7]),
            )
        )
    return rows


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({(r["D"], r["causal"]) for r in rows}, key=lambda k: (-k[0], not k[1]))
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4.2), squeeze=False)
    series = (
        ("sm90_tflops", "sm_90a kernel"),
        ("mma_sync_tflops", "mma.sync kernel"),
        ("flex_tflops", "FlexAttention, same layout"),
        ("cudnn_tflops", "cuDNN dense"),
    )
    for ax, (d, causal) in zip(axes[0], keys):
        sel = [r for r in rows if r["D"] == d and r["causal"] == causal]
        x = range(len(sel))
        w = 0.2
        for i, (key, name) in enumerate(series):
            ax.bar([xi + (i - 1.5) * w for xi in x], [r[key] for r in sel], w, label=name)
        ax.set_xticks(list(x))
        ax.set_xticklabels([f"{r['N'] // 1024}K\n{r['density']:.2f}" for r in sel], fontsize=7)
        ax.set_title(f"d={d}, {'causal' if causal else 'non-causal'} (N, density)", fontsize=9)
        ax.set_ylabel("effective TFLOP/s (visited blocks)")
        ax.axhline(700, color="gray", linestyle=":", linewidth=1)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rows = [r for path in sys.argv[1:-1] for r in read_rows(path)]
    plot(rows, sys.argv[-1])


if __name__ == "__main__":
    main()
