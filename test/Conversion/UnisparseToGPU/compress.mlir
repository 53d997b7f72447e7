// RUN: unisparse-opt %s --split-input-file --convert-unisparse-to-gpu --canonicalize | FileCheck %s

// Mean pooling of GQA keys (8 groups from 2 kv heads, 8 tokens per
// composite) into bf16: a thread per 8 head-dim elements of a composite, one
// 16-byte load per token when the host finds the rows 16-byte aligned
// (element loads otherwise), f32 sums, the mean rounded once.
// CHECK-LABEL: func.func @keys(
// CHECK-SAME: %[[K:[^:]+]]: memref<1x2x?x128xbf16>, %[[KC:[^:]+]]: memref<1x8x?x128xbf16>)
// CHECK: %[[T:.+]] = memref.dim %[[KC]], %c2
// CHECK: %[[N:.+]] = memref.dim %[[K]], %c2
// CHECK: memref.extract_aligned_pointer_as_index %[[K]]
// CHECK: memref.extract_aligned_pointer_as_index %[[KC]]
// CHECK: %[[ITEMS:.+]] = arith.muli %[[T]], %c128 : index
// CHECK: gpu.launch {{.+}} threads(%[[TID:[^,]+]], {{.+}}) in (%{{.+}} = %c128, {{.+}}) module(@unisparse_compress_0_module) function(@unisparse_compress_0) {
// CHECK: scf.if %{{.+}} {
// The composite's tokens [8 t, min(8 t + 8, N)) of source head g / 4.
// CHECK: %[[LAST:.+]] = arith.minui %{{.+}}, %[[N]] : index
// CHECK: %[[SUM:.+]] = scf.if %[[ALIGNED:.+]] -> (vector<8xf32>) {
// CHECK: %[[SRC:.+]] = arith.divui %{{.+}}, %c4 : index
// CHECK: scf.for %{{.+}} = %{{.+}} to %[[LAST]] step %c1 iter_args(%{{.+}} = %cst) -> (vector<8xf32>) {
// CHECK: vector.load %[[K]][%{{.+}}, %[[SRC]], %{{.+}}, %{{.+}}] {alignment = 16 : i64} : memref<1x2x?x128xbf16>, vector<8xbf16>
// CHECK: arith.extf %{{.+}} : vector<8xbf16> to vector<8xf32>
// CHECK: } else {
// CHECK: vector.load %[[K]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<1x2x?x128xbf16>, vector<8xbf16>
// CHECK: arith.divf %[[SUM]], %{{.+}} : vector<8xf32>
// CHECK: arith.truncf %{{.+}} : vector<8xf32> to vector<8xbf16>
// CHECK: scf.if %[[ALIGNED]] {
// CHECK: vector.store %{{.+}}, %[[KC]][{{.+}}] {alignment = 16 : i64} : memref<1x8x?x128xbf16>, vector<8xbf16>
// CHECK-NOT: unisparse.compress
func.func @keys(%k: memref<1x2x?x128xbf16>, %kc: memref<1x8x?x128xbf16>) {
  unisparse.compress {seq_factor = 8 : i64, kv_group = 4 : i64} ins(%k : memref<1x2x?x128xbf16>) outs(%kc : memref<1x8x?x128xbf16>)
  return
}

// -----

// Head pooling (c_h = 2): the two heads of a group are summed, heads outer,
// tokens inner; the count is the tokens times 2. f32 out, no rounding.
// CHECK-LABEL: func.func @heads(
// CHECK: scf.if %{{.+}} -> (vector<8xf32>) {
// CHECK-COUNT-2: scf.for {{.+}} -> (vector<8xf32>)
// CHECK: arith.muli %{{.+}}, %c2 : index
// CHECK-NOT: arith.truncf
// CHECK: vector.store %{{.+}} {alignment = 16 : i64} : memref<2x4x?x64xf32>, vector<8xf32>
func.func @heads(%q: memref<2x8x?x64xbf16>, %qc: memref<2x4x?x64xf32>) {
  unisparse.compress {seq_factor = 16 : i64, head_factor = 2 : i64} ins(%q : memref<2x8x?x64xbf16>) outs(%qc : memref<2x4x?x64xf32>)
  return
}
