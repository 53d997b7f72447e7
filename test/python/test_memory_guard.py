"""The memory guard of compiled entry points: a workspace out of bounds is
refused before anything runs, a failed allocation ends the call with an
error, never a signal; and the compiler's workspace rule bounds what the
compiled code really allocates."""

import ctypes
import os
import pathlib
import re
import resource
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import unisparse
from unisparse import Config, UnisparseError
from unisparse import reference as R
from unisparse import synthetic as S
from unisparse.config import preset
from unisparse.cpu import runtime

ROOT = pathlib.Path(__file__).resolve().parents[2]
AS_LIMIT = 1_800_000 * 1024  # `ulimit -v 1800000`


def run_python(code: str, env_extra=None, as_limit=None, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})

    def limit():
        if as_limit:
            resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        preexec_fn=limit,
    )


HUGE_BLOCK = """
    import numpy as np, unisparse
    from unisparse import Config, UnisparseError
    from unisparse.config import preset
    q = np.ones((1, 1, 64, 16), np.float32)
    try:
        unisparse.attention(q, q, q, preset("mean", block={block}, c_q=8, c_k=8))
        print("RAN")
    except UnisparseError as e:
        print("REFUSED", e)
"""


def test_huge_block_is_refused_not_a_crash():
    # The padded score map of one block is 2^17 x 2^17 floats (64 GiB).
    proc = run_python(HUGE_BLOCK.format(block=2**20))
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "REFUSED" in proc.stdout and "refusing to run: B = 1, N = 64 needs a CPU workspace of" in proc.stdout


def test_workspace_beyond_the_address_space_limit_is_refused():
    # 2 GiB of workspace under `ulimit -v 1800000`.
    proc = run_python(HUGE_BLOCK.format(block=2**17), as_limit=AS_LIMIT)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "REFUSED" in proc.stdout and "address-space limit (RLIMIT_AS)" in proc.stdout, proc.stdout


def test_failed_allocation_ends_the_call_with_an_error():
    # The guard is told any size is fine, so the allocations themselves fail
    # under the address-space limit: the compiled code stops, frees what it
    # holds, and the next call in the same process works.
    code = """
        import numpy as np, unisparse
        from unisparse import Config, UnisparseError, reference as R, synthetic as S
        from unisparse.config import preset
        from unisparse.cpu import runtime
        q = np.ones((1, 1, 64, 16), np.float32)
        try:
            unisparse.attention(q, q, q, preset("mean", block=2**17, c_q=8, c_k=8))
            print("RAN")
        except UnisparseError as e:
            print("FAILED", e)
        print("LIVE", runtime().unisparse_rt_live_allocations())
        q, k, v = S.structured_qkv(1, 2, 1, 96, 16, seed=4, peak=1.5)
        cfg = preset("mean", block=32, c_q=8, c_k=8, tau=0.8)
        o = unisparse.attention(q, k, v, cfg)
        ref = R.unisparse_attention(*(x.astype(np.float64) for x in (q, k, v)), **cfg.reference_kwargs())[0]
        print("AFTER", R.relative_l2(o, ref))
    """
    proc = run_python(code, {"UNISPARSE_WORKSPACE_LIMIT": str(10**12)}, as_limit=AS_LIMIT)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert re.search(r"FAILED runtime error 11: compiled code: an allocation of \d+ bytes failed", proc.stdout), (
        proc.stdout
    )
    assert "LIVE 0" in proc.stdout
    assert float(proc.stdout.split("AFTER")[1]) < 2e-5


