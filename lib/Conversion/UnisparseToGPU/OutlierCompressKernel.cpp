//===- OutlierCompressKernel.cpp - outlier compress as GPU kernels --------===//
//
// unisparse.compress {pooling = outlier} (the outlier estimator's
// composites; OutlierCompress.cpp has the stages, the NumPy reference is
// unisparse.reference.outlier.compress_outlier) in buffer form becomes
// three bandwidth-bound launches, five with hot outliers:
//
//   unisparse_compress_outlier_partial_sums   the center, stage 1: a thread
//       per (batch, group, split of the tokens, 16 bytes of D) sums the
//       heads-pooled tokens of its split (ceil(N / 128) tokens, so at most
//       128 splits) in f32, ascending, 8 tokens' loads in flight;
//   unisparse_compress_outlier_center         stage 2: a thread per (batch,
//       group, d) sums the splits' partial sums in f32, ascending, and
//       divides by N (atomics-free: the center's bits do not depend on the
//       schedule);
//   (with hot > 0 the same two on the queries, heads pooled with kv_group
//   1: the probe, the mean pooled query of the head group; none when the
//   query compress of the same queries and heads came first in the block
//   with nothing between that may write them: its center is the probe);
//   unisparse_compress_outlier                a warp per (batch, composite,
//       group) (the groups innermost, so the kv_group replicas of a GQA key
//       head read it from L2), lane l holding coordinates [l V, l V + V),
//       V = D / 32: per token of the composite (8 tokens' loads in flight)
//       score = |x - center|^2 and heat = x . probe (the lane's V terms,
//       then a butterfly over the warp, so every lane has the same bits),
//       kept by the lane that owns the token's slot (slot a: lane a mod 32,
//       register a / 32); the r picks, each a warp arg-max over (value,
//       slot) in the total order of the structured path (larger value,
//       then lower slot; slots past the composite's tokens, taken or NaN
//       never win, and none left gives c); then the rest's mean and
//       per-coordinate variance (its tokens again, from L1/L2, summed in
//       ascending slot order as the structured path sums them), the
//       outlier tokens (or the mean for a pick of none) and every slot
//       stored, 4 V bytes a lane.
//
// Heads are pooled as the mean compress pools them (f32 sum over the
// group's heads, ascending, divided by head_factor). The center and the
// scores are f32 sums in another order than the structured path's (N
// tokens in two stages; D terms as V per lane and a 5-level tree), so they
// differ from it by a few ulps; a pick can then differ only between tokens
// whose scores are that close (scripts/gpu/check.py's near-tie rule).
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

