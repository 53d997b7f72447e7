//===- OutlierScoreKernel.cpp - the outlier estimator on tensor cores -----===//
//
// unisparse.block_score {estimator = outlier} in buffer form (16-bit
// composites) becomes three kernels; no [Tq', Tk'] map is ever stored:
//
//   unisparse_outlier_key_norms    |kc[u, b]|^2 per key slot (f32, slot
//                                  major [B, Gk, rk + 1, keyTiles *
//                                  keyTile], 0 past Tk), read by the
//                                  spread term.
//   unisparse_outlier_query_spread v[t] = the mean over d of the query
//                                  composite's spread slot (f32 [B, G,
//                                  Tq]).
//   unisparse_outlier_score        a CTA per (batch, head group, 16 *
//                                  warps query composites), a warp per 16
//                                  query composites; three passes over the
//                                  key tiles the CTA's last row sees.
//
// The estimator (python/unisparse/reference/outlier.py, docs/Fidelity.md):
// query slot a in {0 (rest mean, spread v), 1 (outlier row, no spread)},
// key slot b in {0 (rest mean, weight c_k - rk), 1..rk (outliers, weight
// 1)}. In the log2 domain x = log2(e) * (s * q_a . k_b + log w_b); slot 0
// rows take the softmax twice, the second time of y = x + log2(e) * s^2 v
// |k_b|^2 (1 - 2 p) / 2 with p the first softmax; slot 1 rows take it once
// (y = x). A[t, u] = omega_0 p'_0 + omega_1 p_1 summed over b, then block
// sums and the query reduction. Hence three passes, each the same key loop
// (cp.async of a key tile of keyTile composites, all rk + 1 slots, double
// buffered; per slot b an mma.sync m16n8k16 GEMM of the warp's query slot
// rows against the slot's keyTile key rows):
//
//   passRowStats (statistics of x, slot 0 rows only: one m16 tile, the
//                 16 composites' slot 0 rows)   -> m_x, l_x per composite
//   passRowStats (statistics of y for slot 0 rows, of x for slot 1 rows:
//                 two m16 tiles)                -> m', l' per (composite,
//                                                  slot)
//   passBlockScores (p'_0, p_1 mixed by omega per element, summed over b,
//                 block sums by shuffles, the query reduction by shuffles,
//                 the scores stored; blocks past the CTA's keys: 0).
//
// Row layout of a warp's two m16 tiles (C/D fragment: element [h][c] is row
// quad + 8 h, column 2 q + c): m tile mt holds composites mt * 8 .. mt * 8
// + 7 of the warp, rows 0..7 their slot 0, rows 8..15 their slot 1, so a
// lane holds both slots of composites quad and 8 + quad, and the mixing of
// the query slots is in-thread. The first pass's one m16 tile (slot 0 rows
// of all 16 composites: row r = composite r) takes its A registers from
// those of the two tiles (reg 0 and 2 of each), no second load. Key
// columns: in the GEMM of key slot b, n8 tile nt's column j is key
// composite 8 nt + j of the tile, read by ldmatrix from workgroup row
// (8 nt + j) * (rk + 1) + b (the tile is stored as in global memory), so
// every slot's columns are the same composites and the sum over b is
// in-thread too.
//
// Numbers: composites are 16-bit (the compress rounds them once), products
// accumulate in f32 on the tensor cores, exp2 is ex2.approx.ftz.f32,
// statistics and sums are f32; |k|^2 and v are f32 sums of the 16-bit
// composites.
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

namespace {
/// Key tiles in workgroup memory: the one the warps read and the next one
/// landing.
constexpr int64_t kStages = 2;
/// Padding of a key row in workgroup memory (elements): the ldmatrix rows
/// and the 16-byte copies are bank-conflict free.
constexpr int64_t kRowPad = 8;
/// Query composites per warp: two m16 tiles of both query slots.
constexpr int64_t kWarpComposites = 16;
/// Threads of the norm and spread kernels.
constexpr int64_t kPrepThreads = 128;

/// The static parameters of the outlier scoring kernel.
struct OutlierShape {
  int64_t warps, threads, rows; // rows: query composites per CTA
  int64_t keyTile, nTiles;      // key composites per tile, n8 tiles
  int64_t keySlots;             // rk + 1 (key rest + key outliers)
  int64_t headDim, kSteps;      // D, D / 16
  int64_t cq, ck, qBlk, kBlk;   // composite sizes, composites per block
  bool causal;
  int64_t kvGroup;
  QueryReduce reduce;
  float scaleLog2;      // s * log2(e)
  float restLog2;       // log2(c_k - rk): the key rest slot's weight
  float spreadLog2;     // log2(e) * s^2 / 2: the spread term per v |k|^2
  float omega0, omega1; // the query slots' shares of the composite's rows
  Type element;

