// RUN: unisparse-opt %s --unisparse-decompose --split-input-file -verify-diagnostics | FileCheck %s

// CHECK-DAG: #[[$CEIL64:.+]] = affine_map<()[s0] -> (s0 ceildiv 64)>
// CHECK-DAG: #[[$CEIL16:.+]] = affine_map<()[s0] -> (s0 ceildiv 16)>
// CHECK-DAG: #[[$CEIL32:.+]] = affine_map<()[s0] -> (s0 ceildiv 32)>
// CHECK-LABEL: func.func @gqa
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<1x8x?x32xbf16>, %[[K:[^:]+]]: tensor<1x2x?x32xbf16>, %[[V:[^:]+]]: tensor<1x2x?x32xbf16>, %[[O:[^:]+]]: tensor<1x8x?x32xbf16>, %[[L:[^:]+]]: tensor<1x8x?xf32>)
// CHECK: %[[N:.+]] = tensor.dim %[[Q]], %{{.+}} : tensor<1x8x?x32xbf16>
// CHECK: %[[NB:.+]] = affine.apply #[[$CEIL64]]()[%[[N]]]
// CHECK: %[[CNT0:.+]] = tensor.empty(%[[NB]]) : tensor<1x4x?xi32>
// CHECK: %[[IDX0:.+]] = tensor.empty(%[[NB]], %[[NB]]) : tensor<1x4x?x?xi32>
// CHECK: %[[S0:.+]] = tensor.empty(%[[NB]], %[[NB]]) : tensor<1x4x?x?xf32>
// CHECK: %[[TQ:.+]] = affine.apply #[[$CEIL16]]()[%[[N]]]
// CHECK: %[[QC0:.+]] = tensor.empty(%[[TQ]]) : tensor<1x4x?x32xf32>
// CHECK: %[[QC:.+]] = unisparse.compress {head_factor = 2 : i64, seq_factor = 16 : i64} ins(%[[Q]] : tensor<1x8x?x32xbf16>) outs(%[[QC0]] : tensor<1x4x?x32xf32>)
// CHECK: %[[TK:.+]] = affine.apply #[[$CEIL32]]()[%[[N]]]
// The 2 head groups of each kv head (4 query heads in groups of c_h = 2)
// would get the same key composites: the keys are pooled once per kv head
// and shared (kv_group = 2).
// CHECK: %[[KC0:.+]] = tensor.empty(%[[TK]]) : tensor<1x2x?x32xf32>
// CHECK: %[[KC:.+]] = unisparse.compress {seq_factor = 32 : i64} ins(%[[K]] : tensor<1x2x?x32xbf16>) outs(%[[KC0]] : tensor<1x2x?x32xf32>)
// CHECK: %[[S:.+]] = unisparse.block_score {block = 64 : i64, c_k = 32 : i64, c_q = 16 : i64, causal = false, kv_group = 2 : i64, scale = 2.500000e-01 : f64} ins(%[[QC]], %[[KC]] : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>) outs(%[[S0]] :
// CHECK: %[[SEL:.+]]:2 = unisparse.block_select {causal = false, local_blocks = 2 : i64, max_blocks = 6 : i64, min_blocks = 2 : i64, sink = false, tau = 8.000000e-01 : f64} ins(%[[S]] : tensor<1x4x?x?xf32>) outs(%[[CNT0]], %[[IDX0]] :
// CHECK: %[[R:.+]]:2 = unisparse.block_sparse_attention {block = 64 : i64, causal = false, scale = 2.500000e-01 : f64} ins(%[[Q]], %[[K]], %[[V]], %[[SEL]]#0, %[[SEL]]#1 : {{.*}}) outs(%[[O]], %[[L]] :
// CHECK: return %[[R]]#0, %[[R]]#1
func.func @gqa(%q: tensor<1x8x?x32xbf16>, %k: tensor<1x2x?x32xbf16>, %v: tensor<1x2x?x32xbf16>,
               %o: tensor<1x8x?x32xbf16>, %l: tensor<1x8x?xf32>) -> (tensor<1x8x?x32xbf16>, tensor<1x8x?xf32>) {
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, c_q = 16, c_k = 32, c_h = 2, tau = 0.8,
      local_blocks = 2, sink = false, min_blocks = 2, max_blocks = 6, causal = false, scale = 0.25, estimator = mean, query_reduce = sum, refine = none>}
      ins(%q, %k, %v : tensor<1x8x?x32xbf16>, tensor<1x2x?x32xbf16>, tensor<1x2x?x32xbf16>)
      outs(%o, %l : tensor<1x8x?x32xbf16>, tensor<1x8x?xf32>) -> tensor<1x8x?x32xbf16>, tensor<1x8x?xf32>
  return %r#0, %r#1 : tensor<1x8x?x32xbf16>, tensor<1x8x?xf32>
}

// -----

