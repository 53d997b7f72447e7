// RUN: unisparse-opt %s --convert-unisparse-to-linalg --canonicalize | FileCheck %s

// block = 64, c_q = 16, c_k = 32: 4 query and 2 key composites per block.
// CHECK-DAG: #[[$QMAP:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
// CHECK-DAG: #[[$KMAP:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
// CHECK-DAG: #[[$BLOCK:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2 * 4 + d4, d3 * 2 + d5)>
// CHECK-LABEL: func.func @score
// CHECK-SAME: (%[[QC:[^:]+]]: tensor<1x4x?x32xf32>, %[[KC:[^:]+]]: tensor<1x4x?x32xf32>, %[[INIT:[^:]+]]: tensor<1x4x?x?xf32>)
// CHECK-DAG: %[[NEGINF:.+]] = arith.constant 0xFF800000 : f32
// 1/sqrt(32):
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 0.176776692 : f32
// CHECK: %[[LOGITS:.+]] = linalg.generic {indexing_maps = [#[[$QMAP]], #[[$KMAP]], {{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[QC]], %[[KC]] :
// Row max of the masked, scaled logits (causal at composite granularity).
// CHECK: %[[MAX:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[LOGITS]] :
// CHECK: arith.mulf %{{.+}}, %[[SCALE]]
// CHECK: %[[T:.+]] = linalg.index 2
// CHECK: %[[U:.+]] = linalg.index 3
// CHECK: %[[KFIRST:.+]] = arith.muli %[[U]], %{{.+}} : index
// CHECK: %[[QLAST:.+]] = arith.subi
// CHECK: %[[MASKED:.+]] = arith.cmpi sgt, %[[KFIRST]], %[[QLAST]] : index
// CHECK: arith.select %[[MASKED]], %[[NEGINF]]
// CHECK: arith.maximumf
// Row sum of exp(x - max).
// CHECK: %[[SUM:.+]] = linalg.generic {{.+}} ins(%[[LOGITS]], %[[MAX]] :
// CHECK: math.exp
// CHECK: arith.addf
// Normalised map.
// CHECK: %[[PROBS:.+]] = linalg.generic {{.+}} ins(%[[LOGITS]], %[[MAX]], %[[SUM]] :
// CHECK: arith.divf
// Zero-padded to whole blocks, then summed per block into the destination.
// CHECK: %[[PAD:.+]] = tensor.pad %[[PROBS]]
// CHECK: %[[ZEROED:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[INIT]] :
// CHECK: %[[S:.+]] = linalg.generic {indexing_maps = [#[[$BLOCK]], {{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%[[PAD]], %{{.+}} : tensor<1x4x?x?xf32>, tensor<4x2xf32>) outs(%[[ZEROED]] :
// CHECK: return %[[S]]
func.func @score(%a: tensor<1x4x?x32xf32>, %b: tensor<1x4x?x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.block_score {block = 64, c_q = 16, c_k = 32} ins(%a, %b : tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// Non-causal with an explicit scale: no mask, the given scale.
// CHECK-LABEL: func.func @score_noncausal
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 5.000000e-01 : f32
// CHECK-NOT: arith.cmpi
// CHECK: return
func.func @score_noncausal(%a: tensor<1x2x8x16xf32>, %b: tensor<1x2x8x16xf32>, %s: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %r = unisparse.block_score {block = 32, c_q = 8, c_k = 8, causal = false, scale = 0.5} ins(%a, %b : tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) outs(%s : tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %r : tensor<1x2x2x2xf32>
}