  int64_t rowElems() const { return headDim + kRowPad; }
  int64_t stageRows() const { return keyTile * keySlots; }
  int64_t stageElems() const { return stageRows() * rowElems(); }
  int64_t blocksPerKeyTile() const { return keyTile / kBlk; }
};

/// The dynamic sizes of one scoring launch.
struct OutlierSizes {
  Value batch, groups, tq, tk, nbq, nbk, queryTiles, keyTiles;
};

/// The workgroup buffer: the key stages, flat.
MemRefType stagesType(const OutlierShape &s) {
  return workgroupMemRef({kStages * s.stageElems()}, s.element);
}

/// Emits the scoring kernel (one CTA's work).
class OutlierKernel : KernelBuilder {
public:
  OutlierKernel(ImplicitLocOpBuilder &b, const OutlierShape &s,
                const OutlierSizes &n, Value qc, Value kc, Value keyNorms,
                Value spread, Value scores)
      : KernelBuilder{b}, s(s), n(n), qc(qc), kc(kc), keyNorms(keyNorms),
        spread(spread), scores(scores) {}

  void build(Value threadId, Value blockId, Value workgroup) {
    tid = threadId;
    keys = workgroup;
    Value lane = rem(tid, 32);
    warp = div(tid, 32);
    quad = div(lane, 4);
    qlane = rem(lane, 4);
    // ldmatrix.x4 on a key slot: lane l addresses composite 16 p + 8 (l /
    // 16) + l % 8 (matrices 0, 1: n8 tile 2 p, dims [0, 8) and [8, 16);
    // matrices 2, 3: n8 tile 2 p + 1), row composite * (rk + 1) + slot.
    Value ldComposite = add(mul(div(lane, 16), 8), rem(lane, 8));
    ldBase = add(mul(mul(ldComposite, s.keySlots), s.rowElems()),
                 mul(rem(div(lane, 8), 2), 8));

    // Head-major tiles; within a head the causal tiles run longest first.
    Value head = div(blockId, n.queryTiles);
    Value r = rem(blockId, n.queryTiles);
    Value queryTile = s.causal ? sub(sub(n.queryTiles, idx(1)), r) : r;
    batchIdx = div(head, n.groups);
    group = rem(head, n.groups);
    keyHead = s.kvGroup == 1 ? group : div(group, s.kvGroup);
    t0 = mul(queryTile, s.rows);
    Value rowsHere = minU(idx(s.rows), sub(n.tq, t0));
    Value lastKey = sub(n.tk, idx(1));
    Value numKeys = n.tk;
    if (s.causal)
      numKeys = minU(n.tk, add(lastVisible(add(t0, sub(rowsHere, idx(1)))), 1));
    numKeyTiles = ceilDiv(numKeys, s.keyTile);

    // The lane's composites (mt = 0, 1): t0 + 16 warp + 8 mt + quad.
    for (int64_t mt = 0; mt < 2; ++mt) {
      Value t = add(t0, add(add(mul(warp, kWarpComposites), mt * 8), quad));
      composite[mt] = t;
      inside[mt] = ult(t, n.tq);
      Value limit = lastKey;
      if (s.causal)
        limit = minU(limit, lastVisible(t));
      rowLimit[mt] = arith::IndexCastOp::create(b, b.getI32Type(), limit);
      // s^2 v / 2 in log2 units: the spread term's row factor (0 past Tq).
      Value v = load(spread, {batchIdx, group, select(inside[mt], t, idx(0))});
      spreadRow[mt] = select(inside[mt], fmul(v, f32(s.spreadLog2)), f32(0));
    }
    loadQueryFragments();

    // Pass 1: x statistics of the slot 0 rows (row h of the one m tile is
    // composite 8 h + quad: the lane's composite mt = h).
    SmallVector<Value> first = passRowStats(/*bothSlots=*/false);
    for (int64_t mt = 0; mt < 2; ++mt) {
      xMax[mt] = first[mt];
      xInvSum[mt] = rowInverse(first[2 + mt]);
    }
    // Pass 2: y statistics of slot 0, x statistics of slot 1; row (mt, h).
    SmallVector<Value> second = passRowStats(/*bothSlots=*/true);
    for (int64_t row = 0; row < 4; ++row) {
      finalMax[row] = second[row];
      // The query slot's share folded into 1 / l.
      finalCoef[row] =
          fmul(rowInverse(second[4 + row]), f32(row % 2 ? s.omega1 : s.omega0));
    }
    // Pass 3: the scores.
    passBlockScores();
    zeroUnwalkedBlocks();
  }

private:
  const OutlierShape &s;
  const OutlierSizes &n;
  Value qc, kc, keyNorms, spread, scores;
  Value tid, warp, quad, qlane, ldBase, keys;
  Value batchIdx, group, keyHead, t0, numKeyTiles;
  Value composite[2], inside[2], rowLimit[2], spreadRow[2];
  Value xMax[2], xInvSum[2];       // pass 1, per composite mt
  Value finalMax[4], finalCoef[4]; // pass 2, per row 2 mt + h
  // A registers per (mt, ks): {slot 0, slot 1, slot 0 +8, slot 1 +8}.
  SmallVector<Value> aFrags;

  /// The last key composite query composite `t` sees (causal: u * c_k <=
  /// (t + 1) * c_q - 1), before the clamp to Tk - 1.
  Value lastVisible(Value t) {
    return div(sub(mul(add(t, 1), s.cq), idx(1)), s.ck);
  }

