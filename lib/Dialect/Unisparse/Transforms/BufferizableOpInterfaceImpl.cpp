//===- BufferizableOpInterfaceImpl.cpp - bufferize the DPS stage ops ------===//
//
// unisparse.block_sparse_attention, compress, block_score, block_select and
// slash_refine are destination-passing: their results alias their `outs`
// operands.
// Bufferization rewrites each into its buffer form (memref operands, no
// results), which convert-unisparse-to-runtime (attention) and
// convert-unisparse-to-gpu (pooling, scoring, refinement, selection) then
// lower.
//
//===----------------------------------------------------------------------===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Bufferization/IR/DstBufferizableOpInterfaceImpl.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace mlir::bufferization;
using namespace mlir::unisparse;

namespace {
struct BlockSparseAttentionBufferization
    : DstBufferizableOpInterfaceExternalModel<BlockSparseAttentionBufferization,
                                              BlockSparseAttentionOp> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto attention = cast<BlockSparseAttentionOp>(op);
    SmallVector<Value> buffers;
    for (Value operand : op->getOperands()) {
      FailureOr<Value> buffer = getBuffer(rewriter, operand, options, state);
      if (failed(buffer))
        return failure();
      buffers.push_back(*buffer);
    }
    rewriter.setInsertionPoint(op);
    BlockSparseAttentionOp::create(
        rewriter, op->getLoc(), TypeRange{}, buffers[0], buffers[1], buffers[2],
        buffers[3], buffers[4], buffers[5], buffers[6],
        attention.getBlockAttr(), attention.getCausalAttr(),
        attention.getScaleAttr());
    replaceOpWithBufferizedValues(rewriter, op, {buffers[5], buffers[6]});
    return success();
  }
};
/// compress, block_score, block_select and slash_refine overwrite their
/// destinations whole: the inits are written, never read (so bufferization
/// need not copy them).
template <typename OpTy>
struct OverwritingBufferization
    : DstBufferizableOpInterfaceExternalModel<OverwritingBufferization<OpTy>,
                                              OpTy> {
  bool bufferizesToMemoryRead(Operation *op, OpOperand &operand,
                              const AnalysisState &state) const {
    return !cast<DestinationStyleOpInterface>(op).isDpsInit(&operand);
  }

  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto dps = cast<DestinationStyleOpInterface>(op);
    IRMapping mapping;
    for (Value operand : op->getOperands()) {
      if (!isa<TensorType>(operand.getType()))
        continue;
      FailureOr<Value> buffer = getBuffer(rewriter, operand, options, state);
      if (failed(buffer))
        return failure();
      mapping.map(operand, *buffer);
    }
    SmallVector<Value> inits;
    for (Value init : dps.getDpsInits())
      inits.push_back(mapping.lookup(init));
    rewriter.setInsertionPoint(op);
    // The same op on the buffers, with no results.
    OperationState bufferForm(op->getLoc(), op->getName());
    bufferForm.addOperands(llvm::map_to_vector(op->getOperands(), [&](Value v) {
      return mapping.lookupOrDefault(v);
    }));
    bufferForm.addAttributes(op->getAttrs());
    if (std::optional<Attribute> props = op->getPropertiesAsAttribute())
      bufferForm.propertiesAttr = *props;
    rewriter.create(bufferForm);
    replaceOpWithBufferizedValues(rewriter, op, inits);
    return success();
  }
};
} // namespace

void mlir::unisparse::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, UnisparseDialect *) {
    BlockSparseAttentionOp::attachInterface<BlockSparseAttentionBufferization>(
        *ctx);
    CompressOp::attachInterface<OverwritingBufferization<CompressOp>>(*ctx);
    BlockScoreOp::attachInterface<OverwritingBufferization<BlockScoreOp>>(*ctx);
    BlockSelectOp::attachInterface<OverwritingBufferization<BlockSelectOp>>(
        *ctx);
    SlashRefineOp::attachInterface<OverwritingBufferization<SlashRefineOp>>(
        *ctx);
  });
}
