// RUN: unisparse-opt %s -split-input-file -verify-diagnostics
//
// One case per verifier rule; each message names the operand or attribute,
// the expected value and the value found.

// expected-error @+1 {{'block' must be positive, found 0}}
func.func private @f() attributes {c = #unisparse.config<block = 0, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'c_q' must be positive, found -16}}
func.func private @f() attributes {c = #unisparse.config<c_q = -16, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'c_k' must be positive, found 0}}
func.func private @f() attributes {c = #unisparse.config<c_k = 0, estimator = mean, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'c_h' must be positive, found 0}}
func.func private @f() attributes {c = #unisparse.config<c_h = 0, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'block' (100) must be a multiple of 'c_q' (16)}}
func.func private @f() attributes {c = #unisparse.config<block = 100, c_q = 16, c_k = 4, estimator = mean, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'block' (96) must be a multiple of 'c_k' (64)}}
func.func private @f() attributes {c = #unisparse.config<block = 96, c_q = 16, c_k = 64, estimator = mean, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'tau' must be in (0, 1], found 0.0}}
func.func private @f() attributes {c = #unisparse.config<tau = 0.0, estimator = mean, c_k = 8, query_reduce = sum, refine = none>}

// -----

// expected-error @+1 {{'tau' must be in (0, 1], found 1.5}}
func.func private @f() attributes {c = #unisparse.config<tau = 1.5, estimator = mean, c_k = 8, query_reduce = sum, refine = none>}

// -----

// expected-error @+1 {{'local_blocks' must be non-negative, found -1}}
func.func private @f() attributes {c = #unisparse.config<local_blocks = -1, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'min_blocks' must be non-negative, found -2}}
func.func private @f() attributes {c = #unisparse.config<min_blocks = -2, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'max_blocks' must be non-negative (0: no cap), found -3}}
func.func private @f() attributes {c = #unisparse.config<max_blocks = -3, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'min_blocks' (8) must not exceed 'max_blocks' (4)}}
func.func private @f() attributes {c = #unisparse.config<min_blocks = 8, max_blocks = 4, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found -0.5}}
func.func private @f() attributes {c = #unisparse.config<scale = -0.5, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// The runtime takes the scale as an f32: infinity (0x7FF0000000000000) is
// rejected, as unisparse.Config rejects it.
// expected-error @+1 {{'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found +Inf}}
func.func private @f() attributes {c = #unisparse.config<scale = 0x7FF0000000000000, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found NaN}}
func.func private @f() attributes {c = #unisparse.config<scale = 0x7FF8000000000000, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// A finite double past the largest f32 (3.4028234663852886e+38) becomes inf as an f32.
// expected-error @+1 {{'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found 3.5E+38}}
func.func private @f() attributes {c = #unisparse.config<scale = 3.5e38, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+2 {{'block' must fit in a signed 64-bit integer, found 9223372036854775808}}
// expected-error @+1 {{failed to parse Unisparse_ConfigAttr parameter 'block'}}
func.func private @f() attributes {c = #unisparse.config<block = 9223372036854775808, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+2 {{'estimator' must be one of mean, antidiag, antidiag_lse, outlier, found median}}
// expected-error @+1 {{failed to parse Unisparse_ConfigAttr parameter 'estimator'}}
func.func private @f() attributes {c = #unisparse.config<estimator = median, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+2 {{'query_reduce' must be one of sum, max, found min}}
// expected-error @+1 {{failed to parse Unisparse_ConfigAttr parameter 'query_reduce'}}
func.func private @f() attributes {c = #unisparse.config<query_reduce = min, estimator = mean, c_k = 8, tau = 0.99, refine = none>}

// -----

// expected-error @+2 {{expected 'true' or 'false'}}
// expected-error @+1 {{failed to parse Unisparse_ConfigAttr parameter 'sink'}}
func.func private @f() attributes {c = #unisparse.config<sink = 1, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

func.func @f(%q: tensor<4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'q' must have rank 4, found rank 3}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<2x?x32xf32>, %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'k' must have rank 4, found rank 3}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<2x?x32xf32>, tensor<1x2x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'v' must have rank 4, found rank 3}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{'unisparse.attention' op operand 'o' must have rank 4, found rank 3}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>) outs(%o, %l : tensor<1x4x?xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?x1xf32>) {
  // expected-error @+1 {{operand 'lse' must have rank 3, found rank 4}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?x1xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?x1xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xi8>, %k: tensor<1x2x?x32xi8>, %v: tensor<1x2x?x32xi8>, %o: tensor<1x4x?x32xi8>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'q' must have element type bf16, f16 or f32, found 'i8'}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xi8>, tensor<1x2x?x32xi8>, tensor<1x2x?x32xi8>) outs(%o, %l : tensor<1x4x?x32xi8>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xi8>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf64>, %k: tensor<1x2x?x32xf64>, %v: tensor<1x2x?x32xf64>, %o: tensor<1x4x?x32xf64>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'q' must have element type bf16, f16 or f32, found 'f64'}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf64>, tensor<1x2x?x32xf64>, tensor<1x2x?x32xf64>) outs(%o, %l : tensor<1x4x?x32xf64>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf64>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf16>, %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'k' must have the element type of 'q' ('f32'), found 'f16'}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf16>, tensor<1x2x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xbf16>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'v' must have the element type of 'q' ('f32'), found 'bf16'}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xbf16>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?x32xf16>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'o' must have the element type of 'q' ('f32'), found 'f16'}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf16>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf16>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf16>) {
  // expected-error @+1 {{operand 'lse' must have element type 'f32', found 'f16'}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf16>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf16>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<2x2x?x32xf32>, %v: tensor<2x2x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'k' dim 0 (batch) must be 1 to match 'q' dim 0, found 2}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<2x2x?x32xf32>, tensor<2x2x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x99x32xf32>, %v: tensor<1x2x99x32xf32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{operand 'k' dim 2 (sequence) must be 100 to match 'q' dim 2, found 99}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x100x32xf32>, tensor<1x2x99x32xf32>, tensor<1x2x99x32xf32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'k' dim 3 (head_dim) must be 32 to match 'q' dim 3, found 64}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x4x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'v' dim 1 (heads) must be 2 to match 'k' dim 1, found 4}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x4x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?x16xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{operand 'o' dim 3 (head_dim) must be 32 to match 'q' dim 3, found 16}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>) outs(%o, %l : tensor<1x4x?x16xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x16xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>, %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x8x?xf32>) {
  // expected-error @+1 {{operand 'lse' dim 1 (heads) must be 4 to match 'q' dim 1, found 8}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x8x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x8x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x3x?x32xf32>, %v: tensor<1x3x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{query heads 'q' dim 1 (4) must be a multiple of kv heads 'k' dim 1 (3)}}
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x3x?x32xf32>, tensor<1x3x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x4x?x32xf32>, %v: tensor<1x4x?x32xf32>, %o: tensor<1x4x?x32xf32>, %l: tensor<1x4x?xf32>) {
  // expected-error @+1 {{query heads 'q' dim 1 (4) must be a multiple of 'c_h' of the config (3)}}
  %r:2 = unisparse.attention {config = #unisparse.config<c_h = 3, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>) outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x4x?x32xf32>) {
  // expected-error @+1 {{attribute 'seq_factor' must be positive, found 0}}
  %r = unisparse.compress {seq_factor = 0} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x4x?x32xf32>) {
  // expected-error @+1 {{attribute 'head_factor' must be positive, found 0}}
  %r = unisparse.compress {seq_factor = 16, head_factor = 0} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x4x?x32xf32>) {
  // expected-error @+1 {{attribute 'kv_group' must be positive, found -1}}
  %r = unisparse.compress {seq_factor = 16, kv_group = -1} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<2x?x32xbf16>, %o: tensor<1x4x?x32xf32>) {
  // expected-error @+1 {{operand 'input' must have rank 4, found rank 3}}
  %r = unisparse.compress {seq_factor = 16, kv_group = 2} ins(%x : tensor<2x?x32xbf16>) outs(%o : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<4x?x32xf32>) {
  // expected-error @+1 {{operand 'init' must have rank 4, found rank 3}}
  %r = unisparse.compress {seq_factor = 16, kv_group = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<4x?x32xf32>) -> tensor<4x?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xi32>, %o: tensor<1x4x?x32xf32>) {
  // expected-error @+1 {{operand 'input' must have element type bf16, f16 or f32, found 'i32'}}
  %r = unisparse.compress {seq_factor = 16, kv_group = 2} ins(%x : tensor<1x2x?x32xi32>) outs(%o : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x4x?x32xi32>) {
  // expected-error @+1 {{operand 'init' must have element type f32, bf16 or f16, found 'i32'}}
  %r = unisparse.compress {seq_factor = 16, kv_group = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x4x?x32xi32>) -> tensor<1x4x?x32xi32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x4x?x32xf32>) {
  // expected-error @+1 {{input heads * kv_group (4) must be a multiple of head_factor (3)}}
  %r = unisparse.compress {seq_factor = 16, kv_group = 2, head_factor = 3} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<2x4x?x32xf32>) {
  // expected-error @+1 {{operand 'init' dim 0 (batch) must be 1 to match 'input' dim 0, found 2}}
  %r = unisparse.compress {seq_factor = 16, kv_group = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<2x4x?x32xf32>) -> tensor<2x4x?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x32xf32>) {
  // expected-error @+1 {{operand 'init' dim 1 (heads) must be 4 (input heads * kv_group / head_factor), found 2}}
  %r = unisparse.compress {seq_factor = 16, kv_group = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x32xf32>) -> tensor<1x2x?x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x100x32xbf16>, %o: tensor<1x4x6x32xf32>) {
  // expected-error @+1 {{operand 'init' dim 2 (composites) must be 7 (ceil(input sequence / seq_factor)), found 6}}
  %r = unisparse.compress {seq_factor = 16, kv_group = 2} ins(%x : tensor<1x2x100x32xbf16>) outs(%o : tensor<1x4x6x32xf32>) -> tensor<1x4x6x32xf32>
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x4x?x64xf32>) {
  // expected-error @+1 {{operand 'init' dim 3 (head_dim) must be 32 to match 'input' dim 3, found 64}}
  %r = unisparse.compress {seq_factor = 16, kv_group = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x4x?x64xf32>) -> tensor<1x4x?x64xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{attribute 'block' must be positive, found 0}}
  %r = unisparse.block_score {block = 0, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{attribute 'c_q' must be positive, found 0}}
  %r = unisparse.block_score {block = 128, c_q = 0, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{attribute 'c_k' must be positive, found -16}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = -16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{attribute 'block' (128) must be a multiple of 'c_q' (48)}}
  %r = unisparse.block_score {block = 128, c_q = 48, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{attribute 'block' (128) must be a multiple of 'c_k' (96)}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 96} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{attribute 'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found -1.0}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16, scale = -1.0} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{operand 'qc' must have rank 4, found rank 3}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{operand 'kc' must have rank 4, found rank 3}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2xf32>) {
  // expected-error @+1 {{operand 'init' must have rank 4, found rank 3}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2xf32>) -> tensor<1x4x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf64>, %b: tensor<1x4x16x32xf64>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{operand 'qc' must have element type f32, bf16 or f16, found 'f64'}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf64>, tensor<1x4x16x32xf64>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf16>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{operand 'kc' must have the element type of 'qc' ('f32'), found 'f16'}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf16>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x2xi32>) {
  // expected-error @+1 {{operand 'init' must have element type 'f32', found 'i32'}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x2xi32>) -> tensor<1x4x2x2xi32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<2x4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{operand 'kc' dim 0 (batch) must be 1 to match 'qc' dim 0, found 2}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<2x4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x8x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{operand 'kc' dim 1 (head groups) must be 4 to match 'qc' dim 1, found 8}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x8x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x64xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{operand 'kc' dim 3 (head_dim) must be 32 to match 'qc' dim 3, found 64}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x64xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<3x4x2x2xf32>) {
  // expected-error @+1 {{operand 'init' dim 0 (batch) must be 1 to match 'qc' dim 0, found 3}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<3x4x2x2xf32>) -> tensor<3x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x2x2x2xf32>) {
  // expected-error @+1 {{operand 'init' dim 1 (head groups) must be 4 to match 'qc' dim 1, found 2}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x3x2xf32>) {
  // expected-error @+1 {{operand 'init' dim 2 (query blocks) must be 2 (ceil(qc dim 2 / (block / c_q))), found 3}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x3x2xf32>) -> tensor<1x4x3x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x1xf32>) {
  // expected-error @+1 {{operand 'init' dim 3 (key blocks) must be 2 (ceil(kc dim 2 / (block / c_k))), found 1}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x1xf32>) -> tensor<1x4x2x1xf32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{attribute 'tau' must be in (0, 1], found 0.0}}
  %r:2 = unisparse.block_select {tau = 0.0} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{attribute 'tau' must be in (0, 1], found 1.25}}
  %r:2 = unisparse.block_select {tau = 1.25} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{attribute 'local_blocks' must be non-negative, found -1}}
  %r:2 = unisparse.block_select {tau = 0.5, local_blocks = -1} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{attribute 'min_blocks' must be non-negative, found -1}}
  %r:2 = unisparse.block_select {tau = 0.5, min_blocks = -1} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{attribute 'max_blocks' must be non-negative (0: no cap), found -4}}
  %r:2 = unisparse.block_select {tau = 0.5, max_blocks = -4} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{attribute 'min_blocks' (5) must not exceed 'max_blocks' (2)}}
  %r:2 = unisparse.block_select {tau = 0.5, min_blocks = 5, max_blocks = 2} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{operand 'scores' must have rank 4, found rank 3}}
  %r:2 = unisparse.block_select {tau = 0.9} ins(%s : tensor<4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf16>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{operand 'scores' must have element type 'f32', found 'f16'}}
  %r:2 = unisparse.block_select {tau = 0.9} ins(%s : tensor<1x4x3x3xf16>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4xi32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{operand 'counts' must have rank 3, found rank 2}}
  %r:2 = unisparse.block_select {tau = 0.9} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4xi32>, tensor<1x4x3x3xi32>) -> tensor<1x4xi32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3xi32>) {
  // expected-error @+1 {{operand 'indices' must have rank 4, found rank 3}}
  %r:2 = unisparse.block_select {tau = 0.9} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xf32>, %i: tensor<1x4x3x3xi32>) {
  // expected-error @+1 {{operand 'counts' must have element type 'i32', found 'f32'}}
  %r:2 = unisparse.block_select {tau = 0.9} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xf32>, tensor<1x4x3x3xi32>) -> tensor<1x4x3xf32>, tensor<1x4x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x3xi64>) {
  // expected-error @+1 {{operand 'indices' must have element type 'i32', found 'i64'}}
  %r:2 = unisparse.block_select {tau = 0.9} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x3xi64>) -> tensor<1x4x3xi32>, tensor<1x4x3x3xi64>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x2x3x3xi32>) {
  // expected-error @+1 {{operand 'indices' dim 1 (head groups) must be 4 to match 'counts' dim 1, found 2}}
  %r:2 = unisparse.block_select {tau = 0.9} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x2x3x3xi32>) -> tensor<1x4x3xi32>, tensor<1x2x3x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x2xi32>, %i: tensor<1x4x2x3xi32>) {
  // expected-error @+1 {{operand 'counts' dim 2 (query blocks) must be 3 to match 'scores' dim 2, found 2}}
  %r:2 = unisparse.block_select {tau = 0.9} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x2xi32>, tensor<1x4x2x3xi32>) -> tensor<1x4x2xi32>, tensor<1x4x2x3xi32>
  return
}

// -----

func.func @f(%s: tensor<1x4x3x3xf32>, %c: tensor<1x4x3xi32>, %i: tensor<1x4x3x4xi32>) {
  // expected-error @+1 {{operand 'indices' dim 3 (key blocks) must be 3 to match 'scores' dim 3, found 4}}
  %r:2 = unisparse.block_select {tau = 0.9} ins(%s : tensor<1x4x3x3xf32>) outs(%c, %i : tensor<1x4x3xi32>, tensor<1x4x3x4xi32>) -> tensor<1x4x3xi32>, tensor<1x4x3x4xi32>
  return
}

// -----

func.func @f(%c: tensor<1x4x3xi32>, %i: tensor<2x4x3x3xi32>) {
  // expected-error @+1 {{operand 'indices' dim 0 (batch) must be 1 to match 'counts' dim 0, found 2}}
  %r:2 = unisparse.dense_layout outs(%c, %i : tensor<1x4x3xi32>, tensor<2x4x3x3xi32>) -> tensor<1x4x3xi32>, tensor<2x4x3x3xi32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %c: tensor<1x2x2xi32>, %i: tensor<1x2x2x2xi32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{attribute 'block' must be positive, found 0}}
  %r:2 = unisparse.block_sparse_attention {block = 0} ins(%q, %k, %v, %c, %i : tensor<1x4x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x2xi32>, tensor<1x2x2x2xi32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %c: tensor<1x2x2xi32>, %i: tensor<1x2x2x2xi32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{attribute 'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found -2.0}}
  %r:2 = unisparse.block_sparse_attention {block = 64, scale = -2.0} ins(%q, %k, %v, %c, %i : tensor<1x4x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x2xi32>, tensor<1x2x2x2xi32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %c: tensor<1x2x2xi32>, %i: tensor<1x2x2x2xi32>, %o: memref<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{operands must be all tensors or all memrefs}}
  unisparse.block_sparse_attention {block = 64} ins(%q, %k, %v, %c, %i : tensor<1x4x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x2xi32>, tensor<1x2x2x2xi32>) outs(%o, %l : memref<1x4x100x32xf32>, tensor<1x4x100xf32>)
  return
}

// -----

func.func @f(%q: memref<1x4x100x32xf32>, %k: memref<1x2x100x32xf32>, %v: memref<1x2x100x32xf32>, %c: memref<1x2x2xi32>, %i: memref<1x2x2x2xi32>, %o: memref<1x4x100x32xf32>, %l: memref<1x4x100xf32>) {
  // expected-error @+1 {{with memref operands must have no results, found 2}}
  %r:2 = unisparse.block_sparse_attention {block = 64} ins(%q, %k, %v, %c, %i : memref<1x4x100x32xf32>, memref<1x2x100x32xf32>, memref<1x2x100x32xf32>, memref<1x2x2xi32>, memref<1x2x2x2xi32>) outs(%o, %l : memref<1x4x100x32xf32>, memref<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %c: tensor<1x2x2xi32>, %i: tensor<1x2x2x2xi32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{with tensor operands must have 2 results (o, lse), found 0}}
  unisparse.block_sparse_attention {block = 64} ins(%q, %k, %v, %c, %i : tensor<1x4x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x2xi32>, tensor<1x2x2x2xi32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>)
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %c: tensor<2x2x2xi32>, %i: tensor<2x2x2x2xi32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{operand 'counts' dim 0 (batch) must be 1 to match 'q' dim 0, found 2}}
  %r:2 = unisparse.block_sparse_attention {block = 64} ins(%q, %k, %v, %c, %i : tensor<1x4x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>, tensor<2x2x2xi32>, tensor<2x2x2x2xi32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %c: tensor<1x3x2xi32>, %i: tensor<1x3x2x2xi32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{query heads 'q' dim 1 (4) must be a multiple of head groups 'counts' dim 1 (3)}}
  %r:2 = unisparse.block_sparse_attention {block = 64} ins(%q, %k, %v, %c, %i : tensor<1x4x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x3x2xi32>, tensor<1x3x2x2xi32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %c: tensor<1x2x3xi32>, %i: tensor<1x2x3x2xi32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{operand 'counts' dim 2 (query blocks) must be 2 (ceil(q sequence / block)), found 3}}
  %r:2 = unisparse.block_sparse_attention {block = 64} ins(%q, %k, %v, %c, %i : tensor<1x4x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x3xi32>, tensor<1x2x3x2xi32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %c: tensor<1x2x2xi32>, %i: tensor<1x2x2x3xi32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{operand 'indices' dim 3 (key blocks) must be in [1, 2] (ceil(q sequence / block)), found 3}}
  %r:2 = unisparse.block_sparse_attention {block = 64} ins(%q, %k, %v, %c, %i : tensor<1x4x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x2xi32>, tensor<1x2x2x3xi32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %c: tensor<1x2x2xf32>, %i: tensor<1x2x2x2xi32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{operand 'counts' must have element type 'i32', found 'f32'}}
  %r:2 = unisparse.block_sparse_attention {block = 64} ins(%q, %k, %v, %c, %i : tensor<1x4x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x2xf32>, tensor<1x2x2x2xi32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

// A static size near 2^63: ceil(N / c) must not overflow into a negative size.
func.func @f(%x: tensor<1x1x9223372036854775807x64xf32>, %i: tensor<1x1x1x64xf32>) {
  // expected-error @+1 {{operand 'init' dim 2 (composites) must be 576460752303423488 (ceil(input sequence / seq_factor)), found 1}}
  %c = unisparse.compress {seq_factor = 16} ins(%x : tensor<1x1x9223372036854775807x64xf32>) outs(%i : tensor<1x1x1x64xf32>) -> tensor<1x1x1x64xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x0x32xf32>, %k: tensor<1x2x0x32xf32>, %v: tensor<1x2x0x32xf32>, %o: tensor<1x4x0x32xf32>, %l: tensor<1x4x0xf32>) {
  // expected-error @+1 {{operand 'q' dim 2 (sequence) must be at least 1, found 0}}
  %r:2 = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x0x32xf32>, tensor<1x2x0x32xf32>, tensor<1x2x0x32xf32>) outs(%o, %l : tensor<1x4x0x32xf32>, tensor<1x4x0xf32>) -> tensor<1x4x0x32xf32>, tensor<1x4x0xf32>
  return
}

// -----

func.func @f(%q: tensor<1x0x100x32xf32>, %k: tensor<1x2x100x32xf32>, %v: tensor<1x2x100x32xf32>, %o: tensor<1x0x100x32xf32>, %l: tensor<1x0x100xf32>) {
  // expected-error @+1 {{operand 'q' dim 1 (heads) must be at least 1, found 0}}
  %r:2 = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x0x100x32xf32>, tensor<1x2x100x32xf32>, tensor<1x2x100x32xf32>) outs(%o, %l : tensor<1x0x100x32xf32>, tensor<1x0x100xf32>) -> tensor<1x0x100x32xf32>, tensor<1x0x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x0xf32>, %k: tensor<1x2x100x0xf32>, %v: tensor<1x2x100x0xf32>, %o: tensor<1x4x100x0xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{operand 'q' dim 3 (head_dim) must be at least 1, found 0}}
  %r:2 = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x100x0xf32>, tensor<1x2x100x0xf32>, tensor<1x2x100x0xf32>) outs(%o, %l : tensor<1x4x100x0xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x0xf32>, tensor<1x4x100xf32>
  return
}

// -----

func.func @f(%q: tensor<1x4x100x32xf32>, %k: tensor<1x0x100x32xf32>, %v: tensor<1x0x100x32xf32>, %o: tensor<1x4x100x32xf32>, %l: tensor<1x4x100xf32>) {
  // expected-error @+1 {{operand 'k' dim 1 (heads) must be at least 1, found 0}}
  %r:2 = unisparse.attention {config = #unisparse.config<estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>} ins(%q, %k, %v : tensor<1x4x100x32xf32>, tensor<1x0x100x32xf32>, tensor<1x0x100x32xf32>) outs(%o, %l : tensor<1x4x100x32xf32>, tensor<1x4x100xf32>) -> tensor<1x4x100x32xf32>, tensor<1x4x100xf32>
  return
}

// -----

// expected-error @+1 {{'estimator' antidiag needs 'c_q' == 'c_k' (the stride), found 16 and 8}}
func.func private @f() attributes {c = #unisparse.config<estimator = antidiag, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x32xf32>) -> tensor<1x2x?x32xf32> {
  // expected-error @+1 {{operand 'init' must have rank 5, found rank 4}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<concat>} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x32xf32>) -> tensor<1x2x?x32xf32>
  return %r : tensor<1x2x?x32xf32>
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x4x32xf32>) -> tensor<1x2x?x4x32xf32> {
  // expected-error @+1 {{operand 'init' dim 3 (tokens per composite) must be 8 (seq_factor, for concat pooling), found 4}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<concat_reversed>} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x4x32xf32>) -> tensor<1x2x?x4x32xf32>
  return %r : tensor<1x2x?x4x32xf32>
}

// -----

func.func @f(%qc: tensor<1x4x?x32xf32>, %kc: tensor<1x4x?x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  // expected-error @+1 {{operand 'qc' must have rank 5, found rank 4}}
  %r = unisparse.block_score {block = 64, c_q = 8, c_k = 8, estimator = #unisparse.estimator<antidiag>} ins(%qc, %kc : tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// -----

func.func @f(%qc: tensor<1x4x?x16x32xf32>, %kc: tensor<1x4x?x8x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  // expected-error @+1 {{attribute 'estimator' antidiag_lse needs 'c_q' == 'c_k' (the stride), found 16 and 8}}
  %r = unisparse.block_score {block = 64, c_q = 16, c_k = 8, estimator = #unisparse.estimator<antidiag_lse>} ins(%qc, %kc : tensor<1x4x?x16x32xf32>, tensor<1x4x?x8x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// -----

func.func @f(%qc: tensor<1x4x?x8x32xf32>, %kc: tensor<1x4x?x4x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  // expected-error @+1 {{operand 'kc' dim 3 (slots) must be 8 (c_k, the antidiagonal stride), found 4}}
  %r = unisparse.block_score {block = 64, c_q = 8, c_k = 8, estimator = #unisparse.estimator<antidiag>} ins(%qc, %kc : tensor<1x4x?x8x32xf32>, tensor<1x4x?x4x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// -----

func.func @f(%a: tensor<1x4x16x32xbf16>, %b: memref<1x4x16x32xbf16>, %s: memref<1x4x2x2xf32>) {
  // expected-error @+1 {{operands must be all tensors or all memrefs}}
  unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xbf16>, memref<1x4x16x32xbf16>) outs(%s : memref<1x4x2x2xf32>)
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xbf16>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{with tensor operands must have 1 result (scores), found 0}}
  "unisparse.block_score"(%a, %a, %s) <{block = 128 : i64, c_q = 16 : i64, c_k = 16 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0>}> : (tensor<1x4x16x32xbf16>, tensor<1x4x16x32xbf16>, tensor<1x4x2x2xf32>) -> ()
  return
}

// -----

func.func @f(%s: memref<1x4x2x2xf32>, %c: memref<1x4x2xi32>, %i: memref<1x4x2x2xi32>) {
  // expected-error @+1 {{with memref operands must have no results, found 2}}
  %r:2 = "unisparse.block_select"(%s, %c, %i) <{tau = 9.0e-01 : f64}> : (memref<1x4x2x2xf32>, memref<1x4x2xi32>, memref<1x4x2x2xi32>) -> (tensor<1x4x2xi32>, tensor<1x4x2x2xi32>)
  return
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x32xbf16>) {
  // expected-error @+1 {{result 0 must have the type of its init ('tensor<1x2x?x32xbf16>'), found 'tensor<1x2x?x32xf32>'}}
  %r = "unisparse.compress"(%x, %o) <{seq_factor = 16 : i64}> : (tensor<1x2x?x32xbf16>, tensor<1x2x?x32xbf16>) -> tensor<1x2x?x32xf32>
  return
}

// -----

// expected-error @+1 {{'k_outliers' (8) must be smaller than 'c_k' (8) for 'estimator' outlier}}
func.func private @f() attributes {c = #unisparse.config<estimator = outlier, k_outliers = 8, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'q_outliers' (16) must be smaller than 'c_q' (16) for 'estimator' outlier}}
func.func private @f() attributes {c = #unisparse.config<estimator = outlier, q_outliers = 16, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'q_outliers' must be positive, found 0}}
func.func private @f() attributes {c = #unisparse.config<q_outliers = 0, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32> {
  // expected-error @+1 {{attribute 'outliers' must be positive, found 0}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<outlier>} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32>
  return %r : tensor<1x2x?x3x32xf32>
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x9x32xf32>) -> tensor<1x2x?x9x32xf32> {
  // expected-error @+1 {{attribute 'outliers' (8) must be smaller than 'seq_factor' (8)}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<outlier>, outliers = 8} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x9x32xf32>) -> tensor<1x2x?x9x32xf32>
  return %r : tensor<1x2x?x9x32xf32>
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %q: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32> {
  // expected-error @+1 {{attribute 'hot' must be in [0, outliers = 2], found 3}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<outlier>, outliers = 2, hot = 3} ins(%x : tensor<1x2x?x32xbf16>) queries(%q : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32>
  return %r : tensor<1x2x?x3x32xf32>
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x32xf32>) -> tensor<1x2x?x32xf32> {
  // expected-error @+1 {{attributes 'outliers', 'hot' and 'spread' need pooling = outlier, found pooling = mean}}
  %r = unisparse.compress {seq_factor = 8, spread = true} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x32xf32>) -> tensor<1x2x?x32xf32>
  return %r : tensor<1x2x?x32xf32>
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32> {
  // expected-error @+1 {{operand 'queries' must be given exactly when 'hot' > 0 (hot outliers), found hot = 1 without queries}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<outlier>, outliers = 2, hot = 1} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32>
  return %r : tensor<1x2x?x3x32xf32>
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x4x32xf32>) -> tensor<1x2x?x4x32xf32> {
  // expected-error @+1 {{operand 'init' dim 3 (slots) must be 3 (outliers + 1, + 1 with spread), found 4}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<outlier>, outliers = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x4x32xf32>) -> tensor<1x2x?x4x32xf32>
  return %r : tensor<1x2x?x4x32xf32>
}

// -----

// Outlier composites are f32 or rounded once to bf16/f16 (the GPU's
// tensor-core scoring), nothing else.
func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x3x32xf64>) -> tensor<1x2x?x3x32xf64> {
  // expected-error @+1 {{operand 'init' must have element type f32, bf16 or f16, found 'f64'}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<outlier>, outliers = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x3x32xf64>) -> tensor<1x2x?x3x32xf64>
  return %r : tensor<1x2x?x3x32xf64>
}

// -----

func.func @f(%k: tensor<1x2x?x32xbf16>, %q: tensor<1x2x?x32xbf16>, %o: tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32> {
  // expected-error @+1 {{operand 'queries' dim 1 (heads) must be 4 (the groups times head_factor), found 2}}
  %r = unisparse.compress {seq_factor = 8, kv_group = 2, pooling = #unisparse.pooling<outlier>, outliers = 2, hot = 1} ins(%k : tensor<1x2x?x32xbf16>) queries(%q : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32>
  return %r : tensor<1x4x?x3x32xf32>
}

// -----

func.func @f(%qc: tensor<1x4x?x3x32xf32>, %kc: tensor<1x4x?x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  // expected-error @+1 {{operand 'kc' must have rank 5, found rank 4}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 32, estimator = #unisparse.estimator<outlier>} ins(%qc, %kc : tensor<1x4x?x3x32xf32>, tensor<1x4x?x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// -----

func.func @f(%qc: tensor<1x4x?x2x32xf32>, %kc: tensor<1x4x?x3x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  // expected-error @+1 {{operand 'qc' dim 3 (slots) must hold 2 + r slots with 1 <= r < 'c_q' (16), found 2}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 32, estimator = #unisparse.estimator<outlier>} ins(%qc, %kc : tensor<1x4x?x2x32xf32>, tensor<1x4x?x3x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// -----

func.func @f(%qc: tensor<1x4x?x3x32xf32>, %kc: tensor<1x4x?x?x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  // expected-error @+1 {{operand 'kc' dim 3 (slots) must be static for the outlier estimator}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 32, estimator = #unisparse.estimator<outlier>} ins(%qc, %kc : tensor<1x4x?x3x32xf32>, tensor<1x4x?x?x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x8x32xf32>) -> tensor<1x2x?x8x32xf32> {
  // expected-error @+1 {{attributes 'outliers', 'hot' and 'spread' need pooling = outlier, found pooling = concat}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<concat>, outliers = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x8x32xf32>) -> tensor<1x2x?x8x32xf32>
  return %r : tensor<1x2x?x8x32xf32>
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %q: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32> {
  // expected-error @+1 {{attribute 'hot' must be in [0, outliers = 2], found -1}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<outlier>, outliers = 2, hot = -1} ins(%x : tensor<1x2x?x32xbf16>) queries(%q : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32>
  return %r : tensor<1x2x?x3x32xf32>
}

// -----

func.func @f(%x: tensor<1x2x?x32xbf16>, %q: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32> {
  // expected-error @+1 {{operand 'queries' must be given exactly when 'hot' > 0 (hot outliers), found hot = 0 with queries}}
  %r = unisparse.compress {seq_factor = 8, pooling = #unisparse.pooling<outlier>, outliers = 2} ins(%x : tensor<1x2x?x32xbf16>) queries(%q : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x3x32xf32>) -> tensor<1x2x?x3x32xf32>
  return %r : tensor<1x2x?x3x32xf32>
}

// -----

func.func @f(%k: tensor<1x2x?x32xbf16>, %q: tensor<1x4x?x16xbf16>, %o: tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32> {
  // expected-error @+1 {{operand 'queries' dim 3 (head_dim) must be 32 to match 'input' dim 3, found 16}}
  %r = unisparse.compress {seq_factor = 8, kv_group = 2, pooling = #unisparse.pooling<outlier>, outliers = 2, hot = 1} ins(%k : tensor<1x2x?x32xbf16>) queries(%q : tensor<1x4x?x16xbf16>) outs(%o : tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32>
  return %r : tensor<1x4x?x3x32xf32>
}

// -----

func.func @f(%k: tensor<1x2x?x32xbf16>, %q: tensor<1x4x?x32xi32>, %o: tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32> {
  // expected-error @+1 {{operand 'queries' must have element type bf16, f16 or f32, found 'i32'}}
  %r = unisparse.compress {seq_factor = 8, kv_group = 2, pooling = #unisparse.pooling<outlier>, outliers = 2, hot = 1} ins(%k : tensor<1x2x?x32xbf16>) queries(%q : tensor<1x4x?x32xi32>) outs(%o : tensor<1x4x?x3x32xf32>) -> tensor<1x4x?x3x32xf32>
  return %r : tensor<1x4x?x3x32xf32>
}

// -----

func.func @f(%qc: tensor<1x4x?x3x32xf32>, %kc: tensor<1x4x?x33x32xf32>, %s: tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32> {
  // expected-error @+1 {{operand 'kc' dim 3 (slots) must hold 1 + r slots with 1 <= r < 'c_k' (32), found 33}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 32, estimator = #unisparse.estimator<outlier>} ins(%qc, %kc : tensor<1x4x?x3x32xf32>, tensor<1x4x?x33x32xf32>) outs(%s : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
  return %r : tensor<1x4x?x?xf32>
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x2x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{kv_group = 4 must divide the 4 head groups of qc, and kc must have their quotient of heads (kc has 2)}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16, kv_group = 4} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x2x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x6x16x32xf32>, %b: tensor<1x?x16x32xf32>, %s: tensor<1x6x2x2xf32>) {
  // expected-error @+1 {{kv_group = 4 must divide the 6 head groups of qc, and kc must have their quotient of heads (kc has ?)}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16, kv_group = 4} ins(%a, %b : tensor<1x6x16x32xf32>, tensor<1x?x16x32xf32>) outs(%s : tensor<1x6x2x2xf32>) -> tensor<1x6x2x2xf32>
  return
}

// -----

func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x4x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{attribute 'kv_group' must be positive, found 0}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16, kv_group = 0} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x4x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

// Without kv_group the heads must match.
func.func @f(%a: tensor<1x4x16x32xf32>, %b: tensor<1x2x16x32xf32>, %s: tensor<1x4x2x2xf32>) {
  // expected-error @+1 {{head groups}}
  %r = unisparse.block_score {block = 128, c_q = 16, c_k = 16} ins(%a, %b : tensor<1x4x16x32xf32>, tensor<1x2x16x32xf32>) outs(%s : tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return
}

// -----

// unisparse.slash_refine: one case per rule of its verifier (attributes as
// the config's refinement rules word them, then shapes).

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{attribute 'block' must be positive, found 0}}
  %r = unisparse.slash_refine {block = 0, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{attribute 'last_q' must be positive, found 0}}
  %r = unisparse.slash_refine {block = 32, last_q = 0}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{attribute 'n_offsets' must be positive, found 0}}
  %r = unisparse.slash_refine {block = 32, last_q = 8, n_offsets = 0}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{attribute 'rows_per_block' must be positive, found -1}}
  %r = unisparse.slash_refine {block = 32, last_q = 8, rows_per_block = -1}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{attribute 'width' must be non-negative, found -2}}
  %r = unisparse.slash_refine {block = 32, last_q = 8, width = -2}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{attribute 'last_q' must be at most 2^20, found 2000000}}
  %r = unisparse.slash_refine {block = 32, last_q = 2000000}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{attribute 'rows_per_block' (33) must not exceed 'block' (32) for 'refine' slash}}
  %r = unisparse.slash_refine {block = 32, last_q = 8, rows_per_block = 33}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{attribute 'local_blocks' must be non-negative, found -1}}
  %r = unisparse.slash_refine {block = 32, last_q = 8, local_blocks = -1}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{attribute 'scale' must be non-negative and at most the largest f32 (0: 1/sqrt(D)), found -1.0}}
  %r = unisparse.slash_refine {block = 32, last_q = 8, scale = -1.0}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{operand 'q' must have rank 4, found rank 3}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16> {
  // expected-error @+1 {{operand 'scores' must have element type 'f32', found 'f16'}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x4xf16>) outs(%s : tensor<1x2x4x4xf16>) -> tensor<1x2x4x4xf16>
  return %r : tensor<1x2x4x4xf16>
}

// -----

func.func @f(%q: tensor<1x4x100x16xi8>, %k: tensor<1x2x100x16xi8>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{operand 'q' must have element type bf16, f16 or f32, found 'i8'}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xi8>, tensor<1x2x100x16xi8>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xbf16>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{operand 'k' must have the element type of 'q' ('f32'), found 'bf16'}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xbf16>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x99x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{operand 'k' dim 2 (sequence) must be 100 to match 'q' dim 2, found 99}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x99x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x3x100x16xf32>, %s: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  // expected-error @+1 {{query heads 'q' dim 1 (4) must be a multiple of kv heads 'k' dim 1 (3)}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x3x100x16xf32>, tensor<1x2x4x4xf32>) outs(%s : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %r : tensor<1x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32> {
  // expected-error @+1 {{operand 'scores' dim 0 (batch) must be 1 to match 'q' dim 0, found 2}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<2x2x4x4xf32>) outs(%s : tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  return %r : tensor<2x2x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32> {
  // expected-error @+1 {{query heads 'q' dim 1 (4) must be a multiple of head groups 'scores' dim 1 (3)}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x3x4x4xf32>) outs(%s : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %r : tensor<1x3x4x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32> {
  // expected-error @+1 {{operand 'scores' dim 2 (query blocks) must be 4 (ceil(q sequence / block)), found 3}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x3x4xf32>) outs(%s : tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
  return %r : tensor<1x2x3x4xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x2x4x5xf32>) -> tensor<1x2x4x5xf32> {
  // expected-error @+1 {{operand 'scores' dim 3 (key blocks) must be 4 (ceil(q sequence / block)), found 5}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x2x4x5xf32>) outs(%s : tensor<1x2x4x5xf32>) -> tensor<1x2x4x5xf32>
  return %r : tensor<1x2x4x5xf32>
}

// -----

func.func @f(%q: tensor<1x4x100x16xf32>, %k: tensor<1x2x100x16xf32>, %s: tensor<1x0x4x4xf32>) -> tensor<1x0x4x4xf32> {
  // expected-error @+1 {{operand 'scores' dim 1 (head groups) must be at least 1, found 0}}
  %r = unisparse.slash_refine {block = 32, last_q = 8}
      ins(%q, %k, %s : tensor<1x4x100x16xf32>, tensor<1x2x100x16xf32>, tensor<1x0x4x4xf32>) outs(%s : tensor<1x0x4x4xf32>) -> tensor<1x0x4x4xf32>
  return %r : tensor<1x0x4x4xf32>
}

// -----

// expected-error @+1 {{'refine' slash needs 'causal' = true (the last queries see every key), found causal = false}}
func.func private @f() attributes {c = #unisparse.config<refine = slash, causal = false, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine_norm = false>}

// -----

// expected-error @+1 {{'refine_norm' = true needs 'refine' = slash (it normalises the slash refinement), found refine = none}}
func.func private @f() attributes {c = #unisparse.config<refine_norm = true, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// The default refinement follows causal (none for non-causal attention), but
// an explicit slash refinement of non-causal attention stays an error.
// expected-error @+1 {{'refine' slash needs 'causal' = true (the last queries see every key), found causal = false}}
func.func private @f() attributes {c = #unisparse.config<causal = false, refine = slash>}

// -----

// So does an explicit refine_norm = true where refine resolves to none.
// expected-error @+1 {{'refine_norm' = true needs 'refine' = slash (it normalises the slash refinement), found refine = none}}
func.func private @f() attributes {c = #unisparse.config<causal = false, refine_norm = true>}

// -----

// expected-error @+1 {{'refine_norm' = true needs 'refine' = slash (it normalises the slash refinement), found refine = none}}
func.func private @f() attributes {c = #unisparse.config<refine = none, refine_norm = true>}

// -----

// A field given twice.
// expected-error @+1 {{duplicate or unknown struct parameter name: causal}}
func.func private @f() attributes {c = #unisparse.config<causal = false, causal = true>}

// -----

// A field that does not exist.
// expected-error @+1 {{duplicate or unknown struct parameter name: blocks}}
func.func private @f() attributes {c = #unisparse.config<blocks = 64>}

// -----

// A comma with no field after it.
// expected-error @+2 {{expected valid keyword}}
// expected-error @+1 {{expected a parameter name in struct}}
func.func private @f() attributes {c = #unisparse.config<block = 64,>}

// -----

// expected-error @+2 {{expected integer value}}
// expected-error @+1 {{failed to parse Unisparse_ConfigAttr parameter 'block' which is to be a `int64_t`}}
func.func private @f() attributes {c = #unisparse.config<block = 1.5>}

// -----

// expected-error @+2 {{expected floating point literal}}
// expected-error @+1 {{failed to parse Unisparse_ConfigAttr parameter 'tau' which is to be a `::llvm::APFloat`}}
func.func private @f() attributes {c = #unisparse.config<tau = true>}

// -----

// expected-error @+2 {{expected 'true' or 'false'}}
// expected-error @+1 {{failed to parse Unisparse_ConfigAttr parameter 'refine_norm'}}
func.func private @f() attributes {c = #unisparse.config<refine = slash, refine_norm = 1, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99>}

// -----

// expected-error @+2 {{'refine' must be one of none, slash, found vertical}}
// expected-error @+1 {{failed to parse Unisparse_ConfigAttr parameter 'refine'}}
func.func private @f() attributes {c = #unisparse.config<refine = vertical, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99>}

// -----

// expected-error @+1 {{'width' must be at most 2^20, found 2000000}}
func.func private @f() attributes {c = #unisparse.config<width = 2000000, estimator = mean, c_k = 8, query_reduce = sum, tau = 0.99, refine = none>}

// -----

// expected-error @+1 {{'rows_per_block' must be at most 2^20, found 2000000}}
func.func private @f() attributes {c = #unisparse.config<block = 4194304, c_q = 16, c_k = 16, refine = slash, rows_per_block = 2000000, estimator = mean, query_reduce = sum, tau = 0.99, refine_norm = false>}
