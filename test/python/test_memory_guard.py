"""The memory guard of compiled entry points: a workspace out of bounds is
refused before anything runs, a failed allocation ends the call with an
error, never a signal; and the compiler's workspace rule bounds what the
compiled code really allocates."""

import ctypes
import os
import pathlib
import re
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import unisparse
from unisparse import Config, UnisparseError
from unisparse import reference as R
from unisparse import synthetic as S
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

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, timeout=timeout, preexec_fn=limit)


HUGE_BLOCK = """
    import numpy as np, unisparse
    from unisparse import Config, UnisparseError
    q = np.ones((1, 1, 64, 16), np.float32)
    try:
        unisparse.attention(q, q, q, Config(block={block}, c_q=8, c_k=8))
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
        from unisparse.cpu import runtime
        q = np.ones((1, 1, 64, 16), np.float32)
        try:
            unisparse.attention(q, q, q, Config(block=2**17, c_q=8, c_k=8))
            print("RAN")
        except UnisparseError as e:
            print("FAILED", e)
        print("LIVE", runtime().unisparse_rt_live_allocations())
        q, k, v = S.structured_qkv(1, 2, 1, 96, 16, seed=4, peak=1.5)
        cfg = Config(block=32, c_q=8, c_k=8, tau=0.8)
        o = unisparse.attention(q, k, v, cfg)
        ref = R.unisparse_attention(*(x.astype(np.float64) for x in (q, k, v)), **cfg.reference_kwargs())[0]
        print("AFTER", R.relative_l2(o, ref))
    """
    proc = run_python(code, {"UNISPARSE_WORKSPACE_LIMIT": str(10**12)}, as_limit=AS_LIMIT)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert re.search(r"FAILED runtime error 11: compiled code: an allocation of \d+ bytes failed", proc.stdout), \
        proc.stdout
    assert "LIVE 0" in proc.stdout
    assert float(proc.stdout.split("AFTER")[1]) < 2e-5


def test_limit_variable_bounds_the_workspace(monkeypatch):
    q, k, v = S.structured_qkv(2, 2, 1, 100, 16, seed=5, peak=1.5)
    cfg = Config(block=32, c_q=8, c_k=8, tau=0.8)
    monkeypatch.setenv("UNISPARSE_WORKSPACE_LIMIT", "1000")
    with pytest.raises(UnisparseError, match=r"B = 2, N = 100 needs a CPU workspace of \d+ bytes .*"
                                             r"more than the 1000 bytes of UNISPARSE_WORKSPACE_LIMIT"):
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
    (Config(block=32, c_q=8, c_k=4, tau=0.8), 4, 2, 1, 100, "f32"),
    (Config(block=64, c_q=16, c_k=8, tau=0.9, query_reduce="max"), 4, 1, 2, 300, "bf16"),
    (Config(block=32, c_q=8, c_k=8, estimator="antidiag"), 2, 2, 1, 130, "f16"),
    (Config(block=32, c_q=8, c_k=8, estimator="antidiag_lse", query_reduce="max"), 4, 2, 2, 97, "f32"),
    (Config(block=16, c_q=4, c_k=2, c_h=2, tau=0.7), 4, 2, 3, 77, "f32"),
    (Config(block=64, c_q=64, c_k=64), 2, 1, 1, 64, "f32"),
    (Config(block=32, c_q=1, c_k=1, tau=0.5), 1, 1, 1, 40, "f32"),
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