  /// 1 / the whole row sum from the lane's share (the quad's lanes).
  Value rowInverse(Value share) {
    Value sum = fadd(share, shuffleXor(share, 1));
    sum = fadd(sum, shuffleXor(sum, 2));
    return arith::DivFOp::create(b, f32(1.0f), sum);
  }

  /// The warp's query slot rows as A fragments (registers for all passes):
  /// (mt, ks) reg 0 = slot 0 of composite 8 mt + quad, dims 16 ks + 2 q;
  /// reg 1 = its slot 1; regs 2, 3 = dims + 8. Composites past Tq: zero.
  void loadQueryFragments() {
    auto pairType = VectorType::get({2}, s.element);
    Value zero = mmaOperand(arith::ConstantOp::create(
        b, pairType,
        DenseElementsAttr::get(pairType, b.getZeroAttr(s.element))));
    for (int64_t mt = 0; mt < 2; ++mt) {
      Value row = select(inside[mt], composite[mt], idx(0));
      for (int64_t ks = 0; ks < s.kSteps; ++ks)
        for (int64_t reg = 0; reg < 4; ++reg) {
          Value col = add(mul(qlane, 2), ks * 16 + (reg / 2) * 8);
          Value pair = vector::LoadOp::create(
              b, pairType, qc,
              ValueRange{batchIdx, group, row, idx(reg % 2), col},
              /*nontemporal=*/false, llvm::Align(4));
          aFrags.push_back(select(inside[mt], mmaOperand(pair), zero));
        }
    }
  }

  /// The A registers of the GEMM's m tile `mt` at k step `ks`: with both
  /// slots, the tile's own; else (slot 0 rows of all 16 composites) reg 0
  /// and 2 of tiles 0 and 1.
  SmallVector<Value> aStep(bool bothSlots, int64_t mt, int64_t ks) {
    auto at = [&](int64_t t, int64_t reg) {
      return aFrags[(t * s.kSteps + ks) * 4 + reg];
    };
    if (bothSlots)
      return {at(mt, 0), at(mt, 1), at(mt, 2), at(mt, 3)};
    return {at(0, 0), at(1, 0), at(0, 2), at(1, 2)};
  }

  /// cp.async of key tile `kt` (all slots) into `stage`: 16-byte chunks of
  /// rows kt * keyTile * (rk + 1) .. of the key slots (contiguous), rows
  /// past Tk zero-filled from a clamped source.
  void loadKeyTileAsync(Value kt, Value stage) {
    int64_t chunksPerRow = s.headDim / 8;
    int64_t chunks = s.stageRows() * chunksPerRow;
    Value firstComposite = mul(kt, s.keyTile);
    Value stageBase = mul(stage, s.stageElems());
    Value lastComposite = sub(n.tk, idx(1));
    for (int64_t i = 0; i < chunks / s.threads; ++i) {
      Value chunk = add(tid, i * s.threads);
      Value row = div(chunk, chunksPerRow);
      Value col = mul(rem(chunk, chunksPerRow), 8);
      Value u = add(firstComposite, div(row, s.keySlots));
      Value in = ult(u, n.tk);
      Value dst = add(stageBase, add(mul(row, s.rowElems()), col));
      nvgpu::DeviceAsyncCopyOp::create(
          b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), keys,
          ValueRange{dst}, kc,
          ValueRange{batchIdx, keyHead, select(in, u, lastComposite),
                     rem(row, s.keySlots), col},
          b.getIndexAttr(8), select(in, idx(8), idx(0)), b.getUnitAttr());
    }
  }

  /// The key loop of one pass: tile 0 in flight, then per tile kt: wait
  /// for it, a barrier (its copies visible; every warp done with tile
  /// kt - 1, whose stage tile kt + 1 then overwrites), issue kt + 1, then
  /// `body`. A barrier at the end: the next pass's first copy overwrites a
  /// stage the last tile may still be read from.
  SmallVector<Value>
  keyLoop(ValueRange init,
          function_ref<SmallVector<Value>(Value kt, Value stageBase,
                                          ValueRange carried)>
              body) {
    auto tokenType = nvgpu::DeviceAsyncTokenType::get(b.getContext());
    ifThen(ult(idx(0), numKeyTiles), [&] { loadKeyTileAsync(idx(0), idx(0)); });
    Value group0 =
        nvgpu::DeviceAsyncCreateGroupOp::create(b, tokenType, ValueRange{});
    SmallVector<Value> out = forLoop(
        idx(0), numKeyTiles, idx(1), init,
        [&](Value kt, ValueRange carried) -> SmallVector<Value> {
          nvgpu::DeviceAsyncWaitOp::create(b, group0, b.getI32IntegerAttr(0));
          gpu::BarrierOp::create(b);
          Value next = add(kt, 1);
          ifThen(ult(next, numKeyTiles),
                 [&] { loadKeyTileAsync(next, rem(next, kStages)); });
          nvgpu::DeviceAsyncCreateGroupOp::create(b, tokenType, ValueRange{});
          return body(kt, mul(rem(kt, kStages), s.stageElems()), carried);
        });
    gpu::BarrierOp::create(b);
    return out;
  }

