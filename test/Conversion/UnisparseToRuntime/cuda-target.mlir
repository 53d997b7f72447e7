// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-runtime="target=cuda" -verify-diagnostics | FileCheck %s

// target=cuda calls the CUDA entry point on device memrefs.
// CHECK: func.func private @unisparse_rt_block_sparse_attention_cuda_f16({{.+}}) -> i32 attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @attn
// CHECK: call @unisparse_rt_block_sparse_attention_cuda_f16(
func.func @attn(%q: memref<1x4x?x64xf16>, %k: memref<1x1x?x64xf16>, %v: memref<1x1x?x64xf16>,
                %c: memref<1x4x?xi32>, %i: memref<1x4x?x?xi32>, %o: memref<1x4x?x64xf16>, %l: memref<1x4x?xf32>) {
  unisparse.block_sparse_attention {block = 128} ins(%q, %k, %v, %c, %i : memref<1x4x?x64xf16>, memref<1x1x?x64xf16>, memref<1x1x?x64xf16>, memref<1x4x?xi32>, memref<1x4x?x?xi32>) outs(%o, %l : memref<1x4x?x64xf16>, memref<1x4x?xf32>)
  return
}

// -----

// The CUDA kernel takes bf16/f16 only.
func.func @attn_f32(%q: memref<1x4x64x32xf32>, %k: memref<1x4x64x32xf32>, %c: memref<1x4x1xi32>, %i: memref<1x4x1x1xi32>, %l: memref<1x4x64xf32>) {
  // expected-error @+2 {{the CUDA attention kernel takes bf16 or f16, found 'f32'}}
  // expected-error @+1 {{failed to legalize operation 'unisparse.block_sparse_attention'}}
  unisparse.block_sparse_attention {block = 64} ins(%q, %k, %k, %c, %i : memref<1x4x64x32xf32>, memref<1x4x64x32xf32>, memref<1x4x64x32xf32>, memref<1x4x1xi32>, memref<1x4x1x1xi32>) outs(%q, %l : memref<1x4x64x32xf32>, memref<1x4x64xf32>)
  return
}
