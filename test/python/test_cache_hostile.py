"""The compile cache against a hostile or broken file system: damaged
libraries are rebuilt (never a signal), special files are refused (never a
hang), symlinks are followed only when the user or root owns them, and the
cache location follows the XDG rules with clear errors.

Anything that could crash or hang the interpreter runs in a subprocess with a
timeout, so that the test reports the fault instead of dying with it."""

import os
import pathlib
import pwd
import stat
import subprocess
import sys
import textwrap

import pytest

from unisparse import _build
from unisparse._core import UnisparseError
from unisparse.config import preset

CFG = preset("mean", block=32, c_q=8, c_k=8, tau=0.8)
ROOT = pathlib.Path(__file__).resolve().parents[2]
IS_ROOT = os.getuid() == 0
NOBODY = 65534


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(path))
    return path


def run_python(code: str, env_extra=None, timeout=120) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter (the package on its path, this test's
    environment plus `env_extra`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=timeout
    )


ATTEND = """
    import numpy as np, unisparse
    from unisparse import Config, reference, synthetic
    from unisparse.config import preset
    q, k, v = synthetic.structured_qkv(1, 4, 2, 80, 16, seed=3, peak=1.5)
    cfg = preset("mean", block=32, c_q=8, c_k=8, tau=0.8)
    o = unisparse.attention(q, k, v, cfg)
    ref = reference.unisparse_attention(*(x.astype(np.float64) for x in (q, k, v)),
                                        **cfg.reference_kwargs())[0]
    err = reference.relative_l2(o, ref)
    assert err < 2e-5, err
    print("OK")
"""


def compiled_library(cache_path) -> pathlib.Path:
    """The cache path of CFG's CPU library (compiled in a subprocess, so that
    this process never maps a file the test then damages)."""
    proc = run_python(
        """
        from unisparse.config import preset
        from unisparse.cpu import compile_cpu
        print(compile_cpu(preset("mean", block=32, c_q=8, c_k=8, tau=0.8), 4, 2, 16, "f32").lib_path)
    """,
        {"UNISPARSE_CACHE_DIR": str(cache_path)},
    )
    assert proc.returncode == 0, proc.stderr
    return pathlib.Path(proc.stdout.strip())


# --------------------------------------------------------------------------- #
# Damaged libraries: rebuilt once, never a SIGBUS
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def good_library(tmp_path_factory):
    """(file name, bytes) of CFG's library, compiled once."""
    lib = compiled_library(tmp_path_factory.mktemp("good") / "cache")
    return lib.name, lib.read_bytes()


@pytest.mark.parametrize("keep", ["half", "90%", "4096", "1000", "64", "0"])
def test_truncated_library_is_rebuilt(cache, good_library, keep):
    name, data = good_library
    size = len(data)
    cut = {"half": size // 2, "90%": size * 9 // 10}.get(keep) or int(keep)
    cache.mkdir(mode=0o700)
    lib = cache / name  # the cache key does not depend on the directory
    lib.write_bytes(data[:cut])
    lib.chmod(0o700)
    proc = run_python(ATTEND, {"UNISPARSE_CACHE_DIR": str(cache)})
    assert proc.returncode == 0 and "OK" in proc.stdout, (proc.returncode, proc.stderr[-2000:])
    assert lib.stat().st_size == size  # the damaged file was replaced by a whole one


def test_library_that_never_loads_names_the_cache_path(tmp_path, monkeypatch, cache):
    # A compiler that "succeeds" but writes something that is not a library,
    # and counts its runs: the damaged file is removed and rebuilt exactly
    # once, then the error names the file.
    root = tmp_path / "build"
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    runs = tmp_path / "runs"
    tool = root / "bin" / "unisparse-compile"
    tool.write_text(f'#!/bin/sh\nfor a; do out=$a; done\necho run >> {runs}\nhead -c 3000 /dev/urandom > "$out"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("UNISPARSE_BUILD_DIR", str(root))
    with pytest.raises(UnisparseError) as info:
        _build.load_cached("cpu", "sig", ["--target=cpu"])
    message = str(info.value)
    assert str(cache.resolve()) in message and "rebuilt" in message
    assert "/proc/self/fd" not in message
    assert runs.read_text().count("run") == 2
    assert [p.name for p in cache.iterdir()] == []  # the damaged file is not left behind


def test_fifo_in_the_cache_is_refused_not_waited_on(cache):
    lib = compiled_library(cache)
    lib.unlink()
    os.mkfifo(lib, 0o600)
    proc = run_python(ATTEND, {"UNISPARSE_CACHE_DIR": str(cache)}, timeout=60)
    assert proc.returncode != 0
    assert "UnisparseError" in proc.stderr and "not a regular file" in proc.stderr, proc.stderr[-2000:]
    assert str(lib) in proc.stderr


def test_library_is_synced_before_the_rename(cache, monkeypatch):
    # The compiled file's data reaches the disk before its name does, so a
    # crash cannot leave a short file under the final name.
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, **kw):
        events.append(("replace", str(src)))
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    args = [
        f"--config={CFG.mlir_attr()}",
        "--heads=4",
        "--kv-heads=2",
        "--head-dim=16",
        "--dtype=f32",
        "--target=cpu",
        f"--link-runtime={_build.build_dir() / 'lib'}",
    ]
    _build.cached_library("cpu", "fsync-test", args)
    replaced = [e for e in events if e[0] == "replace"]
    assert len(replaced) == 1
    tmp = replaced[0][1]
    assert ("fsync", tmp) in events and events.index(("fsync", tmp)) < events.index(replaced[0])


# --------------------------------------------------------------------------- #
# Symlinks on the way to the cache
# --------------------------------------------------------------------------- #


@pytest.mark.skipif(not IS_ROOT, reason="making a symlink owned by another user needs root")
def test_symlink_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)  # as /tmp
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = sticky / "link"
    os.symlink(target, link)
    os.lchown(link, NOBODY, NOBODY)  # another user's link: they may repoint it
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(link / "c"))
    with pytest.raises(UnisparseError, match=f"symlink owned by uid {NOBODY}"):
        _build.cache_dir()
    assert not (target / "c").exists()  # nothing was created through it


