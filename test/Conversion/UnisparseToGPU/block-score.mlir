// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=fused" --canonicalize | FileCheck %s
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=fused warps=8 key-tile=32 ctas=100" --canonicalize | FileCheck %s --check-prefix=KNOBS
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=fused warp-rows=16 min-ctas-per-sm=3" --canonicalize | FileCheck %s --check-prefix=ROWS16
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=separate" --canonicalize | FileCheck %s --check-prefix=SEP
// The default is the separate epilogue in bounded chunks.
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu --canonicalize | FileCheck %s --check-prefix=SEP
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="epilogue=separate scratch-bytes=0" --canonicalize | FileCheck %s --check-prefix=UNBOUNDED
// A key tile of 3 key blocks (48 composites of rk 16): the key loop stores a
// lane's 3 partial sums one by one (2-byte aligned); the epilogue reads a
// query block's 8 x 3 partial sums of a tile, contiguous in the key-tile-major
// scratch, as three 16-byte loads.
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="key-tile=48" --canonicalize | FileCheck %s --check-prefix=NARROW
// f32 partial sums (score-partials=f32): the key loop's 16-byte store of a
// lane's four, the epilogue's eight 16-byte loads of a block's 32.
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="partials=f32" --canonicalize | FileCheck %s --check-prefix=F32

// NARROW-LABEL: func.func @score(
// NARROW: function(@unisparse_block_score_0)
// NARROW-COUNT-3: vector.store %{{.+}}, %{{.+}}[%{{.+}}] {alignment = 2 : i64} : memref<?xf16>, vector<1xf16>
// NARROW: function(@unisparse_block_score_epilogue_0)
// NARROW-COUNT-3: vector.load %{{.+}}[%{{.+}}] {alignment = 16 : i64} : memref<?xf16>, vector<8xf16>
// NARROW-NOT: vector.load %{{.+}} : memref<?xf16>
// NARROW: scf.yield

// F32-LABEL: func.func @score(
// F32: %[[PARTIALS:.+]] = memref.alloc(%{{.+}}) : memref<?xf32>
// F32: function(@unisparse_block_score_0)
// F32: vector.store %{{.+}}, %[[PARTIALS]][%{{.+}}] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// F32: function(@unisparse_block_score_epilogue_0)
// F32-COUNT-8: vector.load %[[PARTIALS]][%{{.+}}] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>

