// RUN: unisparse-opt %s --convert-unisparse-to-linalg --canonicalize | FileCheck %s

// block = 64, c_q = 16, c_k = 32: 4 query and 2 key composites per block.
// Two passes recompute the composite logits; the [Tq, Tk] map is never
// materialised (no tensor of that shape is created).
// CHECK-DAG: #[[$KEYS:.+]] = affine_map<(d0, d1, d2, d3) -> (d3)>
// CHECK-DAG: #[[$ROW:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-DAG: #[[$WIN:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d5)>
// CHECK-LABEL: func.func @score
// CHECK-SAME: (%[[QC:[^:]+]]: tensor<1x4x?x32xf32>, %[[KC:[^:]+]]: tensor<1x4x?x32xf32>, %[[INIT:[^:]+]]: tensor<1x4x?x?xf32>)
// CHECK-DAG: %[[NEGINF:.+]] = arith.constant 0xFF800000 : f32
// 1/sqrt(32):
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 0.176776692 : f32
// CHECK-DAG: %[[TQ:.+]] = tensor.dim %[[QC]], %c2
// CHECK-DAG: %[[TK:.+]] = tensor.dim %[[KC]], %c2
// CHECK-NOT: tensor.empty(%[[TQ]], %[[TK]])
// Pass 1: online row max / row sum.
// CHECK: %[[STATS:.+]]:2 = linalg.generic {indexing_maps = [#[[$KEYS]], #[[$ROW]], #[[$ROW]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
// CHECK: %[[T:.+]] = linalg.index 2
// CHECK: %[[U:.+]] = linalg.index 3
// CHECK: %[[KFIRST:.+]] = arith.muli %[[U]], %c32 : index
// CHECK: %[[QLAST:.+]] = arith.subi
// CHECK: %[[VIS:.+]] = arith.cmpi sle, %[[KFIRST]], %[[QLAST]] : index
// CHECK: %[[X:.+]] = scf.if %[[VIS]] -> (f32)
// CHECK: scf.for
// CHECK: tensor.extract %[[QC]]
// CHECK: tensor.extract %[[KC]]
// CHECK: arith.mulf %{{.+}}, %[[SCALE]]
// CHECK: } else {
// CHECK: scf.yield %[[NEGINF]]
// CHECK: %[[MNEW:.+]] = arith.maximumf
// CHECK: math.exp
// CHECK: linalg.yield %[[MNEW]], %{{.+}} : f32, f32
// Pass 2: block sums of exp(x - m) / l into the zeroed destination.
// CHECK: %[[ZEROED:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[INIT]] :
// CHECK: %[[S:.+]] = linalg.generic {indexing_maps = [#[[$WIN]], {{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%{{.+}} : tensor<4x2xf32>) outs(%[[ZEROED]] :
// CHECK: scf.if
// CHECK: tensor.extract %[[STATS]]#0
// CHECK: tensor.extract %[[STATS]]#1
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: return %[[S]]
func.func @score(%a: tensor<1x4x?x32xf32>, %b: tensor<1x4x?x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.block_score {block = 64, c_q = 16, c_k = 32} ins(%a, %b : tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// Non-causal with an explicit scale: no mask, the given scale.
// CHECK-LABEL: func.func @score_noncausal
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 5.000000e-01 : f32
// CHECK-NOT: arith.cmpi sle
// CHECK: return
func.func @score_noncausal(%a: tensor<1x2x8x16xf32>, %b: tensor<1x2x8x16xf32>, %s: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %r = unisparse.block_score {block = 32, c_q = 8, c_k = 8, causal = false, scale = 0.5} ins(%a, %b : tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) outs(%s : tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %r : tensor<1x2x2x2xf32>
}
