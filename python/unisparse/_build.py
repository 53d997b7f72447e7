"""Compile and cache: the one place where ``unisparse-compile`` runs and its
libraries are stored, shared by the CPU and CUDA back ends.

The cache is ``$UNISPARSE_CACHE_DIR``, else ``$XDG_CACHE_HOME/unisparse``
(an absolute ``XDG_CACHE_HOME`` only: the XDG spec says to ignore a relative
one), else ``~/.cache/unisparse`` (``$HOME`` if it is an absolute path, else
the home directory of the password database). It holds shared libraries that
the process will ``dlopen``, i.e. run. So:

* the path to it is walked one component at a time with ``lstat`` (never
  following a link blindly): every directory on the way is the user's or
  root's and writable by others only if sticky (as ``/tmp``), every symlink
  on the way is the user's or root's (and its target is walked by the same
  rules), and the cache is used by its resolved path, so no one else can
  redirect what is written, renamed, ``chmod``-ed or removed later;
  missing directories are created ``0700``;
* the cache directory itself must be the user's (or root's) and writable by
  no one else; a library must be a regular file with the same owner rule
  and no group/other write bit. It is opened with ``O_NOFOLLOW |
  O_NONBLOCK`` (a FIFO cannot block the loader) and checked with ``fstat``
  on the open descriptor, and that descriptor is what is loaded. Anything
  else is refused with :class:`UnisparseError` rather than loaded;
* before loading, a library's ELF headers are checked against its size (a
  truncated file would be mapped past its end and fault with SIGBUS); a
  cached library that is damaged or that ``dlopen`` rejects is removed and
  rebuilt once, and the error after that names the file;
* a library's name is a hash of its signature, of the ``unisparse-compile``
  arguments, *of the compiler that made it* (:func:`compiler_identity`: the
  SHA-256 of the contents of ``unisparse-compile``, of every project shared
  library beside it in ``<build>/lib``, the runtime among them, and of the
  LLVM/MLIR shared libraries the tool loads, found with ``ldd`` once per
  build of the tool) and, for the CPU, of the host CPU it is optimised for
  (:func:`host_cpu_identity`: model and feature flags): a rebuilt compiler
  or a new LLVM never serves an old library, nor a machine another
  machine's;
* a library is compiled into a private temporary file in the cache,
  ``fsync``-ed, and renamed into place (then the directory is ``fsync``-ed),
  so no reader ever sees a partial file, even after a crash.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import pwd
import stat
import struct
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


def _owner_fault(st: os.stat_result) -> str | None:
    if _trusted_owner(st):
        return None
    return f"owned by uid {st.st_uid}, not by this user ({os.getuid()}) or root"


def _check_stat(st: os.stat_result, path, what: str, want_dir: bool):
    if want_dir != stat.S_ISDIR(st.st_mode) or not (want_dir or stat.S_ISREG(st.st_mode)):
        raise UnisparseError(f"refusing {what} {path}: not a {'directory' if want_dir else 'regular file'}")
    fault = _owner_fault(st)
    if fault:
        raise UnisparseError(f"refusing {what} {path}: {fault}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnisparseError(f"refusing {what} {path}: writable by group or others (mode {stat.S_IMODE(st.st_mode):o})")


def _check_ancestor(st: os.stat_result, directory: str, path, what: str):
    """A directory above `path`: the user's or root's, and writable by
    others only with the sticky bit (then no one else may rename or replace
    what is below it)."""
    fault = _owner_fault(st)
    if not fault and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        fault = f"writable by group or others without the sticky bit (mode {stat.S_IMODE(st.st_mode):o})"
    if fault:
        raise UnisparseError(f"refusing {what} {path}: {directory} is {fault}")


_MAX_SYMLINKS = 40  # as the kernel's ELOOP limit


def _mkdir_private(entry, path, what: str):
    """``mkdir entry`` with mode 0700 (one that appeared meanwhile is fine:
    the caller checks whatever is there)."""
    try:
        os.mkdir(entry, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise UnisparseError(
            f"cannot create {what} {path}: mkdir {entry}: {e.strerror} "
            f"(set UNISPARSE_CACHE_DIR to a directory of yours)"
        ) from None


def _walk(path, what: str, create: bool = False, follow_last: bool = True) -> pathlib.Path:
    """The resolved path of `path` (no symlink, ``.`` or ``..`` left), found
    the way the kernel resolves it but one ``lstat`` at a time, checking on
    the way that every directory passed through is a trusted ancestor
    (:func:`_check_ancestor`) and every symlink followed is the user's or
    root's. The last component is not checked (the caller opens and checks
    it); it may be missing, and it is left as it is if it is a symlink and
    not `follow_last`. With `create`, missing directories are made
    ``0700`` (and then checked like the others, so a directory that someone
    else made first is refused)."""
    text = os.fspath(path)
    if not text:
        raise UnisparseError(f"refusing {what}: empty path")
    if not os.path.isabs(text):
        text = os.path.join(os.getcwd(), text)
    pending = [c for c in reversed(text.split("/")) if c not in ("", ".")]
    current = "/"
    current_st = os.lstat("/")
    links = 0
    while pending:
        name = pending.pop()
        if name == "..":
            current = os.path.dirname(current)  # `current` has no symlink: exact
            current_st = os.lstat(current)
            continue
        # `current` is a directory we are about to look into: it must be
        # trusted, or whoever may write it can swap what we find there.
        if not stat.S_ISDIR(current_st.st_mode):
            raise UnisparseError(
                f"refusing {what} {path}: {current} is not a directory "
                f"(set UNISPARSE_CACHE_DIR to a directory of yours)"
            )
        _check_ancestor(current_st, current, path, what)
        entry = os.path.join(current, name)
        try:
            st = os.lstat(entry)
        except FileNotFoundError:
            if not pending:  # the last component may be missing
                return pathlib.Path(entry)
            if not create:
                raise UnisparseError(f"refusing {what} {path}: {entry} does not exist") from None
            _mkdir_private(entry, path, what)
            st = os.lstat(entry)
        except OSError as e:
            raise UnisparseError(f"refusing {what} {path}: {entry}: {e.strerror}") from None
        if stat.S_ISLNK(st.st_mode) and (pending or follow_last):
            fault = _owner_fault(st)
            if fault:
                raise UnisparseError(f"refusing {what} {path}: {entry} is a symlink {fault}")
            links += 1
            if links > _MAX_SYMLINKS:
                raise UnisparseError(f"refusing {what} {path}: too many levels of symlinks")
            target = os.readlink(entry)
            if target.startswith("/"):
                current, current_st = "/", os.lstat("/")
            pending.extend(c for c in reversed(target.split("/")) if c not in ("", "."))
            continue
        current, current_st = entry, st
    return pathlib.Path(current)


def _open_checked(path: pathlib.Path, what: str, want_dir: bool) -> tuple[int, pathlib.Path]:
    """Opens `path` by its resolved name (:func:`_walk`: every directory
    above it trusted), without following a final symlink and without
    blocking (a FIFO opens at once and is then refused), and checks the
    opened file itself (fstat), so that what is checked is what is used.
    Returns the descriptor and the resolved path. The owner rule: the
    user's or root's, writable by no one else."""
    real = _walk(path, what, follow_last=want_dir)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | (os.O_DIRECTORY if want_dir else 0)
    try:
        fd = os.open(real, flags)
    except OSError as e:
        raise UnisparseError(
            f"refusing {what} {path}: {e.strerror} (a symlink, missing, or not a {'directory' if want_dir else 'file'})"
        ) from None
    try:
        _check_stat(os.fstat(fd), path, what, want_dir)
    except BaseException:
        os.close(fd)
        raise
    return fd, real


def check_private_dir(path: pathlib.Path) -> pathlib.Path:
    """A cache directory: the user's (or root's), writable by no one else;
    returns its resolved path."""
    fd, real = _open_checked(path, "cache directory", want_dir=True)
    os.close(fd)
    return real


def check_loadable(path: pathlib.Path) -> pathlib.Path:
    """A library about to be ``dlopen``-ed, i.e. run: a regular file, the
    user's (or root's), writable by no one else (prefer
    :func:`load_library`, which checks and loads the same open file)."""
    fd, _ = _open_checked(path, "to load", want_dir=False)
    os.close(fd)
    return path


class DamagedLibrary(UnisparseError):
    """A library that passed the ownership checks but cannot be loaded: a
    truncated or corrupt file, or one that ``dlopen`` rejects."""


def _check_elf(fd: int, path) -> None:
    """Raises :class:`DamagedLibrary` unless the open file is an ELF file
    whose program headers, loaded segments and section headers all lie
    within it. ``dlopen`` maps segments by their offsets; a segment past the
    end of a truncated file faults (SIGBUS) when touched, so this is checked
    first. The linker writes the section headers last, so a file cut
    anywhere fails this check."""
    size = os.fstat(fd).st_size

    def damaged(why: str):
        return DamagedLibrary(f"{path} is not a loadable library: {why} ({size} bytes)")

    ident = os.pread(fd, 64, 0)
    if len(ident) < 52 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise damaged("no ELF header")
    wide = ident[4] == 2
    end = "<" if ident[5] == 1 else ">"
    if wide:
        phoff, shoff = struct.unpack_from(end + "QQ", ident, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", ident, 54)
        ph = (end + "I4xQ16xQ", 0)  # p_type, p_offset, p_filesz
    else:
        phoff, shoff = struct.unpack_from(end + "II", ident, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", ident, 42)
        ph = (end + "II8xI", 0)
    if phnum == 0 or phentsize < struct.calcsize(ph[0]) or phoff + phnum * phentsize > size:
        raise damaged("program headers missing or past the end of the file")
    if shoff + shnum * shentsize > size:
        raise damaged("section headers past the end of the file (truncated)")
    table = os.pread(fd, phnum * phentsize, phoff)
    for i in range(phnum):
        p_type, p_offset, p_filesz = struct.unpack_from(ph[0], table, i * phentsize)
        if p_type == 1 and p_offset + p_filesz > size:  # PT_LOAD
            raise damaged(f"segment {i} ends at byte {p_offset + p_filesz}, past the end of the file")


_LOADED_FDS: list[int] = []


def load_library(path, mode: int = os.RTLD_LOCAL):
    """``ctypes.CDLL`` of `path`, checked as :func:`check_loadable` says and
    by :func:`_check_elf`, on the very file that was checked (``dlopen`` of
    ``/proc/self/fd/N``), so the file cannot be swapped between the check and
    the load. The descriptor stays open for the life of the process:
    ``dlopen`` knows the library by that name, which must not be reused by
    another file. A file that cannot be loaded raises
    :class:`DamagedLibrary` naming `path`."""
    import ctypes

    fd, _ = _open_checked(pathlib.Path(path), "to load", want_dir=False)
    try:
        _check_elf(fd, path)
        name = f"/proc/self/fd/{fd}"
        try:
            lib = ctypes.CDLL(name, mode=mode)
        except OSError as e:
            raise DamagedLibrary(f"cannot load {path}: {str(e).replace(name, str(path))}") from None
    except BaseException:
        os.close(fd)
        raise
    _LOADED_FDS.append(fd)
    return lib


def _home() -> str:
    """``$HOME`` if it is an absolute path, else the password database's
    home directory of this user."""
    home = os.environ.get("HOME", "")
    if os.path.isabs(home):
        return home
    try:
        home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        home = ""
    if not os.path.isabs(home):
        raise UnisparseError(
            "no cache directory: HOME is not an absolute path and this user has no "
            "home directory; set UNISPARSE_CACHE_DIR"
        )
    return home


def cache_dir() -> pathlib.Path:
    """The per-user cache directory (resolved), created ``0700`` and
    checked."""
    env = os.environ.get("UNISPARSE_CACHE_DIR")
    if env:
        path = pathlib.Path(env)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = xdg if os.path.isabs(xdg) else os.path.join(_home(), ".cache")
        path = pathlib.Path(base) / "unisparse"
    real = _walk(path, "cache directory", create=True)
    if not os.path.lexists(real):
        _mkdir_private(real, path, "cache directory")
    return check_private_dir(real)


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


def _library_path(kind: str, signature: str, args: list) -> pathlib.Path:
    """Where the cache keeps the library of `signature` made by
    ``unisparse-compile <args>``."""
    host = host_cpu_identity() if kind == "cpu" else ""
    # The arguments too: --link-runtime's directory ends up in the library.
    text = "|".join([kind, signature, compiler_identity(), host, *map(str, args)])
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    return cache_dir() / f"unisparse_{kind}_{key}.so"


def _fsync_path(path, flags: int):
    fd = os.open(path, flags | os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _compile_into(lib: pathlib.Path, kind: str, args: list):
    """Compiles into a private temporary file beside `lib`, makes it
    ``0700``, syncs its data to disk, renames it to `lib` and syncs the
    directory: after a crash the name holds either nothing or the whole
    file."""
    fd, tmp = tempfile.mkstemp(dir=lib.parent, prefix=f".{lib.stem}.", suffix=".tmp.so")
    os.close(fd)
    try:
        # The linker may replace `tmp` rather than write into it: the mode
        # and the sync apply to whatever file the name holds now.
        run([compiler_path(), *args, "-o", tmp], f"unisparse-compile --target={kind}")
        os.chmod(tmp, 0o700, follow_symlinks=False)
        _fsync_path(tmp, 0)
        os.replace(tmp, lib)
        _fsync_path(lib.parent, os.O_DIRECTORY)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def cached_library(kind: str, signature: str, args: list) -> pathlib.Path:
    """The library that ``unisparse-compile <args> -o <lib>`` makes for
    `signature`, from the cache or compiled into it (temporary file, sync,
    rename), checked as :func:`check_loadable` says. `kind` names the
    target in the file name (``cpu``/``cuda``). Prefer :func:`load_cached`,
    which also repairs a damaged library."""
    lib = _library_path(kind, signature, args)
    if not os.path.lexists(lib):
        _compile_into(lib, kind, args)
    return check_loadable(lib)


def load_cached(kind: str, signature: str, args: list, mode: int = os.RTLD_LOCAL):
    """``(path, ctypes.CDLL)`` of the library of :func:`cached_library`,
    loaded by :func:`load_library`. A cached file that is damaged (truncated,
    corrupt) or that ``dlopen`` rejects is removed and rebuilt once; if the
    rebuilt one does not load either, :class:`DamagedLibrary` names its
    path. (A library that fails the ownership checks is refused, never
    removed.)"""
    lib = _library_path(kind, signature, args)
    for attempt in range(2):
        if not os.path.lexists(lib):
            _compile_into(lib, kind, args)
        try:
            return lib, load_library(lib, mode)
        except DamagedLibrary as e:
            os.unlink(lib)
            if attempt:
                raise DamagedLibrary(
                    f"{e}; the cached library {lib} was removed and rebuilt once, "
                    f"and the rebuilt one does not load either (removed)"
                ) from None
    raise AssertionError("unreachable")
