// RUN: unisparse-opt %s --convert-unisparse-to-linalg --canonicalize | FileCheck %s
// The slot map of concat_reversed (maps print before the functions).
// CHECK-DAG: #[[$REV:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, -d3 + 7, d4)>

// Pooling is a reduction over expanded views: the full composites read
// expand_shape [B, H, N / 16, 16, D] of the tokens [0, 16 * (N floordiv 16)),
// the partial last composite reads its tokens [B, H, N mod 16, D] with no t
// dim in the map, and nothing is read at a computed index. head_dim (d4), the
// contiguous dim, is the innermost loop, after the token reduction (d3). head_factor =
// kv_group = 2: each group's heads are 2 replicas of one source head, so the
// heads map one to one.
// CHECK-DAG: #[[$FULL:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
// CHECK-DAG: #[[$TAIL:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d3, d4)>
// CHECK-DAG: #[[$OUT:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d4)>
// CHECK-DAG: #[[$BIN:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d3, d4, d5)>
// CHECK-DAG: #[[$BOUT:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d5)>
// CHECK-DAG: #[[$GIN:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d3, d2, d4, d5)>
// CHECK-LABEL: func.func @compress
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x2x?x32xbf16>, %[[INIT:[^:]+]]: tensor<1x2x?x32xf32>)
// CHECK-NOT: tensor.extract %
// CHECK: %[[N:.+]] = tensor.dim %[[X]], %{{.+}} : tensor<1x2x?x32xbf16>
// CHECK: %[[ACC:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[INIT]] :
// CHECK: %[[FULLX:.+]] = tensor.extract_slice %[[X]][0, 0, 0, 0] [1, 2, %{{.+}}, 32]
// CHECK: %[[VIEW:.+]] = tensor.expand_shape %[[FULLX]] {{\[}}[0], [1], [2, 3], [4]] output_shape [1, 2, %{{.+}}, 16, 32] : tensor<1x2x?x32xbf16> into tensor<1x2x?x16x32xbf16>
// CHECK: %[[FULLOUT:.+]] = tensor.extract_slice %[[ACC]]
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [#[[$FULL]], #[[$OUT]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%[[VIEW]] : tensor<1x2x?x16x32xbf16>) outs(%[[FULLOUT]] : tensor<1x2x?x32xf32>)
// CHECK: arith.extf
// CHECK: arith.addf
// CHECK: %[[ACC2:.+]] = tensor.insert_slice %[[SUM]] into %[[ACC]]
// CHECK: %[[TAILX:.+]] = tensor.extract_slice %[[X]][0, 0, %{{.+}}, 0] [1, 2, %{{.+}}, 32]
// CHECK: %[[TAILSUM:.+]] = linalg.generic {indexing_maps = [#[[$TAIL]], #[[$OUT]]], {{.+}} ins(%[[TAILX]] : tensor<1x2x?x32xbf16>)
// CHECK: %[[ACC3:.+]] = tensor.insert_slice %[[TAILSUM]] into %[[ACC2]]
// The mean divides by the tokens the composite has, min(16, N - 16 t).
// CHECK: %[[MEAN:.+]] = linalg.generic {{.+}} outs(%[[ACC3]] : tensor<1x2x?x32xf32>)
// CHECK: %[[T:.+]] = linalg.index 2 : index
// CHECK: %[[START:.+]] = arith.muli %[[T]], %[[SF:.+]] : index
// CHECK: %[[REST:.+]] = arith.subi %[[N]], %[[START]] : index
// CHECK: %[[REAL:.+]] = arith.minsi %[[REST]], %[[SF]] : index
// CHECK: arith.divf
// CHECK: return %[[MEAN]]
func.func @compress(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x32xf32>) -> tensor<1x2x?x32xf32> {
  %r = unisparse.compress {seq_factor = 16, head_factor = 2, kv_group = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x32xf32>) -> tensor<1x2x?x32xf32>
  return %r : tensor<1x2x?x32xf32>
}

// Static N = 100 = 12 * 8 + 4: 96 tokens expand to [12, 8], the last 4 make
// composite 12. f32 input: no extension.
// CHECK-LABEL: func.func @compress_f32
// CHECK-NOT: arith.extf
// CHECK: tensor.expand_shape %{{.+}} output_shape [2, 4, 12, 8, 8] : tensor<2x4x96x8xf32> into tensor<2x4x12x8x8xf32>
// CHECK: tensor.extract_slice %{{.+}}[0, 0, 96, 0] [2, 4, 4, 8] [1, 1, 1, 1] : tensor<2x4x100x8xf32> to tensor<2x4x4x8xf32>
// CHECK: tensor.extract_slice %{{.+}}[0, 0, 12, 0] [2, 4, 1, 8] [1, 1, 1, 1] : tensor<2x4x13x8xf32> to tensor<2x4x1x8xf32>
// CHECK: return
func.func @compress_f32(%x: tensor<2x4x100x8xf32>, %o: tensor<2x4x13x8xf32>) -> tensor<2x4x13x8xf32> {
  %r = unisparse.compress {seq_factor = 8} ins(%x : tensor<2x4x100x8xf32>) outs(%o : tensor<2x4x13x8xf32>) -> tensor<2x4x13x8xf32>
  return %r : tensor<2x4x13x8xf32>
}

// GQA keys (kv_group = 4): the destination heads expand to [kv heads, 4] and
// the source head is broadcast over the replica dim d2.
// CHECK-LABEL: func.func @replicate
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x2x64x8xf32>, %[[INIT:[^:]+]]: tensor<1x8x4x8xf32>)
// CHECK: %[[HEADS:.+]] = tensor.expand_shape %[[INIT]] {{\[}}[0], [1, 2], [3], [4]] output_shape [1, 2, 4, 4, 8] : tensor<1x8x4x8xf32> into tensor<1x2x4x4x8xf32>
// CHECK: %[[ZERO:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%[[HEADS]] :
// CHECK: %[[VIEW:.+]] = tensor.expand_shape %[[X]] {{.+}} into tensor<1x2x4x16x8xf32>
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [#[[$BIN]], #[[$BOUT]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%[[VIEW]] : tensor<1x2x4x16x8xf32>) outs(%[[ZERO]] : tensor<1x2x4x4x8xf32>)
// CHECK: tensor.collapse_shape %[[SUM]] {{\[}}[0], [1, 2], [3], [4]] : tensor<1x2x4x4x8xf32> into tensor<1x8x4x8xf32>
func.func @replicate(%x: tensor<1x2x64x8xf32>, %o: tensor<1x8x4x8xf32>) -> tensor<1x8x4x8xf32> {
  %r = unisparse.compress {seq_factor = 16, kv_group = 4} ins(%x : tensor<1x2x64x8xf32>) outs(%o : tensor<1x8x4x8xf32>) -> tensor<1x8x4x8xf32>
  return %r : tensor<1x8x4x8xf32>
}

// Head pooling (head_factor = 2): the input heads expand to [groups, 2] and
// both the head (d3) and the token (d4) dims are reductions.
// CHECK-LABEL: func.func @group
// CHECK: %[[VIEW:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0], [1, 2], [3, 4], [5]] output_shape [1, 2, 2, 4, 16, 8] : tensor<1x4x64x8xf16> into tensor<1x2x2x4x16x8xf16>
// CHECK: linalg.generic {indexing_maps = [#[[$GIN]], #{{.+}}], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]} ins(%[[VIEW]] :
// The mean divides by the tokens times the 2 heads.
// CHECK: %[[REAL:.+]] = arith.minsi
// CHECK: arith.muli %[[REAL]], %c2 : index
func.func @group(%x: tensor<1x4x64x8xf16>, %o: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %r = unisparse.compress {seq_factor = 16, head_factor = 2} ins(%x : tensor<1x4x64x8xf16>) outs(%o : tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %r : tensor<1x2x4x8xf32>
}

// A group straddling source heads (head_factor 4, kv_group 6, gcd 2): each
// source head is broadcast to 3 replicas, then pairs of replicas reduced.
// CHECK-LABEL: func.func @straddle
// CHECK: %[[REP:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<1x2x3x4x8xf32>)
// CHECK: %[[MERGED:.+]] = tensor.collapse_shape %[[REP]] {{.+}} into tensor<1x6x4x8xf32>
// CHECK: %[[PAIRS:.+]] = tensor.expand_shape %[[MERGED]] {{.+}} into tensor<1x3x2x4x8xf32>
// CHECK: linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%[[PAIRS]] : tensor<1x3x2x4x8xf32>)
func.func @straddle(%x: tensor<1x2x64x8xf32>, %o: tensor<1x3x4x8xf32>) -> tensor<1x3x4x8xf32> {
  %r = unisparse.compress {seq_factor = 16, head_factor = 4, kv_group = 6} ins(%x : tensor<1x2x64x8xf32>) outs(%o : tensor<1x3x4x8xf32>) -> tensor<1x3x4x8xf32>
  return %r : tensor<1x3x4x8xf32>
}

// concat_reversed: the heads pooled by a seq_factor = 1 compress, zero-padded
// to T * 8 tokens, viewed as [.., T, 8, D], copied with slot a <- 7 - a.
// CHECK-LABEL: func.func @concat_reversed
// CHECK-SAME: (%{{[^:]+}}: tensor<1x2x?x32xbf16>, %[[OUT:[^:]+]]: tensor<1x2x?x8x32xf32>)
// CHECK: %[[VIEW:.+]] = tensor.expand_shape %{{.+}} {{\[}}[0], [1], [2, 3], [4]] output_shape [1, 2, %{{.+}}, 8, 32] : tensor<1x2x?x32xf32> into tensor<1x2x?x8x32xf32>
// CHECK: linalg.generic {indexing_maps = [#[[$REV]], #{{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%[[VIEW]] : tensor<1x2x?x8x32xf32>) outs(%[[OUT]] : tensor<1x2x?x8x32xf32>)
func.func @concat_reversed(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x8x32xf32>) -> tensor<1x2x?x8x32xf32> {
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<concat_reversed>}
      ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x8x32xf32>) -> tensor<1x2x?x8x32xf32>
  return %r : tensor<1x2x?x8x32xf32>
}