def test_limit_variable_bounds_the_workspace(monkeypatch):
    q, k, v = S.structured_qkv(2, 2, 1, 100, 16, seed=5, peak=1.5)
    cfg = preset("mean", block=32, c_q=8, c_k=8, tau=0.8)
    monkeypatch.setenv("UNISPARSE_WORKSPACE_LIMIT", "1000")
    with pytest.raises(
        UnisparseError,
        match=r"B = 2, N = 100 needs a CPU workspace of \d+ bytes .*"
        r"more than the 1000 bytes of UNISPARSE_WORKSPACE_LIMIT",
    ):
        unisparse.attention(q, k, v, cfg)
    with pytest.raises(UnisparseError, match="needs a CPU workspace"):
        unisparse.compile(cfg, heads=2, kv_heads=1, head_dim=16, dtype="f32").layout(q, k)
    monkeypatch.setenv("UNISPARSE_WORKSPACE_LIMIT", "lots")
    with pytest.raises(UnisparseError, match="UNISPARSE_WORKSPACE_LIMIT = 'lots' is not a byte count"):
        unisparse.attention(q, k, v, cfg)
    monkeypatch.delenv("UNISPARSE_WORKSPACE_LIMIT")
    o = unisparse.attention(q, k, v, cfg)
    ref = R.unisparse_attention(*(x.astype(np.float64) for x in (q, k, v)), **cfg.reference_kwargs())[0]
    assert R.relative_l2(o, ref) < 2e-5


def _workspace_estimate(kern, q, k, v):
    """The bytes the entry's guard computes (read from its refusal at a
    limit of 0)."""
    os.environ["UNISPARSE_WORKSPACE_LIMIT"] = "0"
    try:
        with pytest.raises(UnisparseError) as info:
            kern.attention(q, k, v)
    finally:
        del os.environ["UNISPARSE_WORKSPACE_LIMIT"]
    return int(re.search(r"needs a CPU workspace of (\d+) bytes", str(info.value)).group(1))


RULE_CASES = [
    # (config, Hq, Hkv, B, N, dtype)
    (preset("mean", block=32, c_q=8, c_k=4, tau=0.8), 4, 2, 1, 100, "f32"),
    (preset("mean", block=64, c_q=16, c_k=8, tau=0.9, query_reduce="max"), 4, 1, 2, 300, "bf16"),
    (preset("mean", block=32, c_q=8, c_k=8, estimator="antidiag"), 2, 2, 1, 130, "f16"),
    (preset("mean", block=32, c_q=8, c_k=8, estimator="antidiag_lse", query_reduce="max"), 4, 2, 2, 97, "f32"),
    (preset("mean", block=16, c_q=4, c_k=2, c_h=2, tau=0.7), 4, 2, 3, 77, "f32"),
    (preset("mean", block=64, c_q=64, c_k=64), 2, 1, 1, 64, "f32"),
    (preset("mean", block=32, c_q=1, c_k=1, tau=0.5), 1, 1, 1, 40, "f32"),
    # the outlier estimator: outlier composites (a partial last composite of
    # 1 key token, fewer than its outliers) and a map of slot pairs
    (preset("mean", block=64, c_q=16, c_k=32, estimator="outlier", query_reduce="max"), 4, 2, 2, 289, "bf16"),
    (
        preset("mean", block=32, c_q=8, c_k=16, c_h=2, estimator="outlier", q_outliers=3, k_outliers=5),
        4,
        1,
        1,
        150,
        "f32",
    ),
    # the default configuration (the peaked one: outlier composites, the
    # normalised slash refinement), at block 64 and its own 128, causal and
    # not (no refinement)
    (Config(block=64), 4, 2, 2, 300, "bf16"),
    (Config(), 4, 2, 1, 300, "f32"),
    (Config(block=64, causal=False), 4, 2, 1, 200, "f32"),
]


@pytest.mark.parametrize("cfg,hq,hkv,b,n,dtype", RULE_CASES)
def test_workspace_rule_bounds_what_the_code_allocates(cfg, hq, hkv, b, n, dtype):
    from conftest import to_np_dtype

    q, k, v = (to_np_dtype(x, dtype) for x in S.structured_qkv(b, hq, hkv, n, 16, seed=6, peak=1.5))
    kern = unisparse.compile(cfg, heads=hq, kv_heads=hkv, head_dim=16, dtype=dtype)
    estimate = _workspace_estimate(kern, q, k, v)
    rt = runtime()
    rt.unisparse_rt_peak_allocated_bytes.restype = ctypes.c_int64
    rt.unisparse_rt_peak_allocated_bytes(1)
    kern.attention(q, k, v)
    peak = rt.unisparse_rt_peak_allocated_bytes(1)
    kern.layout(q, k)
    peak_layout = rt.unisparse_rt_peak_allocated_bytes(1)
    assert 0 < peak <= estimate and peak_layout <= estimate, (peak, peak_layout, estimate)


