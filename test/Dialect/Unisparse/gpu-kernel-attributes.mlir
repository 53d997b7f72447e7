// RUN: unisparse-opt %s --split-input-file --unisparse-gpu-kernel-attributes -verify-diagnostics | FileCheck %s

// The attributes recorded on the module for a kernel land on its outlined
// gpu.func; the record is removed; other kernels are left alone.
// CHECK-LABEL: module attributes {gpu.container_module} {
// CHECK: gpu.func @unisparse_block_score_0() kernel attributes {nvvm.minctasm = 3 : i32}
// CHECK: gpu.func @other() kernel {
module attributes {gpu.container_module,
                   unisparse.kernel_attributes = {unisparse_block_score_0 = {nvvm.minctasm = 3 : i32}}} {
  gpu.module @unisparse_block_score_0_module {
    gpu.func @unisparse_block_score_0() kernel {
      gpu.return
    }
  }
  gpu.module @other_module {
    gpu.func @other() kernel {
      gpu.return
    }
  }
}

// -----

// A record for a kernel that was not outlined is an error, not ignored.
// expected-error @+1 {{unisparse.kernel_attributes: no outlined kernel named 'missing'}}
module attributes {gpu.container_module,
                   unisparse.kernel_attributes = {missing = {nvvm.minctasm = 3 : i32}}} {
}
