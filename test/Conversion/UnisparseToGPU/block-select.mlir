// RUN: unisparse-opt %s --convert-unisparse-to-gpu --canonicalize | FileCheck %s

// The buffer form of block_select becomes one warp (a CTA of 32 threads) per
// (batch, head group, query block) row, with dynamic workgroup memory for
// the sort slots (u32, the next power of two at or above NBk, at least 256,
// in a layout with 4 words of padding per 32 and 64 words of slack; the
// sorted scores in place), the row's scores (f32, NBk rounded up to 32) and
// the kept mass's checkpoints (f32, one per 32 blocks).
// CHECK-LABEL: func.func @select(
// CHECK-SAME: %[[S:[^:]+]]: memref<2x8x?x?xf32>, %[[C:[^:]+]]: memref<2x8x?xi32>, %[[I:[^:]+]]: memref<2x8x?x?xi32>)
// CHECK: %[[NBQ:.+]] = memref.dim %[[S]], %c2
// CHECK: %[[NBK:.+]] = memref.dim %[[S]], %c3
// CHECK: %[[ROWS:.+]] = arith.muli %[[NBQ]], %c16 : index
// CHECK: gpu.launch blocks({{.+}}) in (%{{.+}} = %[[ROWS]], {{.+}}) threads(%[[LANE:[^,]+]], {{.+}}) in (%{{.+}} = %c32, {{.+}}) dynamic_shared_memory_size %{{.+}} module(@unisparse_block_select_0_module) function(@unisparse_block_select_0)
// CHECK: %[[RAW:.+]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK: %[[SLOTS:.+]] = arith.addi %{{.+}}, %c64 : index
// CHECK: %[[KEYS:.+]] = memref.view %[[RAW]][%c0][%[[SLOTS]]] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xi32, #gpu.address_space<workgroup>>
// CHECK: %[[SORTED:.+]] = memref.view %[[RAW]][%c0][%[[SLOTS]]] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xf32, #gpu.address_space<workgroup>>
// CHECK: %[[ROW:.+]] = memref.view %[[RAW]][%{{.+}}][%{{.+}}] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xf32, #gpu.address_space<workgroup>>
// CHECK: %[[CP:.+]] = memref.view %[[RAW]][%{{.+}}][%{{.+}}] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xf32, #gpu.address_space<workgroup>>
// CHECK: %[[WORDS:.+]] = memref.view %[[RAW]][%c0][%{{.+}}] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xf32, #gpu.address_space<workgroup>>
// The row's visible scores, lane-strided, then zeros up to a multiple of 32.
// CHECK: scf.for %{{.+}} = %[[LANE]] to %{{.+}} step %c32 {
// CHECK: memref.store %{{.+}}, %[[ROW]]
// CHECK: scf.for
// CHECK-NEXT: memref.store %cst{{.*}}, %[[ROW]]
// CHECK: gpu.barrier
// The sort by row length: up to 256 keys 8 per lane, up to 512 16 per lane,
// longer rows in chunks of 1024 (32 per lane). Keys are made in i32 (free:
// visible, outside the local window, not the sink) from the scores; the
// bitonic network's comparators all ascend (each stage's first pass
// compares mirror positions), so a pass is min/max in the thread or a
// shuffle and min/max kept by lane; the lane-major layout keeps the low
// bits' passes in the thread (xor 31 is the 32-key mirror across lanes).
// CHECK: %[[SIZE:.+]] = arith.maxui %{{.+}}, %c256 : index
// CHECK: %[[SMALL:.+]] = arith.cmpi ule, %[[SIZE]], %c256 : index
// CHECK: scf.if %[[SMALL]] {
// CHECK: arith.cmpi ult, %{{.+}}, %{{.+}} : i32
// CHECK: memref.load %[[ROW]]
// CHECK: arith.shrsi %{{.+}}, %c31_i32 : i32
// CHECK-COUNT-8: arith.select %{{.+}}, %{{.+}}, %c-1_i32 : i32
// CHECK-NEXT: arith.minui %{{.+}} : i32
// CHECK-NEXT: arith.maxui %{{.+}} : i32
// CHECK: gpu.shuffle xor %{{.+}}, %c1_i32, %c32_i32 : i32
// CHECK-NEXT: arith.minui
// CHECK-NEXT: arith.maxui
// CHECK-NEXT: arith.select
// CHECK: gpu.shuffle xor %{{.+}}, %c31_i32, %c32_i32 : i32
// The scores decoded and stored 16 bytes at a time into the padded layout.
// CHECK: vector.store %{{.+}}, %[[KEYS]][%{{.+}}] {alignment = 16 : i64} : memref<?xi32, #gpu.address_space<workgroup>>, vector<4xi32>
// CHECK: } else {
// CHECK: arith.cmpi ule, %[[SIZE]], %c512 : index
// CHECK: } else {
// CHECK: %[[CHUNKS:.+]] = arith.divui %[[SIZE]], %c1024 : index
// CHECK: scf.for %{{.+}} = %c0 to %[[CHUNKS]] step %c1 {
// CHECK-COUNT-8: vector.store %{{.+}}, %[[KEYS]]
// CHECK: gpu.barrier
// Longer rows: the passes 1024 or more apart through workgroup memory (a
// barrier each), then the chunk's remaining passes in registers.
// CHECK: scf.for %{{.+}} = %c11 to %{{.+}} step %c1 {
// CHECK: scf.for %{{.+}} = %c1 to %{{.+}} step %c1 {
// CHECK: scf.for %{{.+}} = %[[LANE]] to %{{.+}} step %c32 {
// CHECK: arith.minui
// CHECK: gpu.barrier
// CHECK: scf.for %{{.+}} = %c0 to %[[CHUNKS]] step %c1 {
// CHECK-COUNT-8: vector.load %[[KEYS]]
// CHECK: gpu.barrier
// CHECK: gpu.barrier
// The forced mass (the local window, ascending J), then one pass of 32
// scores a step for both sums: lanes 0-15 the row total from the row's
// scores, lanes 16-31 the kept mass from the sorted scores (36 words a
// step in the padded layout), storing a checkpoint a step; the total is
// lane 0's.
// CHECK: %[[FORCED:.+]]:2 = scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (f32, index) {
// CHECK: %[[LOW:.+]] = arith.cmpi ult, %[[LANE]], %c16 : index
// CHECK: arith.select %[[LOW]], %c32, %c36 : index
// CHECK: %[[SUMS:.+]]:2 = scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (f32, index) {
// CHECK: memref.store %{{.+}}, %[[CP]]
// CHECK-COUNT-8: vector.load %[[WORDS]]
// CHECK-COUNT-32: arith.addf
// CHECK: gpu.barrier
// CHECK: %[[TOTAL:.+]], %{{.+}} = gpu.shuffle idx %[[SUMS]]#0, %c0_i32, %c32_i32 : f32
// CHECK: %[[THR:.+]] = arith.mulf %[[TOTAL]], %{{.+}} : f32
// When the row's smallest free score is not negative the kept mass never
// decreases: the steps whose checkpoint is below tau * total are a prefix
// (ballots), and in the last one lane e adds the step's first e scores.
// CHECK: arith.cmpf oge, %{{.+}}, %{{.+}} : f32
// CHECK: scf.if %{{.+}} -> (index) {
// CHECK: scf.for
// CHECK: memref.load %[[CP]]
// CHECK: arith.cmpf olt, %{{.+}}, %[[THR]] : f32
// CHECK: nvvm.vote.sync  ballot %c-1_i32, %{{.+}} -> i32
// CHECK: math.ctpop
// CHECK: memref.load %[[CP]]
// CHECK: arith.cmpi ugt, %{{.+}}, %c0_i32 : i32
// CHECK-NEXT: arith.addf
// CHECK-NEXT: arith.select
// CHECK: arith.cmpf olt, %{{.+}}, %[[THR]] : f32
// CHECK: nvvm.vote.sync  ballot
// Otherwise every position is tested against tau * total or still wanted by
// min_blocks (8 flags carried out of the loop).
// CHECK: } else {
// CHECK: scf.while ({{.+}}) : (f32, index) -> (f32, index, i1, i1, i1, i1, i1, i1, i1, i1) {
// CHECK-COUNT-2: vector.load %[[SORTED]]
// CHECK: arith.cmpf olt, %{{.+}}, %[[THR]] : f32
// CHECK-NEXT: arith.cmpi ult
// CHECK-NEXT: arith.ori
// CHECK: scf.condition
// The compaction. The last kept score v*, and the sorted score after it:
// when that one equals v* too, a tie at v* is split.
// CHECK: %[[VSTAR:.+]] = memref.load %[[SORTED]]
// CHECK: %[[NEXT:.+]] = memref.load %[[SORTED]]
// CHECK: %[[SAME:.+]] = arith.cmpf oeq, %[[NEXT]], %[[VSTAR]] : f32
// CHECK: %[[SPLIT:.+]] = arith.andi %{{.+}}, %[[SAME]] : i1
// CHECK: %[[COUNT:.+]] = scf.if %[[SPLIT]] -> (index) {
// Split: a binary search for the scores above v*, then per 32 blocks
// ballots of "equal to v*" (ranking the ties in ascending J) and "kept",
// their prefix counts and the ascending indices.
// CHECK: scf.while
// CHECK: arith.cmpf ogt
// CHECK: nvvm.read.ptx.sreg.lanemask.lt : i32
// CHECK: scf.for {{.+}} -> (index, index, i32) {
// CHECK: arith.cmpf oeq
// CHECK: nvvm.vote.sync  ballot %c-1_i32, %{{.+}} -> i32
// CHECK: math.ctpop
// CHECK: arith.cmpf ogt
// CHECK: nvvm.vote.sync  ballot %c-1_i32, %{{.+}} -> i32
// CHECK: memref.store %{{.+}}, %[[I]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<2x8x?x?xi32>
// Otherwise the free blocks scoring v* or more: one ballot per 32 blocks.
// CHECK: } else {
// CHECK-NOT: scf.while
// CHECK: nvvm.read.ptx.sreg.lanemask.lt : i32
// CHECK: scf.for {{.+}} -> (index, i32) {
// CHECK: arith.cmpf oge, %{{.+}}, %[[VSTAR]] : f32
// CHECK: nvvm.vote.sync  ballot %c-1_i32, %{{.+}} -> i32
// CHECK-NOT: nvvm.vote.sync
// CHECK: memref.store %{{.+}}, %[[I]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<2x8x?x?xi32>
// CHECK: scf.yield
// CHECK: scf.yield
// CHECK-NEXT: }
// Then -1 padding and the count.
// CHECK: scf.for %{{.+}} = %{{.+}} to %[[NBK]] step %c32 {
// CHECK-NEXT: memref.store %c-1_i32, %[[I]]
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
