// RUN: unisparse-opt %s --unisparse-gpu-copy-kernels | FileCheck %s

// linalg.copy takes no unranked memref: the copy stays as it is (and
// unisparse-gpu-host-buffers refuses it, gpu-host-buffers-strided.mlir).
// CHECK-LABEL: func.func @unranked
// CHECK: memref.copy %{{.+}}, %{{.+}} : memref<*xf32> to memref<*xf32>
// CHECK-NOT: linalg.copy
func.func @unranked(%a: memref<*xf32>, %b: memref<*xf32>) {
  memref.copy %a, %b : memref<*xf32> to memref<*xf32>
  return
}