  /// S = Q_rows K_b^T of key slot `slot` in the stage at `stageBase`: per
  /// (m tile, n tile) four f32 in the C layout, index (mt * nTiles + nt) *
  /// 4 + 2 h + c; `mTiles` 1 (slot 0 rows) or 2 (both slots).
  SmallVector<Value> mmaSlot(Value stageBase, Value slot, bool bothSlots) {
    int64_t mTiles = bothSlots ? 2 : 1;
    SmallVector<Value> acc(mTiles * s.nTiles * 4, f32(0.0f));
    auto fragsType = VectorType::get({4, 2}, s.element);
    Value base = add(add(stageBase, ldBase), mul(slot, s.rowElems()));
    for (int64_t ks = 0; ks < s.kSteps; ++ks) {
      for (int64_t p = 0; p < s.nTiles / 2; ++p) {
        Value frags = nvgpu::LdMatrixOp::create(
            b, fragsType, keys,
            ValueRange{add(base, p * 16 * s.keySlots * s.rowElems() + ks * 16)},
            b.getBoolAttr(false), b.getI32IntegerAttr(4));
        for (int64_t half = 0; half < 2; ++half) {
          Value b0 = mmaOperand(vector::ExtractOp::create(b, frags, 2 * half));
          Value b1 =
              mmaOperand(vector::ExtractOp::create(b, frags, 2 * half + 1));
          for (int64_t mt = 0; mt < mTiles; ++mt) {
            int64_t at = (mt * s.nTiles + 2 * p + half) * 4;
            SmallVector<Value> d =
                mmaSync(s.element, aStep(bothSlots, mt, ks), b0, b1,
                        ArrayRef<Value>(acc).slice(at, 4));
            std::copy(d.begin(), d.end(), acc.begin() + at);
          }
        }
      }
    }
    return acc;
  }

  /// The lane's first key composite of tile `kt`: kt * keyTile + 2 q.
  Value laneFirstKey(Value kt) {
    return add(mul(kt, s.keyTile), mul(qlane, 2));
  }

  /// |k|^2 of the lane's key composites of slot `slot` in tile `kt`: per n8
  /// tile, the pair (columns 2 q, 2 q + 1) as one 8-byte load.
  SmallVector<Value> keyNormPairs(Value kt, Value slot) {
    auto pairType = VectorType::get({2}, b.getF32Type());
    SmallVector<Value> out;
    Value first = laneFirstKey(kt);
    for (int64_t nt = 0; nt < s.nTiles; ++nt) {
      Value pair = vector::LoadOp::create(
          b, pairType, keyNorms,
          ValueRange{batchIdx, keyHead, slot, add(first, nt * 8)},
          /*nontemporal=*/false, llvm::Align(8));
      for (int64_t c = 0; c < 2; ++c)
        out.push_back(vector::ExtractOp::create(b, pair, c));
    }
    return out;
  }

  /// The logits of key slot `slot` for the lane's row (mt, h) of `acc`
  /// (log2 units: x = S s log2(e) + log2 w_b), n8 tile major, -inf past the
  /// row's last visible key (the check only where `masked`).
  SmallVector<Value> rowLogits(ArrayRef<Value> acc, int64_t accTile, int64_t h,
                               int64_t mt, Value kt, Value logW, bool masked) {
    Value room;
    if (masked)
      room = arith::SubIOp::create(
          b, rowLimit[mt],
          arith::IndexCastOp::create(b, b.getI32Type(), laneFirstKey(kt)));
    SmallVector<Value> x;
    for (int64_t nt = 0; nt < s.nTiles; ++nt)
      for (int64_t c = 0; c < 2; ++c) {
        Value v = math::FmaOp::create(
            b, acc[(accTile * s.nTiles + nt) * 4 + 2 * h + c], f32(s.scaleLog2),
            logW);
        if (masked) {
          Value ok = arith::CmpIOp::create(b, arith::CmpIPredicate::sle,
                                           i32(nt * 8 + c), room);
          v = select(ok, v, negInf());
        }
        x.push_back(v);
      }
    return x;
  }

  /// y = x + spreadRow |k|^2 (1 - 2 p), p = exp2(x - m_x) / l_x: the
  /// spread correction of a slot 0 row of composite `mt`.
  SmallVector<Value> corrected(ArrayRef<Value> x, ArrayRef<Value> norms,
                               int64_t mt) {
    Value negM = safeNeg(xMax[mt]);
    SmallVector<Value> y;
    for (size_t j = 0; j < x.size(); ++j) {
      Value p = fmul(exp2Ftz(fadd(x[j], negM)), xInvSum[mt]);
      Value oneMinus2p = math::FmaOp::create(b, p, f32(-2.0f), f32(1.0f));
      y.push_back(math::FmaOp::create(b, fmul(spreadRow[mt], norms[j]),
                                      oneMinus2p, x[j]));
    }
    return y;
  }

  /// -m, with m = -inf (a row that saw only masked keys so far) taken as
  /// -FLT_MAX: exp2(-inf - m) is then 0, never NaN.
  Value safeNeg(Value m) {
    return arith::NegFOp::create(
        b, fmaxnum(m, f32(-std::numeric_limits<float>::max())));
  }

