// RUN: unisparse-opt %s --convert-unisparse-to-linalg | FileCheck %s

// Keys of a GQA model (2 kv heads brought to 4 expanded heads, pooled by
// head_factor 2 into 2 groups) pooled over 16 tokens: pad the sequence to a
// whole number of composites, sum the (head, token) window, divide by the
// number of real tokens times the group size.
// CHECK-DAG: #[[$PAD:.+]] = affine_map<()[s0, s1] -> (-s0 + s1 * 16)>
// CHECK-DAG: #[[$IN:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1 + d4 floordiv 2, d2 * 16 + d5, d3)>
// CHECK-DAG: #[[$WIN:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d5)>
// CHECK-DAG: #[[$OUT:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @compress
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x2x?x32xbf16>, %[[INIT:[^:]+]]: tensor<1x2x?x32xf32>)
// CHECK-DAG: %[[ZERO:.+]] = arith.constant 0.000000e+00 : bf16
// CHECK: %[[P:.+]] = tensor.pad %[[X]] low[0, 0, 0, 0] high[0, 0, %{{.+}}, 0]
// CHECK: tensor.yield %[[ZERO]] : bf16
// CHECK: %[[W:.+]] = tensor.empty() : tensor<2x16xf32>
// CHECK: %[[ACC:.+]] = linalg.fill
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [#[[$IN]], #[[$WIN]], #[[$OUT]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%[[P]], %[[W]] : tensor<1x2x?x32xbf16>, tensor<2x16xf32>) outs(%[[ACC]] : tensor<1x2x?x32xf32>)
// CHECK: arith.extf %{{.+}} : bf16 to f32
// CHECK: arith.addf
// CHECK: %[[MEAN:.+]] = linalg.generic {{.+}} ins(%[[SUM]] : tensor<1x2x?x32xf32>) outs(%[[INIT]] : tensor<1x2x?x32xf32>)
// CHECK: %[[T:.+]] = linalg.index 2 : index
// CHECK: %[[START:.+]] = arith.muli %[[T]], %[[SF:.+]] : index
// CHECK: %[[REST:.+]] = arith.subi %{{.+}}, %[[START]] : index
// CHECK: %[[REAL:.+]] = arith.minsi %[[REST]], %[[SF]] : index
// CHECK: arith.muli %[[REAL]], %{{.+}} : index
// CHECK: arith.divf
// CHECK: return %[[MEAN]]
func.func @compress(%x: tensor<1x2x?x32xbf16>, %o: tensor<1x2x?x32xf32>) -> tensor<1x2x?x32xf32> {
  %r = unisparse.compress {seq_factor = 16, head_factor = 2, kv_group = 2} ins(%x : tensor<1x2x?x32xbf16>) outs(%o : tensor<1x2x?x32xf32>) -> tensor<1x2x?x32xf32>
  return %r : tensor<1x2x?x32xf32>
}

// f32 input: no extension.
// CHECK-LABEL: func.func @compress_f32
// CHECK-NOT: arith.extf
// CHECK: return
func.func @compress_f32(%x: tensor<2x4x100x8xf32>, %o: tensor<2x4x13x8xf32>) -> tensor<2x4x13x8xf32> {
  %r = unisparse.compress {seq_factor = 8} ins(%x : tensor<2x4x100x8xf32>) outs(%o : tensor<2x4x13x8xf32>) -> tensor<2x4x13x8xf32>
  return %r : tensor<2x4x13x8xf32>
}
