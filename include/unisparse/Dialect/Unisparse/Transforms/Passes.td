//===- Passes.td - unisparse transform passes -------------*- tablegen -*-===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_TRANSFORMS_PASSES_TD
#define UNISPARSE_DIALECT_UNISPARSE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def UnisparseDecompose : Pass<"unisparse-decompose"> {
  let summary = "Decompose unisparse.attention into its four stages";
  let description = [{
    Rewrites every `unisparse.attention` into `unisparse.compress` (queries
    and keys), `unisparse.block_score`, `unisparse.block_select` and
    `unisparse.block_sparse_attention`, creating the destination tensors with
    `tensor.empty`. When the configuration keeps every block (`tau = 1`, or
    `min_blocks` at least the static number of key blocks) the layout is a
    `unisparse.dense_layout` and no estimation is emitted. Head counts must be
    static (the GQA factor becomes the `kv_group` attribute).

    Before:

    ```mlir
    %o, %lse = unisparse.attention {config = #unisparse.config<block = 64, c_q = 16, c_k = 16>}
        ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>)
        outs(%o0, %l0 : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
    ```

    After:

    ```mlir
    %qc = unisparse.compress {seq_factor = 16 : i64} ins(%q : ...) outs(%e0 : tensor<1x4x?x32xf32>) -> ...
    %kc = unisparse.compress {kv_group = 2 : i64, seq_factor = 16 : i64} ins(%k : ...) outs(%e1 : ...) -> ...
    %s = unisparse.block_score {block = 64 : i64, c_k = 16 : i64, c_q = 16 : i64} ins(%qc, %kc : ...) outs(%e2 : tensor<1x4x?x?xf32>) -> ...
    %cnt, %idx = unisparse.block_select {tau = 9.000000e-01 : f64} ins(%s : ...) outs(%e3, %e4 : ...) -> ...
    %o, %lse = unisparse.block_sparse_attention {block = 64 : i64} ins(%q, %k, %v, %cnt, %idx : ...) outs(%o0, %l0 : ...) -> ...
    ```
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect",
                           "::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect"];
}

#endif // UNISPARSE_DIALECT_UNISPARSE_TRANSFORMS_PASSES_TD