  /// The max over the quad of the lane's values `x` and `mOld`.
  Value quadMax(ArrayRef<Value> x, Value mOld) {
    Value m = mOld;
    for (Value v : x)
      m = fmaxnum(m, v);
    m = fmaxnum(m, shuffleXor(m, 1));
    return fmaxnum(m, shuffleXor(m, 2));
  }

  /// One of the two statistics passes: the online max and (the lane's share
  /// of the) sum of exp2 of each row's values over every key slot of every
  /// key tile. bothSlots = false: x of the slot 0 rows (2 rows a lane:
  /// composites mt = 0, 1); true: y of slot 0 and x of slot 1 (4 rows a
  /// lane, row 2 mt + h). Returns the maxima, then the sum shares.
  SmallVector<Value> passRowStats(bool bothSlots) {
    int64_t rows = bothSlots ? 4 : 2;
    SmallVector<Value> init(rows, negInf());
    init.append(rows, f32(0.0f));
    Value firstRowLimit =
        s.causal ? minU(sub(n.tk, idx(1)), lastVisible(t0)) : sub(n.tk, idx(1));
    return keyLoop(init, [&](Value kt, Value stageBase, ValueRange st) {
      Value whole = ule(mul(add(kt, 1), s.keyTile), add(firstRowLimit, 1));
      auto slotLoop = [&](bool masked) {
        return forLoop(
            idx(0), idx(s.keySlots), idx(1), st,
            [&](Value slot, ValueRange in) -> SmallVector<Value> {
              SmallVector<Value> acc = mmaSlot(stageBase, slot, bothSlots);
              Value logW = select(eq(slot, 0), f32(s.restLog2), f32(0.0f));
              SmallVector<Value> norms;
              if (bothSlots)
                norms = keyNormPairs(kt, slot);
              SmallVector<Value> next(in.begin(), in.end());
              for (int64_t row = 0; row < rows; ++row) {
                // bothSlots: row 2 mt + h of m tile mt; else row h of the
                // one tile, composite mt = h.
                int64_t mt = bothSlots ? row / 2 : row;
                int64_t h = bothSlots ? row % 2 : row;
                int64_t accTile = bothSlots ? mt : 0;
                SmallVector<Value> x =
                    rowLogits(acc, accTile, h, mt, kt, logW, masked);
                if (bothSlots && h == 0)
                  x = corrected(x, norms, mt);
                Value mOld = in[row];
                Value mNew = quadMax(x, mOld);
                Value negM = safeNeg(mNew);
                Value sum = fmul(in[rows + row], exp2Ftz(fadd(mOld, negM)));
                for (Value v : x)
                  sum = fadd(sum, exp2Ftz(fadd(v, negM)));
                next[row] = mNew;
                next[rows + row] = sum;
              }
              return next;
            });
      };
      return ifElse(
          whole, st.getTypes(), [&] { return slotLoop(false); },
          [&] { return slotLoop(true); });
    });
  }

