# -*- Python -*-
import os
import shutil

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "UNISPARSE"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test", ".py"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs", "conftest.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.unisparse_obj_root, "test")

# pytest files under test/python are run by pytest, not lit; test/wheel by
# scripts/test.sh inside the installed wheel's venv.
config.excludes.extend(["python", "wheel"])

config.environment["FILECHECK_OPTS"] = "-enable-var-scope --allow-unused-prefixes=false"

llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

config.substitutions.append(("%PYTHON", config.python_executable))
config.substitutions.append(("%unisparse_src", config.unisparse_src_root))
config.substitutions.append(("%unisparse_lib", config.unisparse_lib_dir))
config.substitutions.append(("%unisparse_obj", config.unisparse_obj_root))
config.substitutions.append(("%unisparse_version", config.unisparse_version))
config.substitutions.append(("%runtime_lib", os.path.join(config.unisparse_lib_dir, "libunisparse_runtime.so")))
config.environment["PYTHONPATH"] = os.path.join(config.unisparse_src_root, "python")
config.environment["UNISPARSE_BUILD_DIR"] = config.unisparse_obj_root

tools = [
    ToolSubst("unisparse-opt", unresolved="fatal"),
    ToolSubst("unisparse-compile", unresolved="fatal"),
    ToolSubst("unisparse-capi-test", unresolved="fatal"),
    ToolSubst("unisparse_runtime_tests", unresolved="fatal"),
    "mlir-opt",
    "mlir-translate",
    "llc",
    "llvm-nm",
    "llvm-readelf",
]
llvm_config.add_tool_substitutions(tools, [config.unisparse_tools_dir, config.llvm_tools_dir])

# ptxas (CUDA toolkit) turns the NVPTX pipeline's PTX into cubins.
# gpu-module-to-binary also links libdevice from the toolkit it finds through
# CUDA_HOME (math.exp lowers to __nv_expf).
cuda_home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
cuda_bin = os.path.join(cuda_home, "bin")
if os.path.isdir(cuda_bin):
    llvm_config.with_environment("PATH", cuda_bin, append_path=True)
    config.environment["CUDA_HOME"] = cuda_home
if shutil.which("ptxas") or os.path.exists(os.path.join(cuda_bin, "ptxas")):
    config.available_features.add("ptxas")

# GPU integration tests need a CUDA device.
if shutil.which("nvidia-smi") and os.system("nvidia-smi -L >/dev/null 2>&1") == 0:
    config.available_features.add("cuda-device")
