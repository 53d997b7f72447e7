// The outlier estimator (outlier composites, spread-corrected scores) lowers
// to host code for the CPU pipeline (numbers: test/Integration/CPU/attention.py).
// For the GPU it lowers through the structured path (its composites, both
// softmaxes and the spread correction as loops mapped to GPU kernels; the
// selection and the attention are the project's kernels).
// RUN: unisparse-opt %s --unisparse-to-nvptx | FileCheck %s --check-prefix=GPU
// RUN: unisparse-opt %s --unisparse-to-cpu | FileCheck %s --check-prefix=CPU

// GPU-LABEL: llvm.func @attention(
// GPU-NOT: unisparse.
// GPU-NOT: linalg.
// GPU: gpu.launch_func {{.+}} @attention_kernel{{(_[0-9]+)?}}::
// GPU: gpu.launch_func {{.+}} @unisparse_block_select_0_module::
// GPU: llvm.call @unisparse_rt_block_sparse_attention_cuda_bf16(
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
  %r:2 = unisparse.attention {config = #unisparse.config<c_k = 32, tau = 0.995,
                                                        estimator = outlier, query_reduce = max>}
      ins(%qt, %kt, %vt : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
      outs(%ot, %lt : tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>) -> tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>
  bufferization.materialize_in_destination %r#0 in restrict writable %o : (tensor<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %l : (tensor<?x8x?xf32>, memref<?x8x?xf32>) -> ()
  return
}
