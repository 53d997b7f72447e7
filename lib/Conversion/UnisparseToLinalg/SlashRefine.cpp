//===- SlashRefine.cpp - unisparse.slash_refine -> linalg + scf -----------===//
//
// The two-level refinement in five stages, M = last_q rows (static), P =
// M - 1, m = min(M, N) of them real (row r is query i = N - M + r, real when
// i >= 0), all f32:
//
//   1. last rows (structured): the last m rows of q copied (linalg.copy) to
//      row M - m of a zero [B, Hq, M, D]; heads expanded to [Hkv, G]; the
//      logits by one contraction (b, kv, gg, r, j, d) against k [B, Hkv, N, D];
//      row max, exponentials and row sums masked by j <= N - M + r; the shares
//      summed over the group's c_h heads (an expand_shape of the heads and a
//      reduction) times 1 / (m c_h): pv [B, Hg, M, N];
//   2. evidence (structured): v0[j] = sum_r pv[r, j]; in offset space e =
//      N - 1 - d (so that the index of a pair is affine: e = j + P - r),
//      with pv and v0 padded by P zeros on both sides (pvL, v0L), s0[e] =
//      sum_r pvL[r, e + r] and slash[e] = sum_r over the pairs with
//      v0L[e + r] < s0[e] (not "v0 >= s0") of pvL[r, e + r];
//   3. offsets (structured): n_offsets rounds of an arg-max reduction over
//      e with d = N - 1 - e > local_blocks * block (ties to the larger e,
//      the smaller offset), each masking its winner, in an scf.for; an
//      offset with evidence <= 0 is -1;
//   4. probe rows (scf): the candidate keys i - d + e sit at positions that
//      the data chose (the offsets), so their logits are a gather: an
//      scf.forall over the (b, g, I) rows, scf.for loops over the probe
//      rows, the group's heads, the forced keys (an online log-sum-exp over
//      [0, block) with the sink and [lo, i]) and the candidates (each key
//      once: a candidate within `width` of an earlier offset's key is
//      skipped), with tensor.extract at the computed indices. No indexing
//      map can describe these reads; as a linalg.generic with
//      tensor.extract in its body it would be the same loop nest with a
//      misleading structure, so it is written as the loops it is;
//      on the host, a range of forced keys (contiguous) gets its logits as
//      one (d, j) linalg.generic over kT, and their log-sum-exp is the max,
//      then the sum of exp(x - max) in key order (as the reference);
//   5. combination (structured): per row the total and the forced blocks'
//      sum (one reduction, two outputs), then max(s / tot, E * f / tot)
//      element by element, with the NaN rules of the op; with refine_norm
//      one more reduction, the row sum S of E * f / tot, and E * f / tot
//      divided by 1 + S.
//
// Host loops (hostLoops, unisparse-to-cpu): k is transposed once to kT
// [B, Hkv, D, N] (f32) and every reduction over d (the logits) or r (the
// evidence) runs outside a parallel loop over keys or entries, so that the
// host vectorizes the innermost loop without reassociating a sum: each
// logit and evidence sum is the same sequence of f32 operations as with
// the reduced dim innermost (the GPU pipeline's loops, which keep it there).
//
// The lowering needs static head counts (as unisparse-decompose does).
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::detail;

namespace {
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

using BodyFn = function_ref<void(ImplicitLocOpBuilder &, ValueRange)>;

/// A linalg.generic over `numLoops` loops, the last `numReductions` reduced,
/// reading `ins` and writing `outs` through `maps`; `body` yields.
SmallVector<Value> generic(ImplicitLocOpBuilder &b, ValueRange ins,
                           ValueRange outs, ArrayRef<AffineMap> maps,
                           unsigned numLoops, unsigned numReductions,
                           BodyFn body) {
  auto op = linalg::GenericOp::create(
      b, TypeRange(outs), ins, outs, maps,
      iterators(numLoops - numReductions, numReductions),
      [&](OpBuilder &nb, Location loc, ValueRange args) {
        ImplicitLocOpBuilder lb(loc, nb);
        body(lb, args);
      });
  return SmallVector<Value>(op.getResults());
}

/// `if cond then (then()) else (passThrough)`, both yielding values of the
/// types of `passThrough`.
SmallVector<Value>
ifThen(ImplicitLocOpBuilder &b, Value cond, ValueRange passThrough,
       function_ref<SmallVector<Value>(ImplicitLocOpBuilder &)> then) {
  auto op = scf::IfOp::create(
      b, cond,
      [&](OpBuilder &nb, Location loc) {
        ImplicitLocOpBuilder ib(loc, nb);
        scf::YieldOp::create(ib, then(ib));
      },
      [&](OpBuilder &nb, Location loc) {
        scf::YieldOp::create(nb, loc, passThrough);
      });
  return SmallVector<Value>(op.getResults());
}

class SlashRefineLowering {
public:
  SlashRefineLowering(SlashRefineOp op, ImplicitLocOpBuilder &b, int64_t hq,
                      int64_t hkv, int64_t hg, bool hostLoops)
      : op(op), b(b), ctx(op.getContext()), f32(b.getF32Type()),
        i64(b.getI64Type()), M(op.getLastQ()), hq(hq), hkv(hkv), hg(hg),
        G(hq / hkv), ch(hq / hg), hostLoops(hostLoops) {
    Value q = op.getQ();
    batch = tensor::getMixedSize(b, b.getLoc(), q, 0);
    seq = tensor::getMixedSize(b, b.getLoc(), q, 2);
    headDim = tensor::getMixedSize(b, b.getLoc(), q, 3);
    blocks = tensor::getMixedSize(b, b.getLoc(), op.getScores(), 2);
    n = toValue(b, seq);
    scale = softmaxScale(b, op.getScale().convertToDouble(), headDim);
  }

