// RUN: unisparse-opt %s --convert-unisparse-to-gpu --canonicalize | FileCheck %s

// The buffer form of block_select becomes one warp (a CTA of 32 threads) per
// (batch, head group, query block) row, with dynamic workgroup memory for
// the sort keys (u32, the next power of two at or above NBk, at least 256;
// the sorted scores in place) and the row's scores (f32, NBk).
// CHECK-LABEL: func.func @select(
// CHECK-SAME: %[[S:[^:]+]]: memref<2x8x?x?xf32>, %[[C:[^:]+]]: memref<2x8x?xi32>, %[[I:[^:]+]]: memref<2x8x?x?xi32>)
// CHECK: %[[NBQ:.+]] = memref.dim %[[S]], %c2
// CHECK: %[[NBK:.+]] = memref.dim %[[S]], %c3
// CHECK: %[[ROWS:.+]] = arith.muli %[[NBQ]], %c16 : index
// CHECK: gpu.launch blocks({{.+}}) in (%{{.+}} = %[[ROWS]], {{.+}}) threads(%[[LANE:[^,]+]], {{.+}}) in (%{{.+}} = %c32, {{.+}}) dynamic_shared_memory_size %{{.+}} module(@unisparse_block_select_0_module) function(@unisparse_block_select_0)
// CHECK: %[[RAW:.+]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK: %[[KEYS:.+]] = memref.view %[[RAW]][%c0][%{{.+}}] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xi32, #gpu.address_space<workgroup>>
// CHECK: %[[SORTED:.+]] = memref.view %[[RAW]][%c0][%{{.+}}] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xf32, #gpu.address_space<workgroup>>
// CHECK: %[[ROW:.+]] = memref.view %[[RAW]][%{{.+}}][%[[NBK]]] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xf32, #gpu.address_space<workgroup>>
// The row's visible scores, lane-strided.
// CHECK: scf.for %{{.+}} = %[[LANE]] to %{{.+}} step %c32 {
// CHECK: memref.store %{{.+}}, %[[ROW]]
// CHECK: gpu.barrier
// The bitonic sort: chunks of 256 keys in the warp's registers (8 per lane),
// each key made from its score as the chunk is loaded (padding for forced
// and invisible blocks): 36 compare-exchange passes of unsigned min/max,
// those under 32 apart across lanes (one shuffle per key), the others
// within a thread.
// CHECK: scf.for %{{.+}} = %c0 to %[[CHUNKS:.+]] step %c1 {
// CHECK-COUNT-8: scf.if %{{.+}} -> (i32) {
// CHECK: gpu.shuffle xor %{{.+}}, %c1_i32, %c32_i32 : i32
// CHECK-NEXT: arith.minui %{{.+}} : i32
// CHECK-NEXT: arith.maxui %{{.+}} : i32
// CHECK: gpu.shuffle xor %{{.+}}, %c16_i32, %c32_i32 : i32
// CHECK-COUNT-8: memref.store %{{.+}}, %[[KEYS]]
// CHECK-NEXT: }
// CHECK-NEXT: gpu.barrier
// Longer runs: passes 256 or more apart through workgroup memory (a
// barrier each), then the chunk's remaining passes in registers.
// CHECK: scf.for %{{.+}} = %c9 to %{{.+}} step %c1 {
// CHECK: scf.for %{{.+}} = %c1 to %{{.+}} step %c1 {
// CHECK: scf.for %{{.+}} = %[[LANE]] to %{{.+}} step %c32 {
// CHECK: arith.minui
// CHECK: gpu.barrier
// CHECK: scf.for %{{.+}} = %c0 to %[[CHUNKS]] step %c1 {
// CHECK-COUNT-8: memref.load %[[KEYS]]
// CHECK: gpu.barrier
// The keys decoded to their scores in place.
// CHECK: scf.for %{{.+}} = %[[LANE]] to %{{.+}} step %c32 {
// CHECK: memref.load %[[KEYS]]
// CHECK: memref.store %{{.+}}, %[[SORTED]]
// CHECK: gpu.barrier
// Every lane alike: the sequential total (ascending J; 16-byte loads, 8
// scores a step, then the rest), the forced mass (the local window), then
// the top-p walk over the sorted scores, 8 a step, the adds chained: when
// the row's smallest free score is not negative the kept mass never
// decreases and a step has one test (min_blocks a max after it);
// otherwise each position is tested against tau * total or still wanted by
// min_blocks (8 flags carried out of the loop).
// CHECK: %[[TOTAL:.+]] = scf.for %{{.+}} = %c0 to %[[WHOLE:.+]] step %c8 iter_args(%{{.+}} = %cst{{.*}}) -> (f32) {
// CHECK: vector.load %[[ROW]][%{{.+}}] {alignment = 16 : i64} : memref<?xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// CHECK: scf.for %{{.+}} = %[[WHOLE]] to %{{.+}} step %c1 iter_args(%{{.+}} = %[[TOTAL]]) -> (f32) {
// CHECK: scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (f32, index) {
// CHECK: %[[THR:.+]] = arith.mulf %{{.+}}, %[[TOTAL_ALL:.+]] : f32
// CHECK: arith.cmpf oge, %{{.+}}, %{{.+}} : f32
// CHECK: scf.if %{{.+}} -> (index) {
// CHECK: scf.while ({{.+}}) : (f32, index) -> (f32, index) {
// CHECK-COUNT-2: vector.load %[[SORTED]]
// CHECK-COUNT-7: arith.addf
// CHECK-NOT: arith.addf
// CHECK: arith.cmpf olt, %{{.+}}, %[[THR]] : f32
// CHECK-NEXT: arith.andi
// CHECK-NEXT: arith.addf
// CHECK-NEXT: arith.select
// CHECK-NEXT: scf.condition
// CHECK: } else {
// CHECK: scf.while ({{.+}}) : (f32, index) -> (f32, index, i1, i1, i1, i1, i1, i1, i1, i1) {
// CHECK-COUNT-2: vector.load %[[SORTED]]
// CHECK: arith.cmpf olt, %{{.+}}, %[[THR]] : f32
// CHECK-NEXT: arith.cmpi ult
// CHECK-NEXT: arith.ori
// CHECK: scf.condition
// The last kept score's run: a binary search for the scores above it.
// CHECK: scf.while
// CHECK: arith.cmpf ogt
// The compaction: per 32 blocks, ballots of "equal to v*" and "kept",
// their prefix counts, the ascending indices, then -1 padding and the count.
// CHECK: %[[BELOW:.+]] = nvvm.read.ptx.sreg.lanemask.lt : i32
// CHECK: scf.for
// CHECK: nvvm.vote.sync  ballot %c-1_i32, %{{.+}} -> i32
// CHECK: math.ctpop
// CHECK: nvvm.vote.sync  ballot %c-1_i32, %{{.+}} -> i32
// CHECK: memref.store %{{.+}}, %[[I]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<2x8x?x?xi32>
// CHECK: memref.store %c-1_i32, %[[I]]
// CHECK: memref.store %{{.+}}, %[[C]][%{{.+}}, %{{.+}}, %{{.+}}] : memref<2x8x?xi32>
// CHECK-NOT: unisparse.block_select
func.func @select(%s: memref<2x8x?x?xf32>, %c: memref<2x8x?xi32>, %i: memref<2x8x?x?xi32>) {
  unisparse.block_select {tau = 0.9 : f64, min_blocks = 2 : i64}
      ins(%s : memref<2x8x?x?xf32>) outs(%c, %i : memref<2x8x?xi32>, memref<2x8x?x?xi32>)
  return
}

// tau = 1 keeps every visible block: no sort and no walk, the compaction
// alone.
// CHECK-LABEL: func.func @dense(
// CHECK: gpu.launch
// CHECK-NOT: gpu.shuffle
// CHECK-NOT: scf.while
// CHECK: nvvm.vote.sync  ballot
// CHECK-NOT: nvvm.vote.sync
// CHECK: memref.store %c-1_i32
func.func @dense(%s: memref<1x4x?x?xf32>, %c: memref<1x4x?xi32>, %i: memref<1x4x?x?xi32>) {
  unisparse.block_select {tau = 1.0 : f64}
      ins(%s : memref<1x4x?x?xf32>) outs(%c, %i : memref<1x4x?xi32>, memref<1x4x?x?xi32>)
  return
}