// tau = 1: a dense layout and no estimation at all.
// CHECK-LABEL: func.func @dense
// CHECK-NOT: unisparse.compress
// CHECK-NOT: unisparse.block_score
// CHECK: %[[C:.+]], %[[I:.+]] = unisparse.dense_layout outs(
// CHECK: unisparse.block_sparse_attention {block = 128 : i64} ins(%{{.*}}, %{{.*}}, %{{.*}}, %[[C]], %[[I]] :
func.func @dense(%q: tensor<2x4x512x64xf16>, %k: tensor<2x4x512x64xf16>, %v: tensor<2x4x512x64xf16>,
                 %o: tensor<2x4x512x64xf16>, %l: tensor<2x4x512xf32>) -> tensor<2x4x512x64xf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<tau = 1.0, estimator = mean, c_k = 8, query_reduce = sum, refine = none>}
      ins(%q, %k, %v : tensor<2x4x512x64xf16>, tensor<2x4x512x64xf16>, tensor<2x4x512x64xf16>)
      outs(%o, %l : tensor<2x4x512x64xf16>, tensor<2x4x512xf32>) -> tensor<2x4x512x64xf16>, tensor<2x4x512xf32>
  return %r#0 : tensor<2x4x512x64xf16>
}

// -----

// Static N = 512 gives 4 key blocks, so min_blocks = 4 is dense too.
// CHECK-LABEL: func.func @min_blocks_dense
// CHECK: unisparse.dense_layout
// CHECK-NOT: unisparse.block_select
func.func @min_blocks_dense(%q: tensor<1x4x512x64xf16>, %k: tensor<1x4x512x64xf16>, %v: tensor<1x4x512x64xf16>,
                            %o: tensor<1x4x512x64xf16>, %l: tensor<1x4x512xf32>) -> tensor<1x4x512x64xf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<min_blocks = 4, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}
      ins(%q, %k, %v : tensor<1x4x512x64xf16>, tensor<1x4x512x64xf16>, tensor<1x4x512x64xf16>)
      outs(%o, %l : tensor<1x4x512x64xf16>, tensor<1x4x512xf32>) -> tensor<1x4x512x64xf16>, tensor<1x4x512xf32>
  return %r#0 : tensor<1x4x512x64xf16>
}

// -----

// Dynamic head counts cannot give the kv_group attribute: a clear error.
func.func @dynamic_heads(%q: tensor<1x?x64x32xf32>, %k: tensor<1x?x64x32xf32>, %v: tensor<1x?x64x32xf32>,
                         %o: tensor<1x?x64x32xf32>, %l: tensor<1x?x64xf32>) -> tensor<1x?x64x32xf32> {
  // expected-error @+1 {{could not be decomposed: head counts must be static}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}
      ins(%q, %k, %v : tensor<1x?x64x32xf32>, tensor<1x?x64x32xf32>, tensor<1x?x64x32xf32>)
      outs(%o, %l : tensor<1x?x64x32xf32>, tensor<1x?x64xf32>) -> tensor<1x?x64x32xf32>, tensor<1x?x64xf32>
  return %r#0 : tensor<1x?x64x32xf32>
}

// -----

// An antidiagonal estimator: the composites are the tokens side by side
// (queries reversed) and block_score carries the estimator and the reduction.
// CHECK-LABEL: func.func @antidiag_lse
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<1x4x?x32xbf16>, %[[K:[^:]+]]: tensor<1x2x?x32xbf16>
// CHECK: %[[QC:.+]] = unisparse.compress {pooling = #unisparse.pooling<concat_reversed>, seq_factor = 8 : i64} ins(%[[Q]] : tensor<1x4x?x32xbf16>) outs(%{{.+}} : tensor<1x4x?x8x32xf32>)
// CHECK: %[[KC:.+]] = unisparse.compress {kv_group = 2 : i64, pooling = #unisparse.pooling<concat>, seq_factor = 8 : i64} ins(%[[K]] : tensor<1x2x?x32xbf16>) outs(%{{.+}} : tensor<1x4x?x8x32xf32>)
// CHECK: unisparse.block_score {block = 64 : i64, c_k = 8 : i64, c_q = 8 : i64, estimator = #unisparse.estimator<antidiag_lse>, query_reduce = #unisparse.query_reduce<max>} ins(%[[QC]], %[[KC]] : tensor<1x4x?x8x32xf32>, tensor<1x4x?x8x32xf32>)
func.func @antidiag_lse(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x2x?x32xbf16>, %v: tensor<1x2x?x32xbf16>,
                        %o: tensor<1x4x?x32xbf16>, %l: tensor<1x4x?xf32>) -> tensor<1x4x?x32xbf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, c_q = 8, c_k = 8, tau = 0.9,
                                                        estimator = antidiag_lse, query_reduce = max, refine = none>}
      ins(%q, %k, %v : tensor<1x4x?x32xbf16>, tensor<1x2x?x32xbf16>, tensor<1x2x?x32xbf16>)
      outs(%o, %l : tensor<1x4x?x32xbf16>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xbf16>, tensor<1x4x?xf32>
  return %r#0 : tensor<1x4x?x32xbf16>
}

// -----

