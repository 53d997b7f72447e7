//===- TestTile.cpp - unisparse-test-tile through TilingInterface ---------===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Interfaces/TilingInterface.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSETESTTILE
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;

namespace {
struct UnisparseTestTilePass
    : unisparse::impl::UnisparseTestTileBase<UnisparseTestTilePass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<TilingInterface> work;
    getOperation()->walk([&](TilingInterface op) {
      if (op->getName().getStringRef() == opName)
        work.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (TilingInterface op : work)
      if (failed(unisparse::tileToForall(rewriter, op, tileSizes)))
        return signalPassFailure();
  }
};
} // namespace
