"""Compile and cache: the one place where ``unisparse-compile`` runs and its
libraries are stored, shared by the CPU and CUDA back ends.

The cache (``$UNISPARSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/unisparse``, else
``~/.cache/unisparse``) holds shared libraries that the process will
``dlopen``, i.e. run. So:

* the directory is created ``0700`` and must be owned by the user (or root)
  and writable by nobody else; a library must be a regular file with the
  same owner rule and no group/other write bit. Anything else is refused
  with :class:`UnisparseError` rather than loaded;
* a library's name is a hash of its signature *and of the compiler that made
  it* (the contents of ``unisparse-compile``, of the project libraries it
  loads and of the runtime, plus the name and size of the MLIR library) and,
  for the CPU, of the host CPU it is optimised for: a rebuilt compiler never
  serves an old library, nor a machine another machine's;
* a library is written to a private temporary file in the cache and renamed
  into place, so no reader ever sees a partial file.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import stat
import subprocess
import tempfile

from ._core import UnisparseError

_REPO = pathlib.Path(__file__).resolve().parents[2]


def build_dir() -> pathlib.Path:
    """The project's build directory (``$UNISPARSE_BUILD_DIR``, default
    ``<repo>/build``)."""
    return pathlib.Path(os.environ.get("UNISPARSE_BUILD_DIR", _REPO / "build"))


def compiler_path() -> pathlib.Path:
    return build_dir() / "bin" / "unisparse-compile"


def runtime_path() -> pathlib.Path:
    return build_dir() / "lib" / "libunisparse_runtime.so"


def run(cmd, what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UnisparseError(f"{what} failed ({' '.join(map(str, cmd))}):\n{proc.stderr}")
    return proc


# --------------------------------------------------------------------------- #
# Where libraries live, and what may be loaded
# --------------------------------------------------------------------------- #


def _trusted_owner(st: os.stat_result) -> bool:
    return st.st_uid in (os.getuid(), 0)


def _check_private(path: pathlib.Path, what: str, want_dir: bool) -> pathlib.Path:
    """`path` must be a directory (`want_dir`) or a regular file owned by
    the user (or root) that no one else can write; raises
    :class:`UnisparseError` naming `what` otherwise."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise UnisparseError(f"{what} {path}: {e}") from None
    if want_dir != stat.S_ISDIR(st.st_mode) or not (want_dir or stat.S_ISREG(st.st_mode)):
        raise UnisparseError(f"refusing {what} {path}: not a {'directory' if want_dir else 'regular file'}")
    if not _trusted_owner(st):
        raise UnisparseError(f"refusing {what} {path}: owned by uid {st.st_uid}, not by this user "
                             f"({os.getuid()})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnisparseError(f"refusing {what} {path}: writable by group or others "
                             f"(mode {stat.S_IMODE(st.st_mode):o})")
    return path


def check_private_dir(path: pathlib.Path) -> pathlib.Path:
    """A cache directory: the user's (or root's), writable by no one else."""
    return _check_private(path, "cache directory", want_dir=True)


def check_loadable(path: pathlib.Path) -> pathlib.Path:
    """A library about to be ``dlopen``-ed, i.e. run: a regular file, the
    user's (or root's), writable by no one else."""
    return _check_private(path, "to load", want_dir=False)


def cache_dir() -> pathlib.Path:
    """The per-user cache directory, created ``0700`` and checked."""
    env = os.environ.get("UNISPARSE_CACHE_DIR")
    if env:
        path = pathlib.Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or (pathlib.Path.home() / ".cache")
        path = pathlib.Path(base) / "unisparse"
    if not path.exists():
        os.makedirs(path, mode=0o700, exist_ok=True)
    return check_private_dir(path)


# --------------------------------------------------------------------------- #
# The compiler's identity
# --------------------------------------------------------------------------- #

_DIGESTS: dict[tuple, str] = {}


def _file_digest(path: pathlib.Path) -> str:
    # Remembered per inode, size, mtime and ctime: a rewrite changes the
    # ctime, which (unlike the mtime) no one can set back.
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def compiler_identity() -> str:
    """A hash of what decides the bytes of a compiled library: the compiler
    tool, the project's shared libraries beside it, the runtime the library
    links, and the MLIR/LLVM shared libraries (by resolved name and size:
    they are the distribution's, versioned by name)."""
    tool = compiler_path()
    if not tool.exists():
        raise UnisparseError(f"unisparse-compile not found at {tool}; build the project first")
    parts = [f"tool:{_file_digest(tool)}"]
    libdir = build_dir() / "lib"
    for lib in sorted(libdir.glob("lib*.so")) if libdir.is_dir() else []:
        parts.append(f"{lib.name}:{_file_digest(lib)}")
    for name in ("libMLIR.so", "libLLVM.so"):
        for d in ("/usr/lib/llvm-22/lib",):
            p = pathlib.Path(d) / name
            if p.exists():
                real = p.resolve()
                parts.append(f"{real.name}:{real.stat().st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------- #
# Compile into the cache
# --------------------------------------------------------------------------- #


def host_cpu_identity() -> str:
    """The host CPU's model and feature flags: CPU libraries are compiled for
    the machine that builds them (``unisparse-compile --target=cpu`` defaults
    to ``--host-cpu=native``), so a cache shared between machines must not
    serve one machine's library to another."""
    try:
        lines = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        import platform
        return platform.machine() + "|" + platform.processor()
    keep = [l for l in lines if l.startswith(("model name", "flags"))][:2]
    return hashlib.sha256("\n".join(keep).encode()).hexdigest()


def cached_library(kind: str, signature: str, args: list) -> pathlib.Path:
    """The library that ``unisparse-compile <args> -o <lib>`` makes for
    `signature`, from the cache or compiled into it (temporary file, then
    rename). `kind` names the target in the file name (``cpu``/``cuda``)."""
    host = host_cpu_identity() if kind == "cpu" else ""
    key = hashlib.sha256(f"{kind}|{signature}|{compiler_identity()}|{host}".encode()).hexdigest()[:24]
    cache = cache_dir()
    lib = cache / f"unisparse_{kind}_{key}.so"
    if lib.exists():
        return check_loadable(lib)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{lib.stem}.", suffix=".tmp.so")
    os.close(fd)
    try:
        run([compiler_path(), *args, "-o", tmp], f"unisparse-compile --target={kind}")
        os.chmod(tmp, 0o700)
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return check_loadable(lib)
