// RUN: unisparse-opt %s --convert-unisparse-to-linalg --canonicalize | FileCheck %s

// block_select: an scf.forall over the (batch, head group, query block) rows;
// each row works on its own slice of indices (which holds 0/1 flags until the
// final compaction) and of counts: the total, the forced blocks, the top-p
// scf.while (repeated arg-max), the in-place compaction and -1 padding.
// CHECK-LABEL: func.func @select
// CHECK-SAME: (%[[S:[^:]+]]: tensor<2x4x?x?xf32>, %[[C0:[^:]+]]: tensor<2x4x?xi32>, %[[I0:[^:]+]]: tensor<2x4x?x?xi32>)
// CHECK-DAG: %[[TAU:.+]] = arith.constant 0.899999976 : f32
// CHECK-DAG: %[[MAXB:.+]] = arith.constant 6 : index
// CHECK-DAG: %[[MINB:.+]] = arith.constant 2 : index
// CHECK-DAG: %[[NBQ:.+]] = tensor.dim %[[S]], %c2
// CHECK-DAG: %[[NBK:.+]] = tensor.dim %[[S]], %c3
// CHECK: %[[RES:.+]]:2 = scf.forall (%[[B:.+]], %[[G:.+]], %[[ROW:.+]]) in (2, 4, %[[NBQ]]) shared_outs(%[[CO:.+]] = %[[C0]], %[[IO:.+]] = %[[I0]])
// CHECK: %[[IROW:.+]] = tensor.extract_slice %[[IO]][%[[B]], %[[G]], %[[ROW]], 0] [1, 1, 1, %[[NBK]]] [1, 1, 1, 1] : tensor<2x4x?x?xi32> to tensor<?xi32>
// CHECK: %[[CCELL:.+]] = tensor.extract_slice %[[CO]][%[[B]], %[[G]], %[[ROW]]] [1, 1, 1] [1, 1, 1] : tensor<2x4x?xi32> to tensor<1xi32>
// Causal: the row sees blocks [0, min(I + 1, NBk)).
// CHECK: %[[NEXT:.+]] = arith.addi %[[ROW]], %{{.+}} : index
// CHECK: %[[NVIS:.+]] = arith.minsi %[[NEXT]], %[[NBK]] : index
// Total visible mass.
// CHECK: %[[TOTAL:.+]] = scf.for {{.+}} to %[[NVIS]]
// CHECK: tensor.extract %[[S]][%[[B]], %[[G]], %[[ROW]],
// CHECK: arith.addf
// Threshold and the top-p loop, bounded by min/max blocks and the visible
// count; a NaN total keeps going (every visible block, past the cap).
// CHECK: %[[THR:.+]] = arith.mulf %[[TOTAL]], %[[TAU]] : f32
// CHECK: %[[NAN:.+]] = arith.cmpf uno, %[[TOTAL]], %[[TOTAL]] : f32
// CHECK: scf.while
// CHECK: arith.cmpi slt, %{{.+}}, %[[MINB]] : index
// CHECK: %[[SHORT:.+]] = arith.cmpf olt, %{{.+}}, %[[THR]] : f32
// CHECK: arith.ori %[[SHORT]], %[[NAN]] : i1
// CHECK: arith.cmpi slt, %{{.+}}, %[[NVIS]] : index
// CHECK: %[[UNDER:.+]] = arith.cmpi slt, %{{.+}}, %[[MAXB]] : index
// CHECK: arith.ori %[[NAN]], %[[UNDER]] : i1
// CHECK: scf.condition
// Arg-max over the free visible blocks under a total order (strictly
// greater, NaN below every number: lowest J on ties); the first free block
// is always a candidate.
// CHECK: scf.for {{.+}} to %[[NVIS]] {{.+}} -> (f32, index, i1)
// CHECK: arith.cmpf uno
// CHECK: arith.cmpf ord
// CHECK: arith.cmpf ogt
// Padding with -1 and the count.
// CHECK: tensor.insert %c-1_i32
// CHECK: %[[CNT:.+]] = arith.index_cast %{{.+}} : index to i32
// CHECK: %[[NEWCELL:.+]] = tensor.insert %[[CNT]] into %[[CCELL]][%c0]
// CHECK: scf.forall.in_parallel
// In the order of shared_outs (counts, indices).
// CHECK: tensor.parallel_insert_slice %[[NEWCELL]] into %[[CO]][%[[B]], %[[G]], %[[ROW]]] [1, 1, 1]
// CHECK: tensor.parallel_insert_slice %{{.+}} into %[[IO]][%[[B]], %[[G]], %[[ROW]], 0] [1, 1, 1, %[[NBK]]]
// CHECK: return %[[RES]]#0, %[[RES]]#1
func.func @select(%s: tensor<2x4x?x?xf32>, %c0: tensor<2x4x?xi32>, %i0: tensor<2x4x?x?xi32>) -> (tensor<2x4x?xi32>, tensor<2x4x?x?xi32>) {
  %c, %i = unisparse.block_select {tau = 0.9, min_blocks = 2, max_blocks = 6} ins(%s : tensor<2x4x?x?xf32>) outs(%c0, %i0 : tensor<2x4x?xi32>, tensor<2x4x?x?xi32>) -> tensor<2x4x?xi32>, tensor<2x4x?x?xi32>
  return %c, %i : tensor<2x4x?xi32>, tensor<2x4x?x?xi32>
}

