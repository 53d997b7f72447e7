// The outlier compress alone (unisparse.compress {pooling = outlier}, the
// outlier compress kernels of OutlierCompressKernel.cpp) on inputs given by
// the caller, for scripts/gpu/check.py (check_outlier_compress): its slots
// and picks against float64. Compiled by scripts/gpu/compile_all.py with
// unisparse-compile. The attributes are OUTLIER_COMPRESS_ENTRIES there.

func.func @oc_q_bf16_d128(%x: memref<?x?x?x128xbf16>, %o: memref<?x?x?x3x128xf32>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x?x?x128xbf16> to tensor<?x?x?x128xbf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x?x?x3x128xf32> to tensor<?x?x?x3x128xf32>
  %r = unisparse.compress {seq_factor = 16 : i64, pooling = #unisparse.pooling<outlier>, outliers = 1 : i64, spread = true}
      ins(%xt : tensor<?x?x?x128xbf16>) outs(%ot : tensor<?x?x?x3x128xf32>) -> tensor<?x?x?x3x128xf32>
  bufferization.materialize_in_destination %r in restrict writable %o : (tensor<?x?x?x3x128xf32>, memref<?x?x?x3x128xf32>) -> ()
  return
}
func.func @oc_q_bf16_d128_out16(%x: memref<?x?x?x128xbf16>, %o: memref<?x?x?x3x128xbf16>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x?x?x128xbf16> to tensor<?x?x?x128xbf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x?x?x3x128xbf16> to tensor<?x?x?x3x128xbf16>
  %r = unisparse.compress {seq_factor = 16 : i64, pooling = #unisparse.pooling<outlier>, outliers = 1 : i64, spread = true}
      ins(%xt : tensor<?x?x?x128xbf16>) outs(%ot : tensor<?x?x?x3x128xbf16>) -> tensor<?x?x?x3x128xbf16>
  bufferization.materialize_in_destination %r in restrict writable %o : (tensor<?x?x?x3x128xbf16>, memref<?x?x?x3x128xbf16>) -> ()
  return
}
func.func @oc_q_f16_d64_out16(%x: memref<?x?x?x64xf16>, %o: memref<?x?x?x3x64xbf16>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x?x?x64xf16> to tensor<?x?x?x64xf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x?x?x3x64xbf16> to tensor<?x?x?x3x64xbf16>
  %r = unisparse.compress {seq_factor = 16 : i64, pooling = #unisparse.pooling<outlier>, outliers = 1 : i64, spread = true}
      ins(%xt : tensor<?x?x?x64xf16>) outs(%ot : tensor<?x?x?x3x64xbf16>) -> tensor<?x?x?x3x64xbf16>
  bufferization.materialize_in_destination %r in restrict writable %o : (tensor<?x?x?x3x64xbf16>, memref<?x?x?x3x64xbf16>) -> ()
  return
}
func.func @oc_k_bf16_d128(%x: memref<?x?x?x128xbf16>, %q: memref<?x?x?x128xbf16>, %o: memref<?x?x?x3x128xf32>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x?x?x128xbf16> to tensor<?x?x?x128xbf16>
  %qt = bufferization.to_tensor %q restrict : memref<?x?x?x128xbf16> to tensor<?x?x?x128xbf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x?x?x3x128xf32> to tensor<?x?x?x3x128xf32>
  %r = unisparse.compress {seq_factor = 32 : i64, kv_group = 4 : i64, pooling = #unisparse.pooling<outlier>, outliers = 2 : i64, hot = 1 : i64}
      ins(%xt : tensor<?x?x?x128xbf16>) queries(%qt : tensor<?x?x?x128xbf16>) outs(%ot : tensor<?x?x?x3x128xf32>) -> tensor<?x?x?x3x128xf32>
  bufferization.materialize_in_destination %r in restrict writable %o : (tensor<?x?x?x3x128xf32>, memref<?x?x?x3x128xf32>) -> ()
  return
}
func.func @oc_k_f16_d64(%x: memref<?x?x?x64xf16>, %q: memref<?x?x?x64xf16>, %o: memref<?x?x?x3x64xf32>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x?x?x64xf16> to tensor<?x?x?x64xf16>
  %qt = bufferization.to_tensor %q restrict : memref<?x?x?x64xf16> to tensor<?x?x?x64xf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x?x?x3x64xf32> to tensor<?x?x?x3x64xf32>
  %r = unisparse.compress {seq_factor = 32 : i64, kv_group = 4 : i64, pooling = #unisparse.pooling<outlier>, outliers = 2 : i64, hot = 1 : i64}
      ins(%xt : tensor<?x?x?x64xf16>) queries(%qt : tensor<?x?x?x64xf16>) outs(%ot : tensor<?x?x?x3x64xf32>) -> tensor<?x?x?x3x64xf32>
  bufferization.materialize_in_destination %r in restrict writable %o : (tensor<?x?x?x3x64xf32>, memref<?x?x?x3x64xf32>) -> ()
  return
}
func.func @oc_q_ch2_f16_d64(%x: memref<?x?x?x64xf16>, %o: memref<?x?x?x4x64xf32>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x?x?x64xf16> to tensor<?x?x?x64xf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x?x?x4x64xf32> to tensor<?x?x?x4x64xf32>
  %r = unisparse.compress {seq_factor = 12 : i64, head_factor = 2 : i64, pooling = #unisparse.pooling<outlier>, outliers = 2 : i64, spread = true}
      ins(%xt : tensor<?x?x?x64xf16>) outs(%ot : tensor<?x?x?x4x64xf32>) -> tensor<?x?x?x4x64xf32>
  bufferization.materialize_in_destination %r in restrict writable %o : (tensor<?x?x?x4x64xf32>, memref<?x?x?x4x64xf32>) -> ()
  return
}
func.func @oc_k_ch2_f16_d64(%x: memref<?x?x?x64xf16>, %q: memref<?x?x?x64xf16>, %o: memref<?x?x?x4x64xf32>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x?x?x64xf16> to tensor<?x?x?x64xf16>
  %qt = bufferization.to_tensor %q restrict : memref<?x?x?x64xf16> to tensor<?x?x?x64xf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x?x?x4x64xf32> to tensor<?x?x?x4x64xf32>
  %r = unisparse.compress {seq_factor = 48 : i64, head_factor = 2 : i64, kv_group = 2 : i64, pooling = #unisparse.pooling<outlier>, outliers = 3 : i64, hot = 2 : i64}
      ins(%xt : tensor<?x?x?x64xf16>) queries(%qt : tensor<?x?x?x64xf16>) outs(%ot : tensor<?x?x?x4x64xf32>) -> tensor<?x?x?x4x64xf32>
  bufferization.materialize_in_destination %r in restrict writable %o : (tensor<?x?x?x4x64xf32>, memref<?x?x?x4x64xf32>) -> ()
  return
}
