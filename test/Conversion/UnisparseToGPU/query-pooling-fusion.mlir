// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu --canonicalize | FileCheck %s
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="fuse-query-pooling=false" --canonicalize | FileCheck %s --check-prefix=OFF
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="prefetch-queries=false" --canonicalize | FileCheck %s --check-prefix=NOPF

// The mean estimator's query composites written by a compress only for the
// scoring: the scoring kernel pools them from the raw queries itself. One
// compress launch is left (the keys'), the query composites' buffer is
// gone, and the scoring kernel has a query tile in workgroup memory.
// CHECK-LABEL: func.func @fused(
// CHECK-SAME: %[[Q:[^:]+]]: memref<1x8x?x128xbf16>, %[[K:[^:]+]]: memref<1x2x?x128xbf16>
// CHECK-NOT: memref.alloc{{.+}} : memref<1x8x?x128xbf16>
// CHECK: memref.alloc{{.+}} : memref<1x2x?x128xbf16>
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_0)
// CHECK: vector.load %[[K]]
// CHECK-NOT: @unisparse_compress_1
// CHECK: gpu.launch {{.+}} function(@unisparse_block_score_0) workgroup(%{{.+}} : memref<3x64x136xbf16, #gpu.address_space<workgroup>>, %[[TILE:.+]] : memref<128x136xbf16, #gpu.address_space<workgroup>>)
// CHECK: %[[FLAT:.+]] = memref.collapse_shape %[[TILE]] {{\[\[}}0, 1]] : memref<128x136xbf16, #gpu.address_space<workgroup>> into memref<17408xbf16, #gpu.address_space<workgroup>>
// Per tile, after the first two key tiles' copies are issued: a tile of
// whole composites (and 16-byte aligned rows: N, else 0, from the host)
// has its 128 x 16 raw query rows prefetched into L2 (32 lines a thread).
// CHECK: nvgpu.device_async_create_group
// CHECK: nvgpu.device_async_create_group
// CHECK: %[[WHOLE:.+]] = arith.cmpi ule, %{{.+}}, %{{.+}} : index
// CHECK: scf.if %[[WHOLE]] {
// CHECK: memref.extract_aligned_pointer_as_index %[[Q]]
// CHECK: scf.for %{{.+}} = %c0 to %c32 step %c1 {
// CHECK: nvvm.prefetch level = {{ *}}L2, %{{.+}} : !llvm.ptr<1>
// Every warp has read the previous tile's composites.
// CHECK: gpu.barrier
// Whole tiles: 8 rounds of 2 chunks (16 bytes of 8 query heads' rows)
// a thread, the 32 loads of a round before its adds, f32 sums, the mean
// (a constant count), rounded once, stored to the tile.
// CHECK: scf.if %[[WHOLE]] {
// CHECK: scf.for %{{.+}} = %c0 to %c8 step %c1 {
// CHECK-COUNT-32: vector.load %[[Q]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] {alignment = 16 : i64} : memref<1x8x?x128xbf16>, vector<8xbf16>
// CHECK: arith.addf %{{.+}} : vector<8xf32>
// CHECK: arith.divf %{{.+}}, %cst{{.*}} : vector<8xf32>
// CHECK: arith.truncf %{{.+}} : vector<8xf32> to vector<8xbf16>
// CHECK: vector.store %{{.+}}, %[[FLAT]][%{{.+}}] {alignment = 16 : i64} : memref<17408xbf16, #gpu.address_space<workgroup>>, vector<8xbf16>
// CHECK: vector.store %{{.+}}, %[[FLAT]][%{{.+}}] {alignment = 16 : i64}
// The last tile of a head (aligned): token indices clamped to N - 1, the
// tokens past N left out by a select, the count of tokens there are, rows
// past Tq zero.
// CHECK: } else {
// CHECK: scf.if %{{.+}} {
// CHECK: scf.for %{{.+}} = %c0 to %c8 step %c1 {
// CHECK: arith.minui
// CHECK: vector.load %[[Q]][{{.+}}] {alignment = 16 : i64} : memref<1x8x?x128xbf16>, vector<8xbf16>
// CHECK: arith.select %{{.+}}, %{{.+}}, %{{.+}} : vector<8xf32>
// CHECK: arith.uitofp
// CHECK: arith.select %{{.+}}, %{{.+}}, %{{.+}} : vector<8xbf16>
// Unaligned queries: a chunk at a time, a loop over its tokens with
// element-aligned loads.
// CHECK: } else {
// CHECK: scf.for %{{.+}} = %c0 to %c16 step %c1 {
// CHECK: scf.for {{.+}} iter_args(%{{.+}} = %{{.+}}) -> (vector<8xf32>) {
// CHECK: vector.load %[[Q]][{{.+}}] : memref<1x8x?x128xbf16>, vector<8xbf16>
// Then the A fragments from the tile: 2 m16 tiles x 8 k steps.
// CHECK: gpu.barrier
// CHECK-COUNT-16: nvgpu.ldmatrix %[[FLAT]][%{{.+}}] {numTiles = 4 : i32, transpose = false}
// CHECK: nvvm.mma.sync
// CHECK-NOT: unisparse.compress
// CHECK-NOT: memref.dealloc %{{.+}} : memref<1x8x?x128xbf16>

