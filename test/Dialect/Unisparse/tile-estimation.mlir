// RUN: unisparse-opt %s --unisparse-tile-estimation --canonicalize | FileCheck %s
// RUN: unisparse-opt %s --unisparse-tile-estimation="query-blocks=2" --canonicalize | FileCheck %s --check-prefix=TWO

// block = 64, c_q = 16, c_k = 32: rq = 4 query and rk = 2 key composites per
// block. Each (head group, query block) tile scores its 4 query composites
// against the keys of blocks 0 .. I only (causal): min(Tk, (I + 1) * 2), with
// query_offset = 4 * I; the key blocks past I are the fill's zeros.
// CHECK-DAG: #[[$QSTART:.+]] = affine_map<()[s0] -> (s0 * 4)>
// CHECK-DAG: #[[$QCOUNT:.+]] = affine_map<()[s0, s1] -> (s0 * -4 + s1, 4)>
// CHECK-DAG: #[[$KEYS:.+]] = affine_map<()[s0, s1] -> (s1, s0 * 2 + 2)>
// CHECK-DAG: #[[$KBLOCKS:.+]] = affine_map<()[s0] -> (s0 ceildiv 2)>
// CHECK-DAG: #[[$KHEAD:.+]] = affine_map<()[s0] -> (s0 floordiv 2)>
// CHECK-LABEL: func.func @score
// CHECK-SAME: (%[[QC:[^:]+]]: tensor<1x4x?x32xf32>, %[[KC:[^:]+]]: tensor<1x4x?x32xf32>, %[[INIT:[^:]+]]: tensor<1x4x?x?xf32>)
// CHECK: scf.forall (%[[G:.+]], %[[I:.+]]) in (4, %{{.+}}) shared_outs(%[[OUT:.+]] = %[[INIT]])
// CHECK-DAG: %[[Q0:.+]] = affine.apply #[[$QSTART]]()[%[[I]]]
// CHECK-DAG: %[[NQ:.+]] = affine.min #[[$QCOUNT]]()[%[[I]], %{{.+}}]
// CHECK-DAG: %[[NK:.+]] = affine.min #[[$KEYS]]()[%[[I]], %{{.+}}]
// CHECK-DAG: %[[NB:.+]] = affine.apply #[[$KBLOCKS]]()[%[[NK]]]
// CHECK-DAG: %[[QT:.+]] = tensor.extract_slice %[[QC]][0, %[[G]], %[[Q0]], 0] [1, 1, %[[NQ]], 32]
// CHECK-DAG: %[[KT:.+]] = tensor.extract_slice %[[KC]][0, %[[G]], 0, 0] [1, 1, %[[NK]], 32]
// CHECK: %[[TILE:.+]] = tensor.extract_slice %[[OUT]][0, %[[G]], %[[I]], 0] [1, 1, 1, %{{.+}}]
// CHECK: %[[ZERO:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[TILE]] : tensor<1x1x1x?xf32>)
// CHECK: %[[CORNER:.+]] = tensor.extract_slice %[[ZERO]][0, 0, 0, 0] [1, 1, 1, %[[NB]]]
// CHECK: %[[S:.+]] = unisparse.block_score {{.+}} ins(%[[QT]], %[[KT]] : tensor<1x1x?x32xf32>, tensor<1x1x?x32xf32>) query_offset(%{{.+}}) outs(%[[CORNER]] : tensor<1x1x1x?xf32>)
// CHECK: %[[FULL:.+]] = tensor.insert_slice %[[S]] into %[[ZERO]][0, 0, 0, 0] [1, 1, 1, %[[NB]]]
// CHECK: tensor.parallel_insert_slice %[[FULL]] into %[[OUT]][0, %[[G]], %[[I]], 0] [1, 1, 1, %{{.+}}]