// Without a cap there is no max_blocks comparison; non-causal rows see all.
// CHECK-LABEL: func.func @select_uncapped
// CHECK-NOT: arith.minsi
// CHECK: scf.while
// CHECK: return
func.func @select_uncapped(%s: tensor<1x2x4x4xf32>, %c0: tensor<1x2x4xi32>, %i0: tensor<1x2x4x4xi32>) -> tensor<1x2x4x4xi32> {
  %c, %i = unisparse.block_select {tau = 0.5, causal = false} ins(%s : tensor<1x2x4x4xf32>) outs(%c0, %i0 : tensor<1x2x4xi32>, tensor<1x2x4x4xi32>) -> tensor<1x2x4xi32>, tensor<1x2x4x4xi32>
  return %i : tensor<1x2x4x4xi32>
}

// dense_layout: counts = min(I + 1, NBk), indices = J if J <= I else -1.
// CHECK-LABEL: func.func @dense
// CHECK-SAME: (%[[C0:[^:]+]]: tensor<1x2x?xi32>, %[[I0:[^:]+]]: tensor<1x2x?x?xi32>)
// CHECK: %[[C:.+]] = linalg.generic {{.+}} outs(%[[C0]] : tensor<1x2x?xi32>)
// CHECK: %[[ROW:.+]] = linalg.index 2 : index
// CHECK: arith.minsi
// CHECK: %[[I:.+]] = linalg.generic {{.+}} outs(%[[I0]] : tensor<1x2x?x?xi32>)
// CHECK: %[[COL:.+]] = linalg.index 3 : index
// CHECK: %[[ROW2:.+]] = linalg.index 2 : index
// CHECK: %[[VIS:.+]] = arith.cmpi sle, %[[COL]], %[[ROW2]] : index
// CHECK: arith.select %[[VIS]], %{{.+}}, %c-1_i32 : i32
// CHECK: return %[[C]], %[[I]]
func.func @dense(%c0: tensor<1x2x?xi32>, %i0: tensor<1x2x?x?xi32>) -> (tensor<1x2x?xi32>, tensor<1x2x?x?xi32>) {
  %c, %i = unisparse.dense_layout outs(%c0, %i0 : tensor<1x2x?xi32>, tensor<1x2x?x?xi32>) -> tensor<1x2x?xi32>, tensor<1x2x?x?xi32>
  return %c, %i : tensor<1x2x?xi32>, tensor<1x2x?x?xi32>
}
