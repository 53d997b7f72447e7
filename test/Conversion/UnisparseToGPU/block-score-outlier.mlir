// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="outlier-exp2-poly=0 outlier-tile-factors=false" --canonicalize | FileCheck %s
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="outlier-key-tile=64 warps=8 ctas=7" --canonicalize | FileCheck %s --check-prefix=KNOBS
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="partials=f32" --canonicalize | FileCheck %s --check-prefix=F32
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu --canonicalize | FileCheck %s --check-prefix=POLY
// RUN: not unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="outlier-exp2-poly=9" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="outlier-unroll-slots" --canonicalize | FileCheck %s --check-prefix=UNROLL
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="outlier-wgmma" --canonicalize | FileCheck %s --check-prefix=WGMMA --implicit-check-not=nvgpu.ldmatrix --implicit-check-not=nvvm.mma.sync
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="outlier-wgmma outlier-key-tile=96" --canonicalize | FileCheck %s --check-prefix=WGKT96
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="outlier-wgmma warps=8" --canonicalize | FileCheck %s --check-prefix=WG8

// The buffer form of block_score {estimator = outlier} (16-bit composites:
// rest, one outlier row and the spread for the queries; rest and two
// outlier keys for the keys) becomes the outlier kernels of
// OutlierScoreKernel.cpp: |k|^2 per key slot and the query spread as two
// small kernels into f32 buffers, then the scoring kernel (persistent CTAs
// over tiles of 64 query composites, two passes over the key tiles, the
// block partial sums through a scratch slot per CTA); the [Tq, Tk] map is
// never allocated.
// CHECK-LABEL: func.func @score(
// CHECK-SAME: %[[QC:[^:]+]]: memref<1x8x?x3x128xbf16>, %[[KC:[^:]+]]: memref<1x8x?x3x128xbf16>, %[[S:[^:]+]]: memref<1x8x?x?xf32>)
// By default every exponential is ex2.approx (no polynomial's shift).
// CHECK-NOT: arith.constant 0x4B400000 : f32
// |k|^2 slot major, padded to whole key tiles of 32 composites.
// CHECK: %[[NORMS:.+]] = memref.alloc(%{{.+}}) : memref<1x8x3x?xf32>
// A thread's row comes in as 16 loads of 16 bytes (the rows' alignment is
// the op's precondition for these kernels, known from the composites'
// types), all issued before the first of the 128 fused multiply-adds
// (ascending in d), with no alignment branch and no scalar loop.
// CHECK-NOT: memref.extract_aligned_pointer_as_index
// CHECK: gpu.launch {{.+}} module(@unisparse_outlier_key_norms_0_module) function(@unisparse_outlier_key_norms_0)
// CHECK-NOT: scf.if {{.+}} -> (f32)
// CHECK-COUNT-16: vector.load %[[KC]][{{.+}}] {alignment = 16 : i64} : memref<1x8x?x3x128xbf16>, vector<8xbf16>
// CHECK-NOT: vector.load
// CHECK-COUNT-128: math.fma
// CHECK-NOT: scf.for
// CHECK: gpu.terminator
// CHECK: %[[SPREAD:.+]] = memref.alloc(%{{.+}}) : memref<1x8x?xf32>
// CHECK: gpu.launch {{.+}} module(@unisparse_outlier_query_spread_0_module) function(@unisparse_outlier_query_spread_0)
// CHECK-NOT: scf.if {{.+}} -> (f32)
// CHECK-COUNT-16: vector.load %[[QC]][{{.+}}] {alignment = 16 : i64} : memref<1x8x?x3x128xbf16>, vector<8xbf16>
// CHECK-NOT: vector.load
// CHECK-COUNT-128: arith.addf %{{.+}}, %{{.+}} : f32
// CHECK-NOT: scf.for
// CHECK: gpu.terminator
// The scratch: partial sums (f16 by default: partials=f16) and f32
// maxima, a slot of 128 rows (64 composites x 2 query slots) for each of
// min(tiles, 264) CTAs.
// CHECK: %[[CTAS:.+]] = arith.minui %{{.+}}, %c264 : index
// CHECK: %[[ROWS:.+]] = arith.muli %[[CTAS]], %c128 : index
// CHECK: %[[PLEN:.+]] = arith.muli %[[ROWS]], %{{.+}} : index
// CHECK: %[[PARTIALS:.+]] = memref.alloc(%[[PLEN]]) : memref<?xf16>
// CHECK: %[[MLEN:.+]] = arith.muli %[[ROWS]], %{{.+}} : index
// CHECK: %[[MAXIMA:.+]] = memref.alloc(%[[MLEN]]) : memref<?xf32>
// CHECK: gpu.launch blocks({{.+}}) in (%{{.+}} = %[[CTAS]], {{.+}}) threads({{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_outlier_score_0_module) function(@unisparse_outlier_score_0)
// Two key stages of 32 composites x 3 slots x (128 + 8) elements, then the
// query tile of 128 slot rows x (128 + 8); the rows' final max and omega /
// sum, each query block's run of 16 rows padded by 4 (128 + 8 x 4).
// CHECK-SAME: workgroup(%[[WG:.+]] : memref<43520xbf16, #gpu.address_space<workgroup>>, %[[RMAX:.+]] : memref<160xf32, #gpu.address_space<workgroup>>, %[[RCOEF:.+]] : memref<160xf32, #gpu.address_space<workgroup>>)
// CHECK: gpu.grid_dim x
// The rounds of the static schedule.
// CHECK: scf.for
// The query slot rows by cp.async into the query tile (16 copies a
// thread), then key tile 0 (12).
// CHECK-COUNT-16: nvgpu.device_async_copy %[[QC]]
// CHECK-COUNT-12: nvgpu.device_async_copy %[[KC]]
// Pass 1 (the x statistics of the slot 0 rows): the key loop carrying two
// maxima and two sums a lane.
// CHECK: scf.for {{.+}} -> (f32, f32, f32, f32) {
// CHECK: nvgpu.device_async_wait
// CHECK: gpu.barrier
// A loop over the three key slots; per slot and k step, ldmatrix.x4 of the
// A fragments (one m16 tile: the slot 0 rows) from the query tile and of
// two n8 tiles of the slot's keys.
// CHECK: scf.for %{{.+}} = %c0 to %c3 step %c1
// CHECK: nvgpu.ldmatrix %[[WG]]
// CHECK: nvgpu.ldmatrix %[[WG]]
// CHECK: nvvm.mma.sync
// The max of the accumulators (a tree), over the quad, then the logit max
// by one FMA; exp2 of x - m as one FMA of the accumulator.
// CHECK: arith.maxnumf
// CHECK: gpu.shuffle  xor
// CHECK: gpu.shuffle  xor
// CHECK: math.fma
// CHECK: %[[ARG:.+]] = math.fma
// CHECK-NEXT: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"(%[[ARG]])
// Pass 2 (the corrected statistics and the partial sums): four maxima and
// four sum shares a lane across the key tiles; per key tile the slot loop
// carries the four maxima and the lane's 4 x 4 partial block sums.
// CHECK: scf.for {{.+}} -> (f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK: scf.for %{{.+}} = %c0 to %c3 step %c1 iter_args({{.+}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK: nvvm.mma.sync
// CHECK: vector.load %[[NORMS]]
// The running max rounded up to an integer; the partial sums rescaled by
// the exact power of two from its exponent bits.
// CHECK: math.ceil
// CHECK: arith.shli %{{.+}}, %c23_i32 : i32
// After the slot loop: the block sums to the scratch (per n8 tile pair a
// shuffle: the even lane keeps the first tile's blocks, the odd the
// second's; a lane's two query slots of a composite rounded to f16 and
// stored as a pair: 4 stores a lane), the rows' maxima.
// CHECK: gpu.shuffle  xor
// CHECK: arith.truncf %{{.+}} : f32 to f16
// CHECK: vector.store %{{.+}}, %[[PARTIALS]][%{{.+}}] {alignment = 4 : i64} : memref<?xf16>, vector<2xf16>
// CHECK-COUNT-3: vector.store %{{.+}}, %[[PARTIALS]]
// CHECK-NOT: vector.store %{{.+}}, %[[PARTIALS]]
// CHECK: memref.store %{{.+}}, %[[MAXIMA]]
// CHECK: gpu.barrier
// The scores: the rows' statistics to workgroup memory, a barrier, then a
// thread per (query block, key block) reads its 16 rows' partial sums (two
// 16-byte loads of f16, widened) and tile maxima (four 16-byte loads), and
// the query reduction.
// CHECK: memref.store %{{.+}}, %[[RMAX]]
// CHECK: memref.store %{{.+}}, %[[RCOEF]]
// CHECK: gpu.barrier
// CHECK: scf.for
// CHECK: vector.load %[[PARTIALS]]{{.+}} : memref<?xf16>, vector<8xf16>
// CHECK: arith.extf %{{.+}} : f16 to f32
// CHECK: vector.load %[[PARTIALS]]{{.+}} : memref<?xf16>, vector<8xf16>
// CHECK-COUNT-4: vector.load %[[MAXIMA]]{{.+}} : memref<?xf32>, vector<4xf32>
// CHECK: memref.load %[[RMAX]]
// CHECK: memref.load %[[RCOEF]]
// CHECK: arith.maximumf
// CHECK: memref.store %{{.+}}, %[[S]]
// CHECK: gpu.barrier
// CHECK: memref.dealloc %[[NORMS]]
// CHECK: memref.dealloc %[[SPREAD]]
// CHECK: memref.dealloc %[[PARTIALS]]
// CHECK: memref.dealloc %[[MAXIMA]]
// partials=f32: the same stores and loads in f32 (8-byte pairs; four
// 16-byte loads a run).
// F32-LABEL: func.func @score(
// F32: %[[PARTIALS:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// F32: vector.store %{{.+}}, %[[PARTIALS]][%{{.+}}] {alignment = 8 : i64} : memref<?xf32>, vector<2xf32>
// F32-COUNT-3: vector.store %{{.+}}, %[[PARTIALS]]
// F32-NOT: vector.store %{{.+}}, %[[PARTIALS]]
// F32: gpu.barrier
// F32: scf.for
// F32-COUNT-4: vector.load %[[PARTIALS]]{{.+}} : memref<?xf32>, vector<4xf32>
// The defaults, outlier-exp2-poly=2 and outlier-tile-factors: in pass 2's unmasked key tiles, 2 of each 8 values
// of a row take exp2 by the polynomial (FMNMX clamp at -126, the 1.5 *
// 2^23 shift, f = x - round(x), three FMAs of the degree-3 coefficients,
// round(x) into the exponent field by an integer add); the masked tiles
// keep ex2.approx for every value (-inf must give 0).
// POLY-LABEL: func.func @score(
// POLY-SAME: %[[S:[^:]+]]: memref<1x8x?x?xf32>)
// POLY-DAG: %[[C0:.+]] = arith.constant 0.999928057 : f32
// POLY-DAG: %[[C1:.+]] = arith.constant 0.693260967 : f32
// POLY-DAG: %[[C2:.+]] = arith.constant 0.242611125 : f32
// POLY-DAG: %[[C3:.+]] = arith.constant 0.0551716685 : f32
// POLY-DAG: %[[SHIFT:.+]] = arith.constant 0x4B400000 : f32
// POLY-DAG: %[[LOW:.+]] = arith.constant -1.260000e+02 : f32
// POLY: %[[PARTIALS:.+]] = memref.alloc(%{{.+}}) : memref<?xf16>
// POLY: %[[MAXIMA:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// POLY: gpu.launch {{.+}} module(@unisparse_outlier_score_0_module)
// POLY-SAME: %[[RMAX:[^ ]+]] : memref<160xf32, #gpu.address_space<workgroup>>, %[[RCOEF:[^ ]+]] : memref<160xf32, #gpu.address_space<workgroup>>)
// POLY: scf.for {{.+}} -> (f32, f32, f32, f32, f32, f32, f32, f32) {
// POLY: scf.for %{{.+}} = %c0 to %c3 step %c1 iter_args({{.+}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// POLY: %[[CL:.+]] = arith.maxnumf %{{.+}}, %[[LOW]] : f32
// POLY-NEXT: %[[SH:.+]] = arith.addf %[[CL]], %[[SHIFT]] : f32
// POLY-NEXT: %[[J:.+]] = arith.subf %[[SH]], %[[SHIFT]] : f32
// POLY-NEXT: %[[F:.+]] = arith.subf %[[CL]], %[[J]] : f32
// POLY-NEXT: %[[P3:.+]] = math.fma %[[C3]], %[[F]], %[[C2]] : f32
// POLY-NEXT: %[[P2:.+]] = math.fma %[[P3]], %[[F]], %[[C1]] : f32
// POLY-NEXT: %[[P1:.+]] = math.fma %[[P2]], %[[F]], %[[C0]] : f32
// POLY-NEXT: %[[JB:.+]] = arith.bitcast %[[SH]] : f32 to i32
// POLY-NEXT: %[[E:.+]] = arith.shli %[[JB]], %c23_i32 : i32
// POLY-NEXT: %[[PB:.+]] = arith.bitcast %[[P1]] : f32 to i32
// POLY-NEXT: %[[R:.+]] = arith.addi %[[PB]], %[[E]] : i32
// POLY-NEXT: arith.bitcast %[[R]] : i32 to f32
// POLY: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// The masked tiles' slot loop: no polynomial.
// POLY: } else {
// POLY-NEXT: scf.for %{{.+}} = %c0 to %c3 step %c1
// POLY-NOT: arith.addf %{{.+}}, %[[SHIFT]]
// POLY: vector.store %{{.+}}, %[[PARTIALS]]
// outlier-tile-factors: a thread per (query block, key tile) loads the
// tile's maxima once (four 16-byte loads), forms the 16 rows' factors,
// then per block of the tile (8) its run of partial sums (two 16-byte
// loads) and the score; tiles past the CTA's keys store 0.
// POLY: memref.store %{{.+}}, %[[RCOEF]]
// POLY: gpu.barrier
// POLY: scf.for
// POLY-NOT: vector.load %[[PARTIALS]]
// POLY-COUNT-4: vector.load %[[MAXIMA]]{{.+}} : memref<?xf32>, vector<4xf32>
// POLY-NOT: vector.load %[[MAXIMA]]
// POLY-COUNT-16: vector.load %[[PARTIALS]]{{.+}} : memref<?xf16>, vector<8xf16>
// POLY-NOT: vector.load %[[MAXIMA]]
// POLY: } else {
// POLY-COUNT-8: memref.store %{{.+}}, %[[S]]
// POLY: gpu.barrier
// BAD: outlier-exp2-poly must be in [0, 8], got 9
// KNOBS-LABEL: func.func @score(
// KNOBS: arith.minui %{{.+}}, %c7 : index
// KNOBS: gpu.launch {{.+}} threads(%{{.+}}) in (%{{.+}} = %c256, {{.+}}) module(@unisparse_outlier_score_0_module)
// KNOBS-SAME: workgroup(%{{.+}} : memref<87040xbf16, #gpu.address_space<workgroup>>, %{{.+}} : memref<320xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<320xf32, #gpu.address_space<workgroup>>)
// KNOBS-COUNT-16: nvgpu.device_async_copy %arg0
// KNOBS-COUNT-12: nvgpu.device_async_copy %arg1
// KNOBS: scf.for %{{.+}} = %c0 to %c3 step %c1 iter_args({{.+}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// outlier-unroll-slots: no loop over the key slots in either pass; each
// key tile's branch (whole or masked) is one block of the three slots'
// mma.sync (pass 1: one m16 tile x 4 n8 tiles x 8 k steps a slot; pass 2:
// two m16 tiles).
// UNROLL-LABEL: func.func @score(
// UNROLL: gpu.launch {{.+}} module(@unisparse_outlier_score_0_module)
// UNROLL: scf.for {{.+}} -> (f32, f32, f32, f32) {
// UNROLL: scf.if {{.+}} -> (f32, f32, f32, f32) {
// UNROLL-NOT: scf.for
// UNROLL-COUNT-96: nvvm.mma.sync
// UNROLL-NOT: {{scf.for|nvvm.mma.sync}}
// UNROLL: } else {
// UNROLL-NOT: scf.for
// UNROLL-COUNT-96: nvvm.mma.sync
// UNROLL-NOT: {{scf.for|nvvm.mma.sync}}
// UNROLL: scf.for {{.+}} -> (f32, f32, f32, f32, f32, f32, f32, f32) {
// UNROLL: scf.if {{.+}} -> ({{(f32, )+}}f32) {
// UNROLL-NOT: scf.for
// UNROLL-COUNT-192: nvvm.mma.sync
// UNROLL-NOT: {{scf.for|nvvm.mma.sync}}
// UNROLL: } else {
// UNROLL-NOT: scf.for
// UNROLL-COUNT-192: nvvm.mma.sync
// UNROLL-NOT: nvvm.mma.sync
// UNROLL: gpu.terminator
// With outlier-wgmma (sm_90a) the products are wgmma m64n32k16 from
// workgroup memory: the buffer 1024-byte aligned (the kernel's attribution
// attribute, for the 128-byte swizzle), unpadded (2 stages of 3 x 32 key
// rows and 128 query slot rows of 128 elements: 40960), one descriptor of
// its start (the shared address's bits >> 4, leading byte offset 16, stride
// 1024, the 128-byte swizzle), the query tile's 16 swizzled copies a thread
// (slot h of composite c at row 64 h + c), and a proxy fence before each key
// tile's barrier.
// WGMMA: module attributes {unisparse.kernel_attributes = {unisparse_outlier_score_0 = {workgroup_attrib_attrs = [{llvm.align = 1024 : i64}, {}, {}]}}}
// WGMMA-LABEL: func.func @score(
// WGMMA: module(@unisparse_outlier_score_0_module) function(@unisparse_outlier_score_0) workgroup(%[[WG:[^ ]+]] : memref<40960xbf16, #gpu.address_space<workgroup>>,
// WGMMA: memref.extract_aligned_pointer_as_index %[[WG]]
// WGMMA: arith.andi %{{.+}}, %c262143_i64 : i64
// WGMMA: %[[DESC:.+]] = arith.ori %{{.+}}, %c4611686293305360384_i64 : i64
// WGMMA: arith.xori
// WGMMA-COUNT-16: nvgpu.device_async_copy %arg0[{{.+}}], %[[WG]][{{.+}}], 8, {{.+}} {bypassL1}
// WGMMA: arith.xori
// WGMMA: nvgpu.device_async_copy %arg1[{{.+}}], %[[WG]][{{.+}}], 8, {{.+}} {bypassL1}
// WGMMA: nvvm.fence.proxy {kind = #nvvm.proxy_kind<async.shared>, space = #nvvm.shared_space<cta>}
// WGMMA-NEXT: gpu.barrier
// Pass 1: per key slot one commit group of 8 k steps of the slot 0 rows (A
// at the query tile, byte 49152 = 3072 x 16; k step 4 in the second
// panel, 16384 bytes on), the next slot issued before a slot's wait (1
// group left in flight; 0 at the last slot), 16 accumulators a thread.
// WGMMA: nvvm.wgmma.fence.aligned
// WGMMA: arith.addi %[[DESC]], %c3072_i64 : i64
// WGMMA-COUNT-8: wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {$0, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15}, $16, $17, p, 1, 1, 0, 0;
// WGMMA: nvvm.wgmma.commit.group.sync.aligned
// WGMMA-NEXT: nvvm.wgmma.fence.aligned
// WGMMA: arith.addi %{{.+}}, %c256_i64 : i64
// WGMMA: arith.addi %[[DESC]], %c3072_i64 : i64
// WGMMA-COUNT-8: wgmma.mma_async
// WGMMA: nvvm.wgmma.commit.group.sync.aligned
// WGMMA-NEXT: llvm.inline_asm has_side_effects asm_dialect = att "wgmma.wait_group.sync.aligned 1;", "=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15"
// WGMMA-COUNT-8: wgmma.mma_async
// WGMMA: "wgmma.wait_group.sync.aligned 1;"
// WGMMA: "wgmma.wait_group.sync.aligned 0;"
// WGMMA: } else {
// Pass 2: both query slots (m64 tiles at 3072 and 3584: 64 rows of 128
// bytes apart), 16 wgmma a slot, 32 accumulators a thread in flight.
// WGMMA: nvvm.fence.proxy
// WGMMA-NEXT: gpu.barrier
// WGMMA: nvvm.wgmma.fence.aligned
// WGMMA: arith.addi %[[DESC]], %c3072_i64 : i64
// WGMMA-NEXT: llvm.inline_asm {{.+}}m64n32k16
// WGMMA: arith.addi %[[DESC]], %c3584_i64 : i64
// WGMMA-NEXT: llvm.inline_asm {{.+}}m64n32k16
// WGMMA-COUNT-14: m64n32k16
// WGMMA: nvvm.wgmma.commit.group.sync.aligned
// WGMMA-NEXT: nvvm.wgmma.fence.aligned
// WGMMA-COUNT-16: m64n32k16
// WGMMA: nvvm.wgmma.commit.group.sync.aligned
// WGMMA-NEXT: llvm.inline_asm has_side_effects asm_dialect = att "wgmma.wait_group.sync.aligned 1;", "=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,=f,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31"
// WGMMA: gpu.terminator
// Not with 8 warps a CTA (two warpgroups): mma.sync, padded rows.
// WG8-LABEL: func.func @score(
// WG8: function(@unisparse_outlier_score_0) workgroup(%{{[^ ]+}} : memref<60928xbf16
// WG8-NOT: wgmma
// WG8: nvvm.mma.sync
// WG8-NOT: wgmma
// WG8: gpu.terminator
func.func @score(%qc: memref<1x8x?x3x128xbf16>, %kc: memref<1x8x?x3x128xbf16>, %s: memref<1x8x?x?xf32>) {
  unisparse.block_score {block = 128, c_q = 16, c_k = 32, estimator = #unisparse.estimator<outlier>,
                         query_reduce = #unisparse.query_reduce<max>}
      ins(%qc, %kc : memref<1x8x?x3x128xbf16>, memref<1x8x?x3x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

// query_reduce = sum: the composites' scores are added; c_k = 16 (a key
// block is one n8 tile: a lane's piece per block, 4 a row in a key tile
// of 32, summed over the quad); one key outlier (two key slots).
// CHECK-LABEL: func.func @sum(
// CHECK: module(@unisparse_outlier_score_0_module)
// CHECK: scf.for %{{.+}} = %c0 to %c2 step %c1 iter_args({{.+}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK: gpu.shuffle  xor
// CHECK-NOT: arith.maximumf
// CHECK: gpu.terminator
// f16 composites of D 64 (one panel, 4 k steps), two key slots.
// Per key tile the two slots' groups: slot 1 issued before slot 0's
// wait (1 group left in flight), then slot 1's (0).
// WGMMA-LABEL: func.func @sum(
// WGMMA: workgroup(%{{[^ ]+}} : memref<16384xf16
// WGMMA-COUNT-4: wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16
// WGMMA: nvvm.wgmma.commit.group.sync.aligned
// WGMMA-NEXT: nvvm.wgmma.fence.aligned
// WGMMA-COUNT-4: wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16
// WGMMA: nvvm.wgmma.commit.group.sync.aligned
// WGMMA-NEXT: "wgmma.wait_group.sync.aligned 1;"
// WGMMA-NOT: wgmma.mma_async
// WGMMA: "wgmma.wait_group.sync.aligned 0;"
// A key tile past the wgmma form's registers (96: 96 accumulators a
// slot in pass 2) keeps mma.sync.
// WGKT96-LABEL: func.func @sum(
// WGKT96-NOT: wgmma
// WGKT96: nvvm.mma.sync
// WGKT96-NOT: wgmma
// WGKT96: gpu.terminator
func.func @sum(%qc: memref<1x8x?x3x64xf16>, %kc: memref<1x8x?x2x64xf16>, %s: memref<1x8x?x?xf32>) {
  unisparse.block_score {block = 128, c_q = 16, c_k = 16, estimator = #unisparse.estimator<outlier>}
      ins(%qc, %kc : memref<1x8x?x3x64xf16>, memref<1x8x?x2x64xf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}
