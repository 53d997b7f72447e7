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

// -----

// The antidiagonal estimators' query composites (pooling = concat_reversed,
// 8 slots, heads pooled by 2): a thread per (composite, slot, 8 head-dim
// elements); slot a holds token 8 t + 7 - a, its 2 heads summed in f32 and
// divided by 2 (a slot past the sequence: no load, zeros), rounded once and
// stored at [b, g, t, a, d].
// CHECK-LABEL: func.func @concat_reversed(
// CHECK-SAME: %[[Q:[^:]+]]: memref<1x8x?x64xbf16>, %[[QC:[^:]+]]: memref<1x4x?x8x64xbf16>)
// CHECK: %[[N:.+]] = memref.dim %[[Q]], %c2
// CHECK: gpu.launch
// CHECK: %[[CHUNK:.+]] = arith.remui %{{.+}}, %c8 : index
// CHECK: %[[REST:.+]] = arith.divui %{{.+}}, %c8 : index
// CHECK: %[[SLOT:.+]] = arith.remui %[[REST]], %c8 : index
// CHECK: %[[T:.+]] = arith.remui %{{.+}}, %{{.+}} : index
// CHECK: %[[BASE:.+]] = arith.muli %[[T]], %c8 : index
// CHECK: %[[REV:.+]] = arith.subi %c7, %[[SLOT]] : index
// CHECK: %[[TOKEN:.+]] = arith.addi %[[BASE]], %[[REV]] : index
// CHECK: %[[HAS:.+]] = arith.cmpi ult, %[[TOKEN]], %[[N]] : index
// CHECK: %[[NEXT:.+]] = arith.addi %[[TOKEN]], %c1 : index
// CHECK: %[[LAST:.+]] = arith.select %[[HAS]], %[[NEXT]], %[[TOKEN]] : index
// CHECK: %[[ONE:.+]] = arith.subi %[[LAST]], %[[TOKEN]] : index
// CHECK: arith.cmpi eq, %[[ONE]], %c1 : index
// CHECK-COUNT-2: vector.load %[[Q]][%{{.+}}, %{{.+}}, %[[TOKEN]], %{{.+}}] {alignment = 16 : i64} : memref<1x8x?x64xbf16>, vector<8xbf16>
// CHECK: arith.divf %{{.+}}, %cst{{.*}} : vector<8xf32>
// CHECK: arith.truncf %{{.+}} : vector<8xf32> to vector<8xbf16>
// CHECK: vector.store %{{.+}}, %[[QC]][%{{.+}}, %{{.+}}, %[[T]], %[[SLOT]], %{{.+}}] {alignment = 16 : i64} : memref<1x4x?x8x64xbf16>, vector<8xbf16>
// CHECK-NOT: unisparse.compress
func.func @concat_reversed(%q: memref<1x8x?x64xbf16>, %qc: memref<1x4x?x8x64xbf16>) {
  unisparse.compress {seq_factor = 8 : i64, head_factor = 2 : i64, pooling = #unisparse.pooling<concat_reversed>}
      ins(%q : memref<1x8x?x64xbf16>) outs(%qc : memref<1x4x?x8x64xbf16>)
  return
}

// -----

// Keys (pooling = concat): slot a holds token 8 t + a, of source head g / 4.
// CHECK-LABEL: func.func @concat(
// CHECK-SAME: %[[K:[^:]+]]: memref<1x2x?x64xbf16>, %[[KC:[^:]+]]: memref<1x8x?x8x64xbf16>)
// CHECK: arith.remui %{{.+}}, %c8 : index
// CHECK: %[[SLOT:.+]] = arith.remui %{{.+}}, %c8 : index
// CHECK: %[[TOKEN:.+]] = arith.addi %{{.+}}, %[[SLOT]] : index
// CHECK: %[[SRC:.+]] = arith.divui %{{.+}}, %c4 : index
// CHECK: vector.load %[[K]][%{{.+}}, %[[SRC]], %[[TOKEN]], %{{.+}}]
// CHECK: vector.store %{{.+}}, %[[KC]][%{{.+}}, %{{.+}}, %{{.+}}, %[[SLOT]], %{{.+}}]
func.func @concat(%k: memref<1x2x?x64xbf16>, %kc: memref<1x8x?x8x64xbf16>) {
  unisparse.compress {seq_factor = 8 : i64, kv_group = 4 : i64, pooling = #unisparse.pooling<concat>}
      ins(%k : memref<1x2x?x64xbf16>) outs(%kc : memref<1x8x?x8x64xbf16>)
  return
}
