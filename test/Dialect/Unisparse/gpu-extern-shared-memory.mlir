// RUN: unisparse-opt %s --unisparse-gpu-extern-shared-memory | FileCheck %s

// A GPU module whose kernel uses dynamic workgroup memory gets an external
// zero-sized array for gpu-to-nvvm to reuse (16-byte aligned, address space
// 3); one that does not is left alone.
// CHECK-LABEL: gpu.module @uses
// CHECK-NEXT: llvm.mlir.global external @__unisparse_dynamic_smem() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
// CHECK-LABEL: gpu.module @none
// CHECK-NOT: llvm.mlir.global
module attributes {gpu.container_module} {
  gpu.module @uses {
    gpu.func @k(%out: memref<?xf32>) kernel {
      %d = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
      gpu.return
    }
  }
  gpu.module @none {
    gpu.func @k(%out: memref<?xf32>) kernel {
      gpu.return
    }
  }
}
