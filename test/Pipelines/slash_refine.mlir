// REQUIRES: ptxas
// The slash refinement (unisparse.slash_refine between block_score and
// block_select) on the GPU: five built kernels (convert-unisparse-to-gpu),
// the last rows and the probe rows on tensor cores, between the tensor-core
// scoring of the first pass and the selection kernel; with
// refine-kernels=false the loop lowering through the generic GPU path (its
// structured linalg and scf loops become parallel loops, then kernels), kept
// for debugging and comparison. Numbers: test/python/test_slash_compiled.py
// (CPU against the float64 reference) and scripts/gpu/check.py --only slash
// (GPU).
// RUN: unisparse-opt %s --unisparse-to-nvptx | FileCheck %s
// RUN: unisparse-opt %s --unisparse-to-nvptx | %PYTHON %S/Inputs/check_cubins.py sm_90a | FileCheck %s --check-prefix=CUBIN
// RUN: unisparse-opt %s --unisparse-to-nvptx="format=isa" | FileCheck %s --check-prefix=PTX
// RUN: unisparse-opt %s --unisparse-to-nvptx="refine-kernels=false" | FileCheck %s --check-prefix=LOOPS
// RUN: unisparse-opt %s --unisparse-to-cpu | FileCheck %s --check-prefix=CPU

// The tensor-core scoring of the first pass, the refinement's five kernels
// in order (the probe rows' two variants: 4 warps a CTA where their E rows
// fit a CTA's workgroup memory, else one, chosen on the host), the
// selection kernel, then attention; nothing of the tensor
// level is left, and no host copy (gpu.memcpy lowers to a flat mgpuMemcpy
// that ignores the target's offset and strides).
// CHECK-LABEL: llvm.func @attention(
// CHECK-NOT: mgpuMemcpy
// CHECK: gpu.launch_func {{.+}} @unisparse_block_score_0_module::
// CHECK-NOT: mgpuMemcpy
// CHECK: gpu.launch_func {{.+}} @unisparse_slash_last_rows_0_module::
// CHECK: gpu.launch_func {{.+}} @unisparse_slash_row_stats_0_module::
// CHECK-NOT: unisparse_slash_vertical
// CHECK: gpu.launch_func {{.+}} @unisparse_slash_evidence_0_module::
// CHECK: gpu.launch_func {{.+}} @unisparse_slash_offsets_0_module::
// CHECK: gpu.launch_func {{.+}} @unisparse_slash_probe_0_module::
// CHECK: gpu.launch_func {{.+}} @unisparse_slash_probe_narrow_0_module::
// CHECK-NOT: gpu.launch_func {{.+}} @attention_kernel
// CHECK: gpu.launch_func {{.+}} @unisparse_block_select_0_module::
// CHECK-NOT: mgpuMemcpy
// CHECK: llvm.call @unisparse_rt_block_sparse_attention_cuda_bf16
// CHECK-LABEL: llvm.func @_mlir_ciface_attention(
// CHECK-NOT: unisparse.
// CHECK-NOT: linalg.
// CHECK-NOT: unrealized_conversion_cast
// CUBIN: [[N:[1-9][0-9]*]] cubins, all ELF for sm_90a
// The two tensor-core kernels of the refinement are PTX for sm_90a with
// bf16 mma.sync (the kernels' order in the module follows the launches).
// PTX-LABEL: gpu.binary @unisparse_slash_last_rows_0_module
// PTX-SAME: .target sm_90a
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX-SAME: shfl.sync.bfly
// PTX-LABEL: gpu.binary @unisparse_slash_probe_0_module
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX-SAME: shfl.sync.bfly
// PTX-LABEL: gpu.binary @unisparse_slash_probe_narrow_0_module
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// The loop path: its kernels between the scoring and the selection, the
// offsets' rounds a host loop of launches.
// LOOPS-LABEL: llvm.func @attention(
// LOOPS-NOT: mgpuMemcpy
// LOOPS: gpu.launch_func {{.+}} @unisparse_block_score_0_module::
// LOOPS-NOT: unisparse_slash
// LOOPS: gpu.launch_func {{.+}} @attention_kernel{{(_[0-9]+)?}}::
// LOOPS-NOT: unisparse_slash
// LOOPS: gpu.launch_func {{.+}} @unisparse_block_select_0_module::
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
                                                        refine = slash, last_q = 16, n_offsets = 8, estimator = mean, query_reduce = sum, refine_norm = false>}
      ins(%qt, %kt, %vt : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
      outs(%ot, %lt : tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>) -> tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>
  bufferization.materialize_in_destination %r#0 in restrict writable %o : (tensor<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %l : (tensor<?x8x?xf32>, memref<?x8x?xf32>) -> ()
  return
}
