// RUN: unisparse-opt %s --split-input-file --unisparse-narrow-composites --canonicalize | FileCheck %s
// RUN: unisparse-opt %s --split-input-file --unisparse-narrow-composites="type=f16" --canonicalize | FileCheck %s --check-prefix=F16

// The compress ops feeding a tensor-core-scorable block_score write bf16;
// the f32 ones are gone.
// CHECK-LABEL: func.func @mean
// CHECK-NOT: tensor<1x8x?x128xf32>
// CHECK: %[[QC:.+]] = unisparse.compress {seq_factor = 16 : i64} ins(%{{.+}} : tensor<1x8x?x128xbf16>) outs(%{{.+}} : tensor<1x8x?x128xbf16>) -> tensor<1x8x?x128xbf16>
// CHECK: %[[KC:.+]] = unisparse.compress {kv_group = 4 : i64, seq_factor = 8 : i64} ins(%{{.+}} : tensor<1x2x?x128xbf16>) outs(%{{.+}} : tensor<1x8x?x128xbf16>) -> tensor<1x8x?x128xbf16>
// CHECK: unisparse.block_score {block = 128 : i64, c_k = 8 : i64, c_q = 16 : i64} ins(%[[QC]], %[[KC]] : tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>)
// F16-LABEL: func.func @mean
// F16: unisparse.block_score {{.+}} ins(%{{.+}}, %{{.+}} : tensor<1x8x?x128xf16>, tensor<1x8x?x128xf16>)
func.func @mean(%q: tensor<1x8x?x128xbf16>, %k: tensor<1x2x?x128xbf16>, %s0: tensor<1x8x?x?xf32>) -> tensor<1x8x?x?xf32> {
  %c2 = arith.constant 2 : index
  %n = tensor.dim %q, %c2 : tensor<1x8x?x128xbf16>
  %tq = arith.ceildivui %n, %c2 : index
  %e0 = tensor.empty(%n) : tensor<1x8x?x128xf32>
  %e1 = tensor.empty(%n) : tensor<1x8x?x128xf32>
  %qc = unisparse.compress {seq_factor = 16 : i64} ins(%q : tensor<1x8x?x128xbf16>) outs(%e0 : tensor<1x8x?x128xf32>) -> tensor<1x8x?x128xf32>
  %kc = unisparse.compress {seq_factor = 8 : i64, kv_group = 4 : i64} ins(%k : tensor<1x2x?x128xbf16>) outs(%e1 : tensor<1x8x?x128xf32>) -> tensor<1x8x?x128xf32>
  %s = unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64} ins(%qc, %kc : tensor<1x8x?x128xf32>, tensor<1x8x?x128xf32>) outs(%s0 : tensor<1x8x?x?xf32>) -> tensor<1x8x?x?xf32>
  return %s : tensor<1x8x?x?xf32>
}

// -----

