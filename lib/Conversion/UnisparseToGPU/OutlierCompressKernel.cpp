//===- OutlierCompressKernel.cpp - outlier compress as GPU kernels --------===//
//
// unisparse.compress {pooling = outlier} (the outlier estimator's
// composites; OutlierCompress.cpp has the stages, the NumPy reference is
// unisparse.reference.outlier.compress_outlier) in buffer form becomes
// three bandwidth-bound launches, five with hot outliers:
//
//   unisparse_compress_outlier_partial_sums   the center, stage 1: a CTA
//       per (batch, distinct group, split of the tokens: max(ceil(N / 128),
//       256) tokens, so at most 128 splits) of rows of threads, a thread a
//       16-byte chunk of D (16 rows at D 128 in 16 bits): row r sums the
//       heads-pooled tokens r, r + rows, ... of the split in f32, ascending,
//       8 tokens' loads at a time (a round of the CTA: 8 x rows consecutive
//       tokens), then the rows' sums meet in workgroup memory and are added
//       in row order; when head_factor divides kv_group, the rep = kv_group /
//       head_factor groups that pool the same source head (GQA keys) share
//       one center, computed once (else rep = 1);
//   unisparse_compress_outlier_center         stage 2: a CTA of 32 warps
//       per (batch, distinct group, 32 coordinates): warp w sums splits w,
//       w + 32, ... in f32, ascending, lane l a coordinate; warp 0 adds the
//       warps' sums in warp order (through workgroup memory) and divides by
//       N (atomics-free: the center's bits do not depend on the schedule);
//   (with hot > 0 the same two on the queries, heads pooled with kv_group
//   1: the probe, the mean pooled query of the head group; none when the
//   query compress of the same queries and heads came first in the block
//   with nothing between that may write them: its center is the probe);
//   unisparse_compress_outlier                a warp per (batch, composite,
//       run of rep groups) (rep as above: the groups of a GQA key head pool
//       the same tokens and share the center, so their tokens are loaded
//       and their scores computed once, then each group's heats, picks,
//       rest and stores in turn; rep = 1 for the queries), lane l holding
//       coordinates [l V, l V + V), V = D / 32. A composite with all its c
//       tokens (all but a last one) takes a form with static token offsets
//       and no clamps or validity tests. Per 8 tokens of the composite
//       (their loads first): score = |x - center|^2 and, per group, heat =
//       x . probe, the lane's V terms (products fused), then a
//       reduce-scatter over the warp (three halving
//       exchanges, then two butterfly steps: the bits of a 5-step
//       butterfly, a third of its shuffles) that leaves token (l >> 2) & 7
//       of the 8 in lane l: slot a is held by the lanes with (l >> 2) & 7
//       = a mod 8, in register a / 8. The r picks, each a warp arg-max
//       over (value, slot) (lane bits 2-4) in the total order of the
//       structured path (larger value, then lower slot; slots past the
//       composite's tokens, taken or NaN never win, and none left gives
//       c); then the rest's mean and per-coordinate variance (summed in
//       ascending slot order as the structured path sums them, from the
//       tokens the scores loaded: a lane keeps its c V values in registers,
//       at most kOutlierCompressMaxLaneValues = 128, the kernel's limit),
//       the outlier tokens (or the mean for a pick of none) and every slot
//       stored, 4 V bytes a lane.
//
// Heads are pooled as the mean compress pools them (f32 sum over the
// group's heads, ascending, divided by head_factor). The center and the
// scores are f32 sums in another order than the structured path's (N
// tokens in three stages; D terms as V per lane, fused, and a 5-level tree),
// so they differ from it by a few ulps; a pick can then differ only
// between tokens whose scores are that close (scripts/gpu/check.py's
// near-tie rule, whose bounds allow a rounding per product, so cover the
// fused ones).
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

