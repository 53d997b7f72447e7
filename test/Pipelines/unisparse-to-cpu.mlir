// RUN: unisparse-opt %s --unisparse-to-cpu | FileCheck %s
// The output holds only upstream dialects: stock mlir-translate accepts it.
// RUN: unisparse-opt %s --unisparse-to-cpu | mlir-translate --mlir-to-llvmir | FileCheck %s --check-prefix=LLVMIR
// The pipeline is registered with its options.
// RUN: unisparse-opt %s --pass-pipeline="builtin.module(unisparse-to-cpu{decompose=true deallocate=false})" | FileCheck %s --check-prefix=NODEALLOC

// CHECK-LABEL: llvm.func private @unisparse_rt_block_sparse_attention_f32
// CHECK-LABEL: llvm.func @attention
// The estimation runs as loops in the module (exp as the polynomial
// approximation, no libm call); attention is the runtime call.
// CHECK-NOT: llvm.intr.exp
// CHECK: llvm.intr.floor
// CHECK-NOT: llvm.intr.exp
// CHECK: llvm.call @unisparse_rt_block_sparse_attention_f32
// CHECK: llvm.call @free
// CHECK-LABEL: llvm.func @_mlir_ciface_attention
// CHECK-NOT: unisparse.
// CHECK-NOT: linalg.
// CHECK-NOT: tensor.
// CHECK-NOT: memref.
// CHECK-NOT: scf.

// LLVMIR: declare {{.*}}i32 @_mlir_ciface_unisparse_rt_block_sparse_attention_f32(ptr, ptr, ptr, ptr, ptr, ptr, ptr, i64, i32, float)
// LLVMIR: define void @_mlir_ciface_attention(ptr

// NODEALLOC-LABEL: llvm.func @attention
// NODEALLOC-NOT: llvm.call @free
// NODEALLOC: llvm.call @unisparse_rt_block_sparse_attention_f32
// NODEALLOC-NOT: llvm.call @free
// NODEALLOC: llvm.return

func.func @attention(%q: memref<?x4x?x32xf32>, %k: memref<?x2x?x32xf32>, %v: memref<?x2x?x32xf32>,
                     %o: memref<?x4x?x32xf32>, %l: memref<?x4x?xf32>) attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<?x4x?x32xf32> to tensor<?x4x?x32xf32>
  %kt = bufferization.to_tensor %k restrict : memref<?x2x?x32xf32> to tensor<?x2x?x32xf32>
  %vt = bufferization.to_tensor %v restrict : memref<?x2x?x32xf32> to tensor<?x2x?x32xf32>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x4x?x32xf32> to tensor<?x4x?x32xf32>
  %lt = bufferization.to_tensor %l restrict writable : memref<?x4x?xf32> to tensor<?x4x?xf32>
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, c_q = 16, c_k = 16, tau = 0.9, estimator = mean, query_reduce = sum, refine = none>}
      ins(%qt, %kt, %vt : tensor<?x4x?x32xf32>, tensor<?x2x?x32xf32>, tensor<?x2x?x32xf32>)
      outs(%ot, %lt : tensor<?x4x?x32xf32>, tensor<?x4x?xf32>) -> tensor<?x4x?x32xf32>, tensor<?x4x?xf32>
  bufferization.materialize_in_destination %r#0 in restrict writable %o : (tensor<?x4x?x32xf32>, memref<?x4x?x32xf32>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %l : (tensor<?x4x?xf32>, memref<?x4x?xf32>) -> ()
  return
}
