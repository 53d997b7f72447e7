"""On the GPU machine: the installed wheel compiles a configuration it has
never seen, on the spot, and runs it (scripts/gpu/jit_check.sh runs this).

Run with the wheel installed in --site (on PYTHONPATH), from a directory
outside any source tree, with an empty $UNISPARSE_CACHE_DIR and none of
$UNISPARSE_BUILD_DIR / $UNISPARSE_AOT_DIR / $UNISPARSE_CUDA_RUNTIME set.
Checks, one line each, then "N passed, M failed":

  1. the package, the compiler and the runtime come from the wheel (not a
     build tree), the tools link no LLVM/MLIR library, and their --version
     agrees with unisparse.__version__;
  2. ``unisparse.compile(config, ..., device="cuda")`` of a configuration no
     cache holds (c_q 16, c_k 16, tau 0.93, c_h 2; 32/8 heads, d 128, bf16)
     compiles here, with the wheel's unisparse-compile;
  3. its estimation's scores match the float64 NumPy reference within a
     bound derived from the float32 reductions, and its layout is the
     reference selection of those scores, exactly;
  4. its output and LSE match the float64 block-sparse reference under that
     layout, and ``unisparse.attention`` on torch tensors gives the same;
  5. timings: first import (fresh process, median of 3), first compile, the
     second ``compile`` in the process (memory) and in a new process (disk).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

results = []
timings = {}


def record(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


def python(code, env=None):
    """Runs `code` in a fresh interpreter; its stdout."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"python -c failed:\n{proc.stderr}")
    return proc.stdout


def gamma(n):
    """Higham's gamma_n for float32: the bound on the relative error of an
    n-term float32 sum or dot product, in any order."""
    u = 2.0**-24
    return n * u / (1 - n * u)


def check_provenance(site: pathlib.Path):
    import unisparse
    from unisparse import _build

    where = pathlib.Path(unisparse.__file__).resolve()
    record("unisparse imported from the wheel", where.is_relative_to(site.resolve()), str(where))
    tools = _build.build_dir()
    record(
        "compiler and runtime found in the wheel",
        tools.resolve() == (site / "unisparse" / "_toolchain").resolve()
        and _build.compiler_path().is_file()
        and _build.runtime_path().is_file(),
        str(tools),
    )
    leaked = [v for v in ("UNISPARSE_BUILD_DIR", "UNISPARSE_AOT_DIR", "UNISPARSE_CUDA_RUNTIME") if v in os.environ]
    record("no build tree or AOT libraries named", not leaked, ", ".join(leaked) or "none set")
    for tool in ("unisparse-opt", "unisparse-compile"):
        exe = site / "bin" / tool  # the wheel's entry point
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
        line = next((x.strip() for x in out.stdout.splitlines() if "UniSparse version" in x), "")
        record(
            f"{tool} --version agrees with unisparse.__version__",
            out.returncode == 0 and line == f"UniSparse version {unisparse.__version__}",
            line or out.stderr.strip()[-200:],
        )
        binary = tools / "bin" / tool
        ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        llvm = [x.split()[0] for x in ldd.splitlines() if "libLLVM" in x or "libMLIR" in x]
        record(
            f"{tool} links no LLVM/MLIR library",
            not llvm,
            " ".join(x.split()[0] for x in ldd.splitlines() if x.strip()),
        )


