// RUN: unisparse-opt %s | FileCheck %s
// Round trip through the custom form, and through the generic form.
// RUN: unisparse-opt %s | unisparse-opt | FileCheck %s
// RUN: unisparse-opt %s --mlir-print-op-generic | unisparse-opt | FileCheck %s

// CHECK-LABEL: func.func @attention
func.func @attention(%q: tensor<2x32x?x128xbf16>, %k: tensor<2x8x?x128xbf16>,
                     %v: tensor<2x8x?x128xbf16>, %o: tensor<2x32x?x128xbf16>,
                     %l: tensor<2x32x?xf32>) -> (tensor<2x32x?x128xbf16>, tensor<2x32x?xf32>) {
  // CHECK: unisparse.attention {config = #unisparse.config<c_h = 2, tau = 0.75, local_blocks = 2, sink = false, min_blocks = 1, max_blocks = 9, causal = false, scale = 0.125>}
  // CHECK-SAME: ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<2x32x?x128xbf16>, tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>)
  // CHECK-SAME: outs(%{{.*}}, %{{.*}} : tensor<2x32x?x128xbf16>, tensor<2x32x?xf32>) -> tensor<2x32x?x128xbf16>, tensor<2x32x?xf32>
  %r:2 = unisparse.attention {config = #unisparse.config<scale = 0.125, causal = false, c_h = 2, tau = 0.75,
                                                        local_blocks = 2, sink = false, min_blocks = 1, max_blocks = 9>}
      ins(%q, %k, %v : tensor<2x32x?x128xbf16>, tensor<2x8x?x128xbf16>, tensor<2x8x?x128xbf16>)
      outs(%o, %l : tensor<2x32x?x128xbf16>, tensor<2x32x?xf32>) -> tensor<2x32x?x128xbf16>, tensor<2x32x?xf32>
  return %r#0, %r#1 : tensor<2x32x?x128xbf16>, tensor<2x32x?xf32>
}

// Every field at its default (the peaked configuration: outlier composites,
// the max over query composites, tau 0.9965, the normalised slash
// refinement of causal attention) prints as an empty-looking config; mean
// pooling, the default before 2026-12-04, prints its five fields.
// CHECK-LABEL: func.func @defaults
// CHECK: #unisparse.config<>
// CHECK: #unisparse.config<c_k = 8, tau = 0.98999999999999999, estimator = mean, query_reduce = sum, refine = none>
func.func @defaults(%q: tensor<1x4x256x64xf16>, %k: tensor<1x4x256x64xf16>, %v: tensor<1x4x256x64xf16>,
                    %o: tensor<1x4x256x64xf16>, %l: tensor<1x4x256xf32>) -> tensor<1x4x256x64xf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<block = 128, c_q = 16, c_k = 32, tau = 0.9965,
                                                        causal = true, estimator = outlier, query_reduce = max,
                                                        q_outliers = 1, k_outliers = 2, refine = slash,
                                                        last_q = 16, n_offsets = 16, rows_per_block = 8, width = 1,
                                                        refine_norm = true>}
      ins(%q, %k, %v : tensor<1x4x256x64xf16>, tensor<1x4x256x64xf16>, tensor<1x4x256x64xf16>)
      outs(%o, %l : tensor<1x4x256x64xf16>, tensor<1x4x256xf32>) -> tensor<1x4x256x64xf16>, tensor<1x4x256xf32>
  %m:2 = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99,
                                                        refine = none>}
      ins(%q, %k, %v : tensor<1x4x256x64xf16>, tensor<1x4x256x64xf16>, tensor<1x4x256x64xf16>)
      outs(%o, %l : tensor<1x4x256x64xf16>, tensor<1x4x256xf32>) -> tensor<1x4x256x64xf16>, tensor<1x4x256xf32>
  return %r#0 : tensor<1x4x256x64xf16>
}

