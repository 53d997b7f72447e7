// RUN: unisparse-opt %s --convert-unisparse-to-linalg="gpu-kernels" | FileCheck %s
// RUN: unisparse-opt %s --convert-unisparse-to-linalg="gpu-kernels gpu-refine-kernels=false" | FileCheck %s --check-prefix=LOOPS

// With gpu-kernels, a refinement the GPU refinement kernels take (bf16 or
// f16 q and k, static heads, a head dimension that is a multiple of 16,
// width at most 8) stays an op for convert-unisparse-to-gpu; f32 q and k, a
// head dimension of 72 and width 9 take the loop lowering (linalg and scf),
// as does every refinement with gpu-refine-kernels=false.
// CHECK-LABEL: func.func @bf16
// CHECK: unisparse.slash_refine
// CHECK-NOT: linalg.generic
// LOOPS-LABEL: func.func @bf16
// LOOPS-NOT: unisparse.slash_refine
// LOOPS: linalg.generic
// LOOPS: scf.forall
func.func @bf16(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %s: tensor<1x4x?x?xf32>,
                %r0: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64}
      ins(%q, %k, %s : tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x4x?x?xf32>)
      outs(%r0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// CHECK-LABEL: func.func @f32
// CHECK-NOT: unisparse.slash_refine
// CHECK: linalg.generic
// CHECK: scf.forall
func.func @f32(%q: tensor<1x4x?x64xf32>, %k: tensor<1x2x?x64xf32>, %s: tensor<1x4x?x?xf32>,
               %r0: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64}
      ins(%q, %k, %s : tensor<1x4x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x4x?x?xf32>)
      outs(%r0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// CHECK-LABEL: func.func @head_dim_72
// CHECK-NOT: unisparse.slash_refine
// CHECK: linalg.generic
// CHECK: scf.forall
func.func @head_dim_72(%q: tensor<1x4x?x72xf16>, %k: tensor<1x2x?x72xf16>, %s: tensor<1x4x?x?xf32>,
                       %r0: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64}
      ins(%q, %k, %s : tensor<1x4x?x72xf16>, tensor<1x2x?x72xf16>, tensor<1x4x?x?xf32>)
      outs(%r0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// CHECK-LABEL: func.func @width_8
// CHECK: unisparse.slash_refine
// CHECK-NOT: linalg.generic
func.func @width_8(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %s: tensor<1x4x?x?xf32>,
                   %r0: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64, width = 8 : i64}
      ins(%q, %k, %s : tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x4x?x?xf32>)
      outs(%r0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// CHECK-LABEL: func.func @width_9
// CHECK-NOT: unisparse.slash_refine
// CHECK: linalg.generic
// CHECK: scf.forall
func.func @width_9(%q: tensor<1x4x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %s: tensor<1x4x?x?xf32>,
                   %r0: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64, width = 9 : i64}
      ins(%q, %k, %s : tensor<1x4x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x4x?x?xf32>)
      outs(%r0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}
