// RUN: unisparse-opt %s --unisparse-gpu-copy-kernels | FileCheck %s
// RUN: unisparse-opt %s --unisparse-gpu-copy-kernels --unisparse-gpu-host-buffers | FileCheck %s --check-prefix=HOST

// A host copy into a column of a buffer (strides [128, 16, 1], an offset):
// gpu.memcpy would copy it flat to the buffer's first elements, so it
// becomes linalg.copy, which reads and writes through the strides.
// CHECK-LABEL: func.func @column
// CHECK-SAME: (%[[T:[^:]+]]: memref<?x8x16xi64>, %[[SRC:[^:]+]]: memref<?x8x1xi64>, %[[K:[^:]+]]: index)
// CHECK: %[[COL:.+]] = memref.subview %[[T]][0, 0, %[[K]]]
// CHECK: linalg.copy ins(%[[SRC]] : memref<?x8x1xi64>) outs(%[[COL]] : memref<?x8x1xi64, strided<[128, 16, 1], offset: ?>>)
// CHECK-NOT: memref.copy

// The loop path makes it a kernel (test/Pipelines/slash_refine.mlir); no
// gpu.memcpy is made of it.
// HOST-LABEL: func.func @column
// HOST: linalg.copy
// HOST-NOT: gpu.memcpy
func.func @column(%t: memref<?x8x16xi64>, %src: memref<?x8x1xi64>, %k: index) {
  %c0 = arith.constant 0 : index
  %b = memref.dim %t, %c0 : memref<?x8x16xi64>
  %col = memref.subview %t[0, 0, %k] [%b, 8, 1] [1, 1, 1]
      : memref<?x8x16xi64> to memref<?x8x1xi64, strided<[128, 16, 1], offset: ?>>
  memref.copy %src, %col : memref<?x8x1xi64> to memref<?x8x1xi64, strided<[128, 16, 1], offset: ?>>
  return
}

// The middle of padded rows (16 of 46 elements from the 15th): neither
// contiguous nor at the buffer's start; and a contiguous piece that is not
// at its start (gpu.memcpy ignores the offset too): kernels both.
// CHECK-LABEL: func.func @padded
// CHECK: linalg.copy ins(%{{.+}} : memref<?x16xf32>) outs(%{{.+}} : memref<?x16xf32, strided<[46, 1], offset: 15>>)
// CHECK: linalg.copy ins(%{{.+}} : memref<4xf32>) outs(%{{.+}} : memref<4xf32, strided<[1], offset: 4>>)
// CHECK-NOT: memref.copy
func.func @padded(%dst: memref<?x46xf32>, %src: memref<?x16xf32>, %v: memref<8xf32>, %w: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %src, %c0 : memref<?x16xf32>
  %mid = memref.subview %dst[0, 15] [%n, 16] [1, 1] : memref<?x46xf32> to memref<?x16xf32, strided<[46, 1], offset: 15>>
  memref.copy %src, %mid : memref<?x16xf32> to memref<?x16xf32, strided<[46, 1], offset: 15>>
  %hi = memref.subview %v[4] [4] [1] : memref<8xf32> to memref<4xf32, strided<[1], offset: 4>>
  memref.copy %w, %hi : memref<4xf32> to memref<4xf32, strided<[1], offset: 4>>
  return
}

// Copies between identity layouts stay (gpu.memcpy copies them exactly), as
// does any copy inside a kernel.
// CHECK-LABEL: func.func @kept
// CHECK: memref.copy %{{.+}}, %{{.+}} : memref<?xf32> to memref<?xf32>
// CHECK: gpu.launch
// CHECK: memref.copy %{{.+}}, %{{.+}} : memref<4xf32> to memref<4xf32, strided<[1], offset: 4>>
// CHECK-NOT: linalg.copy
// HOST-LABEL: func.func @kept
// HOST: gpu.memcpy  %{{.+}}, %{{.+}} : memref<?xf32>, memref<?xf32>
func.func @kept(%a: memref<?xf32>, %b: memref<?xf32>) {
  %c1 = arith.constant 1 : index
  memref.copy %a, %b : memref<?xf32> to memref<?xf32>
  gpu.launch blocks(%bx, %by, %bz) in (%x = %c1, %y = %c1, %z = %c1) threads(%tx, %ty, %tz) in (%u = %c1, %v = %c1, %w = %c1) {
    %t = memref.alloca() : memref<8xf32>
    %s = memref.alloca() : memref<4xf32>
    %hi = memref.subview %t[4] [4] [1] : memref<8xf32> to memref<4xf32, strided<[1], offset: 4>>
    memref.copy %s, %hi : memref<4xf32> to memref<4xf32, strided<[1], offset: 4>>
    gpu.terminator
  }
  return
}
