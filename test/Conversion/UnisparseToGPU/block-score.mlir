// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=fused" --canonicalize | FileCheck %s
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=fused warps=8 key-tile=32 ctas=100" --canonicalize | FileCheck %s --check-prefix=KNOBS
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=fused warp-rows=16 min-ctas-per-sm=3" --canonicalize | FileCheck %s --check-prefix=ROWS16
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=separate" --canonicalize | FileCheck %s --check-prefix=SEP
// The default is the separate epilogue in bounded chunks.
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu --canonicalize | FileCheck %s --check-prefix=SEP
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=separate scratch-bytes=0" --canonicalize | FileCheck %s --check-prefix=UNBOUNDED
// A key tile of 3 key blocks (48 composites of rk 16): the epilogue's loads
// of a tile's partial sums are one element wide, 4-byte aligned.
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="key-tile=48" --canonicalize | FileCheck %s --check-prefix=NARROW

// NARROW-LABEL: func.func @score(
// NARROW: function(@unisparse_block_score_epilogue_0)
// NARROW-NOT: vector<4xf32>
// NARROW-COUNT-24: vector.load %{{.+}}[%{{.+}}] {alignment = 4 : i64} : memref<?xf32>, vector<1xf32>
// NARROW: scf.yield

// The buffer form of block_score (16-bit composites) becomes the persistent
// tensor-core kernel: a scratch slot per CTA (partial sums [rows, key tiles *
// blocks per key tile], maxima [rows, key tiles]), the scoring launch and the
// deallocations. The [Tq, Tk] map is never allocated.
// CHECK-LABEL: func.func @score(
// CHECK-SAME: %[[QC:[^:]+]]: memref<1x8x?x128xbf16>, %[[KC:[^:]+]]: memref<1x8x?x128xbf16>, %[[S:[^:]+]]: memref<1x8x?x?xf32>)
// 128-row CTA tiles of query composites over (batch, head group); 264 CTAs at most.
// CHECK: %[[QT:.+]] = arith.divui %{{.+}}, %c128 : index
// CHECK: %[[TILES:.+]] = arith.muli %[[QT]], %c8 : index
// CHECK: %[[KT:.+]] = arith.divui %{{.+}}, %c64 : index
// CHECK: %[[CTAS:.+]] = arith.minui %[[TILES]], %c264 : index
// CHECK: %[[PARTIALS:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// CHECK: %[[MAXIMA:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// CHECK: gpu.launch blocks(%[[BID:[^,]+]], {{.+}}) in (%{{.+}} = %[[CTAS]], {{.+}}) threads(%[[TID:[^,]+]], {{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_block_score_0_module) function(@unisparse_block_score_0)
// Three key-tile stages in workgroup memory, addressed as one flat buffer.
// CHECK-SAME: workgroup(%[[STAGES:.+]] : memref<3x64x136xbf16, #gpu.address_space<workgroup>>, %{{.+}} : memref<128xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<128xf32, #gpu.address_space<workgroup>>)
// The static persistent schedule: CTA c takes tiles c, c + grid, ...
// CHECK: %[[GRID:.+]] = gpu.grid_dim x
// CHECK: %[[KEYS:.+]] = memref.collapse_shape %[[STAGES]] {{\[\[}}0, 1, 2]] : memref<3x64x136xbf16, #gpu.address_space<workgroup>> into memref<26112xbf16, #gpu.address_space<workgroup>>
// CHECK: scf.for %{{.+}} = %[[BID]] to %[[TILES]] step %[[GRID]] {
// The query composites as mma A fragments: 2 m16 tiles x 8 k steps x 4
// registers of a bf16 pair, loaded once per tile.
// CHECK-COUNT-64: vector.load %[[QC]]{{.+}} : memref<1x8x?x128xbf16>, vector<2xbf16>
// Key tiles 0 and 1 in flight before the loop: cp.async of 16-byte chunks
// into workgroup memory, 8 per thread, a group each. A tile inside Tk is
// copied as it is, through a view that starts at its first key (one base
// address per key tile; the sources a constant apart from it); the last one
// clamps its rows and zero-fills those past Tk.
// CHECK: scf.if
// CHECK-NEXT: %[[INSIDE:.+]] = arith.cmpi uge, %{{.+}}, %c64 : index
// CHECK-NEXT: scf.if %[[INSIDE]] {
// CHECK: %[[TILE0:.+]] = memref.subview %[[KC]][%{{.+}}, %{{.+}}, 0, 0] [1, 1, 64, 128] [1, 1, 1, 1] : memref<1x8x?x128xbf16> to memref<1x1x64x128xbf16, strided<[?, ?, 128, 1], offset: ?>>
// CHECK-COUNT-8: nvgpu.device_async_copy %[[TILE0]][%c0, %c0, %{{.+}}, %{{.+}}], %[[KEYS]][{{.+}}], 8 {bypassL1} : memref<1x1x64x128xbf16, strided<[?, ?, 128, 1], offset: ?>> to memref<26112xbf16, #gpu.address_space<workgroup>>
// CHECK-NEXT: } else {
// CHECK-COUNT-8: nvgpu.device_async_copy %[[KC]][{{.+}}], %[[KEYS]][{{.+}}], 8, %{{.+}} {bypassL1} : memref<1x8x?x128xbf16> to memref<26112xbf16, #gpu.address_space<workgroup>>
// CHECK: %[[GROUP0:.+]] = nvgpu.device_async_create_group
// CHECK: scf.if
// CHECK-COUNT-16: nvgpu.device_async_copy
// CHECK: %[[GROUP1:.+]] = nvgpu.device_async_create_group
// Per key tile: wait for it (one group may stay in flight), one barrier,
// issue the tile two ahead into the stage of tile kt - 1 (the stage of kt
// is carried by the loop), then compute.
// CHECK: scf.for %[[KT:.+]] = %c0 to %{{.+}} step %c1 iter_args({{.+}}, %[[STAGE:.+]] = %c0) -> (f32, f32, f32, f32, f32, f32, f32, f32, index) {
// CHECK-NEXT: nvgpu.device_async_wait %[[GROUP1]] {numGroups = 1 : i32}
// CHECK-NEXT: gpu.barrier
// CHECK-NOT: arith.remui
// CHECK: scf.if
// CHECK: memref.subview %[[KC]][%{{.+}}, %{{.+}}, %{{.+}}, 0] [1, 1, 64, 128] [1, 1, 1, 1]
// CHECK-COUNT-16: nvgpu.device_async_copy
// CHECK: nvgpu.device_async_create_group
// CHECK-NOT: gpu.barrier
// QK^T of a 64-key tile: 8 k steps x 4 ldmatrix.x4 and 128 mma.sync.
// CHECK: nvgpu.ldmatrix %[[KEYS]][{{.+}}] {numTiles = 4 : i32, transpose = false} : memref<26112xbf16, #gpu.address_space<workgroup>> -> vector<4x2xbf16>
// CHECK-COUNT-4: nvvm.mma.sync A[{{.+}}] B[{{.+}}] C[{{.+}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// The statistics of a row. Tiles whole for every row of the CTA take the
// branch without the mask: the max over the quad, rounded up to an
// integer, one FMA and ex2.approx.ftz per element, the block sums as a
// reduce-scatter over the quad (xor 1 then xor 2; each lane stores one
// block).
// CHECK: %[[WHOLE:.+]] = arith.cmpi ule
// CHECK: scf.if %[[WHOLE]] -> (f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK-NOT: arith.cmpi sge
// CHECK: gpu.shuffle xor %{{.+}}, %c1_i32, %c32_i32 : f32
// CHECK: gpu.shuffle xor %{{.+}}, %c2_i32, %c32_i32 : f32
// CHECK: math.ceil
// CHECK: math.fma
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"(%{{.+}}) : (f32) -> f32
// CHECK-COUNT-2: gpu.shuffle xor %{{.+}}, %c1_i32, %c32_i32 : f32
// CHECK-NEXT: arith.addf
// CHECK: gpu.shuffle xor %{{.+}}, %c2_i32, %c32_i32 : f32
// CHECK: memref.store %{{.+}}, %[[PARTIALS]][%{{.+}}] : memref<?xf32>
// CHECK-NOT: memref.store %{{.+}}, %[[PARTIALS]]
// CHECK: memref.store %{{.+}}, %[[MAXIMA]][%{{.+}}] : memref<?xf32>
// The other tiles mask each element against its row's last key.
// CHECK: } else {
// CHECK: arith.cmpi sge, %{{.+}}, %c{{[0-9]+}}_i32 : i32
// CHECK: memref.store %{{.+}}, %[[PARTIALS]][%{{.+}}] : memref<?xf32>
// CHECK: memref.store %{{.+}}, %[[MAXIMA]][%{{.+}}] : memref<?xf32>
// The next tile's stage.
// CHECK: %[[LAST:.+]] = arith.cmpi eq, %[[STAGE]], %c2 : index
// CHECK: arith.select %[[LAST]], %c0, %{{.+}} : index
// The tile's scores: rescaled partial sums summed over the 8 query composites
// of each query block.
// Blocks past the tile's keys are 0, nothing loaded.
// CHECK: scf.for %{{.+}} = %[[TID]] to %{{.+}} step %c128 {
// CHECK: %[[SCORE:.+]] = scf.if %{{.+}} -> (f32) {
// CHECK-COUNT-8: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"
// CHECK: } else {
// CHECK-NEXT: scf.yield %cst{{.*}} : f32
// CHECK-NEXT: }
// CHECK-NEXT: memref.store %[[SCORE]], %[[S]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<1x8x?x?xf32>
// CHECK: memref.dealloc %[[PARTIALS]]
// CHECK: memref.dealloc %[[MAXIMA]]
// CHECK-NOT: unisparse.block_score

