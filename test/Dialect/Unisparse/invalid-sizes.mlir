// RUN: unisparse-opt %s -split-input-file -verify-diagnostics
//
// Sizes beyond what the lowering can address, and f32/count limits of the
// attributes: the size rules of ShapeRules.h (one definition, also used by
// the compiled entry points' memory guard).

// A static N of 2^63 - 1: q alone has more than 2^63 bytes, so strides
// would overflow in the lowering.
func.func @huge_n(%q: tensor<1x1x9223372036854775807x64xf32>, %o: tensor<1x1x9223372036854775807x64xf32>,
                  %l: tensor<1x1x9223372036854775807xf32>)
    -> (tensor<1x1x9223372036854775807x64xf32>, tensor<1x1x9223372036854775807xf32>) {
  // expected-error @+1 {{'unisparse.attention' op q, k, v, o, lse and the estimation's workspace (untiled) need more than 2^63 - 1 bytes}}
  %r:2 = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}
      ins(%q, %q, %q : tensor<1x1x9223372036854775807x64xf32>, tensor<1x1x9223372036854775807x64xf32>, tensor<1x1x9223372036854775807x64xf32>)
      outs(%o, %l : tensor<1x1x9223372036854775807x64xf32>, tensor<1x1x9223372036854775807xf32>)
      -> tensor<1x1x9223372036854775807x64xf32>, tensor<1x1x9223372036854775807xf32>
  return %r#0, %r#1 : tensor<1x1x9223372036854775807x64xf32>, tensor<1x1x9223372036854775807xf32>
}

// -----

// N = 2^40: q/k/v fit (2^48 bytes), the whole score map (2^36 x 2^37
// composites) does not.
func.func @huge_map(%q: tensor<1x1x1099511627776x64xf32>, %l: tensor<1x1x1099511627776xf32>)
    -> (tensor<1x1x1099511627776x64xf32>, tensor<1x1x1099511627776xf32>) {
  // expected-error @+1 {{q, k, v, o, lse and the estimation's workspace (untiled) need more than 2^63 - 1 bytes}}
  %r:2 = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}
      ins(%q, %q, %q : tensor<1x1x1099511627776x64xf32>, tensor<1x1x1099511627776x64xf32>, tensor<1x1x1099511627776x64xf32>)
      outs(%q, %l : tensor<1x1x1099511627776x64xf32>, tensor<1x1x1099511627776xf32>)
      -> tensor<1x1x1099511627776x64xf32>, tensor<1x1x1099511627776xf32>
  return %r#0, %r#1 : tensor<1x1x1099511627776x64xf32>, tensor<1x1x1099511627776xf32>
}

// -----

// The same shapes with dynamic sizes verify: the compiled entry checks the
// actual sizes before it runs.
func.func @dynamic(%q: tensor<?x1x?x64xf32>, %l: tensor<?x1x?xf32>) -> (tensor<?x1x?x64xf32>, tensor<?x1x?xf32>) {
  %r:2 = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}
      ins(%q, %q, %q : tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>, tensor<?x1x?x64xf32>)
      outs(%q, %l : tensor<?x1x?x64xf32>, tensor<?x1x?xf32>) -> tensor<?x1x?x64xf32>, tensor<?x1x?xf32>
  return %r#0, %r#1 : tensor<?x1x?x64xf32>, tensor<?x1x?xf32>
}

// -----