namespace {
/// Threads a CTA of the center's first stage (the second runs kWarp warps):
/// kThreads / chunks rows of chunks threads (a chunk: 16 bytes of D).
constexpr int64_t kThreads = 256;
/// Warps a CTA of the composite kernel (a warp a composite).
constexpr int64_t kCompositeWarps = 4;
/// The center's first stage cuts the tokens into at most this many splits,
/// a CTA each, whose rows read the split's tokens in order: each round of
/// a CTA reads kSplitUnroll * rows consecutive tokens (32 KB at D 128 in
/// 16-bit), so the DRAM sees few long streams. (Until session 21 a thread
/// per (split, chunk) summed 512 splits' tokens at 256 bytes a token and
/// split: 16K streams for 32 query heads, 2.0 TB/s on the H100.)
constexpr int64_t kSplits = 128;
/// The fewest tokens a split of the center's first stage sums (at least one
/// round of its CTA, kSplitUnroll * rows tokens, for D >= 64 in 16 bits):
/// below 32K tokens there are fewer splits than kSplits, so the partial
/// sums [B, G, splits, D] f32 never outgrow N / 256 rows.
constexpr int64_t kMinSplitTokens = 256;
/// Partial sums whose loads a thread of the center's second stage issues
/// before their adds (a thread per (batch, group, d, every 32nd split)). A
/// thread per (batch, group, d) walking all 512 took 19 us where 128 had
/// taken 6.5 (ncu, H200, session 14).
constexpr int64_t kUnroll = 16;
/// Lanes of a warp, and warps of the center's second stage.
constexpr int64_t kWarp = 32;
/// Tokens whose loads (16 bytes a thread each) a thread of the center's
/// first stage issues before their adds.
constexpr int64_t kSplitUnroll = 8;
/// Tokens of a composite whose scores the warp reduces at once (their
/// loads issued before their adds); the reduce-scatter halves them 3 times
/// over lane bits 4, 3, 2, so this is 8.
constexpr int64_t kChunk = 8;

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

/// Token `token`'s chunk at `d` of `srcHead` as f32, as MeanPooling::load
/// reads it, but bf16 pairs widened with integer ops: a pair's 32 bits
/// shifted left by 16 are the low element's f32, masked to the high 16 the
/// high one's (exact: a bf16 is the top half of its f32), two operations a
/// pair where the extension's lowering takes three.
Value loadToken(KernelBuilder &k, const MeanPooling &pool, Value batch,
                Value srcHead, Value token, Value d,
                llvm::MaybeAlign alignment) {
  Type inElt = cast<MemRefType>(pool.input.getType()).getElementType();
  int64_t w = pool.width;
  if (!inElt.isBF16() || w % 2 != 0)
    return pool.load(k, batch, srcHead, token, d, alignment);
  Value x = vector::LoadOp::create(k.b, VectorType::get({w}, inElt), pool.input,
                                   ValueRange{batch, srcHead, token, d},
                                   /*nontemporal=*/false, alignment);
  auto wordsType = VectorType::get({w / 2}, k.b.getI32Type());
  Value words = vector::BitCastOp::create(k.b, wordsType, x);
  auto splatI32 = [&](int32_t v) {
    return arith::ConstantOp::create(
        k.b, DenseElementsAttr::get(wordsType, k.b.getI32IntegerAttr(v)));
  };
  Value lo = arith::ShLIOp::create(k.b, words, splatI32(16));
  Value hi = arith::AndIOp::create(k.b, words, splatI32(-65536));
  SmallVector<int64_t> interleave;
  for (int64_t i = 0; i < w / 2; ++i) {
    interleave.push_back(i);
    interleave.push_back(w / 2 + i);
  }
  Value both = vector::ShuffleOp::create(k.b, lo, hi, interleave);
  return vector::BitCastOp::create(k.b, VectorType::get({w}, k.b.getF32Type()),
                                   both);
}

/// The heads of `pool`'s group pooled at one token: the f32 sum of its
/// heads' chunks at `d` (ascending) divided by head_factor, as the mean
/// compress pools them with seq_factor 1.
Value pooledToken(KernelBuilder &k, const MeanPooling &pool, Value batch,
                  Value group, Value token, Value d,
                  llvm::MaybeAlign alignment) {
  Value total;
  for (int64_t j = 0; j < pool.headFactor; ++j) {
    Value x = loadToken(k, pool, batch, pool.sourceHead(k, group, j), token, d,
                        alignment);
    total = j == 0 ? x : k.fadd(total, x);
  }
  if (pool.headFactor == 1)
    return total;
  return arith::DivFOp::create(
      k.b, total,
      splat(k, k.f32(static_cast<float>(pool.headFactor)), pool.width));
}

/// The sum of the products of the elements of `x` and `y` (f32 vectors),
/// ascending, each product fused into the add (fma: one rounding a term).
Value dotElements(KernelBuilder &k, Value x, Value y) {
  int64_t n = cast<VectorType>(x.getType()).getNumElements();
  auto at = [&](Value v, int64_t i) {
    return vector::ExtractOp::create(k.b, v, i).getResult();
  };
  Value total = k.fmul(at(x, 0), at(y, 0));
  for (int64_t i = 1; i < n; ++i)
    total = math::FmaOp::create(k.b, at(x, i), at(y, i), total);
  return total;
}

/// `body(alignment)` under `aligned` (an i1, or null: never) with
/// Align(bytes), else with no alignment; the results of body (of `types`).
SmallVector<Value>
alignedOrNot(KernelBuilder &k, Value aligned, TypeRange types, int64_t bytes,
             function_ref<SmallVector<Value>(llvm::MaybeAlign)> body) {
  if (!aligned)
    return body(llvm::MaybeAlign());
  return k.ifElse(
      aligned, types, [&] { return body(llvm::Align(bytes)); },
      [&] { return body(llvm::MaybeAlign()); });
}

/// The f32 sum, from `init`, of load(i) over i in [first, last),
/// ascending, `unroll` loads issued before their adds: whole groups of
/// `unroll` first (no clamps or tests), then the rest as one more group
/// with its indices clamped to last - 1 and the adds past it left out.
Value unrolledSum(KernelBuilder &k, Value first, Value last, Value init,
                  int64_t unroll, function_ref<Value(Value)> load) {
  Value lastIndex = k.sub(last, k.idx(1));
  Value wholeEnd = k.add(
      first, k.mul(k.div(k.sub(last, first), k.idx(unroll)), k.idx(unroll)));
  Value sum = k.forLoop(first, wholeEnd, k.idx(unroll), {init},
                        [&](Value i0, ValueRange acc) -> SmallVector<Value> {
                          SmallVector<Value> xs;
                          for (int64_t u = 0; u < unroll; ++u)
                            xs.push_back(load(k.add(i0, u)));
                          Value total = acc[0];
                          for (int64_t u = 0; u < unroll; ++u)
                            total = k.fadd(total, xs[u]);
                          return {total};
                        })
                  .front();
  return k
      .forLoop(wholeEnd, last, k.idx(unroll), {sum},
               [&](Value i0, ValueRange acc) -> SmallVector<Value> {
                 SmallVector<Value> xs;
                 for (int64_t u = 0; u < unroll; ++u)
                   xs.push_back(load(k.minU(k.add(i0, u), lastIndex)));
                 Value total = acc[0];
                 for (int64_t u = 0; u < unroll; ++u)
                   total = k.select(k.ult(k.add(i0, u), last),
                                    k.fadd(total, xs[u]), total);
                 return {total};
               })
      .front();
}

/// Consecutive groups of a compress with `hf` heads a group and each
/// source head repeated `kvg` times that pool the same heads, so have the
/// same center: kvg / hf when hf divides kvg (group g pools source head
/// g / (kvg / hf) hf times), else 1.
int64_t centerReplicas(int64_t hf, int64_t kvg) {
  return kvg % hf == 0 ? kvg / hf : 1;
}

/// The mean over tokens of the heads-pooled `input [B, H, N, D]` (`hf`
/// heads a group, each source head repeated `kvg` times): a new f32 buffer
/// [B, G / rep, D] (the caller deallocates it; rep = centerReplicas: the
/// center of group g is at g / rep, computed once for the rep groups that
/// share it, from the first of them), by the two center kernels.
Value meanOverTokens(ImplicitLocOpBuilder &b, Value input, int64_t hf,
                     int64_t kvg, Value batch, Value allGroups) {
  KernelBuilder kb{b};
  int64_t rep = centerReplicas(hf, kvg);
  Value groups = rep == 1 ? allGroups : kb.div(allGroups, rep);
  auto inType = cast<MemRefType>(input.getType());
  int64_t dim = inType.getDimSize(3);
  int64_t width = MeanPooling::chunkWidth(inType);
  MeanPooling pool{input, hf, kvg, width};
  Type f32 = b.getF32Type();
  Value seq = memref::DimOp::create(b, input, 2);
  Value per = kb.maxU(kb.ceilDiv(seq, kSplits), kb.idx(kMinSplitTokens));
  Value splits = kb.maxU(kb.ceilDiv(seq, per), kb.idx(1));
  Value dimV = kb.idx(dim);
  auto dyn = [&](int64_t rank) {
    return MemRefType::get(SmallVector<int64_t>(rank, ShapedType::kDynamic),
                           f32);
  };
  Value partial = memref::AllocOp::create(
      b, dyn(4), ValueRange{batch, groups, splits, dimV});
  Value aligned = width > 1 ? rowsAligned(b, input, 16) : Value();
  auto vecType = VectorType::get({width}, f32);
  // A CTA per (batch, distinct group, split) of `rows` rows of chunkCount
  // threads: thread (row, chunk) sums the chunk of the split's tokens row,
  // row + rows, ... ascending (kSplitUnroll loads before their adds), so a
  // round of the CTA reads kSplitUnroll * rows consecutive tokens; the
  // rows' sums meet in workgroup memory and thread d adds them in row order.
  int64_t chunkCount = dim / width;
  int64_t rows = std::max<int64_t>(1, kThreads / chunkCount);
  int64_t threads = rows * chunkCount;
  buildLaunch(
      b, kb.mul(kb.mul(batch, groups), splits), threads,
      {workgroupMemRef({rows, dim}, f32)},
      "unisparse_compress_outlier_partial_sums",
      [&](ImplicitLocOpBuilder &lb, Value tid, Value bid, ValueRange wg) {
        KernelBuilder k{lb};
        SmallVector<Value> at = k.delinearize(bid, {batch, groups, splits});
        Value row = k.div(tid, chunkCount);
        Value d = k.mul(k.rem(tid, chunkCount), width);
        Value first = k.add(k.mul(at[2], per), row);
        Value last = k.minU(k.mul(k.add(at[2], 1), per), seq);
        Value count = k.ceilDiv(k.sub(k.maxU(last, first), first), rows);
        Value total =
            alignedOrNot(k, aligned, {vecType}, 16,
                         [&](llvm::MaybeAlign al) -> SmallVector<Value> {
                           return {unrolledSum(
                               k, k.idx(0), count, zeros(k, width),
                               kSplitUnroll, [&](Value i) {
                                 return pooledToken(
                                     k, pool, at[0], k.mul(at[1], rep),
                                     k.add(first, k.mul(i, rows)), d, al);
                               })};
                         })
                .front();
        vector::StoreOp::create(k.b, total, wg[0], {row, d});
        gpu::BarrierOp::create(lb);
        for (int64_t d0 = 0; d0 < dim; d0 += threads) {
          Value at3 = k.add(tid, d0);
          auto sumRows = [&] {
            Value sum = k.load(wg[0], {k.idx(0), at3});
            for (int64_t r = 1; r < rows; ++r)
              sum = k.fadd(sum, k.load(wg[0], {k.idx(r), at3}));
            k.store(sum, partial, {at[0], at[1], at[2], at3});
          };
          if (d0 + threads <= dim)
            sumRows();
          else
            k.ifThen(k.ult(at3, dimV), sumRows);
        }
      });
  Value center =
      memref::AllocOp::create(b, dyn(3), ValueRange{batch, groups, dimV});
  // A CTA of kWarp warps per (batch, group, kWarp coordinates): warp w
  // sums splits w, w + 32, ... ascending for coordinate lane (a warp's
  // loads are 128 contiguous bytes), the warps' sums meet in workgroup
  // memory, and warp 0 adds them in warp order and divides by N. (A warp
  // per coordinate with a lane per split read 4 bytes a 32-byte sector:
  // 14.5 us for the queries at 32K, ncu, session 14.)
  Value dChunks = kb.idx(dim / kWarp);
  buildLaunch(
      b, kb.mul(kb.mul(batch, groups), dChunks), kWarp * kWarp,
      {workgroupMemRef({kWarp, kWarp}, f32)},
      "unisparse_compress_outlier_center",
      [&](ImplicitLocOpBuilder &lb, Value tid, Value bid, ValueRange wg) {
        KernelBuilder k{lb};
        SmallVector<Value> at = k.delinearize(bid, {batch, groups, dChunks});
        Value warp = k.div(tid, kWarp), lane = k.rem(tid, kWarp);
        Value d = k.add(k.mul(at[2], kWarp), lane);
        Value count = k.ceilDiv(k.sub(k.maxU(splits, warp), warp), kWarp);
        Value part =
            unrolledSum(k, k.idx(0), count, k.f32(0.0f), kUnroll, [&](Value i) {
              Value split = k.add(warp, k.mul(i, kWarp));
              return k.load(partial, {at[0], at[1], split, d});
            });
        k.store(part, wg[0], {warp, lane});
        gpu::BarrierOp::create(lb);
        k.ifThen(k.eq(warp, 0), [&] {
          Value total = k.load(wg[0], {k.idx(0), lane});
          for (int64_t w = 1; w < kWarp; ++w)
            total = k.fadd(total, k.load(wg[0], {k.idx(w), lane}));
          k.store(arith::DivFOp::create(lb, total, indexToF32(k, seq)), center,
                  {at[0], at[1], d});
        });
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
        centerRep(centerReplicas(op.getHeadFactor(), op.getKvGroup())),
        width(pool.width), chunks((op.getSeqFactor() + kChunk - 1) / kChunk) {}

  /// Composite `t` of groups g0 .. g0 + groups - 1 of batch `bi` (groups
  /// that pool the same heads: the same tokens and center), with loads of
  /// the input at `inAlign` and stores at `outAlign`; `full`: the caller
  /// knows the composite has all its c tokens (token indices and their
  /// validity static), else count = min(c, N - t c) tokens, the loads
  /// clamped. The tokens are loaded and their scores computed once; each
  /// group's heats, picks, rest and stores follow in turn, with the bits
  /// one group alone would get.
  void build(Value bi, Value g0, int64_t groups, Value t,
             llvm::MaybeAlign inAlign, llvm::MaybeAlign outAlign, bool full) {
    this->bi = bi;
    this->g = g0;
    this->t = t;
    this->inAlign = inAlign;
    this->full = full;
    Type f32 = k.b.getF32Type();
    auto vecType = VectorType::get({width}, f32);
    first = k.mul(t, c);
    count = full ? k.idx(c) : k.minU(k.idx(c), k.sub(seq, first));
    lastToken = k.sub(count, k.idx(1));
    d = k.mul(lane, width);
    laneToken = arith::AndIOp::create(
        k.b, arith::ShRUIOp::create(k.b, lane, k.idx(2)), k.idx(kChunk - 1));
    llvm::Align stat(vectorElements(1, 4 * width));
    Value centerGroup = centerRep == 1 ? g0 : k.div(g0, centerRep);
    Value centerV = vector::LoadOp::create(
        k.b, vecType, center, ValueRange{bi, centerGroup, d}, false, stat);

    // The tokens are loaded once, kept in registers for the later passes
    // (c V <= kOutlierCompressMaxLaneValues a lane: the kernel's limit).
    tokens.clear();

    // Scores of the composite's tokens, kChunk at a time: each lane's
    // V-term partials, reduce-scattered over the warp, so that lane l holds
    // token 8 j + ((l >> 2) & 7) of chunk j in register j.
    SmallVector<Value> scores;
    for (int64_t j = 0; j < chunks; ++j) {
      int64_t n = std::min(kChunk, c - j * kChunk);
      SmallVector<Value> xs;
      for (int64_t u = 0; u < n; ++u)
        xs.push_back(tokenAt(j * kChunk + u));
      tokens.append(xs);
      SmallVector<Value> sq(kChunk, k.f32(0.0f));
      for (int64_t u = 0; u < n; ++u) {
        Value dv = k.fsub(xs[u], centerV);
        sq[u] = dotElements(k, dv, dv);
      }
      scores.push_back(reduceScatter(sq));
    }
    for (int64_t i = 0; i < groups; ++i) {
      g = i ? k.add(g0, i) : g0;
      finishGroup(scores, outAlign);
    }
  }

  /// Group g's heats (hot > 0), picks, rest and stores, from the tokens and
  /// scores build() kept.
  void finishGroup(ArrayRef<Value> scores, llvm::MaybeAlign outAlign) {
    auto vecType = VectorType::get({width}, k.b.getF32Type());
    llvm::Align stat(vectorElements(1, 4 * width));
    // Heats as the scores: each lane's V-term partials of kChunk tokens,
    // reduce-scattered.
    SmallVector<Value> heats;
    if (hot > 0) {
      Value probeV = vector::LoadOp::create(k.b, vecType, probe,
                                            ValueRange{bi, g, d}, false, stat);
      for (int64_t j = 0; j < chunks; ++j) {
        int64_t n = std::min(kChunk, c - j * kChunk);
        SmallVector<Value> dot(kChunk, k.f32(0.0f));
        for (int64_t u = 0; u < n; ++u)
          dot[u] = dotElements(k, tokens[j * kChunk + u], probeV);
        heats.push_back(reduceScatter(dot));
      }
    }

    // The picks, hot ones first.
    idx.clear();
    SmallVector<Value> taken(chunks, falseV());
    for (int64_t i = 0; i < r; ++i) {
      Value pick = pickOutlier(i < hot ? heats : scores, taken);
      idx.push_back(pick);
      for (int64_t j = 0; j < chunks; ++j)
        taken[j] = k.orI(taken[j], k.eq(slotOf(j), pick));
    }

    // The rest: the real slots no pick took, or all of them if none is left.
    Value picked = k.idx(0);
    for (Value pick : idx)
      picked = k.add(picked, k.select(k.eq(pick, c), k.idx(0), k.idx(1)));
    Value restCount = k.sub(count, picked);
    anyRest = k.ult(k.idx(0), restCount);
    Value n = indexToF32(k, k.select(anyRest, restCount, count));
    Value sums =
        overTokens({zeros(k, width)}, [&](int64_t a, Value x, ValueRange acc) {
          return SmallVector<Value>{
              restOnly(a, acc[0], [&] { return k.fadd(acc[0], x); })};
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
          overTokens({zeros(k, width)}, [&](int64_t a, Value x,
                                            ValueRange acc) {
            return SmallVector<Value>{restOnly(a, acc[0], [&] {
              Value dv = k.fsub(x, mean);
              return math::FmaOp::create(k.b, dv, dv, acc[0]).getResult();
            })};
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
  int64_t c, r, hot, centerRep, width, chunks;
  Value bi, g, t, first, count, lastToken, d, laneToken, anyRest;
  llvm::MaybeAlign inAlign;
  bool full = false;
  SmallVector<Value> idx;
  /// The composite's tokens as the score pass loaded them (slot order).
  SmallVector<Value> tokens;
  /// Per xor mask 16, 8, 4: whether the lane has that bit (lazily built).
  llvm::DenseMap<int32_t, Value> laneBits;

  Value falseV() {
    return arith::ConstantOp::create(k.b, k.b.getBoolAttr(false));
  }

  /// The slot the lane holds in its register `j`.
  Value slotOf(int64_t j) { return k.add(laneToken, kChunk * j); }

  /// Token `tok`'s heads pooled, the lane's coordinates.
  Value token(Value tok) {
    return pooledToken(k, pool, bi, g, tok, d, inAlign);
  }

  /// Slot `a`'s token (past the composite's last token: the last one).
  Value tokenAt(int64_t a) {
    Value at = full ? k.idx(a) : k.minU(k.idx(a), lastToken);
    return token(k.add(first, at));
  }

  /// Slot `a` is a real one (a constant true when the composite is full).
  Value validAt(int64_t a) {
    if (full)
      return arith::ConstantOp::create(k.b, k.b.getBoolAttr(true));
    return k.ult(k.idx(a), count);
  }

  /// The lane's bit `mask` is set (an i1).
  Value laneBit(int32_t mask) {
    Value &bit = laneBits[mask];
    if (!bit)
      bit = arith::CmpIOp::create(k.b, arith::CmpIPredicate::ne,
                                  k.andI(lane, k.idx(mask)), k.idx(0));
    return bit;
  }

  /// The warp sums of kChunk per-lane values (one per token of a chunk),
  /// each as a 5-step butterfly (x += shuffle_xor(x, m), m = 16, 8, 4, 2,
  /// 1) forms it, with a third of its shuffles: three halving exchanges
  /// (xor 16, 8, 4; the lanes with the bit set keep the upper half of the
  /// tokens and send the lower) leave token (l >> 2) & 7 in lane l summed
  /// over the lanes that differ in bits 2-4, then two butterfly steps (xor
  /// 2, 1). Every add has the butterfly's operands at that level in the
  /// same order, so the bits are the butterfly's, and the four lanes
  /// holding a token hold the same bits.
  Value reduceScatter(ArrayRef<Value> partials) {
    SmallVector<Value> p(partials);
    for (int32_t mask = 16; mask >= 4; mask /= 2) {
      Value hi = laneBit(mask);
      size_t half = p.size() / 2;
      SmallVector<Value> next;
      for (size_t i = 0; i < half; ++i) {
        Value send = k.select(hi, p[i], p[i + half]);
        Value keep = k.select(hi, p[i + half], p[i]);
        next.push_back(k.fadd(keep, k.shuffleXor(send, mask)));
      }
      p = next;
    }
    Value x = p.front();
    for (int32_t mask = 2; mask >= 1; mask /= 2)
      x = k.fadd(x, k.shuffleXor(x, mask));
    return x;
  }

  /// Folds `body(slot, x, acc)` over the composite's slots in ascending
  /// order (unrolled: slot a static, x its token from `tokens`); past the
  /// last real slot the fold keeps `acc`.
  SmallVector<Value> overTokens(
      ValueRange init,
      function_ref<SmallVector<Value>(int64_t, Value, ValueRange)> body) {
    SmallVector<Value> acc(init);
    for (int64_t a = 0; a < c; ++a)
      acc = body(a, tokens[a], acc);
    return acc;
  }

  /// Slot `a` belongs to the rest (a real slot no pick took, or any real
  /// slot when the picks took them all).
  Value inRest(int64_t a) {
    Value slot = k.idx(a);
    Value free = arith::ConstantOp::create(k.b, k.b.getBoolAttr(true));
    for (Value pick : idx)
      free = k.andI(free, arith::CmpIOp::create(k.b, arith::CmpIPredicate::ne,
                                                slot, pick));
    return k.andI(
        validAt(a),
        k.orI(free, arith::XOrIOp::create(k.b, anyRest,
                                          arith::ConstantOp::create(
                                              k.b, k.b.getBoolAttr(true)))));
  }

  /// `next()` if slot `a` belongs to the rest, else `acc`: a branch (the
  /// same way in every lane) rather than a select of each element, so that
  /// the adds are predicated, not computed and then selected.
  Value restOnly(int64_t a, Value acc, function_ref<Value()> next) {
    return k.ifElseValue(inRest(a), acc.getType(), next, [&] { return acc; });
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
  /// of before(); a warp arg-max, its result the same in every lane. The
  /// lanes that differ only in bits 0-1 hold the same slots, so the
  /// exchanges are over bits 2-4.
  Value pickOutlier(ArrayRef<Value> values, ArrayRef<Value> taken) {
    Type i32 = k.b.getI32Type();
    Value none = k.i32(static_cast<int32_t>(c));
    Value bestV = k.negInf(), bestS = none;
    for (int64_t j = 0; j < chunks; ++j) {
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
    for (int32_t mask = 16; mask >= 4; mask /= 2) {
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
    value = k.narrowF32(value, element);
    vector::StoreOp::create(k.b, value, op.getInit(),
                            ValueRange{bi, g, t, k.idx(slot), d},
                            /*nontemporal=*/false, alignment);
  }
};

/// The composite kernel's hint where a warp serves a run of `share` > 1
/// groups: 3 CTAs (12 warps) an SM, the occupancy of one group a warp
/// (ptxas 13.0, the default's keys at D 128, c 32: 168 registers and 16
/// bytes of spill under it, 227 registers and 8 warps an SM without). Only
/// up to c = 32 (4 chunks of scores and heats a lane): more chunks at the
/// same c V (c 64 at D 64, c 128 at D 32) hold more registers than 168.
DictionaryAttr compositeKernelAttributes(OpBuilder &b, int64_t share,
                                         int64_t c) {
  if (share == 1 || c > 4 * kChunk)
    return DictionaryAttr();
  return b.getDictionaryAttr(minCtasPerSmAttr(b, 3));
}

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
        vectorElements(1, width * inType.getElementTypeBitWidth() / 8);
    int64_t outBytes = vectorElements(
        1,
        width * cast<MemRefType>(out.getType()).getElementTypeBitWidth() / 8);
    Value aligned;
    if (width > 1)
      aligned = kb.andI(rowsAligned(b, input, inBytes),
                        rowsAligned(b, out, outBytes));
    MeanPooling pool{input, hf, kvg, width};
    // A warp per (batch, composite, run of `share` groups that pool the same
    // heads: the kv_group replicas of a GQA key head), the runs innermost.
    int64_t share = centerReplicas(hf, kvg);
    Value runs = share == 1 ? groups : kb.div(groups, share);
    Value items = kb.mul(kb.mul(batch, comps), runs);
    Value blocks = kb.maxU(kb.ceilDiv(items, kCompositeWarps), kb.idx(1));
    buildLaunch(
        b, blocks, 32 * kCompositeWarps, {}, "unisparse_compress_outlier",
        [&](ImplicitLocOpBuilder &lb, Value tid, Value bid, ValueRange) {
          KernelBuilder k{lb};
          Value lane = k.rem(tid, 32);
          Value item = k.add(k.mul(bid, kCompositeWarps), k.div(tid, 32));
          k.ifThen(k.ult(item, items), [&] {
            SmallVector<Value> at = k.delinearize(item, {batch, comps, runs});
            Value g0 = share == 1 ? at[2] : k.mul(at[2], share);
            auto body = [&](llvm::MaybeAlign in, llvm::MaybeAlign outAl,
                            bool full) {
              CompositeWarp(k, op, pool, center, probe, seq, lane)
                  .build(at[0], g0, share, at[1], in, outAl, full);
            };
            // Every composite but a last partial one has all its c tokens:
            // for those the same warp with static token offsets and no
            // clamps or validity tests (the branch is uniform over the
            // warp).
            auto fullOrNot = [&](llvm::MaybeAlign in, llvm::MaybeAlign outAl) {
              Value full = k.ule(k.mul(k.add(at[1], 1), c), seq);
              k.ifThenElse(
                  full, [&] { body(in, outAl, true); },
                  [&] { body(in, outAl, false); });
            };
            if (!aligned) {
              fullOrNot(llvm::MaybeAlign(), llvm::MaybeAlign());
              return;
            }
            // Rows not aligned to the lane's vector (rare): element loads,
            // one form for all composites.
            k.ifThenElse(
                aligned,
                [&] { fullOrNot(llvm::Align(inBytes), llvm::Align(outBytes)); },
                [&] { body(llvm::MaybeAlign(), llvm::MaybeAlign(), false); });
          });
        },
        /*dynamicSharedBytes=*/Value(), compositeKernelAttributes(b, share, c));
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
