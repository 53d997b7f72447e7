// RUN: unisparse-opt %s --split-input-file --unisparse-decompose --unisparse-narrow-composites | FileCheck %s --check-prefix=NARROW
// RUN: unisparse-opt %s --split-input-file --unisparse-decompose --unisparse-narrow-composites --convert-unisparse-to-linalg="gpu-kernels=true" --canonicalize -verify-diagnostics | FileCheck %s --check-prefix=LINALG

// The GPU estimation of the outlier estimator: its block_score is the
// outlier tensor-core kernel's (OutlierScoreKernel.cpp), so
// unisparse-narrow-composites has the outlier compresses write bf16
// composites (each slot computed in f32 and rounded once), and
// convert-unisparse-to-linalg (gpu-kernels) leaves them, the block_score
// and the selection as ops for their GPU kernels (the outlier compress
// kernels: OutlierCompressKernel.cpp, compress-outlier.mlir). A
// mean-pooling estimation keeps its 16-bit composites and its block_score
// for the tensor-core kernel.

// NARROW-LABEL: func.func @outlier
// NARROW-NOT: linalg.generic
// NARROW: %[[QC:.+]] = unisparse.compress {outliers = 1 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 16 : i64, spread = true} ins(%{{.+}} : tensor<1x8x?x64xbf16>) outs(%{{.+}} : tensor<1x8x?x3x64xbf16>)
// NARROW: %[[KC:.+]] = unisparse.compress {hot = 1 : i64, kv_group = 4 : i64, outliers = 2 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 32 : i64} ins(%{{.+}} : tensor<1x2x?x64xbf16>) queries(%{{.+}} : tensor<1x8x?x64xbf16>) outs(%{{.+}} : tensor<1x8x?x3x64xbf16>)
// NARROW-NOT: linalg.generic
// NARROW: unisparse.block_score {{.+}}estimator = #unisparse.estimator<outlier>{{.+}} ins(%[[QC]], %[[KC]] : tensor<1x8x?x3x64xbf16>, tensor<1x8x?x3x64xbf16>)
// For the GPU (gpu-kernels), convert-unisparse-to-linalg leaves the outlier
// compresses, the scoring and the selection for their GPU kernels.
// (scripts/gpu/check.py checks this path on a GPU: outlier_bf16_d128,
// outlier_ch2_f16_d64, outlier_h32_bf16_d128, and the compress kernels
// alone against float64: check_outlier_compress.)
// LINALG-LABEL: func.func @outlier
// LINALG-NOT: linalg.generic
// LINALG: %[[QC:.+]] = unisparse.compress {outliers = 1 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 16 : i64, spread = true} ins(%{{.+}} : tensor<1x8x?x64xbf16>) outs(%{{.+}} : tensor<1x8x?x3x64xbf16>)
// LINALG: %[[KC:.+]] = unisparse.compress {hot = 1 : i64, {{.+}}pooling = #unisparse.pooling<outlier>{{.+}} outs(%{{.+}} : tensor<1x8x?x3x64xbf16>)
// LINALG-NOT: linalg.generic
// LINALG: unisparse.block_score {{.+}}estimator = #unisparse.estimator<outlier>{{.+}} ins(%[[QC]], %[[KC]] : tensor<1x8x?x3x64xbf16>, tensor<1x8x?x3x64xbf16>)
// LINALG: unisparse.block_select {tau = 0.99499999999999999 : f64}
// LINALG: unisparse.block_sparse_attention {block = 128 : i64}
func.func @outlier(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %v: tensor<1x2x?x64xbf16>,
                   %o: tensor<1x8x?x64xbf16>, %l: tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<c_k = 32, tau = 0.995, estimator = outlier, query_reduce = max, refine = none>}
      ins(%q, %k, %v : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x64xbf16>)
      outs(%o, %l : tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>
  return %r#0 : tensor<1x8x?x64xbf16>
}

// -----

// NARROW-LABEL: func.func @mean
// NARROW: %[[QC:.+]] = unisparse.compress {seq_factor = 16 : i64} ins(%{{.+}} : tensor<1x8x?x64xbf16>) outs(%{{.+}} : tensor<1x8x?x64xbf16>)
// (The keys pooled once per kv head, shared by its 4 head groups.)
// NARROW: %[[KC:.+]] = unisparse.compress {seq_factor = 8 : i64} ins(%{{.+}} : tensor<1x2x?x64xbf16>) outs(%{{.+}} : tensor<1x2x?x64xbf16>)
// NARROW: unisparse.block_score {block = 128 : i64, c_k = 8 : i64, c_q = 16 : i64, kv_group = 4 : i64} ins(%[[QC]], %[[KC]] : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>)
// LINALG-LABEL: func.func @mean
// LINALG: %[[QC:.+]] = unisparse.compress {seq_factor = 16 : i64} ins(%{{.+}} : tensor<1x8x?x64xbf16>) outs(%{{.+}} : tensor<1x8x?x64xbf16>)
// LINALG: %[[KC:.+]] = unisparse.compress {seq_factor = 8 : i64} ins(%{{.+}} : tensor<1x2x?x64xbf16>)
// LINALG: unisparse.block_score {block = 128 : i64, c_k = 8 : i64, c_q = 16 : i64, kv_group = 4 : i64} ins(%[[QC]], %[[KC]] : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>)
func.func @mean(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %v: tensor<1x2x?x64xbf16>,
                %o: tensor<1x8x?x64xbf16>, %l: tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}
      ins(%q, %k, %v : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x64xbf16>)
      outs(%o, %l : tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>
  return %r#0 : tensor<1x8x?x64xbf16>
}