# --------------------------------------------------------------------------- #
# The CUDA target, without a GPU: the compiled host code runs against a
# host-memory stand-in of the mgpu* functions (Inputs/fake_mgpu.c) that
# records the device bytes it allocates.
# --------------------------------------------------------------------------- #

CUDA_HOME = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
HAVE_PTXAS = bool(shutil.which("ptxas")) or os.path.exists(os.path.join(CUDA_HOME, "bin", "ptxas"))

CUDA_CASES = [
    # (config, extra unisparse-compile flags, Hq, Hkv, D, [(B, N), ...]): the
    # tensor-core scoring kernel (the default: the separate epilogue in
    # bounded chunks; the fused one: per-CTA scratch; the antidiagonal
    # estimators' with 16 query composites a warp), the linalg lowering of
    # f32 scoring (the whole map), a dense configuration (no
    # estimation), the slash refinement and the outlier estimator.
    (
        "block=128,c_q=16,c_k=16,tau=0.9,estimator=mean,query_reduce=sum,refine=none",
        [],
        4,
        2,
        64,
        [(1, 128), (2, 1000), (1, 4096)],
    ),
    (
        "block=64,c_q=16,c_k=8,tau=0.9,query_reduce=max,estimator=mean,refine=none",
        ["--score-ctas=4", "--score-epilogue=fused"],
        4,
        1,
        64,
        [(1, 100), (3, 2000)],
    ),
    # The separate epilogue kernel: a slot per work unit of a chunk (causal
    # pairs of CTA tiles), more than the slots of --score-ctas=4 would need;
    # every unit at once (--score-scratch-bytes=0: N * NBk); one wave of 4
    # units per chunk (a 1-byte budget), non-causal too.
    (
        "block=64,c_q=16,c_k=8,tau=0.9,query_reduce=max,estimator=mean,refine=none",
        ["--score-ctas=4", "--score-epilogue=separate"],
        4,
        1,
        64,
        [(1, 100), (3, 2000), (1, 16384)],
    ),
    (
        "block=64,c_q=16,c_k=8,tau=0.9,estimator=mean,query_reduce=sum,refine=none",
        ["--score-ctas=4", "--score-epilogue=separate", "--score-scratch-bytes=0"],
        4,
        1,
        64,
        [(1, 100), (3, 2000), (1, 16384)],
    ),
    (
        "block=64,c_q=16,c_k=8,tau=0.9,estimator=mean,query_reduce=sum,refine=none",
        ["--score-ctas=4", "--score-epilogue=separate", "--score-scratch-bytes=1"],
        4,
        1,
        64,
        [(1, 100), (3, 2000), (1, 16384)],
    ),
    (
        "block=64,c_q=16,c_k=16,tau=0.9,causal=false,estimator=mean,query_reduce=sum,refine=none",
        ["--score-ctas=4", "--score-epilogue=separate", "--score-scratch-bytes=1"],
        4,
        2,
        64,
        [(2, 1000), (1, 5000)],
    ),
    (
        "block=128,c_q=16,c_k=16,tau=0.9,estimator=mean,query_reduce=sum,refine=none",
        ["--score-epilogue=separate"],
        4,
        2,
        64,
        [(2, 1000), (1, 4096)],
    ),
    (
        "block=64,c_q=8,c_k=8,tau=0.9,estimator=antidiag,query_reduce=sum,refine=none",
        [],
        2,
        2,
        64,
        [(1, 200), (2, 333)],
    ),
    (
        "block=64,c_q=8,c_k=8,tau=0.9,estimator=antidiag_lse,query_reduce=max,refine=none",
        ["--score-ctas=4", "--score-epilogue=fused"],
        4,
        2,
        64,
        [(1, 200), (2, 1001)],
    ),
    (
        "block=64,c_q=8,c_k=8,tau=0.9,estimator=antidiag_lse,query_reduce=sum,refine=none",
        ["--score-ctas=4", "--score-epilogue=separate", "--score-scratch-bytes=1"],
        4,
        2,
        64,
        [(1, 200), (2, 1001)],
    ),
    (
        "block=128,c_q=16,c_k=16,tau=0.9,estimator=mean,query_reduce=sum,refine=none",
        ["--score-precision=f32"],
        2,
        1,
        64,
        [(1, 300)],
    ),
    ("block=128,tau=1.0,estimator=mean,c_k=8,query_reduce=sum,refine=none", [], 2, 1, 64, [(1, 500)]),
    # The slash refinement through the loop path (its shares, evidence and
    # offsets table, and the copy kernels' views of them).
    (
        "block=64,c_q=16,c_k=8,tau=0.9,refine=slash,last_q=16,estimator=mean,query_reduce=sum,refine_norm=false",
        [],
        4,
        2,
        64,
        [(1, 200), (2, 1000)],
    ),
    # The outlier estimator through the structured path (f32 composites with
    # their slots and spreads, the slot-pair map, both softmaxes).
    (
        "block=64,c_q=16,c_k=32,tau=0.9,estimator=outlier,query_reduce=max,refine=none",
        [],
        4,
        2,
        64,
        [(1, 200), (2, 1001)],
    ),
    # The default configuration (the peaked one: outlier composites, the
    # refinement kernels, refine_norm), causal and non-causal (no
    # refinement), at its block of 128.
    ("causal=true", [], 4, 2, 64, [(1, 200), (2, 1001), (1, 4096)]),
    ("causal=false", [], 4, 2, 64, [(2, 1001)]),
]