  /// scf.if `cond` with results: then() / otherwise().
  SmallVector<Value> ifElse(Value cond, TypeRange types,
                            function_ref<SmallVector<Value>()> then,
                            function_ref<SmallVector<Value>()> otherwise) {
    auto op = scf::IfOp::create(b, types, cond, /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    scf::YieldOp::create(b, then());
    b.setInsertionPointToStart(&op.getElseRegion().front());
    scf::YieldOp::create(b, otherwise());
    return SmallVector<Value>(op.getResults());
  }

  /// The third pass: per key tile, A = omega_0 p'_0 + omega_1 p_1 summed
  /// over the key slots per (composite, key composite) in registers, then
  /// storeTileScores.
  void passBlockScores() {
    Value firstRowLimit =
        s.causal ? minU(sub(n.tk, idx(1)), lastVisible(t0)) : sub(n.tk, idx(1));
    keyLoop({}, [&](Value kt, Value stageBase, ValueRange) {
      Value whole = ule(mul(add(kt, 1), s.keyTile), add(firstRowLimit, 1));
      int64_t perRow = 2 * s.nTiles;
      SmallVector<Type> types(2 * perRow, b.getF32Type());
      auto slotLoop = [&](bool masked) {
        return forLoop(idx(0), idx(s.keySlots), idx(1),
                       SmallVector<Value>(2 * perRow, f32(0.0f)),
                       [&](Value slot, ValueRange in) -> SmallVector<Value> {
                         SmallVector<Value> acc =
                             mmaSlot(stageBase, slot, true);
                         Value logW =
                             select(eq(slot, 0), f32(s.restLog2), f32(0.0f));
                         SmallVector<Value> norms = keyNormPairs(kt, slot);
                         SmallVector<Value> next(in.begin(), in.end());
                         for (int64_t mt = 0; mt < 2; ++mt) {
                           for (int64_t h = 0; h < 2; ++h) {
                             int64_t row = 2 * mt + h;
                             SmallVector<Value> x =
                                 rowLogits(acc, mt, h, mt, kt, logW, masked);
                             if (h == 0)
                               x = corrected(x, norms, mt);
                             Value negM = safeNeg(finalMax[row]);
                             for (int64_t j = 0; j < perRow; ++j)
                               next[mt * perRow + j] = math::FmaOp::create(
                                   b, exp2Ftz(fadd(x[j], negM)), finalCoef[row],
                                   next[mt * perRow + j]);
                           }
                         }
                         return next;
                       });
      };
      SmallVector<Value> a = ifElse(
          whole, types, [&] { return slotLoop(false); },
          [&] { return slotLoop(true); });
      storeTileScores(kt, a);
      return SmallVector<Value>{};
    });
  }

  /// The query reduction of two partial scores.
  Value reduce(Value x, Value y) {
    if (s.reduce == QueryReduce::sum)
      return fadd(x, y);
    return arith::MaximumFOp::create(b, x, y);
  }

  /// The scores of key tile `kt` from `a` (per composite mt, the lane's 2
  /// nTiles key composites, n8 tile major): block sums over the key
  /// composites (in-thread, then over the quad's lanes that share a block),
  /// the query reduction over the block's composites (lanes quad ^ 1, 2, 4
  /// and, 16 composites a block, the two m tiles), stored by one lane per
  /// (query block, key block).
  void storeTileScores(Value kt, ArrayRef<Value> a) {
    int64_t perRow = 2 * s.nTiles;
    // Per composite: values v[i] for the lane's blocks blockOf(i).
    SmallVector<SmallVector<Value>> v(2);
    SmallVector<Value> blockOf; // key block within the tile (index)
    Value writerLane;           // the lane of the quad that stores
    if (s.kBlk >= 8) {
      int64_t perBlock = s.kBlk / 8;
      for (int64_t mt = 0; mt < 2; ++mt)
        for (int64_t j = 0; j < s.blocksPerKeyTile(); ++j) {
          Value sum = f32(0.0f);
          for (int64_t e = 0; e < perBlock * 2; ++e)
            sum = fadd(sum, a[mt * perRow + j * perBlock * 2 + e]);
          sum = fadd(sum, shuffleXor(sum, 1));
          v[mt].push_back(fadd(sum, shuffleXor(sum, 2)));
        }
      for (int64_t j = 0; j < s.blocksPerKeyTile(); ++j)
        blockOf.push_back(idx(j));
      writerLane = eq(qlane, 0);
    } else {
      // kBlk 2 or 4: the lane's pair (2 q, 2 q + 1) of n8 tile nt lies in
      // block (8 nt + 2 q) / kBlk, shared by kBlk / 2 lanes.
      for (int64_t mt = 0; mt < 2; ++mt)
        for (int64_t nt = 0; nt < s.nTiles; ++nt) {
          Value sum =
              fadd(a[mt * perRow + 2 * nt], a[mt * perRow + 2 * nt + 1]);
          if (s.kBlk == 4)
            sum = fadd(sum, shuffleXor(sum, 1));
          v[mt].push_back(sum);
        }
      for (int64_t nt = 0; nt < s.nTiles; ++nt)
        blockOf.push_back(div(add(idx(8 * nt), mul(qlane, 2)), s.kBlk));
      writerLane = eq(rem(qlane, s.kBlk / 2), 0);
    }
    // Composites past Tq leave the reduction (the scores are >= 0, so 0
    // is the max's identity too).
    for (int64_t mt = 0; mt < 2; ++mt)
      for (Value &x : v[mt])
        x = select(inside[mt], x, f32(0.0f));
    // Over the block's composites: quads (lanes 4 apart) then m tiles.
    int64_t within = std::min<int64_t>(s.qBlk, 8);
    for (int64_t mask = 4; mask < 4 * within; mask *= 2)
      for (int64_t mt = 0; mt < 2; ++mt)
        for (Value &x : v[mt])
          x = reduce(x, shuffleXor(x, mask));
    int64_t tiles = 2;
    if (s.qBlk == 16) {
      for (size_t i = 0; i < v[0].size(); ++i)
        v[0][i] = reduce(v[0][i], v[1][i]);
      tiles = 1;
    }
    Value firstBlock = mul(kt, s.blocksPerKeyTile());
    Value writer = andI(writerLane, eq(rem(quad, within), 0));
    for (int64_t mt = 0; mt < tiles; ++mt) {
      Value qb = div(composite[mt], s.qBlk);
      Value rowWriter = andI(writer, inside[mt]);
      for (size_t i = 0; i < v[mt].size(); ++i) {
        Value kb = add(firstBlock, blockOf[i]);
        ifThen(andI(rowWriter, ult(kb, n.nbk)),
               [&] { store(v[mt][i], scores, {batchIdx, group, qb, kb}); });
      }
    }
  }

  /// Score 0 for the key blocks past the CTA's walked key tiles, for each
  /// of its query blocks (half the blocks of a causal row).
  void zeroUnwalkedBlocks() {
    Value walked = minU(n.nbk, mul(numKeyTiles, s.blocksPerKeyTile()));
    Value width = sub(n.nbk, walked);
    Value firstQb = div(t0, s.qBlk);
    Value qbs = sub(minU(n.nbq, add(firstQb, s.rows / s.qBlk)), firstQb);
    forLoop(tid, mul(qbs, width), idx(s.threads), {}, [&](Value i, ValueRange) {
      store(f32(0.0f), scores,
            {batchIdx, group, add(firstQb, div(i, width)),
             add(walked, rem(i, width))});
      return SmallVector<Value>{};
    });
  }
};

/// The f32 sum over d of `f(x[..., d])` of a rank-5 composite buffer.
Value sumOverDim(KernelBuilder &kb, Value buffer, ValueRange prefix,
                 int64_t headDim, bool square) {
  SmallVector<Value> init = {kb.f32(0.0f)};
  return kb
      .forLoop(
          kb.idx(0), kb.idx(headDim), kb.idx(1), init,
          [&](Value d, ValueRange acc) -> SmallVector<Value> {
            SmallVector<Value> at(prefix.begin(), prefix.end());
            at.push_back(d);
            Value x = arith::ExtFOp::create(kb.b, kb.b.getF32Type(),
                                            kb.load(buffer, at));
            return {square ? math::FmaOp::create(kb.b, x, x, acc[0]).getResult()
                           : kb.fadd(acc[0], x)};
          })
      .front();
}

struct OutlierScoreToGPU : OpRewritePattern<BlockScoreOp> {
  OutlierScoreToGPU(MLIRContext *ctx, const ScoreKernelOptions &options)
      : OpRewritePattern(ctx, /*benefit=*/2), options(options) {}

