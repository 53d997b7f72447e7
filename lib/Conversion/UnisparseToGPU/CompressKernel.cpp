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

int64_t MeanPooling::chunkWidth(MemRefType input) {
  int64_t headDim = input.getDimSize(3);
  int64_t width = 16 * 8 / static_cast<int64_t>(input.getElementTypeBitWidth());
  if (ShapedType::isDynamic(headDim) || headDim % width != 0)
    return 1;
  return width;
}

Value MeanPooling::sourceHead(KernelBuilder &k, Value group, int64_t j) const {
  // Expanded head g hf + j reads source head (g hf + j) / kvg.
  return k.div(k.add(k.mul(group, headFactor), j), kvGroup);
}

Value MeanPooling::load(KernelBuilder &k, Value batch, Value srcHead,
                        Value token, Value d,
                        llvm::MaybeAlign alignment) const {
  Type inElt = cast<MemRefType>(input.getType()).getElementType();
  Value x = vector::LoadOp::create(k.b, VectorType::get({width}, inElt), input,
                                   ValueRange{batch, srcHead, token, d},
                                   /*nontemporal=*/false, alignment);
  return k.widenToF32(x);
}

SmallVector<Value> MeanPooling::loadRun(KernelBuilder &k, Value batch,
                                        Value group, Value first,
                                        int64_t tokens, Value d,
                                        llvm::MaybeAlign alignment,
                                        Value limit) const {
  Value last = limit ? k.sub(limit, k.idx(1)) : Value();
  SmallVector<Value> loads;
  for (int64_t j = 0; j < headFactor; ++j) {
    Value src = sourceHead(k, group, j);
    for (int64_t w = 0; w < tokens; ++w) {
      Value token = k.add(first, w);
      if (limit)
        token = k.minU(token, last);
      loads.push_back(load(k, batch, src, token, d, alignment));
    }
  }
  return loads;
}

/// A zero f32 vector of `width` elements.
static Value zeros(KernelBuilder &k, int64_t width) {
  auto f32Vec = VectorType::get({width}, k.b.getF32Type());
  return arith::ConstantOp::create(
      k.b, f32Vec, DenseElementsAttr::get(f32Vec, k.b.getF32FloatAttr(0.0f)));
}

Value MeanPooling::sum(KernelBuilder &k, ArrayRef<Value> loads) const {
  return sums(k, {SmallVector<Value>(loads)},
              static_cast<int64_t>(loads.size()))
      .front();
}

SmallVector<Value> MeanPooling::sums(KernelBuilder &k,
                                     ArrayRef<SmallVector<Value>> runs,
                                     int64_t tokens, ArrayRef<Value> firsts,
                                     Value limit) const {
  SmallVector<Value> totals(runs.size(), zeros(k, width));
  for (size_t i = 0; i < runs.front().size(); ++i) {
    for (size_t r = 0; r < runs.size(); ++r) {
      Value next = arith::AddFOp::create(k.b, totals[r], runs[r][i]);
      if (limit)
        next = k.select(
            k.ult(k.add(firsts[r], static_cast<int64_t>(i) % tokens), limit),
            next, totals[r]);
      totals[r] = next;
    }
  }
  return totals;
}

Value MeanPooling::sumLoop(KernelBuilder &k, Value batch, Value group,
                           Value first, Value last, Value d,
                           llvm::MaybeAlign alignment) const {
  Value total = zeros(k, width);
  for (int64_t j = 0; j < headFactor; ++j) {
    Value src = sourceHead(k, group, j);
    total = k.forLoop(first, last, k.idx(1), {total},
                      [&](Value n, ValueRange a) -> SmallVector<Value> {
                        return {arith::AddFOp::create(
                            k.b, a[0], load(k, batch, src, n, d, alignment))};
                      })[0];
  }
  return total;
}

