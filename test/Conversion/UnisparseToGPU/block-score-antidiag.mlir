// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=fused" --canonicalize | FileCheck %s
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=fused" --canonicalize | FileCheck %s --check-prefix=FRAGS
// With the default separate epilogue both estimators end their CTA tiles
// after the key loop and a second kernel forms the scores.
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu --canonicalize | FileCheck %s --check-prefix=SEP
// SEP-LABEL: func.func @antidiag(
// SEP: gpu.launch {{.+}} module(@unisparse_block_score_0_module) function(@unisparse_block_score_0)
// SEP: gpu.launch {{.+}} module(@unisparse_block_score_epilogue_0_module) function(@unisparse_block_score_epilogue_0)
// SEP-LABEL: func.func @lse(
// SEP: gpu.launch {{.+}} module(@unisparse_block_score_0_module) function(@unisparse_block_score_0)
// SEP: gpu.launch {{.+}} module(@unisparse_block_score_epilogue_0_module) function(@unisparse_block_score_epilogue_0)

// antidiag (XAttention) as a GEMM with K = s * D: the key loop walks chunks
// (key tile kt, slot a), a workgroup-memory stage holding the slot's 64 key
// composites and the CTA's 64 query composites (16 per warp), both by
// cp.async; the accumulators run over the 8 slots, then the mean's softmax
// step with scale * log2(e) / 8. The query composites are never A
// fragments in registers for the whole tile (8 x 128 elements a row).
// CHECK-LABEL: func.func @antidiag(
// CHECK-SAME: %[[QC:[^:]+]]: memref<2x8x?x8x128xbf16>, %[[KC:[^:]+]]: memref<2x2x?x8x128xbf16>, %[[S:[^:]+]]: memref<2x8x?x?xf32>)
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 0.015939679 : f32
// CHECK: arith.divui %{{.+}}, %c64 : index
// CHECK: %[[PARTIALS:.+]] = memref.alloc(%{{.+}}) : memref<?xf16>
// CHECK: %[[MAXIMA:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// CHECK: gpu.launch {{.+}} threads({{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_block_score_0_module) function(@unisparse_block_score_0)
// CHECK-SAME: workgroup(%[[STAGES:.+]] : memref<3x128x136xbf16, #gpu.address_space<workgroup>>, %{{.+}} : memref<64xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<64xf32, #gpu.address_space<workgroup>>)
// CHECK-NOT: vector.load %[[QC]]
// Chunks 0 and 1 in flight before the key loop: slot c mod 8 of key tile
// c / 8 (head group / kv_group 4), then the slot's query composites. Rows
// inside Tk (Tq) are copied through a view that starts at the first.
// CHECK: %[[KV0:.+]] = memref.subview %[[KC]][%{{.+}}, %{{.+}}, 0, 0, 0] [1, 1, 64, 1, 128] [1, 1, 1, 1, 1]
// CHECK-COUNT-8: nvgpu.device_async_copy %[[KV0]][%c0, %c0, %{{.+}}, %c0, %{{.+}}], %{{.+}}[%{{.+}}], 8 {bypassL1} : memref<1x1x64x1x128xbf16, strided<[?, ?, 1024, 128, 1], offset: ?>> to memref<52224xbf16, #gpu.address_space<workgroup>>
// CHECK: } else {
// CHECK: } else {
// CHECK-COUNT-8: nvgpu.device_async_copy %[[QC]][%{{.+}}, %{{.+}}, %{{.+}}, %c0, %{{.+}}], %{{.+}}[%{{.+}}], 8, %{{.+}} {bypassL1} : memref<2x8x?x8x128xbf16> to memref<52224xbf16, #gpu.address_space<workgroup>>
// CHECK: nvgpu.device_async_create_group
// CHECK: memref.subview %[[KC]][%{{.+}}, %{{.+}}, 0, 1, 0] [1, 1, 64, 1, 128]
// CHECK: nvgpu.device_async_create_group
// The key loop carries the lane's row maxima and sums and the stage; the
// slot loop inside it the 32 accumulators of an m16 x n64 tile and the
// stage: per chunk a wait, one barrier, chunk c + 2 issued, 64 mma.sync.
// CHECK: scf.for %[[KT:.+]] = %c0 to %{{.+}} step %c1 iter_args({{.+}}) -> (f32, f32, f32, index) {
// CHECK-NEXT: %[[ACC:.+]]:33 = scf.for %[[A:.+]] = %c0 to %c8 step %c1 iter_args({{.+}}) -> ({{(f32, )+}}index) {
// CHECK: nvgpu.device_async_wait %{{.+}} {numGroups = 1 : i32}
// CHECK-NEXT: gpu.barrier
// CHECK: %[[SLOT:.+]] = arith.remui %{{.+}}, %c8 : index
// CHECK: %[[KV:.+]] = memref.subview %[[KC]][%{{.+}}, %{{.+}}, %{{.+}}, %[[SLOT]], 0] [1, 1, 64, 1, 128]
// CHECK-COUNT-8: nvgpu.device_async_copy %[[KV]][%c0, %c0, %{{.+}}, %c0, %{{.+}}]
// CHECK: nvgpu.device_async_create_group
// CHECK-COUNT-64: nvvm.mma.sync
// CHECK-NOT: nvvm.mma.sync
// CHECK: scf.yield
// One softmax step per key tile, on the sums over the slots, scaled by
// scale * log2(e) / s. Two rows a lane (16 query composites per warp): the
// quad's reduce-scatter by rows, then by halves of the 4 blocks, leaves a
// lane two blocks of its own row (one 4-byte store).
// CHECK: scf.if %{{.+}} -> (f32, f32, f32) {
// CHECK: math.ceil
// CHECK: math.fma %{{.+}}, %[[SCALE]], %{{.+}} : f32
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK: vector.store %{{.+}}, %[[PARTIALS]][%{{.+}}] {alignment = 4 : i64} : memref<?xf16>, vector<2xf16>
// CHECK: memref.store %{{.+}}, %[[MAXIMA]][%{{.+}}] : memref<?xf32>
// CHECK: } else {
// CHECK: arith.cmpi sge
// The scores of the tile's 4 query blocks (16 query composites each).
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c128 {
// CHECK-COUNT-16: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK: memref.store %{{.+}}, %[[S]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<2x8x?x?xf32>
// CHECK: memref.dealloc %[[PARTIALS]]
// CHECK-NOT: unisparse.block_score

// The A fragments of a chunk: per k step one ldmatrix.x4 of the warp's
// query rows (8 k steps), and 4 of key rows (two n8 tiles each): 40 per
// chunk, 64 mma.sync.
// FRAGS-LABEL: func.func @antidiag(
// FRAGS: scf.for %{{.+}} = %c0 to %c8 step %c1
// FRAGS-COUNT-40: nvgpu.ldmatrix %{{.+}}[%{{.+}}] {numTiles = 4 : i32, transpose = false} : memref<52224xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
// FRAGS-NOT: nvgpu.ldmatrix
// FRAGS: scf.yield
func.func @antidiag(%qc: memref<2x8x?x8x128xbf16>, %kc: memref<2x2x?x8x128xbf16>, %s: memref<2x8x?x?xf32>) {
  unisparse.block_score {block = 128 : i64, c_q = 8 : i64, c_k = 8 : i64, kv_group = 4 : i64, estimator = #unisparse.estimator<antidiag>}
      ins(%qc, %kc : memref<2x8x?x8x128xbf16>, memref<2x2x?x8x128xbf16>) outs(%s : memref<2x8x?x?xf32>)
  return
}

// -----

// antidiag_lse: per chunk (slot a of key tile kt) the slot's logits S_a
// from zero accumulators, then E = E * exp2(m_old - m) + exp2(S_a scale
// log2(e) - m) with the running max m over slots and key tiles: the slot
// logits never leave the chunk's registers (the rescale factor, an exact
// power of two, from the exponent bits). The slot loop carries E (32),
// the lane's 2 row maxima and the stage; the key tile ends with E's block
// sums and maxima in the scratch, as the mean's. Here f16, D = 64, stride
// 16, not causal, query_reduce = max.
// CHECK-LABEL: func.func @lse(
// CHECK-SAME: %[[QC:[^:]+]]: memref<1x4x?x16x64xf16>, %[[KC:[^:]+]]: memref<1x4x?x16x64xf16>, %[[S:[^:]+]]: memref<1x4x?x?xf32>)
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 0.180336878 : f32
// CHECK: %[[PARTIALS:.+]] = memref.alloc(%{{.+}}) : memref<?xf16>
// CHECK: gpu.launch
// CHECK-SAME: workgroup(%{{.+}} : memref<3x128x72xf16, #gpu.address_space<workgroup>>,
// CHECK: scf.for %{{.+}} = %c0 to %{{.+}} step %c1 iter_args({{.+}}) -> (f32, f32, f32, index) {
// CHECK: %[[WHOLE:.+]] = arith.cmpi ule
// CHECK-NEXT: %[[E:.+]]:35 = scf.for %{{.+}} = %c0 to %c16 step %c1 iter_args({{.+}}) -> ({{(f32, )+}}index) {
// CHECK: nvgpu.device_async_wait
// CHECK-NEXT: gpu.barrier
// CHECK-COUNT-32: nvvm.mma.sync {{.+}} : (vector<2xf16>, vector<2xf16>, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// CHECK-NOT: memref.store %{{.+}}, %[[PARTIALS]]
// CHECK: scf.if %[[WHOLE]] -> ({{(f32, )+}}f32) {
// CHECK: gpu.shuffle xor %{{.+}}, %c1_i32, %c32_i32 : f32
// CHECK: gpu.shuffle xor %{{.+}}, %c2_i32, %c32_i32 : f32
// CHECK: math.ceil
// CHECK: arith.shli %{{.+}}, %c23_i32 : i32
// CHECK: math.fma %{{.+}}, %[[SCALE]], %{{.+}} : f32
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK-COUNT-16: math.fma %{{.+}}, %{{.+}}, %{{.+}} : f32
// CHECK: } else {
// CHECK: arith.cmpi sge
// CHECK: scf.yield
// CHECK-NOT: nvvm.mma.sync
// CHECK: vector.store %{{.+}}, %[[PARTIALS]][%{{.+}}] {alignment = 8 : i64} : memref<?xf16>, vector<4xf16>
// The query reduction: the max of the composites' shares.
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c128 {
// CHECK: arith.maximumf
// CHECK: memref.store %{{.+}}, %[[S]]
// FRAGS-LABEL: func.func @lse(
func.func @lse(%qc: memref<1x4x?x16x64xf16>, %kc: memref<1x4x?x16x64xf16>, %s: memref<1x4x?x?xf32>) {
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 16 : i64, causal = false,
                         estimator = #unisparse.estimator<antidiag_lse>, query_reduce = #unisparse.query_reduce<max>}
      ins(%qc, %kc : memref<1x4x?x16x64xf16>, memref<1x4x?x16x64xf16>) outs(%s : memref<1x4x?x?xf32>)
  return
}