  LogicalResult matchAndRewrite(BlockScoreOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getEstimator() != Estimator::outlier || !op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "not an outlier buffer form");
    ScoreKernelOptions opts = options;
    opts.compositeType = getElementTypeOrSelf(op.getQc().getType());
    std::string why = outlierScoreUnsupportedReason(op, opts);
    if (!why.empty())
      return op.emitOpError() << "cannot be lowered to the outlier scoring "
                                 "kernel: "
                              << why
                              << " (lower it with convert-unisparse-to-linalg "
                                 "before bufferization)";
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KernelBuilder kb{b};
    Value qc = op.getQc(), kc = op.getKc(), scores = op.getInit();
    auto qcType = cast<MemRefType>(qc.getType());
    auto kcType = cast<MemRefType>(kc.getType());

    OutlierShape s;
    s.warps = opts.warps;
    s.threads = 32 * s.warps;
    s.rows = kWarpComposites * s.warps;
    s.keyTile = opts.keyTile;
    s.nTiles = s.keyTile / 8;
    s.keySlots = kcType.getDimSize(3);
    s.headDim = qcType.getDimSize(4);
    s.kSteps = s.headDim / 16;
    s.cq = op.getCQ();
    s.ck = op.getCK();
    s.qBlk = op.getBlock() / s.cq;
    s.kBlk = op.getBlock() / s.ck;
    s.causal = op.getCausal();
    s.kvGroup = op.getKvGroup();
    s.reduce = op.getQueryReduce();
    double scale = op.getScale().convertToDouble();
    if (scale == 0.0)
      scale = 1.0 / std::sqrt(static_cast<double>(s.headDim));
    int64_t rq = qcType.getDimSize(3) - 2, rk = s.keySlots - 1;
    s.scaleLog2 = static_cast<float>(scale * M_LOG2E);
    s.restLog2 = static_cast<float>(std::log2(static_cast<double>(s.ck - rk)));
    s.spreadLog2 = static_cast<float>(0.5 * M_LOG2E * scale * scale);
    s.omega0 = static_cast<float>(static_cast<double>(s.cq - rq) / s.cq);
    s.omega1 = static_cast<float>(1.0 / s.cq);
    s.element = opts.compositeType;

    OutlierSizes n;
    n.batch = memref::DimOp::create(b, qc, 0);
    n.groups = memref::DimOp::create(b, qc, 1);
    n.tq = memref::DimOp::create(b, qc, 2);
    n.tk = memref::DimOp::create(b, kc, 2);
    n.nbq = memref::DimOp::create(b, scores, 2);
    n.nbk = memref::DimOp::create(b, scores, 3);
    n.queryTiles = kb.ceilDiv(n.tq, s.rows);
    n.keyTiles = kb.ceilDiv(n.tk, s.keyTile);
    Value keyGroups = memref::DimOp::create(b, kc, 1);

