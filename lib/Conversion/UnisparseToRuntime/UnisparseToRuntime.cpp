//===- UnisparseToRuntime.cpp - block_sparse_attention -> runtime call ----===//
//
// The runtime ABI (runtime/include/unisparse/runtime/unisparse_runtime.h):
//
//   i32 unisparse_rt_block_sparse_attention_<dtype>(
//       q, k, v : memref<?x?x?x?x<dtype>, strided<[?, ?, ?, ?], offset: ?>>,
//       counts : memref<?x?x?xi32, strided<...>>,
//       indices : memref<?x?x?x?xi32, strided<...>>,
//       o : memref<?x?x?x?x<dtype>, strided<...>>,
//       lse : memref<?x?x?xf32, strided<...>>,
//       block : i64, causal : i32, scale : f32)   {llvm.emit_c_interface}
//
//===----------------------------------------------------------------------===//

#include "unisparse/Conversion/UnisparseToRuntime/UnisparseToRuntime.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_CONVERTUNISPARSETORUNTIMEPASS
#include "unisparse/Conversion/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;
using namespace mlir::unisparse;

std::string
mlir::unisparse::getRuntimeAttentionFunctionName(Type elementType,
                                                 RuntimeTarget target) {
  std::string suffix = elementType.isBF16()  ? "bf16"
                       : elementType.isF16() ? "f16"
                                             : "f32";
  std::string prefix = target == RuntimeTarget::CUDA
                           ? "unisparse_rt_block_sparse_attention_cuda_"
                           : "unisparse_rt_block_sparse_attention_";
  return prefix + suffix;
}

namespace {
/// memref<?x...x?xT, strided<[?, ...], offset: ?>> of the rank of `type`.
MemRefType fullyDynamic(MemRefType type) {
  int64_t rank = type.getRank();
  SmallVector<int64_t> shape(rank, ShapedType::kDynamic);
  SmallVector<int64_t> strides(rank, ShapedType::kDynamic);
  auto layout =
      StridedLayoutAttr::get(type.getContext(), ShapedType::kDynamic, strides);
  return MemRefType::get(shape, type.getElementType(), layout,
                         type.getMemorySpace());
}

struct BlockSparseAttentionToCall : OpRewritePattern<BlockSparseAttentionOp> {
  BlockSparseAttentionToCall(MLIRContext *ctx, RuntimeTarget target)
      : OpRewritePattern(ctx), target(target) {}

  LogicalResult matchAndRewrite(BlockSparseAttentionOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "bufferize first");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    auto module = op->getParentOfType<ModuleOp>();
    Type elementType = cast<MemRefType>(op.getQ().getType()).getElementType();
    if (target == RuntimeTarget::CUDA && !elementType.isBF16() &&
        !elementType.isF16())
      return op.emitOpError() << "the CUDA attention kernel takes bf16 or f16, "
                                 "found "
                              << elementType;
    std::string name = getRuntimeAttentionFunctionName(elementType, target);

    SmallVector<Value> args;
    for (Value operand : op->getOperands()) {
      auto type = cast<MemRefType>(operand.getType());
      MemRefType target = fullyDynamic(type);
      args.push_back(
          type == target
              ? operand
              : memref::CastOp::create(b, target, operand).getResult());
    }
    args.push_back(arith::ConstantIntOp::create(b, op.getBlock(), 64));
    args.push_back(arith::ConstantIntOp::create(b, op.getCausal() ? 1 : 0, 32));
    args.push_back(arith::ConstantOp::create(
        b, b.getF32FloatAttr(op.getScale().convertToDouble())));

    auto fnType =
        b.getFunctionType(ValueRange(args).getTypes(), {b.getI32Type()});
    auto fn = module.lookupSymbol<func::FuncOp>(name);
    if (!fn) {
      OpBuilder::InsertionGuard guard(rewriter);
      rewriter.setInsertionPointToStart(module.getBody());
      fn = func::FuncOp::create(rewriter, op.getLoc(), name, fnType);
      fn.setPrivate();
      fn->setAttr("llvm.emit_c_interface", rewriter.getUnitAttr());
    } else if (fn.getFunctionType() != fnType) {
      return op.emitOpError()
             << "runtime function @" << name
             << " is already declared with type " << fn.getFunctionType()
             << ", expected " << fnType;
    }
    func::CallOp::create(b, fn, args);
    rewriter.eraseOp(op);
    return success();
  }

private:
  RuntimeTarget target;
};

struct ConvertUnisparseToRuntimePass
    : unisparse::impl::ConvertUnisparseToRuntimePassBase<
          ConvertUnisparseToRuntimePass> {
  using Base::Base;
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    ConversionTarget legality(*ctx);
    legality.addIllegalOp<BlockSparseAttentionOp>();
    legality.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    RuntimeTarget rt;
    if (target == "cpu") {
      rt = RuntimeTarget::CPU;
    } else if (target == "cuda") {
      rt = RuntimeTarget::CUDA;
    } else {
      getOperation()->emitError() << "unknown runtime target '" << target
                                  << "' (expected 'cpu' or 'cuda')";
      return signalPassFailure();
    }
    RewritePatternSet patterns(ctx);
    populateUnisparseToRuntimePatterns(patterns, rt);
    if (failed(applyPartialConversion(getOperation(), legality,
                                      std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace

void mlir::unisparse::populateUnisparseToRuntimePatterns(
    RewritePatternSet &patterns, RuntimeTarget target) {
  patterns.add<BlockSparseAttentionToCall>(patterns.getContext(), target);
}
