"""Compile and cache: the one place where ``unisparse-compile`` runs and its
libraries are stored, shared by the CPU and CUDA back ends.

The cache (``$UNISPARSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/unisparse``, else
``~/.cache/unisparse``) holds shared libraries that the process will
``dlopen``, i.e. run. So:

* the directory is created ``0700`` and must be owned by the user (or root)
  and writable by nobody else; a library must be a regular file with the
  same owner rule and no group/other write bit. Anything else is refused
  with :class:`UnisparseError` rather than loaded;
* a library's name is a hash of its signature, of the ``unisparse-compile``
  arguments, *of the compiler that made it* (:func:`compiler_identity`: the
  SHA-256 of the contents of ``unisparse-compile``, of every project shared
  library beside it in ``<build>/lib``, the runtime among them, and of the
  LLVM/MLIR shared libraries the tool loads, found with ``ldd`` once per
  build of the tool) and, for the CPU, of the host CPU it is optimised for
  (:func:`host_cpu_identity`: model and feature flags): a rebuilt compiler
  or a new LLVM never serves an old library, nor a machine another
  machine's;
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

_PACKAGE = pathlib.Path(__file__).resolve().parent
_REPO = _PACKAGE.parents[1]
# Where an installed wheel keeps its compiler and runtime (CMake installs them
# there: cmake/UnisparseInstall.cmake).
_TOOLCHAIN = _PACKAGE / "_toolchain"


def build_dir() -> pathlib.Path:
    """The directory whose ``bin/`` holds the compiler and ``lib/`` the
    runtime: ``$UNISPARSE_BUILD_DIR`` when set, else the toolchain an
    installed wheel carries (``unisparse/_toolchain``), else the source
    checkout's ``<repo>/build``."""
    env = os.environ.get("UNISPARSE_BUILD_DIR")
    if env:
        return pathlib.Path(env)
    if (_TOOLCHAIN / "bin" / "unisparse-compile").exists():
        return _TOOLCHAIN
    return _REPO / "build"


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


