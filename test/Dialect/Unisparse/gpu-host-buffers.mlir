// RUN: unisparse-opt %s --unisparse-gpu-host-buffers | FileCheck %s

// Host-side buffers of GPU code move to device memory; buffers inside a
// kernel body are left alone.
// CHECK-LABEL: func.func @host
// CHECK-SAME: (%[[N:[^:]+]]: index, %[[SRC:[^:]+]]: memref<?xf32>)
// CHECK: %[[A:.+]] = gpu.alloc  (%[[N]]) : memref<?xf32>
// CHECK: gpu.memcpy  %[[A]], %[[SRC]] : memref<?xf32>, memref<?xf32>
// CHECK: gpu.launch
// CHECK: memref.alloca
// CHECK: gpu.terminator
// CHECK: gpu.dealloc  %[[A]] : memref<?xf32>
// CHECK-NOT: memref.alloc(
// CHECK-NOT: memref.dealloc
// CHECK-NOT: memref.copy
func.func @host(%n: index, %src: memref<?xf32>) {
  %c1 = arith.constant 1 : index
  %a = memref.alloc(%n) : memref<?xf32>
  memref.copy %src, %a : memref<?xf32> to memref<?xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%x = %c1, %y = %c1, %z = %c1) threads(%tx, %ty, %tz) in (%u = %c1, %v = %c1, %w = %c1) {
    %t = memref.alloca() : memref<4xf32>
    gpu.terminator
  }
  memref.dealloc %a : memref<?xf32>
  return
}
