// RUN: unisparse-opt %s --convert-unisparse-to-gpu="key-tile=256" -split-input-file -verify-diagnostics

// An antidiagonal stage holds a key tile and the CTA's query composites of
// one slot; three of them must fit in a CTA's workgroup memory. Mean
// pooling keeps its query composites in registers: the same key tile fits.
func.func @antidiag_stages(%qc: memref<1x8x?x8x128xbf16>, %kc: memref<1x8x?x8x128xbf16>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{the antidiagonal kernel's stages (key tile 256 and 64 query composites of 136 elements, x 3) need 261120 bytes of workgroup memory, more than 232448}}
  unisparse.block_score {block = 128 : i64, c_q = 8 : i64, c_k = 8 : i64, estimator = #unisparse.estimator<antidiag_lse>}
      ins(%qc, %kc : memref<1x8x?x8x128xbf16>, memref<1x8x?x8x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

func.func @mean_fits(%qc: memref<1x8x?x128xbf16>, %kc: memref<1x8x?x128xbf16>, %s: memref<1x8x?x?xf32>) {
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
      ins(%qc, %kc : memref<1x8x?x128xbf16>, memref<1x8x?x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}
