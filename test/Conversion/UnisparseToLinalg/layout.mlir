// RUN: unisparse-opt %s --convert-unisparse-to-linalg --canonicalize | FileCheck %s

// block_select: an scf.for nest over (batch, head group, query block) rows
// carrying counts and indices; per row the total, the forced blocks, the
// top-p scf.while (repeated arg-max) and the in-place compaction.
// CHECK-LABEL: func.func @select
// CHECK-SAME: (%[[S:[^:]+]]: tensor<2x4x?x?xf32>, %[[C0:[^:]+]]: tensor<2x4x?xi32>, %[[I0:[^:]+]]: tensor<2x4x?x?xi32>)
// CHECK-DAG: %[[TAU:.+]] = arith.constant 0.899999976 : f32
// CHECK-DAG: %[[MAXB:.+]] = arith.constant 6 : index
// CHECK-DAG: %[[MINB:.+]] = arith.constant 2 : index
// CHECK-DAG: %[[NBK:.+]] = tensor.dim %[[S]], %c3
// CHECK: %[[RES:.+]]:2 = scf.for %[[B:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args(%{{.+}} = %[[C0]], %{{.+}} = %[[I0]])
// CHECK: scf.for %[[G:.+]] = %{{.+}} to %{{.+}} step
// CHECK: scf.for %[[ROW:.+]] = %{{.+}} to %{{.+}} step
// Causal: the row sees blocks [0, min(I + 1, NBk)).
// CHECK: %[[NEXT:.+]] = arith.addi %[[ROW]], %{{.+}} : index
// CHECK: %[[NVIS:.+]] = arith.minsi %[[NEXT]], %[[NBK]] : index
// Total visible mass.
// CHECK: %[[TOTAL:.+]] = scf.for {{.+}} to %[[NVIS]]
// CHECK: tensor.extract %[[S]]
// CHECK: arith.addf
// Threshold and the top-p loop, bounded by min/max blocks and the visible count.
// CHECK: %[[THR:.+]] = arith.mulf %[[TOTAL]], %[[TAU]] : f32
// CHECK: scf.while
// CHECK: arith.cmpi slt, %{{.+}}, %[[MINB]] : index
// CHECK: arith.cmpf olt, %{{.+}}, %[[THR]] : f32
// CHECK: arith.cmpi slt, %{{.+}}, %[[NVIS]] : index
// CHECK: arith.cmpi slt, %{{.+}}, %[[MAXB]] : index
// CHECK: scf.condition
// Arg-max over the free visible blocks (strictly greater: lowest J on ties).
// CHECK: scf.for {{.+}} to %[[NVIS]]
// CHECK: arith.cmpf ogt
// Padding with -1 and the count.
// CHECK: tensor.insert %c-1_i32
// CHECK: arith.index_cast %{{.+}} : index to i32
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
