// REQUIRES: ptxas
// The antidiagonal estimators go through the same estimation path as mean
// pooling: their composites (the tokens side by side, queries reversed)
// written as bf16 by the compress kernel, the tensor-core scoring kernel
// (K = s * D: a chunk per slot of each key tile) and the selection kernel
// in sm_90a cubins (and host code for the CPU pipeline). Numbers: test/Integration/CPU/attention.py
// (CPU), scripts/gpu/check.py (GPU against CPU).
// RUN: unisparse-opt %s --unisparse-to-nvptx | FileCheck %s
// RUN: unisparse-opt %s --unisparse-to-nvptx="format=isa" | FileCheck %s --check-prefix=PTX
// RUN: unisparse-opt %s --unisparse-to-nvptx | FileCheck %s --check-prefix=BIN
// RUN: unisparse-opt %s --unisparse-to-nvptx | %PYTHON %S/Inputs/check_cubins.py sm_90a | FileCheck %s --check-prefix=CUBIN
// RUN: unisparse-opt %s --unisparse-to-cpu | FileCheck %s --check-prefix=CPU

// Every kernel of the estimation is one that convert-unisparse-to-gpu
// builds (compress of the queries and of the keys, scoring, selection), in
// sm_90a cubins; no structured-path kernel is left.
// BIN-NOT: gpu.binary @attention
// BIN: gpu.binary @unisparse_compress_0_module  [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">
// BIN: gpu.binary @unisparse_compress_1_module
// BIN: gpu.binary @unisparse_block_score_0_module
// BIN: gpu.binary @unisparse_block_select_0_module
// BIN: gpu.binary @unisparse_block_select_1_module
// BIN-NOT: gpu.binary @attention
// The scoring kernels (format=isa): cp.async of the chunks, ldmatrix of
// the key and query fragments, mma.sync on bf16 composites (the default
// score precision, f16 inputs too), ex2.
// PTX-LABEL: gpu.binary @unisparse_block_score_0_module
// PTX-SAME: cp.async.cg.shared.global
// PTX-SAME: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX-SAME: ex2.approx.ftz.f32
// PTX-LABEL: gpu.binary @unisparse_block_score_1_module
// PTX-SAME: cp.async.cg.shared.global
// PTX-SAME: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX-SAME: ex2.approx.ftz.f32
// CHECK-LABEL: llvm.func @attention(
// CHECK: gpu.launch_func
// CHECK: llvm.call @unisparse_rt_block_sparse_attention_cuda_bf16
// CHECK-LABEL: llvm.func @_mlir_ciface_attention(
// CHECK-NOT: unisparse.
// CHECK-NOT: linalg.
// CUBIN: [[N:[1-9][0-9]*]] cubins, all ELF for sm_90a
// CPU-LABEL: llvm.func @attention(
// CPU: llvm.call @unisparse_rt_block_sparse_attention_bf16(
// CPU-NOT: unisparse.
// CPU-NOT: linalg.

func.func @attention(%q: memref<?x8x?x64xbf16>, %k: memref<?x2x?x64xbf16>, %v: memref<?x2x?x64xbf16>,
                     %o: memref<?x8x?x64xbf16>, %l: memref<?x8x?xf32>) attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<?x8x?x64xbf16> to tensor<?x8x?x64xbf16>
  %kt = bufferization.to_tensor %k restrict : memref<?x2x?x64xbf16> to tensor<?x2x?x64xbf16>
  %vt = bufferization.to_tensor %v restrict : memref<?x2x?x64xbf16> to tensor<?x2x?x64xbf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x8x?x64xbf16> to tensor<?x8x?x64xbf16>
  %lt = bufferization.to_tensor %l restrict writable : memref<?x8x?xf32> to tensor<?x8x?xf32>
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, c_q = 8, c_k = 8, tau = 0.99,
                                                        estimator = antidiag_lse, query_reduce = max, refine = none>}
      ins(%qt, %kt, %vt : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
      outs(%ot, %lt : tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>) -> tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>
  bufferization.materialize_in_destination %r#0 in restrict writable %o : (tensor<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %l : (tensor<?x8x?xf32>, memref<?x8x?xf32>) -> ()
  return
}

// antidiag, stride 16, not causal, f16.
// CHECK-LABEL: llvm.func @attention_antidiag(
// CHECK: gpu.launch_func {{.+}} @unisparse_block_score_1_module::@unisparse_block_score_1
// CHECK: llvm.call @unisparse_rt_block_sparse_attention_cuda_f16
func.func @attention_antidiag(%q: memref<?x8x?x64xf16>, %k: memref<?x2x?x64xf16>, %v: memref<?x2x?x64xf16>,
                              %o: memref<?x8x?x64xf16>, %l: memref<?x8x?xf32>) attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<?x8x?x64xf16> to tensor<?x8x?x64xf16>
  %kt = bufferization.to_tensor %k restrict : memref<?x2x?x64xf16> to tensor<?x2x?x64xf16>
  %vt = bufferization.to_tensor %v restrict : memref<?x2x?x64xf16> to tensor<?x2x?x64xf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x8x?x64xf16> to tensor<?x8x?x64xf16>
  %lt = bufferization.to_tensor %l restrict writable : memref<?x8x?xf32> to tensor<?x8x?xf32>
  %r:2 = unisparse.attention {config = #unisparse.config<block = 128, c_q = 16, c_k = 16, tau = 0.9, causal = false,
                                                        estimator = antidiag, query_reduce = sum, refine = none>}
      ins(%qt, %kt, %vt : tensor<?x8x?x64xf16>, tensor<?x2x?x64xf16>, tensor<?x2x?x64xf16>)
      outs(%ot, %lt : tensor<?x8x?x64xf16>, tensor<?x8x?xf32>) -> tensor<?x8x?x64xf16>, tensor<?x8x?xf32>
  bufferization.materialize_in_destination %r#0 in restrict writable %o : (tensor<?x8x?x64xf16>, memref<?x8x?x64xf16>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %l : (tensor<?x8x?xf32>, memref<?x8x?xf32>) -> ()
  return
}