def _check_stat(st: os.stat_result, path, what: str, want_dir: bool):
    if want_dir != stat.S_ISDIR(st.st_mode) or not (want_dir or stat.S_ISREG(st.st_mode)):
        raise UnisparseError(f"refusing {what} {path}: not a {'directory' if want_dir else 'regular file'}")
    if not _trusted_owner(st):
        raise UnisparseError(f"refusing {what} {path}: owned by uid {st.st_uid}, not by this user ({os.getuid()})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnisparseError(f"refusing {what} {path}: writable by group or others (mode {stat.S_IMODE(st.st_mode):o})")


def _check_ancestors(path: pathlib.Path, what: str):
    """No directory above `path` lets another user rename or replace what
    is below it: each is the user's or root's, and any that group or others
    can write is sticky (as /tmp is)."""
    for parent in pathlib.Path(os.path.abspath(path)).parents:
        st = os.stat(parent)
        if not _trusted_owner(st) or (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX):
            raise UnisparseError(
                f"refusing {what} {path}: {parent} is owned by uid {st.st_uid} or "
                f"writable by others without the sticky bit "
                f"(mode {stat.S_IMODE(st.st_mode):o})"
            )


def _open_checked(path: pathlib.Path, what: str, want_dir: bool) -> int:
    """Opens `path` without following a final symlink and checks the opened
    file itself (fstat), so that what is checked is what is used; returns
    the descriptor. The owner rule: the user's or root's, writable by no one
    else, with the same rule for the directories above it."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_DIRECTORY if want_dir else 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise UnisparseError(
            f"refusing {what} {path}: {e.strerror} (a symlink, missing, or not a {'directory' if want_dir else 'file'})"
        ) from None
    try:
        _check_stat(os.fstat(fd), path, what, want_dir)
        _check_ancestors(path, what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_private_dir(path: pathlib.Path) -> pathlib.Path:
    """A cache directory: the user's (or root's), writable by no one else."""
    os.close(_open_checked(path, "cache directory", want_dir=True))
    return path


def check_loadable(path: pathlib.Path) -> pathlib.Path:
    """A library about to be ``dlopen``-ed, i.e. run: a regular file, the
    user's (or root's), writable by no one else (prefer
    :func:`load_library`, which checks and loads the same open file)."""
    os.close(_open_checked(path, "to load", want_dir=False))
    return path


_LOADED_FDS: list[int] = []


def load_library(path, mode: int = os.RTLD_LOCAL):
    """``ctypes.CDLL`` of `path`, checked as :func:`check_loadable` says, on
    the very file that was checked (``dlopen`` of ``/proc/self/fd/N``), so
    the file cannot be swapped between the check and the load. The
    descriptor stays open for the life of the process: ``dlopen`` knows the
    library by that name, which must not be reused by another file."""
    import ctypes

    fd = _open_checked(pathlib.Path(path), "to load", want_dir=False)
    try:
        lib = ctypes.CDLL(f"/proc/self/fd/{fd}", mode=mode)
    except BaseException:
        os.close(fd)
        raise
    _LOADED_FDS.append(fd)
    return lib


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


def _stat_key(path) -> tuple:
    """What identifies one version of a file within a process: a rewrite
    changes the ctime, which (unlike the mtime) no one can set back."""
    st = os.stat(path)
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_DIGESTS: dict[tuple, str] = {}


def _file_digest(path: pathlib.Path) -> str:
    key = _stat_key(path)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


_LINKED: dict[tuple, list] = {}


def _linked_libraries(tool: pathlib.Path) -> list[pathlib.Path]:
    """The LLVM/MLIR shared libraries `tool` loads (``ldd``, run once per
    build of the tool), else the packaged ones."""
    key = _stat_key(tool)
    if key not in _LINKED:
        _LINKED[key] = _find_linked_libraries(tool)
    return _LINKED[key]


def _find_linked_libraries(tool: pathlib.Path) -> list[pathlib.Path]:
    try:
        proc = subprocess.run(["ldd", str(tool)], capture_output=True, text=True, timeout=30)
        libs = [
            pathlib.Path(line.split("=>")[1].split("(")[0].strip())
            for line in proc.stdout.splitlines()
            if "=>" in line and ("libMLIR" in line or "libLLVM" in line)
        ]
        if libs or (proc.returncode == 0 and "=>" in proc.stdout):
            # A tool with LLVM/MLIR linked in (the wheel's) loads none.
            return libs
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    return [p for p in (pathlib.Path("/usr/lib/llvm-22/lib") / n for n in ("libMLIR.so", "libLLVM.so")) if p.exists()]


def compiler_identity() -> str:
    """A hash of what decides the bytes of a compiled library: the contents
    of the compiler tool, of the project's shared libraries beside it (the
    runtime the library links among them) and of the LLVM/MLIR shared
    libraries the tool loads (remembered per process by inode, size, mtime
    and ctime)."""
    tool = compiler_path()
    if not tool.exists():
        raise UnisparseError(f"unisparse-compile not found at {tool}; build the project first")
    parts = [f"tool:{_file_digest(tool)}"]
    libdir = build_dir() / "lib"
    for lib in sorted(libdir.glob("lib*.so")) if libdir.is_dir() else []:
        parts.append(f"{lib.name}:{_file_digest(lib)}")
    for lib in _linked_libraries(tool):
        real = lib.resolve()
        parts.append(f"{real}:{_file_digest(real)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------- #
# Compile into the cache
# --------------------------------------------------------------------------- #


def host_cpu_identity() -> str:
    """The host CPU's model and feature flags: CPU libraries are compiled for
    the machine that builds them (``unisparse-compile --target=cpu`` defaults
    to ``--host-cpu=native``), so a cache shared between machines must not
    serve one machine's library to another."""
    import platform

    keys = (
        "model name",
        "flags",
        "Features",
        "CPU implementer",
        "CPU architecture",
        "CPU variant",
        "CPU part",
        "cpu model",
        "isa",
    )
    seen: dict[str, str] = {}
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            name = name.strip()
            if name in keys and name not in seen:
                seen[name] = value.strip()
    except OSError:
        pass
    text = "\n".join([platform.machine(), platform.processor()] + [f"{k}:{v}" for k, v in sorted(seen.items())])
    return hashlib.sha256(text.encode()).hexdigest()


def cached_library(kind: str, signature: str, args: list) -> pathlib.Path:
    """The library that ``unisparse-compile <args> -o <lib>`` makes for
    `signature`, from the cache or compiled into it (temporary file, then
    rename). `kind` names the target in the file name (``cpu``/``cuda``)."""
    host = host_cpu_identity() if kind == "cpu" else ""
    # The arguments too: --link-runtime's directory ends up in the library.
    text = "|".join([kind, signature, compiler_identity(), host, *map(str, args)])
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    cache = cache_dir()
    lib = cache / f"unisparse_{kind}_{key}.so"
    if os.path.lexists(lib):
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