def time_import():
    code = "import time; t = time.perf_counter(); import unisparse; print(time.perf_counter() - t)"
    runs = sorted(float(python(code)) for _ in range(3))
    timings["import_s"] = runs[1]
    record(
        "first import <= 1 s (median of 3 fresh processes)",
        runs[1] <= 1.0,
        f"{runs[1]:.3f} s ({', '.join(f'{r:.3f}' for r in runs)})",
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--site", required=True, type=pathlib.Path, help="where the wheel is installed")
    p.add_argument("--json", type=pathlib.Path, help="write the timings and results here")
    p.add_argument("--n", type=int, default=3000, help="sequence length (partial last block)")
    a = p.parse_args()

    time_import()
    check_provenance(a.site)

    import numpy as np
    import torch

    import unisparse
    from unisparse import reference as ref
    from unisparse.synthetic import structured_qkv

    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, unisparse {unisparse.__version__}", flush=True)
    cache = pathlib.Path(os.environ["UNISPARSE_CACHE_DIR"])
    before = sorted(cache.glob("*.so"))
    record("the cache starts empty", not before, str(cache))

    cfg = unisparse.Config(
        block=128, c_q=16, c_k=16, c_h=2, tau=0.93, estimator="mean", query_reduce="sum", refine="none"
    )
    sig = {"heads": 32, "kv_heads": 8, "head_dim": 128, "dtype": "bf16", "device": "cuda"}
    t0 = time.perf_counter()
    try:
        kern = unisparse.compile(cfg, **sig)
    except Exception as e:  # noqa: BLE001
        record("compile a new configuration for CUDA", False, repr(e))
        return finish(a)
    timings["first_compile_s"] = time.perf_counter() - t0
    libs = sorted(cache.glob("unisparse_cuda_*.so"))
    record(
        "compile a new configuration for CUDA (into the cache)",
        len(libs) == 1,
        f"{timings['first_compile_s']:.2f} s, {cfg.mlir_attr()}",
    )
    record(
        "a new configuration compiles in <= 10 s",
        timings["first_compile_s"] <= 10.0,
        f"{timings['first_compile_s']:.2f} s",
    )

    t0 = time.perf_counter()
    again = unisparse.compile(cfg, **sig)
    timings["second_compile_same_process_s"] = time.perf_counter() - t0
    record(
        "second compile in the process is the same object",
        again is kern,
        f"{timings['second_compile_same_process_s'] * 1e6:.0f} us",
    )
    code = (
        "import time, unisparse; t = time.perf_counter(); "
        "unisparse.compile(unisparse.Config(block=128, c_q=16, c_k=16, c_h=2, tau=0.93, estimator='mean', "
        f"query_reduce='sum', refine='none'), **{sig!r}); "
        "print(time.perf_counter() - t)"
    )
    mtime = os.stat(libs[0]).st_mtime_ns
    timings["second_compile_new_process_s"] = float(python(code))
    record(
        "a new process loads it from the disk cache (no recompile)",
        sorted(cache.glob("unisparse_cuda_*.so")) == libs and os.stat(libs[0]).st_mtime_ns == mtime,
        f"{timings['second_compile_new_process_s']:.3f} s",
    )

    # Run it on fresh structured inputs against the float64 reference.
    seed = int.from_bytes(os.urandom(2), "little")
    n, hq, hkv, d = a.n, sig["heads"], sig["kv_heads"], sig["head_dim"]
    q, k, v = (
        torch.from_numpy(x).to("cuda", torch.bfloat16)
        for x in structured_qkv(1, hq, hkv, n, d, seed=seed, peak=1.5)[:3]
    )
    scores, counts, indices = kern.layout(q, k)
    o, lse = kern.attention(q, k, v)
    torch.cuda.synchronize()
    q64, k64, v64 = (x.double().cpu().numpy() for x in (q, k, v))
    s_np, c_np, i_np = scores.cpu().numpy(), counts.cpu().numpy(), indices.cpu().numpy()

    s_ref = ref.estimate(q64, k64, cfg.block, cfg.c_q, cfg.c_k, cfg.c_h, causal=cfg.causal)
    # Bound: each composite logit is a float32 dot product of pooled values
    # (pooling c tokens of c_h heads, then d terms), scaled and shifted by
    # the row max, so it errs by at most (gamma_{c c_h} + gamma_d + 2u) *
    # sum|q~||k~| * scale. exp (libdevice's __nv_expf, 2 ulp) turns that
    # into a relative error of the same size plus 2^-22 in each numerator,
    # and the T-term denominator adds the same plus gamma_T: a probability
    # errs relatively by 2 (e_logit + 2^-22) + gamma_T. A block score sums
    # the probabilities of block/c_q query composites (each row sums to 1),
    # which adds gamma of that many terms, times block/c_q.
    qc = ref.compress(q64, cfg.c_q, head_factor=cfg.c_h)
    kc = ref.compress(k64, cfg.c_k, head_factor=cfg.c_h, kv_group=hq // hkv)
    dot_abs = float(np.max(np.abs(qc).sum(-1)) * np.max(np.abs(kc))) / d**0.5
    t_comp = -(-n // cfg.c_k)
    per_block = cfg.block // cfg.c_q
    e_logit = (gamma(max(cfg.c_q, cfg.c_k) * cfg.c_h) + gamma(d) + gamma(2)) * dot_abs
    e_prob = 2 * (e_logit + 2.0**-22) + gamma(t_comp)
    tol = per_block * (e_prob + gamma(per_block * t_comp))
    serr = float(np.max(np.abs(s_np - s_ref)))
    record("GPU scores vs float64 reference", serr <= tol, f"max |diff| {serr:.2e} <= bound {tol:.2e}")
    c_own, i_own = ref.block_select(
        s_np,
        tau=cfg.tau,
        local_blocks=cfg.local_blocks,
        sink=cfg.sink,
        min_blocks=cfg.min_blocks,
        max_blocks=cfg.max_blocks,
        causal=cfg.causal,
    )
    record(
        "GPU layout is the reference selection of its scores",
        np.array_equal(c_own, c_np) and np.array_equal(i_own, i_np),
        f"density {ref.density(c_np, n, cfg.block, cfg.causal):.3f}, seed {seed}",
    )
    o_ref, lse_ref = ref.block_sparse_attention(q64, k64, v64, c_np, i_np, cfg.block, cfg.causal)
    err = ref.relative_l2(o.double().cpu().numpy(), o_ref)
    lerr = float(np.max(np.abs(lse.cpu().numpy() - lse_ref)))
    record(
        "output vs float64 block-sparse reference",
        err < 1e-2 and lerr < 2e-2 and bool(torch.isfinite(o).all()),
        f"rel L2 {err:.2e}, max |lse diff| {lerr:.2e}",
    )
    o2 = unisparse.attention(q, k, v, cfg)
    torch.cuda.synchronize()
    record("unisparse.attention on torch tensors runs the same library", torch.equal(o2, o), "")
    return finish(a)


def finish(a):
    passed = sum(results)
    print("timings: " + ", ".join(f"{k} {v:.3f}" for k, v in timings.items()))
    print(f"{passed} passed, {len(results) - passed} failed")
    if a.json:
        a.json.write_text(json.dumps({"timings": timings, "passed": passed, "failed": len(results) - passed}, indent=2))
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
