//===- Stages.h - builders of the stages of unisparse.attention -*- C++ -*-===//
//
// The one place that turns a #unisparse.config into stage ops: the
// AggregatedOpInterface decomposition of unisparse.attention (used by
// unisparse-decompose) and the AOT entry module's @layout both call it.
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

/// The results of the estimation stages.
struct EstimationValues {
  Value scores, counts, indices;
};

/// compress (queries and keys), block_score and block_select for `config` on
/// `q: [B, Hq, N, D]`, `k: [B, Hkv, N, D]` of `shape`. `scoresInit` may be
/// null (a tensor.empty is made); `countsInit` / `indicesInit` are the layout
/// destinations.
EstimationValues buildEstimation(OpBuilder &b, Location loc, ConfigAttr config,
                                 const AttentionShape &shape, Value q, Value k,
                                 Value scoresInit, Value countsInit,
                                 Value indicesInit);

/// Attaches linalg::AggregatedOpInterface to unisparse.attention: it
/// decomposes into compress, block_score and block_select (or dense_layout
/// when the configuration keeps every block) and block_sparse_attention.
void registerAggregatedOpInterfaceExternalModels(DialectRegistry &registry);

} // namespace unisparse
} // namespace mlir

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_STAGES_H