// The option off: today's form, both compress kernels and the scoring
// kernel's A fragments loaded from the composites.
// OFF-LABEL: func.func @fused(
// OFF: %[[QC:.+]] = memref.alloc{{.+}} : memref<1x8x?x128xbf16>
// OFF: function(@unisparse_compress_0)
// OFF: function(@unisparse_compress_1)
// OFF: function(@unisparse_block_score_0) workgroup(%{{.+}} : memref<3x64x136xbf16, #gpu.address_space<workgroup>>) {
// OFF-NOT: nvvm.prefetch
// OFF-COUNT-64: vector.load %[[QC]]{{.+}} : memref<1x8x?x128xbf16>, vector<2xbf16>
// OFF: memref.dealloc %[[QC]]

// NOPF-LABEL: func.func @fused(
// NOPF: function(@unisparse_block_score_0) workgroup(%{{.+}} : memref<3x64x136xbf16, #gpu.address_space<workgroup>>, %{{.+}} : memref<128x136xbf16, #gpu.address_space<workgroup>>)
// NOPF-NOT: nvvm.prefetch
// NOPF: nvgpu.ldmatrix
func.func @fused(%q: memref<1x8x?x128xbf16>, %k: memref<1x2x?x128xbf16>, %s: memref<1x8x?x?xf32>) {
  %c2 = arith.constant 2 : index
  %n = memref.dim %q, %c2 : memref<1x8x?x128xbf16>
  %t = affine.apply affine_map<()[s0] -> (s0 ceildiv 16)>()[%n]
  %tk = affine.apply affine_map<()[s0] -> (s0 ceildiv 8)>()[%n]
  %qc = memref.alloc(%t) {alignment = 64 : i64} : memref<1x8x?x128xbf16>
  unisparse.compress {seq_factor = 16 : i64} ins(%q : memref<1x8x?x128xbf16>) outs(%qc : memref<1x8x?x128xbf16>)
  %kc = memref.alloc(%tk) {alignment = 64 : i64} : memref<1x2x?x128xbf16>
  unisparse.compress {seq_factor = 8 : i64} ins(%k : memref<1x2x?x128xbf16>) outs(%kc : memref<1x2x?x128xbf16>)
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64, kv_group = 4 : i64} ins(%qc, %kc : memref<1x8x?x128xbf16>, memref<1x2x?x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  memref.dealloc %qc : memref<1x8x?x128xbf16>
  memref.dealloc %kc : memref<1x2x?x128xbf16>
  return
}

// -----

