"""The compile cache (unisparse._build): per user, private, keyed on the
compiler's contents, written atomically; anything another user could have
planted is refused, never loaded."""

import os
import pathlib
import stat

import pytest

from unisparse import _build
from unisparse._core import UnisparseError
from unisparse.config import preset

CFG = preset("mean", block=32, c_q=8, c_k=8, tau=0.8)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("UNISPARSE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "unisparse"


def test_default_cache_is_per_user_and_private(fresh_cache, monkeypatch):
    assert _build.cache_dir() == fresh_cache
    assert stat.S_IMODE(os.stat(fresh_cache).st_mode) == 0o700
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(fresh_cache.parent / "home"))
    assert _build.cache_dir() == fresh_cache.parent / "home" / ".cache" / "unisparse"


def test_shared_or_foreign_cache_directory_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(shared))
    with pytest.raises(UnisparseError, match="writable by group or others"):
        _build.cache_dir()
    if os.getuid() == 0:  # as root, make it another user's
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(foreign))
        with pytest.raises(UnisparseError, match="owned by uid 65534"):
            _build.cache_dir()


def test_planted_library_is_refused(fresh_cache):
    from unisparse.cpu import compile_cpu

    kern = compile_cpu(CFG, 4, 2, 16, "f32")
    lib = kern.lib_path
    assert lib.parent == fresh_cache
    # Another user rewrote it (or could have): writable by others.
    os.chmod(lib, 0o666)
    with pytest.raises(UnisparseError, match="refusing to load .* writable by group or others"):
        compile_cpu(CFG, 4, 2, 16, "f32")
    os.chmod(lib, 0o700)
    if os.getuid() == 0:
        os.chown(lib, 65534, 65534)
        with pytest.raises(UnisparseError, match="refusing to load .* owned by uid 65534"):
            compile_cpu(CFG, 4, 2, 16, "f32")


def _fake_build(root: pathlib.Path, tool_text: str) -> pathlib.Path:
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "lib").mkdir(exist_ok=True)
    tool = root / "bin" / "unisparse-compile"
    tool.write_text(tool_text)
    tool.chmod(0o755)
    return tool


def test_key_names_the_compiler_contents_not_its_mtime(tmp_path, monkeypatch):
    tool = _fake_build(tmp_path / "build", "#!/bin/sh\necho one\n")
    monkeypatch.setenv("UNISPARSE_BUILD_DIR", str(tmp_path / "build"))
    before = _build.compiler_identity()
    st = os.stat(tool)
    tool.write_text("#!/bin/sh\necho two\n")  # same size, rebuilt compiler
    os.utime(tool, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime too
    assert _build.compiler_identity() != before
    # ... and a project library beside it counts too.
    after = _build.compiler_identity()
    (tmp_path / "build" / "lib" / "libunisparse_runtime.so").write_bytes(b"runtime v2")
    assert _build.compiler_identity() != after


def test_failed_compile_leaves_nothing_in_the_cache(tmp_path, monkeypatch, fresh_cache):
    # A compiler that writes half a library and fails.
    _fake_build(tmp_path / "build", '#!/bin/sh\nfor a; do out=$a; done\necho partial > "$out"\nexit 3\n')
    monkeypatch.setenv("UNISPARSE_BUILD_DIR", str(tmp_path / "build"))
    with pytest.raises(UnisparseError, match="unisparse-compile --target=cpu failed"):
        _build.cached_library("cpu", "sig", ["--target=cpu"])
    assert list(fresh_cache.iterdir()) == []


def test_compile_and_cache_roundtrip(fresh_cache):
    # The real compiler: the second lookup is served from the cache, by name
    # (the compiler is not run again: the file keeps its mtime).
    args = [
        f"--config={CFG.mlir_attr()}",
        "--heads=4",
        "--kv-heads=2",
        "--head-dim=16",
        "--dtype=f32",
        "--target=cpu",
        f"--link-runtime={_build.build_dir() / 'lib'}",
    ]
    a = _build.cached_library("cpu", f"{CFG.mlir_attr()}|4|2|16|f32", args)
    mtime = os.stat(a).st_mtime_ns
    b = _build.cached_library("cpu", f"{CFG.mlir_attr()}|4|2|16|f32", args)
    assert a == b and os.stat(b).st_mtime_ns == mtime
    assert stat.S_IMODE(os.stat(a).st_mode) & 0o022 == 0
    # Other arguments (code for another CPU) are another library.
    c = _build.cached_library("cpu", f"{CFG.mlir_attr()}|4|2|16|f32", args + ["--host-cpu=generic"])
    assert c != a and os.stat(a).st_mtime_ns == mtime


def test_symlinked_library_is_refused(fresh_cache, tmp_path):
    from unisparse.cpu import compile_cpu

    lib = compile_cpu(CFG, 4, 2, 16, "f32").lib_path
    real = tmp_path / "elsewhere.so"
    os.replace(lib, real)
    os.symlink(real, lib)  # the checked name would lead elsewhere
    with pytest.raises(UnisparseError, match="refusing to load .*symlink"):
        compile_cpu(CFG, 4, 2, 16, "f32")


def test_cache_under_a_shared_directory_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)  # anyone may rename what is inside; no sticky bit
    private = shared / "cache"
    private.mkdir(mode=0o700)
    monkeypatch.setenv("UNISPARSE_CACHE_DIR", str(private))
    with pytest.raises(UnisparseError, match="without the sticky bit"):
        _build.cache_dir()
    os.chmod(shared, 0o1777)  # sticky, as /tmp: only the owner may rename
    assert _build.cache_dir() == private


def test_host_identity_names_the_architecture(monkeypatch):
    import platform

    a = _build.host_cpu_identity()
    assert len(a) == 64 and a == _build.host_cpu_identity()
    # Another machine type (an aarch64 host sharing the cache) is another key.
    monkeypatch.setattr(platform, "machine", lambda: "aarch64-test")
    assert _build.host_cpu_identity() != a
