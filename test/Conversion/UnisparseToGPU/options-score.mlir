// RUN: not unisparse-opt %s --convert-unisparse-to-gpu="warp-rows=24" 2>&1 | FileCheck %s --check-prefix=ROWS
// RUN: not unisparse-opt %s --convert-unisparse-to-gpu="min-ctas-per-sm=-1" 2>&1 | FileCheck %s --check-prefix=MINCTAS
// RUN: not unisparse-opt %s --convert-unisparse-to-gpu="epilogue=both" 2>&1 | FileCheck %s --check-prefix=EPILOGUE
// RUN: not unisparse-opt %s --convert-unisparse-to-gpu="epilogue=separate scratch-bytes=-1" 2>&1 | FileCheck %s --check-prefix=SCRATCH
// RUN: not unisparse-opt %s --unisparse-narrow-composites="warp-rows=8" --convert-unisparse-to-gpu 2>&1 | FileCheck %s --check-prefix=NARROW

// The scoring kernel's knobs that no kernel can be built from are refused
// with the reason.
// ROWS: error: warp-rows must be 16 or 32
// MINCTAS: error: min-ctas-per-sm must be in [0, 32]
// EPILOGUE: error: epilogue must be fused or separate, got 'both'
// SCRATCH: error: scratch-bytes must be 0 (unbounded) or positive, got -1
// A narrowing with a row count the kernel does not take leaves the op to
// the structured path: its buffer form then cannot be scored on tensor cores.
// NARROW: error: 'unisparse.block_score' op cannot be lowered to the tensor-core scoring kernel: composites are not 16-bit
func.func @score(%qc: memref<1x8x?x128xf32>, %kc: memref<1x8x?x128xf32>, %s: memref<1x8x?x?xf32>) {
  unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
      ins(%qc, %kc : memref<1x8x?x128xf32>, memref<1x8x?x128xf32>) outs(%s : memref<1x8x?x?xf32>)
  return
}