namespace {
/// Threads a CTA of the center kernels.
constexpr int64_t kThreads = 128;
/// Warps a CTA of the composite kernel (a warp a composite).
constexpr int64_t kCompositeWarps = 4;
/// The center's first stage cuts the tokens into at most this many splits.
constexpr int64_t kSplits = 128;
/// Tokens (or partial sums) whose loads are issued before their adds.
constexpr int64_t kUnroll = 8;

/// The largest power of two dividing `bytes`, at most 16: the alignment a
/// vector of `bytes` at a multiple of `bytes` has in an aligned row.
int64_t vectorAlignment(int64_t bytes) {
  int64_t a = 1;
  while (a < 16 && bytes % (2 * a) == 0)
    a *= 2;
  return a;
}

Value splat(KernelBuilder &k, Value scalar, int64_t width) {
  return vector::BroadcastOp::create(
      k.b, VectorType::get({width}, k.b.getF32Type()), scalar);
}

Value zeros(KernelBuilder &k, int64_t width) {
  return splat(k, k.f32(0.0f), width);
}

/// `n` (an index) as f32.
Value indexToF32(KernelBuilder &k, Value n) {
  return arith::UIToFPOp::create(
      k.b, k.b.getF32Type(),
      arith::IndexCastUIOp::create(k.b, k.b.getI64Type(), n));
}

/// The heads of `pool`'s group pooled at one token: the f32 sum of its
/// heads' chunks at `d` (ascending) divided by head_factor, as the mean
/// compress pools them with seq_factor 1.
Value pooledToken(KernelBuilder &k, const MeanPooling &pool, Value batch,
                  Value group, Value token, Value d,
                  llvm::MaybeAlign alignment) {
  Value total;
  for (int64_t j = 0; j < pool.headFactor; ++j) {
    Value x =
        pool.load(k, batch, pool.sourceHead(k, group, j), token, d, alignment);
    total = j == 0 ? x : k.fadd(total, x);
  }
  if (pool.headFactor == 1)
    return total;
  return arith::DivFOp::create(
      k.b, total,
      splat(k, k.f32(static_cast<float>(pool.headFactor)), pool.width));
}

/// The elements of `v` (an f32 vector) added in ascending order.
Value sumElements(KernelBuilder &k, Value v) {
  int64_t n = cast<VectorType>(v.getType()).getNumElements();
  Value total = vector::ExtractOp::create(k.b, v, 0);
  for (int64_t i = 1; i < n; ++i)
    total = k.fadd(total, vector::ExtractOp::create(k.b, v, i));
  return total;
}

/// The sum of `x` over the warp's lanes (a butterfly: every lane gets the
/// same bits, each add having the same two operands in either order).
Value warpSum(KernelBuilder &k, Value x) {
  for (int32_t mask = 16; mask >= 1; mask /= 2)
    x = k.fadd(x, k.shuffleXor(x, mask));
  return x;
}

/// `body(alignment)` under `aligned` (an i1, or null: never) with
/// Align(bytes), else with no alignment; the results of body (of `types`).
SmallVector<Value>
alignedOrNot(KernelBuilder &k, Value aligned, TypeRange types, int64_t bytes,
             function_ref<SmallVector<Value>(llvm::MaybeAlign)> body) {
  if (!aligned)
    return body(llvm::MaybeAlign());
  auto op = scf::IfOp::create(k.b, types, aligned, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(k.b);
  k.b.setInsertionPointToStart(&op.getThenRegion().front());
  scf::YieldOp::create(k.b, body(llvm::Align(bytes)));
  k.b.setInsertionPointToStart(&op.getElseRegion().front());
  scf::YieldOp::create(k.b, body(llvm::MaybeAlign()));
  return op.getResults();
}

/// The f32 sum, from `init`, of load(i) over i in [first, last),
/// ascending; kUnroll loads are issued before their adds (indices clamped
/// to last - 1, the adds past it left out).
Value unrolledSum(KernelBuilder &k, Value first, Value last, Value init,
                  function_ref<Value(Value)> load) {
  Value lastIndex = k.sub(last, k.idx(1));
  return k
      .forLoop(first, last, k.idx(kUnroll), {init},
               [&](Value i0, ValueRange acc) -> SmallVector<Value> {
                 SmallVector<Value> xs;
                 for (int64_t u = 0; u < kUnroll; ++u)
                   xs.push_back(load(k.minU(k.add(i0, u), lastIndex)));
                 Value sum = acc[0];
                 for (int64_t u = 0; u < kUnroll; ++u)
                   sum = k.select(k.ult(k.add(i0, u), last), k.fadd(sum, xs[u]),
                                  sum);
                 return {sum};
               })
      .front();
}

/// The mean over tokens of the heads-pooled `input [B, H, N, D]` (`hf`
/// heads a group, each source head repeated `kvg` times): a new f32 buffer
/// [B, G, D] (the caller deallocates it), by the two center kernels.
Value meanOverTokens(ImplicitLocOpBuilder &b, Value input, int64_t hf,
                     int64_t kvg, Value batch, Value groups) {
  KernelBuilder kb{b};
  auto inType = cast<MemRefType>(input.getType());
  int64_t dim = inType.getDimSize(3);
  int64_t width = MeanPooling::chunkWidth(inType);
  MeanPooling pool{input, hf, kvg, width};
  Type f32 = b.getF32Type();
  Value seq = memref::DimOp::create(b, input, 2);
  Value per = kb.maxU(kb.ceilDiv(seq, kSplits), kb.idx(1));
  Value splits = kb.maxU(kb.ceilDiv(seq, per), kb.idx(1));
  Value chunks = kb.idx(dim / width);
  Value dimV = kb.idx(dim);
  auto dyn = [&](int64_t rank) {
    return MemRefType::get(SmallVector<int64_t>(rank, ShapedType::kDynamic),
                           f32);
  };
  Value partial = memref::AllocOp::create(
      b, dyn(4), ValueRange{batch, groups, splits, dimV});
  Value aligned = width > 1 ? rowsAligned(b, input, 16) : Value();
  auto vecType = VectorType::get({width}, f32);
  launchPerItem(
      b, kb.mul(kb.mul(kb.mul(batch, groups), splits), chunks), kThreads,
      "unisparse_compress_outlier_partial_sums",
      [&](KernelBuilder &k, Value item) {
        SmallVector<Value> at =
            k.delinearize(item, {batch, groups, splits, chunks});
        Value d = k.mul(at[3], width);
        Value first = k.mul(at[2], per);
        Value last = k.minU(k.add(first, per), seq);
        Value total =
            alignedOrNot(k, aligned, {vecType}, 16,
                         [&](llvm::MaybeAlign al) -> SmallVector<Value> {
                           return {unrolledSum(
                               k, first, last, zeros(k, width), [&](Value n) {
                                 return pooledToken(k, pool, at[0], at[1], n, d,
                                                    al);
                               })};
                         })
                .front();
        vector::StoreOp::create(k.b, total, partial, {at[0], at[1], at[2], d},
                                /*nontemporal=*/false,
                                llvm::Align(vectorAlignment(4 * width)));
      });
  Value center =
      memref::AllocOp::create(b, dyn(3), ValueRange{batch, groups, dimV});
  launchPerItem(
      b, kb.mul(kb.mul(batch, groups), dimV), kThreads,
      "unisparse_compress_outlier_center", [&](KernelBuilder &k, Value item) {
        SmallVector<Value> at = k.delinearize(item, {batch, groups, dimV});
        Value total =
            unrolledSum(k, k.idx(0), splits, k.f32(0.0f), [&](Value split) {
              return k.load(partial, {at[0], at[1], split, at[2]});
            });
        k.store(arith::DivFOp::create(k.b, total, indexToF32(k, seq)), center,
                at);
      });
  memref::DeallocOp::create(b, partial);
  return center;
}

/// The composite kernel's work for one warp (see the file header).
class CompositeWarp {
public:
  CompositeWarp(KernelBuilder &k, CompressOp op, const MeanPooling &pool,
                Value center, Value probe, Value seq, Value lane)
      : k(k), op(op), pool(pool), center(center), probe(probe), seq(seq),
        lane(lane), c(op.getSeqFactor()), r(op.getOutliers()), hot(op.getHot()),
        width(pool.width), laneSlots((op.getSeqFactor() + 31) / 32) {}

  /// Composite `t` of group `g` of batch `bi`, with loads of the input at
  /// `inAlign` and stores at `outAlign`.
  void build(Value bi, Value g, Value t, llvm::MaybeAlign inAlign,
             llvm::MaybeAlign outAlign) {
    this->bi = bi;
    this->g = g;
    this->t = t;
    this->inAlign = inAlign;
    Type f32 = k.b.getF32Type();
    auto vecType = VectorType::get({width}, f32);
    first = k.mul(t, c);
    count = k.minU(k.idx(c), k.sub(seq, first));
    d = k.mul(lane, width);
    llvm::Align stat(vectorAlignment(4 * width));
    Value centerV = vector::LoadOp::create(k.b, vecType, center,
                                           ValueRange{bi, g, d}, false, stat);
    Value probeV;
    if (hot > 0)
      probeV = vector::LoadOp::create(k.b, vecType, probe, ValueRange{bi, g, d},
                                      false, stat);

    // Scores (and heats) of the composite's tokens, held by their owners.
    SmallVector<Value> init(laneSlots * (hot > 0 ? 2 : 1), k.negInf());
    SmallVector<Value> held = overTokens(init, [&](Value a, Value valid,
                                                   Value x, ValueRange regs) {
      Value dv = k.fsub(x, centerV);
      SmallVector<Value> values = {warpSum(k, sumElements(k, k.fmul(dv, dv)))};
      if (hot > 0)
        values.push_back(warpSum(k, sumElements(k, k.fmul(x, probeV))));
      Value owner = k.andI(valid, k.eq(k.rem(a, 32), lane));
      Value reg = k.div(a, 32);
      SmallVector<Value> next(regs);
      for (size_t v = 0; v < values.size(); ++v)
        for (int64_t j = 0; j < laneSlots; ++j) {
          size_t i = v * laneSlots + j;
          next[i] = k.select(k.andI(owner, k.eq(reg, j)), values[v], regs[i]);
        }
      return next;
    });
    ArrayRef<Value> scores = ArrayRef<Value>(held).take_front(laneSlots);
    ArrayRef<Value> heats = ArrayRef<Value>(held).drop_front(laneSlots);

    // The picks, hot ones first.
    SmallVector<Value> taken(laneSlots, falseV());
    for (int64_t i = 0; i < r; ++i) {
      Value pick = pickOutlier(i < hot ? heats : scores, taken);
      idx.push_back(pick);
      for (int64_t j = 0; j < laneSlots; ++j)
        taken[j] = k.orI(taken[j], k.eq(slotOf(j), pick));
    }

    // The rest: the real slots no pick took, or all of them if none is left.
    Value picked = k.idx(0);
    for (Value pick : idx)
      picked = k.add(picked, k.select(k.eq(pick, c), k.idx(0), k.idx(1)));
    Value restCount = k.sub(count, picked);
    anyRest = k.ult(k.idx(0), restCount);
    Value n = indexToF32(k, k.select(anyRest, restCount, count));
    Value sums = overTokens({zeros(k, width)}, [&](Value a, Value valid,
                                                   Value x, ValueRange acc) {
                   return SmallVector<Value>{
                       k.select(inRest(a, valid), k.fadd(acc[0], x), acc[0])};
                 }).front();
    Value mean = arith::DivFOp::create(k.b, sums, splat(k, n, width));
    store(mean, 0, outAlign);
    for (int64_t i = 0; i < r; ++i) {
      Value none = k.eq(idx[i], c);
      Value x = token(k.add(first, k.select(none, k.idx(0), idx[i])));
      store(k.select(none, mean, x), i + 1, outAlign);
    }
    if (op.getSpread()) {
      Value squares =
          overTokens({zeros(k, width)}, [&](Value a, Value valid, Value x,
                                            ValueRange acc) {
            Value dv = k.fsub(x, mean);
            return SmallVector<Value>{k.select(
                inRest(a, valid), k.fadd(acc[0], k.fmul(dv, dv)), acc[0])};
          }).front();
      store(arith::DivFOp::create(k.b, squares, splat(k, n, width)), r + 1,
            outAlign);
    }
  }

private:
  KernelBuilder &k;
  CompressOp op;
  const MeanPooling &pool;
  Value center, probe, seq, lane;
  int64_t c, r, hot, width, laneSlots;
  Value bi, g, t, first, count, d, anyRest;
  llvm::MaybeAlign inAlign;
  SmallVector<Value> idx;

  Value falseV() {
    return arith::ConstantOp::create(k.b, k.b.getBoolAttr(false));
  }

  /// The slot the lane holds in its register `j`.
  Value slotOf(int64_t j) { return k.add(lane, 32 * j); }

  /// Token `tok`'s heads pooled, the lane's coordinates.
  Value token(Value tok) {
    return pooledToken(k, pool, bi, g, tok, d, inAlign);
  }

  /// Folds `body(slot, valid, x, acc)` over the composite's slots in
  /// ascending order, kUnroll tokens' loads at a time (clamped to the last
  /// token; `valid` false past it).
  SmallVector<Value> overTokens(
      ValueRange init,
      function_ref<SmallVector<Value>(Value, Value, Value, ValueRange)> body) {
    int64_t unroll = std::min(kUnroll, c);
    Value last = k.sub(count, k.idx(1));
    return k.forLoop(k.idx(0), count, k.idx(unroll), init,
                     [&](Value a0, ValueRange acc) -> SmallVector<Value> {
                       SmallVector<Value> xs;
                       for (int64_t u = 0; u < unroll; ++u)
                         xs.push_back(
                             token(k.add(first, k.minU(k.add(a0, u), last))));
                       SmallVector<Value> next(acc);
                       for (int64_t u = 0; u < unroll; ++u) {
                         Value a = k.add(a0, u);
                         next = body(a, k.ult(a, count), xs[u], next);
                       }
                       return next;
                     });
  }

  /// Slot `a` (valid: a real slot) belongs to the rest.
  Value inRest(Value a, Value valid) {
    Value free = arith::ConstantOp::create(k.b, k.b.getBoolAttr(true));
    for (Value pick : idx)
      free = k.andI(
          free, arith::CmpIOp::create(k.b, arith::CmpIPredicate::ne, a, pick));
    return k.andI(valid, k.orI(free, arith::XOrIOp::create(
                                         k.b, anyRest,
                                         arith::ConstantOp::create(
                                             k.b, k.b.getBoolAttr(true)))));
  }

  /// (v1, s1) comes before (v2, s2): a larger value, or the same and a
  /// lower slot.
  Value before(Value v1, Value s1, Value v2, Value s2) {
    Value gt = arith::CmpFOp::create(k.b, arith::CmpFPredicate::OGT, v1, v2);
    Value tie =
        k.andI(k.feq(v1, v2),
               arith::CmpIOp::create(k.b, arith::CmpIPredicate::slt, s1, s2));
    return k.orI(gt, tie);
  }

  /// The next pick (an index, c for none): over the slots the lanes hold
  /// in `values`, the real one, not `taken`, not NaN, first in the order
  /// of before(); a warp arg-max, its result the same in every lane.
  Value pickOutlier(ArrayRef<Value> values, ArrayRef<Value> taken) {
    Type i32 = k.b.getI32Type();
    Value none = k.i32(static_cast<int32_t>(c));
    Value bestV = k.negInf(), bestS = none;
    for (int64_t j = 0; j < laneSlots; ++j) {
      Value slot = slotOf(j);
      Value v = values[j];
      Value ok =
          k.andI(k.andI(k.ult(slot, count),
                        arith::XOrIOp::create(k.b, taken[j],
                                              arith::ConstantOp::create(
                                                  k.b, k.b.getBoolAttr(true)))),
                 arith::CmpFOp::create(k.b, arith::CmpFPredicate::ORD, v, v));
      Value candV = k.select(ok, v, k.negInf());
      Value candS = k.select(
          ok, arith::IndexCastUIOp::create(k.b, i32, slot).getResult(), none);
      Value take = before(candV, candS, bestV, bestS);
      bestV = k.select(take, candV, bestV);
      bestS = k.select(take, candS, bestS);
    }
    for (int32_t mask = 16; mask >= 1; mask /= 2) {
      Value otherV = k.shuffleXor(bestV, mask);
      Value otherS = k.shuffleXor(bestS, mask);
      Value take = before(otherV, otherS, bestV, bestS);
      bestV = k.select(take, otherV, bestV);
      bestS = k.select(take, otherS, bestS);
    }
    return arith::IndexCastUIOp::create(k.b, k.b.getIndexType(), bestS);
  }

  void store(Value value, int64_t slot, llvm::MaybeAlign alignment) {
    Type element = cast<MemRefType>(op.getInit().getType()).getElementType();
    if (!element.isF32())
      value = arith::TruncFOp::create(k.b, VectorType::get({width}, element),
                                      value);
    vector::StoreOp::create(k.b, value, op.getInit(),
                            ValueRange{bi, g, t, k.idx(slot), d},
                            /*nontemporal=*/false, alignment);
  }
};

/// The outlier compress with hot outliers later in the block of `op` (an
/// outlier compress of the queries: kv_group 1) whose probe is `op`'s
/// center: its queries are `op`'s input, pooled over the same heads, and
/// nothing between the two may write them. Null if none.
CompressOp probeSharer(CompressOp op) {
  if (op.getKvGroup() != 1)
    return {};
  Value queries = op.getInput();
  for (Operation *next = op->getNextNode(); next; next = next->getNextNode()) {
    auto other = dyn_cast<CompressOp>(next);
    if (other && other.getPooling() == Pooling::outlier &&
        other.hasPureBufferSemantics() && other.getHot() > 0 &&
        other.getQueries() == queries &&
        other.getHeadFactor() == op.getHeadFactor() &&
        outlierCompressKernelUnsupportedReason(
            cast<MemRefType>(other.getInput().getType()).getDimSize(3),
            other.getSeqFactor())
            .empty())
      return other;
    if (mayWrite(next, queries))
      return {};
  }
  return {};
}

struct OutlierCompressToGPU : OpRewritePattern<CompressOp> {
  // Before CompressToGPU, which refuses outlier pooling.
  OutlierCompressToGPU(MLIRContext *ctx)
      : OpRewritePattern(ctx, /*benefit=*/2) {}

  /// The probes computed already: for a key compress (not lowered yet) the
  /// center of the query compress before it (probeSharer), which it
  /// deallocates.
  mutable llvm::DenseMap<Operation *, Value> probes;

  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getPooling() != Pooling::outlier || !op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "not an outlier buffer form");
    Value input = op.getInput(), out = op.getInit();
    auto inType = cast<MemRefType>(input.getType());
    int64_t c = op.getSeqFactor();
    std::string why =
        outlierCompressKernelUnsupportedReason(inType.getDimSize(3), c);
    if (!why.empty())
      return op.emitOpError()
             << "cannot be lowered to the outlier compress kernel: " << why
             << " (lower it with convert-unisparse-to-linalg before "
                "bufferization)";
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KernelBuilder kb{b};
    int64_t hf = op.getHeadFactor(), kvg = op.getKvGroup();
    int64_t dim = inType.getDimSize(3), width = dim / 32;
    Value batch = memref::DimOp::create(b, out, 0);
    Value groups = memref::DimOp::create(b, out, 1);
    Value comps = memref::DimOp::create(b, out, 2);
    Value seq = memref::DimOp::create(b, input, 2);

    Value center = meanOverTokens(b, input, hf, kvg, batch, groups);
    // The probe: the mean pooled query of the group, which is the center of
    // the query compress when it comes first (the same kernels on the same
    // queries: the same bits), so the queries are read once less.
    Value probe;
    if (op.getHot() > 0) {
      probe = probes.lookup(op);
      probes.erase(op);
      if (!probe)
        probe = meanOverTokens(b, op.getQueries(), hf, 1, batch, groups);
    }
    CompressOp sharer = probeSharer(op);
    if (sharer && probes.count(sharer))
      sharer = {};

    // Vector loads and stores of a lane's coordinates need rows aligned to
    // them; else the same kernel with element accesses.
    int64_t inBytes =
        vectorAlignment(width * inType.getElementTypeBitWidth() / 8);
    int64_t outBytes = vectorAlignment(
        width * cast<MemRefType>(out.getType()).getElementTypeBitWidth() / 8);
    Value aligned;
    if (width > 1)
      aligned = kb.andI(rowsAligned(b, input, inBytes),
                        rowsAligned(b, out, outBytes));
    MeanPooling pool{input, hf, kvg, width};
    Value items = kb.mul(kb.mul(batch, comps), groups);
    Value blocks = kb.maxU(kb.ceilDiv(items, kCompositeWarps), kb.idx(1));
    buildLaunch(
        b, blocks, 32 * kCompositeWarps, {}, "unisparse_compress_outlier",
        [&](ImplicitLocOpBuilder &lb, Value tid, Value bid, ValueRange) {
          KernelBuilder k{lb};
          Value lane = k.rem(tid, 32);
          Value item = k.add(k.mul(bid, kCompositeWarps), k.div(tid, 32));
          k.ifThen(k.ult(item, items), [&] {
            SmallVector<Value> at = k.delinearize(item, {batch, comps, groups});
            auto body = [&](llvm::MaybeAlign in, llvm::MaybeAlign outAl) {
              CompositeWarp(k, op, pool, center, probe, seq, lane)
                  .build(at[0], at[2], at[1], in, outAl);
            };
            if (!aligned) {
              body(llvm::MaybeAlign(), llvm::MaybeAlign());
              return;
            }
            auto branch =
                scf::IfOp::create(lb, aligned, /*withElseRegion=*/true);
            OpBuilder::InsertionGuard guard(lb);
            lb.setInsertionPointToStart(&branch.getThenRegion().front());
            body(llvm::Align(inBytes), llvm::Align(outBytes));
            lb.setInsertionPointToStart(&branch.getElseRegion().front());
            body(llvm::MaybeAlign(), llvm::MaybeAlign());
          });
        });
    if (sharer)
      probes[sharer] = center;
    else
      memref::DeallocOp::create(b, center);
    if (probe)
      memref::DeallocOp::create(b, probe);
    rewriter.eraseOp(op);
    return success();
  }
};
} // namespace

void mlir::unisparse::populateOutlierCompressToGPUPatterns(
    RewritePatternSet &patterns) {
  patterns.add<OutlierCompressToGPU>(patterns.getContext());
}
