//===- UnisparseToLinalg.cpp - convert-unisparse-to-linalg pass -----------===//

#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Transforms/DialectConversion.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_CONVERTUNISPARSETOLINALGPASS
#include "unisparse/Conversion/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;
using namespace mlir::unisparse;

void mlir::unisparse::populateUnisparseToLinalgPatterns(
    RewritePatternSet &patterns, bool hostLoops) {
  populateCompressToLinalgPatterns(patterns, hostLoops);
  populateBlockScoreToLinalgPatterns(patterns);
  populateBlockSelectToLinalgPatterns(patterns);
  populateSlashRefineToLinalgPatterns(patterns, hostLoops);
  populateDenseLayoutToLinalgPatterns(patterns);
}

namespace {
struct ConvertUnisparseToLinalgPass
    : unisparse::impl::ConvertUnisparseToLinalgPassBase<
          ConvertUnisparseToLinalgPass> {
  using Base::Base;

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    ConversionTarget target(*ctx);
    target.addLegalDialect<linalg::LinalgDialect, tensor::TensorDialect,
                           scf::SCFDialect, arith::ArithDialect,
                           math::MathDialect, affine::AffineDialect>();
    target.addIllegalOp<DenseLayoutOp>();
    // With gpu-kernels, the refinements the GPU refinement kernels take
    // are theirs (convert-unisparse-to-gpu); the rest (f32 q and k, ...)
    // take the loops.
    target.addDynamicallyLegalOp<SlashRefineOp>([&](SlashRefineOp op) {
      auto shape = [](Value v) { return cast<ShapedType>(v.getType()); };
      return op.hasPureBufferSemantics() ||
             (gpuKernels && gpuRefineKernels &&
              refinementKernelUnsupportedReason(
                  shape(op.getQ()).getElementType(),
                  shape(op.getQ()).getDimSize(1),
                  shape(op.getK()).getDimSize(1),
                  shape(op.getScores()).getDimSize(1),
                  shape(op.getQ()).getDimSize(3), op.getWidth())
                  .empty());
    });
    // With gpu-kernels, mean and concatenating compresses are the GPU
    // compress kernel's, outlier ones the outlier compress kernels' where
    // they take them (convert-unisparse-to-gpu); the others take linalg.
    target.addDynamicallyLegalOp<CompressOp>([&](CompressOp op) {
      if (op.hasPureBufferSemantics())
        return true;
      if (!gpuKernels)
        return false;
      if (op.getPooling() != Pooling::outlier)
        return true;
      return outlierCompressKernelUnsupportedReason(
                 cast<ShapedType>(op.getInput().getType()).getDimSize(3),
                 op.getSeqFactor())
          .empty();
    });
    // Buffer forms are past this pass; with gpu-kernels, the selection and
    // the 16-bit scoring are the GPU kernels' (convert-unisparse-to-gpu).
    target.addDynamicallyLegalOp<BlockScoreOp>([&](BlockScoreOp op) {
      return op.hasPureBufferSemantics() ||
             (gpuKernels &&
              !getElementTypeOrSelf(op.getQc().getType()).isF32());
    });
    target.addDynamicallyLegalOp<BlockSelectOp>([&](BlockSelectOp op) {
      return op.hasPureBufferSemantics() || gpuKernels;
    });
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    RewritePatternSet patterns(ctx);
    // Without gpu-kernels the loops run on the host (unisparse-to-cpu).
    populateUnisparseToLinalgPatterns(patterns, /*hostLoops=*/!gpuKernels);
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