// Two query blocks per tile (the last may hold one): keys up to the end of
// the tile, min(Tk, (I + size) * 2).
// TWO-DAG: affine_map<()[s0, s1, s2] -> (s2, s0 * 2 + s1 * 2)>
// TWO-LABEL: func.func @score
// TWO: scf.forall (%{{.+}}, %{{.+}}) = (0, 0) to (4, %{{.+}}) step (1, 2)
// TWO: unisparse.block_score {{.+}} outs(%{{.+}} : tensor<1x1x?x?xf32>)
func.func @score(%a: tensor<1x4x?x32xf32>, %b: tensor<1x4x?x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.block_score {block = 64, c_q = 16, c_k = 32} ins(%a, %b : tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// Non-causal: every tile reads all keys and writes its whole row, no fill.
// CHECK-LABEL: func.func @noncausal
// CHECK: scf.forall
// CHECK-NOT: linalg.fill
// CHECK: unisparse.block_score {{.+}} ins(%{{.+}}, %{{.+}} : tensor<1x1x?x16xf32>, tensor<1x1x8x16xf32>) query_offset(%{{.+}}) outs(%{{.+}} : tensor<1x1x1x2xf32>)
func.func @noncausal(%a: tensor<1x2x8x16xf32>, %b: tensor<1x2x8x16xf32>, %s: tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %r = unisparse.block_score {block = 32, c_q = 8, c_k = 8, causal = false} ins(%a, %b : tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) outs(%s : tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return %r : tensor<1x2x2x2xf32>
}

// A tile is not tiled again.
// CHECK-LABEL: func.func @tile
// CHECK-NOT: scf.forall
// CHECK: unisparse.block_score
func.func @tile(%a: tensor<1x1x4x16xf32>, %b: tensor<1x1x8x16xf32>, %s: tensor<1x1x1x2xf32>, %off: index) -> tensor<1x1x1x2xf32> {
  %r = unisparse.block_score {block = 32, c_q = 8, c_k = 8} ins(%a, %b : tensor<1x1x4x16xf32>, tensor<1x1x8x16xf32>) query_offset(%off) outs(%s : tensor<1x1x1x2xf32>) -> tensor<1x1x1x2xf32>
  return %r : tensor<1x1x1x2xf32>
}

// An antidiagonal estimator: rank-5 composites are sliced with their slots
// whole, and the tile keeps the estimator and the query reduction.
// CHECK-LABEL: func.func @antidiag_lse
// CHECK: scf.forall
// CHECK-DAG: %[[QT:.+]] = tensor.extract_slice %{{.+}}[0, %{{.+}}, %{{.+}}, 0, 0] [1, 1, %{{.+}}, 8, 32]
// CHECK-DAG: %[[KT:.+]] = tensor.extract_slice %{{.+}}[0, %{{.+}}, 0, 0, 0] [1, 1, %{{.+}}, 8, 32]
// CHECK: unisparse.block_score {{.+}}estimator = #unisparse.estimator<antidiag_lse>, query_reduce = #unisparse.query_reduce<max>{{.+}} ins(%[[QT]], %[[KT]] : tensor<1x1x?x8x32xf32>, tensor<1x1x?x8x32xf32>) query_offset(
func.func @antidiag_lse(%a: tensor<1x4x?x8x32xf32>, %b: tensor<1x4x?x8x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.block_score {block = 64, c_q = 8, c_k = 8, estimator = #unisparse.estimator<antidiag_lse>,
                              query_reduce = #unisparse.query_reduce<max>}
      ins(%a, %b : tensor<1x4x?x8x32xf32>, tensor<1x4x?x8x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// Key composites shared by kv_group = 2 head groups: the tile of head group
// g reads key head g floordiv 2 and shares nothing itself.
// CHECK-LABEL: func.func @shared_keys
// CHECK-SAME: (%{{[^:]+}}: tensor<1x4x?x32xf32>, %[[KC:[^:]+]]: tensor<1x2x?x32xf32>
// CHECK: scf.forall (%[[G:.+]], %{{.+}}) in (4, %{{.+}})
// CHECK: %[[KH:.+]] = affine.apply #[[$KHEAD]]()[%[[G]]]
// CHECK: %[[KT:.+]] = tensor.extract_slice %[[KC]][0, %[[KH]], 0, 0] [1, 1, %{{.+}}, 32]
// CHECK: unisparse.block_score {block = 64 : i64, c_k = 32 : i64, c_q = 16 : i64} ins(%{{.+}}, %[[KT]] : tensor<1x1x?x32xf32>, tensor<1x1x?x32xf32>) query_offset(
func.func @shared_keys(%a: tensor<1x4x?x32xf32>, %b: tensor<1x2x?x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.block_score {block = 64, c_q = 16, c_k = 32, kv_group = 2} ins(%a, %b : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}
