# The GPU checks of scripts/gpu/check.py (layouts vs the CPU path, outputs vs
# torch SDPA and FlexAttention, CUDA-graph capture), on libraries compiled
# here with unisparse-compile. Unsupported where no CUDA device is present.
# RUN: rm -rf %t && mkdir -p %t
# RUN: %PYTHON %unisparse_src/scripts/gpu/compile_all.py --only check --out %t --build %unisparse_obj
# RUN: env UNISPARSE_AOT_DIR=%t UNISPARSE_CUDA_RUNTIME=%runtime_lib \
# RUN:   %PYTHON %unisparse_src/scripts/gpu/check.py --quick | FileCheck %s
# CHECK-NOT: FAIL
# CHECK: {{^[1-9][0-9]* passed, 0 failed$}}
