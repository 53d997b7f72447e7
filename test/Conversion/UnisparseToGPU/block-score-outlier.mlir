// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu --canonicalize | FileCheck %s
// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu="key-tile=32 warps=8" --canonicalize | FileCheck %s --check-prefix=KNOBS

// The buffer form of block_score {estimator = outlier} (16-bit composites:
// rest, one outlier row and the spread for the queries; rest and two
// outlier keys for the keys) becomes the outlier kernels of
// OutlierScoreKernel.cpp: |k|^2 per key slot and the query spread as two
// small kernels into f32 buffers, then the scoring kernel (a CTA per 64
// query composites, three passes over the key tiles); the [Tq, Tk] map is
// never allocated.
// CHECK-LABEL: func.func @score(
// CHECK-SAME: %[[QC:[^:]+]]: memref<1x8x?x3x128xbf16>, %[[KC:[^:]+]]: memref<1x8x?x3x128xbf16>, %[[S:[^:]+]]: memref<1x8x?x?xf32>)
// |k|^2 slot major, padded to whole key tiles of 64 composites.
// CHECK: %[[NORMS:.+]] = memref.alloc(%{{.+}}) : memref<1x8x3x?xf32>
// CHECK: gpu.launch {{.+}} module(@unisparse_outlier_key_norms_0_module) function(@unisparse_outlier_key_norms_0)
// CHECK: scf.for %{{.+}} = %c0 to %c128 step %c1
// CHECK: math.fma
// CHECK: %[[SPREAD:.+]] = memref.alloc(%{{.+}}) : memref<1x8x?xf32>
// CHECK: gpu.launch {{.+}} module(@unisparse_outlier_query_spread_0_module) function(@unisparse_outlier_query_spread_0)
// CHECK: gpu.launch {{.+}} threads(%{{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_outlier_score_0_module) function(@unisparse_outlier_score_0)
// Two key stages of 64 composites x 3 slots x (128 + 8) elements.
// CHECK-SAME: workgroup(%[[STAGES:.+]] : memref<52224xbf16, #gpu.address_space<workgroup>>)
// The query slot rows as mma A fragments, loaded once for the three passes:
// 2 m16 tiles x 8 k steps x 4 registers.
// CHECK-COUNT-64: vector.load %[[QC]]{{.+}} : memref<1x8x?x3x128xbf16>, vector<2xbf16>
// Pass 1 (the x statistics of the slot 0 rows): key tile 0 in flight (24
// 16-byte copies a thread), then the key loop carrying two maxima and two
// sums a lane.
// CHECK-COUNT-24: nvgpu.device_async_copy %[[KC]]
// CHECK: scf.for {{.+}} -> (f32, f32, f32, f32) {
// CHECK: nvgpu.device_async_wait
// CHECK: gpu.barrier
// A loop over the three key slots; per slot and k step, ldmatrix.x4 of two
// n8 tiles of the slot's keys and one m16 tile (the slot 0 rows).
// CHECK: scf.for %{{.+}} = %c0 to %c3 step %c1
// CHECK: nvgpu.ldmatrix %[[STAGES]]
// CHECK: nvvm.mma.sync
// CHECK: gpu.shuffle  xor
// CHECK: llvm.nvvm.ex2.approx.ftz.f
// Pass 2 (the corrected statistics): four rows a lane, the key norms read.
// CHECK: scf.for {{.+}} -> (f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK: scf.for %{{.+}} = %c0 to %c3 step %c1
// CHECK: nvvm.mma.sync
// CHECK: vector.load %[[NORMS]]
// Pass 3: the mixed exponentials summed over the slots, then the scores.
// CHECK: scf.for %{{.+}} = %c0 to %c3 step %c1
// CHECK: nvvm.mma.sync
// CHECK: vector.load %[[NORMS]]
// CHECK: arith.maximumf
// CHECK: memref.store %{{.+}}, %[[S]]
// The blocks past the CTA's key tiles: 0.
// CHECK: memref.store %{{.+}}, %[[S]]
// CHECK: memref.dealloc %[[NORMS]]
// CHECK: memref.dealloc %[[SPREAD]]
// KNOBS-LABEL: func.func @score(
// KNOBS: gpu.launch {{.+}} threads(%{{.+}}) in (%{{.+}} = %c256, {{.+}}) module(@unisparse_outlier_score_0_module)
// KNOBS-SAME: workgroup(%{{.+}} : memref<26112xbf16, #gpu.address_space<workgroup>>)
// KNOBS-COUNT-6: nvgpu.device_async_copy
func.func @score(%qc: memref<1x8x?x3x128xbf16>, %kc: memref<1x8x?x3x128xbf16>, %s: memref<1x8x?x?xf32>) {
  unisparse.block_score {block = 128, c_q = 16, c_k = 32, estimator = #unisparse.estimator<outlier>,
                         query_reduce = #unisparse.query_reduce<max>}
      ins(%qc, %kc : memref<1x8x?x3x128xbf16>, memref<1x8x?x3x128xbf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}

// -----

// query_reduce = sum: the quads' partial scores are added; c_k = 16 (a key
// block is one n8 tile: the quad's whole sum).
// CHECK-LABEL: func.func @sum(
// CHECK: module(@unisparse_outlier_score_0_module)
// CHECK-NOT: arith.maximumf
// CHECK: gpu.terminator
func.func @sum(%qc: memref<1x8x?x3x64xf16>, %kc: memref<1x8x?x2x64xf16>, %s: memref<1x8x?x?xf32>) {
  unisparse.block_score {block = 128, c_q = 16, c_k = 16, estimator = #unisparse.estimator<outlier>}
      ins(%qc, %kc : memref<1x8x?x3x64xf16>, memref<1x8x?x2x64xf16>) outs(%s : memref<1x8x?x?xf32>)
  return
}