def test_own_symlink_is_followed_and_its_target_checked(tmp_path, monkeypatch):
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    link = tmp_path / "link"
    os.symlink(target, link)
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(link / "c"))
    # The cache is the link's target, by its real path: a later change of
    # the link cannot redirect writes.
    assert _build.cache_dir() == target.resolve() / "c"
    # A link leading into a directory that others may rename in is refused.
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    (shared / "t").mkdir(mode=0o700)
    link2 = tmp_path / "link2"
    os.symlink(shared / "t", link2)
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(link2 / "c"))
    with pytest.raises(UnisparseError, match="without the sticky bit"):
        _build.cache_dir()


def test_dotdot_after_a_symlink_is_resolved_as_the_kernel_does(tmp_path, monkeypatch):
    # a/link -> b/inner; a/link/../c is b/c, not a/c (a lexical '..' would
    # check one directory and use another).
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "inner").mkdir(parents=True)
    os.symlink(tmp_path / "b" / "inner", tmp_path / "a" / "link")
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(tmp_path / "a" / "link" / ".." / "c"))
    assert _build.cache_dir() == (tmp_path / "b" / "c").resolve()
    assert (tmp_path / "b" / "c").is_dir() and not (tmp_path / "a" / "c").exists()


# --------------------------------------------------------------------------- #
# Where the cache is
# --------------------------------------------------------------------------- #


@pytest.fixture
def no_cache_env(monkeypatch):
    monkeypatch.delenv("UNISPARSE_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)


def test_relative_xdg_cache_home_is_ignored(tmp_path, monkeypatch, no_cache_env):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relcache")
    assert _build.cache_dir() == (tmp_path / "home" / ".cache" / "unisparse").resolve()
    assert not (tmp_path / "relcache").exists()


def test_empty_home_uses_the_password_database(tmp_path, monkeypatch, no_cache_env):
    monkeypatch.setenv("HOME", "")
    expected = pathlib.Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "unisparse"
    assert _build.cache_dir() == expected.resolve()
    assert _build.cache_dir() != pathlib.Path("/.cache/unisparse")


@pytest.mark.parametrize("where", ["file", "/dev/null", "/proc"])
def test_cache_home_that_is_not_a_directory_gives_a_clear_error(tmp_path, monkeypatch, no_cache_env, where):
    if where == "file":
        where = str(tmp_path / "a-file")
        pathlib.Path(where).write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", where)
    with pytest.raises(UnisparseError, match="cache directory") as info:
        _build.cache_dir()
    assert where in str(info.value) and "UNISPARSE_CACHE_DIR" in str(info.value)


def test_cache_dir_that_is_a_device_is_refused(monkeypatch):
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", "/dev/null")
    with pytest.raises(UnisparseError, match="not a directory"):
        _build.cache_dir()


def test_ancestor_message_names_the_actual_fault(tmp_path, monkeypatch):
    # A directory of this user (or root) with a bad mode: the message is
    # about the mode, not about who owns it.
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(shared / "c"))
    with pytest.raises(UnisparseError) as info:
        _build.cache_dir()
    message = str(info.value)
    assert "writable by group or others without the sticky bit (mode 777)" in message
    assert "owned by" not in message
    if IS_ROOT:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o755)
        os.chown(foreign, NOBODY, NOBODY)
        monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(foreign / "c"))
        with pytest.raises(UnisparseError) as info:
            _build.cache_dir()
        assert f"owned by uid {NOBODY}" in str(info.value) and "writable" not in str(info.value)


def test_new_cache_directories_are_private(tmp_path, monkeypatch):
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(tmp_path / "x" / "y" / "z"))
    path = _build.cache_dir()
    for p in (path, path.parent, path.parent.parent):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o700
