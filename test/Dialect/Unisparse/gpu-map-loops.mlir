// RUN: unisparse-opt %s --unisparse-gpu-map-loops="threads=64" | FileCheck %s
// RUN: unisparse-opt %s --unisparse-gpu-map-loops="threads=64" --convert-parallel-loops-to-gpu --canonicalize | FileCheck %s --check-prefix=LAUNCH

// The innermost (contiguous) dimension is split into blocks of 64 threads;
// the other dimensions and the blocks of the innermost one are collapsed
// into one linearized grid dimension (blockIdx.x: y and z stop at 65535,
// which a long sequence's composite count passes); out-of-range threads are
// guarded, so the thread loop has a constant trip count.
// CHECK-LABEL: func.func @store
// CHECK-SAME: (%[[A:[^:]+]]: memref<2x4x?x32xf32>, %[[N:[^:]+]]: index)
// CHECK: scf.parallel (%[[I:.+]]) = (%{{.+}}) to (%[[TOTAL:.+]]) step (%{{.+}}) {
// CHECK: arith.remsi %[[I]]
// CHECK: arith.divsi %[[I]]
// CHECK: scf.parallel (%[[D1:.+]]) = (%{{.+}}) to (%{{.+}}) step
// CHECK: scf.if
// CHECK: memref.store %{{.+}}, %[[A]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}]
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = thread_x, map = (d0) -> (d0), bound = (d0) -> (d0)>]}
// CHECK: } {mapping = [#gpu.loop_dim_map<processor = block_x, map = (d0) -> (d0), bound = (d0) -> (d0)>]}

// LAUNCH-LABEL: func.func @store
// LAUNCH-SAME: (%{{[^:]+}}: memref<2x4x?x32xf32>, %[[N:[^:]+]]: index)
// LAUNCH-DAG: %[[C1:.+]] = arith.constant 1 : index
// LAUNCH-DAG: %[[C8:.+]] = arith.constant 8 : index
// LAUNCH: %[[GRID:.+]] = arith.muli %[[N]], %[[C8]] : index
// LAUNCH: gpu.launch blocks(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %[[GRID]], %{{.+}} = %[[C1]], %{{.+}} = %[[C1]]) threads(%{{.+}}, %{{.+}}, %{{.+}}) in (%{{.+}} = %c64, %{{.+}} = %[[C1]], %{{.+}} = %[[C1]])
// The 32-wide dimension fits in one block of 64 threads: no sequential loop.
// LAUNCH-NOT: scf.for
func.func @store(%a: memref<2x4x?x32xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  %c32 = arith.constant 32 : index
  %cst = arith.constant 1.0 : f32
  scf.parallel (%b, %g, %t, %d) = (%c0, %c0, %c0, %c0) to (%c2, %c4, %n, %c32) step (%c1, %c1, %c1, %c1) {
    memref.store %cst, %a[%b, %g, %t, %d] : memref<2x4x?x32xf32>
  }
  return
}

// A loop nested in another parallel loop is left to its parent.
// CHECK-LABEL: func.func @nested
// CHECK-COUNT-1: {mapping = [#gpu.loop_dim_map<processor = thread_x
func.func @nested(%a: memref<8x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %cst = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    scf.parallel (%j) = (%c0) to (%c8) step (%c1) {
      memref.store %cst, %a[%i, %j] : memref<8x8xf32>
    }
  }
  return
}
