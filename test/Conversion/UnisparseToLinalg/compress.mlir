// RUN: unisparse-opt %s --convert-unisparse-to-linalg | FileCheck %s

// Keys of a GQA model (2 kv heads brought to 4 expanded heads, pooled by
// head_factor 2 into 2 groups) pooled over 16 tokens: sum the (head, token)
// window reading the input at a clamped index (tokens past N add 0; nothing is
// padded or copied), then divide by the number of real tokens times the group.
// CHECK-DAG: #[[$WIN:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d4, d5)>
// CHECK-DAG: #[[$OUT:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @compress
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x2x?x32xbf16>, %[[INIT:[^:]+]]: tensor<1x2x?x32xf32>)
// CHECK: %[[N:.+]] = tensor.dim %[[X]], %{{.+}} : tensor<1x2x?x32xbf16>
// CHECK: %[[W:.+]] = tensor.empty() : tensor<2x16xf32>
// CHECK: %[[ACC:.+]] = linalg.fill
// CHECK: %[[SUM:.+]] = linalg.generic {indexing_maps = [#[[$WIN]], #[[$OUT]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%[[W]] : tensor<2x16xf32>) outs(%[[ACC]] : tensor<1x2x?x32xf32>)
// CHECK-DAG: %[[B:.+]] = linalg.index 0
// CHECK-DAG: %[[G:.+]] = linalg.index 1
// CHECK-DAG: %[[T:.+]] = linalg.index 2
// CHECK-DAG: %[[D:.+]] = linalg.index 3
// CHECK-DAG: %[[J:.+]] = linalg.index 4
// CHECK-DAG: %[[WI:.+]] = linalg.index 5
// CHECK: %[[TOK:.+]] = arith.addi %{{.+}}, %[[WI]] : index
// CHECK: %[[VALID:.+]] = arith.cmpi slt, %[[TOK]], %[[N]] : index
// CHECK: %[[CLAMPED:.+]] = arith.minsi %[[TOK]], %{{.+}} : index
// CHECK: %[[EXP:.+]] = arith.addi %{{.+}}, %[[J]] : index
// CHECK: %[[HEAD:.+]] = arith.divui %[[EXP]], %{{.+}} : index
// CHECK: %[[V:.+]] = tensor.extract %[[X]][%[[B]], %[[HEAD]], %[[CLAMPED]], %[[D]]] : tensor<1x2x?x32xbf16>
// CHECK: %[[F:.+]] = arith.extf %[[V]] : bf16 to f32
// CHECK: arith.select %[[VALID]], %[[F]]
// CHECK: arith.addf
// CHECK: %[[MEAN:.+]] = linalg.generic {{.+}} ins(%[[SUM]] : tensor<1x2x?x32xf32>) outs(%[[INIT]] : tensor<1x2x?x32xf32>)
// CHECK: %[[T2:.+]] = linalg.index 2 : index
// CHECK: %[[START:.+]] = arith.muli %[[T2]], %[[SF:.+]] : index
// CHECK: %[[REST:.+]] = arith.subi %[[N]], %[[START]] : index
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