    // |k|^2 per key slot, slot major, padded to whole key tiles (0 there).
    Type f32 = b.getF32Type();
    Value paddedKeys = kb.mul(n.keyTiles, s.keyTile);
    auto normsType =
        MemRefType::get(SmallVector<int64_t>(4, ShapedType::kDynamic), f32);
    Value keyNorms = memref::AllocOp::create(
        b, normsType,
        ValueRange{n.batch, keyGroups, kb.idx(s.keySlots), paddedKeys});
    Value slots = kb.idx(s.keySlots);
    launchPerItem(
        b, kb.mul(kb.mul(kb.mul(n.batch, keyGroups), slots), paddedKeys),
        kPrepThreads, "unisparse_outlier_key_norms",
        [&](KernelBuilder &k, Value i) {
          SmallVector<Value> at =
              k.delinearize(i, {n.batch, keyGroups, slots, paddedKeys});
          Value u = at[3], in = k.ult(u, n.tk);
          Value norm = sumOverDim(
              k, kc, {at[0], at[1], k.select(in, u, k.idx(0)), at[2]},
              s.headDim, /*square=*/true);
          k.store(k.select(in, norm, k.f32(0.0f)), keyNorms, at);
        });
    // v per query composite: the mean over d of its spread slot.
    auto spreadType =
        MemRefType::get(SmallVector<int64_t>(3, ShapedType::kDynamic), f32);
    Value spread = memref::AllocOp::create(b, spreadType,
                                           ValueRange{n.batch, n.groups, n.tq});
    launchPerItem(
        b, kb.mul(kb.mul(n.batch, n.groups), n.tq), kPrepThreads,
        "unisparse_outlier_query_spread", [&](KernelBuilder &k, Value i) {
          SmallVector<Value> at = k.delinearize(i, {n.batch, n.groups, n.tq});
          Value total = sumOverDim(k, qc, {at[0], at[1], at[2], k.idx(rq + 1)},
                                   s.headDim, /*square=*/false);
          k.store(k.fmul(total, k.f32(1.0f / static_cast<float>(s.headDim))),
                  spread, at);
        });
    Value ctas = kb.mul(kb.mul(n.batch, n.groups), n.queryTiles);
    buildLaunch(
        b, ctas, s.threads, {stagesType(s)}, "unisparse_outlier_score",
        [&](ImplicitLocOpBuilder &lb, Value tid, Value bid, ValueRange wg) {
          OutlierKernel(lb, s, n, qc, kc, keyNorms, spread, scores)
              .build(tid, bid, wg.front());
        });
    memref::DeallocOp::create(b, keyNorms);
    memref::DeallocOp::create(b, spread);
    rewriter.eraseOp(op);
    return success();
  }

  ScoreKernelOptions options;
};
} // namespace

std::string mlir::unisparse::outlierScoreUnsupportedReason(
    Operation *operation, const ScoreKernelOptions &options) {
  auto op = dyn_cast<BlockScoreOp>(operation);
  if (!op || op.getEstimator() != Estimator::outlier)
    return "not a block_score of the outlier estimator";
  if (!options.compositeType ||
      !(options.compositeType.isBF16() || options.compositeType.isF16()))
    return "composites are not 16-bit";
  if (op.getQueryOffset())
    return "the op is already a tile (query_offset)";
  auto qcType = cast<ShapedType>(op.getQc().getType());
  auto kcType = cast<ShapedType>(op.getKc().getType());
  if (qcType.getRank() != 5 || kcType.getRank() != 5)
    return "the composites must be [B, G, T, slots, D]";
  int64_t d = qcType.getDimSize(4);
  if (ShapedType::isDynamic(d) || d % 16 != 0 || d > 128)
    return "head_dim must be static, a multiple of 16 and at most 128";
  if (qcType.getDimSize(3) != 3)
    return "the kernel takes one query outlier (query composites of 3 "
           "slots: rest, outlier, spread)";
  int64_t keySlots = kcType.getDimSize(3);
  if (ShapedType::isDynamic(keySlots) || keySlots < 2)
    return "the key composites' slots must be static (rest and outliers)";
  int64_t qBlk = op.getBlock() / op.getCQ(), kBlk = op.getBlock() / op.getCK();
  if (qBlk > 16 || 16 % qBlk != 0)
    return llvm::formatv("block / c_q = {0} must divide 16 (a warp's query "
                         "composites)",
                         qBlk)
        .str();
  if (options.warps <= 0 || options.keyTile <= 0 || options.keyTile % 16 ||
      (options.keyTile * keySlots * d / 8) % (32 * options.warps))
    return "the key tile must be a multiple of 16 whose 16-byte chunks (all "
           "slots) divide among the CTA's threads";
  if (kBlk != 2 && kBlk != 4 && kBlk % 8 != 0)
    return llvm::formatv("block / c_k = {0} must be 2, 4 or a multiple of 8",
                         kBlk)
        .str();
  if (options.keyTile % kBlk != 0)
    return llvm::formatv("block / c_k = {0} must divide the key tile ({1})",
                         kBlk, options.keyTile)
        .str();
  int64_t bytes = kStages * options.keyTile * keySlots * (d + kRowPad) *
                  (options.compositeType.getIntOrFloatBitWidth() / 8);
  if (bytes > kMaxWorkgroupBytes)
    return llvm::formatv("the key stages ({0} composites of {1} slots, x {2}) "
                         "need {3} bytes of workgroup memory, more than {4}",
                         options.keyTile, keySlots, kStages, bytes,
                         kMaxWorkgroupBytes)
        .str();
  return "";
}

void mlir::unisparse::populateOutlierScoreToGPUPatterns(
    RewritePatternSet &patterns, const ScoreKernelOptions &options) {
  patterns.add<OutlierScoreToGPU>(patterns.getContext(), options);
}
