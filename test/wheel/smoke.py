"""The installed wheel, on the CPU, with no build tree in sight (run by
scripts/test.sh with a fresh venv's python, from an empty directory, with
$UNISPARSE_BUILD_DIR and $PYTHONPATH unset and an empty compile cache).

Checks that the package, its compiler and its runtime come from the
installed wheel; that the entry points run and their --version agrees with
``unisparse.__version__``; that the tools need no LLVM/MLIR library and the
wheel's binaries load nothing outside the C library family; then, with no
compiler or linker on PATH, compiles a configuration and checks it against
the float64 NumPy reference through ``unisparse.compile``, the PyTorch op and
``python -m unisparse.demo``.
Prints one line per check and "N passed, M failed".
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

results = []

# What a manylinux wheel may load from the system (the C library family).
ALLOWED = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
    "linux-vdso.so.1",
}


def record(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


def needed(path):
    """The shared libraries `path` loads (names), from ldd."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False).stdout
    return {os.path.basename(line.split()[0]) for line in out.splitlines() if line.strip()}


def main():
    import unisparse
    from unisparse import _build

    venv = pathlib.Path(sys.prefix).resolve()
    where = pathlib.Path(unisparse.__file__).resolve()
    record("unisparse imported from the venv", where.is_relative_to(venv), str(where))
    toolchain = _build.build_dir().resolve()
    record(
        "compiler and runtime found in the installed package",
        toolchain == where.parent / "_toolchain"
        and _build.compiler_path().is_file()
        and _build.runtime_path().is_file(),
        str(toolchain),
    )
    leaked = [v for v in ("UNISPARSE_BUILD_DIR", "PYTHONPATH") if v in os.environ]
    record("no build tree named", not leaked, ", ".join(leaked) or "none set")

    for tool in ("unisparse-opt", "unisparse-compile"):
        out = subprocess.run([str(venv / "bin" / tool), "--version"], capture_output=True, text=True, check=False)
        line = next((x.strip() for x in out.stdout.splitlines() if "UniSparse version" in x), "")
        record(
            f"{tool} --version (entry point) agrees with unisparse.__version__",
            out.returncode == 0 and line == f"UniSparse version {unisparse.__version__}",
            line or out.stderr.strip()[-300:],
        )
    for binary in (toolchain / "bin" / "unisparse-opt", toolchain / "bin" / "unisparse-compile", _build.runtime_path()):
        libs = needed(binary)
        extra = sorted(libs - ALLOWED)
        record(
            f"{binary.name} loads only the C library family",
            not extra,
            " ".join(sorted(libs)) if not extra else f"also {' '.join(extra)}",
        )

    # Compile and run on the CPU against the float64 reference, with no
    # compiler, linker or LLVM tool on PATH (the wheel's compiler links in
    # process).
    os.environ["PATH"] = str(venv / "bin")
    import numpy as np

    from unisparse import reference as ref
    from unisparse.synthetic import structured_qkv

    # mean pooling (the default until 2026-12-04), spelled out
    cfg = unisparse.Config(block=64, c_q=16, c_k=8, c_h=2, tau=0.9, estimator="mean", query_reduce="sum", refine="none")
    hq, hkv, n, d = 4, 2, 300, 32
    q, k, v = structured_qkv(1, hq, hkv, n, d, seed=int.from_bytes(os.urandom(2), "little"), peak=1.5)[:3]
    q, k, v = (np.ascontiguousarray(x, np.float32) for x in (q, k, v))
    kern = unisparse.compile(cfg, heads=hq, kv_heads=hkv, head_dim=d, dtype="f32")
    record(
        "unisparse.compile on the CPU with the wheel's compiler",
        kern.lib_path.parent == pathlib.Path(os.environ["UNISPARSE_CACHE_DIR"]),
        kern.lib_path.name,
    )
    scores, counts, indices = kern.layout(q, k)
    c_own, i_own = ref.block_select(
        scores, tau=cfg.tau, local_blocks=cfg.local_blocks, sink=cfg.sink, causal=cfg.causal
    )
    record(
        "layout is the reference selection of its scores",
        np.array_equal(c_own, counts) and np.array_equal(i_own, indices),
        f"density {ref.density(counts, n, cfg.block, cfg.causal):.3f}",
    )
    o, lse = kern.attention(q, k, v)
    q64, k64, v64 = (x.astype(np.float64) for x in (q, k, v))
    o_ref, lse_ref = ref.block_sparse_attention(q64, k64, v64, counts, indices, cfg.block, cfg.causal)
    err = ref.relative_l2(o.astype(np.float64), o_ref)
    lerr = float(np.max(np.abs(lse - lse_ref)))
    # float32 kernel against float64: the tolerance of the project's f32 tests.
    record(
        "output vs float64 block-sparse reference",
        err < 2e-5 and lerr < 1e-4,
        f"rel L2 {err:.2e}, max |lse diff| {lerr:.2e}",
    )

    import torch

    import unisparse.torch_ops

    ot, lt = torch.ops.unisparse.attention(
        torch.from_numpy(q), torch.from_numpy(k), torch.from_numpy(v), *unisparse.torch_ops.config_args(cfg)
    )
    record(
        "torch.ops.unisparse.attention runs the same library",
        np.array_equal(ot.numpy(), o) and np.array_equal(lt.numpy(), lse),
        "",
    )

    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "unisparse.demo",
            "--n",
            "512",
            "--heads",
            "4",
            "--kv-heads",
            "2",
            "--dim",
            "32",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    record(
        "python -m unisparse.demo",
        demo.returncode == 0 and "rel L2 vs dense" in demo.stdout,
        (demo.stdout + demo.stderr).strip().splitlines()[-1] if (demo.stdout + demo.stderr).strip() else "",
    )

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