// CHECK-LABEL: func.func @stages
func.func @stages(%q: tensor<1x32x?x128xbf16>, %k: tensor<1x8x?x128xbf16>, %v: tensor<1x8x?x128xbf16>,
                  %qc0: tensor<1x32x?x128xf32>, %kc0: tensor<1x32x?x128xf32>, %s0: tensor<1x32x?x?xf32>,
                  %c0: tensor<1x32x?xi32>, %i0: tensor<1x32x?x?xi32>,
                  %o0: tensor<1x32x?x128xbf16>, %l0: tensor<1x32x?xf32>) -> tensor<1x32x?x128xbf16> {
  // CHECK: %[[QC:.+]] = unisparse.compress {seq_factor = 16 : i64} ins(%{{.*}} : tensor<1x32x?x128xbf16>) outs(%{{.*}} : tensor<1x32x?x128xf32>) -> tensor<1x32x?x128xf32>
  %qc = unisparse.compress {seq_factor = 16} ins(%q : tensor<1x32x?x128xbf16>) outs(%qc0 : tensor<1x32x?x128xf32>) -> tensor<1x32x?x128xf32>
  // CHECK: %[[KC:.+]] = unisparse.compress {kv_group = 4 : i64, seq_factor = 16 : i64}
  %kc = unisparse.compress {seq_factor = 16, head_factor = 1, kv_group = 4} ins(%k : tensor<1x8x?x128xbf16>) outs(%kc0 : tensor<1x32x?x128xf32>) -> tensor<1x32x?x128xf32>
  // CHECK: %[[S:.+]] = unisparse.block_score {block = 128 : i64, c_k = 16 : i64, c_q = 16 : i64} ins(%[[QC]], %[[KC]] :
  %s = unisparse.block_score {block = 128, c_q = 16, c_k = 16, causal = true} ins(%qc, %kc : tensor<1x32x?x128xf32>, tensor<1x32x?x128xf32>) outs(%s0 : tensor<1x32x?x?xf32>) -> tensor<1x32x?x?xf32>
  // CHECK: %[[SEL:.+]]:2 = unisparse.block_select {max_blocks = 16 : i64, tau = 9.000000e-01 : f64} ins(%[[S]] :
  %cnt, %idx = unisparse.block_select {tau = 0.9, local_blocks = 1, sink = true, max_blocks = 16} ins(%s : tensor<1x32x?x?xf32>) outs(%c0, %i0 : tensor<1x32x?xi32>, tensor<1x32x?x?xi32>) -> tensor<1x32x?xi32>, tensor<1x32x?x?xi32>
  // CHECK: unisparse.block_sparse_attention {block = 128 : i64} ins(%{{.*}}, %{{.*}}, %{{.*}}, %[[SEL]]#0, %[[SEL]]#1 :
  // CHECK-SAME: -> tensor<1x32x?x128xbf16>, tensor<1x32x?xf32>
  %o:2 = unisparse.block_sparse_attention {block = 128} ins(%q, %k, %v, %cnt, %idx : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x32x?xi32>, tensor<1x32x?x?xi32>) outs(%o0, %l0 : tensor<1x32x?x128xbf16>, tensor<1x32x?xf32>) -> tensor<1x32x?x128xbf16>, tensor<1x32x?xf32>
  return %o#0 : tensor<1x32x?x128xbf16>
}

// Key composites pooled once per kv head, shared by 4 head groups.
// CHECK-LABEL: func.func @shared_keys
// CHECK: unisparse.block_score {block = 128 : i64, c_k = 8 : i64, c_q = 16 : i64, kv_group = 4 : i64} ins(%{{.+}}, %{{.+}} : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16>)
func.func @shared_keys(%qc: tensor<1x32x?x128xbf16>, %kc: tensor<1x8x?x128xbf16>, %s0: tensor<1x32x?x?xf32>) -> tensor<1x32x?x?xf32> {
  %s = unisparse.block_score {block = 128, c_q = 16, c_k = 8, kv_group = 4} ins(%qc, %kc : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16>) outs(%s0 : tensor<1x32x?x?xf32>) -> tensor<1x32x?x?xf32>
  return %s : tensor<1x32x?x?xf32>
}

