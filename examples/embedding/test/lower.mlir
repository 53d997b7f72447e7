// The consumer's opt tool lowers unisparse.attention with the registered
// unisparse-to-cpu pipeline: only upstream dialects remain, and attention is
// a call of the runtime's CPU kernel.
// RUN: embed-opt %s --unisparse-to-cpu | FileCheck %s

// Upstream's passes and pipelines sit next to ours in the same tool.
// RUN: embed-opt --help | FileCheck %s --check-prefix=HELP
// HELP-DAG: --unisparse-to-cpu
// HELP-DAG: --unisparse-to-nvptx
// HELP-DAG: --unisparse-decompose
// HELP-DAG: --convert-unisparse-to-linalg
// HELP-DAG: --sparsifier
// HELP-DAG: --convert-linalg-to-affine-loops

// The version is the package's.
// RUN: embed-opt --version | FileCheck %s --check-prefix=VERSION -DVERSION=%unisparse_version
// RUN: unisparse-opt --version | FileCheck %s --check-prefix=VERSION -DVERSION=%unisparse_version
// VERSION: UniSparse version [[VERSION]]

// CHECK-NOT: unisparse.attention
// CHECK: llvm.func private @unisparse_rt_block_sparse_attention_f32(
// CHECK-LABEL: llvm.func @attn(
// CHECK-NOT: unisparse.
// CHECK: llvm.call @aligned_alloc(
// CHECK: llvm.call @unisparse_rt_block_sparse_attention_f32(
// CHECK-NOT: unisparse.
func.func @attn(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xf32>,
                %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>)
    -> (tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) {
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, c_q = 16, c_k = 16, tau = 0.9>}
      ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>)
      outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>)
      -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return %r#0, %r#1 : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
}