// A block whose own score map cannot be addressed: (2^40 / 1)^2 floats.
// expected-error @+1 {{'block' (1099511627776) is too large for 'c_q' (1) and 'c_k' (1): one block's score map, 1099511627776 x 1099511627776 f32 values, needs more than 2^63 - 1 bytes}}
func.func private @f() attributes {c = #unisparse.config<block = 1099511627776, c_q = 1, c_k = 1, estimator = mean, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// A huge block with composites as large is one composite per block: fine.
func.func private @f() attributes {c = #unisparse.config<block = 4611686018427387904, c_q = 4611686018427387904, c_k = 4611686018427387904, estimator = mean, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found 3.5E+38}}
func.func private @f() attributes {c = #unisparse.config<scale = 3.5e38, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'scale' must not round to 0 in f32 (0 selects 1/sqrt(D)), found 1.0E-300}}
func.func private @f() attributes {c = #unisparse.config<scale = 1.0e-300, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found +Inf}}
func.func private @f() attributes {c = #unisparse.config<scale = 0x7FF0000000000000, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// The largest f32 and its smallest subnormal are fine.
func.func private @f() attributes {c = #unisparse.config<scale = 3.4028234663852886e38, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>, d = #unisparse.config<scale = 1.401298464324817e-45, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'local_blocks' must be at most 2^62 (a count of at least the number of blocks already means all), found 4611686018427387905}}
func.func private @f() attributes {c = #unisparse.config<local_blocks = 4611686018427387905, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'max_blocks' must be at most 2^62 (a count of at least the number of blocks already means all), found 9223372036854775807}}
func.func private @f() attributes {c = #unisparse.config<max_blocks = 9223372036854775807, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

func.func private @f() attributes {c = #unisparse.config<local_blocks = 4611686018427387904, min_blocks = 4611686018427387904, max_blocks = 4611686018427387904, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

func.func @select(%s: tensor<1x1x4x4xf32>, %c: tensor<1x1x4xi32>, %i: tensor<1x1x4x4xi32>) -> (tensor<1x1x4xi32>, tensor<1x1x4x4xi32>) {
  // expected-error @+1 {{'unisparse.block_select' op attribute 'local_blocks' must be at most 2^62}}
  %r:2 = unisparse.block_select {tau = 0.9, local_blocks = 4611686018427387905} ins(%s : tensor<1x1x4x4xf32>)
      outs(%c, %i : tensor<1x1x4xi32>, tensor<1x1x4x4xi32>) -> tensor<1x1x4xi32>, tensor<1x1x4x4xi32>
  return %r#0, %r#1 : tensor<1x1x4xi32>, tensor<1x1x4x4xi32>
}

// -----

// The score map of 2^31 x 2^31 blocks of 4 x 8 composites: 2^67 floats.
func.func @score(%qc: tensor<1x1x8589934592x8xf32>, %kc: tensor<1x1x17179869184x8xf32>,
                 %s0: tensor<1x1x2147483648x2147483648xf32>) -> tensor<1x1x2147483648x2147483648xf32> {
  // expected-error @+1 {{'unisparse.block_score' op operand #2 ('tensor<1x1x2147483648x2147483648xf32>') has more than 2^63 - 1 bytes}}
  %s = unisparse.block_score {block = 32, c_q = 8, c_k = 4} ins(%qc, %kc : tensor<1x1x8589934592x8xf32>, tensor<1x1x17179869184x8xf32>)
      outs(%s0 : tensor<1x1x2147483648x2147483648xf32>) -> tensor<1x1x2147483648x2147483648xf32>
  return %s : tensor<1x1x2147483648x2147483648xf32>
}

// -----

// Scores of 2^20 x 2^20 blocks fit (2^42 bytes); the map behind them,
// 2^20 * 2^40 rows x 2^20 * 2^40 columns, does not.
func.func @score_map(%qc: tensor<1x1x?x8xf32>, %kc: tensor<1x1x?x8xf32>,
                     %s0: tensor<1x1x1048576x1048576xf32>) -> tensor<1x1x1048576x1048576xf32> {
  // expected-error @+1 {{'unisparse.block_score' op the score map and its row buffers need more than 2^63 - 1 bytes}}
  %s = unisparse.block_score {block = 1099511627776, c_q = 1099511627776, c_k = 1} ins(%qc, %kc : tensor<1x1x?x8xf32>, tensor<1x1x?x8xf32>)
      outs(%s0 : tensor<1x1x1048576x1048576xf32>) -> tensor<1x1x1048576x1048576xf32>
  return %s : tensor<1x1x1048576x1048576xf32>
}

// -----

// Concatenated composites of 2^60 bf16 tokens: the input (2^61 bytes) and
// the result (2^62) fit, the three f32 buffers the lowering pads them into
// (3 * 2^62 bytes) do not.
func.func @compress(%x: tensor<1x1x1152921504606846976x1xbf16>, %o: tensor<1x1x72057594037927936x16x1xf32>)
    -> tensor<1x1x72057594037927936x16x1xf32> {
  // expected-error @+1 {{'unisparse.compress' op the composites and their padded buffers need more than 2^63 - 1 bytes}}
  %r = unisparse.compress {seq_factor = 16, pooling = #unisparse.pooling<concat>}
      ins(%x : tensor<1x1x1152921504606846976x1xbf16>) outs(%o : tensor<1x1x72057594037927936x16x1xf32>)
      -> tensor<1x1x72057594037927936x16x1xf32>
  return %r : tensor<1x1x72057594037927936x16x1xf32>
}

// -----

// Outlier composites of 2^60 bf16 tokens: the input (2^61 bytes) and the
// result (2^56 composites of 4 slots, 2^60 bytes) fit, the pooled tokens,
// their padded copy and their scores (3 * 2^61 f32 values) do not. (Mean
// pooling of the same tokens needs 2^58 bytes.)
func.func @outlier_compress(%x: tensor<1x1x1152921504606846976x1xbf16>, %o: tensor<1x1x72057594037927936x4x1xf32>)
    -> tensor<1x1x72057594037927936x4x1xf32> {
  // expected-error @+1 {{'unisparse.compress' op the composites and their padded buffers need more than 2^63 - 1 bytes}}
  %r = unisparse.compress {seq_factor = 16, pooling = #unisparse.pooling<outlier>, outliers = 2, spread = true}
      ins(%x : tensor<1x1x1152921504606846976x1xbf16>) outs(%o : tensor<1x1x72057594037927936x4x1xf32>)
      -> tensor<1x1x72057594037927936x4x1xf32>
  return %r : tensor<1x1x72057594037927936x4x1xf32>
}

// -----

// Scores of 2^26 x 2^26 blocks (2^54 bytes): mean pooling's map of 2^29 x
// 2^28 composites would fit (2^59 bytes), the outlier estimator's map of
// 16 x 32 slot pairs per composite pair (2^66 values) does not.
func.func @outlier_score_map(%qc: tensor<1x1x?x17x8xf32>, %kc: tensor<1x1x?x32x8xf32>,
                             %s0: tensor<1x1x67108864x67108864xf32>) -> tensor<1x1x67108864x67108864xf32> {
  // expected-error @+1 {{'unisparse.block_score' op the score map and its row buffers need more than 2^63 - 1 bytes}}
  %s = unisparse.block_score {block = 128, c_q = 16, c_k = 32, estimator = #unisparse.estimator<outlier>}
      ins(%qc, %kc : tensor<1x1x?x17x8xf32>, tensor<1x1x?x32x8xf32>)
      outs(%s0 : tensor<1x1x67108864x67108864xf32>) -> tensor<1x1x67108864x67108864xf32>
  return %s : tensor<1x1x67108864x67108864xf32>
}

// -----

// The same scores from mean composites fit.
func.func @mean_score_map(%qc: tensor<1x1x?x8xf32>, %kc: tensor<1x1x?x8xf32>,
                          %s0: tensor<1x1x67108864x67108864xf32>) -> tensor<1x1x67108864x67108864xf32> {
  %s = unisparse.block_score {block = 128, c_q = 16, c_k = 32}
      ins(%qc, %kc : tensor<1x1x?x8xf32>, tensor<1x1x?x8xf32>)
      outs(%s0 : tensor<1x1x67108864x67108864xf32>) -> tensor<1x1x67108864x67108864xf32>
  return %s : tensor<1x1x67108864x67108864xf32>
}
