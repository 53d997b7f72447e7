//===- QueryPoolingFusion.cpp - query compress -> scoring kernel ----------===//
//
// Finds the buffer-form pattern
//
//   %qc = memref.alloc(...)
//   unisparse.compress {seq_factor = c_q, ...} ins(%q) outs(%qc)   (mean)
//   ...                                  (nothing that may write %q)
//   unisparse.block_score {c_q, ...} ins(%qc, %kc) outs(%scores)   (mean)
//   memref.dealloc %qc
//
// whose scoring kernel then pools the query composites from %q itself as it
// fills its query tile (BlockScoreKernel.cpp): the compress kernel, %qc and
// its write and read of 2 x B x Hg x Tq x D elements disappear. The key
// compress stays (its composites are shared by the kv head's groups and
// read once per query tile).
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

bool mlir::unisparse::gpu_detail::mayWrite(Operation *op, Value input) {
  auto memory = dyn_cast<MemoryEffectOpInterface>(op);
  if (!memory)
    return !isMemoryEffectFree(op);
  SmallVector<MemoryEffects::EffectInstance> effects;
  memory.getEffects(effects);
  for (const MemoryEffects::EffectInstance &effect : effects) {
    if (isa<MemoryEffects::Read, MemoryEffects::Allocate>(effect.getEffect()))
      continue;
    Value target = effect.getValue();
    if (!target || target == input || !target.getDefiningOp<memref::AllocOp>())
      return true;
  }
  return false;
}

namespace {
/// The compress whose query composites `score` can pool itself, or null.
CompressOp fusableCompress(BlockScoreOp score,
                           const ScoreKernelOptions &options) {
  if (!score.hasPureBufferSemantics())
    return {};
  ScoreKernelOptions opts = options;
  opts.compositeType = getElementTypeOrSelf(score.getQc().getType());
  if (!tensorCoreScoreUnsupportedReason(score, opts).empty())
    return {};
  auto alloc = score.getQc().getDefiningOp<memref::AllocOp>();
  if (!alloc)
    return {};
  // The buffer's users: one compress writing it, the scoring reading it as
  // its query composites only, deallocations.
  CompressOp compress;
  for (OpOperand &use : alloc->getUses()) {
    Operation *user = use.getOwner();
    if (isa<memref::DeallocOp>(user))
      continue;
    if (user == score.getOperation() &&
        use.getOperandNumber() == score.getQcMutable().getOperandNumber())
      continue;
    auto writer = dyn_cast<CompressOp>(user);
    if (!writer || compress || &use != &writer.getInitMutable())
      return {};
    compress = writer;
  }
  if (!compress || !compress.hasPureBufferSemantics() ||
      compress.getPooling() != Pooling::mean ||
      compress.getSeqFactor() != score.getCQ() ||
      compress->getBlock() != score->getBlock() ||
      !compress->isBeforeInBlock(score))
    return {};
  Value input = compress.getInput();
  auto inputType = cast<MemRefType>(input.getType());
  if (!queryPoolingUnsupportedReason(score, opts, inputType).empty())
    return {};
  // The kernel reads the queries where the scoring was: nothing between
  // may change them.
  for (Operation *op = compress->getNextNode(); op != score.getOperation();
       op = op->getNextNode())
    if (mayWrite(op, input))
      return {};
  return compress;
}
} // namespace

FusedQueryPooling::FusedQueryPooling(Operation *root,
                                     const ScoreKernelOptions &options) {
  if (!options.fuseQueryPooling)
    return;
  root->walk([&](BlockScoreOp score) {
    if (CompressOp compress = fusableCompress(score, options)) {
      compressOf[score] = compress;
      fused.insert(compress);
    }
  });
}

void FusedQueryPooling::eraseFused() {
  for (Operation *op : fused) {
    auto compress = cast<CompressOp>(op);
    Operation *alloc = compress.getInit().getDefiningOp();
    if (!llvm::all_of(alloc->getUsers(), [&](Operation *user) {
          return user == op || isa<memref::DeallocOp>(user);
        }))
      continue;
    compress->erase();
    for (Operation *user : llvm::make_early_inc_range(alloc->getUsers()))
      user->erase();
    alloc->erase();
  }
  fused.clear();
  compressOf.clear();
}
