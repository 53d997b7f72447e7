// RUN: unisparse-opt %s --split-input-file --unisparse-decompose --unisparse-narrow-composites | FileCheck %s --check-prefix=NARROW
// RUN: unisparse-opt %s --split-input-file --unisparse-decompose --unisparse-narrow-composites --convert-unisparse-to-linalg="gpu-kernels=true" --canonicalize -verify-diagnostics | FileCheck %s --check-prefix=LINALG

// The GPU estimation of the outlier estimator: its block_score is the
// outlier tensor-core kernel's (OutlierScoreKernel.cpp), so
// unisparse-narrow-composites rounds the outlier composites to bf16 (the
// compress still writes f32; a generic rounds each slot once), and
// convert-unisparse-to-linalg (gpu-kernels) lowers the outlier compresses
// to linalg (the structured path that unisparse-to-nvptx maps to GPU
// kernels) but leaves the block_score and the selection as ops for their
// GPU kernels. A mean-pooling estimation keeps its 16-bit composites and
// its block_score for the tensor-core kernel.

// NARROW-LABEL: func.func @outlier
// NARROW: %[[QC32:.+]] = unisparse.compress {outliers = 1 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 16 : i64, spread = true} ins(%{{.+}} : tensor<1x8x?x64xbf16>) outs(%{{.+}} : tensor<1x8x?x3x64xf32>)
// NARROW: %[[KC32:.+]] = unisparse.compress {hot = 1 : i64, kv_group = 4 : i64, outliers = 2 : i64, pooling = #unisparse.pooling<outlier>, seq_factor = 32 : i64} ins(%{{.+}} : tensor<1x2x?x64xbf16>) queries(%{{.+}} : tensor<1x8x?x64xbf16>) outs(%{{.+}} : tensor<1x8x?x3x64xf32>)
// NARROW: %[[QC:.+]] = linalg.generic {{.+}} ins(%[[QC32]] : tensor<1x8x?x3x64xf32>) outs(%{{.+}} : tensor<1x8x?x3x64xbf16>)
// NARROW: arith.truncf %{{.+}} : f32 to bf16
// NARROW: %[[KC:.+]] = linalg.generic {{.+}} ins(%[[KC32]] : tensor<1x8x?x3x64xf32>) outs(%{{.+}} : tensor<1x8x?x3x64xbf16>)
// NARROW: unisparse.block_score {{.+}}estimator = #unisparse.estimator<outlier>{{.+}} ins(%[[QC]], %[[KC]] : tensor<1x8x?x3x64xbf16>, tensor<1x8x?x3x64xbf16>)
// For the GPU (gpu-kernels), convert-unisparse-to-linalg lowers the outlier
// compresses to linalg; the scoring and the selection stay ops for their
// GPU kernels. (scripts/gpu/check.py checks this path on a GPU:
// outlier_bf16_d128, outlier_ch2_f16_d64, outlier_32k.)
// LINALG-LABEL: func.func @outlier
// LINALG-NOT: pooling = #unisparse.pooling<outlier>
// LINALG: linalg.generic
// LINALG-NOT: pooling = #unisparse.pooling<outlier>
// LINALG: unisparse.block_score {{.+}}estimator = #unisparse.estimator<outlier>{{.+}} ins(%{{.+}}, %{{.+}} : tensor<1x8x?x3x64xbf16>, tensor<1x8x?x3x64xbf16>)
// LINALG: unisparse.block_select {tau = 0.99499999999999999 : f64}
// LINALG: unisparse.block_sparse_attention {block = 128 : i64}
func.func @outlier(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %v: tensor<1x2x?x64xbf16>,
                   %o: tensor<1x8x?x64xbf16>, %l: tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<c_k = 32, tau = 0.995, estimator = outlier, query_reduce = max>}
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
  %r:2 = unisparse.attention {config = #unisparse.config<>}
      ins(%q, %k, %v : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x64xbf16>)
      outs(%o, %l : tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>
  return %r#0 : tensor<1x8x?x64xbf16>
}

// -----

// Two query outliers: the outlier kernel takes one, so the composites stay
// f32 and the scoring goes through linalg (the structured path).
// NARROW-LABEL: func.func @outlier_rq2
// NARROW: unisparse.block_score {{.+}}estimator = #unisparse.estimator<outlier>{{.+}} ins(%{{.+}}, %{{.+}} : tensor<1x8x?x4x64xf32>, tensor<1x8x?x3x64xf32>)
// LINALG-LABEL: func.func @outlier_rq2
// LINALG-NOT: unisparse.block_score
// LINALG: unisparse.block_select
func.func @outlier_rq2(%q: tensor<1x8x?x64xbf16>, %k: tensor<1x2x?x64xbf16>, %v: tensor<1x2x?x64xbf16>,
                       %o: tensor<1x8x?x64xbf16>, %l: tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16> {
  %r:2 = unisparse.attention {config = #unisparse.config<c_k = 32, tau = 0.995, estimator = outlier, query_reduce = max, q_outliers = 2>}
      ins(%q, %k, %v : tensor<1x8x?x64xbf16>, tensor<1x2x?x64xbf16>, tensor<1x2x?x64xbf16>)
      outs(%o, %l : tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>) -> tensor<1x8x?x64xbf16>, tensor<1x8x?xf32>
  return %r#0 : tensor<1x8x?x64xbf16>
}
