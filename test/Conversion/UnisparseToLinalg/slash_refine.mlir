// RUN: unisparse-opt %s --convert-unisparse-to-linalg --canonicalize | FileCheck %s
// RUN: unisparse-opt %s --convert-unisparse-to-linalg="gpu-kernels=true" --canonicalize | FileCheck %s --check-prefix=GPU

// slash_refine, GQA 4/2 in 2 head groups, last_q = 8, 4 offsets, 4 probe
// rows, width 1: the last rows as a contraction and a masked softmax, the
// evidence as reductions over affine maps of the padded shares, the offsets
// as arg-max reductions, the probe rows' gather as scf loops, the
// combination element by element. Without gpu-kernels the loops are the
// host's: k transposed to [B, Hkv, D, N], the contraction's keys and the
// evidence's entries innermost (d, r reduced outside them), the forced
// keys' logits of a probe row as one (d, j) loop nest over the transposed k.
// CHECK-DAG: #[[$TRANSPOSE:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3, d2)>
// CHECK-DAG: #[[$LOGIT_Q:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d4)>
// CHECK-DAG: #[[$LOGIT_K:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4, d5)>
// CHECK-DAG: #[[$LOGIT_X:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d5)>
// CHECK-DAG: #[[$GROUP:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d4, d2, d3)>
// CHECK-DAG: #[[$ROWS:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG: #[[$ENTRY:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG: #[[$PAIR:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d2 + d3)>
// CHECK-DAG: #[[$KEY:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2 + d3)>
// CHECK-DAG: #[[$ROW3:.+]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-DAG: #[[$D:.+]] = affine_map<(d0, d1) -> (d0)>
// CHECK-DAG: #[[$J:.+]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG: #[[$DJ:.+]] = affine_map<(d0, d1) -> (d0, d1)>
// The GPU pipeline's loops (gpu-kernels; f32 q and k take the loops): d and
// r innermost, k read in place.
// GPU-DAG: #[[$GLOGIT_Q:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d5)>
// GPU-DAG: #[[$GLOGIT_X:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d4)>
// GPU-DAG: #[[$GPAIR:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3, d2 + d3)>
// GPU-LABEL: func.func @refine
// GPU-SAME: (%[[Q:[^:]+]]: tensor<2x4x?x16xf32>, %[[K:[^:]+]]: tensor<2x2x?x16xf32>,
// GPU: linalg.generic {indexing_maps = [#[[$GLOGIT_Q]], #{{.+}}, #[[$GLOGIT_X]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction"]}
// GPU-SAME: ins(%{{.+}}, %[[K]] : tensor<2x2x2x8x16xf32>, tensor<2x2x?x16xf32>)
// GPU: linalg.generic {indexing_maps = [#[[$GPAIR]], {{.+}}], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
// GPU: scf.forall
// GPU-NOT: linalg.generic
// GPU: tensor.extract %[[Q]]
// GPU: tensor.extract %[[K]]
// GPU: math.log
// GPU: tensor.parallel_insert_slice
// CHECK-LABEL: func.func @refine
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<2x4x?x16xf32>, %[[K:[^:]+]]: tensor<2x2x?x16xf32>, %[[S:[^:]+]]: tensor<2x2x?x?xf32>, %[[R0:[^:]+]]: tensor<2x2x?x?xf32>)
// The m = min(8, N) last rows of q, copied to row 8 - m of a zero
// [B, Hq, 8, D].
// CHECK: %[[N:.+]] = tensor.dim %[[Q]], %c2
// CHECK: %[[M:.+]] = arith.minsi %[[N]], %c8
// CHECK: %[[FIRST:.+]] = arith.subi %[[N]], %[[M]]
// CHECK: %[[AT:.+]] = arith.subi %c8, %[[M]]
// CHECK: %[[LAST:.+]] = tensor.extract_slice %[[Q]][0, 0, %[[FIRST]], 0] [2, 4, %[[M]], 16]
// CHECK: %[[DST:.+]] = tensor.extract_slice %{{.+}}[0, 0, %[[AT]], 0] [2, 4, %[[M]], 16]
// CHECK: %[[COPY:.+]] = linalg.copy ins(%[[LAST]] : tensor<2x4x?x16xf32>) outs(%[[DST]] : tensor<2x4x?x16xf32>)
// CHECK: %[[ROWS:.+]] = tensor.insert_slice %[[COPY]] into %{{.+}}[0, 0, %[[AT]], 0] [2, 4, %[[M]], 16]
// CHECK: %[[QX:.+]] = tensor.expand_shape %[[ROWS]] {{\[\[}}0], [1, 2], [3], [4]] output_shape [2, 2, 2, 8, 16]
// k transposed, then the contraction (b, kv, gg, r, d, j), d reduced.
// CHECK: %[[KT:.+]] = linalg.generic {indexing_maps = [#[[$TRANSPOSE]], #[[$ROWS]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%[[K]] : tensor<2x2x?x16xf32>) outs(%{{.+}} : tensor<2x2x16x?xf32>)
// CHECK: %[[X:.+]] = linalg.generic {indexing_maps = [#[[$LOGIT_Q]], #[[$LOGIT_K]], #[[$LOGIT_X]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "parallel"]}
// CHECK-SAME: ins(%[[QX]], %[[KT]] : tensor<2x2x2x8x16xf32>, tensor<2x2x16x?xf32>)
// Row max, exponentials, sums and shares, masked by j + 8 <= N + r.
// CHECK: linalg.generic
// CHECK-SAME: ins(%[[X]] : tensor<2x2x2x8x?xf32>) outs(%{{.+}} : tensor<2x2x2x8xf32>)
// CHECK: arith.cmpi sle
// CHECK: arith.maxnumf
// CHECK: math.exp
// The group's sum over its heads (Hq expanded to [Hg, c_h]).
// CHECK: linalg.generic {indexing_maps = [#[[$GROUP]], {{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
// CHECK-SAME: outs(%{{.+}} : tensor<2x2x8x?xf32>)
// Evidence: v0, the shares padded by 7 on both sides, s0 and the split,
// (b, g, r, x) with r reduced.
// CHECK: linalg.generic {indexing_maps = [#[[$ROWS]], #[[$ENTRY]]], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
// CHECK: tensor.insert_slice %{{.+}} into %{{.+}}[0, 0, 0, 7] [2, 2, 8, %[[N]]]
// CHECK: tensor.insert_slice %{{.+}} into %{{.+}}[0, 0, 7] [2, 2, %[[N]]]
// CHECK: %[[S0:.+]] = linalg.generic {indexing_maps = [#[[$PAIR]], #[[$ENTRY]]], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
// CHECK: linalg.generic {indexing_maps = [#[[$PAIR]], #[[$KEY]], #[[$ENTRY]], #[[$ENTRY]]], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
// CHECK-SAME: %[[S0]]
// CHECK: arith.cmpf ult
// Offsets: 4 rounds of an arg-max reduction (ties to the larger e), each
// writing one column of the offsets.
// CHECK: %[[OFFS:.+]]:2 = scf.for %[[KK:.+]] = %c0 to %c4 {{.+}} -> (tensor<2x2x?xf32>, tensor<2x2x4xi64>)
// CHECK: linalg.generic {indexing_maps = [{{.+}}, #[[$ROW3]], #[[$ROW3]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME: outs(%{{.+}}, %{{.+}} : tensor<2x2xf32>, tensor<2x2xi64>)
// CHECK: arith.cmpf ogt
// CHECK: arith.cmpf oeq
// CHECK: arith.cmpi sgt
// CHECK: tensor.insert_slice %{{.+}} into %{{.+}}[0, 0, %[[KK]]] [2, 2, 1]
// Probe rows: one scf.forall row per (b, g, I), loops over the probe rows,
// the group's heads, the forced keys (their logits over kT per range, the
// sink block then [lo, i]; their max, then the sum of exp(x - max)) and
// the candidates, reading q, k and the offsets at computed indices.
// CHECK: %[[E:.+]] = scf.forall (%[[B:.+]], %[[G:.+]], %[[I:.+]]) in (2, 2, %{{.+}}) shared_outs(%[[EO:.+]] = %{{.+}})
// CHECK: scf.for {{.+}} to %c4
// CHECK: scf.for {{.+}} to %c2
// CHECK: tensor.extract_slice %[[Q]][%[[B]],
// CHECK: tensor.extract_slice %[[KT]][%[[B]],
// CHECK: linalg.generic {indexing_maps = [#[[$D]], #[[$DJ]], #[[$J]]], iterator_types = ["reduction", "parallel"]}
// CHECK: tensor.extract_slice %[[KT]][%[[B]],
// CHECK: linalg.generic {indexing_maps = [#[[$D]], #[[$DJ]], #[[$J]]], iterator_types = ["reduction", "parallel"]}
// CHECK: arith.maximumf
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: math.exp
// CHECK: math.log
// CHECK: tensor.extract %[[OFFS]]#1[%[[B]], %[[G]],
// CHECK: scf.for {{.+}} to %c3
// CHECK: math.absi
// CHECK: tensor.extract %[[Q]][%[[B]],
// CHECK: tensor.extract %[[K]][%[[B]],
// CHECK: math.exp
// CHECK: tensor.parallel_insert_slice %{{.+}} into %[[EO]][%[[B]], %[[G]], %[[I]], 0]
// Combination: the row total and the forced blocks' sum, then the max.
// CHECK: %[[SUMS:.+]]:2 = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[S]] : tensor<2x2x?x?xf32>)
// Without refine_norm, E * f / tot itself (no row sum, no division).
// CHECK: linalg.generic {{.+}} ins(%[[S]], %[[E]], %[[SUMS]]#0, %[[SUMS]]#1 : {{.+}}) outs(%[[R0]] : tensor<2x2x?x?xf32>)
// CHECK: arith.cmpf uno
// CHECK: %[[REF0:.+]] = arith.mulf
// CHECK-NEXT: arith.cmpf uno
// CHECK-NEXT: arith.maximumf %{{.+}}, %[[REF0]]
// CHECK-NOT: unisparse.slash_refine
func.func @refine(%q: tensor<2x4x?x16xf32>, %k: tensor<2x2x?x16xf32>, %s: tensor<2x2x?x?xf32>,
                  %r0: tensor<2x2x?x?xf32>) -> tensor<2x2x?x?xf32> {
  %r = unisparse.slash_refine {block = 16, last_q = 8, n_offsets = 4, rows_per_block = 4, width = 1}
      ins(%q, %k, %s : tensor<2x4x?x16xf32>, tensor<2x2x?x16xf32>, tensor<2x2x?x?xf32>)
      outs(%r0 : tensor<2x2x?x?xf32>) -> tensor<2x2x?x?xf32>
  return %r : tensor<2x2x?x?xf32>
}