  Value lower() {
    Value shares = lastRowShares();
    Value slash = slashEvidence(shares);
    Value offsets = topOffsets(slash);
    Value probe = probeScores(offsets);
    return combine(probe);
  }

private:
  SlashRefineOp op;
  ImplicitLocOpBuilder &b;
  MLIRContext *ctx;
  Type f32, i64;
  int64_t M, hq, hkv, hg, G, ch;
  /// The host's loop orders (keys innermost, kT); false: the GPU loops'.
  bool hostLoops;
  OpFoldResult batch, seq, headDim, blocks;
  Value n, scale;
  /// With hostLoops, k transposed: [B, Hkv, D, N], f32.
  Value kT;

  Value cIndex(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value cF32(ImplicitLocOpBuilder &lb, float v) {
    return arith::ConstantOp::create(lb, lb.getF32FloatAttr(v));
  }
  OpFoldResult attr(int64_t v) { return b.getIndexAttr(v); }
  /// `base + c` as an OpFoldResult.
  OpFoldResult plus(OpFoldResult base, int64_t c) {
    AffineExpr s0 = getAffineSymbolExpr(0, ctx);
    return affine::makeComposedFoldedAffineApply(b, b.getLoc(), s0 + c, {base});
  }
  Value filled(ArrayRef<OpFoldResult> sizes, Type type, TypedAttr value) {
    return filledTensor(b, sizes, type, value);
  }
  Value zeros(ArrayRef<OpFoldResult> sizes) {
    return filled(sizes, f32, b.getF32FloatAttr(0.0f));
  }
  AffineMap map(unsigned numDims, ArrayRef<unsigned> results) {
    return dimsMap(ctx, numDims, results);
  }

  /// Stage 1: pv [B, Hg, M, N], the group's mean softmax of the last rows.
  Value lastRowShares() {
    Value q = op.getQ(), k = op.getK();
    // m = min(M, N) real rows, from row N - m of q to row M - m.
    Value mV = arith::MinSIOp::create(b, cIndex(M), n);
    Value first = arith::SubIOp::create(b, n, mV);
    Value at = arith::SubIOp::create(b, cIndex(M), mV);
    SmallVector<OpFoldResult> rowsSizes = {batch, attr(hq), attr(M), headDim};
    Value rows = filled(
        rowsSizes, getElementTypeOrSelf(q.getType()),
        cast<TypedAttr>(b.getZeroAttr(getElementTypeOrSelf(q.getType()))));
    // A linalg.copy into the slice (not an insert_slice of q's slice, which
    // bufferizes to a strided memref.copy that the GPU path cannot lower).
    Value real = sliceDim(b, q, 2, first, mV);
    Value dst = sliceDim(b, rows, 2, at, mV);
    Value copied = linalg::CopyOp::create(b, real, dst).getResult(0);
    rows = insertDim(b, copied, rows, 2, at);
    Value qx = expandDim(b, rows, 1, {attr(hkv), attr(G)});

    // Logits: each a sum over ascending d of q * k (f32, not reassociated).
    SmallVector<OpFoldResult> xSizes = {batch, attr(hkv), attr(G), attr(M),
                                        seq};
    auto multiplyAdd = [&](ImplicitLocOpBuilder &lb, ValueRange a) {
      Value p = arith::MulFOp::create(lb, toF32(lb, lb.getLoc(), a[0]),
                                      toF32(lb, lb.getLoc(), a[1]));
      linalg::YieldOp::create(lb,
                              arith::AddFOp::create(lb, a[2], p).getResult());
    };
    Value logits;
    if (hostLoops) {
      // Host loops: k transposed to kT [B, Hkv, D, N] (f32, also the probe
      // rows' forced keys), then (b, kv, gg, r, d, j) with d reduced and the
      // keys j innermost and parallel: the loop over keys vectorizes
      // without reassociating a sum, and every logit is the same sequence
      // of operations as with d innermost.
      kT = generic(
          b, {k},
          {tensor::EmptyOp::create(
              b, SmallVector<OpFoldResult>{batch, attr(hkv), headDim, seq},
              f32)},
          {map(4, {0, 1, 3, 2}), AffineMap::getMultiDimIdentityMap(4, ctx)}, 4,
          0, [&](ImplicitLocOpBuilder &lb, ValueRange a) {
            linalg::YieldOp::create(lb, toF32(lb, lb.getLoc(), a[0]));
          })[0];
      using utils::IteratorType;
      Value init = zeros(xSizes);
      logits =
          linalg::GenericOp::create(
              b, TypeRange{init.getType()}, ValueRange{qx, kT},
              ValueRange{init},
              ArrayRef<AffineMap>{map(6, {0, 1, 2, 3, 4}), map(6, {0, 1, 4, 5}),
                                  map(6, {0, 1, 2, 3, 5})},
              ArrayRef<IteratorType>{
                  IteratorType::parallel, IteratorType::parallel,
                  IteratorType::parallel, IteratorType::parallel,
                  IteratorType::reduction, IteratorType::parallel},
              [&](OpBuilder &nb, Location loc, ValueRange a) {
                ImplicitLocOpBuilder lb(loc, nb);
                multiplyAdd(lb, a);
              })
              .getResult(0);
    } else {
      // (b, kv, gg, r, j, d), d reduced.
      logits = generic(b, {qx, k}, {zeros(xSizes)},
                       {map(6, {0, 1, 2, 3, 5}), map(6, {0, 1, 4, 5}),
                        map(6, {0, 1, 2, 3, 4})},
                       6, 1, multiplyAdd)[0];
    }

    // Key j is visible from row r iff j <= N - M + r, i.e. j + M <= N + r.
    auto visible = [&](ImplicitLocOpBuilder &lb) {
      Value r = linalg::IndexOp::create(lb, 3);
      Value j = linalg::IndexOp::create(lb, 4);
      Value lhs =
          arith::AddIOp::create(lb, j, arith::ConstantIndexOp::create(lb, M));
      return arith::CmpIOp::create(lb, arith::CmpIPredicate::sle, lhs,
                                   arith::AddIOp::create(lb, n, r));
    };
    SmallVector<OpFoldResult> rowSizes(xSizes.begin(), xSizes.end() - 1);
    auto id5 = AffineMap::getMultiDimIdentityMap(5, ctx);
    auto row5 = map(5, {0, 1, 2, 3});
    Value rowMax = generic(
        b, {logits}, {filled(rowSizes, f32, b.getF32FloatAttr(kNegInf))},
        {id5, row5}, 5, 1, [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value x = arith::MulFOp::create(lb, a[0], scale);
          x = arith::SelectOp::create(lb, visible(lb), x, cF32(lb, kNegInf));
          linalg::YieldOp::create(
              lb, arith::MaxNumFOp::create(lb, a[1], x).getResult());
        })[0];
    Value exps = generic(
        b, {rowMax}, {logits}, {row5, id5}, 5, 0,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value x = arith::MulFOp::create(lb, a[1], scale);
          Value e = math::ExpOp::create(lb, arith::SubFOp::create(lb, x, a[0]));
          linalg::YieldOp::create(
              lb, arith::SelectOp::create(lb, visible(lb), e, cF32(lb, 0.0f))
                      .getResult());
        })[0];
    Value rowSum =
        generic(b, {exps}, {zeros(rowSizes)}, {id5, row5}, 5, 1,
                [&](ImplicitLocOpBuilder &lb, ValueRange a) {
                  linalg::YieldOp::create(
                      lb, arith::AddFOp::create(lb, a[1], a[0]).getResult());
                })[0];
    // Shares (a padded row, with no visible key, has none).
    Value shares = generic(
        b, {rowSum}, {exps}, {row5, id5}, 5, 0,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value zero = cF32(lb, 0.0f);
          Value any =
              arith::CmpFOp::create(lb, arith::CmpFPredicate::OGT, a[0], zero);
          Value p = arith::DivFOp::create(lb, a[1], a[0]);
          linalg::YieldOp::create(
              lb, arith::SelectOp::create(lb, any, p, zero).getResult());
        })[0];

