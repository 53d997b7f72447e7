// The slash refinement (unisparse.slash_refine between block_score and
// block_select) lowers to host code for the CPU pipeline (numbers:
// test/python/test_slash_compiled.py). The GPU pipeline refuses it with the
// reason: its generic GPU path (structured linalg and scf loops mapped to
// parallel loops, then kernels) gave refined scores up to 0.87 of
// themselves away from the CPU path's on the H200, with f32 on both paths
// (docs/GPU.md).
// RUN: not unisparse-opt %s --unisparse-to-nvptx 2>&1 | FileCheck %s --check-prefix=GPU
// RUN: unisparse-opt %s --unisparse-to-cpu | FileCheck %s --check-prefix=CPU

// GPU: error: 'unisparse.slash_refine' op the slash refinement has no GPU lowering known to be correct yet
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
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, c_q = 16, c_k = 8, tau = 0.99,
                                                        refine = slash, last_q = 16, n_offsets = 8>}
      ins(%qt, %kt, %vt : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
      outs(%ot, %lt : tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>) -> tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>
  bufferization.materialize_in_destination %r#0 in restrict writable %o : (tensor<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %l : (tensor<?x8x?xf32>, memref<?x8x?xf32>) -> ()
  return
}
