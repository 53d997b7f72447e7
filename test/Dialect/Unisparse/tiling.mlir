// RUN: unisparse-opt %s --split-input-file --unisparse-test-tile="op=unisparse.compress tile-sizes=1,4,0" --unisparse-test-tile="op=unisparse.block_select tile-sizes=1,2" --unisparse-test-tile="op=unisparse.dense_layout tile-sizes=0,1" --canonicalize | FileCheck %s

// TilingInterface of compress: loops (batch, composite, head_dim). A tile of
// 4 composites [t, t + 4) reads tokens [8 t, min(8 t + 32, 100)), so the
// last tile (composites 12 .. 12) reads the 4 tokens of the partial one.
// CHECK-DAG: #[[$COUNT:.+]] = affine_map<(d0) -> (-d0 + 13, 4)>
// CHECK-DAG: #[[$TOK0:.+]] = affine_map<()[s0] -> (s0 * 8)>
// CHECK-DAG: #[[$TOKENS:.+]] = affine_map<()[s0, s1] -> (s1 * -8 + 100, s0 * 8)>
// CHECK-LABEL: func.func @compress
// CHECK: scf.forall (%[[B:.+]], %[[T:.+]]) = (0, 0) to (2, 13) step (1, 4)
// CHECK: %[[N:.+]] = affine.min #[[$COUNT]](%[[T]])
// CHECK: %[[T0:.+]] = affine.apply #[[$TOK0]]()[%[[T]]]
// CHECK: %[[NT:.+]] = affine.min #[[$TOKENS]]()[%[[N]], %[[T]]]
// CHECK: %[[IN:.+]] = tensor.extract_slice %{{.+}}[%[[B]], 0, %[[T0]], 0] [1, 2, %[[NT]], 8]
// CHECK: %[[OUT:.+]] = tensor.extract_slice %{{.+}}[%[[B]], 0, %[[T]], 0] [1, 8, %[[N]], 8]
// CHECK: unisparse.compress {kv_group = 4 : i64, seq_factor = 8 : i64} ins(%[[IN]] : tensor<1x2x?x8xbf16>) outs(%[[OUT]] : tensor<1x8x?x8xf32>)
func.func @compress(%x: tensor<2x2x100x8xbf16>, %o: tensor<2x8x13x8xf32>) -> tensor<2x8x13x8xf32> {
  %r = unisparse.compress {seq_factor = 8, kv_group = 4} ins(%x : tensor<2x2x100x8xbf16>) outs(%o : tensor<2x8x13x8xf32>) -> tensor<2x8x13x8xf32>
  return %r : tensor<2x8x13x8xf32>
}

// -----

// block_select: loops (batch, head group); a row's blocks stay together.
// CHECK-LABEL: func.func @select
// CHECK: scf.forall (%[[G:.+]]) = (0) to (4) step (2) shared_outs(%{{.+}} = %{{.+}}, %{{.+}} = %{{.+}})
// CHECK: %[[S:.+]] = tensor.extract_slice %{{.+}}[0, %[[G]], 0, 0] [1, 2, %{{.+}}, %{{.+}}]
// CHECK: unisparse.block_select {tau = 9.000000e-01 : f64} ins(%[[S]] : tensor<1x2x?x?xf32>) outs(%{{.+}}, %{{.+}} : tensor<1x2x?xi32>, tensor<1x2x?x?xi32>)
// CHECK: scf.forall.in_parallel
// CHECK-COUNT-2: tensor.parallel_insert_slice
func.func @select(%s: tensor<1x4x?x?xf32>, %c: tensor<1x4x?xi32>, %i: tensor<1x4x?x?xi32>) -> (tensor<1x4x?xi32>, tensor<1x4x?x?xi32>) {
  %cnt, %idx = unisparse.block_select {tau = 0.9} ins(%s : tensor<1x4x?x?xf32>) outs(%c, %i : tensor<1x4x?xi32>, tensor<1x4x?x?xi32>) -> tensor<1x4x?xi32>, tensor<1x4x?x?xi32>
  return %cnt, %idx : tensor<1x4x?xi32>, tensor<1x4x?x?xi32>
}

// -----

// CHECK-LABEL: func.func @dense
// CHECK: scf.forall (%[[G:.+]]) in (4)
// CHECK: unisparse.dense_layout outs(%{{.+}}, %{{.+}} : tensor<1x1x3xi32>, tensor<1x1x3x3xi32>)
func.func @dense(%c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) -> (tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) {
  %r:2 = unisparse.dense_layout outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return %r#0, %r#1 : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
}