    // The group's sum over its c_h heads, divided by m * c_h.
    Value perHead = collapseDims(b, shares, 1, 2); // [B, Hq, M, N]
    Value grouped = expandDim(b, perHead, 1, {attr(hg), attr(ch)});
    Value mF =
        arith::SIToFPOp::create(b, f32, arith::IndexCastOp::create(b, i64, mV));
    Value norm = arith::DivFOp::create(
        b, cF32(b, 1.0f),
        arith::MulFOp::create(b, mF, cF32(b, static_cast<float>(ch))));
    SmallVector<OpFoldResult> pvSizes = {batch, attr(hg), attr(M), seq};
    Value sums =
        generic(b, {grouped}, {zeros(pvSizes)},
                {map(5, {0, 1, 4, 2, 3}), map(5, {0, 1, 2, 3})}, 5, 1,
                [&](ImplicitLocOpBuilder &lb, ValueRange a) {
                  linalg::YieldOp::create(
                      lb, arith::AddFOp::create(lb, a[1], a[0]).getResult());
                })[0];
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    return generic(b, {}, {sums}, {id4}, 4, 0,
                   [&](ImplicitLocOpBuilder &lb, ValueRange a) {
                     linalg::YieldOp::create(
                         lb, arith::MulFOp::create(lb, a[0], norm).getResult());
                   })[0];
  }

