"""Where the Python layer finds the compiler and the runtime (a build tree,
an installed wheel's unisparse/_toolchain, or the source checkout's build),
the command entry points, and one version for the package and the tools.
The wheel itself is built, installed and smoke-tested by scripts/test.sh
(test/wheel/smoke.py)."""

import os
import pathlib
import subprocess
import sys

import unisparse
from unisparse import _build, _tools


def _fake_toolchain(root: pathlib.Path) -> pathlib.Path:
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    tool = root / "bin" / "unisparse-compile"
    tool.write_text("#!/bin/sh\necho fake\n")
    tool.chmod(0o755)
    return root


def test_build_dir_order(tmp_path, monkeypatch):
    # $UNISPARSE_BUILD_DIR first, then the wheel's toolchain, then <repo>/build.
    wheel = _fake_toolchain(tmp_path / "site" / "unisparse" / "_toolchain")
    monkeypatch.setattr(_build, "_TOOLCHAIN", wheel)
    monkeypatch.setenv("UNISPARSE_BUILD_DIR", str(tmp_path / "elsewhere"))
    assert _build.build_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("UNISPARSE_BUILD_DIR")
    assert _build.build_dir() == wheel
    assert _build.compiler_path() == wheel / "bin" / "unisparse-compile"
    assert _build.runtime_path() == wheel / "lib" / "libunisparse_runtime.so"
    monkeypatch.setattr(_build, "_TOOLCHAIN", tmp_path / "no-wheel")
    assert _build.build_dir() == _build._REPO / "build"


def test_static_tool_names_no_llvm_library(tmp_path):
    # A tool that loads no libLLVM/libMLIR (the wheel's, linked statically) is
    # keyed on itself alone, not on whatever LLVM the machine has installed.
    dynamic_without_llvm = pathlib.Path(sys.executable).resolve()
    assert _build._find_linked_libraries(dynamic_without_llvm) == []


def test_tools_version_is_the_package_version():
    for tool in ("unisparse-opt", "unisparse-compile"):
        out = subprocess.run(
            [str(_build.build_dir() / "bin" / tool), "--version"], capture_output=True, text=True, check=True
        ).stdout
        assert f"UniSparse version {unisparse.__version__}\n" in out, out


def test_entry_points_run_the_tool(tmp_path):
    code = "import sys; sys.argv = ['unisparse-opt', '--version']; from unisparse._tools import opt; opt()"
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(_tools.__file__).parents[1]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0 and f"UniSparse version {unisparse.__version__}" in out.stdout
    env["UNISPARSE_BUILD_DIR"] = str(tmp_path)  # no tools there
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert out.returncode != 0
    assert f"unisparse-opt: not found at {tmp_path / 'bin' / 'unisparse-opt'}" in out.stderr


def test_version_line_is_the_one_cmake_reads():
    # CMakeLists.txt (file(STRINGS ... REGEX)) and the wheel's metadata
    # (scikit-build-core's regex provider) read exactly this line.
    import re

    init = pathlib.Path(unisparse.__file__).read_text()
    lines = re.findall(r'^__version__ = "([0-9]+\.[0-9]+\.[0-9]+)"$', init, re.MULTILINE)
    assert lines == [unisparse.__version__]
