//===- BufferizableOpInterfaceImpl.cpp - bufferize block_sparse_attention -===//
//
// unisparse.block_sparse_attention is destination-passing: its two results
// alias its two `outs` operands. Bufferization rewrites it into its buffer
// form (memref operands, no results), which convert-unisparse-to-runtime then
// turns into a runtime call.
//
//===----------------------------------------------------------------------===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Bufferization/IR/DstBufferizableOpInterfaceImpl.h"

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
} // namespace

void mlir::unisparse::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, UnisparseDialect *) {
    BlockSparseAttentionOp::attachInterface<BlockSparseAttentionBufferization>(
        *ctx);
  });
}