// A 16-bit destination (the GPU's tensor-core composites): the sums stay in
// an f32 tensor, the mean is rounded once into the destination.
// CHECK-LABEL: func.func @compress_bf16
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x2x?x32xbf16>, %[[INIT:[^:]+]]: tensor<1x2x?x32xbf16>)
// CHECK: %[[ACC0:.+]] = tensor.empty(%{{.+}}) : tensor<1x2x?x32xf32>
// CHECK: linalg.fill ins(%{{.+}} : f32) outs(%[[ACC0]] : tensor<1x2x?x32xf32>)
// CHECK: %[[MEAN:.+]] = linalg.generic {{.+}} ins(%{{.+}} : tensor<1x2x?x32xf32>) outs(%[[INIT]] : tensor<1x2x?x32xbf16>)
// CHECK: %[[M:.+]] = arith.divf
// CHECK: %[[R:.+]] = arith.truncf %[[M]] : f32 to bf16
// CHECK: linalg.yield %[[R]] : bf16
// CHECK: return %[[MEAN]]
func.func @compress_bf16(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x32xbf16>) -> tensor<1x2x?x32xbf16> {
  %r = unisparse.compress {seq_factor = 16} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x32xbf16>) -> tensor<1x2x?x32xbf16>
  return %r : tensor<1x2x?x32xbf16>
}