// The buffer form of block_score (16-bit composites) becomes the persistent
// tensor-core kernel: a scratch slot per CTA (f16 partial sums [key tiles,
// rows, blocks per key tile], maxima [key tiles, rows]), the scoring launch
// and the deallocations. The [Tq, Tk] map is never allocated.
// CHECK-LABEL: func.func @score(
// CHECK-SAME: %[[QC:[^:]+]]: memref<1x8x?x128xbf16>, %[[KC:[^:]+]]: memref<1x8x?x128xbf16>, %[[S:[^:]+]]: memref<1x8x?x?xf32>)
// 128-row CTA tiles of query composites over (batch, head group); 264 CTAs at most.
// CHECK: %[[QT:.+]] = arith.divui %{{.+}}, %c128 : index
// CHECK: %[[TILES:.+]] = arith.muli %[[QT]], %c8 : index
// CHECK: %[[KT:.+]] = arith.divui %{{.+}}, %c64 : index
// CHECK: %[[CTAS:.+]] = arith.minui %[[TILES]], %c264 : index
// CHECK: %[[PARTIALS:.+]] = memref.alloc(%{{.+}}) : memref<?xf16>
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
// The loop carries the running maxima of the lane's 4 rows, its own row's
// running sum and the stage.
// CHECK: scf.for %[[KT:.+]] = %c0 to %{{.+}} step %c1 iter_args({{.+}}, %[[STAGE:.+]] = %c0) -> (f32, f32, f32, f32, f32, index) {
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
// integer, one FMA and ex2.approx.ftz per element. The block sums as a
// reduce-scatter over the quad by rows (8 pairs across xor 1, then 4 across
// xor 2): each lane ends with the four blocks of its own row and stores
// them as one 8-byte vector of f16. Its own row's running sum is rescaled
// by an exact power of two from the exponent bits (no ex2) in one FMA, and
// each lane stores its own row's max.
// CHECK: %[[WHOLE:.+]] = arith.cmpi ule
// CHECK: scf.if %[[WHOLE]] -> (f32, f32, f32, f32, f32) {
// CHECK-NOT: arith.cmpi sge
// CHECK: gpu.shuffle xor %{{.+}}, %c1_i32, %c32_i32 : f32
// CHECK: gpu.shuffle xor %{{.+}}, %c2_i32, %c32_i32 : f32
// CHECK: math.ceil
// CHECK: math.fma
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.ftz.f"(%{{.+}}) : (f32) -> f32
// CHECK: %[[KEEP:.+]] = arith.select %[[BIT0:.+]], %{{.+}}, %{{.+}} : f32
// CHECK-NEXT: %[[SEND:.+]] = arith.select %[[BIT0]], %{{.+}}, %{{.+}} : f32
// CHECK-NEXT: %[[GOT:.+]], %{{.+}} = gpu.shuffle xor %[[SEND]], %c1_i32, %c32_i32 : f32
// CHECK-NEXT: arith.addf %[[KEEP]], %[[GOT]] : f32
// CHECK-COUNT-7: gpu.shuffle xor %{{.+}}, %c1_i32, %c32_i32 : f32
// CHECK-COUNT-4: gpu.shuffle xor %{{.+}}, %c2_i32, %c32_i32 : f32
// CHECK: %[[OWN:.+]] = vector.from_elements %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} : vector<4xf16>
// CHECK-NEXT: vector.store %[[OWN]], %[[PARTIALS]][%{{.+}}] {alignment = 8 : i64} : memref<?xf16>, vector<4xf16>
// CHECK-NOT: llvm.call_intrinsic
// CHECK: %[[D:.+]] = arith.subf
// CHECK-NEXT: %[[CLAMPED:.+]] = arith.maxnumf %[[D]], %cst{{.*}} : f32
// CHECK-NEXT: %[[SHIFTED:.+]] = arith.addf %[[CLAMPED]], %cst{{.*}} : f32
// CHECK-NEXT: %[[BITS:.+]] = arith.bitcast %[[SHIFTED]] : f32 to i32
// CHECK-NEXT: %[[EXP:.+]] = arith.shli %[[BITS]], %c23_i32 : i32
// CHECK-NEXT: %[[FACTOR:.+]] = arith.bitcast %[[EXP]] : i32 to f32
// CHECK-NEXT: math.fma %{{.+}}, %[[FACTOR]], %{{.+}} : f32
// CHECK-NOT: %[[PARTIALS]]
// CHECK: memref.store %{{.+}}, %[[MAXIMA]][%{{.+}}] : memref<?xf32>
// CHECK-NEXT: scf.yield
// The other tiles mask each element against its row's last key.
// CHECK: } else {
// CHECK: arith.cmpi sge, %{{.+}}, %c{{[0-9]+}}_i32 : i32
// CHECK: vector.store %{{.+}}, %[[PARTIALS]][%{{.+}}] {alignment = 8 : i64} : memref<?xf16>, vector<4xf16>
// CHECK: memref.store %{{.+}}, %[[MAXIMA]][%{{.+}}] : memref<?xf32>
// The next tile's stage.
// CHECK: %[[LAST:.+]] = arith.cmpi eq, %[[STAGE]], %c2 : index
// CHECK: arith.select %[[LAST]], %c0, %{{.+}} : index
// The tile's scores: rescaled partial sums summed over the 8 query composites
// of each query block (each lane stores its own row's final max and 1 / sum
// first).
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
// f16 partial sums and one f32 max per row and key tile: 1536 bytes per
// key tile, plus 256 f32 row sums); per chunk the scoring launch (a CTA per
// unit, at most 264) and the epilogue launch.
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
// SEP: %[[SLOTBYTES:.+]] = arith.muli %[[UKT]], %c1536 : index
// SEP: %[[UNITBYTES:.+]] = arith.addi %[[SLOTBYTES]], %c1024 : index
// SEP: %[[WAVE0:.+]] = arith.minui %[[UNITS]], %c264 : index
// SEP: %[[WAVE:.+]] = arith.maxui %[[WAVE0]], %c1 : index
// SEP: %[[WAVEBYTES0:.+]] = arith.muli %[[WAVE]], %[[UNITBYTES]] : index
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
// SEP: %[[PARTIALS:.+]] = memref.alloc(%[[NP]]) : memref<?xf16>
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
// the 4 row maxima of the lane, its own row's sum and the stage.
// SEP: scf.for {{.+}} -> (f32, f32, f32, f32, f32, index) {
// SEP-NOT: math.exp2
// SEP: vector.store %{{.+}}, %[[PARTIALS]][%{{.+}}] {alignment = 8 : i64} : memref<?xf16>, vector<4xf16>
// SEP: memref.store %{{.+}}, %[[MAXIMA]][%{{.+}}] : memref<?xf32>
// The tile ends with 1 / the sum of each lane's own row (one store a lane),
// then a barrier (the stages are reused), no score pass.
// SEP: memref.store %{{.+}}, %[[ROWSUMS]][%{{.+}}] : memref<?xf32>
// SEP-NOT: %[[ROWSUMS]]
// SEP: gpu.barrier
// SEP-NEXT: }
// SEP-NEXT: }
// SEP-NEXT: gpu.terminator
// The chunk's epilogue: a CTA of 128 threads per query block of its units'
// tiles (2 tiles of 16 query blocks), no workgroup memory; a CTA of the
// second tile of an odd Q's middle unit, or past the last query block,
// does nothing. The block's rows' final maxima and 1 / sums: 8 contiguous
// values each, two 16-byte loads.
// SEP: %[[COUNT2:.+]] = arith.subi %[[END]], %[[BEGIN]] : index
// SEP: %[[BLOCKS:.+]] = arith.muli %[[COUNT2]], %c32 : index
// SEP: gpu.launch blocks(%[[EBID:[^,]+]], {{.+}}) in (%{{.+}} = %[[BLOCKS]], {{.+}}) threads(%[[TID:[^,]+]], {{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_block_score_epilogue_0_module) function(@unisparse_block_score_epilogue_0) {
// SEP: %[[SLOT:.+]] = arith.divui %[[EBID]], %c32 : index
// SEP: %[[EUNIT:.+]] = arith.addi %[[BEGIN]], %[[SLOT]] : index
// SEP: scf.if %{{.+}} {
// SEP-COUNT-2: vector.load %[[MAXIMA]][%{{.+}}] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// SEP-COUNT-2: vector.load %[[ROWSUMS]][%{{.+}}] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// SEP-NOT: gpu.barrier
// A block whose rows all lie inside Tq takes them without a select.
// SEP: %[[ALL:.+]] = arith.cmpi ule, %{{.+}}, %{{.+}} : index
// SEP: scf.if %[[ALL]] {
// A thread per key tile of the row: the 8 query composites' shares of its
// 4 blocks summed where the tile was walked, else 0 (the block's 8 tile
// maxima and 32 f16 partial sums of the tile, contiguous: six 16-byte
// loads, all first; a coefficient per row, one FMA per share); each block
// stored if inside NBk.
// SEP: scf.for %[[KT:.+]] = %[[TID]] to %{{.+}} step %c128 {
// SEP: %[[TS:.+]]:4 = scf.if %{{.+}} -> (f32, f32, f32, f32) {
// SEP-COUNT-2: vector.load %[[MAXIMA]][%{{.+}}] {alignment = 16 : i64} : memref<?xf32>, vector<4xf32>
// SEP-COUNT-4: vector.load %[[PARTIALS]][%{{.+}}] {alignment = 16 : i64} : memref<?xf16>, vector<8xf16>
// SEP-NOT: arith.select
// SEP-COUNT-32: math.fma
// SEP: } else {
// SEP-NEXT: scf.yield %cst{{.*}}, %cst{{.*}}, %cst{{.*}}, %cst{{.*}} : f32, f32, f32, f32
// SEP-NEXT: }
// SEP: memref.store %[[TS]]#0, %[[S]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<1x8x?x?xf32>
// SEP: memref.store %[[TS]]#3, %[[S]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<1x8x?x?xf32>
// The last block of a head: rows past Tq dropped by a select.
// SEP: } else {
// SEP: scf.for
// SEP-COUNT-4: vector.load %[[PARTIALS]]
// SEP: arith.select
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
// tile: 128 x (16 x 2 + 4) bytes), and the epilogue has a CTA per query block of the chunk's tiles
// (32 each).
// SEP-LABEL: func.func @max_f16(
// SEP: %[[QT:.+]] = arith.divui %{{.+}}, %c128 : index
// SEP: %[[KT:.+]] = arith.divui %{{.+}}, %c64 : index
// SEP: %[[UNITS:.+]] = arith.muli %[[QT]], %c8 : index
// SEP: %[[UNITBYTES:.+]] = arith.muli %[[KT]], %c4608 : index
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

// -----

// A view of the composites is taken when its rows stay 16-byte aligned
// (the key tiles' cp.async copies, the query composites' 16-byte loads): a
// static offset of 64 elements and static strides that are multiples of 8
// bf16 values; the copies index the view.
// CHECK-LABEL: func.func @aligned_view(
// CHECK-SAME: %{{[^:]+}}: memref<1x8x?x128xbf16>, %[[KV:[^:]+]]: memref<1x8x64x128xbf16, strided<[65536, 8192, 128, 1], offset: 64>>
// CHECK: %[[KTILE:.+]] = memref.subview %[[KV]]
// CHECK: nvgpu.device_async_copy %[[KTILE]][
func.func @aligned_view(%qc: memref<1x8x?x128xbf16>, %kc: memref<1x8x64x128xbf16, strided<[65536, 8192, 128, 1], offset: 64>>, %s: memref<1x8x?x?xf32>) {
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
      ins(%qc, %kc : memref<1x8x?x128xbf16>, memref<1x8x64x128xbf16, strided<[65536, 8192, 128, 1], offset: 64>>) outs(%s : memref<1x8x?x?xf32>)
  return
}
