// block_select alone on scores given by the caller, for scripts/gpu/check.py:
// the GPU selection kernel on scores that block_score does not make
// (negative scores, exact ties, NaN, infinities), against the reference.
// Compiled by scripts/gpu/compile_all.py with unisparse-compile.
func.func @select_p90(%s: memref<?x?x?x?xf32>, %c: memref<?x?x?xi32>, %i: memref<?x?x?x?xi32>) attributes {llvm.emit_c_interface} {
  %st = bufferization.to_tensor %s restrict : memref<?x?x?x?xf32> to tensor<?x?x?x?xf32>
  %ct = bufferization.to_tensor %c restrict writable : memref<?x?x?xi32> to tensor<?x?x?xi32>
  %it = bufferization.to_tensor %i restrict writable : memref<?x?x?x?xi32> to tensor<?x?x?x?xi32>
  %r:2 = unisparse.block_select {tau = 0.9 : f64}
      ins(%st : tensor<?x?x?x?xf32>) outs(%ct, %it : tensor<?x?x?xi32>, tensor<?x?x?x?xi32>) -> tensor<?x?x?xi32>, tensor<?x?x?x?xi32>
  bufferization.materialize_in_destination %r#0 in restrict writable %c : (tensor<?x?x?xi32>, memref<?x?x?xi32>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %i : (tensor<?x?x?x?xi32>, memref<?x?x?x?xi32>) -> ()
  return
}
func.func @select_p99_min(%s: memref<?x?x?x?xf32>, %c: memref<?x?x?xi32>, %i: memref<?x?x?x?xi32>) attributes {llvm.emit_c_interface} {
  %st = bufferization.to_tensor %s restrict : memref<?x?x?x?xf32> to tensor<?x?x?x?xf32>
  %ct = bufferization.to_tensor %c restrict writable : memref<?x?x?xi32> to tensor<?x?x?xi32>
  %it = bufferization.to_tensor %i restrict writable : memref<?x?x?x?xi32> to tensor<?x?x?x?xi32>
  %r:2 = unisparse.block_select {tau = 0.99 : f64, min_blocks = 5 : i64, max_blocks = 40 : i64, local_blocks = 2 : i64}
      ins(%st : tensor<?x?x?x?xf32>) outs(%ct, %it : tensor<?x?x?xi32>, tensor<?x?x?x?xi32>) -> tensor<?x?x?xi32>, tensor<?x?x?x?xi32>
  bufferization.materialize_in_destination %r#0 in restrict writable %c : (tensor<?x?x?xi32>, memref<?x?x?xi32>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %i : (tensor<?x?x?x?xi32>, memref<?x?x?x?xi32>) -> ()
  return
}
// Non-causal, no sink and no local window: every row sorts all NBk keys
// (rows of more than 1024 merge sorted chunks through workgroup memory),
// and a row past the diagonal (I >= NBk) forces nothing, so its free blocks
// fill the whole sort and the walk's last step reads past it.
func.func @select_p95_open(%s: memref<?x?x?x?xf32>, %c: memref<?x?x?xi32>, %i: memref<?x?x?x?xi32>) attributes {llvm.emit_c_interface} {
  %st = bufferization.to_tensor %s restrict : memref<?x?x?x?xf32> to tensor<?x?x?x?xf32>
  %ct = bufferization.to_tensor %c restrict writable : memref<?x?x?xi32> to tensor<?x?x?xi32>
  %it = bufferization.to_tensor %i restrict writable : memref<?x?x?x?xi32> to tensor<?x?x?x?xi32>
  %r:2 = unisparse.block_select {tau = 0.95 : f64, local_blocks = 0 : i64, sink = false, causal = false}
      ins(%st : tensor<?x?x?x?xf32>) outs(%ct, %it : tensor<?x?x?xi32>, tensor<?x?x?x?xi32>) -> tensor<?x?x?xi32>, tensor<?x?x?x?xi32>
  bufferization.materialize_in_destination %r#0 in restrict writable %c : (tensor<?x?x?xi32>, memref<?x?x?xi32>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %i : (tensor<?x?x?x?xi32>, memref<?x?x?x?xi32>) -> ()
  return
}
