// RUN: unisparse-opt %s --unisparse-gpu-host-buffers -split-input-file -verify-diagnostics

// gpu.memcpy lowers to a flat copy between the two aligned pointers, so a
// host copy into a strided view is refused, not copied to the wrong
// elements (unisparse-gpu-copy-kernels makes it a kernel first).
func.func @strided_target(%t: memref<4x16xi64>, %src: memref<4x1xi64>) {
  %col = memref.subview %t[0, 3] [4, 1] [1, 1] : memref<4x16xi64> to memref<4x1xi64, strided<[16, 1], offset: 3>>
  // expected-error @below {{'memref.copy' op copies between 'memref<4x1xi64>' and 'memref<4x1xi64, strided<[16, 1], offset: 3>>': gpu.memcpy lowers to a flat copy that ignores offsets and strides; run unisparse-gpu-copy-kernels before the loops are mapped}}
  memref.copy %src, %col : memref<4x1xi64> to memref<4x1xi64, strided<[16, 1], offset: 3>>
  return
}

// -----

// The same for a source with an offset.
func.func @offset_source(%t: memref<8xf32>, %dst: memref<4xf32>) {
  %hi = memref.subview %t[4] [4] [1] : memref<8xf32> to memref<4xf32, strided<[1], offset: 4>>
  // expected-error @below {{'memref.copy' op copies between}}
  memref.copy %hi, %dst : memref<4xf32, strided<[1], offset: 4>> to memref<4xf32>
  return
}

// -----

// An unranked copy has no layout to trust: refused too (and
// unisparse-gpu-copy-kernels leaves it alone: linalg.copy takes no
// unranked memref).
func.func @unranked(%a: memref<*xf32>, %b: memref<*xf32>) {
  // expected-error @below {{'memref.copy' op copies between 'memref<*xf32>' and 'memref<*xf32>'}}
  memref.copy %a, %b : memref<*xf32> to memref<*xf32>
  return
}
