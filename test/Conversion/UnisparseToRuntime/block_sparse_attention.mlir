// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-runtime -verify-diagnostics | FileCheck %s

// The buffer form becomes a call of the runtime, declared once per element
// type, operands cast to fully dynamic strided memrefs.
// CHECK-LABEL: module
// CHECK: func.func private @unisparse_rt_block_sparse_attention_bf16(memref<?x?x?x?xbf16, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xbf16, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xbf16, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?xi32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?x?xi32, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?x?xbf16, strided<[?, ?, ?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, i64, i32, f32) -> i32 attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @attn
// CHECK-SAME: (%[[Q:[^:]+]]: memref<1x4x?x64xbf16>
// CHECK: %[[QD:.+]] = memref.cast %[[Q]] : memref<1x4x?x64xbf16> to memref<?x?x?x?xbf16, strided<[?, ?, ?, ?], offset: ?>>
// CHECK-DAG: %[[BLOCK:.+]] = arith.constant 128 : i64
// CHECK-DAG: %[[CAUSAL:.+]] = arith.constant 1 : i32
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 0.000000e+00 : f32
// CHECK: %{{.+}} = call @unisparse_rt_block_sparse_attention_bf16(%[[QD]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[BLOCK]], %[[CAUSAL]], %[[SCALE]])
// CHECK-NOT: unisparse.block_sparse_attention
// The second call reuses the declaration.
// CHECK: call @unisparse_rt_block_sparse_attention_bf16
// CHECK-NOT: func.func private @unisparse_rt_block_sparse_attention_bf16
func.func @attn(%q: memref<1x4x?x64xbf16>, %k: memref<1x1x?x64xbf16>, %v: memref<1x1x?x64xbf16>,
                %c: memref<1x4x?xi32>, %i: memref<1x4x?x?xi32>, %o: memref<1x4x?x64xbf16>, %l: memref<1x4x?xf32>) {
  unisparse.block_sparse_attention {block = 128} ins(%q, %k, %v, %c, %i : memref<1x4x?x64xbf16>, memref<1x1x?x64xbf16>, memref<1x1x?x64xbf16>, memref<1x4x?xi32>, memref<1x4x?x?xi32>) outs(%o, %l : memref<1x4x?x64xbf16>, memref<1x4x?xf32>)
  unisparse.block_sparse_attention {block = 128} ins(%q, %k, %v, %c, %i : memref<1x4x?x64xbf16>, memref<1x1x?x64xbf16>, memref<1x1x?x64xbf16>, memref<1x4x?xi32>, memref<1x4x?x?xi32>) outs(%o, %l : memref<1x4x?x64xbf16>, memref<1x4x?xf32>)
  return
}

// -----

// f32, non-causal, explicit scale; strided operands cast as they are.
// CHECK-LABEL: func.func @attn_f32
// CHECK: memref.cast %{{.+}} : memref<2x2x100x32xf32, strided<[12800, 32, 128, 1]>> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
// CHECK-DAG: %[[CAUSAL:.+]] = arith.constant 0 : i32
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 1.250000e-01 : f32
// CHECK: call @unisparse_rt_block_sparse_attention_f32({{.+}}, %[[CAUSAL]], %[[SCALE]])
func.func @attn_f32(%q: memref<2x2x100x32xf32, strided<[12800, 32, 128, 1]>>, %k: memref<2x2x100x32xf32>, %v: memref<2x2x100x32xf32>,
                    %c: memref<2x2x2xi32>, %i: memref<2x2x2x2xi32>, %o: memref<2x2x100x32xf32>, %l: memref<2x2x100xf32>) {
  unisparse.block_sparse_attention {block = 64, causal = false, scale = 0.125} ins(%q, %k, %v, %c, %i : memref<2x2x100x32xf32, strided<[12800, 32, 128, 1]>>, memref<2x2x100x32xf32>, memref<2x2x100x32xf32>, memref<2x2x2xi32>, memref<2x2x2x2xi32>) outs(%o, %l : memref<2x2x100x32xf32>, memref<2x2x100xf32>)
  return
}

// -----

// The tensor form must be bufferized first.
func.func @tensors(%q: tensor<1x2x64x32xf32>, %k: tensor<1x2x64x32xf32>, %c: tensor<1x2x1xi32>, %i: tensor<1x2x1x1xi32>, %l: tensor<1x2x64xf32>) {
  // expected-error @+1 {{failed to legalize operation 'unisparse.block_sparse_attention'}}
  %r:2 = unisparse.block_sparse_attention {block = 64} ins(%q, %k, %k, %c, %i : tensor<1x2x64x32xf32>, tensor<1x2x64x32xf32>, tensor<1x2x64x32xf32>, tensor<1x2x1xi32>, tensor<1x2x1x1xi32>) outs(%q, %l : tensor<1x2x64x32xf32>, tensor<1x2x64xf32>) -> tensor<1x2x64x32xf32>, tensor<1x2x64xf32>
  return
}
