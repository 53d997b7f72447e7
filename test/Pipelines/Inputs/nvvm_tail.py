"""Compares the NVVM part of two --dump-pass-pipeline outputs: argv[1] is
mlir-opt's gpu-lower-to-nvvm-pipeline, argv[2] unisparse-to-nvptx's. The
second must end with the first's passes (one a line, nested ones as dumped),
with gpu-module-to-binary renamed unisparse-gpu-module-to-binary. Prints
"agree: N lines" or the first difference."""

import sys


def passes(path):
    lines = open(path).read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("builtin.module("))
    end = next(i for i in range(len(lines) - 1, start, -1) if lines[i] == ")")
    return [line.rstrip(",").strip() for line in lines[start + 1 : end]]


upstream = [line.replace("gpu-module-to-binary{", "unisparse-gpu-module-to-binary{") for line in passes(sys.argv[1])]
ours = passes(sys.argv[2])
tail = ours[-len(upstream) :]
if tail == upstream:
    print(f"agree: {len(upstream)} lines")
else:
    for i, (u, o) in enumerate(zip(upstream, tail)):
        if u != o:
            print(f"line {i} differs: upstream {u!r}, ours {o!r}")
            break
    else:
        print(f"lengths differ: upstream {len(upstream)}, ours {len(ours)}")
