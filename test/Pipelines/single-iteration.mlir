// Static shapes whose layout scf.forall has one iteration (B = 1, one head
// group, N <= block). Canonicalization folds such a forall; its results must
// keep their order (counts, indices), or block_sparse_attention receives the
// indices as counts ("operand 'counts' must have rank 3").
// RUN: split-file %s %t
// RUN: cat %t/f32.mlir %t/bf16.mlir | unisparse-opt --unisparse-to-cpu | FileCheck %s --check-prefix=CPU
// RUN: unisparse-opt %t/bf16.mlir --unisparse-to-nvptx="format=isa" | FileCheck %s --check-prefix=GPU
// The stage after decomposition and lowering to linalg, before bufferization.
// RUN: cat %t/f32.mlir %t/bf16.mlir | unisparse-opt --unisparse-decompose --convert-unisparse-to-linalg --canonicalize | FileCheck %s --check-prefix=TENSOR

// CPU-LABEL: llvm.func @single_f32
// CPU: llvm.call @unisparse_rt_block_sparse_attention_f32
// CPU-LABEL: llvm.func @single_bf16
// CPU: llvm.call @unisparse_rt_block_sparse_attention_bf16
// GPU-LABEL: llvm.func @single_bf16
// GPU: llvm.call @unisparse_rt_block_sparse_attention_cuda_bf16

// TENSOR-LABEL: func.func @single_f32
// TENSOR: unisparse.block_sparse_attention {{.*}} : tensor<1x1x100x64xf32>, tensor<1x1x100x64xf32>, tensor<1x1x100x64xf32>, tensor<1x1x1xi32>, tensor<1x1x1x1xi32>)
// TENSOR-LABEL: func.func @single_bf16
// TENSOR: unisparse.block_sparse_attention {{.*}} : tensor<1x4x128x64xbf16>, tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>, tensor<1x1x1xi32>, tensor<1x1x1x1xi32>)

//--- f32.mlir
func.func @single_f32(%q: tensor<1x1x100x64xf32>, %k: tensor<1x1x100x64xf32>, %v: tensor<1x1x100x64xf32>)
    -> (tensor<1x1x100x64xf32>, tensor<1x1x100xf32>) {
  %o0 = tensor.empty() : tensor<1x1x100x64xf32>
  %l0 = tensor.empty() : tensor<1x1x100xf32>
  %o, %lse = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}
      ins(%q, %k, %v : tensor<1x1x100x64xf32>, tensor<1x1x100x64xf32>, tensor<1x1x100x64xf32>)
      outs(%o0, %l0 : tensor<1x1x100x64xf32>, tensor<1x1x100xf32>) -> tensor<1x1x100x64xf32>, tensor<1x1x100xf32>
  return %o, %lse : tensor<1x1x100x64xf32>, tensor<1x1x100xf32>
}

//--- bf16.mlir
func.func @single_bf16(%q: tensor<1x4x128x64xbf16>, %k: tensor<1x1x128x64xbf16>, %v: tensor<1x1x128x64xbf16>)
    -> (tensor<1x4x128x64xbf16>, tensor<1x4x128xf32>) {
  %o0 = tensor.empty() : tensor<1x4x128x64xbf16>
  %l0 = tensor.empty() : tensor<1x4x128xf32>
  %o, %lse = unisparse.attention {config = #unisparse.config<c_h = 4, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}
      ins(%q, %k, %v : tensor<1x4x128x64xbf16>, tensor<1x1x128x64xbf16>, tensor<1x1x128x64xbf16>)
      outs(%o0, %l0 : tensor<1x4x128x64xbf16>, tensor<1x4x128xf32>) -> tensor<1x4x128x64xbf16>, tensor<1x4x128xf32>
  return %o, %lse : tensor<1x4x128x64xbf16>, tensor<1x4x128xf32>
}
