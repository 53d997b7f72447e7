// RUN: unisparse-opt %s --unisparse-approximate-exp | FileCheck %s

// f32 exp becomes arithmetic (range reduction, polynomial, exponent bits).
// CHECK-LABEL: func.func @exp
// CHECK-NOT: math.exp
// CHECK: math.floor
// CHECK: math.fma
// CHECK: arith.shli
// CHECK: arith.bitcast
// CHECK-NOT: math.exp
// CHECK: return
func.func @exp(%x: f32) -> f32 {
  %e = math.exp %x : f32
  return %e : f32
}

// Other element types are left alone.
// CHECK-LABEL: func.func @exp_f64
// CHECK: math.exp
func.func @exp_f64(%x: f64) -> f64 {
  %e = math.exp %x : f64
  return %e : f64
}
