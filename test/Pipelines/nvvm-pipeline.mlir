// unisparse-to-nvptx ends with MLIR's gpu-lower-to-nvvm-pipeline (the same
// chip, features, format and optimization level), its gpu-module-to-binary
// replaced by unisparse-gpu-module-to-binary (the modules serialized in
// parallel): the two dumps agree pass for pass and option for option.
// RUN: mlir-opt %s --pass-pipeline='builtin.module(gpu-lower-to-nvvm-pipeline{cubin-chip=sm_90a cubin-features=+ptx80 cubin-format=bin opt-level=3})' --dump-pass-pipeline -o /dev/null 2> %t.upstream
// RUN: unisparse-opt %s --unisparse-to-nvptx --dump-pass-pipeline -o /dev/null 2> %t.ours
// RUN: %PYTHON %S/Inputs/nvvm_tail.py %t.upstream %t.ours | FileCheck %s
// RUN: mlir-opt %s --pass-pipeline='builtin.module(gpu-lower-to-nvvm-pipeline{cubin-chip=sm_80 cubin-features=+ptx75 cubin-format=isa opt-level=3})' --dump-pass-pipeline -o /dev/null 2> %t.upstream80
// RUN: unisparse-opt %s --pass-pipeline='builtin.module(unisparse-to-nvptx{chip=sm_80 features=+ptx75 format=isa})' --dump-pass-pipeline -o /dev/null 2> %t.ours80
// RUN: %PYTHON %S/Inputs/nvvm_tail.py %t.upstream80 %t.ours80 | FileCheck %s
// CHECK: agree: 31 lines
module {
}
