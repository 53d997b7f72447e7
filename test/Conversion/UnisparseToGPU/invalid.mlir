// RUN: unisparse-opt %s --convert-unisparse-to-gpu -split-input-file -verify-diagnostics

// f32 composites have no tensor-core kernel: they are lowered by
// convert-unisparse-to-linalg before bufferization.
func.func @f32(%qc: memref<1x8x?x128xf32>, %kc: memref<1x8x?x128xf32>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{cannot be lowered to the tensor-core scoring kernel: composites are not 16-bit (lower it with convert-unisparse-to-linalg before bufferization)}}
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
      ins(%qc, %kc : memref<1x8x?x128xf32>, memref<1x8x?x128xf32>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

func.func @head_dim(%qc: memref<1x8x?x256xbf16>, %kc: memref<1x8x?x256xbf16>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{head_dim must be static, a multiple of 16 and at most 128}}
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
      ins(%qc, %kc : memref<1x8x?x256xbf16>, memref<1x8x?x256xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

func.func @composites_per_block(%qc: memref<1x8x?x128xbf16>, %kc: memref<1x8x?x128xbf16>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{block / c_k = 128 must be 1, 2, 4 or a multiple of 8 that divides the key tile (64)}}
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 1 : i64}
      ins(%qc, %kc : memref<1x8x?x128xbf16>, memref<1x8x?x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}


// -----

// The outlier kernel takes 16-bit composites; f32 ones go through linalg
// before bufferization (score-precision=f32).
func.func @outlier_score(%qc: memref<1x8x?x3x64xf32>, %kc: memref<1x8x?x3x64xf32>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{cannot be lowered to the outlier scoring kernel: composites are not 16-bit (lower it with convert-unisparse-to-linalg before bufferization)}}
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 32 : i64, estimator = #unisparse.estimator<outlier>}
      ins(%qc, %kc : memref<1x8x?x3x64xf32>, memref<1x8x?x3x64xf32>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

// The scoring kernels copy composite rows by 16-byte cp.async: a view whose
// rows may start off a 16-byte boundary is refused when it is lowered (an
// offset of 4 bf16 values: 8 bytes) instead of faulting in the kernel.
func.func @unaligned_view(%qc: memref<1x8x64x128xbf16, strided<[65536, 8192, 128, 1], offset: 4>>, %kc: memref<1x8x?x128xbf16>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{cannot be lowered to the tensor-core scoring kernel: the composites' rows must start on 16-byte boundaries (the kernel copies them by 16-byte cp.async): the identity layout, or an innermost stride of 1 and an offset and other strides that are static multiples of 16 bytes, not strided<[65536, 8192, 128, 1], offset: 4>}}
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
      ins(%qc, %kc : memref<1x8x64x128xbf16, strided<[65536, 8192, 128, 1], offset: 4>>, memref<1x8x?x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

// The outlier kernel's key composites as a view of unknown offset and
// strides: not provably aligned, refused.
func.func @outlier_dynamic_view(%qc: memref<1x8x?x3x64xbf16>, %kc: memref<1x8x?x3x64xbf16, strided<[?, ?, ?, ?, 1], offset: ?>>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{cannot be lowered to the outlier scoring kernel: the composites' rows must start on 16-byte boundaries (the kernel copies them by 16-byte cp.async): the identity layout, or an innermost stride of 1 and an offset and other strides that are static multiples of 16 bytes, not strided<[?, ?, ?, ?, 1], offset: ?>}}
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 32 : i64, estimator = #unisparse.estimator<outlier>}
      ins(%qc, %kc : memref<1x8x?x3x64xbf16>, memref<1x8x?x3x64xbf16, strided<[?, ?, ?, ?, 1], offset: ?>>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

// The outlier compress kernel: a warp holds a token (D a multiple of 32 up
// to 256), a lane its D / 32 coordinates of every token of a composite in
// registers (at most 128 values: c <= 32 at D 128).
func.func @outlier_compress_d48(%k: memref<1x2x?x48xbf16>, %q: memref<1x8x?x48xbf16>, %kc: memref<1x8x?x3x48xf32>) {
  // expected-error @+1 {{cannot be lowered to the outlier compress kernel: the head dimension must be a static multiple of 32 up to 256 (a warp holds a token) (lower it with convert-unisparse-to-linalg before bufferization)}}
  unisparse.compress {seq_factor = 32 : i64, kv_group = 4 : i64, pooling = #unisparse.pooling<outlier>, outliers = 2 : i64, hot = 1 : i64}
      ins(%k : memref<1x2x?x48xbf16>) queries(%q : memref<1x8x?x48xbf16>) outs(%kc : memref<1x8x?x3x48xf32>)
  return
}

// -----

func.func @outlier_compress_c40_d128(%q: memref<1x8x?x128xbf16>, %qc: memref<1x8x?x3x128xf32>) {
  // expected-error @+1 {{cannot be lowered to the outlier compress kernel: seq_factor x head_dim / 32 must be at most 128 (a lane keeps its coordinates of the composite's tokens in registers; the kernel would spill), found 40 x 128 / 32}}
  unisparse.compress {seq_factor = 40 : i64, pooling = #unisparse.pooling<outlier>, outliers = 1 : i64, spread = true}
      ins(%q : memref<1x8x?x128xbf16>) outs(%qc : memref<1x8x?x3x128xf32>)
  return
}

// -----

// The antidiagonal kernel's CTA tile has 64 query composites (16 a warp).
func.func @antidiag_rows(%qc: memref<1x8x?x1x128xbf16>, %kc: memref<1x8x?x1x128xbf16>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{block / c_q = 128 must divide the 64 query composites of a CTA}}
  unisparse.block_score {block = 128 : i64, c_q = 1 : i64, c_k = 1 : i64, estimator = #unisparse.estimator<antidiag>}
      ins(%qc, %kc : memref<1x8x?x1x128xbf16>, memref<1x8x?x1x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

// f32 q and k have no tensor-core refinement: convert-unisparse-to-linalg
// lowers them before bufferization (the loop path).
func.func @refine_f32(%q: memref<1x4x?x64xf32>, %k: memref<1x2x?x64xf32>, %s: memref<1x4x?x?xf32>, %r: memref<1x4x?x?xf32>) {
  // expected-error @+1 {{cannot be lowered to the refinement kernels: q and k must be bf16 or f16 (tensor cores), found f32 (lower it with convert-unisparse-to-linalg before bufferization)}}
  unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64}
      ins(%q, %k, %s : memref<1x4x?x64xf32>, memref<1x2x?x64xf32>, memref<1x4x?x?xf32>)
      outs(%r : memref<1x4x?x?xf32>)
  return
}

// -----

func.func @refine_head_dim(%q: memref<1x4x?x72xbf16>, %k: memref<1x2x?x72xbf16>, %s: memref<1x4x?x?xf32>, %r: memref<1x4x?x?xf32>) {
  // expected-error @+1 {{cannot be lowered to the refinement kernels: the head dimension must be a static multiple of 16}}
  unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64}
      ins(%q, %k, %s : memref<1x4x?x72xbf16>, memref<1x2x?x72xbf16>, memref<1x4x?x?xf32>)
      outs(%r : memref<1x4x?x?xf32>)
  return
}

// -----

func.func @refine_width(%q: memref<1x4x?x64xbf16>, %k: memref<1x2x?x64xbf16>, %s: memref<1x4x?x?xf32>, %r: memref<1x4x?x?xf32>) {
  // expected-error @+1 {{cannot be lowered to the refinement kernels: 'width' must be at most 8 (the probe kernel unrolls a sum per key block an offset's window reaches), found 9}}
  unisparse.slash_refine {block = 64 : i64, last_q = 16 : i64, width = 9 : i64}
      ins(%q, %k, %s : memref<1x4x?x64xbf16>, memref<1x2x?x64xbf16>, memref<1x4x?x?xf32>)
      outs(%r : memref<1x4x?x?xf32>)
  return
}

// -----

// The outlier kernel takes one query outlier (3 query slots).
func.func @outlier_rq2(%qc: memref<1x8x?x4x128xbf16>, %kc: memref<1x8x?x3x128xbf16>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{cannot be lowered to the outlier scoring kernel: the kernel takes one query outlier}}
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 32 : i64, estimator = #unisparse.estimator<outlier>}
      ins(%qc, %kc : memref<1x8x?x4x128xbf16>, memref<1x8x?x3x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

// A query block's composites lie within a warp's 16.
func.func @outlier_qblk(%qc: memref<1x8x?x3x128xbf16>, %kc: memref<1x8x?x3x128xbf16>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{block / c_q = 32 must divide 16}}
  unisparse.block_score {block = 128 : i64, c_q = 4 : i64, c_k = 32 : i64, estimator = #unisparse.estimator<outlier>}
      ins(%qc, %kc : memref<1x8x?x3x128xbf16>, memref<1x8x?x3x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

// A key block of one composite (c_k = block) splits a lane's pair.
func.func @outlier_kblk(%qc: memref<1x8x?x3x128xbf16>, %kc: memref<1x8x?x3x128xbf16>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{block / c_k = 1 must be 2, 4 or a multiple of 8}}
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 128 : i64, estimator = #unisparse.estimator<outlier>}
      ins(%qc, %kc : memref<1x8x?x3x128xbf16>, memref<1x8x?x3x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}