// f32 queries pooled by pairs of heads (c_h = 2) into bf16, not causal,
// batch 2: chunks of 4 elements (16 bytes of f32), a round is one chunk's
// 2 x 16 loads (head g hf, then g hf + 1), 8-byte stores of 4 bf16.
// CHECK-LABEL: func.func @heads_f32(
// CHECK-SAME: %[[Q:[^:]+]]: memref<2x8x?x64xf32>
// CHECK-NOT: function(@unisparse_compress_1)
// CHECK: function(@unisparse_block_score_0) workgroup(%{{.+}} : memref<3x64x72xbf16, #gpu.address_space<workgroup>>, %[[TILE:.+]] : memref<128x72xbf16, #gpu.address_space<workgroup>>)
// CHECK: %[[FLAT:.+]] = memref.collapse_shape %[[TILE]]
// CHECK: scf.for %{{.+}} = %c0 to %c16 step %c1 {
// CHECK: %[[H0:.+]] = arith.muli %{{.+}}, %c2 : index
// CHECK-COUNT-16: vector.load %[[Q]][%{{.+}}, %[[H0]], %{{.+}}, %{{.+}}] {alignment = 16 : i64} : memref<2x8x?x64xf32>, vector<4xf32>
// CHECK: %[[H0B:.+]] = arith.muli %{{.+}}, %c2 : index
// CHECK-NEXT: %[[H1:.+]] = arith.addi %[[H0B]], %c1 : index
// CHECK-COUNT-16: vector.load %[[Q]][%{{.+}}, %[[H1]], %{{.+}}, %{{.+}}] {alignment = 16 : i64} : memref<2x8x?x64xf32>, vector<4xf32>
// CHECK: arith.truncf %{{.+}} : vector<4xf32> to vector<4xbf16>
// CHECK: vector.store %{{.+}}, %[[FLAT]][%{{.+}}] {alignment = 8 : i64} : memref<9216xbf16, #gpu.address_space<workgroup>>, vector<4xbf16>
// CHECK-NOT: unisparse.compress
func.func @heads_f32(%q: memref<2x8x?x64xf32>, %k: memref<2x2x?x64xf32>, %s: memref<2x4x?x?xf32>) {
  %c2 = arith.constant 2 : index
  %n = memref.dim %q, %c2 : memref<2x8x?x64xf32>
  %t = affine.apply affine_map<()[s0] -> (s0 ceildiv 16)>()[%n]
  %qc = memref.alloc(%t) {alignment = 64 : i64} : memref<2x4x?x64xbf16>
  unisparse.compress {seq_factor = 16 : i64, head_factor = 2 : i64} ins(%q : memref<2x8x?x64xf32>) outs(%qc : memref<2x4x?x64xbf16>)
  %kc = memref.alloc(%t) {alignment = 64 : i64} : memref<2x4x?x64xbf16>
  unisparse.compress {seq_factor = 16 : i64, head_factor = 2 : i64, kv_group = 4 : i64} ins(%k : memref<2x2x?x64xf32>) outs(%kc : memref<2x4x?x64xbf16>)
  unisparse.block_score {block = 64 : i64, c_q = 16 : i64, c_k = 16 : i64, causal = false} ins(%qc, %kc : memref<2x4x?x64xbf16>, memref<2x4x?x64xbf16>) outs(%s : memref<2x4x?x?xf32>)
  memref.dealloc %qc : memref<2x4x?x64xbf16>
  memref.dealloc %kc : memref<2x4x?x64xbf16>
  return
}

// -----

// Not fused: something between the compress and the scoring may write the
// queries (a copy into them), so the scoring reads the composites.
// CHECK-LABEL: func.func @written_between(
// CHECK: function(@unisparse_compress_0)
// CHECK: memref.copy
// CHECK: function(@unisparse_compress_1)
// CHECK: function(@unisparse_block_score_0) workgroup(%{{.+}} : memref<3x64x136xbf16, #gpu.address_space<workgroup>>) {
func.func @written_between(%q: memref<1x8x?x128xbf16>, %other: memref<1x8x?x128xbf16>, %k: memref<1x2x?x128xbf16>, %s: memref<1x8x?x?xf32>) {
  %c2 = arith.constant 2 : index
  %n = memref.dim %q, %c2 : memref<1x8x?x128xbf16>
  %t = affine.apply affine_map<()[s0] -> (s0 ceildiv 16)>()[%n]
  %qc = memref.alloc(%t) {alignment = 64 : i64} : memref<1x8x?x128xbf16>
  unisparse.compress {seq_factor = 16 : i64} ins(%q : memref<1x8x?x128xbf16>) outs(%qc : memref<1x8x?x128xbf16>)
  memref.copy %other, %q : memref<1x8x?x128xbf16> to memref<1x8x?x128xbf16>
  %kc = memref.alloc(%t) {alignment = 64 : i64} : memref<1x2x?x128xbf16>
  unisparse.compress {seq_factor = 16 : i64} ins(%k : memref<1x2x?x128xbf16>) outs(%kc : memref<1x2x?x128xbf16>)
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 16 : i64, kv_group = 4 : i64} ins(%qc, %kc : memref<1x8x?x128xbf16>, memref<1x2x?x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  memref.dealloc %qc : memref<1x8x?x128xbf16>
  memref.dealloc %kc : memref<1x2x?x128xbf16>
  return
}

