// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-linalg --canonicalize | FileCheck %s

// Outlier composites of keys (c = 16, two outliers, the first hot): the heads
// pooled by a seq_factor = 1 compress, the center and the squared distances
// by reductions, the probe from the pooled queries; one reduction over the 16
// slots per outlier with two results (best score, its slot); the rest's mean
// over the slots not taken; the slots written one by one. No operand is read
// at a computed index and no generic body runs its own loop.
// CHECK-LABEL: func.func @outlier_keys
// CHECK-NOT: tensor.extract %
// CHECK-NOT: scf.for
// The hot slot: the largest probe . x among the real slots.
// CHECK: %[[HOT:.+]]:2 = linalg.generic {{.+}}iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%{{.+}} : tensor<1x4x?x16xf32>) outs(%{{.+}}, %{{.+}} : tensor<1x4x?xf32>, tensor<1x4x?xindex>)
// The far slot: the largest squared distance, the hot slot excluded.
// CHECK: %[[FAR:.+]]:2 = linalg.generic {{.+}}ins(%{{.+}}, %[[HOT]]#1 : tensor<1x4x?x16xf32>, tensor<1x4x?xindex>) outs(%{{.+}}, %{{.+}} : tensor<1x4x?xf32>, tensor<1x4x?xindex>)
// CHECK: %[[REST:.+]] = tensor.insert_slice %{{.+}} into %{{.+}}[0, 0, 0, 0, 0] [1, 4, %{{.+}}, 1, 32] [1, 1, 1, 1, 1] : tensor<1x4x?x32xf32> into tensor<1x4x?x3x32xf32>
// An outlier token: a masked sum over the slots a, (b, g, t, a, d) with a
// reduced outside the coordinates d (the host's loops: d vectorizes).
// CHECK: %[[T1:.+]] = linalg.generic {{.+}}iterator_types = ["parallel", "parallel", "parallel", "reduction", "parallel"]} ins(%{{.+}}, %[[HOT]]#1, %{{.+}} : tensor<1x4x?x16x32xf32>, tensor<1x4x?xindex>, tensor<1x4x?x32xf32>)
// CHECK: %[[S1:.+]] = tensor.insert_slice %[[T1]] into %[[REST]][0, 0, 0, 1, 0]
// CHECK: %[[T2:.+]] = linalg.generic {{.+}}ins(%{{.+}}, %[[FAR]]#1, %{{.+}} : tensor<1x4x?x16x32xf32>, tensor<1x4x?xindex>, tensor<1x4x?x32xf32>)
// CHECK: %[[S2:.+]] = tensor.insert_slice %[[T2]] into %[[S1]][0, 0, 0, 2, 0]
// CHECK: return %[[S2]]
func.func @outlier_keys(%k: tensor<1x2x?x32xbf16>, %q: tensor<1x4x?x32xbf16>, %o: tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32> {
  %r = unisparse.compress {seq_factor = 16, kv_group = 2, pooling = #unisparse.pooling<outlier>, outliers = 2, hot = 1}
      ins(%k : tensor<1x2x?x32xbf16>) queries(%q : tensor<1x4x?x32xbf16>) outs(%o : tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32>
  return %r : tensor<1x4x?x3x32xf32>
}

// -----

// Query composites with the spread: one far row, then the rest's variance
// written into the last slot.
// CHECK-LABEL: func.func @outlier_queries
// CHECK: linalg.generic {{.+}}outs(%{{.+}}, %{{.+}} : tensor<1x4x?xf32>, tensor<1x4x?xindex>)
// CHECK-NOT: outs(%{{.+}}, %{{.+}} : tensor<1x4x?xf32>, tensor<1x4x?xindex>)
// CHECK: tensor.insert_slice %{{.+}}[0, 0, 0, 2, 0] [1, 4, %{{.+}}, 1, 32] [1, 1, 1, 1, 1] : tensor<1x4x?x32xf32> into tensor<1x4x?x3x32xf32>
func.func @outlier_queries(%q: tensor<1x4x?x32xf32>, %o: tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32> {
  %r = unisparse.compress {seq_factor = 16, pooling = #unisparse.pooling<outlier>, outliers = 1, spread = true}
      ins(%q : tensor<1x4x?x32xf32>) outs(%o : tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32>
  return %r : tensor<1x4x?x3x32xf32>
}

// -----

// Into bf16 composites (the GPU pipeline's narrowing, for a compress its
// kernel does not take): the slots are computed in f32 and each is rounded
// once before it is inserted.
// CHECK-LABEL: func.func @outlier_queries_bf16
// CHECK: %[[M:.+]] = linalg.generic {{.+}}ins(%{{.+}} : tensor<1x4x?x32xf32>) outs(%{{.+}} : tensor<1x4x?x32xbf16>)
// CHECK: arith.truncf %{{.+}} : f32 to bf16
// CHECK: tensor.insert_slice %[[M]] into %{{.+}}[0, 0, 0, 0, 0] [1, 4, %{{.+}}, 1, 32] [1, 1, 1, 1, 1] : tensor<1x4x?x32xbf16> into tensor<1x4x?x3x32xbf16>
// CHECK: tensor.insert_slice %{{.+}}[0, 0, 0, 2, 0] [1, 4, %{{.+}}, 1, 32] [1, 1, 1, 1, 1] : tensor<1x4x?x32xbf16> into tensor<1x4x?x3x32xbf16>
func.func @outlier_queries_bf16(%q: tensor<1x4x?x32xbf16>, %o: tensor<1x4x?x3x32xbf16>) -> tensor<1x4x?x3x32xbf16> {
  %r = unisparse.compress {seq_factor = 16, pooling = #unisparse.pooling<outlier>, outliers = 1, spread = true}
      ins(%q : tensor<1x4x?x32xbf16>) outs(%o : tensor<1x4x?x3x32xbf16>) -> tensor<1x4x?x3x32xbf16>
  return %r : tensor<1x4x?x3x32xbf16>
}

// -----

// The outlier scores: the slot products (b, g, t, a, u, s, d) into the corner
// of a map [B, Hg, Tq', 2, Tk', 3] padded to whole blocks (block 64, c_q 16,
// c_k 32: Tq' = 4 NBq, Tk' = 2 NBk); the logits and the spread-corrected
// logits rewritten in place; two (max, sum) pairs over the key slots (u, s);
// the spread from the query's last slot (a constant index in the map); the
// mixture over (a, s) into [B, Hg, Tq', Tk'] and the block maxima.
// CHECK-DAG: #[[$QSLOT:.+]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d1, d2, d3, d6)>
// CHECK-DAG: #[[$KSLOT:.+]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d1, d4, d5, d6)>
// CHECK-DAG: #[[$SPREAD:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, 2, d4)>
// CHECK-DAG: #[[$MIX:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d4, d3, d5)>
// CHECK-LABEL: func.func @outlier_score
// CHECK-SAME: (%[[QC:[^:]+]]: tensor<1x4x?x3x32xf32>, %[[KC:[^:]+]]: tensor<1x4x?x3x32xf32>
// CHECK-NOT: tensor.extract %
// CHECK-NOT: scf.for
// CHECK-DAG: %[[LOGW:.+]] = arith.constant 3.40119743 : f32
// CHECK-DAG: %[[REST:.+]] = arith.constant 9.375000e-01 : f32
// CHECK-DAG: %[[OUT:.+]] = arith.constant 6.250000e-02 : f32
// CHECK: %[[QR:.+]] = tensor.extract_slice %[[QC]][0, 0, 0, 0, 0] [1, 4, %{{.+}}, 2, 32]
// CHECK: %[[X:.+]] = linalg.generic {indexing_maps = [#[[$QSLOT]], #[[$KSLOT]], #{{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[QR]], %[[KC]] : tensor<1x4x?x2x32xf32>, tensor<1x4x?x3x32xf32>) outs(%{{.+}} : tensor<1x4x?x2x?x3xf32>)
// CHECK: %[[L:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<1x4x?x2x?x3xf32>)
// CHECK: %[[M1:.+]] = linalg.generic {{.+}}"reduction", "reduction"]} ins(%[[L]] : tensor<1x4x?x2x?x3xf32>) outs(%{{.+}} : tensor<1x4x?x2xf32>)
// CHECK: %[[L1:.+]] = linalg.generic {{.+}}"reduction", "reduction"]} ins(%[[L]], %[[M1]] :
// CHECK: math.exp
// CHECK: %[[V:.+]] = linalg.generic {indexing_maps = [#[[$SPREAD]], {{.+}} ins(%[[QC]] : tensor<1x4x?x3x32xf32>) outs(%{{.+}} : tensor<1x4x?x2xf32>)
// CHECK: %[[Y:.+]] = linalg.generic {{.+}} ins(%[[M1]], %[[L1]], %{{.+}}, %{{.+}} : tensor<1x4x?x2xf32>, tensor<1x4x?x2xf32>, tensor<1x4x?x2xf32>, tensor<1x4x?x3xf32>) outs(%[[L]] : tensor<1x4x?x2x?x3xf32>)
// CHECK: %[[M2:.+]] = linalg.generic {{.+}} ins(%[[Y]] : tensor<1x4x?x2x?x3xf32>) outs(%{{.+}} : tensor<1x4x?x2xf32>)
// CHECK: %[[L2:.+]] = linalg.generic {{.+}} ins(%[[Y]], %[[M2]] :
// CHECK: %[[A:.+]] = linalg.generic {indexing_maps = [#[[$MIX]], {{.+}}"reduction", "reduction"]} ins(%[[Y]], %[[M2]], %[[L2]] : {{.+}}) outs(%{{.+}} : tensor<1x4x?x?xf32>)
// CHECK: arith.select %{{.+}}, %[[REST]], %[[OUT]] : f32
// CHECK: linalg.generic {{.+}} ins(%{{.+}}, %{{.+}} : tensor<1x4x?x4x?x2xf32>, tensor<1x4x?x4xf32>) outs(%{{.+}} : tensor<1x4x?x4x?xf32>)
// CHECK: arith.maximumf
func.func @outlier_score(%qc: tensor<1x4x?x3x32xf32>, %kc: tensor<1x4x?x3x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  %r = unisparse.block_score {block = 64, c_q = 16, c_k = 32, estimator = #unisparse.estimator<outlier>,
                              query_reduce = #unisparse.query_reduce<max>}
      ins(%qc, %kc : tensor<1x4x?x3x32xf32>, tensor<1x4x?x3x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// -----

// A tile of the scores (unisparse-tile-estimation's form, query_offset
// given), sum over query composites, three key outliers: the rest's weight
// log(c_k - 3) = log 13, the query slot shares 15/16 and 1/16, and the
// causal rule reads the query composite at t + offset in every masked
// stage (logits, both row sums, both softmaxes' mixture).
// CHECK-LABEL: func.func @outlier_tile
// CHECK-SAME: (%[[QC:[^:]+]]: tensor<1x1x?x3x32xf32>, %[[KC:[^:]+]]: tensor<1x1x?x4x32xf32>, %[[OFF:[^:]+]]: index
// CHECK-NOT: tensor.extract %
// CHECK-NOT: scf.for
// CHECK-DAG: %[[HALFSCALE2:.+]] = arith.constant 0.0156249991 : f32
// CHECK-DAG: %[[REST:.+]] = arith.constant 9.375000e-01 : f32
// CHECK-DAG: %[[OUT:.+]] = arith.constant 6.250000e-02 : f32
// CHECK-DAG: %[[LOGW:.+]] = arith.constant 2.56494927 : f32
// CHECK: %[[X:.+]] = linalg.generic {{.+}} ins(%{{.+}}, %[[KC]] : tensor<1x1x?x2x32xf32>, tensor<1x1x?x4x32xf32>) outs(%{{.+}} : tensor<1x1x?x2x?x4xf32>)
// CHECK: %[[L:.+]] = linalg.generic {{.+}} outs(%{{.+}} : tensor<1x1x4x2x?x4xf32>)
// CHECK: arith.select %{{.+}}, %[[LOGW]], %{{.+}} : f32
// CHECK: %[[T:.+]] = arith.addi %{{.+}}, %[[OFF]] : index
// CHECK: %[[M1:.+]] = linalg.generic {{.+}} ins(%[[L]] : tensor<1x1x4x2x?x4xf32>)
// CHECK: %[[L1:.+]] = linalg.generic {{.+}} ins(%[[L]], %[[M1]] :
// CHECK: arith.addi %{{.+}}, %[[OFF]] : index
// CHECK: %[[Y:.+]] = linalg.generic {{.+}} outs(%[[L]] : tensor<1x1x4x2x?x4xf32>)
// CHECK: arith.mulf %{{.+}}, %[[HALFSCALE2]] : f32
// CHECK: arith.addi %{{.+}}, %[[OFF]] : index
// CHECK: %[[A:.+]] = linalg.generic {{.+}} ins(%[[Y]], %{{.+}}, %{{.+}} : {{.+}}) outs(%{{.+}} : tensor<1x1x4x?xf32>)
// CHECK: arith.select %{{.+}}, %[[REST]], %[[OUT]] : f32
// CHECK: arith.addi %{{.+}}, %[[OFF]] : index
// CHECK: linalg.generic {{.+}}iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%{{.+}}, %{{.+}} : tensor<1x1x1x4x?x4xf32>, tensor<1x1x1x4xf32>) outs(%{{.+}} : tensor<1x1x1x?xf32>)
func.func @outlier_tile(%qc: tensor<1x1x?x3x32xf32>, %kc: tensor<1x1x?x4x32xf32>, %off: index, %s: tensor<1x1x1x?xf32>) -> tensor<1x1x1x?xf32> {
  %r = unisparse.block_score {block = 64, c_q = 16, c_k = 16, estimator = #unisparse.estimator<outlier>}
      ins(%qc, %kc : tensor<1x1x?x3x32xf32>, tensor<1x1x?x4x32xf32>) query_offset(%off) outs(%s : tensor<1x1x1x?xf32>) -> tensor<1x1x1x?xf32>
  return %r : tensor<1x1x1x?xf32>
}
