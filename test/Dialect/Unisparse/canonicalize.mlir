// RUN: unisparse-opt %s --canonicalize --split-input-file | FileCheck %s

// tau = 1 keeps every visible block: the selection becomes a dense layout and
// the estimation feeding it (compress, block_score) is erased as dead.
// CHECK-LABEL: func.func @tau_one
// CHECK-NOT: unisparse.compress
// CHECK-NOT: unisparse.block_score
// CHECK-NOT: unisparse.block_select
// CHECK: %[[C:.+]], %[[I:.+]] = unisparse.dense_layout outs(%{{.*}}, %{{.*}} : tensor<1x4x?xi32>, tensor<1x4x?x?xi32>)
// CHECK: return %[[C]], %[[I]]
func.func @tau_one(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %qc0: tensor<1x4x?x32xf32>,
                   %kc0: tensor<1x4x?x32xf32>, %s0: tensor<1x4x?x?xf32>, %c0: tensor<1x4x?xi32>,
                   %i0: tensor<1x4x?x?xi32>) -> (tensor<1x4x?xi32>, tensor<1x4x?x?xi32>) {
  %qc = unisparse.compress {seq_factor = 16} ins(%q : tensor<1x4x?x32xf32>) outs(%qc0 : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
  %kc = unisparse.compress {seq_factor = 16, kv_group = 2} ins(%k : tensor<1x2x?x32xf32>) outs(%kc0 : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
  %s = unisparse.block_score {block = 64, c_q = 16, c_k = 16} ins(%qc, %kc : tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>) outs(%s0 : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  %c, %i = unisparse.block_select {tau = 1.0} ins(%s : tensor<1x4x?x?xf32>) outs(%c0, %i0 : tensor<1x4x?xi32>, tensor<1x4x?x?xi32>) -> tensor<1x4x?xi32>, tensor<1x4x?x?xi32>
  return %c, %i : tensor<1x4x?xi32>, tensor<1x4x?x?xi32>
}

// -----

// min_blocks at least the (static) number of key blocks also keeps all; the
// non-causal flag carries over.
// CHECK-LABEL: func.func @min_blocks_all
// CHECK: unisparse.dense_layout {causal = false}
func.func @min_blocks_all(%s: tensor<1x2x4x4xf32>, %c0: tensor<1x2x4xi32>, %i0: tensor<1x2x4x4xi32>) -> tensor<1x2x4x4xi32> {
  %c, %i = unisparse.block_select {tau = 0.5, min_blocks = 4, causal = false} ins(%s : tensor<1x2x4x4xf32>) outs(%c0, %i0 : tensor<1x2x4xi32>, tensor<1x2x4x4xi32>) -> tensor<1x2x4xi32>, tensor<1x2x4x4xi32>
  return %i : tensor<1x2x4x4xi32>
}

// -----

// A real top-p selection stays; so does max_blocks >= NBk, which only removes
// the cap (it does not make the layout dense: see docs/Rationale.md).
// CHECK-LABEL: func.func @sparse_stays
// CHECK-COUNT-2: unisparse.block_select
// CHECK-NOT: unisparse.dense_layout
func.func @sparse_stays(%s: tensor<1x2x4x4xf32>, %c0: tensor<1x2x4xi32>, %i0: tensor<1x2x4x4xi32>) -> (tensor<1x2x4x4xi32>, tensor<1x2x4x4xi32>) {
  %c, %i = unisparse.block_select {tau = 0.9, min_blocks = 3} ins(%s : tensor<1x2x4x4xf32>) outs(%c0, %i0 : tensor<1x2x4xi32>, tensor<1x2x4x4xi32>) -> tensor<1x2x4xi32>, tensor<1x2x4x4xi32>
  %c2, %i2 = unisparse.block_select {tau = 0.9, max_blocks = 8} ins(%s : tensor<1x2x4x4xf32>) outs(%c0, %i0 : tensor<1x2x4xi32>, tensor<1x2x4x4xi32>) -> tensor<1x2x4xi32>, tensor<1x2x4x4xi32>
  return %i, %i2 : tensor<1x2x4x4xi32>, tensor<1x2x4x4xi32>
}

// -----

// Pooling by one token and one head is the identity when the types agree.
// CHECK-LABEL: func.func @compress_identity
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x2x8x4xf32>
// CHECK-NOT: unisparse.compress
// CHECK: return %[[X]]
func.func @compress_identity(%x: tensor<1x2x8x4xf32>, %o: tensor<1x2x8x4xf32>) -> tensor<1x2x8x4xf32> {
  %r = unisparse.compress {seq_factor = 1} ins(%x : tensor<1x2x8x4xf32>) outs(%o : tensor<1x2x8x4xf32>) -> tensor<1x2x8x4xf32>
  return %r : tensor<1x2x8x4xf32>
}

// -----

// ... but not when it changes the element type (bf16 -> f32) or pools.
// CHECK-LABEL: func.func @compress_kept
// CHECK-COUNT-2: unisparse.compress
func.func @compress_kept(%x: tensor<1x2x8x4xbf16>, %o: tensor<1x2x8x4xf32>, %y: tensor<1x2x8x4xf32>, %p: tensor<1x2x4x4xf32>) -> (tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>) {
  %r = unisparse.compress {seq_factor = 1} ins(%x : tensor<1x2x8x4xbf16>) outs(%o : tensor<1x2x8x4xf32>) -> tensor<1x2x8x4xf32>
  %s = unisparse.compress {seq_factor = 2} ins(%y : tensor<1x2x8x4xf32>) outs(%p : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r, %s : tensor<1x2x8x4xf32>, tensor<1x2x4x4xf32>
}
