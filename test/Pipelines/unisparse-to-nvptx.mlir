// REQUIRES: ptxas
// RUN: unisparse-opt %s --unisparse-to-nvptx | FileCheck %s
// RUN: unisparse-opt %s --unisparse-to-nvptx | FileCheck %s --check-prefix=BIN
// The cubins are real sm_90a ELF objects (ptxas accepted the PTX):
// RUN: unisparse-opt %s --unisparse-to-nvptx | %PYTHON %S/Inputs/check_cubins.py sm_90a | FileCheck %s --check-prefix=CUBIN
// Options reach the NVVM target and the kernels.
// RUN: unisparse-opt %s --pass-pipeline="builtin.module(unisparse-to-nvptx{chip=sm_80 features=+ptx75 threads=256})" | FileCheck %s --check-prefix=SM80
// The PTX of the estimation kernels (format=isa keeps it readable):
// RUN: unisparse-opt %s --unisparse-to-nvptx="format=isa" | FileCheck %s --check-prefix=PTX
// The separate epilogue: the scoring kernel without the per-tile score
// pass, then the memory-bound kernel that forms the scores.
// RUN: unisparse-opt %s --unisparse-to-nvptx="format=isa score-epilogue=separate" | FileCheck %s --check-prefix=SEP
// The query compress kept as its own kernel (the scoring kernel reads
// composites):
// RUN: unisparse-opt %s --unisparse-to-nvptx="score-fuse-query-pooling=false" | FileCheck %s --check-prefix=UNFUSED
// The fused query pooling without the L2 prefetch of each tile's raw
// queries (score-prefetch-queries=false): the pooling's 16-byte loads stay,
// no kernel prefetches.
// RUN: unisparse-opt %s --unisparse-to-nvptx="format=isa score-prefetch-queries=false" | FileCheck %s --check-prefix=NOPF --implicit-check-not=prefetch.global
// NOPF-LABEL: gpu.binary @unisparse_block_score_0_module
// NOPF-SAME: ld.global.v4.b32
// NOPF-SAME: st.shared.v4.b32
// NOPF-SAME: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// The scoring kernel's register budget reaches ptxas (and only that kernel).
// RUN: unisparse-opt %s --unisparse-to-nvptx="format=isa score-warp-rows=16 score-min-ctas-per-sm=3" | FileCheck %s --check-prefix=MINCTAS
// MINCTAS-LABEL: gpu.binary @unisparse_compress_0_module
// MINCTAS-NOT: minnctapersm
// MINCTAS-LABEL: gpu.binary @unisparse_block_score_0_module
// MINCTAS-SAME: .minnctapersm 3
// MINCTAS-LABEL: gpu.binary @unisparse_block_select_0_module
// MINCTAS-NOT: minnctapersm

// The estimation is three built kernels in gpu.binary ops holding sm_90a
// cubins (the keys' pooling, tensor-core scoring that pools its queries
// itself, selection); attention is a call of the runtime's CUDA kernel; the
// host side calls mgpu* functions.
// BIN-DAG: gpu.binary @unisparse_compress_0_module  [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">, properties = {{.+}}, bin = "
// BIN-DAG: gpu.binary @unisparse_block_score_0_module  [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">, properties = {{.+}}, bin = "
// BIN-DAG: gpu.binary @unisparse_block_select_0_module  [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">, properties = {{.+}}, bin = "
// BIN-DAG: llvm.func private @unisparse_rt_block_sparse_attention_cuda_bf16(
// CHECK-LABEL: llvm.func @attention(
// CHECK: llvm.call @mgpuStreamCreate
// CHECK: llvm.call @mgpuMemAlloc
// CHECK: gpu.launch_func <%{{.+}} : !llvm.ptr> @unisparse_compress_0_module::@unisparse_compress_0 blocks in
// CHECK-NOT: @unisparse_compress_1
// CHECK: gpu.launch_func <%{{.+}} : !llvm.ptr> @unisparse_block_score_0_module::@unisparse_block_score_0 blocks in
// CHECK: gpu.launch_func <%{{.+}} : !llvm.ptr> @unisparse_block_select_0_module::@unisparse_block_select_0 blocks in {{.+}} dynamic_shared_memory_size
// The runtime call comes after the estimation kernels are complete (a no-op
// wait when the host set a current stream: same-stream order suffices).
// CHECK: llvm.call @mgpuStreamSynchronize
// CHECK: llvm.call @unisparse_rt_block_sparse_attention_cuda_bf16
// CHECK: llvm.call @mgpuMemFree
// CHECK-LABEL: llvm.func @_mlir_ciface_attention(
// CHECK-NOT: unisparse.
// CHECK-NOT: linalg.
// CHECK-NOT: scf.

