// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu --canonicalize | FileCheck %s

// The outlier compress kernels (OutlierCompressKernel.cpp): the query
// composites of the outlier estimator (c_q = 16, one far row, the spread),
// bf16 in, f32 out, D = 128. The center in two stages: a CTA of 256 threads
// per (batch, group, split of max(ceil(N / 128), 256) tokens), 16 rows of 16
// threads (8 head-dim elements a thread): row r sums the split's tokens r, r
// + 16, ... in f32, ascending: whole groups of 8 tokens (8 unclamped 16-byte
// loads, bf16 pairs widened by a shift and a mask), then one group clamped
// to the row's last token with the adds past it masked; the rows' sums meet
// in workgroup memory and thread d < 128 adds them in row order; a CTA of 32
// warps per (batch, group, 32 coordinates) sums the splits (warp w: splits
// w, w + 32, ... in order, a lane a coordinate; then warp 0 adds the warps'
// sums in order from workgroup memory) and divides by N. Then a warp
// per (batch, composite, group), 4 coordinates a lane.
// One group a warp (the queries: rep 1), so no register hint.
// CHECK: module {
// CHECK-LABEL: func.func @queries(
// CHECK-SAME: %[[Q:[^:]+]]: memref<1x8x?x128xbf16>, %[[QC:[^:]+]]: memref<1x8x?x3x128xf32>)
// CHECK: %[[N:.+]] = memref.dim %[[Q]], %c2
// CHECK: %[[PER:.+]] = arith.maxui %{{.+}}, %c256 : index
// CHECK: %[[PARTIAL:.+]] = memref.alloc(%{{.+}}) : memref<1x8x?x128xf32>
// CHECK: gpu.launch {{.+}} threads(%[[STID:[^,]+]], {{.+}}) in (%{{.+}} = %c256, {{.+}}) module(@unisparse_compress_outlier_partial_sums_0_module) function(@unisparse_compress_outlier_partial_sums_0) workgroup(%[[ROWS:.+]] : memref<16x128xf32, #gpu.address_space<workgroup>>) {
// CHECK: %[[ROW:.+]] = arith.divui %[[STID]], %c16 : index
// CHECK-NEXT: %[[CHUNK:.+]] = arith.remui %[[STID]], %c16 : index
// CHECK-NEXT: %[[D:.+]] = arith.muli %[[CHUNK]], %c8 : index
// CHECK-NEXT: %[[SPLIT0:.+]] = arith.muli %{{.+}}, %[[PER]] : index
// CHECK-NEXT: %[[FIRST:.+]] = arith.addi %[[SPLIT0]], %[[ROW]] : index
// CHECK: scf.for %[[I:.+]] = %c0 to %{{.+}} step %c8 iter_args(%{{.+}} = %{{.+}}) -> (vector<8xf32>) {
// CHECK-NEXT: %[[OFF:.+]] = arith.muli %[[I]], %c16 : index
// CHECK-NEXT: %[[TOK:.+]] = arith.addi %[[FIRST]], %[[OFF]] : index
// CHECK-NEXT: %[[X:.+]] = vector.load %[[Q]][%{{.+}}, %{{.+}}, %[[TOK]], %[[D]]] {alignment = 16 : i64} : memref<1x8x?x128xbf16>, vector<8xbf16>
// CHECK: %[[W:.+]] = vector.bitcast %[[X]] : vector<8xbf16> to vector<4xi32>
// CHECK: %[[LO:.+]] = arith.shli %[[W]], %{{.+}} : vector<4xi32>
// CHECK: %[[HI:.+]] = arith.andi %[[W]], %{{.+}} : vector<4xi32>
// CHECK: %[[LH:.+]] = vector.interleave %[[LO]], %[[HI]] : vector<4xi32> -> vector<8xi32>
// CHECK: vector.bitcast %[[LH]] : vector<8xi32> to vector<8xf32>
// CHECK-COUNT-7: vector.load %[[Q]][{{.+}}] {alignment = 16 : i64} : memref<1x8x?x128xbf16>, vector<8xbf16>
// CHECK-NOT: arith.select
// CHECK: scf.yield
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c8 iter_args(%{{.+}} = %{{.+}}) -> (vector<8xf32>) {
// CHECK: arith.minui
// CHECK-COUNT-8: vector.load %[[Q]][{{.+}}] {alignment = 16 : i64} : memref<1x8x?x128xbf16>, vector<8xbf16>
// CHECK: arith.select %{{.+}}, %{{.+}}, %{{.+}} : vector<8xf32>
// CHECK: } else {
// CHECK: vector.load %[[Q]][{{.+}}] : memref<1x8x?x128xbf16>, vector<8xbf16>
// CHECK: vector.store %{{.+}}, %[[ROWS]][%[[ROW]], %[[D]]] : memref<16x128xf32, #gpu.address_space<workgroup>>, vector<8xf32>
// CHECK-NEXT: gpu.barrier
// CHECK-NEXT: %[[INDIM:.+]] = arith.cmpi ult, %[[STID]], %c128 : index
// CHECK-NEXT: scf.if %[[INDIM]] {
// CHECK-NEXT: memref.load %[[ROWS]][%c0, %[[STID]]]
// CHECK-COUNT-15: memref.load %[[ROWS]][%c{{[0-9]+}}, %[[STID]]]
// CHECK: memref.store %{{.+}}, %[[PARTIAL]][%{{.+}}, %{{.+}}, %{{.+}}, %[[STID]]] : memref<1x8x?x128xf32>
// CHECK: %[[CENTER:.+]] = memref.alloc() : memref<1x8x128xf32>
// CHECK: gpu.launch blocks({{.+}}) in (%{{.+}} = %c32, {{.+}}) threads(%[[TID:[^,]+]], {{.+}}) in (%{{.+}} = %c1024, {{.+}}) module(@unisparse_compress_outlier_center_0_module) function(@unisparse_compress_outlier_center_0) workgroup(%[[PARTS:.+]] : memref<32x32xf32, #gpu.address_space<workgroup>>) {
// CHECK: %[[WARP:.+]] = arith.divui %[[TID]], %c32 : index
// CHECK: %[[CLANE:.+]] = arith.remui %[[TID]], %c32 : index
// CHECK: %[[CD:.+]] = arith.addi %{{.+}}, %[[CLANE]] : index
// CHECK: scf.for %{{.+}} = %c0 to %{{.+}} step %c16 iter_args(%{{.+}} = %{{.+}}) -> (f32) {
// CHECK-COUNT-16: memref.load %[[PARTIAL]][%{{.+}}, %{{.+}}, %{{.+}}, %[[CD]]]
// CHECK: memref.store %{{.+}}, %[[PARTS]][%[[WARP]], %[[CLANE]]]
// CHECK-NEXT: gpu.barrier
// CHECK-NEXT: %[[W0:.+]] = arith.cmpi eq, %[[WARP]], %c0 : index
// CHECK-NEXT: scf.if %[[W0]] {
// CHECK-COUNT-32: memref.load %[[PARTS]]
// CHECK: arith.divf %{{.+}}, %{{.+}} : f32
// CHECK: memref.store %{{.+}}, %[[CENTER]]
// CHECK: memref.dealloc %[[PARTIAL]]
// 8-byte loads of a lane's coordinates and 16-byte stores of its slots
// where the host finds the rows aligned for them.
// CHECK: memref.extract_aligned_pointer_as_index %[[Q]]
// CHECK: memref.extract_aligned_pointer_as_index %[[QC]]
// CHECK: gpu.launch {{.+}} threads(%[[TID:[^,]+]], {{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_compress_outlier_0_module) function(@unisparse_compress_outlier_0) {
// CHECK: %[[LANE:.+]] = arith.remui %[[TID]], %c32 : index
// CHECK: scf.if %[[ALIGNED:.+]] {
// A composite with all its 16 tokens (16 (t + 1) <= N, the same in the
// whole warp): static token offsets, no clamps or validity tests.
// CHECK: %[[END:.+]] = arith.muli %{{.+}}, %c16 : index
// CHECK: %[[FULL:.+]] = arith.cmpi ule, %[[END]], %[[N]] : index
// CHECK: scf.if %[[FULL]] {
// CHECK: %[[D:.+]] = arith.muli %[[LANE]], %c4 : index
// CHECK: %[[LT:.+]] = arith.shrui %[[LANE]], %c2 : index
// CHECK: arith.andi %[[LT]], %c7 : index
// CHECK: vector.load %[[CENTER]][%{{.+}}, %{{.+}}, %[[D]]] {alignment = 16 : i64} : memref<1x8x128xf32>, vector<4xf32>
// Scores, 8 tokens at a time: their loads, per token |x - center|^2 over
// the lane's 4 coordinates (products fused), then a reduce-scatter over the
// warp: 4 + 2 + 1 exchanges halving the tokens (the lanes with bit 16, 8,
// 4 set keep the upper half), then xor 2 and 1, so that lane l holds token
// (l >> 2) & 7 of the 8.
// CHECK-COUNT-8: vector.load %[[Q]][{{.+}}] {alignment = 8 : i64} : memref<1x8x?x128xbf16>, vector<4xbf16>
// CHECK: arith.subf %{{.+}}, %{{.+}} : vector<4xf32>
// CHECK: math.fma %{{.+}}, %{{.+}}, %{{.+}} : f32
// CHECK: %[[B16:.+]] = arith.andi %[[LANE]], %c16 : index
// CHECK: %[[HI16:.+]] = arith.cmpi ne, %[[B16]], %c0 : index
// CHECK: arith.select %[[HI16]], %{{.+}}, %{{.+}} : f32
// CHECK-COUNT-4: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK-COUNT-2: gpu.shuffle  xor %{{.+}}, %c8_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c4_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c2_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c1_i32, %c32_i32 : f32
// The second 8 tokens.
// CHECK-COUNT-8: vector.load %[[Q]][{{.+}}] {alignment = 8 : i64} : memref<1x8x?x128xbf16>, vector<4xbf16>
// CHECK-COUNT-4: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c1_i32, %c32_i32 : f32
// The pick: a warp arg-max over (score, slot), NaN and past-the-end slots
// excluded, ties to the lower slot; over lane bits 4, 3, 2 only (the lanes
// that differ in bits 0-1 hold the same slots).
// CHECK: arith.cmpf ord
// CHECK: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : i32
// CHECK: arith.cmpf ogt
// CHECK: arith.cmpi slt, %{{.+}}, %{{.+}} : i32
// CHECK: gpu.shuffle  xor %{{.+}}, %c8_i32, %c32_i32 : i32
// CHECK: gpu.shuffle  xor %{{.+}}, %c4_i32, %c32_i32 : i32
// CHECK-NOT: gpu.shuffle
// The rest's mean (slot 0) from the tokens loaded for the scores (no
// second load), each token's add under a branch (the same in the whole
// warp); the outlier (slot 1, loaded at the pick); the variance (slot 2).
// CHECK-NOT: vector.load %[[Q]]
// CHECK-COUNT-16: scf.if %{{.+}} -> (vector<4xf32>) {
// CHECK: %[[MEAN:.+]] = arith.divf %{{.+}}, %{{.+}} : vector<4xf32>
// CHECK: vector.store %[[MEAN]], %[[QC]][%{{.+}}, %{{.+}}, %{{.+}}, %c0, %[[D]]] {alignment = 16 : i64} : memref<1x8x?x3x128xf32>, vector<4xf32>
// CHECK: vector.load %[[Q]]
// CHECK: vector.store %{{.+}}, %[[QC]][%{{.+}}, %{{.+}}, %{{.+}}, %c1, %[[D]]] {alignment = 16 : i64}
// CHECK-NOT: vector.load %[[Q]]
// CHECK-COUNT-16: math.fma %{{.+}}, %{{.+}}, %{{.+}} : vector<4xf32>
// CHECK: arith.divf %{{.+}}, %{{.+}} : vector<4xf32>
// CHECK: vector.store %{{.+}}, %[[QC]][%{{.+}}, %{{.+}}, %{{.+}}, %c2, %[[D]]] {alignment = 16 : i64}
// The last composite when N is not a multiple of 16: its tokens
// [16 t, 16 t + min(16, N - 16 t)), loads clamped to the last.
// CHECK: } else {
// CHECK: %[[COUNT:.+]] = arith.minui %{{.+}}, %c16 : index
// CHECK: arith.minui %{{.+}}, %{{.+}} : index
// CHECK: vector.load %[[Q]][{{.+}}] {alignment = 8 : i64} : memref<1x8x?x128xbf16>, vector<4xbf16>
// CHECK: vector.store %{{.+}}, %[[QC]][%{{.+}}, %{{.+}}, %{{.+}}, %c2, %{{.+}}] {alignment = 16 : i64}
// Rows not aligned: element loads, one form for all composites.
// CHECK: } else {
// CHECK: vector.load %[[Q]][{{.+}}] : memref<1x8x?x128xbf16>, vector<4xbf16>
// CHECK: memref.dealloc %[[CENTER]]
// CHECK-NOT: unisparse.compress
func.func @queries(%q: memref<1x8x?x128xbf16>, %qc: memref<1x8x?x3x128xf32>) {
  unisparse.compress {seq_factor = 16 : i64, pooling = #unisparse.pooling<outlier>, outliers = 1 : i64, spread = true}
      ins(%q : memref<1x8x?x128xbf16>) outs(%qc : memref<1x8x?x3x128xf32>)
  return
}

// -----

// The keys of a 32 / 8 GQA model (c_k = 32, one hot and one far key): the
// center of the keys, once per kv head (the 4 groups of a kv head pool
// source head g / 4 alone, so they share it: the partial sums over 8
// groups, a CTA a split as for the queries), the probe from
// the queries (the same two kernels,
// kv_group 1, one per group), then the composites: a warp per (composite,
// kv head), i.e. per run of the 4 groups that pool the same tokens (groups
// g0 = 4 run .. g0 + 3; center at g0 / 4): the 32 tokens loaded and their
// scores reduce-scattered once (4 chunks of 8), then per group in turn its
// probe, heat = x . probe reduce-scattered, the hot pick first (on the
// heats), the far one on the scores with the hot slot taken, the rest and
// the group's three slots; no token loaded again but the picked ones. Into
// bf16 composites (the GPU pipeline's narrowing): each slot rounded once.
// The kernel asks for 3 CTAs an SM (the occupancy of a group a warp).
// CHECK: module attributes {unisparse.kernel_attributes = {unisparse_compress_outlier_0 = {nvvm.minctasm = 3 : i32}}}
// CHECK-LABEL: func.func @keys(
// CHECK-SAME: %[[K:[^:]+]]: memref<1x8x?x128xbf16>, %[[Q:[^:]+]]: memref<1x32x?x128xbf16>, %[[KC:[^:]+]]: memref<1x32x?x3x128xbf16>)
// CHECK: memref.alloc(%{{.+}}) : memref<1x8x?x128xf32>
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_partial_sums_0) workgroup(%{{.+}} : memref<16x128xf32, #gpu.address_space<workgroup>>) {
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c8
// CHECK: vector.load %[[K]]
// CHECK: %[[CENTER:.+]] = memref.alloc() : memref<1x8x128xf32>
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_center_0) workgroup(
// CHECK: memref.alloc(%{{.+}}) : memref<1x32x?x128xf32>
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_partial_sums_1) workgroup(
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c8
// CHECK: vector.load %[[Q]]
// CHECK: %[[PROBE:.+]] = memref.alloc() : memref<1x32x128xf32>
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_center_1) workgroup(
// A warp per (composite, run of 4 groups): 1 x T x 8 runs, 4 warps a CTA.
// CHECK: %[[RUNS:.+]] = arith.muli %{{.+}}, %c8 : index
// CHECK-NEXT: %[[RUNS3:.+]] = arith.addi %[[RUNS]], %c3 : index
// CHECK-NEXT: %[[CTAS:.+]] = arith.divui %[[RUNS3]], %c4 : index
// CHECK-NEXT: %[[CTAS1:.+]] = arith.maxui %[[CTAS]], %c1 : index
// CHECK-NEXT: gpu.launch blocks(%{{.+}}) in (%{{.+}} = %[[CTAS1]], {{.+}} function(@unisparse_compress_outlier_0) {
// CHECK: %[[GRP:.+]] = arith.remui %{{.+}}, %c8 : index
// CHECK: %[[G0:.+]] = arith.muli %[[GRP]], %c4 : index
// CHECK: scf.if
// CHECK: scf.if
// CHECK: %[[CG:.+]] = arith.divui %[[G0]], %c4 : index
// CHECK: vector.load %[[CENTER]][%{{.+}}, %[[CG]], %{{.+}}]
// CHECK-NOT: vector.load %[[PROBE]]
// CHECK-COUNT-8: vector.load %[[K]]
// CHECK-COUNT-4: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c1_i32, %c32_i32 : f32
// CHECK-COUNT-8: vector.load %[[K]]
// CHECK-COUNT-8: vector.load %[[K]]
// CHECK-COUNT-8: vector.load %[[K]]
// CHECK-NOT: vector.load %[[K]]
// Each group: its probe, its heats (no token loaded again), the mean, then
// each pick's token (one load each) and slot.
// CHECK: vector.load %[[PROBE]][%{{.+}}, %[[G0]], %{{.+}}]
// CHECK-NOT: vector.load %[[K]]
// CHECK-COUNT-4: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G0]], %{{.+}}, %c0, %{{.+}}] {alignment = 8 : i64} : memref<1x32x?x3x128xbf16>, vector<4xbf16>
// CHECK: vector.load %[[K]]
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G0]], %{{.+}}, %c1, %{{.+}}] {alignment = 8 : i64}
// CHECK: vector.load %[[K]]
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G0]], %{{.+}}, %c2, %{{.+}}] {alignment = 8 : i64}
// CHECK-NEXT: %[[G1:.+]] = arith.addi %[[G0]], %c1 : index
// CHECK-NEXT: vector.load %[[PROBE]][%{{.+}}, %[[G1]], %{{.+}}]
// CHECK-NOT: vector.load %[[K]]
// CHECK-COUNT-4: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G1]], %{{.+}}, %c0, %{{.+}}] {alignment = 8 : i64} : memref<1x32x?x3x128xbf16>, vector<4xbf16>
// CHECK: vector.load %[[K]]
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G1]], %{{.+}}, %c1, %{{.+}}] {alignment = 8 : i64}
// CHECK: vector.load %[[K]]
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G1]], %{{.+}}, %c2, %{{.+}}] {alignment = 8 : i64}
// CHECK-NEXT: %[[G2:.+]] = arith.addi %[[G0]], %c2 : index
// CHECK-NEXT: vector.load %[[PROBE]][%{{.+}}, %[[G2]], %{{.+}}]
// CHECK-NOT: vector.load %[[K]]
// CHECK-COUNT-4: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G2]], %{{.+}}, %c0, %{{.+}}] {alignment = 8 : i64} : memref<1x32x?x3x128xbf16>, vector<4xbf16>
// CHECK: vector.load %[[K]]
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G2]], %{{.+}}, %c1, %{{.+}}] {alignment = 8 : i64}
// CHECK: vector.load %[[K]]
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G2]], %{{.+}}, %c2, %{{.+}}] {alignment = 8 : i64}
// CHECK-NEXT: %[[G3:.+]] = arith.addi %[[G0]], %c3 : index
// CHECK-NEXT: vector.load %[[PROBE]][%{{.+}}, %[[G3]], %{{.+}}]
// CHECK-NOT: vector.load %[[K]]
// CHECK-COUNT-4: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G3]], %{{.+}}, %c0, %{{.+}}] {alignment = 8 : i64} : memref<1x32x?x3x128xbf16>, vector<4xbf16>
// CHECK: vector.load %[[K]]
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G3]], %{{.+}}, %c1, %{{.+}}] {alignment = 8 : i64}
// CHECK: vector.load %[[K]]
// CHECK-NOT: vector.load %[[K]]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %[[G3]], %{{.+}}, %c2, %{{.+}}] {alignment = 8 : i64}
// CHECK-NOT: arith.addi %[[G0]], %c4 : index
// CHECK: memref.dealloc %[[CENTER]]
// CHECK: memref.dealloc %[[PROBE]]
// CHECK-NOT: unisparse.compress
func.func @keys(%k: memref<1x8x?x128xbf16>, %q: memref<1x32x?x128xbf16>, %kc: memref<1x32x?x3x128xbf16>) {
  unisparse.compress {seq_factor = 32 : i64, kv_group = 4 : i64, pooling = #unisparse.pooling<outlier>, outliers = 2 : i64, hot = 1 : i64}
      ins(%k : memref<1x8x?x128xbf16>) queries(%q : memref<1x32x?x128xbf16>) outs(%kc : memref<1x32x?x3x128xbf16>)
  return
}

// -----

// Heads pooled (c_h = 2: the two heads summed, divided by 2), f16, D = 64
// (2 coordinates a lane), composites of 48 tokens: a lane keeps the scores
// and heats of six slots (one per 8 tokens); three picks, two hot. 48 x 2
// values a lane: the tokens loaded for the scores serve the rest's mean.
// CHECK-LABEL: func.func @pooled(
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_0) {
// CHECK: vector.load %{{.+}} {alignment = 4 : i64} : memref<2x8x?x64xf16>, vector<2xf16>
// CHECK: vector.load %{{.+}} {alignment = 4 : i64} : memref<2x8x?x64xf16>, vector<2xf16>
// CHECK: arith.addf %{{.+}}, %{{.+}} : vector<2xf32>
// CHECK: arith.divf %{{.+}}, %{{.+}} : vector<2xf32>
// CHECK-COUNT-3: gpu.shuffle  xor %{{.+}}, %c4_i32, %c32_i32 : i32
// CHECK-NOT: gpu.shuffle
// CHECK: vector.store %{{.+}}, %{{.+}}[%{{.+}}, %{{.+}}, %{{.+}}, %c3, %{{.+}}] {alignment = 8 : i64} : memref<2x4x?x4x64xf32>, vector<2xf32>
// CHECK: } else {
func.func @pooled(%k: memref<2x8x?x64xf16>, %q: memref<2x8x?x64xf16>, %kc: memref<2x4x?x4x64xf32>) {
  unisparse.compress {seq_factor = 48 : i64, head_factor = 2 : i64, pooling = #unisparse.pooling<outlier>, outliers = 3 : i64, hot = 2 : i64}
      ins(%k : memref<2x8x?x64xf16>) queries(%q : memref<2x8x?x64xf16>) outs(%kc : memref<2x4x?x4x64xf32>)
  return
}

// -----

// The queries' compress, then the keys' with the same queries and heads
// (the estimation's order): the keys' probe is the query compress's center
// (the same kernels on the same queries), so the queries are read for it
// once; the center is freed after the key composites. The keys' center
// is one per kv head (2), the probe one per group (8).
// CHECK-LABEL: func.func @shared_probe(
// CHECK-SAME: %[[Q:[^:]+]]: memref<1x8x?x64xbf16>, %[[K:[^:]+]]: memref<1x2x?x64xbf16>
// CHECK: %[[QCENTER:.+]] = memref.alloc() : memref<1x8x64xf32>
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_center_0) workgroup(
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_0) {
// CHECK: vector.load %[[QCENTER]]
// CHECK-NOT: memref.dealloc %[[QCENTER]]
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_partial_sums_1) workgroup(
// CHECK: vector.load %[[K]]
// CHECK: %[[KCENTER:.+]] = memref.alloc() : memref<1x2x64xf32>
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_center_1) workgroup(
// CHECK-NOT: unisparse_compress_outlier_partial_sums
// CHECK: gpu.launch {{.+}} function(@unisparse_compress_outlier_1) {
// CHECK: vector.load %[[KCENTER]]
// CHECK: vector.load %[[QCENTER]]
// CHECK: memref.dealloc %[[KCENTER]]
// CHECK: memref.dealloc %[[QCENTER]]
func.func @shared_probe(%q: memref<1x8x?x64xbf16>, %k: memref<1x2x?x64xbf16>, %qc: memref<1x8x?x3x64xbf16>, %kc: memref<1x8x?x3x64xbf16>) {
  unisparse.compress {seq_factor = 16 : i64, pooling = #unisparse.pooling<outlier>, outliers = 1 : i64, spread = true}
      ins(%q : memref<1x8x?x64xbf16>) outs(%qc : memref<1x8x?x3x64xbf16>)
  unisparse.compress {seq_factor = 32 : i64, kv_group = 4 : i64, pooling = #unisparse.pooling<outlier>, outliers = 2 : i64, hot = 1 : i64}
      ins(%k : memref<1x2x?x64xbf16>) queries(%q : memref<1x8x?x64xbf16>) outs(%kc : memref<1x8x?x3x64xbf16>)
  return
}

// -----

// Something between them that may write the queries: the keys compute
// their own probe.
// CHECK-LABEL: func.func @written_between(
// CHECK-COUNT-3: function(@unisparse_compress_outlier_partial_sums_
func.func @written_between(%q: memref<1x8x?x64xbf16>, %k: memref<1x2x?x64xbf16>, %qc: memref<1x8x?x3x64xbf16>, %kc: memref<1x8x?x3x64xbf16>, %x: memref<1x8x?x64xbf16>) {
  unisparse.compress {seq_factor = 16 : i64, pooling = #unisparse.pooling<outlier>, outliers = 1 : i64, spread = true}
      ins(%q : memref<1x8x?x64xbf16>) outs(%qc : memref<1x8x?x3x64xbf16>)
  memref.copy %x, %q : memref<1x8x?x64xbf16> to memref<1x8x?x64xbf16>
  unisparse.compress {seq_factor = 32 : i64, kv_group = 4 : i64, pooling = #unisparse.pooling<outlier>, outliers = 2 : i64, hot = 1 : i64}
      ins(%k : memref<1x2x?x64xbf16>) queries(%q : memref<1x8x?x64xbf16>) outs(%kc : memref<1x8x?x3x64xbf16>)
  return
}