FAKE_RUN = """
import ctypes, os, re, sys
import numpy as np
from unisparse import _memref, synthetic as S
from unisparse.config import preset
stub = ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
rt = ctypes.CDLL(sys.argv[2], mode=ctypes.RTLD_GLOBAL)
lib = ctypes.CDLL(sys.argv[3])
rt.unisparse_rt_last_error_message.restype = ctypes.c_char_p
stub.fake_mgpu_peak_bytes.restype = ctypes.c_int64
hq, hkv, d, hg, block = map(int, sys.argv[4:9])
for shape in sys.argv[9:]:
    b, n = map(int, shape.split("x"))
    q, k, _ = S.structured_qkv(b, hq, hkv, n, d, seed=2, peak=1.5)
    q, k = _memref.bf16_from_f32(q), _memref.bf16_from_f32(k)
    nb = -(-n // block)
    outs = (np.zeros((b, hg, nb, nb), np.float32), np.zeros((b, hg, nb), np.int32),
            np.zeros((b, hg, nb, nb), np.int32))
    descs = [_memref.descriptor(x) for x in (q, k, *outs)]

    def layout(limit):
        os.environ["UNISPARSE_WORKSPACE_LIMIT"] = str(limit)
        rt.unisparse_rt_clear_error()
        lib._mlir_ciface_layout(*[ctypes.byref(x) for x in descs])
        return rt.unisparse_rt_last_error(), rt.unisparse_rt_last_error_message().decode()

    status, message = layout(0)
    estimate = int(re.search(r"needs a CUDA workspace of (\\d+) bytes", message).group(1))
    stub.fake_mgpu_peak_bytes()
    status, message = layout(10**15)
    assert status == 0, message
    print("SIZES", b, n, estimate, stub.fake_mgpu_peak_bytes())
"""