// Knobs: 8 warps (256 rows per CTA tile, 256 threads), 32-key tiles, 100 CTAs.
// KNOBS-LABEL: func.func @score(
// KNOBS: arith.minui %{{.+}}, %c100 : index
// KNOBS: gpu.launch {{.+}} threads({{.+}}) in (%{{.+}} = %c256, {{.+}}) module(@unisparse_block_score_0_module) {{.+}} workgroup(%{{.+}} : memref<3x32x136xbf16, #gpu.address_space<workgroup>>, %{{.+}} : memref<256xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<256xf32, #gpu.address_space<workgroup>>)
// 16 query composites per warp (64-row CTA tiles, one m16 tile: 32 A
// registers) and a register budget for 3 CTAs per SM, recorded for the
// outlined kernel.
// ROWS16: module attributes {unisparse.kernel_attributes = {unisparse_block_score_0 = {nvvm.minctasm = 3 : i32}}}
// ROWS16-LABEL: func.func @score(
// ROWS16: arith.divui %{{.+}}, %c64 : index
// ROWS16: gpu.launch
// ROWS16-SAME: workgroup(%{{.+}} : memref<3x64x136xbf16, #gpu.address_space<workgroup>>, %{{.+}} : memref<64xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<64xf32, #gpu.address_space<workgroup>>)
// ROWS16-COUNT-32: vector.load
// ROWS16-NOT: vector.load
// ROWS16: scf.for
// The separate epilogue: work units (causal: pairs of CTA tiles, tile
// Q - 1 - p then tile p of a head; ceil(Q / 2) per head) in chunks of whole
// waves of a unit per CTA within the 256 MiB budget, spread evenly over the
// chunks; a scratch slot per unit of a chunk (128 rows by the pair's key
// tiles: ceil((Q + 1) * 128 * 16 / (8 * 64)) + 2, at most twice Tk's; 4
// partial sums and one max per key tile); per chunk the scoring launch (a
// CTA per unit, at most 264) and the epilogue launch.
// SEP-LABEL: func.func @score(
// SEP-SAME: %{{[^:]+}}: memref<1x8x?x128xbf16>, %{{[^:]+}}: memref<1x8x?x128xbf16>, %[[S:[^:]+]]: memref<1x8x?x?xf32>)
// SEP: %[[QT:.+]] = arith.divui %{{.+}}, %c128 : index
// SEP: %[[KT:.+]] = arith.divui %{{.+}}, %c64 : index
// SEP: %[[PAIRS:.+]] = arith.divui %{{.+}}, %c2 : index
// SEP: %[[QT1:.+]] = arith.addi %[[QT]], %c1 : index
// SEP: %[[PAIRKEYS:.+]] = arith.muli %[[QT1]], %c2048 : index
// SEP: %[[TWICE:.+]] = arith.muli %[[KT]], %c2 : index
// SEP: %[[PAIRCEIL:.+]] = arith.addi %[[PAIRKEYS]], %c511 : index
// SEP: %[[PAIRTILES:.+]] = arith.divui %[[PAIRCEIL]], %c512 : index
// SEP: %[[PAIRBOUND:.+]] = arith.addi %[[PAIRTILES]], %c2 : index
// SEP: %[[UKT:.+]] = arith.minui %[[TWICE]], %[[PAIRBOUND]] : index
// SEP: %[[UNITS:.+]] = arith.muli %[[PAIRS]], %c8 : index
// SEP: %[[SLOTFLOATS:.+]] = arith.muli %[[UKT]], %c640 : index
// SEP: %[[UNITFLOATS:.+]] = arith.addi %[[SLOTFLOATS]], %c256 : index
// SEP: %[[WAVE0:.+]] = arith.minui %[[UNITS]], %c264 : index
// SEP: %[[WAVE:.+]] = arith.maxui %[[WAVE0]], %c1 : index
// SEP: %[[WAVEFLOATS:.+]] = arith.muli %[[WAVE]], %[[UNITFLOATS]] : index
// SEP: %[[WAVEBYTES0:.+]] = arith.muli %[[WAVEFLOATS]], %c4 : index
// SEP: %[[WAVEBYTES:.+]] = arith.maxui %[[WAVEBYTES0]], %c1 : index
// SEP: %[[WAVES0:.+]] = arith.divui %c268435456, %[[WAVEBYTES]] : index
// SEP: %[[WAVES:.+]] = arith.maxui %[[WAVES0]], %c1 : index
// SEP: %[[MOST:.+]] = arith.muli %[[WAVES]], %[[WAVE]] : index
// SEP: %[[CHUNKS0:.+]] = arith.ceildivui %[[UNITS]], %[[MOST]] : index
// SEP: %[[CHUNKS:.+]] = arith.maxui %[[CHUNKS0]], %c1 : index
// SEP: %[[CHUNK:.+]] = arith.ceildivui %[[UNITS]], %[[CHUNKS]] : index
// SEP: %[[STEP:.+]] = arith.maxui %[[CHUNK]], %c1 : index
// SEP: %[[ROWS:.+]] = arith.muli %[[CHUNK]], %c128 : index
// SEP: %[[PSTRIDE:.+]] = arith.muli %[[UKT]], %c4 : index
// SEP: %[[NP:.+]] = arith.muli %[[ROWS]], %[[PSTRIDE]] : index
// SEP: %[[PARTIALS:.+]] = memref.alloc(%[[NP]]) : memref<?xf32>
// SEP: %[[NM:.+]] = arith.muli %[[ROWS]], %[[UKT]] : index
// SEP: %[[MAXIMA:.+]] = memref.alloc(%[[NM]]) : memref<?xf32>
// SEP: %[[NS:.+]] = arith.muli %[[CHUNK]], %c256 : index
// SEP: %[[ROWSUMS:.+]] = memref.alloc(%[[NS]]) : memref<?xf32>
// SEP: scf.for %[[BEGIN:.+]] = %c0 to %[[UNITS]] step %[[STEP]] {
// SEP: %[[NEXT:.+]] = arith.addi %[[BEGIN]], %[[STEP]] : index
// SEP: %[[END:.+]] = arith.minui %[[UNITS]], %[[NEXT]] : index
// SEP: %[[COUNT:.+]] = arith.subi %[[END]], %[[BEGIN]] : index
// SEP: %[[CTAS:.+]] = arith.minui %[[COUNT]], %c264 : index
// The CTA's units (from the chunk's first, a grid apart), one or two tiles
// each (the second unless Q is odd and the unit is the middle tile).
// SEP: gpu.launch blocks(%[[BID:[^,]+]], {{.+}}) in (%{{.+}} = %[[CTAS]], {{.+}}) threads({{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_block_score_0_module) function(@unisparse_block_score_0) workgroup(%{{.+}} : memref<3x64x136xbf16, #gpu.address_space<workgroup>>) {
// SEP: %[[GRID:.+]] = gpu.grid_dim x
// SEP: %[[FIRST:.+]] = arith.addi %[[BEGIN]], %[[BID]] : index
// SEP: scf.for %[[UNIT:.+]] = %[[FIRST]] to %[[END]] step %[[GRID]] {
// SEP: %[[P:.+]] = arith.remui %[[UNIT]], %[[PAIRS]] : index
// SEP: %[[LAST:.+]] = arith.subi %[[QT]], %c1 : index
// SEP: %[[HEAVY:.+]] = arith.subi %[[LAST]], %[[P]] : index
// SEP: %[[TWO:.+]] = arith.cmpi ult, %[[P]], %[[HEAVY]] : index
// SEP: %[[TILES:.+]] = arith.select %[[TWO]], %c2, %c1 : index
// SEP: scf.for %{{.+}} = %c0 to %[[TILES]] step %c1 {
// Only the key stages in workgroup memory (above); the key loop carries
// the 4 row maxima and sums of the lane and the stage.
// SEP: scf.for {{.+}} -> (f32, f32, f32, f32, f32, f32, f32, f32, index) {
// SEP-NOT: math.exp2
// SEP: memref.store %{{.+}}, %[[PARTIALS]][%{{.+}}] : memref<?xf32>
// SEP: memref.store %{{.+}}, %[[MAXIMA]][%{{.+}}] : memref<?xf32>
// The tile ends with each row's 1 / sum (the quad's four shares added),
// then a barrier (the stages are reused), no score pass.
// SEP-COUNT-4: memref.store %{{.+}}, %[[ROWSUMS]][%{{.+}}] : memref<?xf32>
// SEP: gpu.barrier
// SEP-NEXT: }
// SEP-NEXT: }
// SEP-NEXT: gpu.terminator
// The chunk's epilogue: a CTA of 128 threads per query block of its units'
// tiles (2 tiles of 16 query blocks), no workgroup memory; a CTA of the
// second tile of an odd Q's middle unit, or past the last query block,
// does nothing. Per row of the block its final max and 1 / sum.
// SEP: %[[COUNT2:.+]] = arith.subi %[[END]], %[[BEGIN]] : index
// SEP: %[[BLOCKS:.+]] = arith.muli %[[COUNT2]], %c32 : index
// SEP: gpu.launch blocks(%[[EBID:[^,]+]], {{.+}}) in (%{{.+}} = %[[BLOCKS]], {{.+}}) threads(%[[TID:[^,]+]], {{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_block_score_epilogue_0_module) function(@unisparse_block_score_epilogue_0) {
// SEP: %[[SLOT:.+]] = arith.divui %[[EBID]], %c32 : index
// SEP: %[[EUNIT:.+]] = arith.addi %[[BEGIN]], %[[SLOT]] : index
// SEP: scf.if %{{.+}} {
// SEP-COUNT-8: memref.load %[[ROWSUMS]]
// SEP-NOT: gpu.barrier
// A thread per key tile of the row: the 8 query composites' shares of its
// 4 blocks summed where the tile was walked, else 0 (every row's tile max
// and 16-byte load of partial sums first); each block stored if inside NBk.
// SEP: scf.for %[[KT:.+]] = %[[TID]] to %{{.+}} step %c128 {
// SEP: %[[TS:.+]]:4 = scf.if %{{.+}} -> (f32, f32, f32, f32) {
// SEP-COUNT-8: vector.load %[[PARTIALS]][%{{.+}}] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// SEP: } else {
// SEP-NEXT: scf.yield %cst{{.*}}, %cst{{.*}}, %cst{{.*}}, %cst{{.*}} : f32, f32, f32, f32
// SEP-NEXT: }
// SEP: memref.store %[[TS]]#0, %[[S]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<1x8x?x?xf32>
// SEP: memref.store %[[TS]]#3, %[[S]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<1x8x?x?xf32>
// SEP: gpu.terminator
// SEP-NEXT: }
// SEP-NEXT: }
// SEP-NEXT: memref.dealloc %[[PARTIALS]]
// SEP: memref.dealloc %[[MAXIMA]]
// SEP: memref.dealloc %[[ROWSUMS]]
// scratch-bytes=0: one chunk of every unit (the scratch grows as N * NBk).
// UNBOUNDED-LABEL: func.func @score(
// UNBOUNDED: %[[PAIRS:.+]] = arith.divui %{{.+}}, %c2 : index
// UNBOUNDED: %[[UNITS:.+]] = arith.muli %[[PAIRS]], %c8 : index
// UNBOUNDED-NOT: arith.ceildivui
// UNBOUNDED: %[[STEP:.+]] = arith.maxui %[[UNITS]], %c1 : index
// UNBOUNDED: %[[ROWS:.+]] = arith.muli %[[PAIRS]], %c1024 : index
// UNBOUNDED: memref.alloc
// UNBOUNDED: memref.alloc
// UNBOUNDED: scf.for %{{.+}} = %c0 to %[[UNITS]] step %[[STEP]] {
func.func @score(%qc: memref<1x8x?x128xbf16>, %kc: memref<1x8x?x128xbf16>, %s: memref<1x8x?x?xf32>) {
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
      ins(%qc, %kc : memref<1x8x?x128xbf16>, memref<1x8x?x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

// A max over the query composites of a block (query_reduce = max), f16
// composites, key blocks of 4 composites (block 64, c_k 16): half an n8
// tile per block, summed by one shuffle.
// CHECK-LABEL: func.func @max_f16(
// CHECK: nvvm.mma.sync {{.+}} : (vector<2xf16>, vector<2xf16>, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// CHECK: arith.maximumf
// With the separate epilogue the max over the block's composites is taken
// there. Non-causal, a unit is one CTA tile (Q per head, all of Tk's key
// tiles in its slot; 4 partial sums of blocks of 4 composites per key
// tile), and the epilogue has a CTA per query block of the chunk's tiles
// (32 each).
// SEP-LABEL: func.func @max_f16(
// SEP: %[[QT:.+]] = arith.divui %{{.+}}, %c128 : index
// SEP: %[[KT:.+]] = arith.divui %{{.+}}, %c64 : index
// SEP: %[[UNITS:.+]] = arith.muli %[[QT]], %c8 : index
// SEP: %[[UNITFLOATS:.+]] = arith.muli %[[KT]], %c2176 : index
// SEP: scf.for %[[BEGIN:.+]] = %c0 to %[[UNITS]] step %{{.+}} {
// SEP: %[[END:.+]] = arith.minui %[[UNITS]], %{{.+}} : index
// SEP: function(@unisparse_block_score_0)
// SEP-NOT: arith.maximumf
// SEP: gpu.terminator
// SEP-NEXT: }
// SEP-NEXT: %[[COUNT:.+]] = arith.subi %[[END]], %[[BEGIN]] : index
// SEP-NEXT: %[[BLOCKS:.+]] = arith.muli %[[COUNT]], %c32 : index
// SEP: gpu.launch blocks(%{{[^,]+}}, {{.+}}) in (%{{.+}} = %[[BLOCKS]], {{.+}}) {{.+}} function(@unisparse_block_score_epilogue_0)
// SEP: arith.maximumf
func.func @max_f16(%qc: memref<2x4x?x64xf16>, %kc: memref<2x4x?x64xf16>, %s: memref<2x4x?x?xf32>) {
  unisparse.block_score {block = 64 : i64, c_q = 16 : i64, c_k = 16 : i64, causal = false,
                         query_reduce = #unisparse.query_reduce<max>}
      ins(%qc, %kc : memref<2x4x?x64xf16>, memref<2x4x?x64xf16>) outs(%s : memref<2x4x?x?xf32>)
  return
}

// -----

// Key composites shared by kv_group = 4 head groups (GQA, pooled once per kv
// head): a tile of head group g copies its key tiles from key head g / 4.
// CHECK-LABEL: func.func @shared_keys(
// CHECK-SAME: %{{[^:]+}}: memref<1x8x?x128xbf16>, %[[KC:[^:]+]]: memref<1x2x?x128xbf16>
// CHECK: scf.for %{{.+}} step %grid_dim_x {
// CHECK: %[[G:.+]] = arith.remui %{{.+}}, %c8 : index
// CHECK-NEXT: %[[KH:.+]] = arith.divui %[[G]], %c4 : index
// CHECK: memref.subview %[[KC]][%{{.+}}, %[[KH]], 0, 0] [1, 1, 64, 128]
// CHECK: nvgpu.device_async_copy %[[KC]][%{{.+}}, %[[KH]], %{{.+}}, %{{.+}}]
func.func @shared_keys(%qc: memref<1x8x?x128xbf16>, %kc: memref<1x2x?x128xbf16>, %s: memref<1x8x?x?xf32>) {
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64, kv_group = 4 : i64}
      ins(%qc, %kc : memref<1x8x?x128xbf16>, memref<1x2x?x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}
