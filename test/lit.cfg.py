# -*- Python -*-
import os
import shutil

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "UNISPARSE"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".py"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs",
                   "conftest.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.unisparse_obj_root, "test")

# pytest files under test/python are run by pytest, not lit.
config.excludes.append("python")

config.environment["FILECHECK_OPTS"] = "-enable-var-scope --allow-unused-prefixes=false"

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

config.substitutions.append(("%PYTHON", config.python_executable))
config.substitutions.append(("%unisparse_src", config.unisparse_src_root))
config.substitutions.append(("%unisparse_lib", config.unisparse_lib_dir))
config.substitutions.append(
    ("%runtime_lib", os.path.join(config.unisparse_lib_dir, "libunisparse_runtime.so")))
config.environment["PYTHONPATH"] = os.path.join(config.unisparse_src_root, "python")
config.environment["UNISPARSE_BUILD_DIR"] = config.unisparse_obj_root

tools = [
    ToolSubst("unisparse-opt", unresolved="fatal"),
    ToolSubst("unisparse-capi-test", unresolved="fatal"),
    ToolSubst("unisparse_runtime_tests", unresolved="fatal"),
    "mlir-translate",
    "llc",
]
llvm_config.add_tool_substitutions(
    tools, [config.unisparse_tools_dir, config.llvm_tools_dir])

# GPU integration tests need a CUDA device.
if shutil.which("nvidia-smi") and os.system("nvidia-smi -L >/dev/null 2>&1") == 0:
    config.available_features.add("cuda-device")