// A tile of query blocks carries its offset (in query composites).
// CHECK-LABEL: func.func @score_tile
// CHECK: unisparse.block_score {block = 64 : i64, c_k = 16 : i64, c_q = 16 : i64} ins(%{{.*}}, %{{.*}} : tensor<1x1x?x32xf32>, tensor<1x1x?x32xf32>) query_offset(%{{.*}}) outs(%{{.*}} : tensor<1x1x1x?xf32>) -> tensor<1x1x1x?xf32>
func.func @score_tile(%qc: tensor<1x1x?x32xf32>, %kc: tensor<1x1x?x32xf32>, %s0: tensor<1x1x1x?xf32>, %off: index) -> tensor<1x1x1x?xf32> {
  %s = unisparse.block_score {block = 64, c_q = 16, c_k = 16} ins(%qc, %kc : tensor<1x1x?x32xf32>, tensor<1x1x?x32xf32>) query_offset(%off) outs(%s0 : tensor<1x1x1x?xf32>) -> tensor<1x1x1x?xf32>
  return %s : tensor<1x1x1x?xf32>
}

// CHECK-LABEL: func.func @dense_layout
// CHECK: unisparse.dense_layout {causal = false} outs(%{{.*}}, %{{.*}} : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
func.func @dense_layout(%c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32> {
  %r:2 = unisparse.dense_layout {causal = false} outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return %r#0 : tensor<1x4x3xi32>
}

// The buffer form of block_sparse_attention has no results.
// CHECK-LABEL: func.func @buffers
// CHECK: unisparse.block_sparse_attention {block = 64 : i64, causal = false} ins(
// CHECK-SAME: outs(%{{.*}}, %{{.*}} : memref<1x4x100x32xf32>, memref<1x4x100xf32>)
// CHECK-NOT: ->
func.func @buffers(%q: memref<1x4x100x32xf32>, %k: memref<1x2x100x32xf32>, %v: memref<1x2x100x32xf32>,
                   %c: memref<1x2x2xi32>, %i: memref<1x2x2x2xi32>, %o: memref<1x4x100x32xf32>, %l: memref<1x4x100xf32>) {
  unisparse.block_sparse_attention {block = 64, causal = false} ins(%q, %k, %v, %c, %i : memref<1x4x100x32xf32>, memref<1x2x100x32xf32>, memref<1x2x100x32xf32>, memref<1x2x2xi32>, memref<1x2x2x2xi32>) outs(%o, %l : memref<1x4x100x32xf32>, memref<1x4x100xf32>)
  return
}

// The estimators: antidiagonal composites (concatenated tokens, queries
// reversed), log-mean-exp combination, max over query composites.
// CHECK-LABEL: func.func @estimators
func.func @estimators(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x2x?x32xbf16>, %qc0: tensor<1x4x?x8x32xf32>,
                      %kc0: tensor<1x4x?x8x32xf32>, %s0: tensor<1x4x?x?xf32>)
    -> (tensor<1x4x?x?xf32>, tensor<1x4x?x?xf32>) {
  // CHECK: unisparse.compress {pooling = #unisparse.pooling<concat_reversed>, seq_factor = 8 : i64}
  // CHECK-SAME: -> tensor<1x4x?x8x32xf32>
  %qc = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<concat_reversed>}
      ins(%q : tensor<1x4x?x32xbf16>) outs(%qc0 : tensor<1x4x?x8x32xf32>) -> tensor<1x4x?x8x32xf32>
  // CHECK: unisparse.compress {kv_group = 2 : i64, pooling = #unisparse.pooling<concat>, seq_factor = 8 : i64}
  %kc = unisparse.compress {seq_factor = 8, kv_group = 2, pooling = #unisparse.pooling<concat>}
      ins(%k : tensor<1x2x?x32xbf16>) outs(%kc0 : tensor<1x4x?x8x32xf32>) -> tensor<1x4x?x8x32xf32>
  // CHECK: unisparse.block_score {block = 64 : i64, c_k = 8 : i64, c_q = 8 : i64, estimator = #unisparse.estimator<antidiag_lse>, query_reduce = #unisparse.query_reduce<max>}
  %s = unisparse.block_score {block = 64, c_q = 8, c_k = 8, estimator = #unisparse.estimator<antidiag_lse>,
                              query_reduce = #unisparse.query_reduce<max>}
      ins(%qc, %kc : tensor<1x4x?x8x32xf32>, tensor<1x4x?x8x32xf32>) outs(%s0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  // CHECK: unisparse.block_score {block = 64 : i64, c_k = 8 : i64, c_q = 8 : i64, estimator = #unisparse.estimator<antidiag>}
  %t = unisparse.block_score {block = 64, c_q = 8, c_k = 8, estimator = #unisparse.estimator<antidiag>}
      ins(%qc, %kc : tensor<1x4x?x8x32xf32>, tensor<1x4x?x8x32xf32>) outs(%s0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %s, %t : tensor<1x4x?x?xf32>, tensor<1x4x?x?xf32>
}

// CHECK-LABEL: @estimator_config
// CHECK: #unisparse.config<c_q = 8, c_k = 8, estimator = antidiag_lse>
func.func private @estimator_config() attributes {
    c = #unisparse.config<query_reduce = max, c_q = 8, c_k = 8, estimator = antidiag_lse>}

// The buffer forms of the stages (after bufferization): memref operands, no
// results.
// CHECK-LABEL: func.func @stage_buffers
// CHECK: unisparse.compress {seq_factor = 16 : i64} ins(%{{.+}} : memref<1x8x?x64xbf16>) outs(%{{.+}} : memref<1x8x?x64xbf16>)
// CHECK-NOT: ->
// CHECK: unisparse.block_score {block = 128 : i64, c_k = 16 : i64, c_q = 16 : i64} ins(%{{.+}}, %{{.+}} : memref<1x8x?x64xbf16>, memref<1x8x?x64xbf16>) outs(%{{.+}} : memref<1x8x?x?xf32>)
// CHECK-NOT: ->
// CHECK: unisparse.block_select {tau = 9.000000e-01 : f64} ins(%{{.+}} : memref<1x8x?x?xf32>) outs(%{{.+}}, %{{.+}} : memref<1x8x?xi32>, memref<1x8x?x?xi32>)
// CHECK-NEXT: return
func.func @stage_buffers(%q: memref<1x8x?x64xbf16>, %qc: memref<1x8x?x64xbf16>, %s: memref<1x8x?x?xf32>,
                   %c: memref<1x8x?xi32>, %i: memref<1x8x?x?xi32>) {
  unisparse.compress {seq_factor = 16} ins(%q : memref<1x8x?x64xbf16>) outs(%qc : memref<1x8x?x64xbf16>)
  unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%qc, %qc : memref<1x8x?x64xbf16>, memref<1x8x?x64xbf16>) outs(%s : memref<1x8x?x?xf32>)
  unisparse.block_select {tau = 0.9} ins(%s : memref<1x8x?x?xf32>) outs(%c, %i : memref<1x8x?xi32>, memref<1x8x?x?xi32>)
  return
}

// The outlier estimator: outlier composites of the queries (one row kept
// apart, with the spread) and of the keys (a hot token, found with the
// queries, and a far one), scored by a spread-corrected softmax.
// CHECK-LABEL: func.func @outlier
func.func @outlier(%q: tensor<1x4x?x32xbf16>, %k: tensor<1x2x?x32xbf16>, %qc0: tensor<1x4x?x3x32xf32>,
                   %kc0: tensor<1x4x?x3x32xf32>, %s0: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  // CHECK: %[[QC:.+]] = unisparse.compress {outliers = 1 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 16 : i64, spread = true}
  // CHECK-SAME: ins(%{{.*}} : tensor<1x4x?x32xbf16>) outs(%{{.*}} : tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32>
  %qc = unisparse.compress {seq_factor = 16, pooling = #unisparse.pooling<outlier>, outliers = 1, spread = true}
      ins(%q : tensor<1x4x?x32xbf16>) outs(%qc0 : tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32>
  // CHECK: %[[KC:.+]] = unisparse.compress {hot = 1 : i64, kv_group = 2 : i64, outliers = 2 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 32 : i64}
  // CHECK-SAME: ins(%{{.*}} : tensor<1x2x?x32xbf16>) queries(%{{.*}} : tensor<1x4x?x32xbf16>) outs(%{{.*}} : tensor<1x4x?x3x32xf32>)
  %kc = unisparse.compress {seq_factor = 32, kv_group = 2, pooling = #unisparse.pooling<outlier>, outliers = 2, hot = 1}
      ins(%k : tensor<1x2x?x32xbf16>) queries(%q : tensor<1x4x?x32xbf16>) outs(%kc0 : tensor<1x4x?x3x32xf32>)
      -> tensor<1x4x?x3x32xf32>
  // CHECK: unisparse.block_score {block = 128 : i64, c_k = 32 : i64, c_q = 16 : i64, estimator = #unisparse.estimator<outlier>, query_reduce = #unisparse.query_reduce<max>}
  // CHECK-SAME: ins(%[[QC]], %[[KC]] : tensor<1x4x?x3x32xf32>, tensor<1x4x?x3x32xf32>)
  %s = unisparse.block_score {block = 128, c_q = 16, c_k = 32, estimator = #unisparse.estimator<outlier>,
                              query_reduce = #unisparse.query_reduce<max>}
      ins(%qc, %kc : tensor<1x4x?x3x32xf32>, tensor<1x4x?x3x32xf32>) outs(%s0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %s : tensor<1x4x?x?xf32>
}

// CHECK-LABEL: @outlier_config
// CHECK: #unisparse.config<k_outliers = 3>
func.func private @outlier_config() attributes {
    c = #unisparse.config<k_outliers = 3, query_reduce = max, c_k = 32, estimator = outlier, q_outliers = 1>}

// The slash refinement between block_score and block_select: every
// attribute set (GQA 8/2 in 4 head groups of 2, f16), then the defaults
// left out.
// CHECK-LABEL: func.func @slash_refine
// CHECK: unisparse.slash_refine {block = 64 : i64, last_q = 4 : i64, local_blocks = 2 : i64, n_offsets = 3 : i64, rows_per_block = 2 : i64, scale = 1.250000e-01 : f64, sink = false, width = 0 : i64}
// CHECK-SAME: ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<2x8x?x32xf16>, tensor<2x2x?x32xf16>, tensor<2x4x?x?xf32>)
// CHECK-SAME: outs(%{{.*}} : tensor<2x4x?x?xf32>) -> tensor<2x4x?x?xf32>
// CHECK: unisparse.slash_refine {block = 128 : i64, last_q = 16 : i64}
// CHECK-SAME: ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<1x4x300x64xbf16>, tensor<1x4x300x64xbf16>, tensor<1x4x3x3xf32>)
// CHECK: unisparse.slash_refine {block = 128 : i64, last_q = 16 : i64, refine_norm = true}
// CHECK: unisparse.slash_refine {block = 128 : i64, last_q = 16 : i64}
// CHECK-SAME: ins(
func.func @slash_refine(%q: tensor<2x8x?x32xf16>, %k: tensor<2x2x?x32xf16>, %s: tensor<2x4x?x?xf32>,
                        %r0: tensor<2x4x?x?xf32>, %q1: tensor<1x4x300x64xbf16>, %s1: tensor<1x4x3x3xf32>)
    -> (tensor<2x4x?x?xf32>, tensor<1x4x3x3xf32>) {
  %r = unisparse.slash_refine {block = 64, last_q = 4, n_offsets = 3, rows_per_block = 2, width = 0,
                               local_blocks = 2, sink = false, scale = 0.125}
      ins(%q, %k, %s : tensor<2x8x?x32xf16>, tensor<2x2x?x32xf16>, tensor<2x4x?x?xf32>)
      outs(%r0 : tensor<2x4x?x?xf32>) -> tensor<2x4x?x?xf32>
  %d = unisparse.slash_refine {block = 128, last_q = 16, n_offsets = 16, rows_per_block = 8, width = 1}
      ins(%q1, %q1, %s1 : tensor<1x4x300x64xbf16>, tensor<1x4x300x64xbf16>, tensor<1x4x3x3xf32>)
      outs(%s1 : tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  // refine_norm printed where true (the default, false, left out)
  %n = unisparse.slash_refine {block = 128, last_q = 16, refine_norm = true}
      ins(%q1, %q1, %s1 : tensor<1x4x300x64xbf16>, tensor<1x4x300x64xbf16>, tensor<1x4x3x3xf32>)
      outs(%s1 : tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %f = unisparse.slash_refine {block = 128, last_q = 16, refine_norm = false}
      ins(%q1, %q1, %s1 : tensor<1x4x300x64xbf16>, tensor<1x4x300x64xbf16>, tensor<1x4x3x3xf32>)
      outs(%s1 : tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  return %r, %d : tensor<2x4x?x?xf32>, tensor<1x4x3x3xf32>
}

// The refinement's fields of the config: printed only where they differ
// from their defaults.
// CHECK-LABEL: func.func private @refine_config
// CHECK-SAME: #unisparse.config<last_q = 8, n_offsets = 4, rows_per_block = 2, width = 0, refine_norm = false>
func.func private @refine_config() attributes {c = #unisparse.config<width = 0, refine = slash, last_q = 8,
                                                                       rows_per_block = 2, n_offsets = 4,
                                                                       refine_norm = false>}

// refine_norm: printed where it differs from its default (true iff refine is
// slash), after width.
// CHECK-LABEL: func.func private @refine_norm_config
// CHECK-SAME: #unisparse.config<>
// CHECK-LABEL: func.func private @refine_norm_off_config
// CHECK-SAME: #unisparse.config<refine_norm = false>
func.func private @refine_norm_config() attributes {c = #unisparse.config<refine_norm = true, refine = slash>}
func.func private @refine_norm_off_config() attributes {c = #unisparse.config<refine_norm = false, refine = slash>}


// The refinement follows causal: an omitted refine is slash for causal
// attention and none otherwise, an omitted refine_norm true iff refine is
// slash; each prints where it differs from the value the other fields give
// it, so that every form round-trips.
// CHECK-LABEL: func.func private @refine_follows_causal
// CHECK-SAME: a = #unisparse.config<causal = false>
// CHECK-SAME: b = #unisparse.config<causal = false>
// CHECK-SAME: c = #unisparse.config<refine = none>
// CHECK-SAME: d = #unisparse.config<refine = none>
// CHECK-SAME: e = #unisparse.config<refine_norm = false>
// CHECK-SAME: f = #unisparse.config<causal = false, estimator = mean>
func.func private @refine_follows_causal() attributes {
    a = #unisparse.config<causal = false>,
    b = #unisparse.config<causal = false, refine = none, refine_norm = false>,
    c = #unisparse.config<refine = none>,
    d = #unisparse.config<refine = none, refine_norm = false>,
    e = #unisparse.config<causal = true, refine = slash, refine_norm = false>,
    f = #unisparse.config<estimator = mean, causal = false, refine_norm = false>}

// Every field that can differ from its default at once (refine and causal
// cannot with refine_norm = false: see @refine_follows_causal), given in
// reverse order: printed in the order of the parameters. A float is its
// default only bit for bit: scale = -0.0 prints.
// CHECK-LABEL: func.func private @every_field
// CHECK-SAME: a = #unisparse.config<block = 64, c_q = 8, c_k = 8, c_h = 2, tau = 0.75, local_blocks = 2, sink = false, min_blocks = 1, max_blocks = 9, scale = 0.125, estimator = mean, query_reduce = sum, q_outliers = 2, k_outliers = 3, last_q = 8, n_offsets = 4, rows_per_block = 2, width = 0, refine_norm = false>
// CHECK-SAME: b = #unisparse.config<scale = -0.0>
func.func private @every_field() attributes {
    a = #unisparse.config<refine_norm = false, width = 0, rows_per_block = 2, n_offsets = 4, last_q = 8,
                          refine = slash, k_outliers = 3, q_outliers = 2, query_reduce = sum, estimator = mean,
                          scale = 0.125, causal = true, max_blocks = 9, min_blocks = 1, sink = false,
                          local_blocks = 2, tau = 0.75, c_h = 2, c_k = 8, c_q = 8, block = 64>,
    b = #unisparse.config<scale = -0.0>}
