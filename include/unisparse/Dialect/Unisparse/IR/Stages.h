//===- Stages.h - builders of the stages of unisparse.attention -*- C++ -*-===//
//
// The one place that turns a #unisparse.config into stage ops: the
// AggregatedOpInterface decomposition of unisparse.attention (used by
// unisparse-decompose) and the AOT entry module's @layout and
// @attention_layout all call it.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_STAGES_H
#define UNISPARSE_DIALECT_UNISPARSE_IR_STAGES_H

#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h"

#include "mlir/IR/Builders.h"

namespace mlir {
class DialectRegistry;
namespace unisparse {

/// The sizes of an attention's operands that its stages are built from.
struct AttentionShape {
  OpFoldResult batch, seq, headDim;
  int64_t heads, kvHeads;
};

/// The shape of `q: [B, Hq, N, D]`, `k: [B, Hkv, N, D]`, or failure when a
/// head count is dynamic (kv_group and the head groups are attributes).
FailureOr<AttentionShape> getAttentionShape(OpBuilder &b, Location loc, Value q,
                                            Value k);

/// The results of the estimation stages (`scores`: those the selection
/// read, refined when the configuration refines them).
struct EstimationValues {
  Value scores, counts, indices;
};

/// compress (queries and keys), block_score, with `refine = slash` the
/// slash_refine of its scores, and block_select for `config` on
/// `q: [B, Hq, N, D]`, `k: [B, Hkv, N, D]` of `shape`. `scoresInit` may be
/// null (a tensor.empty is made); `countsInit` / `indicesInit` are the layout
/// destinations.
EstimationValues buildEstimation(OpBuilder &b, Location loc, ConfigAttr config,
                                 const AttentionShape &shape, Value q, Value k,
                                 Value scoresInit, Value countsInit,
                                 Value indicesInit);

/// The block layout of `config` on `q`, `k` into `countsInit` /
/// `indicesInit` ([B, Hq / c_h, NB] and [B, Hq / c_h, NB, NB], with NB =
/// `blocks`, numBlocksOfr of the sequence): dense_layout
/// when the configuration keeps every block (keepsEveryBlock), else the
/// estimation stages. What unisparse.attention decomposes into before its
/// block_sparse_attention, and what the entry module's @attention_layout
/// returns next to the output.
EstimationValues buildLayout(OpBuilder &b, Location loc, ConfigAttr config,
                             const AttentionShape &shape, OpFoldResult blocks,
                             Value q, Value k, Value countsInit,
                             Value indicesInit);

/// block_sparse_attention of `config` over the layout `counts` / `indices`
/// into `oInit` / `lseInit`; returns (o, lse).
SmallVector<Value, 2> buildBlockSparseAttention(OpBuilder &b, Location loc,
                                                ConfigAttr config, Value q,
                                                Value k, Value v, Value counts,
                                                Value indices, Value oInit,
                                                Value lseInit);

/// Attaches linalg::AggregatedOpInterface to unisparse.attention: it
/// decomposes into compress, block_score and block_select (or dense_layout
/// when the configuration keeps every block) and block_sparse_attention.
void registerAggregatedOpInterfaceExternalModels(DialectRegistry &registry);

} // namespace unisparse
} // namespace mlir

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_STAGES_H
