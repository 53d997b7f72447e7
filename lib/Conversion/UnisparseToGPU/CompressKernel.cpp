//===- CompressKernel.cpp - mean-pooling compress as a GPU kernel ---------===//
//
// unisparse.compress (pooling = mean) in buffer form becomes one
// bandwidth-bound launch: a thread per (batch, group, composite, chunk of V
// consecutive head-dim elements), V = 16 bytes of input. The antidiagonal
// estimators' composites (pooling = concat, concat_reversed: [B, G, T, s,
// D], slot a holding token t s + a, or t s + s - 1 - a reversed, zeros past
// the sequence) take the same launch with a thread per (batch, group,
// composite, slot, chunk): one token, its heads pooled. It sums the
// composite's tokens of each pooled head in f32 (heads outer, tokens inner,
// ascending; one 16-byte load per token), divides by the number of tokens
// times the heads pooled, and stores the chunk in the destination type
// (rounded once). A warp reads 2 x 256 contiguous bytes per token at
// D = 128 (coalesced); each input token is read once per group that pools
// it (the replicas of a GQA kv head hit in L2).
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

namespace {
constexpr int64_t kCompressThreads = 128;

struct CompressToGPU : OpRewritePattern<CompressOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "tensor form");
    bool concat = op.getPooling() == Pooling::concat ||
                  op.getPooling() == Pooling::concat_reversed;
    bool reversed = op.getPooling() == Pooling::concat_reversed;
    if (op.getPooling() != Pooling::mean && !concat)
      return op.emitOpError()
             << "with pooling = " << stringifyPooling(op.getPooling())
             << " has no GPU kernel (lower it with "
                "convert-unisparse-to-linalg before bufferization)";
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KernelBuilder kb{b};
    Value input = op.getInput(), out = op.getInit();
    auto inType = cast<MemRefType>(input.getType());
    auto outType = cast<MemRefType>(out.getType());
    Type inElt = inType.getElementType(), outElt = outType.getElementType();
    int64_t headDim = inType.getDimSize(3);
    int64_t width =
        16 * 8 / static_cast<int64_t>(inElt.getIntOrFloatBitWidth());
    if (ShapedType::isDynamic(headDim) || headDim % width != 0)
      width = 1;
    int64_t sf = op.getSeqFactor(), hf = op.getHeadFactor(),
            kvg = op.getKvGroup();

    Value batch = memref::DimOp::create(b, out, 0);
    Value groups = memref::DimOp::create(b, out, 1);
    Value comps = memref::DimOp::create(b, out, 2);
    Value dim = memref::DimOp::create(b, out, outType.getRank() - 1);
    Value seq = memref::DimOp::create(b, input, 2);
    // 16-byte loads and stores need 16-byte aligned rows; else the same
    // loop with element loads (the memrefs may be views of any tensor).
    Value aligned =
        width > 1 ? kb.andI(rowsAligned(b, input, 16), rowsAligned(b, out, 16))
                  : Value();
    Value chunks = kb.div(dim, width);
    // A composite's tokens: sf pooled, or (concat) one per slot.
    int64_t tokens = concat ? 1 : sf;
    Value slots = kb.idx(concat ? sf : 1);
    Value items =
        kb.mul(kb.mul(kb.mul(kb.mul(batch, groups), comps), slots), chunks);
    Value blocks = kb.ceilDiv(items, kCompressThreads);

    buildLaunch(
        b, blocks, kCompressThreads, {}, "unisparse_compress",
        [&](ImplicitLocOpBuilder &kbld, Value tid, Value bid, ValueRange) {
          KernelBuilder k{kbld};
          Value item = k.add(k.mul(bid, kCompressThreads), tid);
          k.ifThen(k.ult(item, items), [&] {
            Value chunk = k.rem(item, chunks);
            Value rest = k.div(item, chunks);
            Value slot;
            if (concat) {
              slot = k.rem(rest, slots);
              rest = k.div(rest, slots);
            }
            Value t = k.rem(rest, comps);
            Value head = k.div(rest, comps);
            Value g = k.rem(head, groups);
            Value bi = k.div(head, groups);
            Value d = k.mul(chunk, width);
            auto f32Vec = VectorType::get({width}, kbld.getF32Type());
            auto inVec = VectorType::get({width}, inElt);
            Value acc = arith::ConstantOp::create(
                kbld, f32Vec,
                DenseElementsAttr::get(f32Vec, kbld.getF32FloatAttr(0.0f)));
            Value first = k.mul(t, sf), last;
            if (concat) {
              first =
                  k.add(first, reversed ? k.sub(k.idx(sf - 1), slot) : slot);
              // A slot past the sequence has no token: zeros.
              last = k.select(k.ult(first, seq), k.add(first, 1), first);
            } else {
              last = k.minU(k.add(first, sf), seq);
            }
            // The f32 sums: heads outer, tokens inner, ascending. A full
            // composite (the common case) unrolls its sf tokens, so their
            // loads are all in flight at once; the partial last one loops.
            auto token = [&](Value src, Value n, llvm::MaybeAlign alignment) {
              Value x = vector::LoadOp::create(
                  kbld, inVec, input, ValueRange{bi, src, n, d},
                  /*nontemporal=*/false, alignment);
              return inElt.isF32() ? x : arith::ExtFOp::create(kbld, f32Vec, x);
            };
            auto sources = [&](int64_t j) {
              // Expanded head g hf + j reads source head (g hf + j) / kvg.
              return k.div(k.add(k.mul(g, hf), j), kvg);
            };
            auto looped = [&](llvm::MaybeAlign alignment) {
              Value total = acc;
              for (int64_t j = 0; j < hf; ++j) {
                Value src = sources(j);
                total =
                    k.forLoop(first, last, k.idx(1), {total},
                              [&](Value n, ValueRange a) -> SmallVector<Value> {
                                return {arith::AddFOp::create(
                                    kbld, a[0], token(src, n, alignment))};
                              })[0];
              }
              return total;
            };
            auto unrolled = [&](llvm::MaybeAlign alignment) {
              Value total = acc;
              for (int64_t j = 0; j < hf; ++j) {
                Value src = sources(j);
                SmallVector<Value> xs;
                for (int64_t w = 0; w < tokens; ++w)
                  xs.push_back(token(src, k.add(first, w), alignment));
                for (Value x : xs)
                  total = arith::AddFOp::create(kbld, total, x);
              }
              return total;
            };
            auto sums = [&](llvm::MaybeAlign alignment) -> Value {
              if (tokens > 32)
                return looped(alignment);
              auto full = scf::IfOp::create(
                  kbld, f32Vec, k.eq(k.sub(last, first), k.idx(tokens)),
                  /*withElseRegion=*/true);
              OpBuilder::InsertionGuard guard(kbld);
              kbld.setInsertionPointToStart(&full.getThenRegion().front());
              scf::YieldOp::create(kbld, unrolled(alignment));
              kbld.setInsertionPointToStart(&full.getElseRegion().front());
              scf::YieldOp::create(kbld, looped(alignment));
              return full.getResult(0);
            };
            if (aligned) {
              auto branch = scf::IfOp::create(kbld, f32Vec, aligned,
                                              /*withElseRegion=*/true);
              OpBuilder::InsertionGuard guard(kbld);
              kbld.setInsertionPointToStart(&branch.getThenRegion().front());
              scf::YieldOp::create(kbld, sums(llvm::Align(16)));
              kbld.setInsertionPointToStart(&branch.getElseRegion().front());
              scf::YieldOp::create(kbld, sums(llvm::MaybeAlign()));
              kbld.setInsertionPointAfter(branch);
              acc = branch.getResult(0);
            } else {
              acc = sums(llvm::MaybeAlign());
            }
            // The tokens the composite has, times the heads pooled (a
            // concat slot: its heads; one past the sequence stays 0).
            Value count = concat ? k.idx(hf) : k.mul(k.sub(last, first), hf);
            Value countF = arith::UIToFPOp::create(
                kbld, kbld.getF32Type(),
                arith::IndexCastUIOp::create(kbld, kbld.getI64Type(), count));
            Value mean = arith::DivFOp::create(
                kbld, acc, vector::BroadcastOp::create(kbld, f32Vec, countF));
            SmallVector<Value> storeAt = {bi, g, t, d};
            if (concat)
              storeAt.insert(storeAt.begin() + 3, slot);
            if (!outElt.isF32())
              mean = arith::TruncFOp::create(
                  kbld, VectorType::get({width}, outElt), mean);
            if (aligned) {
              auto branch = scf::IfOp::create(kbld, aligned,
                                              /*withElseRegion=*/true);
              OpBuilder::InsertionGuard guard(kbld);
              kbld.setInsertionPointToStart(&branch.getThenRegion().front());
              vector::StoreOp::create(kbld, mean, out, storeAt,
                                      /*nontemporal=*/false, llvm::Align(16));
              kbld.setInsertionPointToStart(&branch.getElseRegion().front());
              vector::StoreOp::create(kbld, mean, out, storeAt);
            } else {
              vector::StoreOp::create(kbld, mean, out, storeAt);
            }
          });
        });
    rewriter.eraseOp(op);
    return success();
  }
};
} // namespace

void mlir::unisparse::populateCompressToGPUPatterns(
    RewritePatternSet &patterns) {
  patterns.add<CompressToGPU>(patterns.getContext());
}
