// RUN: unisparse-opt %s --convert-unisparse-to-linalg --canonicalize | FileCheck %s
// Maps of the estimators (printed before the functions): the antidiagonal
// slot contraction over (b, g, t, u, a, d), and the max over query composites.
// CHECK-DAG: #[[$QS:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d4, d5)>
// CHECK-DAG: #[[$KS:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d3, d4, d5)>
// CHECK-DAG: #[[$SLOTS:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d4)>
// CHECK-DAG: #[[$ID5:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
// CHECK-DAG: #[[$PERROW:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4, d3)>

// block = 64, c_q = 16, c_k = 32: 4 query and 2 key composites per block.
// The logits are one contraction into the [Tq, Tk] corner of a map padded to
// whole blocks; row max and exp(x - m) are masked by linalg.index; the block
// sums reduce an expanded view [B, Hg, NBq, 4, NBk, 2]. No operand is read at
// a computed index and no generic body runs its own loop.
// CHECK-DAG: #[[$Q:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
// CHECK-DAG: #[[$K:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
// CHECK-DAG: #[[$L:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[$ID:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[$ROW:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-DAG: #[[$BLK:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d4, d3, d5)>
// CHECK-DAG: #[[$BROW:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d4)>
// CHECK-LABEL: func.func @score
// CHECK-SAME: (%[[QC:[^:]+]]: tensor<1x4x?x32xf32>, %[[KC:[^:]+]]: tensor<1x4x?x32xf32>, %[[INIT:[^:]+]]: tensor<1x4x?x?xf32>)
// CHECK-NOT: tensor.extract %
// CHECK-NOT: scf.for
// CHECK-DAG: %[[NEGINF:.+]] = arith.constant 0xFF800000 : f32
// 1/sqrt(32):
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 0.176776692 : f32
// CHECK-DAG: %[[TQ:.+]] = tensor.dim %[[QC]], %c2
// CHECK-DAG: %[[TK:.+]] = tensor.dim %[[KC]], %c2
// CHECK: %[[MAP:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<1x4x?x?xf32>)
// CHECK: %[[CORNER:.+]] = tensor.extract_slice %[[MAP]][0, 0, 0, 0] [1, 4, %[[TQ]], %[[TK]]]
// CHECK: %[[LOGITS:.+]] = linalg.generic {indexing_maps = [#[[$Q]], #[[$K]], #[[$L]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[QC]], %[[KC]] : {{.+}}) outs(%[[CORNER]] :
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: %[[PADDED:.+]] = tensor.insert_slice %[[LOGITS]] into %[[MAP]]
// Row max of the masked, scaled logits, NaN logits left out, as a
// vectorizable `nnan, nsz` maxnumf (no NaN reaches it), in two exact steps:
// per lane j of the key blocks over [B, Hg, Tq', NBk, 2] (J reduced, j
// innermost and parallel, key composite u = J * 2 + j), then over the lanes.
// CHECK: %[[BYLANE:.+]] = tensor.expand_shape %[[PADDED]] {{\[}}[0], [1], [2], [3, 4]] output_shape [1, 4, %{{.+}}, %{{.+}}, 2]
// CHECK: %[[LANES:.+]] = linalg.generic {indexing_maps = [#[[$ID5]], #[[$Q]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%[[BYLANE]] : tensor<1x4x?x?x2xf32>) outs(%{{.+}} : tensor<1x4x?x2xf32>)
// CHECK: ^bb0(%{{.+}}: f32, %[[ACC:.+]]: f32):
// CHECK: %[[T:.+]] = linalg.index 2
// CHECK: %[[J:.+]] = linalg.index 3
// CHECK: %[[JK:.+]] = arith.muli %[[J]], %c2
// CHECK: %[[LANE:.+]] = linalg.index 4
// CHECK: %[[U:.+]] = arith.addi %[[JK]], %[[LANE]]
// CHECK: %[[X:.+]] = arith.mulf %{{.+}}, %[[SCALE]]
// CHECK: %[[ISNUM:.+]] = arith.cmpf ord, %[[X]], %[[X]] : f32
// CHECK: %[[KFIRST:.+]] = arith.muli %[[U]], %c32 : index
// CHECK: %[[QLAST:.+]] = arith.subi
// CHECK: arith.cmpi sle, %[[KFIRST]], %[[QLAST]] : index
// CHECK: %[[USE:.+]] = arith.andi %{{.+}}, %[[ISNUM]] : i1
// CHECK: %[[XM:.+]] = arith.select %[[USE]], %[[X]], %[[NEGINF]]
// CHECK: %[[M:.+]] = arith.maxnumf %[[ACC]], %[[XM]] fastmath<nnan,nsz> : f32
// CHECK: linalg.yield %[[M]]
// CHECK: %[[MAX:.+]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$ROW]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[LANES]] : tensor<1x4x?x2xf32>)
// CHECK: arith.maxnumf %{{.+}}, %{{.+}} fastmath<nnan,nsz> : f32
// exp(x - m), in place.
// CHECK: %[[PROBS:.+]] = linalg.generic {indexing_maps = [#[[$ROW]], #[[$ID]]], {{.+}} ins(%[[MAX]] : {{.+}}) outs(%[[PADDED]] :
// CHECK: math.exp
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [#[[$ID]], #[[$ROW]]], {{.+}} ins(%[[PROBS]] :
// Block sums over the expanded view; padded query rows add 0.
// CHECK: %[[VIEW:.+]] = tensor.expand_shape %[[PROBS]] {{\[}}[0], [1], [2, 3], [4, 5]] {{.+}} into tensor<1x4x?x4x?x2xf32>
// CHECK: %[[SUMS:.+]] = tensor.expand_shape %[[SUM]] {{.+}} into tensor<1x4x?x4xf32>
// CHECK: %[[ZEROED:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[INIT]] :
// CHECK: %[[S:.+]] = linalg.generic {indexing_maps = [#[[$BLK]], #[[$BROW]], #{{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%[[VIEW]], %[[SUMS]] : {{.+}}) outs(%[[ZEROED]] :
// CHECK: arith.cmpi slt, %{{.+}}, %[[TQ]] : index
// CHECK: arith.divf
// CHECK: return %[[S]]
func.func @score(%a: tensor<1x4x?x32xf32>, %b: tensor<1x4x?x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.block_score {block = 64, c_q = 16, c_k = 32} ins(%a, %b : tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// Non-causal with an explicit scale: no causal mask, the given scale; static
// sizes that fill whole blocks need no padding.
// CHECK-LABEL: func.func @score_noncausal
// CHECK-DAG: %[[SCALE:.+]] = arith.constant 5.000000e-01 : f32
// CHECK-NOT: arith.cmpi sle
// CHECK: linalg.generic {{.+}} outs(%{{.+}} : tensor<1x2x8x8xf32>)
// CHECK: return
func.func @score_noncausal(%a: tensor<1x2x8x16xf32>, %b: tensor<1x2x8x16xf32>, %s: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %r = unisparse.block_score {block = 32, c_q = 8, c_k = 8, causal = false, scale = 0.5} ins(%a, %b : tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) outs(%s : tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %r : tensor<1x2x2x2xf32>
}

// antidiag_lse: the slot logits [.., Tq, Tk, s] from one contraction (d
// reduced), their max and sum of exp over the slots, L = m + log(e / s) /
// scale into the corner; with query_reduce = max the block score is the max
// over the block's query composites of their per-block sums.
// CHECK-LABEL: func.func @antidiag_lse_max
// CHECK-SAME: (%[[QC:[^:]+]]: tensor<1x2x20x8x32xf32>, %[[KC:[^:]+]]: tensor<1x2x20x8x32xf32>, %[[INIT:[^:]+]]: tensor<1x2x3x3xf32>)
// CHECK-NOT: tensor.extract %
// CHECK: %[[SLOTV:.+]] = linalg.generic {indexing_maps = [#[[$QS]], #[[$KS]], #[[$SLOTS]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[QC]], %[[KC]] : {{.+}}) outs(%{{.+}} : tensor<1x2x20x20x8xf32>)
// CHECK: %[[SMAX:.+]] = linalg.generic {indexing_maps = [#[[$ID5]], #[[$L]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[SLOTV]] : tensor<1x2x20x20x8xf32>)
// CHECK: arith.maximumf
// CHECK: %[[SSUM:.+]] = linalg.generic {indexing_maps = [#[[$ID5]], #[[$L]], #[[$L]]], {{.+}} ins(%[[SLOTV]], %[[SMAX]] :
// CHECK: math.exp
// CHECK: linalg.generic {{.+}} ins(%[[SMAX]], %[[SSUM]] :
// CHECK: math.log
// CHECK: %[[ROWS:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<1x2x3x8x3xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[$PERROW]], #[[$L]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[ROWS]] : tensor<1x2x3x8x3xf32>) outs(%{{.+}} : tensor<1x2x3x3xf32>)
// CHECK: arith.maximumf
func.func @antidiag_lse_max(%qc: tensor<1x2x20x8x32xf32>, %kc: tensor<1x2x20x8x32xf32>,
                            %s: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %r = unisparse.block_score {block = 64, c_q = 8, c_k = 8, estimator = #unisparse.estimator<antidiag_lse>,
                              query_reduce = #unisparse.query_reduce<max>}
      ins(%qc, %kc : tensor<1x2x20x8x32xf32>, tensor<1x2x20x8x32xf32>) outs(%s : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  return %r : tensor<1x2x3x3xf32>
}

// antidiag: one contraction over (a, d) into [Tq, Tk], then a scaling by 1/s.
// CHECK-LABEL: func.func @antidiag
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [#[[$QS]], #[[$KS]], #{{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]}
// CHECK: linalg.generic {{.+}} outs(%[[SUM]] : tensor<1x2x20x20xf32>)
// CHECK: arith.mulf %{{.+}}, %{{.+}} : f32
func.func @antidiag(%qc: tensor<1x2x20x8x32xf32>, %kc: tensor<1x2x20x8x32xf32>,
                    %s: tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32> {
  %r = unisparse.block_score {block = 64, c_q = 8, c_k = 8, estimator = #unisparse.estimator<antidiag>}
      ins(%qc, %kc : tensor<1x2x20x8x32xf32>, tensor<1x2x20x8x32xf32>) outs(%s : tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  return %r : tensor<1x2x3x3xf32>
}

// Key composites shared by kv_group = 2 head groups, untiled: kc is
// broadcast to one head per head group (a new dim after the heads,
// collapsed into them), then scored as without sharing.
// CHECK-LABEL: func.func @shared_keys
// CHECK-SAME: (%[[QC:[^:]+]]: tensor<1x4x8x16xf32>, %[[KC:[^:]+]]: tensor<1x2x8x16xf32>
// CHECK: %[[WIDE:.+]] = linalg.broadcast ins(%[[KC]] : tensor<1x2x8x16xf32>) outs(%{{.+}} : tensor<1x2x2x8x16xf32>) dimensions = [2]
// CHECK: %[[SHARED:.+]] = tensor.collapse_shape %[[WIDE]] {{\[\[}}0], [1, 2], [3], [4]] : tensor<1x2x2x8x16xf32> into tensor<1x4x8x16xf32>
// CHECK: linalg.generic {{.+}} ins(%[[QC]], %[[SHARED]] :
// CHECK-NOT: unisparse.block_score
func.func @shared_keys(%a: tensor<1x4x8x16xf32>, %b: tensor<1x2x8x16xf32>, %s: tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32> {
  %r = unisparse.block_score {block = 32, c_q = 8, c_k = 8, kv_group = 2} ins(%a, %b : tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return %r : tensor<1x4x2x2xf32>
}