// -----

// Two query outliers: the outlier kernel takes one, so the composites stay
// f32 and the scoring goes through linalg (the structured path); the
// compresses are still the outlier compress kernels' (f32 composites).
// NARROW-LABEL: func.func @outlier_rq2
// NARROW: unisparse.block_score {{.+}}estimator = #unisparse.estimator<outlier>{{.+}} ins(%{{.+}}, %{{.+}} : tensor<1x8x?x4x64xf32>, tensor<1x8x?x3x64xf32>)
// LINALG-LABEL: func.func @outlier_rq2
// LINALG: unisparse.compress {outliers = 2 : i64, pooling = #unisparse.pooling<outlier>{{.+}} outs(%{{.+}} : tensor<1x8x?x4x64xf32>)
// LINALG: unisparse.compress {hot = 1 : i64, {{.+}}pooling = #unisparse.pooling<outlier>{{.+}} outs(%{{.+}} : tensor<1x8x?x3x64xf32>)
// LINALG-NOT: unisparse.block_score
// LINALG: unisparse.block_select
func.func @outlier_rq2(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %v: tensor<1x2x?x64xbf16>,
                       %o: tensor<1x8x?x64xbf16>, %l: tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<c_k = 32, tau = 0.995, estimator = outlier, query_reduce = max, q_outliers = 2, refine = none>}
      ins(%q, %k, %v : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x64xbf16>)
      outs(%o, %l : tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>
  return %r#0 : tensor<1x8x?x64xbf16>
}

// -----

// A head dimension the outlier compress kernel does not take (48: a warp
// holds a token, 32 lanes of whole coordinates): with gpu-kernels its
// compress goes through linalg (the structured path) all the same.
// NARROW-LABEL: func.func @outlier_d48
// (Its heads pooled by a mean compress, the compress kernel's.)
// LINALG-LABEL: func.func @outlier_d48
// LINALG-NOT: pooling = #unisparse.pooling<outlier>
// LINALG: unisparse.compress {seq_factor = 1 : i64} ins(%{{.+}} : tensor<1x4x?x48xbf16>)
// LINALG: linalg.generic
// LINALG-NOT: pooling = #unisparse.pooling<outlier>
func.func @outlier_d48(%q: tensor<1x4x?x48xbf16>, %o: tensor<1x4x?x3x48xf32>) -> tensor<1x4x?x3x48xf32> {
  %r = unisparse.compress {seq_factor = 16, pooling = #unisparse.pooling<outlier>, outliers = 1, spread = true}
      ins(%q : tensor<1x4x?x48xbf16>) outs(%o : tensor<1x4x?x3x48xf32>) -> tensor<1x4x?x3x48xf32>
  return %r : tensor<1x4x?x3x48xf32>
}

// -----

// The outlier compress kernel keeps a lane's coordinates of every token of
// a composite in registers, c D / 32 <= 128: at D 128, c 32 is the kernel's
// (the compress stays for convert-unisparse-to-gpu) and c 40 takes the
// structured path (ptxas spills from c 48 on).
// LINALG-LABEL: func.func @outlier_c32_d128
// LINALG-NOT: linalg.generic
// LINALG: unisparse.compress {outliers = 1 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 32 : i64, spread = true} ins(%{{.+}} : tensor<1x4x?x128xbf16>) outs(%{{.+}} : tensor<1x4x?x3x128xf32>)
// LINALG-NOT: linalg.generic
// LINALG: return
func.func @outlier_c32_d128(%q: tensor<1x4x?x128xbf16>, %o: tensor<1x4x?x3x128xf32>) -> tensor<1x4x?x3x128xf32> {
  %r = unisparse.compress {seq_factor = 32, pooling = #unisparse.pooling<outlier>, outliers = 1, spread = true}
      ins(%q : tensor<1x4x?x128xbf16>) outs(%o : tensor<1x4x?x3x128xf32>) -> tensor<1x4x?x3x128xf32>
  return %r : tensor<1x4x?x3x128xf32>
}

// -----

// LINALG-LABEL: func.func @outlier_c40_d128
// LINALG-NOT: pooling = #unisparse.pooling<outlier>
// LINALG: linalg.generic
// LINALG-NOT: pooling = #unisparse.pooling<outlier>
func.func @outlier_c40_d128(%q: tensor<1x4x?x128xbf16>, %o: tensor<1x4x?x3x128xf32>) -> tensor<1x4x?x3x128xf32> {
  %r = unisparse.compress {seq_factor = 40, pooling = #unisparse.pooling<outlier>, outliers = 1, spread = true}
      ins(%q : tensor<1x4x?x128xbf16>) outs(%o : tensor<1x4x?x3x128xf32>) -> tensor<1x4x?x3x128xf32>
  return %r : tensor<1x4x?x3x128xf32>
}
