"""The ``unisparse-opt`` and ``unisparse-compile`` commands of an installed
package: each replaces the Python process with the tool of the same name in
:func:`unisparse._build.build_dir` (the wheel's ``unisparse/_toolchain/bin``,
or ``$UNISPARSE_BUILD_DIR/bin``), passing the arguments through."""

from __future__ import annotations

import os
import sys

from . import _build


def _exec(name: str):
    tool = _build.build_dir() / "bin" / name
    if not tool.is_file():
        sys.exit(
            f"{name}: not found at {tool} (this unisparse package carries no compiler; "
            f"set UNISPARSE_BUILD_DIR to a build of the project)"
        )
    os.execv(tool, [str(tool), *sys.argv[1:]])


def opt():
    _exec("unisparse-opt")


def compile():
    _exec("unisparse-compile")
