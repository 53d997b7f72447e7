//===- Passes.td - unisparse conversion passes ------------*- tablegen -*-===//

#ifndef UNISPARSE_CONVERSION_PASSES_TD
#define UNISPARSE_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertUnisparseToLinalgPass : Pass<"convert-unisparse-to-linalg"> {
  let summary = "Lower the estimation stages to linalg, tensor, scf, arith and math";
  let description = [{
    Lowers `unisparse.compress`, `unisparse.block_score`,
    `unisparse.block_select` and `unisparse.dense_layout` on tensors:

    - compress: the full composites as a `tensor.expand_shape` view
      `[B, H, T, c, D]` and the partial last composite in place, each summed
      by a reduction `linalg.generic` (head pooling as an expanded head dim
      or a broadcast over GQA replicas), then an elementwise generic that
      divides by the number of real tokens (a partial last composite is the
      mean of the tokens it has);
    - block_score: a contraction `linalg.generic` for the composite logits
      into a map padded to whole blocks, masked row max, `exp(x - m)` and row
      sum generics, and the block sums as a reduction over the expanded view
      `[B, Hg, NBq, rq, NBk, rk]`;
    - block_select: an `scf.forall` over the rows with an `scf.while`
      top-p loop (repeated arg-max, so no sort is materialised);
    - dense_layout: two `linalg.generic` ops on `linalg.index`.

    `unisparse.block_sparse_attention` is left alone (see
    `convert-unisparse-to-runtime`).

    Before:

    ```mlir
    %c = unisparse.compress {seq_factor = 16 : i64} ins(%q : tensor<1x4x?x32xf32>)
        outs(%e : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
    ```

    After (abridged):

    ```mlir
    %x = tensor.extract_slice %q[0, 0, 0, 0] [1, 4, %full, 32] [1, 1, 1, 1]
    %v = tensor.expand_shape %x [[0], [1], [2, 3], [4]] output_shape [1, 4, %t, 16, 32]
    %s = linalg.generic {iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
        ins(%v : tensor<1x4x?x16x32xf32>) outs(%zero : ...) { arith.addf }
    // ... the same for the partial composite, then
    %c = linalg.generic ... { arith.divf }
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::affine::AffineDialect"];
}

def ConvertUnisparseToRuntimePass
    : Pass<"convert-unisparse-to-runtime", "::mlir::ModuleOp"> {
  let summary = "Lower buffer-form block_sparse_attention to runtime calls";
  let description = [{
    Replaces each `unisparse.block_sparse_attention` in buffer form (after
    bufferization) with a call of the runtime's C ABI,
    `unisparse_rt_block_sparse_attention_<f32|f16|bf16>`, declared in the
    module with `llvm.emit_c_interface`. Operands are cast to fully dynamic
    strided memrefs so one declaration serves every shape. The call returns
    the runtime status, which is also recorded as the thread's sticky error
    (`unisparse_rt_last_error`) for the embedding host to read. Tensor-form
    ops are rejected: bufferize first.

    Before:

    ```mlir
    unisparse.block_sparse_attention {block = 64 : i64}
        ins(%q, %k, %v, %c, %i : memref<1x4x?x32xf32>, ...) outs(%o, %l : ...)
    ```

    After:

    ```mlir
    %q2 = memref.cast %q : memref<1x4x?x32xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
    ...
    %st = func.call @unisparse_rt_block_sparse_attention_f32(%q2, %k2, %v2, %c2, %i2, %o2, %l2, %block, %causal, %scale)
        : (...) -> i32
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "Runtime backend called: 'cpu' (host memrefs) or 'cuda' (device "
           "memrefs, unisparse_rt_block_sparse_attention_cuda_<dtype>, "
           "bf16/f16 only)">,
  ];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
}

#endif // UNISPARSE_CONVERSION_PASSES_TD
