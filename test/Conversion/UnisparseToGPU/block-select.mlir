// RUN: unisparse-opt %s --convert-unisparse-to-gpu --canonicalize | FileCheck %s

// The buffer form of block_select becomes one CTA per (batch, head group,
// query block) row with dynamic workgroup memory for the sort keys (u64, the
// next power of two at or above NBk, at least 256) and the flags (i32, NBk).
// CHECK-LABEL: func.func @select(
// CHECK-SAME: %[[S:[^:]+]]: memref<2x8x?x?xf32>, %[[C:[^:]+]]: memref<2x8x?xi32>, %[[I:[^:]+]]: memref<2x8x?x?xi32>)
// CHECK: %[[NBQ:.+]] = memref.dim %[[S]], %c2
// CHECK: %[[NBK:.+]] = memref.dim %[[S]], %c3
// CHECK: %[[ROWS:.+]] = arith.muli %[[NBQ]], %c16 : index
// CHECK: gpu.launch blocks({{.+}}) in (%{{.+}} = %[[ROWS]], {{.+}}) threads(%[[TID:[^,]+]], {{.+}}) in (%{{.+}} = %c128, {{.+}}) dynamic_shared_memory_size %{{.+}} module(@unisparse_block_select_0_module) function(@unisparse_block_select_0) workgroup(%[[SHARED:.+]] : memref<2xindex, #gpu.address_space<workgroup>>, %{{.+}} : memref<4xindex, #gpu.address_space<workgroup>>)
// CHECK: %[[RAW:.+]] = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
// CHECK: %[[KEYS:.+]] = memref.view %[[RAW]][%c0][%{{.+}}] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xi64, #gpu.address_space<workgroup>>
// CHECK: %[[FLAGS:.+]] = memref.view %[[RAW]][%{{.+}}][%[[NBK]]] : memref<?xi8, #gpu.address_space<workgroup>> to memref<?xi32, #gpu.address_space<workgroup>>
// Forced flags, then the sort keys of the free visible blocks.
// CHECK: scf.for %{{.+}} = %[[TID]] to %[[NBK]] step %c128 {
// CHECK: memref.store %{{.+}}, %[[FLAGS]]
// CHECK: scf.for %{{.+}} = %[[TID]] to %{{.+}} step %c128 {
// CHECK: arith.bitcast %{{.+}} : f32 to i32
// CHECK: memref.store %{{.+}}, %[[KEYS]]
// CHECK: gpu.barrier
// The bitonic sort: each warp sorts chunks of 256 keys in its registers (8
// per lane, loaded once): 36 compare-exchange passes, those under 32 apart
// across lanes (two 32-bit shuffles per key), the others within a thread.
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c4 {
// CHECK-COUNT-8: memref.load %[[KEYS]]
// CHECK: gpu.shuffle xor %{{.+}}, %c1_i32, %c32_i32 : i32
// CHECK: arith.cmpi ult, %{{.+}}, %{{.+}} : i64
// CHECK: gpu.shuffle xor %{{.+}}, %c16_i32, %c32_i32 : i32
// CHECK-COUNT-8: memref.store %{{.+}}, %[[KEYS]]
// CHECK-NEXT: }
// CHECK-NEXT: gpu.barrier
// Longer runs: passes 256 or more apart through workgroup memory (a
// barrier each), then the chunk's remaining passes in registers.
// CHECK: scf.for %{{.+}} = %c9 to %{{.+}} step %c1 {
// CHECK: scf.for %{{.+}} = %c1 to %{{.+}} step %c1 {
// CHECK: scf.for %{{.+}} = %[[TID]] to %{{.+}} step %c128 {
// CHECK: arith.cmpi ult, %{{.+}}, %{{.+}} : i64
// CHECK: gpu.barrier
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c4 {
// CHECK-COUNT-8: memref.load %[[KEYS]]
// CHECK: gpu.barrier
// Thread 0: the sequential total (ascending J; 8 loads ahead of their adds,
// then the rest), the forced mass (the sink, then the local window), then
// the top-p walk over the sorted keys, 8 a step, each key's score decoded
// from it.
// CHECK: %[[TOTAL:.+]] = scf.for %{{.+}} = %c0 to %[[WHOLE:.+]] step %c8 iter_args(%{{.+}} = %cst{{.*}}) -> (f32) {
// CHECK: scf.for %{{.+}} = %[[WHOLE]] to %{{.+}} step %c1 iter_args(%{{.+}} = %[[TOTAL]]) -> (f32) {
// CHECK: scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}) -> (f32, index) {
// CHECK: scf.while (%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}}, %{{.+}} = %c0, %{{.+}} = %true) : (f32, index, index, i1) -> (f32, index, index) {
// CHECK: scf.condition
// CHECK-COUNT-8: arith.cmpf olt
// CHECK: memref.store %{{.+}}, %[[SHARED]][%c0]
// The compaction: a warp prefix sum (shuffle up), warp totals, ascending
// indices, -1 padding, the count.
// CHECK: gpu.shuffle up %{{.+}}, %c1_i32, %c32_i32 : i32
// CHECK: gpu.shuffle up %{{.+}}, %c16_i32, %c32_i32 : i32
// CHECK: memref.store %{{.+}}, %[[I]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<2x8x?x?xi32>
// CHECK: memref.store %c-1_i32, %[[I]]
// CHECK: memref.store %{{.+}}, %[[C]][%{{.+}}, %{{.+}}, %{{.+}}] : memref<2x8x?xi32>
// CHECK-NOT: unisparse.block_select
func.func @select(%s: memref<2x8x?x?xf32>, %c: memref<2x8x?xi32>, %i: memref<2x8x?x?xi32>) {
  unisparse.block_select {tau = 0.9 : f64, min_blocks = 2 : i64}
      ins(%s : memref<2x8x?x?xf32>) outs(%c, %i : memref<2x8x?xi32>, memref<2x8x?x?xi32>)
  return
}