// refine_norm: one more reduction, the row sum of E * f / tot (f / tot with
// a NaN as 0, as in the combination), and E * f / tot divided by one plus
// it before the max.
// CHECK-LABEL: func.func @refine_norm
// CHECK-SAME: (%{{[^:]+}}: tensor<2x4x?x16xf32>, %{{[^:]+}}: tensor<2x2x?x16xf32>, %[[S:[^:]+]]: tensor<2x2x?x?xf32>, %[[R0:[^:]+]]: tensor<2x2x?x?xf32>)
// CHECK-DAG: %[[ONE:.+]] = arith.constant 1.000000e+00 : f32
// CHECK: %[[E:.+]] = scf.forall
// CHECK: %[[SUMS:.+]]:2 = linalg.generic {{.+}} ins(%[[S]] : tensor<2x2x?x?xf32>)
// CHECK: %[[RSUM:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[E]], %[[SUMS]]#0, %[[SUMS]]#1 : {{.+}}) outs(%{{.+}} : tensor<2x2x?xf32>)
// CHECK-NEXT: ^bb0(%[[EV:[^:]+]]: f32, %[[TOT:[^:]+]]: f32, %[[F:[^:]+]]: f32, %[[ACC:[^:]+]]: f32):
// CHECK-NEXT: %[[SH:.+]] = arith.divf %[[F]], %[[TOT]] : f32
// CHECK-NEXT: %[[NAN:.+]] = arith.cmpf uno, %[[SH]], %[[SH]] : f32
// CHECK-NEXT: %[[SH0:.+]] = arith.select %[[NAN]], %{{.+}}, %[[SH]] : f32
// CHECK-NEXT: %[[ER:.+]] = arith.mulf %[[EV]], %[[SH0]] : f32
// CHECK-NEXT: %[[SUM:.+]] = arith.addf %[[ACC]], %[[ER]] : f32
// CHECK-NEXT: linalg.yield %[[SUM]] : f32
// CHECK: linalg.generic {{.+}} ins(%[[S]], %[[E]], %[[SUMS]]#0, %[[SUMS]]#1, %[[RSUM]] : {{.+}}) outs(%[[R0]] : tensor<2x2x?x?xf32>)
// CHECK-NEXT: ^bb0(%{{[^:]+}}: f32, %{{[^:]+}}: f32, %{{[^:]+}}: f32, %{{[^:]+}}: f32, %[[RS:[^:]+]]: f32, %{{[^:]+}}: f32):
// CHECK: %[[REF:.+]] = arith.mulf
// CHECK-NEXT: %[[DEN:.+]] = arith.addf %[[RS]], %[[ONE]] : f32
// CHECK-NEXT: %[[RN:.+]] = arith.divf %[[REF]], %[[DEN]] : f32
// CHECK-NEXT: arith.cmpf uno
// CHECK-NEXT: arith.maximumf %{{.+}}, %[[RN]]
// CHECK-NOT: unisparse.slash_refine
func.func @refine_norm(%q: tensor<2x4x?x16xf32>, %k: tensor<2x2x?x16xf32>, %s: tensor<2x2x?x?xf32>,
                       %r0: tensor<2x2x?x?xf32>) -> tensor<2x2x?x?xf32> {
  %r = unisparse.slash_refine {block = 16, last_q = 8, n_offsets = 4, rows_per_block = 4, width = 1,
                               refine_norm = true}
      ins(%q, %k, %s : tensor<2x4x?x16xf32>, tensor<2x2x?x16xf32>, tensor<2x2x?x?xf32>)
      outs(%r0 : tensor<2x2x?x?xf32>) -> tensor<2x2x?x?xf32>
  return %r : tensor<2x2x?x?xf32>
}
