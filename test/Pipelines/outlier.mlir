// The outlier estimator (outlier composites, spread-corrected scores) lowers
// to host code for the CPU pipeline (numbers: test/Integration/CPU/attention.py).
// For the GPU its composites are the outlier compress kernels'
// (OutlierCompressKernel.cpp: per compress the center's two stages, with
// hot outliers the probe's two, then a warp a composite, writing bf16),
// and its scoring is the outlier tensor-core kernel (OutlierScoreKernel.cpp:
// key norms, query spread, then two passes on mma.sync and the scores from
// a scratch slot per CTA); the selection and the attention are the
// project's kernels: no structured (linalg) kernel is left.
// score-precision=f32 keeps the structured path of the scoring (as loops),
// for debugging; the compress kernels write f32 then.
// REQUIRES: ptxas
// RUN: unisparse-opt %s --unisparse-to-nvptx | FileCheck %s --check-prefix=GPU
// RUN: unisparse-opt %s --unisparse-to-nvptx="format=isa" | FileCheck %s --check-prefix=PTX
// RUN: unisparse-opt %s --unisparse-to-nvptx="score-precision=f32" | FileCheck %s --check-prefix=STRUCT
// RUN: unisparse-opt %s --unisparse-to-cpu | FileCheck %s --check-prefix=CPU

// GPU-LABEL: llvm.func @attention(
// GPU-NOT: unisparse.
// GPU-NOT: linalg.
// GPU-NOT: @attention_kernel
// The query composites (the center), then the keys' (their center; the
// probe is the queries' center).
// GPU: gpu.launch_func {{.+}} @unisparse_compress_outlier_partial_sums_0_module::
// GPU: gpu.launch_func {{.+}} @unisparse_compress_outlier_center_0_module::
// GPU: gpu.launch_func {{.+}} @unisparse_compress_outlier_0_module::
// GPU: gpu.launch_func {{.+}} @unisparse_compress_outlier_partial_sums_1_module::
// GPU: gpu.launch_func {{.+}} @unisparse_compress_outlier_center_1_module::
// GPU-NOT: @unisparse_compress_outlier_partial_sums
// GPU: gpu.launch_func {{.+}} @unisparse_compress_outlier_1_module::
// GPU-NOT: @attention_kernel
// GPU: gpu.launch_func {{.+}} @unisparse_outlier_key_norms_0_module::
// GPU: gpu.launch_func {{.+}} @unisparse_outlier_query_spread_0_module::
// GPU: gpu.launch_func {{.+}} @unisparse_outlier_score_0_module::
// GPU: gpu.launch_func {{.+}} @unisparse_block_select_0_module::
// GPU: llvm.call @unisparse_rt_block_sparse_attention_cuda_bf16(
// The composite kernel's PTX holds one 32-bit load of a lane's 2 bf16
// coordinates (D 64; the aligned branch) widened by a shift and a mask, the
// fused products of the scores and heats, their reduce-scatter and the
// picks' shuffles, the rest's mean and variance divided (div.rn), the slots
// rounded to bf16. The center's first stage sums its rows' tokens, then the
// rows' sums through workgroup memory after a barrier.
// PTX-LABEL: gpu.binary @unisparse_compress_outlier_partial_sums_0_module
// PTX-SAME: ld.global.v4.b32
// PTX-SAME: st.shared.v4.b32
// PTX-SAME: bar.sync
// PTX-SAME: ld.shared.b32
// PTX-LABEL: gpu.binary @unisparse_compress_outlier_1_module
// PTX-SAME: ld.global.b32
// PTX-SAME: shl.b32 {{[^;]+}}, 16;
// PTX-SAME: and.b32 {{[^;]+}}, -65536;
// PTX-SAME: fma.rn.f32
// PTX-SAME: shfl.sync.bfly.b32
// PTX-SAME: div.rn.f32
// PTX-SAME: cvt.rn.bf16x2.f32
// The scoring kernel's PTX holds cp.async of the key tiles, ldmatrix of the key
// fragments, mma.sync on the bf16 composites, ex2, quad shuffles.
// PTX-LABEL: gpu.binary @unisparse_outlier_score_0_module
// PTX-SAME: cp.async.cg.shared.global
// PTX-SAME: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX-SAME: ex2.approx.ftz.f32
// PTX-SAME: shfl.sync.bfly.b32
// With f32 scoring the outlier kernels are not built.
// STRUCT-LABEL: llvm.func @attention(
// STRUCT-NOT: unisparse_outlier
// STRUCT: gpu.launch_func {{.+}} @unisparse_block_select_0_module::
// STRUCT-NOT: unisparse_outlier
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
                                                        estimator = outlier, query_reduce = max, refine = none>}
      ins(%qt, %kt, %vt : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
      outs(%ot, %lt : tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>) -> tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>
  bufferization.materialize_in_destination %r#0 in restrict writable %o : (tensor<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %l : (tensor<?x8x?xf32>, memref<?x8x?xf32>) -> ()
  return
}
