// RUN: unisparse-opt %s --convert-unisparse-to-gpu="key-tile=48" -verify-diagnostics

// A key block of 6 composites (block 192, c_k 32) divides a key tile of 48
// but is neither part of one n8 tile nor whole n8 tiles: the kernel's block
// sums have no form for it.
func.func @key_block_of_six(%qc: memref<1x8x?x128xbf16>, %kc: memref<1x8x?x128xbf16>, %s: memref<1x8x?x?xf32>) {
  // expected-error @+1 {{block / c_k = 6 must be 1, 2, 4 or a multiple of 8 that divides the key tile (48)}}
  unisparse.block_score {block = 192 : i64, c_q = 24 : i64, c_k = 32 : i64}
      ins(%qc, %kc : memref<1x8x?x128xbf16>, memref<1x8x?x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}