// Composites from elsewhere are truncated elementwise.
// CHECK-LABEL: func.func @args
// CHECK: %[[T:.+]] = linalg.generic {{.+}} ins(%{{.+}} : tensor<1x4x?x64xf32>) outs(%{{.+}} : tensor<1x4x?x64xbf16>)
// CHECK: arith.truncf %{{.+}} : f32 to bf16
// CHECK: unisparse.block_score {{.+}} ins(%{{.+}}, %{{.+}} : tensor<1x4x?x64xbf16>, tensor<1x4x?x64xbf16>)
func.func @args(%qc: tensor<1x4x?x64xf32>, %kc: tensor<1x4x?x64xf32>, %s0: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %s = unisparse.block_score {block = 64 : i64, c_q = 16 : i64, c_k = 16 : i64} ins(%qc, %kc : tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32>) outs(%s0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %s : tensor<1x4x?x?xf32>
}

// -----

// The antidiagonal estimators' composites (the tokens side by side,
// queries reversed) are narrowed the same way: their compresses write bf16.
// CHECK-LABEL: func.func @antidiag
// CHECK-NOT: tensor<1x8x?x8x64xf32>
// CHECK: %[[QC:.+]] = unisparse.compress {pooling = #unisparse.pooling<concat_reversed>, seq_factor = 8 : i64} ins(%{{.+}} : tensor<1x8x?x64xbf16>) outs(%{{.+}} : tensor<1x8x?x8x64xbf16>) -> tensor<1x8x?x8x64xbf16>
// CHECK: %[[KC:.+]] = unisparse.compress {kv_group = 4 : i64, pooling = #unisparse.pooling<concat>, seq_factor = 8 : i64} ins(%{{.+}} : tensor<1x2x?x64xbf16>) outs(%{{.+}} : tensor<1x8x?x8x64xbf16>) -> tensor<1x8x?x8x64xbf16>
// CHECK: unisparse.block_score {{.+}} ins(%[[QC]], %[[KC]] : tensor<1x8x?x8x64xbf16>, tensor<1x8x?x8x64xbf16>)
func.func @antidiag(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %s0: tensor<1x8x?x?xf32>) -> tensor<1x8x?x?xf32> {
  %c2 = arith.constant 2 : index
  %n = tensor.dim %q, %c2 : tensor<1x8x?x64xbf16>
  %e0 = tensor.empty(%n) : tensor<1x8x?x8x64xf32>
  %e1 = tensor.empty(%n) : tensor<1x8x?x8x64xf32>
  %qc = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<concat_reversed>} ins(%q : tensor<1x8x?x64xbf16>) outs(%e0 : tensor<1x8x?x8x64xf32>) -> tensor<1x8x?x8x64xf32>
  %kc = unisparse.compress {seq_factor = 8, kv_group = 4, pooling = #unisparse.pooling<concat>} ins(%k : tensor<1x2x?x64xbf16>) outs(%e1 : tensor<1x8x?x8x64xf32>) -> tensor<1x8x?x8x64xf32>
  %s = unisparse.block_score {block = 64 : i64, c_q = 8 : i64, c_k = 8 : i64, estimator = #unisparse.estimator<antidiag_lse>} ins(%qc, %kc : tensor<1x8x?x8x64xf32>, tensor<1x8x?x8x64xf32>) outs(%s0 : tensor<1x8x?x?xf32>) -> tensor<1x8x?x?xf32>
  return %s : tensor<1x8x?x?xf32>
}

// -----

// What the kernel does not take keeps f32 composites: a head dim above
// 128, key blocks larger than a key tile, an antidiagonal block of more
// query composites (block / c_q = 128) than the kernel's 64-row CTA tile.
// CHECK-LABEL: func.func @unsupported
// CHECK-NOT: bf16
// CHECK: return
func.func @unsupported(%a: tensor<1x4x?x1x64xf32>, %c: tensor<1x4x?x256xf32>,
                       %d: tensor<1x4x?x64xf32>, %s0: tensor<1x4x?x?xf32>) -> (tensor<1x4x?x?xf32>, tensor<1x4x?x?xf32>, tensor<1x4x?x?xf32>) {
  %s1 = unisparse.block_score {block = 128 : i64, c_q = 1 : i64, c_k = 1 : i64, estimator = #unisparse.estimator<antidiag>} ins(%a, %a : tensor<1x4x?x1x64xf32>, tensor<1x4x?x1x64xf32>) outs(%s0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  %s2 = unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 16 : i64} ins(%c, %c : tensor<1x4x?x256xf32>, tensor<1x4x?x256xf32>) outs(%s0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  %s3 = unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 1 : i64} ins(%d, %d : tensor<1x4x?x64xf32>, tensor<1x4x?x64xf32>) outs(%s0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %s1, %s2, %s3 : tensor<1x4x?x?xf32>, tensor<1x4x?x?xf32>, tensor<1x4x?x?xf32>
}
