# -*- Python -*-
# lit configuration of the embedding example (run through check-embedding).
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "UNISPARSE_EMBEDDING"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.embedding_obj_root, "test")
config.environment["FILECHECK_OPTS"] = "-enable-var-scope --allow-unused-prefixes=false"

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
config.substitutions.append(("%unisparse_version", config.unisparse_version))
llvm_config.add_tool_substitutions(
    [
        ToolSubst("embed-opt", unresolved="fatal"),
        ToolSubst("embed-capi", unresolved="fatal"),
        ToolSubst("unisparse-opt", unresolved="fatal"),
    ],
    [config.embedding_tools_dir, config.unisparse_tools_dir, config.llvm_tools_dir],
)