// -----

// Not fused: the composites have another reader (here a copy out), so the
// compress must write them.
// CHECK-LABEL: func.func @read_elsewhere(
// CHECK: function(@unisparse_compress_0)
// CHECK: function(@unisparse_compress_1)
// CHECK: function(@unisparse_block_score_0) workgroup(%{{.+}} : memref<3x64x136xbf16, #gpu.address_space<workgroup>>) {
// CHECK: memref.copy
func.func @read_elsewhere(%q: memref<1x8x?x128xbf16>, %k: memref<1x2x?x128xbf16>, %s: memref<1x8x?x?xf32>, %out: memref<1x8x?x128xbf16>) {
  %c2 = arith.constant 2 : index
  %n = memref.dim %q, %c2 : memref<1x8x?x128xbf16>
  %t = affine.apply affine_map<()[s0] -> (s0 ceildiv 16)>()[%n]
  %qc = memref.alloc(%t) {alignment = 64 : i64} : memref<1x8x?x128xbf16>
  unisparse.compress {seq_factor = 16 : i64} ins(%q : memref<1x8x?x128xbf16>) outs(%qc : memref<1x8x?x128xbf16>)
  %kc = memref.alloc(%t) {alignment = 64 : i64} : memref<1x2x?x128xbf16>
  unisparse.compress {seq_factor = 16 : i64} ins(%k : memref<1x2x?x128xbf16>) outs(%kc : memref<1x2x?x128xbf16>)
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 16 : i64, kv_group = 4 : i64} ins(%qc, %kc : memref<1x8x?x128xbf16>, memref<1x2x?x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  memref.copy %qc, %out : memref<1x8x?x128xbf16> to memref<1x8x?x128xbf16>
  memref.dealloc %qc : memref<1x8x?x128xbf16>
  memref.dealloc %kc : memref<1x2x?x128xbf16>
  return
}

// -----

// Not fused: the antidiagonal estimators stream their query composites
// through the key loop's stages with the keys (a tile per slot and key
// tile), so their compress stays.
// CHECK-LABEL: func.func @antidiag(
// CHECK: function(@unisparse_compress_0)
// CHECK: function(@unisparse_compress_1)
// CHECK: function(@unisparse_block_score_0)
func.func @antidiag(%q: memref<1x8x?x128xbf16>, %k: memref<1x2x?x128xbf16>, %s: memref<1x8x?x?xf32>) {
  %c2 = arith.constant 2 : index
  %n = memref.dim %q, %c2 : memref<1x8x?x128xbf16>
  %t = affine.apply affine_map<()[s0] -> (s0 ceildiv 8)>()[%n]
  %qc = memref.alloc(%t) {alignment = 64 : i64} : memref<1x8x?x8x128xbf16>
  unisparse.compress {seq_factor = 8 : i64, pooling = #unisparse.pooling<concat_reversed>} ins(%q : memref<1x8x?x128xbf16>) outs(%qc : memref<1x8x?x8x128xbf16>)
  %kc = memref.alloc(%t) {alignment = 64 : i64} : memref<1x2x?x8x128xbf16>
  unisparse.compress {seq_factor = 8 : i64, pooling = #unisparse.pooling<concat>} ins(%k : memref<1x2x?x128xbf16>) outs(%kc : memref<1x2x?x8x128xbf16>)
  unisparse.block_score {block = 128 : i64, c_q = 8 : i64, c_k = 8 : i64, kv_group = 4 : i64, estimator = #unisparse.estimator<antidiag>} ins(%qc, %kc : memref<1x8x?x8x128xbf16>, memref<1x2x?x8x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  memref.dealloc %qc : memref<1x8x?x8x128xbf16>
  memref.dealloc %kc : memref<1x2x?x8x128xbf16>
  return
}