// The outlier estimator: outlier composites of the queries (with their
// spread) and of the keys (a hot token, found with the queries).
// CHECK-LABEL: func.func @outlier
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<1x4x?x32xbf16>, %[[K:[^:]+]]: tensor<1x2x?x32xbf16>
// CHECK: %[[QC:.+]] = unisparse.compress {outliers = 1 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 16 : i64, spread = true} ins(%[[Q]] : tensor<1x4x?x32xbf16>) outs(%{{.+}} : tensor<1x4x?x3x32xf32>)
// CHECK: %[[KC:.+]] = unisparse.compress {hot = 1 : i64, kv_group = 2 : i64, outliers = 2 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 32 : i64} ins(%[[K]] : tensor<1x2x?x32xbf16>) queries(%[[Q]] : tensor<1x4x?x32xbf16>) outs(%{{.+}} : tensor<1x4x?x3x32xf32>)
// CHECK: unisparse.block_score {block = 128 : i64, c_k = 32 : i64, c_q = 16 : i64, estimator = #unisparse.estimator<outlier>, query_reduce = #unisparse.query_reduce<max>} ins(%[[QC]], %[[KC]] : tensor<1x4x?x3x32xf32>, tensor<1x4x?x3x32xf32>)
func.func @outlier(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x2x?x32xbf16>, %v: tensor<1x2x?x32xbf16>,
                   %o: tensor<1x4x?x32xbf16>, %l: tensor<1x4x?xf32>) -> tensor<1x4x?x32xbf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<c_k = 32, tau = 0.995, estimator = outlier, query_reduce = max, refine = none>}
      ins(%q, %k, %v : tensor<1x4x?x32xbf16>, tensor<1x2x?x32xbf16>, tensor<1x2x?x32xbf16>)
      outs(%o, %l : tensor<1x4x?x32xbf16>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xbf16>, tensor<1x4x?xf32>
  return %r#0 : tensor<1x4x?x32xbf16>
}

// -----

// refine = slash: the first pass's scores go through slash_refine (with the
// config's block, refinement fields, local_blocks, sink and scale) and the
// selection reads the refined scores.
// CHECK-LABEL: func.func @slash_refine
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<1x4x?x32xbf16>, %[[K:[^:]+]]: tensor<1x2x?x32xbf16>
// CHECK: %[[S:.+]] = unisparse.block_score
// CHECK: %[[R:.+]] = unisparse.slash_refine {block = 64 : i64, last_q = 8 : i64, local_blocks = 2 : i64, n_offsets = 4 : i64, rows_per_block = 2 : i64, scale = 1.250000e-01 : f64, sink = false, width = 0 : i64}
// CHECK-SAME: ins(%[[Q]], %[[K]], %[[S]] : tensor<1x4x?x32xbf16>, tensor<1x2x?x32xbf16>, tensor<1x4x?x?xf32>)
// CHECK: unisparse.block_select {local_blocks = 2 : i64, sink = false, tau = 0.94999999999999996 : f64} ins(%[[R]] : tensor<1x4x?x?xf32>)
func.func @slash_refine(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x2x?x32xbf16>, %v: tensor<1x2x?x32xbf16>,
                        %o: tensor<1x4x?x32xbf16>, %l: tensor<1x4x?xf32>) -> tensor<1x4x?x32xbf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, tau = 0.95, local_blocks = 2, sink = false,
                                                        scale = 0.125, refine = slash, last_q = 8, n_offsets = 4,
                                                        rows_per_block = 2, width = 0, estimator = mean, c_k = 8, query_reduce = sum, refine_norm = false>}
      ins(%q, %k, %v : tensor<1x4x?x32xbf16>, tensor<1x2x?x32xbf16>, tensor<1x2x?x32xbf16>)
      outs(%o, %l : tensor<1x4x?x32xbf16>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xbf16>, tensor<1x4x?xf32>
  return %r#0 : tensor<1x4x?x32xbf16>
}

// -----

// refine_norm: carried to slash_refine (the rest as without it).
// CHECK-LABEL: func.func @slash_refine_norm
// CHECK: %[[S:.+]] = unisparse.block_score
// CHECK: %[[R:.+]] = unisparse.slash_refine {block = 64 : i64, last_q = 8 : i64, refine_norm = true}
// CHECK: unisparse.block_select {tau = 0.94999999999999996 : f64} ins(%[[R]] : tensor<1x4x?x?xf32>)
func.func @slash_refine_norm(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x2x?x32xbf16>, %v: tensor<1x2x?x32xbf16>,
                             %o: tensor<1x4x?x32xbf16>, %l: tensor<1x4x?xf32>) -> tensor<1x4x?x32xbf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, tau = 0.95, refine = slash, last_q = 8,
                                                        refine_norm = true, estimator = mean, c_k = 8, query_reduce = sum>}
      ins(%q, %k, %v : tensor<1x4x?x32xbf16>, tensor<1x2x?x32xbf16>, tensor<1x2x?x32xbf16>)
      outs(%o, %l : tensor<1x4x?x32xbf16>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xbf16>, tensor<1x4x?xf32>
  return %r#0 : tensor<1x4x?x32xbf16>
}