def _cuda_sizes(tmp_path, cfg, flags, hq, hkv, d, shapes):
    """(B, N, the guard's estimate, the device bytes the host code
    allocated) per shape, for a CUDA library run against the fake mgpu*."""
    from unisparse import _build

    stub = tmp_path / "libfake_mgpu.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O1", "-o", str(stub), str(ROOT / "test/python/Inputs/fake_mgpu.c")], check=True
    )
    lib = tmp_path / "libattn_cuda.so"
    subprocess.run(
        [
            str(_build.compiler_path()),
            f"--config={cfg}",
            f"--heads={hq}",
            f"--kv-heads={hkv}",
            f"--head-dim={d}",
            "--dtype=bf16",
            "--target=cuda",
            *flags,
            "-o",
            str(lib),
        ],
        check=True,
    )
    config = Config.parse(cfg)
    args = [
        str(stub),
        str(_build.runtime_path()),
        str(lib),
        str(hq),
        str(hkv),
        str(d),
        str(hq // config.c_h),
        str(config.block),
    ] + [f"{b}x{n}" for b, n in shapes]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    proc = subprocess.run([sys.executable, "-c", FAKE_RUN, *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [tuple(map(int, line.split()[1:])) for line in proc.stdout.splitlines() if line.startswith("SIZES")]
    assert len(rows) == len(shapes)
    return rows


@pytest.mark.skipif(not HAVE_PTXAS, reason="the CUDA target needs ptxas (CUDA toolkit) to compile")
@pytest.mark.parametrize("cfg,flags,hq,hkv,d,shapes", CUDA_CASES, ids=[c[0] + "".join(c[1]) for c in CUDA_CASES])
def test_workspace_rule_bounds_what_cuda_host_code_allocates(tmp_path, cfg, flags, hq, hkv, d, shapes):
    for b, n, estimate, peak in _cuda_sizes(tmp_path, cfg, flags, hq, hkv, d, shapes):
        assert 0 < peak <= estimate, (b, n, peak, estimate)


@pytest.mark.skipif(not HAVE_PTXAS, reason="the CUDA target needs ptxas (CUDA toolkit) to compile")
def test_separate_epilogue_scratch_is_bounded_by_chunks(tmp_path):
    """The separate epilogue's scratch in chunks: with one wave of 4 units
    per chunk it is what 4 CTA slots of the fused kernel take (within the
    pair's extra key tiles), far below every unit's at once, and the guard's
    rule follows it down."""
    cfg, shape = "block=64,c_q=16,c_k=8,tau=0.9,estimator=mean,query_reduce=sum,refine=none", [(1, 16384)]
    sizes = {}
    for name, flags in {
        "fused": ["--score-ctas=4", "--score-epilogue=fused"],
        "chunked": ["--score-ctas=4", "--score-epilogue=separate", "--score-scratch-bytes=1"],
        "unbounded": ["--score-ctas=4", "--score-epilogue=separate", "--score-scratch-bytes=0"],
    }.items():
        (tmp_path / name).mkdir()
        ((_, _, estimate, peak),) = _cuda_sizes(tmp_path / name, cfg, flags, 4, 1, 64, shape)
        sizes[name] = estimate, peak
    # The rest of the workspace (composites, scores, layout) is the same in
    # all three; the scratch is the difference.
    fused, chunked, unbounded = (sizes[k][1] for k in ("fused", "chunked", "unbounded"))
    assert chunked < unbounded, sizes
    # Unbounded: 4 heads x 64 / 2 units of 128 rows; chunked: 4 units.
    assert unbounded - chunked > 0.8 * (unbounded - fused), sizes
    assert sizes["chunked"][0] < sizes["unbounded"][0], sizes


@pytest.mark.skipif(not HAVE_PTXAS, reason="the CUDA target needs ptxas (CUDA toolkit) to compile")
def test_outlier_scratch_rule_counts_the_partials_as_stored(tmp_path):
    """The outlier scoring kernel's scratch: its per-key-block partial sums
    are f16 by default (f32 with --score-partials=f32), its per-key-tile
    maxima f32. The guard counts the partial sums at the size the kernel
    stores them, so the two libraries' estimates differ by what their
    allocations differ by (the rest of the workspace is the same); a rule
    that counted f32 for both (as before) gives them the same estimate, 1.8x
    the default's scratch."""
    cfg, shape = "block=128,c_q=16,c_k=32,tau=0.9,estimator=outlier,query_reduce=max,refine=none", [(1, 4096)]
    sizes = {}
    for name, flags in {"f16": [], "f32": ["--score-partials=f32"]}.items():
        (tmp_path / name).mkdir()
        ((_, _, estimate, peak),) = _cuda_sizes(tmp_path / name, cfg, flags, 4, 2, 64, shape)
        assert 0 < peak <= estimate, (name, peak, estimate)
        sizes[name] = estimate, peak
    (est16, peak16), (est32, peak32) = sizes["f16"], sizes["f32"]
    # 16 CTA tiles of 128 scratch rows, 4 key tiles of 8 key blocks: 2 bytes
    # more per partial sum.
    assert peak32 - peak16 == 16 * 128 * 4 * 8 * 2, sizes
    assert est32 - est16 == peak32 - peak16, sizes