// PTX-LABEL: gpu.binary @unisparse_compress_0_module
// PTX-SAME: ld.global.v4.b32
// PTX-LABEL: gpu.binary @unisparse_block_score_0_module
// The kernels' constants are sunk into them before outlining, not passed
// as parameters (the scoring kernel once had 95: scale, -inf and 0.0 among
// them, and its stage index was a 64-bit division by a parameter).
// PTX-NOT: .param .f32
// PTX-NOT: .param .u32
// PTX-SAME: cp.async.cg.shared.global
// The query tile pooled from the raw queries: the tile's tokens prefetched
// into L2, 16-byte loads, 16-byte stores of the composites into workgroup
// memory, their A fragments by ldmatrix.
// PTX-SAME: prefetch.global.L2
// PTX-SAME: ld.global.v4.b32
// PTX-SAME: st.shared.v4.b32
// PTX-SAME: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// PTX-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// PTX-SAME: ex2.approx.ftz.f32
// PTX-SAME: shfl.sync.bfly.b32
// The selection's dynamic workgroup memory is an extern array (not the
// one-byte symbol LLVM 22 demotes).
// PTX-LABEL: gpu.binary @unisparse_block_select_0_module
// PTX-SAME: .extern .shared .align 16 .b8 __unisparse_dynamic_smem[];
// PTX-SAME: shfl.sync.bfly.b32
// PTX-SAME: ld.shared.v4.b32
// PTX-SAME: vote.sync.ballot.b32

// SEP-LABEL: gpu.binary @unisparse_block_score_0_module
// SEP-SAME: cp.async.cg.shared.global
// SEP-SAME: ldmatrix.sync.aligned.m8n8.x4.shared.b16
// SEP-SAME: mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
// SEP-SAME: ex2.approx.ftz.f32
// SEP-LABEL: gpu.binary @unisparse_block_score_epilogue_0_module
// SEP-SAME: .visible .entry unisparse_block_score_epilogue_0(
// SEP-SAME: ld.global.v4.b32
// SEP-SAME: ex2.approx.ftz.f32
// SEP-NOT: rcp.rn.f32
// SEP-LABEL: gpu.binary @unisparse_block_select_0_module

// CUBIN: [[N:[1-9][0-9]*]] cubins, all ELF for sm_90a

// UNFUSED-LABEL: llvm.func @attention(
// UNFUSED: gpu.launch_func <%{{.+}} : !llvm.ptr> @unisparse_compress_0_module::@unisparse_compress_0 blocks in
// UNFUSED: gpu.launch_func <%{{.+}} : !llvm.ptr> @unisparse_compress_1_module::@unisparse_compress_1 blocks in
// UNFUSED: gpu.launch_func <%{{.+}} : !llvm.ptr> @unisparse_block_score_0_module::@unisparse_block_score_0 blocks in

// SM80: chip = "sm_80", features = "+ptx75"

func.func @attention(%q: memref<?x8x?x64xbf16>, %k: memref<?x2x?x64xbf16>, %v: memref<?x2x?x64xbf16>,
                     %o: memref<?x8x?x64xbf16>, %l: memref<?x8x?xf32>) attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<?x8x?x64xbf16> to tensor<?x8x?x64xbf16>
  %kt = bufferization.to_tensor %k restrict : memref<?x2x?x64xbf16> to tensor<?x2x?x64xbf16>
  %vt = bufferization.to_tensor %v restrict : memref<?x2x?x64xbf16> to tensor<?x2x?x64xbf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x8x?x64xbf16> to tensor<?x8x?x64xbf16>
  %lt = bufferization.to_tensor %l restrict writable : memref<?x8x?xf32> to tensor<?x8x?xf32>
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, c_q = 16, c_k = 16, tau = 0.9, estimator = mean, query_reduce = sum, refine = none>}
      ins(%qt, %kt, %vt : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
      outs(%ot, %lt : tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>) -> tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>
  bufferization.materialize_in_destination %r#0 in restrict writable %o : (tensor<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %l : (tensor<?x8x?xf32>, memref<?x8x?xf32>) -> ()
  return
}