  /// Stage 2: the slash evidence in offset space, [B, Hg, N + P], entry e
  /// for offset d = N - 1 - e.
  Value slashEvidence(Value pv) {
    int64_t P = M - 1;
    // Sums over the rows r, ascending from 0. On the GPU the loops are
    // (b, g, x, r), r reduced innermost; on the host (b, g, r, x), r
    // reduced outside the parallel x, so that the loop over x vectorizes
    // (each sum the same sequence of operations).
    using utils::IteratorType;
    SmallVector<IteratorType> rowIters =
        hostLoops ? SmallVector<IteratorType>{IteratorType::parallel,
                                              IteratorType::parallel,
                                              IteratorType::reduction,
                                              IteratorType::parallel}
                  : iterators(3, 1);
    auto rowSum = [&](Value in, AffineMap inMap, AffineMap outMap,
                      ArrayRef<OpFoldResult> sizes) {
      Value init = zeros(sizes);
      return linalg::GenericOp::create(
                 b, TypeRange{init.getType()}, ValueRange{in}, ValueRange{init},
                 ArrayRef<AffineMap>{inMap, outMap}, rowIters,
                 [&](OpBuilder &nb, Location loc, ValueRange a) {
                   linalg::YieldOp::create(
                       nb, loc,
                       arith::AddFOp::create(nb, loc, a[1], a[0]).getResult());
                 })
          .getResult(0);
    };
    // The loop dims: x (a key j or an offset-space entry e) and r.
    AffineExpr d0 = getAffineDimExpr(0, ctx), d1 = getAffineDimExpr(1, ctx),
               x = getAffineDimExpr(hostLoops ? 3 : 2, ctx),
               r = getAffineDimExpr(hostLoops ? 2 : 3, ctx);
    auto xMap = AffineMap::get(4, 0, {d0, d1, x}, ctx);
    SmallVector<OpFoldResult> vSizes = {batch, attr(hg), seq};
    Value v0 =
        rowSum(pv, AffineMap::get(4, 0, {d0, d1, r, x}, ctx), xMap, vSizes);
    OpFoldResult wide = plus(seq, 2 * P), eSize = plus(seq, P);
    Value pvL =
        insertDim(b, pv, zeros({batch, attr(hg), attr(M), wide}), 3, attr(P));
    Value v0L = insertDim(b, v0, zeros({batch, attr(hg), wide}), 2, attr(P));
    // (b, g, e, r) or (b, g, r, e), r reduced; pvL read at column e + r
    // (the lower dim first, d2 + d3).
    AffineExpr column = hostLoops ? r + x : x + r;
    auto pvMap = AffineMap::get(4, 0, {d0, d1, r, column}, ctx);
    auto v0Map = AffineMap::get(4, 0, {d0, d1, column}, ctx);
    auto eMap = xMap;
    SmallVector<OpFoldResult> eSizes = {batch, attr(hg), eSize};
    Value s0 = rowSum(pvL, pvMap, eMap, eSizes);
    Value slashInit = zeros(eSizes);
    return linalg::GenericOp::create(
               b, TypeRange{slashInit.getType()}, ValueRange{pvL, v0L, s0},
               ValueRange{slashInit},
               ArrayRef<AffineMap>{pvMap, v0Map, eMap, eMap}, rowIters,
               [&](OpBuilder &nb, Location loc, ValueRange a) {
                 ImplicitLocOpBuilder lb(loc, nb);
                 // The pair goes to the slash unless v0 >= s0.
                 Value toSlash = arith::CmpFOp::create(
                     lb, arith::CmpFPredicate::ULT, a[1], a[2]);
                 Value add =
                     arith::SelectOp::create(lb, toSlash, a[0], cF32(lb, 0.0f));
                 linalg::YieldOp::create(
                     lb, arith::AddFOp::create(lb, a[3], add).getResult());
               })
        .getResult(0);
  }