Value MeanPooling::mean(KernelBuilder &k, Value total, Value count,
                        Type element) const {
  Value countF = arith::UIToFPOp::create(
      k.b, k.b.getF32Type(),
      arith::IndexCastUIOp::create(k.b, k.b.getI64Type(), count));
  Value mean = arith::DivFOp::create(
      k.b, total,
      vector::BroadcastOp::create(
          k.b, VectorType::get({width}, k.b.getF32Type()), countF));
  return k.narrowF32(mean, element);
}

namespace {
constexpr int64_t kCompressThreads = 128;

struct CompressToGPU : OpRewritePattern<CompressOp> {
  CompressToGPU(MLIRContext *ctx, const FusedQueryPooling &fused)
      : OpRewritePattern(ctx), fused(fused) {}

  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "tensor form");
    if (fused.pools(op))
      return rewriter.notifyMatchFailure(
          op, "the scoring kernel pools these queries itself");
    bool concat = op.getPooling() == Pooling::concat ||
                  op.getPooling() == Pooling::concat_reversed;
    bool reversed = op.getPooling() == Pooling::concat_reversed;
    // Outlier pooling: OutlierCompressKernel.cpp (which reports why not).
    if (op.getPooling() == Pooling::outlier)
      return rewriter.notifyMatchFailure(op, "outlier pooling");
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
    Type outElt = outType.getElementType();
    int64_t sf = op.getSeqFactor(), hf = op.getHeadFactor();
    MeanPooling pool{input, hf, static_cast<int64_t>(op.getKvGroup()),
                     MeanPooling::chunkWidth(inType)};
    int64_t width = pool.width;

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
            Value first = k.mul(t, sf), last;
            if (concat) {
              first =
                  k.add(first, reversed ? k.sub(k.idx(sf - 1), slot) : slot);
              // A slot past the sequence has no token: zeros.
              last = k.select(k.ult(first, seq), k.add(first, 1), first);
            } else {
              last = k.minU(k.add(first, sf), seq);
            }
            // A full composite (the common case) unrolls its sf tokens, so
            // their loads are all in flight at once; the partial last one
            // loops.
            auto sums = [&](llvm::MaybeAlign alignment) -> Value {
              if (tokens > 32)
                return pool.sumLoop(k, bi, g, first, last, d, alignment);
              return k.ifElseValue(
                  k.eq(k.sub(last, first), k.idx(tokens)), f32Vec,
                  [&] {
                    return pool.sum(
                        k, pool.loadRun(k, bi, g, first, tokens, d, alignment));
                  },
                  [&] {
                    return pool.sumLoop(k, bi, g, first, last, d, alignment);
                  });
            };
            Value acc;
            if (aligned) {
              acc = k.ifElseValue(
                  aligned, f32Vec, [&] { return sums(llvm::Align(16)); },
                  [&] { return sums(llvm::MaybeAlign()); });
            } else {
              acc = sums(llvm::MaybeAlign());
            }
            // The tokens the composite has, times the heads pooled (a
            // concat slot: its heads; one past the sequence stays 0).
            Value count = concat ? k.idx(hf) : k.mul(k.sub(last, first), hf);
            Value mean = pool.mean(k, acc, count, outElt);
            SmallVector<Value> storeAt = {bi, g, t, d};
            if (concat)
              storeAt.insert(storeAt.begin() + 3, slot);
            if (aligned) {
              k.ifThenElse(
                  aligned,
                  [&] {
                    vector::StoreOp::create(kbld, mean, out, storeAt,
                                            /*nontemporal=*/false,
                                            llvm::Align(16));
                  },
                  [&] { vector::StoreOp::create(kbld, mean, out, storeAt); });
            } else {
              vector::StoreOp::create(kbld, mean, out, storeAt);
            }
          });
        });
    rewriter.eraseOp(op);
    return success();
  }

  const FusedQueryPooling &fused;
};
} // namespace

void mlir::unisparse::populateCompressToGPUPatterns(
    RewritePatternSet &patterns, const FusedQueryPooling &fused) {
  patterns.add<CompressToGPU>(patterns.getContext(), fused);
}