  /// Stage 3: the offsets [B, Hg, n_offsets] (i64, -1 where none).
  Value topOffsets(Value slash) {
    int64_t block = op.getBlock(), local = op.getLocalBlocks();
    // local_blocks * block, saturated: no offset exceeds a larger bound.
    int64_t maxI64 = std::numeric_limits<int64_t>::max();
    int64_t minOffset =
        local > (maxI64 - 1) / block ? maxI64 - 1 : local * block;
    Value nI64 = arith::IndexCastOp::create(b, i64, n);
    Value lastI64 =
        arith::SubIOp::create(b, nI64, arith::ConstantIntOp::create(b, i64, 1));
    auto id3 = AffineMap::getMultiDimIdentityMap(3, ctx);
    auto row3 = map(3, {0, 1});
    // Offsets at most minOffset (and the padding, negative offsets) out.
    Value ev = generic(
        b, {}, {slash}, {id3}, 3, 0,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value e = arith::IndexCastOp::create(lb, i64,
                                               linalg::IndexOp::create(lb, 2));
          Value d = arith::SubIOp::create(lb, lastI64, e);
          Value far = arith::CmpIOp::create(
              lb, arith::CmpIPredicate::sgt, d,
              arith::ConstantIntOp::create(lb, i64, minOffset));
          linalg::YieldOp::create(
              lb, arith::SelectOp::create(lb, far, a[0], cF32(lb, kNegInf))
                      .getResult());
        })[0];
    int64_t nOffsets = op.getNOffsets();
    SmallVector<OpFoldResult> pairSizes = {batch, attr(hg)};
    SmallVector<OpFoldResult> offSizes = {batch, attr(hg), attr(nOffsets)};
    Value offsets = filled(offSizes, i64, b.getI64IntegerAttr(-1));
    SmallVector<Value> loop = forLoop(
        b, cIndex(0), cIndex(nOffsets), {ev, offsets},
        [&](ImplicitLocOpBuilder &lb, Value kk, ValueRange a) {
          ImplicitLocOpBuilder &sb = lb;
          // Arg-max over e: the largest evidence, ties to the larger e.
          SmallVector<Value> best = generic(
              sb, {a[0]},
              {filledTensor(sb, pairSizes, f32, sb.getF32FloatAttr(kNegInf)),
               filledTensor(sb, pairSizes, i64, sb.getI64IntegerAttr(-1))},
              {id3, row3, row3}, 3, 1,
              [&](ImplicitLocOpBuilder &gb, ValueRange x) {
                Value e = arith::IndexCastOp::create(
                    gb, i64, linalg::IndexOp::create(gb, 2));
                Value gt = arith::CmpFOp::create(gb, arith::CmpFPredicate::OGT,
                                                 x[0], x[1]);
                Value eq = arith::CmpFOp::create(gb, arith::CmpFPredicate::OEQ,
                                                 x[0], x[1]);
                Value later = arith::CmpIOp::create(
                    gb, arith::CmpIPredicate::sgt, e, x[2]);
                Value wins = arith::OrIOp::create(
                    gb, gt, arith::AndIOp::create(gb, eq, later));
                linalg::YieldOp::create(
                    gb,
                    ValueRange{arith::SelectOp::create(gb, wins, x[0], x[1]),
                               arith::SelectOp::create(gb, wins, e, x[2])});
              });
          // The offset N - 1 - e, or -1 without positive evidence.
          Value picked = generic(
              sb, {best[0], best[1]},
              {tensor::EmptyOp::create(sb, pairSizes, i64)},
              {map(2, {0, 1}), map(2, {0, 1}), map(2, {0, 1})}, 2, 0,
              [&](ImplicitLocOpBuilder &gb, ValueRange x) {
                Value pos = arith::CmpFOp::create(gb, arith::CmpFPredicate::OGT,
                                                  x[0], cF32(gb, 0.0f));
                Value d = arith::SubIOp::create(gb, lastI64, x[1]);
                linalg::YieldOp::create(
                    gb,
                    arith::SelectOp::create(
                        gb, pos, d, arith::ConstantIntOp::create(gb, i64, -1))
                        .getResult());
              })[0];
          Value column = expandDim(sb, picked, 1, {attr(hg), attr(1)});
          Value offs = insertDim(sb, column, a[1], 2, kk);
          Value masked = generic(sb, {best[1]}, {a[0]}, {row3, id3}, 3, 0,
                                 [&](ImplicitLocOpBuilder &gb, ValueRange x) {
                                   Value e = arith::IndexCastOp::create(
                                       gb, i64, linalg::IndexOp::create(gb, 2));
                                   Value hit = arith::CmpIOp::create(
                                       gb, arith::CmpIPredicate::eq, e, x[0]);
                                   linalg::YieldOp::create(
                                       gb, arith::SelectOp::create(
                                               gb, hit, cF32(gb, kNegInf), x[1])
                                               .getResult());
                                 })[0];
          return SmallVector<Value>{masked, offs};
        });
    return loop[1];
  }

  /// Stage 4: E [B, Hg, NB, NB], the probe rows' candidate mass relative to
  /// their forced keys.
  Value probeScores(Value offsets) {
    int64_t block = op.getBlock(), r = op.getRowsPerBlock(),
            width = op.getWidth(), nOffsets = op.getNOffsets(),
            local = op.getLocalBlocks();
    bool sink = op.getSink();
    Value q = op.getQ(), k = op.getK();
    Value eInit = zeros({batch, attr(hg), blocks, blocks});
    auto forall = scf::ForallOp::create(
        b, ArrayRef<OpFoldResult>{batch, attr(hg), blocks}, ValueRange{eInit},
        std::nullopt);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forall.getBody());
    Value bi = forall.getInductionVar(0), gi = forall.getInductionVar(1),
          I = forall.getInductionVar(2);
    Value eOut = forall.getRegionIterArgs()[0];
    OpFoldResult one = b.getIndexAttr(1), zero = b.getIndexAttr(0);
    SmallVector<OpFoldResult> offs = {bi, gi, I, zero};
    SmallVector<OpFoldResult> sizes = {one, one, one, blocks};
    SmallVector<OpFoldResult> strides(4, one);
    auto rowType = RankedTensorType::get(
        {cast<ShapedType>(eInit.getType()).getDimSize(3)}, f32);
    Value row =
        tensor::ExtractSliceOp::create(b, rowType, eOut, offs, sizes, strides);

    Value c0 = cIndex(0), c1 = cIndex(1), blockC = cIndex(block);
    Value rowStart = arith::MulIOp::create(b, I, blockC);
    // Probe row t sits at I * block + (2 t + 1) * block / (2 r), computed as
    // (2 t + 1) a + (2 t + 1) rem / (2 r) with block = 2 r a + rem, so that
    // no product exceeds block or (2 r)^2 (r <= 2^20: the verifier).
    int64_t a = block / (2 * r), rem = block % (2 * r);
    auto probe = [&](ImplicitLocOpBuilder &lb, Value t) {
      Value odd = arith::AddIOp::create(
          lb,
          arith::MulIOp::create(lb, t, arith::ConstantIndexOp::create(lb, 2)),
          arith::ConstantIndexOp::create(lb, 1));
      Value whole =
          arith::MulIOp::create(lb, odd, arith::ConstantIndexOp::create(lb, a));
      Value part = arith::DivUIOp::create(
          lb,
          arith::MulIOp::create(lb, odd,
                                arith::ConstantIndexOp::create(lb, rem)),
          arith::ConstantIndexOp::create(lb, 2 * r));
      Value off = arith::AddIOp::create(lb, whole, part);
      return arith::AddIOp::create(lb, rowStart, off).getResult();
    };
    Value rC = cIndex(r);
    Value nValid = forLoop(
        b, c0, rC, {c0}, [&](ImplicitLocOpBuilder &lb, Value t, ValueRange a) {
          Value in = arith::CmpIOp::create(lb, arith::CmpIPredicate::ult,
                                           probe(lb, t), n);
          return SmallVector<Value>{arith::AddIOp::create(
              lb, a[0], arith::SelectOp::create(lb, in, c1, c0))};
        })[0];
    nValid = arith::MaxUIOp::create(b, nValid, c1);
    Value weight = arith::DivFOp::create(
        b, cF32(b, 1.0f),
        arith::MulFOp::create(
            b,
            arith::SIToFPOp::create(b, f32,
                                    arith::IndexCastOp::create(b, i64, nValid)),
            cF32(b, static_cast<float>(ch))));
    // lo = max(0, I - local_blocks) * block; the sink's keys [0, block)
    // count apart only when they are not inside [lo, i].
    Value localC = cIndex(local);
    Value lo = arith::SelectOp::create(
        b, arith::CmpIOp::create(b, arith::CmpIPredicate::uge, I, localC),
        arith::MulIOp::create(b, arith::SubIOp::create(b, I, localC), blockC),
        c0);
    Value sinkEnd = c0;
    if (sink)
      sinkEnd = arith::SelectOp::create(
          b, arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, lo, c0),
          blockC, c0);
    Value widthC = cIndex(width);

    row = forLoop(
        b, c0, rC, {row}, [&](ImplicitLocOpBuilder &lb, Value t, ValueRange a) {
          Value i = probe(lb, t);
          Value inSeq =
              arith::CmpIOp::create(lb, arith::CmpIPredicate::ult, i, n);
          return ifThen(lb, inSeq, a, [&](ImplicitLocOpBuilder &ib) {
            Value iEnd = arith::AddIOp::create(ib, i, c1);
            return forLoop(
                ib, c0, cIndex(ch), a,
                [&](ImplicitLocOpBuilder &hb, Value hh, ValueRange ha) {
                  Value h = arith::AddIOp::create(
                      hb, arith::MulIOp::create(hb, gi, cIndex(ch)), hh);
                  Value kv = arith::DivUIOp::create(hb, h, cIndex(G));
                  auto logit = [&](ImplicitLocOpBuilder &xb, Value j) {
                    Value dot = forLoop(
                        xb, c0, toValue(xb, headDim), {cF32(xb, 0.0f)},
                        [&](ImplicitLocOpBuilder &db, Value d, ValueRange acc) {
                          Value qv = toF32(db, db.getLoc(),
                                           tensor::ExtractOp::create(
                                               db, q, ValueRange{bi, h, i, d}));
                          Value kvv =
                              toF32(db, db.getLoc(),
                                    tensor::ExtractOp::create(
                                        db, k, ValueRange{bi, kv, j, d}));
                          return SmallVector<Value>{arith::AddFOp::create(
                              db, acc[0], arith::MulFOp::create(db, qv, kvv))};
                        })[0];
                    return arith::MulFOp::create(xb, dot, scale).getResult();
                  };
                  // Online log-sum-exp of the forced keys.
                  auto lseStep = [&](ImplicitLocOpBuilder &xb, Value j,
                                     ValueRange s) {
                    Value x = logit(xb, j);
                    Value mx = arith::MaximumFOp::create(xb, s[0], x);
                    Value l = arith::AddFOp::create(
                        xb,
                        arith::MulFOp::create(
                            xb, s[1],
                            math::ExpOp::create(
                                xb, arith::SubFOp::create(xb, s[0], mx))),
                        math::ExpOp::create(xb,
                                            arith::SubFOp::create(xb, x, mx)));
                    return SmallVector<Value>{mx, l};
                  };
                  SmallVector<Value> st = {cF32(hb, kNegInf), cF32(hb, 0.0f)};
                  if (hostLoops) {
                    // The forced keys' logits first, all keys of a range at
                    // once (forcedLogits: the sink block, then [lo, i]);
                    // then their max (exact in any order) and the sum of
                    // exp(x - max) in key order, as the float64 reference
                    // forms the log-sum-exp: the exponentials do not wait
                    // for one another as the online form's do.
                    SmallVector<Value> ranges = {
                        forcedLogits(hb, bi, h, i, kv, c0, sinkEnd),
                        forcedLogits(hb, bi, h, i, kv, lo, iEnd)};
                    auto overKeys =
                        [&](Value init,
                            function_ref<Value(ImplicitLocOpBuilder &, Value,
                                               Value)>
                                step) {
                          for (Value xs : ranges)
                            init = forLoop(hb, c0,
                                           tensor::DimOp::create(hb, xs, 0),
                                           {init},
                                           [&](ImplicitLocOpBuilder &xb,
                                               Value j, ValueRange acc) {
                                             Value x = arith::MulFOp::create(
                                                 xb,
                                                 tensor::ExtractOp::create(
                                                     xb, xs, ValueRange{j}),
                                                 scale);
                                             return SmallVector<Value>{
                                                 step(xb, acc[0], x)};
                                           })[0];
                          return init;
                        };
                    Value mx = overKeys(st[0], [](ImplicitLocOpBuilder &xb,
                                                  Value acc, Value x) {
                      return arith::MaximumFOp::create(xb, acc, x).getResult();
                    });
                    Value l = overKeys(st[1], [&](ImplicitLocOpBuilder &xb,
                                                  Value acc, Value x) {
                      return arith::AddFOp::create(
                                 xb, acc,
                                 math::ExpOp::create(
                                     xb, arith::SubFOp::create(xb, x, mx)))
                          .getResult();
                    });
                    st = {mx, l};
                  } else {
                    st = forLoop(hb, c0, sinkEnd, st, lseStep);
                    st = forLoop(hb, lo, iEnd, st, lseStep);
                  }
                  Value lse = arith::AddFOp::create(
                      hb, st[0], math::LogOp::create(hb, st[1]));
                  // The candidates, each key once.
                  return forLoop(
                      hb, c0, cIndex(nOffsets), ha,
                      [&](ImplicitLocOpBuilder &ob, Value kk, ValueRange oa) {
                        Value dOff = tensor::ExtractOp::create(
                            ob, offsets, ValueRange{bi, gi, kk});
                        Value has = arith::CmpIOp::create(
                            ob, arith::CmpIPredicate::sge, dOff,
                            arith::ConstantIntOp::create(ob, i64, 0));
                        return ifThen(
                            ob, has, oa, [&](ImplicitLocOpBuilder &cb) {
                              // center = i - d (an index; d <= N - 1 here).
                              Value center = arith::SubIOp::create(
                                  cb, arith::IndexCastOp::create(cb, i64, i),
                                  dOff);
                              return forLoop(cb, c0, cIndex(2 * width + 1), oa,
                                             [&](ImplicitLocOpBuilder &eb,
                                                 Value ee, ValueRange ea) {
                                               return candidate(
                                                   eb, ea[0], i, center, ee, kk,
                                                   widthC, lo, sinkEnd, offsets,
                                                   bi, gi, lse, weight, logit);
                                             });
                            });
                      });
                });
          });
        })[0];

    b.setInsertionPointToStart(forall.getTerminator().getBody());
    tensor::ParallelInsertSliceOp::create(b, row, eOut, offs, sizes, strides);
    b.setInsertionPointAfter(forall);
    return forall.getResult(0);
  }

  /// The unscaled logits q[bi, h, i] . k[bi, kv, j] of the keys j in
  /// [from, to), [to - from] f32: (d, j) over kT with d reduced and j
  /// innermost and parallel (the host vectorizes the loop over keys), each
  /// a sum over ascending d from 0, as the gathered logits are.
  Value forcedLogits(ImplicitLocOpBuilder &xb, Value bi, Value h, Value i,
                     Value kv, Value from, Value to) {
    Value q = op.getQ();
    auto qType = cast<RankedTensorType>(q.getType());
    int64_t d = qType.getDimSize(3);
    OpFoldResult one = xb.getIndexAttr(1), zero = xb.getIndexAttr(0);
    Value len = arith::SubIOp::create(xb, to, from);
    Value qRow = tensor::ExtractSliceOp::create(
        xb, RankedTensorType::get({d}, qType.getElementType()), q,
        ArrayRef<OpFoldResult>{bi, h, i, zero},
        ArrayRef<OpFoldResult>{one, one, one, headDim},
        SmallVector<OpFoldResult>(4, one));
    Value keys = tensor::ExtractSliceOp::create(
        xb, RankedTensorType::get({d, ShapedType::kDynamic}, f32), kT,
        ArrayRef<OpFoldResult>{bi, kv, zero, from},
        ArrayRef<OpFoldResult>{one, one, headDim, len},
        SmallVector<OpFoldResult>(4, one));
    Value init = filledTensor(xb, {len}, f32, xb.getF32FloatAttr(0.0f));
    using utils::IteratorType;
    return linalg::GenericOp::create(
               xb, TypeRange{init.getType()}, ValueRange{qRow, keys},
               ValueRange{init},
               ArrayRef<AffineMap>{dimsMap(ctx, 2, {0}),
                                   AffineMap::getMultiDimIdentityMap(2, ctx),
                                   dimsMap(ctx, 2, {1})},
               ArrayRef<IteratorType>{IteratorType::reduction,
                                      IteratorType::parallel},
               [&](OpBuilder &nb, Location loc, ValueRange a) {
                 Value p =
                     arith::MulFOp::create(nb, loc, toF32(nb, loc, a[0]), a[1]);
                 linalg::YieldOp::create(
                     nb, loc,
                     arith::AddFOp::create(nb, loc, a[2], p).getResult());
               })
        .getResult(0);
  }

  /// One candidate key j = center + ee - width of probe row i: added to
  /// `row` at its block when 0 <= j <= i, not forced, and not within
  /// `width` of an earlier offset's key.
  SmallVector<Value>
  candidate(ImplicitLocOpBuilder &eb, Value row, Value i, Value center,
            Value ee, Value kk, Value widthC, Value lo, Value sinkEnd,
            Value offsets, Value bi, Value gi, Value lse, Value weight,
            function_ref<Value(ImplicitLocOpBuilder &, Value)> logit) {
    Value c0 = arith::ConstantIndexOp::create(eb, 0);
    Value zero64 = arith::ConstantIntOp::create(eb, i64, 0);
    Value w64 = arith::IndexCastOp::create(eb, i64, widthC);
    Value j64 = arith::SubIOp::create(
        eb,
        arith::AddIOp::create(eb, center,
                              arith::IndexCastOp::create(eb, i64, ee)),
        w64);
    Value i64V = arith::IndexCastOp::create(eb, i64, i);
    Value inRange = arith::AndIOp::create(
        eb, arith::CmpIOp::create(eb, arith::CmpIPredicate::sge, j64, zero64),
        arith::CmpIOp::create(eb, arith::CmpIPredicate::sle, j64, i64V));
    // Forced: j < sinkEnd or j >= lo (j <= i holds where it matters).
    Value forced = arith::OrIOp::create(
        eb,
        arith::CmpIOp::create(eb, arith::CmpIPredicate::slt, j64,
                              arith::IndexCastOp::create(eb, i64, sinkEnd)),
        arith::CmpIOp::create(eb, arith::CmpIPredicate::sge, j64,
                              arith::IndexCastOp::create(eb, i64, lo)));
    Value dup = forLoop(
        eb, c0, kk, {arith::ConstantIntOp::create(eb, 0, 1)},
        [&](ImplicitLocOpBuilder &db, Value k2, ValueRange a) {
          Value d2 =
              tensor::ExtractOp::create(db, offsets, ValueRange{bi, gi, k2});
          Value has =
              arith::CmpIOp::create(db, arith::CmpIPredicate::sge, d2,
                                    arith::ConstantIntOp::create(db, i64, 0));
          Value gap = arith::SubIOp::create(
              db, j64, arith::SubIOp::create(db, i64V, d2));
          Value absGap = math::AbsIOp::create(db, gap);
          Value near =
              arith::CmpIOp::create(db, arith::CmpIPredicate::sle, absGap, w64);
          return SmallVector<Value>{arith::OrIOp::create(
              db, a[0], arith::AndIOp::create(db, has, near))};
        })[0];
    Value trueV = arith::ConstantIntOp::create(eb, 1, 1);
    Value take = arith::AndIOp::create(
        eb, inRange,
        arith::AndIOp::create(eb, arith::XOrIOp::create(eb, forced, trueV),
                              arith::XOrIOp::create(eb, dup, trueV)));
    return ifThen(eb, take, {row}, [&](ImplicitLocOpBuilder &tb) {
      Value j = arith::IndexCastOp::create(tb, tb.getIndexType(), j64);
      Value x = logit(tb, j);
      Value w = arith::MulFOp::create(
          tb, math::ExpOp::create(tb, arith::SubFOp::create(tb, x, lse)),
          weight);
      Value J = arith::DivUIOp::create(
          tb, j, arith::ConstantIndexOp::create(tb, op.getBlock()));
      Value old = tensor::ExtractOp::create(tb, row, ValueRange{J});
      return SmallVector<Value>{tensor::InsertOp::create(
          tb, arith::AddFOp::create(tb, old, w), row, ValueRange{J})};
    });
  }

  /// f / tot, a NaN as `zero` (the forced blocks' share of the row).
  Value forcedShare(ImplicitLocOpBuilder &lb, Value f, Value tot, Value zero) {
    Value share = arith::DivFOp::create(lb, f, tot);
    Value shareNaN =
        arith::CmpFOp::create(lb, arith::CmpFPredicate::UNO, share, share);
    return arith::SelectOp::create(lb, shareNaN, zero, share);
  }

  /// Stage 5: max(s / tot, R) per row, R = E * f / tot, or with
  /// refine_norm R / (1 + sum_J R) (the row sum one more reduction).
  Value combine(Value probe) {
    Value s = op.getScores();
    int64_t local = op.getLocalBlocks();
    bool sink = op.getSink();
    SmallVector<OpFoldResult> rowSizes = {batch, attr(hg), blocks};
    auto id4 = AffineMap::getMultiDimIdentityMap(4, ctx);
    auto row4 = map(4, {0, 1, 2});
    SmallVector<Value> sums = generic(
        b, {s}, {zeros(rowSizes), zeros(rowSizes)}, {id4, row4, row4}, 4, 1,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value I = linalg::IndexOp::create(lb, 2);
          Value J = linalg::IndexOp::create(lb, 3);
          Value localC = arith::ConstantIndexOp::create(lb, local);
          Value forced = arith::AndIOp::create(
              lb, arith::CmpIOp::create(lb, arith::CmpIPredicate::ule, J, I),
              arith::CmpIOp::create(lb, arith::CmpIPredicate::uge,
                                    arith::AddIOp::create(lb, J, localC), I));
          if (sink)
            forced = arith::OrIOp::create(
                lb, forced,
                arith::CmpIOp::create(lb, arith::CmpIPredicate::eq, J,
                                      arith::ConstantIndexOp::create(lb, 0)));
          Value f = arith::SelectOp::create(lb, forced, a[0], cF32(lb, 0.0f));
          linalg::YieldOp::create(
              lb, ValueRange{arith::AddFOp::create(lb, a[1], a[0]),
                             arith::AddFOp::create(lb, a[2], f)});
        });
    bool norm = op.getRefineNorm();
    SmallVector<Value> ins = {s, probe, sums[0], sums[1]};
    SmallVector<AffineMap> maps = {id4, id4, row4, row4};
    if (norm) {
      // sum_J E[I, J] * f / tot, in the order of J (as the reference).
      ins.push_back(generic(
          b, {probe, sums[0], sums[1]}, {zeros(rowSizes)},
          {id4, row4, row4, row4}, 4, 1,
          [&](ImplicitLocOpBuilder &lb, ValueRange a) {
            Value share = forcedShare(lb, a[2], a[1], cF32(lb, 0.0f));
            linalg::YieldOp::create(
                lb, ValueRange{arith::AddFOp::create(
                        lb, a[3], arith::MulFOp::create(lb, a[0], share))});
          })[0]);
      maps.push_back(row4);
    }
    maps.push_back(id4);
    return generic(
        b, ins, {op.getInit()}, maps, 4, 0,
        [&](ImplicitLocOpBuilder &lb, ValueRange a) {
          Value zero = cF32(lb, 0.0f);
          Value tot = a[2];
          Value empty =
              arith::CmpFOp::create(lb, arith::CmpFPredicate::OEQ, tot, zero);
          Value sn = arith::SelectOp::create(
              lb, empty, a[0], arith::DivFOp::create(lb, a[0], tot));
          Value share = forcedShare(lb, a[3], tot, zero);
          Value refined = arith::MulFOp::create(lb, a[1], share);
          if (norm)
            refined = arith::DivFOp::create(
                lb, refined, arith::AddFOp::create(lb, cF32(lb, 1.0f), a[4]));
          Value snNaN =
              arith::CmpFOp::create(lb, arith::CmpFPredicate::UNO, sn, sn);
          linalg::YieldOp::create(
              lb, arith::SelectOp::create(
                      lb, snNaN, sn, arith::MaximumFOp::create(lb, sn, refined))
                      .getResult());
        })[0];
  }
};

struct SlashRefineToLinalg : OpRewritePattern<SlashRefineOp> {
  SlashRefineToLinalg(MLIRContext *ctx, bool hostLoops)
      : OpRewritePattern(ctx), hostLoops(hostLoops) {}
  bool hostLoops;

  LogicalResult matchAndRewrite(SlashRefineOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureTensorSemantics())
      return rewriter.notifyMatchFailure(op, "buffer form");
    auto dim = [](Value v, unsigned i) {
      return cast<ShapedType>(v.getType()).getDimSize(i);
    };
    int64_t hq = dim(op.getQ(), 1), hkv = dim(op.getK(), 1),
            hg = dim(op.getScores(), 1);
    if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv) ||
        ShapedType::isDynamic(hg))
      return rewriter.notifyMatchFailure(op, "dynamic head counts");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    rewriter.replaceOp(
        op, SlashRefineLowering(op, b, hq, hkv, hg, hostLoops).lower());
    return success();
  }
};
} // namespace

void mlir::unisparse::populateSlashRefineToLinalgPatterns(
    RewritePatternSet &patterns, bool hostLoops) {
  patterns.add<SlashRefineToLinalg>(patterns.getContext(), hostLoops);
}
