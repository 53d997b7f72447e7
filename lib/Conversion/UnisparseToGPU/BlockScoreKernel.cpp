//===- BlockScoreKernel.cpp - block_score as a tensor-core GPU kernel -----===//
//
// unisparse.block_score (mean, antidiag and antidiag_lse estimators) in
// buffer form becomes a persistent kernel that never stores the composite
// map:
//
//   host:  scratch as device buffers (partial sums, maxima; separate: and
//          row sums): a slot per CTA, or (epilogue=separate) a slot per
//          CTA tile, i.e. a row per query composite; the scoring launch of
//          min(tiles, ctas) CTAs; with the separate epilogue, then the
//          ScoreEpilogue launch.
//   CTA:   a static persistent schedule: tiles are (batch, head group, rows
//          of 32 * warps query composites), head-major, the heaviest causal
//          tile of a head first; CTA c takes tiles c, c + grid, ... Every
//          index is derived from the block id and the sizes, so ptxas knows
//          the loops are warp-uniform and emits plain shuffles (with a tile
//          index read from workgroup memory, as an atomic work counter gives,
//          it wrapped half of the shuffles in divergence-safe collective
//          sequences; docs/GPU.md has the numbers). Per tile:
//            loadQueryFragments  the CTA's query composites as mma A
//                                fragments in registers (one load);
//                                or poolQueryFragments: pooled from the
//                                raw queries into a workgroup tile (the
//                                query compress fused, below);
//            per key tile of `keyTile` composites, three stages (one
//            barrier per key tile; the tile two ahead is issued after it):
//              loadKeyTileAsync  cp.async of a tile into workgroup memory
//                                (from key head group / kv_group)
//                                (rows padded by 8 elements: the ldmatrix
//                                rows and the 16-byte copies are
//                                bank-conflict free); a tile inside Tk as
//                                it is (a thread's copies a constant
//                                apart), the last one clamped and
//                                zero-filled past Tk; the stage (kt mod
//                                3) is carried by the loop;
//              mmaTile           S = Q K^T on mma.sync m16n8k16 (f32 acc);
//              softmaxStep       S masked (-inf past each row's last key;
//                                only on tiles some row of the CTA does
//                                not see whole);
//                                the row's tile max (quad shuffles); the
//                                running max m of x = S * scale * log2(e),
//                                rounded up to an integer; e = exp2(x - m)
//                                (one FMA);
//                                the per-key-block sums P of e (a
//                                reduce-scatter over the quad by rows:
//                                each lane ends with one row's blocks)
//                                into the scratch (f16 or f32, key tile
//                                major: one vector store a lane), with
//                                that row's m per key tile; the lane's
//                                row sum l rescaled by 2^(m_old - m)
//                                from the exponent bits (one FMA);
//            blockScores         (fused) the tile's scores: for query
//                                block I, key block J, the sum (or max)
//                                over its query composites of
//                                P * exp2(m_tile - m) / l (exact powers of
//                                two: the maxima are integers).
//   epilogue=separate: the tile ends after its key loop with each row's
//   1 / l to the scratch (then a barrier), and ScoreEpilogue, a
//   memory-bound kernel with a CTA per query block, forms the scores as
//   blockScores does in one pass over the stored P: no CTA waits on a
//   score pass between its tiles.
//
// Pooled queries (fuse-query-pooling; QueryPoolingFusion.cpp finds the
// mean compress whose composites only this kernel reads): each tile, after
// its first key tiles' copies are issued, prefetches its raw query rows
// into L2, pools them (MeanPooling: the compress kernel's f32 sums, order
// and rounding, so the same bits) with 16-byte loads into a workgroup tile
// and takes the A fragments from it by ldmatrix; the compress, its buffer
// and its launch are gone.
//
// The antidiagonal estimators (composites [T, s, D]: s tokens side by side,
// queries reversed) run the same kernel with K = s * D. A query composite
// row is then too long for A fragments in registers, so the key loop walks
// chunks (key tile kt, slot a), s per key tile: a stage holds the slot's
// key tile and, after it, the CTA's query composites of that slot (both by
// cp.async, one pipeline), and mmaTile takes A by ldmatrix.x4 from the
// stage. antidiag sums the chunks' products into one set of accumulators
// and takes the mean's softmax step with scale / s; antidiag_lse computes
// each slot's logits from zero and folds them into per-element running
// exponentials E = E * exp2(m_old - m) + exp2(x_a - m) (lseKeyTile): the
// slot logits never leave the registers. A warp takes 16 query composites
// (scoreWarpRows): the stages of 64 keys and 64 query composites (104 KiB
// at D = 128) let two CTAs share an SM.
//
// Numbers: composites are rounded to 16 bits once (the compress), products
// accumulate in f32 on the tensor cores, exp2 is ex2.approx.f32, statistics
// and sums are f32. NaN logits are left out of the max (max.f32) and reach
// the sums, so a row with a NaN logit has NaN scores in every key block, as
// on the CPU path.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 with .bf16/.f16, row.col): lane
// l = 4 * quad + q. A (16x16, row-major): reg 0 = rows quad, cols 2q..2q+1;
// reg 1 = row quad + 8, same cols; regs 2, 3 = the same rows, cols + 8.
// B (16x8, "col": K stored [keys, D] row-major): reg 0 = key quad, dims
// 2q..2q+1; reg 1 = dims + 8; ldmatrix.x4 without .trans on the key tile
// gives two n-tiles' B registers. C/D (16x8 f32): element [h][c] = row
// quad + 8h, col 2q + c. So the four lanes of a quad hold one row: a row
// reduction is in-thread then shuffle xor 1 and 2.
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <numeric>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

namespace {
/// Key tiles in flight in workgroup memory: the one the warps read, the
/// next one landing and the one after it being issued, so one barrier per
/// key tile suffices (the stage a copy overwrites was read two tiles ago).
constexpr int64_t kStages = 3;
/// Padding of a key-tile row in workgroup memory (elements).
constexpr int64_t kRowPad = 8;
/// Fused query pooling: the 16-byte loads of a round, all before its first
/// add (whole chunks: 2 of 16 tokens at c_q = 16). ptxas issues about 16 of
/// them ahead of the adds whatever the round holds, and the rest as the
/// first are consumed, so a round of 32 streams where one of 16 would wait
/// a full latency per chunk.
constexpr int64_t kPoolLoadsInFlight = 32;

/// The static parameters of one scoring kernel.
struct ScoreShape {
  int64_t warps, threads, rows; // rows: query composites per CTA tile
  int64_t warpRows, mTiles;     // query composites per warp, m16 tiles
  int64_t keyTile, nTiles;      // key composites per tile, n8 tiles
  int64_t headDim, kSteps;      // D, D / 16
  int64_t cq, ck, rq, rk;       // composite sizes, composites per block
  int64_t blocksPerKeyTile;     // keyTile / rk
  int64_t queryBlocksPerTile;   // rows / rq
  bool causal;
  int64_t kvGroup; // head groups per key composite head
  /// The scores by a second kernel (ScoreEpilogue) from scratch rows for
  /// every query composite, instead of at the end of each CTA tile.
  bool separate;
  QueryReduce reduce;
  /// Slots of a composite: 1 (mean pooling), or the antidiagonal stride s
  /// (composites [T, s, D]: the key loop walks s chunks of D per key tile).
  int64_t slots;
  /// antidiag_lse: each slot's logits exponentiated on their own (the
  /// log-mean-exp), instead of summed before one softmax (antidiag).
  bool lse;
  float scaleLog2; // softmax scale * log2(e) (/ s for antidiag)
  Type element;    // bf16 or f16
  Type partial;    // the scratch's partial sums: f16 or f32
  /// The query composites pooled by the kernel from the raw queries (the
  /// query compress fused into the tile load), in a workgroup tile.
  bool pooledQueries = false;
  /// Rows of the C fragments a lane holds (2 per m16 tile).
  int64_t laneRows() const { return 2 * mTiles; }
  /// Rows of a workgroup-memory stage: the key tile's, then (slots > 1)
  /// the CTA's query composites of the same slot.
  int64_t stageRows() const { return keyTile + (slots > 1 ? rows : 0); }
};

/// The raw queries a scoring kernel with `pooledQueries` pools (the fused
/// compress's input and pooling), their length N, and N where their rows
/// are 16-byte aligned, else 0 (evaluated on the host: the tiles of whole
/// composites up to it take 16-byte loads; one compare per tile decides).
struct QuerySource {
  MeanPooling pool;
  int64_t seqFactor;
  Value seqLen, alignedLen;
  /// Each whole tile's raw queries prefetched into L2 first.
  bool prefetch;
};

/// The dynamic sizes of one scoring launch.
struct ScoreSizes {
  Value batch, groups, tq, tk, nbq, nbk;
  Value queryTiles, tiles, keyTiles; // per head, all, key tiles of Tk
  Value blockStride; // keyTiles * blocksPerKeyTile >= nbk: a scratch row
  // The separate epilogue: work units per head (causal: pairs of query
  // tiles), the key tiles of a unit's scratch slot (separateUnitKeyTiles),
  // and the units [chunkBegin, chunkEnd) of this launch.
  Value unitsPerHead, unitKeyTiles, chunkBegin, chunkEnd;
};

/// The size rules' arithmetic (ShapeRules.h) on index values, so the
/// kernel's scratch and the workspace rule share one formula.
struct IndexArith {
  KernelBuilder &kb;
  using Value = ::mlir::Value;
  Value constant(int64_t c) const { return kb.idx(c); }
  Value add(Value x, Value y) const { return kb.add(x, y); }
  Value mul(Value x, Value y) const { return kb.mul(x, y); }
  Value ceilDiv(Value x, int64_t y) const { return kb.ceilDiv(x, y); }
  Value min(Value x, Value y) const { return kb.minU(x, y); }
  Value max(Value x, Value y) const { return kb.maxU(x, y); }
};

/// Where a CTA tile's scratch is, key tile major: for key tile kt, row r's
/// partial sum of the tile's block j at partials[partialBase + (kt * rows +
/// r) * blocksPerKeyTile + j], its max at maxima[maximaBase + kt * rows +
/// r], and (separate epilogue) 1 / its sum over every key at
/// rowSums[rowSumBase + r]. So a key tile's stores are one base per tile
/// plus per-lane constants, and a query block's entries of a key tile are
/// contiguous (rq * blocksPerKeyTile partial sums, rq maxima).
struct TileScratch {
  Value partialBase, maximaBase, rowSumBase;

  Value partial(KernelBuilder &kb, const ScoreShape &s, Value kt, Value row,
                Value blk) const {
    Value tileRow = kb.add(kb.mul(kt, s.rows), row);
    return kb.add(kb.add(partialBase, kb.mul(tileRow, s.blocksPerKeyTile)),
                  blk);
  }
  Value maximum(KernelBuilder &kb, const ScoreShape &s, Value kt,
                Value row) const {
    return kb.add(maximaBase, kb.add(kb.mul(kt, s.rows), row));
  }
};

/// The last key composite query composite `t` sees (causal: u * c_k <=
/// (t + 1) * c_q - 1), before the clamp to Tk - 1.
Value lastVisibleKey(KernelBuilder &kb, const ScoreShape &s, Value t) {
  return kb.div(kb.sub(kb.mul(kb.add(t, 1), s.cq), kb.idx(1)), s.ck);
}

/// The key tiles the CTA tile of `rowsHere` query composites from `t0`
/// walks: those its last row sees. Both kernels of the separate epilogue
/// derive which scratch entries were written from it.
Value keyTilesOfQueryTile(KernelBuilder &kb, const ScoreShape &s,
                          const ScoreSizes &n, Value t0, Value rowsHere) {
  Value numKeys = n.tk;
  if (s.causal)
    numKeys = kb.minU(
        n.tk,
        kb.add(lastVisibleKey(kb, s, kb.add(t0, kb.sub(rowsHere, kb.idx(1)))),
               1));
  return kb.ceilDiv(numKeys, s.keyTile);
}

/// A CTA tile of the separate epilogue's work: (head, query tile), the key
/// tiles its rows walk, its scratch, and whether it exists (the second
/// tile of an odd Q's middle unit does not).
struct UnitTile {
  Value head, queryTile, keyTiles, exists;
  TileScratch scratch;
};

/// The query tiles of work unit `unit` (of the separate epilogue), in
/// scratch slot `slot`: causal, unit p of a head is tile Q - 1 - p (`which`
/// 0, the heavier) then tile p (`which` 1, if distinct), their scratch rows
/// packed one after the other in the slot (the pair walks at most
/// unitKeyTiles key tiles); non-causal, tile p alone. Both kernels of a
/// chunk derive their indices from it.
UnitTile tileOfUnit(KernelBuilder &kb, const ScoreShape &s, const ScoreSizes &n,
                    Value unit, Value slot, Value which) {
  UnitTile u;
  u.head = kb.div(unit, n.unitsPerHead);
  Value p = kb.rem(unit, n.unitsPerHead);
  auto keyTilesOf = [&](Value qt) {
    Value t0 = kb.mul(qt, s.rows);
    return keyTilesOfQueryTile(kb, s, n, t0,
                               kb.minU(kb.idx(s.rows), kb.sub(n.tq, t0)));
  };
  Value slotRows = kb.mul(slot, s.rows);
  Value offset = kb.mul(slotRows, n.unitKeyTiles); // key-tile rows before
  if (s.causal) {
    Value heavy = kb.sub(kb.sub(n.queryTiles, kb.idx(1)), p);
    Value second = kb.eq(which, 1);
    u.queryTile = kb.select(second, p, heavy);
    u.exists = kb.orI(kb.eq(which, 0), kb.ult(p, heavy));
    u.keyTiles = keyTilesOf(u.queryTile);
    Value heavyTiles = kb.select(second, keyTilesOf(heavy), kb.idx(0));
    offset = kb.add(offset, kb.mul(heavyTiles, s.rows));
  } else {
    u.queryTile = p;
    u.exists = kb.eq(which, 0);
    u.keyTiles = n.keyTiles;
  }
  u.scratch.partialBase = kb.mul(offset, s.blocksPerKeyTile);
  u.scratch.maximaBase = offset;
  u.scratch.rowSumBase = kb.mul(
      kb.add(kb.mul(slot, separateTilesPerUnit(s.causal)), which), s.rows);
  return u;
}

/// A query composite's coefficient of a key tile, exp2(m_tile - m) / l (the
/// factor an exact power of two: the maxima are integers).
Value shareCoefficient(KernelBuilder &kb, Value tileMax, Value rowMax,
                       Value rowInvSum) {
  return kb.fmul(kb.exp2Ftz(kb.fsub(tileMax, rowMax)), rowInvSum);
}

/// A query composite's share of a block score, P * coefficient, folded into
/// `score` by the query reduction (a sum: one FMA); where `use` is given and
/// false (a row past Tq, whose values may be anything), `score` unchanged.
Value foldShare(KernelBuilder &kb, QueryReduce reduce, Value score, Value part,
                Value coefficient, Value use) {
  Value next =
      reduce == QueryReduce::sum
          ? math::FmaOp::create(kb.b, part, coefficient, score).getResult()
          : arith::MaximumFOp::create(kb.b, score, kb.fmul(part, coefficient))
                .getResult();
  return use ? kb.select(use, next, score) : next;
}

/// The score of a key block: `compute()` where `written` (the scoring
/// kernel wrote its partial sums), else 0 without loading anything (half
/// the blocks of a causal row).
Value scoreIfWritten(KernelBuilder &kb, Value written,
                     function_ref<Value()> compute) {
  return kb.ifElseValue(written, kb.b.getF32Type(), compute,
                        [&] { return kb.f32(0.0f); });
}

/// Emits the kernel of one scoring launch.
class ScoreKernel : KernelBuilder {
public:
  /// `q`: the query composites, or null when `pooled` (the raw queries the
  /// kernel pools itself).
  ScoreKernel(ImplicitLocOpBuilder &b, const ScoreShape &s,
              const ScoreSizes &sizes, Value q, const QuerySource *pooled,
              Value k, Value scores, Value partials, Value maxima,
              Value rowSums)
      : KernelBuilder{b}, s(s), n(sizes), q(q), pooled(pooled), k(k),
        scores(scores), partials(partials), maxima(maxima), rowSums(rowSums) {}

  /// The workgroup buffers: key tiles [kStages, keyTile, D + pad]; for the
  /// fused epilogue, the final row max and 1 / row sum; with pooled
  /// queries, the CTA's query composites [rows, D + pad].
  static SmallVector<MemRefType> workgroupTypes(const ScoreShape &s) {
    Type f32 = Float32Type::get(s.element.getContext());
    SmallVector<MemRefType> types = {workgroupMemRef(
        {kStages, s.stageRows(), s.headDim + kRowPad}, s.element)};
    if (!s.separate)
      types.append(
          {workgroupMemRef({s.rows}, f32), workgroupMemRef({s.rows}, f32)});
    if (s.pooledQueries)
      types.push_back(
          workgroupMemRef({s.rows, s.headDim + kRowPad}, s.element));
    return types;
  }

  /// Bytes of workgroup memory of the kernel for `s`.
  static int64_t workgroupBytes(const ScoreShape &s) {
    int64_t bytes = 0;
    for (MemRefType type : workgroupTypes(s))
      bytes += type.getNumElements() * type.getElementTypeBitWidth() / 8;
    return bytes;
  }

  void build(Value threadId, Value blockId, Value gridSize,
             ValueRange workgroup) {
    tid = threadId;
    // The key stages as one flat buffer: every address below is a
    // per-thread base plus a constant (ptxas folds it into the instruction)
    // plus the stage's offset, instead of one 64-bit address per (n tile,
    // k step) kept live across the key loop.
    keys = memref::CollapseShapeOp::create(
        b, workgroup[0], SmallVector<ReassociationIndices>{{0, 1, 2}});
    if (!s.separate) {
      rowMax = workgroup[1];
      rowInvSum = workgroup[2];
    }
    Value lane = rem(tid, 32);
    warp = div(tid, 32);
    quad = div(lane, 4);
    qlane = rem(lane, 4);
    // The lane's own row after the quad's reduce-scatters (laneOwnedRow):
    // of its rows quad + 8 r (r = 2 mt + h), r = qlane mod laneRows.
    laneBit0 = laneBit(1);
    laneBit1 = laneBit(2);
    ownRowLocal =
        add(add(mul(warp, s.warpRows), quad), mul(rem(qlane, s.laneRows()), 8));
    // ldmatrix.x4: lane l addresses row l % 8 of matrix l / 8; matrices 0,
    // 1 are the first n8 tile's dims [0, 8) and [8, 16), matrices 2, 3 the
    // second n8 tile's.
    Value ldRow = add(mul(div(lane, 16), 8), rem(lane, 8));
    Value ldCol = mul(rem(div(lane, 8), 2), 8);
    ldBase = add(mul(ldRow, rowElems()), ldCol);
    // A fragments from a stage's query rows (slots > 1): lane l addresses
    // row l % 16, columns 8 (l / 16) of the warp's m16 tile, so matrices
    // 0..3 are A registers 0..3 (rows +8 second, columns +8 third).
    if (s.slots > 1)
      aBase = add(mul(add(add(mul(warp, s.warpRows), rem(lane, 16)), s.keyTile),
                      rowElems()),
                  mul(div(lane, 16), 8));
    // The same addressing on the pooled query tile (rows from 0).
    if (s.pooledQueries) {
      pooledTile = memref::CollapseShapeOp::create(
          b, workgroup.back(), SmallVector<ReassociationIndices>{{0, 1}});
      pooledTileBase =
          add(mul(add(mul(warp, s.warpRows), rem(lane, 16)), rowElems()),
              mul(div(lane, 16), 8));
    }
    if (!s.separate) {
      // A slot per CTA, reused by its tiles.
      Value slotRows = mul(blockId, s.rows);
      TileScratch slot{mul(slotRows, n.blockStride), mul(slotRows, n.keyTiles),
                       Value()};
      forLoop(blockId, n.tiles, gridSize, {}, [&](Value tile, ValueRange) {
        // Head-major; within a head the causal tiles run longest first.
        Value head = div(tile, n.queryTiles);
        Value r = rem(tile, n.queryTiles);
        processTile(head, s.causal ? sub(sub(n.queryTiles, idx(1)), r) : r,
                    slot);
        return SmallVector<Value>{};
      });
      return;
    }
    // The chunk's units, a slot each; a causal unit's two tiles one after
    // the other (one copy of the key loop in the code).
    forLoop(add(n.chunkBegin, blockId), n.chunkEnd, gridSize, {},
            [&](Value unit, ValueRange) {
              Value slot = sub(unit, n.chunkBegin);
              Value tiles = idx(1);
              if (s.causal) {
                UnitTile second = tileOfUnit(*this, s, n, unit, slot, idx(1));
                tiles = select(second.exists, idx(2), idx(1));
              }
              forLoop(idx(0), tiles, idx(1), {}, [&](Value which, ValueRange) {
                UnitTile u = tileOfUnit(*this, s, n, unit, slot, which);
                processTile(u.head, u.queryTile, u.scratch);
                return SmallVector<Value>{};
              });
              return SmallVector<Value>{};
            });
  }

private:
  const ScoreShape &s;
  const ScoreSizes &n;
  Value q;
  const QuerySource *pooled;
  Value k, scores, partials, maxima, rowSums;
  Value tid, warp, quad, qlane, ldBase, aBase, pooledTileBase;
  Value laneBit0, laneBit1, ownRowLocal;
  Value ownMaxima; // maxima index of the own row at key tile 0
  Value keys, rowMax, rowInvSum, pooledTile;
  // Per tile.
  Value batchIdx, group, keyHead, t0, queryTile, numKeyTiles;
  TileScratch scratch;
  SmallVector<Value> rowLimits; // the last key of each of the lane's rows
  Value numChunks;              // key tiles * slots
  Value asyncGroup; // the token the chunk waits name (the count matters)

  /// Whether bit `mask` of the lane's index in its quad is set.
  Value laneBit(int64_t mask) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ne,
                                 andI(qlane, idx(mask)), idx(0));
  }

  /// Elements of a key row and of a stage in workgroup memory.
  int64_t rowElems() const { return s.headDim + kRowPad; }
  int64_t stageElems() const { return s.stageRows() * rowElems(); }

  /// Row `rowLocal` of the CTA tile is query composite t0 + rowLocal.
  Value rowOf(int64_t mt, int64_t h) {
    return add(add(mul(warp, s.warpRows), mt * 16 + h * 8), quad);
  }

  /// Query tile `tileIndex` of `head`, its scratch rows at `rows`.
  void processTile(Value head, Value tileIndex, const TileScratch &rows) {
    queryTile = tileIndex;
    scratch = rows;
    ownMaxima = add(scratch.maximaBase, ownRowLocal);
    batchIdx = div(head, n.groups);
    group = rem(head, n.groups);
    keyHead = s.kvGroup == 1 ? group : div(group, s.kvGroup);
    t0 = mul(queryTile, s.rows);
    Value rowsHere = minU(idx(s.rows), sub(n.tq, t0));

    // Keys: those the tile's last row sees. Each row's last visible key
    // (and u < Tk) as an i32, once per tile: a tile's mask is then one
    // compare per element.
    auto lastVisible = [&](Value t) { return lastVisibleKey(*this, s, t); };
    Value lastKey = sub(n.tk, idx(1));
    numKeyTiles = keyTilesOfQueryTile(*this, s, n, t0, rowsHere);
    rowLimits.clear();
    for (int64_t mt = 0; mt < s.mTiles; ++mt)
      for (int64_t h = 0; h < 2; ++h) {
        Value limit = lastKey;
        if (s.causal)
          limit = minU(limit, lastVisible(add(t0, rowOf(mt, h))));
        rowLimits.push_back(
            arith::IndexCastOp::create(b, b.getI32Type(), limit));
      }

    // Mean composites: the query composites as A fragments in registers for
    // the whole tile. Slots > 1: a stage carries the slot's query rows.
    SmallVector<Value> aFrags;
    if (s.slots == 1 && !s.pooledQueries)
      aFrags = loadQueryFragments();

    // The running max of each of the lane's rows (mt, h), then the lane's
    // share of its own row's running sum (finishTile).
    SmallVector<Value> init(s.laneRows(), negInf());
    init.push_back(f32(0.0f));
    // The key loop walks chunks: chunk c is slot c mod s of key tile
    // c / s (with s = 1, key tile c). Chunks 0 and 1 in flight, then per
    // chunk c: wait for it (one group, c + 1's, may stay in flight), a
    // barrier (every thread's copies visible; every warp done with chunk
    // c - 1, whose stage chunk c + 2 then overwrites), issue c + 2, compute
    // c. A group is committed every time (possibly empty) so the count
    // stays regular.
    numChunks = mul(numKeyTiles, s.slots);
    auto tokenType = nvgpu::DeviceAsyncTokenType::get(b.getContext());
    for (int64_t i = 0; i < kStages - 1; ++i) {
      ifThen(ult(idx(i), numChunks), [&] { loadChunkAsync(idx(i), idx(i)); });
      asyncGroup =
          nvgpu::DeviceAsyncCreateGroupOp::create(b, tokenType, ValueRange{});
    }
    // Pooled queries: after the first key tiles' copies are issued, so
    // those land while the queries stream in.
    if (s.pooledQueries)
      aFrags = poolQueryFragments();
    // The tiles every row of the CTA sees whole need no mask: key tile kt
    // is whole for all rows iff its last key is visible to the first row.
    Value firstRowLimit = s.causal ? minU(lastKey, lastVisible(t0)) : lastKey;
    // The stage of chunk c (c mod kStages) rides along as the last loop
    // value: a compare and select per chunk instead of a remainder.
    init.push_back(idx(0));
    SmallVector<Value> stats = forLoop(
        idx(0), numKeyTiles, idx(1), init,
        [&](Value kt, ValueRange carried) -> SmallVector<Value> {
          ValueRange st = carried.drop_back();
          Value stage = carried.back();
          auto isWhole = [&] {
            return ule(mul(add(kt, 1), s.keyTile), add(firstRowLimit, 1));
          };
          if (s.lse)
            return lseKeyTile(kt, stage, st, isWhole());
          // Mean and antidiag: S = Q K^T over the whole composite (all
          // slots), then one softmax step.
          SmallVector<Value> acc;
          Value stageAfter;
          if (s.slots == 1) {
            nextChunk(kt, stage);
            acc = mmaTile(stage, aFrags, zeroAccumulators());
          } else {
            SmallVector<Value> slotInit = zeroAccumulators();
            slotInit.push_back(stage);
            acc = forLoop(idx(0), idx(s.slots), idx(1), slotInit,
                          [&](Value a, ValueRange in) -> SmallVector<Value> {
                            Value stg = in.back();
                            nextChunk(add(mul(kt, s.slots), a), stg);
                            SmallVector<Value> out =
                                mmaTile(stg, {}, in.drop_back());
                            out.push_back(nextStage(stg));
                            return out;
                          });
            stageAfter = acc.pop_back_val();
          }
          SmallVector<Value> next =
              maskedBranch(isWhole(), st.getTypes(), [&](bool masked) {
                return softmaxStep(kt, acc, st, masked);
              });
          next.push_back(stageAfter ? stageAfter : nextStage(stage));
          return next;
        });
    stats.pop_back();
    if (!s.separate) {
      blockScores(stats, rowsHere);
      return;
    }
    // 1 / the lane's own row's sum, for the epilogue (with two rows a
    // lane, lanes q and q ^ 2 store the same value to one address).
    store(arith::DivFOp::create(b, f32(1.0f), ownRowSum(stats.back())), rowSums,
          {add(scratch.rowSumBase, ownRowLocal)});
    // Every warp is done with the last key tile's stage before the next
    // tile's first copies may overwrite it.
    gpu::BarrierOp::create(b);
  }

  /// Zero accumulators of one chunk's S (the C layout of mmaTile).
  SmallVector<Value> zeroAccumulators() {
    return SmallVector<Value>(s.mTiles * s.nTiles * 4, f32(0.0f));
  }

  /// The stage after `stage` (mod kStages).
  Value nextStage(Value stage) {
    return select(eq(stage, kStages - 1), idx(0), add(stage, 1));
  }

  /// Before computing chunk `c` in `stage`: wait for its copies, the
  /// barrier, then chunk c + kStages - 1 issued into the stage of c - 1.
  void nextChunk(Value c, Value stage) {
    nvgpu::DeviceAsyncWaitOp::create(b, asyncGroup,
                                     b.getI32IntegerAttr(kStages - 2));
    gpu::BarrierOp::create(b);
    Value ahead = add(c, kStages - 1);
    Value aheadStage =
        select(eq(stage, 0), idx(kStages - 1), sub(stage, idx(1)));
    ifThen(ult(ahead, numChunks), [&] { loadChunkAsync(ahead, aheadStage); });
    nvgpu::DeviceAsyncCreateGroupOp::create(
        b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), ValueRange{});
  }

  /// scf.if `whole` { step(false) } else { step(true) }: the step without
  /// and with the per-element mask (key tiles some row sees only in part).
  SmallVector<Value>
  maskedBranch(Value whole, TypeRange types,
               function_ref<SmallVector<Value>(bool masked)> step) {
    return ifElse(
        whole, types, [&] { return step(/*masked=*/false); },
        [&] { return step(/*masked=*/true); });
  }

  /// antidiag_lse, key tile `kt`: per slot a, S_a = Q_a K_a^T (its own
  /// chunk), and per element E = E * exp2(m_old - m) + exp2(x_a - m) with
  /// the running max m over slots and key tiles (integers: the rescale is
  /// an exact power of two, 1 where m did not move). E = sum_a
  /// exp2(x_a - m) is the tile's exp(scale L) up to the factor 1 / s and
  /// exp2(m), which the row normalisation removes, so the tile then ends as
  /// the mean's: block sums of E, the running sum, the max per key tile.
  /// The slot logits live only in the accumulators of their chunk.
  SmallVector<Value> lseKeyTile(Value kt, Value stage, ValueRange st,
                                Value whole) {
    int64_t perRow = 2 * s.nTiles;
    SmallVector<Value> init(2 * s.mTiles * perRow, f32(0.0f));
    llvm::append_range(init, st.take_front(2 * s.mTiles));
    init.push_back(stage);
    SmallVector<Value> out =
        forLoop(idx(0), idx(s.slots), idx(1), init,
                [&](Value a, ValueRange in) -> SmallVector<Value> {
                  Value stg = in.back();
                  nextChunk(add(mul(kt, s.slots), a), stg);
                  SmallVector<Value> acc = mmaTile(stg, {}, zeroAccumulators());
                  ValueRange state = in.drop_back();
                  SmallVector<Value> next =
                      maskedBranch(whole, state.getTypes(), [&](bool masked) {
                        return lseSlotStep(kt, acc, state, masked);
                      });
                  next.push_back(nextStage(stg));
                  return next;
                });
    Value stageOut = out.pop_back_val();
    ArrayRef<Value> e(out.data(), 2 * s.mTiles * perRow);
    ArrayRef<Value> m(out.data() + e.size(), 2 * s.mTiles);
    SmallVector<SmallVector<Value>> rows;
    for (int64_t r = 0; r < 2 * s.mTiles; ++r)
      rows.emplace_back(e.slice(r * perRow, perRow));
    SmallVector<Value> next(st.begin(), st.end());
    finishTile(kt, rows, st, m, next);
    next.push_back(stageOut);
    return next;
  }

  /// One slot of lseKeyTile: `state` = the lane's E (row major, 2 nTiles a
  /// row) then its rows' running maxima; returns their new values.
  SmallVector<Value> lseSlotStep(Value kt, ArrayRef<Value> acc,
                                 ValueRange state, bool masked) {
    int64_t perRow = 2 * s.nTiles, rowsPerLane = 2 * s.mTiles;
    SmallVector<Value> next(state.begin(), state.end());
    Value firstKey = masked ? laneFirstKey(kt) : Value();
    for (int64_t r = 0; r < rowsPerLane; ++r) {
      SmallVector<Value> x = rowLogits(acc, r, firstKey);
      Value mOld = state[rowsPerLane * perRow + r];
      Value mNew = runningMax(x, mOld);
      Value factor = exactPow2(fsub(mOld, mNew));
      SmallVector<Value> e = exp2Shifted(x, mNew);
      for (int64_t j = 0; j < perRow; ++j)
        next[r * perRow + j] =
            math::FmaOp::create(b, state[r * perRow + j], factor, e[j]);
      next[rowsPerLane * perRow + r] = mNew;
    }
    return next;
  }

  /// The CTA's query composites as mma A fragments: per (m tile, k step)
  /// four i32 registers of two 16-bit elements; rows past Tq are zero.
  SmallVector<Value> loadQueryFragments() {
    SmallVector<Value> frags;
    auto pairType = VectorType::get({2}, s.element);
    Value zero = mmaOperand(arith::ConstantOp::create(
        b, pairType,
        DenseElementsAttr::get(pairType, b.getZeroAttr(s.element))));
    for (int64_t mt = 0; mt < s.mTiles; ++mt) {
      for (int64_t ks = 0; ks < s.kSteps; ++ks) {
        for (int64_t reg = 0; reg < 4; ++reg) {
          Value row = add(t0, rowOf(mt, reg % 2));
          Value col = add(mul(qlane, 2), ks * 16 + (reg / 2) * 8);
          Value inside = ult(row, n.tq);
          Value safeRow = select(inside, row, idx(0));
          Value pair = vector::LoadOp::create(
              b, pairType, q, ValueRange{batchIdx, group, safeRow, col},
              /*nontemporal=*/false, llvm::Align(4));
          frags.push_back(select(inside, mmaOperand(pair), zero));
        }
      }
    }
    return frags;
  }

  /// The CTA's query composites pooled from the raw queries (the query
  /// compress fused into the tile load; MeanPooling's arithmetic, so the
  /// same bits as the compress kernel's) into the workgroup tile, then as
  /// mma A fragments by ldmatrix.x4, in loadQueryFragments' order.
  /// Chunk c of the tile (`width` head-dim elements of row c / (D / width))
  /// is thread c mod threads's: a warp's 16-byte loads read whole
  /// 256-byte token rows. A thread pools its chunks in rounds whose loads
  /// (kPoolLoadsInFlight) are all issued before the round's first add, so
  /// the raw tile (c_q times the composites) streams at bandwidth. A tile
  /// of whole composites with 16-byte aligned rows takes the unrolled form
  /// (the count a constant); the last tile of a head (a partial composite,
  /// rows past Tq: zero) and unaligned queries loop over each composite's
  /// tokens with element-aligned loads.
  SmallVector<Value> poolQueryFragments() {
    const MeanPooling &pool = pooled->pool;
    int64_t width = pool.width, tokens = pooled->seqFactor;
    int64_t chunksPerRow = s.headDim / width;
    int64_t perThread = s.rows * chunksPerRow / s.threads;
    int64_t loadsPerChunk = tokens * pool.headFactor;
    int64_t perRound = std::max<int64_t>(1, kPoolLoadsInFlight / loadsPerChunk);
    while (perThread % perRound)
      --perRound;
    auto vecType = VectorType::get({width}, s.element);
    Value zero = arith::ConstantOp::create(
        b, vecType, DenseElementsAttr::get(vecType, b.getZeroAttr(s.element)));
    llvm::Align storeAlign(width * s.element.getIntOrFloatBitWidth() / 8);
    // Row and first column of the thread's chunk i.
    auto chunkAt = [&](Value i) {
      Value c = add(tid, mul(i, s.threads));
      return std::make_pair(div(c, chunksPerRow),
                            mul(rem(c, chunksPerRow), width));
    };
    auto storeChunk = [&](Value value, Value row, Value col) {
      vector::StoreOp::create(b, value, pooledTile,
                              ValueRange{add(mul(row, rowElems()), col)},
                              /*nontemporal=*/false, storeAlign);
    };
    Value whole = ule(mul(add(t0, s.rows), tokens), pooled->alignedLen);
    if (pooled->prefetch)
      prefetchRawTile(whole);
    // Every warp has read the previous tile's composites.
    gpu::BarrierOp::create(b);
    // Rounds of perRound chunks: all their loads, then their sums. The
    // partial form clamps token indices to N - 1, leaves the tokens past N
    // out of the sums and divides by the tokens there are (rows past Tq:
    // zero).
    auto rounds = [&](bool partial) {
      llvm::MaybeAlign align(16);
      Value limit = partial ? pooled->seqLen : Value();
      forLoop(idx(0), idx(perThread / perRound), idx(1), {},
              [&](Value round, ValueRange) {
                SmallVector<SmallVector<Value>> loads;
                SmallVector<Value> rows, cols, firsts;
                for (int64_t c = 0; c < perRound; ++c) {
                  auto [row, col] = chunkAt(add(mul(round, perRound), c));
                  rows.push_back(row);
                  cols.push_back(col);
                  firsts.push_back(mul(add(t0, row), tokens));
                  loads.push_back(pool.loadRun(*this, batchIdx, group,
                                               firsts.back(), tokens, col,
                                               align, limit));
                }
                SmallVector<Value> totals =
                    pool.sums(*this, loads, tokens, firsts, limit);
                for (int64_t c = 0; c < perRound; ++c) {
                  Value count = idx(loadsPerChunk);
                  if (partial)
                    count =
                        mul(sub(minU(add(firsts[c], tokens), limit), firsts[c]),
                            pool.headFactor);
                  Value mean = pool.mean(*this, totals[c], count, s.element);
                  if (partial)
                    mean = select(ult(add(t0, rows[c]), n.tq), mean, zero);
                  storeChunk(mean, rows[c], cols[c]);
                }
                return SmallVector<Value>{};
              });
    };
    // Unaligned queries (element loads): a chunk at a time, a loop over
    // its tokens, as the compress kernel's partial composites. (Unrolled
    // with element loads, this form cost the key loop 12 instructions a
    // tile: ptxas kept its addresses across it.)
    auto unaligned = [&] {
      forLoop(idx(0), idx(perThread), idx(1), {}, [&](Value i, ValueRange) {
        auto [row, col] = chunkAt(i);
        Value t = add(t0, row);
        Value first = mul(t, tokens);
        Value last = minU(add(first, tokens), pooled->seqLen);
        // Rows past Tq: an empty loop and a select.
        Value total = pool.sumLoop(*this, batchIdx, group, first, last, col,
                                   llvm::MaybeAlign());
        Value mean = pool.mean(
            *this, total, mul(sub(last, first), pool.headFactor), s.element);
        storeChunk(select(ult(t, n.tq), mean, zero), row, col);
        return SmallVector<Value>{};
      });
    };
    ifThenElse(
        whole, [&] { rounds(/*partial=*/false); },
        [&] {
          ifThenElse(
              ult(idx(0), pooled->alignedLen),
              [&] { rounds(/*partial=*/true); }, unaligned);
        });
    gpu::BarrierOp::create(b);
    SmallVector<Value> frags;
    for (int64_t mt = 0; mt < s.mTiles; ++mt)
      for (int64_t ks = 0; ks < s.kSteps; ++ks)
        llvm::append_range(frags,
                           aFragments(pooledTile, pooledTileBase, mt, ks));
    return frags;
  }

  /// The four A registers of m tile `mt`, k step `ks` of query rows in
  /// workgroup memory (`buffer`, rows of rowElems() from the lane's
  /// address `base`: row l mod 16, columns 8 (l / 16)) by ldmatrix.x4.
  SmallVector<Value> aFragments(Value buffer, Value base, int64_t mt,
                                int64_t ks) {
    Value x4 = nvgpu::LdMatrixOp::create(
        b, VectorType::get({4, 2}, s.element), buffer,
        ValueRange{add(base, mt * 16 * rowElems() + ks * 16)},
        b.getBoolAttr(false), b.getI32IntegerAttr(4));
    SmallVector<Value> regs;
    for (int64_t i = 0; i < 4; ++i)
      regs.push_back(word(x4, i));
    return regs;
  }

  /// The raw queries of a `whole` tile (16-byte aligned rows, every
  /// composite whole), tokens [t0 c_q, (t0 + rows) c_q) of each pooled head
  /// (contiguous when the queries have the identity layout), into L2:
  /// prefetch.global.L2 of its 128-byte lines, spread over the CTA's
  /// threads (32 a thread at D 128, c_q 16; no registers held, nothing
  /// waits on them). The pooling's loads then wait on L2, not on DRAM:
  /// ptxas keeps about 16 of a thread's 16-byte loads in flight, 32 KiB a
  /// CTA, so without it the tile's 512 KiB take 16 DRAM latencies.
  void prefetchRawTile(Value whole) {
    const MeanPooling &pool = pooled->pool;
    auto type = cast<MemRefType>(pool.input.getType());
    if (!type.getLayout().isIdentity())
      return;
    constexpr int64_t kLine = 128;
    int64_t rowBytes = s.headDim * type.getElementTypeBitWidth() / 8;
    int64_t tileBytes = s.rows * pooled->seqFactor * rowBytes;
    int64_t perThread = llvm::divideCeil(tileBytes, kLine * s.threads);
    Value heads = memref::DimOp::create(b, pool.input, 1);
    Value first = mul(t0, pooled->seqFactor);
    ifThen(whole, [&] {
      Value base =
          memref::ExtractAlignedPointerAsIndexOp::create(b, pool.input);
      for (int64_t j = 0; j < pool.headFactor; ++j) {
        Value src = pool.sourceHead(*this, group, j);
        Value token =
            add(mul(add(mul(batchIdx, heads), src), pooled->seqLen), first);
        Value start = add(add(base, mul(token, rowBytes)), mul(tid, kLine));
        forLoop(idx(0), idx(perThread), idx(1), {}, [&](Value i, ValueRange) {
          prefetchL2(add(start, mul(i, kLine * s.threads)));
          return SmallVector<Value>{};
        });
      }
    });
  }

  /// cp.async of chunk `c` into `stage`: the rows of key tile c / s, slot
  /// c mod s, and (slots > 1) the CTA's query composites of that slot
  /// after them.
  void loadChunkAsync(Value c, Value stage) {
    Value kt = c, slotIdx;
    if (s.slots > 1) {
      kt = div(c, s.slots);
      slotIdx = rem(c, s.slots);
    }
    Value stageBase = mul(stage, stageElems());
    loadRowsAsync(k, keyHead, mul(kt, s.keyTile), n.tk, s.keyTile, slotIdx,
                  stageBase);
    if (s.slots > 1)
      loadRowsAsync(q, group, t0, n.tq, s.rows, slotIdx,
                    add(stageBase, s.keyTile * rowElems()));
  }

  /// cp.async of composites first .. first + count - 1 of `src` (head
  /// `head`, slot `slotIdx` of rank-5 composites) into workgroup memory
  /// from element `dstBase`: 16-byte chunks, rows at or past `limit`
  /// zero-filled (their source index clamped to a real row). Rows inside
  /// `limit` (all tiles but the last) need neither the clamp nor the zero
  /// fill: copy i's source is then the thread's first plus a constant,
  /// which ptxas folds into the instruction.
  void loadRowsAsync(Value src, Value head, Value first, Value limit,
                     int64_t count, Value slotIdx, Value dstBase) {
    Value inside = ule(add(first, count), limit);
    auto copy = [&](bool partial) {
      copyRows(src, head, first, limit, count, slotIdx, dstBase, partial);
    };
    ifThenElse(
        inside, [&] { copy(/*partial=*/false); },
        [&] { copy(/*partial=*/true); });
  }

  /// The copies of loadRowsAsync (`partial`: rows past `limit` zero-filled).
  void copyRows(Value src, Value head, Value first, Value limit, int64_t count,
                Value slotIdx, Value dstBase, bool partial) {
    int64_t chunksPerRow = s.headDim / 8;
    int64_t chunks = count * chunksPerRow;
    Value lastRow = sub(limit, idx(1));
    // When the threads cover whole rows, copy i of a thread is row
    // `rowStep` * i further down: a constant offset.
    bool wholeRows = s.threads % chunksPerRow == 0;
    int64_t rowStep = s.threads / chunksPerRow;
    Value row0 = div(tid, chunksPerRow);
    Value col0 = mul(rem(tid, chunksPerRow), 8);
    Value dst0 = add(dstBase, add(mul(row0, rowElems()), col0));
    // Rows inside `limit` are read through a view that starts at the first:
    // its address is one 64-bit base per call, and copy i's offset from it
    // a per-thread value below count * D * slots elements (32 bits by
    // construction) plus a constant, which ptxas folds into the instruction,
    // instead of a 64-bit row address per copy. The last block (rows past
    // `limit` clamped) indexes the whole buffer.
    Value view = src, zero = idx(0);
    if (!partial) {
      OpFoldResult one = b.getIndexAttr(1);
      SmallVector<OpFoldResult> offsets = {batchIdx, head, first};
      SmallVector<OpFoldResult> sizes = {one, one, b.getIndexAttr(count)};
      if (slotIdx) {
        offsets.push_back(slotIdx);
        sizes.push_back(one);
      }
      offsets.push_back(b.getIndexAttr(0));
      sizes.push_back(b.getIndexAttr(s.headDim));
      view = memref::SubViewOp::create(
          b, src, offsets, sizes, SmallVector<OpFoldResult>(sizes.size(), one));
    }
    for (int64_t i = 0; i < chunks / s.threads; ++i) {
      Value row, col, dst;
      if (wholeRows) {
        row = add(row0, i * rowStep);
        col = col0;
        dst = add(dst0, i * rowStep * rowElems());
      } else {
        Value chunk = add(tid, i * s.threads);
        row = div(chunk, chunksPerRow);
        col = mul(rem(chunk, chunksPerRow), 8);
        dst = add(dstBase, add(mul(row, rowElems()), col));
      }
      SmallVector<Value> indices = {zero, zero, row};
      if (slotIdx)
        indices.push_back(zero);
      Value bytes;
      if (partial) {
        Value comp = add(first, row);
        Value in = ult(comp, limit);
        indices = {batchIdx, head, select(in, comp, lastRow)};
        if (slotIdx)
          indices.push_back(slotIdx);
        bytes = select(in, idx(8), idx(0));
      }
      indices.push_back(col);
      nvgpu::DeviceAsyncCopyOp::create(
          b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), keys,
          ValueRange{dst}, view, indices, b.getIndexAttr(8), bytes,
          b.getUnitAttr());
    }
  }

  /// Row `i` of an ldmatrix.x4 result as an mma operand register.
  Value word(Value fragments, int64_t i) {
    return mmaOperand(vector::ExtractOp::create(b, fragments, i));
  }

  /// acc + Q K^T of the chunk in `stage`: per (m tile, n tile) four f32,
  /// in the C layout (index (mt * nTiles + nt) * 4 + 2h + c). The A
  /// fragments are `aFrags` (registers, mean composites) or, when empty,
  /// ldmatrix.x4 from the stage's query rows, one per (m tile, k step).
  SmallVector<Value> mmaTile(Value stage, ArrayRef<Value> aFrags,
                             ValueRange accIn) {
    SmallVector<Value> acc(accIn.begin(), accIn.end());
    auto fragsType = VectorType::get({4, 2}, s.element);
    Value stageBase = mul(stage, stageElems());
    Value base = add(stageBase, ldBase);
    Value queryBase = aFrags.empty() ? add(stageBase, aBase) : Value();
    for (int64_t ks = 0; ks < s.kSteps; ++ks) {
      SmallVector<Value> aStep;
      for (int64_t mt = 0; mt < s.mTiles; ++mt) {
        if (!aFrags.empty()) {
          llvm::append_range(aStep, aFrags.slice((mt * s.kSteps + ks) * 4, 4));
          continue;
        }
        llvm::append_range(aStep, aFragments(keys, queryBase, mt, ks));
      }
      for (int64_t p = 0; p < s.nTiles / 2; ++p) {
        Value frags = nvgpu::LdMatrixOp::create(
            b, fragsType, keys,
            ValueRange{add(base, p * 16 * rowElems() + ks * 16)},
            b.getBoolAttr(false), b.getI32IntegerAttr(4));
        Value bRegs[2][2] = {{word(frags, 0), word(frags, 1)},
                             {word(frags, 2), word(frags, 3)}};
        for (int64_t mt = 0; mt < s.mTiles; ++mt) {
          ArrayRef<Value> a = ArrayRef<Value>(aStep).slice(mt * 4, 4);
          for (int64_t half = 0; half < 2; ++half) {
            int64_t nt = 2 * p + half;
            int64_t base = (mt * s.nTiles + nt) * 4;
            SmallVector<Value> d =
                mmaSync(s.element, a, bRegs[half][0], bRegs[half][1],
                        ArrayRef<Value>(acc).slice(base, 4));
            std::copy(d.begin(), d.end(), acc.begin() + base);
          }
        }
      }
    }
    return acc;
  }

  /// The max (or sum) of `values` as a balanced tree: depth log2(n)
  /// instead of a chain of n dependent ops.
  Value treeReduce(SmallVector<Value> values, bool max) {
    while (values.size() > 1) {
      SmallVector<Value> next;
      for (size_t i = 0; i + 1 < values.size(); i += 2)
        next.push_back(max ? fmaxnum(values[i], values[i + 1])
                           : fadd(values[i], values[i + 1]));
      if (values.size() % 2)
        next.push_back(values.back());
      values = std::move(next);
    }
    return values.front();
  }

  /// The online softmax statistics of key tile `kt` and its per-key-block
  /// partial sums (to the scratch slot). `st` = the running maxima of the
  /// lane's rows, then the lane's share of its own row's running sum;
  /// returns their new values. Per element: a compare and select (the
  /// mask: -inf past the row's last key; only where `masked`: tiles past
  /// some row's last key), a max, one FMA (scale, minus the max), ex2 and
  /// an add.
  SmallVector<Value> softmaxStep(Value kt, ArrayRef<Value> acc, ValueRange st,
                                 bool masked) {
    SmallVector<Value> next(st.begin(), st.end());
    Value firstKey = masked ? laneFirstKey(kt) : Value();
    SmallVector<SmallVector<Value>> e;
    SmallVector<Value> m;
    for (int64_t r = 0; r < s.laneRows(); ++r) {
      SmallVector<Value> x = rowLogits(acc, r, firstKey);
      m.push_back(runningMax(x, st[r]));
      e.push_back(exp2Shifted(x, m.back()));
    }
    finishTile(kt, e, st, m, next);
    return next;
  }

  /// The lane's first key in key tile `kt`: kt * keyTile + 2 q (as i32).
  Value laneFirstKey(Value kt) {
    return arith::IndexCastOp::create(b, b.getI32Type(),
                                      add(mul(kt, s.keyTile), mul(qlane, 2)));
  }

  /// The lane's 2 * nTiles products of its row r = 2 mt + h in `acc`, n8
  /// tile major; with `firstKey` (laneFirstKey), -inf past the row's last
  /// key.
  SmallVector<Value> rowLogits(ArrayRef<Value> acc, int64_t r, Value firstKey) {
    int64_t mt = r / 2, h = r % 2;
    // Element (nt, c) is key firstKey + 8 nt + c: it counts iff
    // 8 nt + c <= limit - firstKey.
    Value room;
    if (firstKey)
      room = arith::SubIOp::create(b, rowLimits[r], firstKey);
    SmallVector<Value> x;
    for (int64_t nt = 0; nt < s.nTiles; ++nt) {
      for (int64_t c = 0; c < 2; ++c) {
        Value v = acc[(mt * s.nTiles + nt) * 4 + 2 * h + c];
        if (firstKey) {
          Value ok = arith::CmpIOp::create(b, arith::CmpIPredicate::sle,
                                           i32(nt * 8 + c), room);
          v = select(ok, v, negInf());
        }
        x.push_back(v);
      }
    }
    return x;
  }

  /// The row's running max after products `x` (the lane's share; the max
  /// runs over the quad), in the log2 domain: max(mOld, ceil(max x *
  /// scale)), an integer (or +-inf), so rescale factors are exact powers
  /// of two. The max of the raw products, then scaled (scale > 0).
  Value runningMax(ArrayRef<Value> x, Value mOld) {
    Value tileMax = treeReduce(SmallVector<Value>(x), /*max=*/true);
    tileMax = fmaxnum(tileMax, shuffleXor(tileMax, 1));
    tileMax = fmaxnum(tileMax, shuffleXor(tileMax, 2));
    return fmaxnum(mOld,
                   math::CeilOp::create(b, fmul(tileMax, f32(s.scaleLog2))));
  }

  /// exp2(x * scale - m) per element, one FMA and ex2 each.
  SmallVector<Value> exp2Shifted(ArrayRef<Value> x, Value m) {
    // m = -inf (a row that saw only masked keys) subtracts -FLT_MAX: its e
    // are exp2(-inf) = 0; finite or NaN products are as with m.
    Value negM = arith::NegFOp::create(
        b, fmaxnum(m, f32(-std::numeric_limits<float>::max())));
    Value scale = f32(s.scaleLog2);
    SmallVector<Value> e;
    for (Value v : x)
      e.push_back(exp2Ftz(math::FmaOp::create(b, v, scale, negM)));
    return e;
  }

  /// The value of the lane's own row (laneOwnedRow) among `v`, one per row
  /// of the lane (selects on the lane's bits).
  Value ownRow(ArrayRef<Value> v) {
    Value low = select(laneBit0, v[1], v[0]);
    if (v.size() == 2)
      return low;
    return select(laneBit1, select(laneBit0, v[3], v[2]), low);
  }

  /// The whole sum of the lane's own row from the lanes' shares: with four
  /// rows a lane, the share is the whole; with two, lanes q and q ^ 2 hold
  /// a half each.
  Value ownRowSum(Value share) {
    if (s.laneRows() == 4)
      return share;
    return fadd(share, shuffleXor(share, 2));
  }

  /// The end of key tile `kt`: the block sums of `e` (per lane row, relative
  /// to the row's new max mNew) to the scratch, the running maxima and the
  /// share of the own row's running sum (rescaled from st's max by an exact
  /// power of two, one FMA) into `next`, and the own row's new max as the
  /// tile's max (one store a lane: the quad's lanes own different rows).
  void finishTile(Value kt, ArrayRef<SmallVector<Value>> e, ValueRange st,
                  ArrayRef<Value> mNew, SmallVector<Value> &next) {
    int64_t rows = s.laneRows();
    Value tileShare = storeBlockSums(kt, e);
    Value mOld = ownRow(SmallVector<Value>(st.take_front(rows)));
    Value mOwn = ownRow(mNew);
    for (int64_t r = 0; r < rows; ++r)
      next[r] = mNew[r];
    next[rows] = math::FmaOp::create(b, st[rows], exactPow2(fsub(mOld, mOwn)),
                                     tileShare);
    // The lane's maxima address as a per-tile base plus kt * rows, so the
    // compiler advances one pointer per key tile.
    store(mOwn, maxima, {add(ownMaxima, mul(kt, s.rows))});
  }

  /// `v` (f32) as the scratch's partial-sum type.
  Value partialValue(Value v) { return narrowF32(v, s.partial); }

  /// One step of a reduce-scatter over the quad (lanes q, q ^ mask) of
  /// `v`, `rows` x `cols` values row-major: by rows (pairs rows 2i, 2i + 1;
  /// the lane keeps the odd ones where its bit `mask` is set) or by columns
  /// (pairs column j with j + cols / 2; the lane keeps the upper half
  /// where the bit is set). Each value kept adds the partner's sent one.
  SmallVector<Value> halveQuad(ArrayRef<Value> v, int64_t rows, int64_t cols,
                               int32_t mask, bool byRow) {
    Value upper = mask == 1 ? laneBit0 : laneBit1;
    SmallVector<Value> out;
    auto pair = [&](Value low, Value high) {
      Value keep = select(upper, high, low);
      Value send = select(upper, low, high);
      out.push_back(fadd(keep, shuffleXor(send, mask)));
    };
    if (byRow) {
      for (int64_t i = 0; i < rows / 2; ++i)
        for (int64_t j = 0; j < cols; ++j)
          pair(v[2 * i * cols + j], v[(2 * i + 1) * cols + j]);
    } else {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols / 2; ++j)
          pair(v[r * cols + j], v[r * cols + j + cols / 2]);
    }
    return out;
  }

  /// The lane's share of its own row's sum from its shares of each of its
  /// rows' sums `v`: the reduce-scatter of halveQuad by rows (four rows: the
  /// quad's whole sum of row qlane; two: lanes q and q ^ 2 each a half).
  Value ownShare(ArrayRef<Value> v) {
    SmallVector<Value> own = halveQuad(v, v.size(), 1, 1, /*byRow=*/true);
    if (v.size() == 4)
      own = halveQuad(own, 2, 1, 2, /*byRow=*/true);
    return own.front();
  }

  /// Stores `values` (consecutive partial sums) at partials[first...]: vector
  /// stores of up to 16 bytes, as wide as `first`'s alignment allows (it
  /// is a multiple of `aligned` elements).
  void storePartials(ArrayRef<Value> values, Value first, int64_t aligned) {
    int64_t bytes = s.partial.getIntOrFloatBitWidth() / 8;
    int64_t w = vectorElements(
        bytes, std::gcd(aligned, static_cast<int64_t>(values.size())));
    auto type = VectorType::get({w}, s.partial);
    for (size_t i = 0; i < values.size(); i += w) {
      SmallVector<Value> elems;
      for (int64_t j = 0; j < w; ++j)
        elems.push_back(partialValue(values[i + j]));
      Value vec = vector::FromElementsOp::create(b, type, elems);
      vector::StoreOp::create(b, vec, partials, add(first, idx(i)),
                              /*nontemporal=*/false, llvm::Align(w * bytes));
    }
  }

  /// The sums of `e` (per lane row, its 2 * nTiles values, n8 tile major as
  /// in the C layout) over each key block of the tile, written to the
  /// scratch; returns the lane's share of its own row's sum over the tile
  /// (ownRowSum adds the shares up).
  Value storeBlockSums(Value kt, ArrayRef<SmallVector<Value>> e) {
    int64_t nb = s.blocksPerKeyTile, rows = s.laneRows();
    auto rowBase = [&](int64_t r) {
      return scratch.partial(*this, s, kt, rowOf(r / 2, r % 2), idx(0));
    };
    if (s.rk >= 8) {
      // A block is rk / 8 whole n8 tiles: in-thread sums first.
      int64_t perBlock = s.rk / 8;
      SmallVector<Value> sums; // rows x nb, row-major
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t blk = 0; blk < nb; ++blk)
          sums.push_back(
              treeReduce(SmallVector<Value>(ArrayRef<Value>(e[r]).slice(
                             blk * perBlock * 2, perBlock * 2)),
                         /*max=*/false));
      if (rows == 4 || nb % 2 == 0) {
        // A reduce-scatter over the quad by rows, then (two rows a lane)
        // by halves of the blocks: lane q ends with the whole sums of its
        // own row's blocks (or half of them), contiguous in the scratch:
        // one vector store; 3 nb shuffles for four rows, as many as a
        // reduce-scatter by blocks per row.
        SmallVector<Value> own = halveQuad(sums, rows, nb, 1, /*byRow=*/true);
        int64_t cols = nb;
        Value firstBlock = idx(0);
        if (rows == 4) {
          own = halveQuad(own, 2, nb, 2, /*byRow=*/true);
        } else {
          own = halveQuad(own, 1, nb, 2, /*byRow=*/false);
          cols = nb / 2;
          firstBlock = select(laneBit1, idx(cols), idx(0));
        }
        storePartials(
            own, scratch.partial(*this, s, kt, ownRowLocal, firstBlock), cols);
        return treeReduce(own, /*max=*/false);
      }
      // Two rows a lane and an odd count of blocks: the whole quad sums
      // each; lane q writes block q mod nb (the lanes that share one write
      // the same value: no branch) and lane 0 (1) carries row 0's (1's)
      // share.
      for (Value &acc : sums) {
        acc = fadd(acc, shuffleXor(acc, 1));
        acc = fadd(acc, shuffleXor(acc, 2));
      }
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j * 4 < nb; ++j) {
          int64_t count = std::min<int64_t>(4, nb - j * 4);
          Value which = count == 4 ? qlane : rem(qlane, count);
          Value v = sums[r * nb + j * 4];
          for (int64_t i = 1; i < count; ++i)
            v = select(eq(which, i), sums[r * nb + j * 4 + i], v);
          store(partialValue(v), partials,
                {add(rowBase(r), add(which, j * 4))});
        }
      }
      Value total = treeReduce(
          SmallVector<Value>(ArrayRef<Value>(sums).slice(0, nb)), false);
      if (rows == 2)
        total = select(
            laneBit0,
            treeReduce(SmallVector<Value>(ArrayRef<Value>(sums).slice(nb, nb)),
                       false),
            total);
      return select(laneBit1, f32(0.0f), total);
    }
    // rk in {1, 2, 4}: a block is part of an n8 tile; lane q holds columns
    // 2q, 2q + 1 of each.
    SmallVector<Value> shares;
    for (int64_t r = 0; r < rows; ++r) {
      Value base = rowBase(r);
      ArrayRef<Value> x = e[r];
      for (int64_t nt = 0; nt < s.nTiles; ++nt) {
        if (s.rk == 1) {
          for (int64_t c = 0; c < 2; ++c)
            store(partialValue(x[nt * 2 + c]), partials,
                  {add(base, add(mul(qlane, 2), nt * 8 + c))});
          continue;
        }
        Value pair = fadd(x[nt * 2], x[nt * 2 + 1]);
        if (s.rk == 2) {
          store(partialValue(pair), partials, {add(base, add(qlane, nt * 4))});
          continue;
        }
        // rk = 4: lanes 2j, 2j + 1 share block 2 nt + j (both write it).
        Value sum = fadd(pair, shuffleXor(pair, 1));
        store(partialValue(sum), partials,
              {add(base, add(div(qlane, 2), nt * 2))});
      }
      shares.push_back(treeReduce(SmallVector<Value>(x), /*max=*/false));
    }
    return ownShare(shares);
  }

  /// The scores of the tile's query blocks from the scratch slot.
  void blockScores(ValueRange stats, Value rowsHere) {
    // Each lane's own row's final max and 1 / sum.
    store(ownRow(SmallVector<Value>(stats.drop_back())), rowMax, {ownRowLocal});
    store(arith::DivFOp::create(b, f32(1.0f), ownRowSum(stats.back())),
          rowInvSum, {ownRowLocal});
    // The slot's partial sums and maxima, written by other threads, are
    // visible after the barrier.
    gpu::BarrierOp::create(b);
    Value blocksWritten = minU(n.nbk, mul(numKeyTiles, s.blocksPerKeyTile));
    Value pairs = mul(n.nbk, s.queryBlocksPerTile);
    forLoop(tid, pairs, idx(s.threads), {}, [&](Value p, ValueRange) {
      Value local = div(p, n.nbk);
      Value blk = rem(p, n.nbk);
      Value qb = add(mul(queryTile, s.queryBlocksPerTile), local);
      ifThen(ult(qb, n.nbq), [&] {
        Value written = ult(blk, blocksWritten);
        Value score = scoreIfWritten(*this, written, [&] {
          Value kt = div(blk, s.blocksPerKeyTile);
          Value score = f32(0.0f);
          for (int64_t i = 0; i < s.rq; ++i) {
            Value rowLocal = add(mul(local, s.rq), i);
            // Rows past Tq add nothing (their loads stay inside the slot;
            // the select drops them).
            Value use = ult(rowLocal, rowsHere);
            Value part = widenToF32(load(
                partials, {scratch.partial(*this, s, kt, rowLocal,
                                           rem(blk, s.blocksPerKeyTile))}));
            Value coefficient = shareCoefficient(
                *this, load(maxima, {scratch.maximum(*this, s, kt, rowLocal)}),
                load(rowMax, {rowLocal}), load(rowInvSum, {rowLocal}));
            score = foldShare(*this, s.reduce, score, part, coefficient, use);
          }
          return score;
        });
        store(score, scores, {batchIdx, group, qb, blk});
      });
      return SmallVector<Value>{};
    });
    // The slot and the row statistics are reused by the next tile.
    gpu::BarrierOp::create(b);
  }
};

/// The scores from the scoring kernel's scratch (the separate epilogue): a
/// CTA per (batch, head group, query block) I, one pass over memory. Each
/// query composite r of I has its final max m_r (the running max is
/// monotone, so the one stored with its last key tile) and 1 / l_r, l_r its
/// sum over every key (the scoring kernel's running sum). A thread takes a
/// key tile at a time (strided): the block's rq maxima M and rq * (keyTile /
/// rk) partial sums P of the tile are contiguous in the scratch (key tile
/// major), so they come in by vector loads of 16 bytes (8 f16 partial sums:
/// 6 loads a tile at the default shape, against 16 row by row), all before
/// their first use, and the thread writes the tile's scores: per key block J
/// the sum (or max) over r of P[r, J] exp2(M[r, tile of J] - m_r) / l_r, 0
/// for blocks past the CTA tile's keys. The rescale factors are exact powers
/// of two (the maxima are integers).
class ScoreEpilogue : KernelBuilder {
public:
  ScoreEpilogue(ImplicitLocOpBuilder &b, const ScoreShape &s,
                const ScoreSizes &sizes, Value scores, Value partials,
                Value maxima, Value rowSums)
      : KernelBuilder{b}, s(s), n(sizes), scores(scores), partials(partials),
        maxima(maxima), rowSums(rowSums) {}

  static constexpr int64_t kThreads = 128;

  /// The launch's CTAs: per unit of the chunk, its tiles' query blocks.
  static Value blocks(KernelBuilder &kb, const ScoreShape &s,
                      const ScoreSizes &n) {
    return kb.mul(kb.sub(n.chunkEnd, n.chunkBegin),
                  separateTilesPerUnit(s.causal) * s.queryBlocksPerTile);
  }

  void build(Value tid, Value blockId) {
    // CTA -> (unit of the chunk, which of its tiles, query block of it).
    int64_t perUnit = separateTilesPerUnit(s.causal) * s.queryBlocksPerTile;
    Value slot = div(blockId, perUnit);
    Value r = rem(blockId, perUnit);
    UnitTile u = tileOfUnit(*this, s, n, add(n.chunkBegin, slot), slot,
                            div(r, s.queryBlocksPerTile));
    Value qb = add(mul(u.queryTile, s.queryBlocksPerTile),
                   rem(r, s.queryBlocksPerTile));
    // A tile that walked no key tile (Tk = 0) has no maxima to read.
    ifThen(andI(andI(u.exists, ult(qb, n.nbq)), ult(idx(0), u.keyTiles)),
           [&] { scoreBlock(tid, u, qb); });
  }

private:
  const ScoreShape &s;
  const ScoreSizes &n;
  Value scores, partials, maxima, rowSums;

  /// `count` consecutive values of `memref` (f32 or f16, as f32) from
  /// `first`, a multiple of `aligned` elements: vector loads of up to 16
  /// bytes.
  SmallVector<Value> loadRun(Value memref, Value first, int64_t count,
                             int64_t aligned) {
    Type elem = cast<MemRefType>(memref.getType()).getElementType();
    int64_t bytes = elem.getIntOrFloatBitWidth() / 8;
    int64_t w = vectorElements(bytes, std::gcd(aligned, count));
    auto type = VectorType::get({w}, elem);
    SmallVector<Value> out;
    for (int64_t i = 0; i < count; i += w) {
      Value vec =
          vector::LoadOp::create(b, type, memref, add(first, idx(i)),
                                 /*nontemporal=*/false, llvm::Align(w * bytes));
      for (int64_t j = 0; j < w; ++j) {
        out.push_back(widenToF32(vector::ExtractOp::create(b, vec, j)));
      }
    }
    return out;
  }

  /// The scores of query block `qb` of tile `u`.
  void scoreBlock(Value tid, const UnitTile &u, Value qb) {
    // The block's composites (rows is a multiple of rq) within the tile,
    // and the key tiles the tile wrote (>= 1: build() checks).
    Value first = mul(qb, s.rq);
    Value t0 = mul(u.queryTile, s.rows);
    Value numKeyTiles = u.keyTiles;
    Value lastTile = sub(numKeyTiles, idx(1));
    // Rows rowBase .. rowBase + rq - 1 of the tile (rows is a multiple of
    // rq: all inside its scratch, which the scoring kernel writes for every
    // row); row i counts if inside Tq (the block's first is).
    Value rowBase = sub(first, t0);
    SmallVector<Value> exists;
    for (int64_t i = 0; i < s.rq; ++i)
      exists.push_back(ult(add(first, i), n.tq));
    SmallVector<Value> rowMax = loadRun(
        maxima, u.scratch.maximum(*this, s, lastTile, rowBase), s.rq, s.rq);
    SmallVector<Value> rowInvSum =
        loadRun(rowSums, add(u.scratch.rowSumBase, rowBase), s.rq, s.rq);

    // A thread per key tile of the row's NBk blocks; tiles the CTA tile
    // did not walk are 0 without loading anything (half the blocks of a
    // causal row). A block whose rows all lie inside Tq (all but the last
    // of each head) takes every row without a select.
    auto tileLoop = [&](bool checkRows) {
      Value rowTiles = ceilDiv(n.nbk, s.blocksPerKeyTile);
      forLoop(tid, rowTiles, idx(kThreads), {}, [&](Value kt, ValueRange) {
        scoreTile(u, qb, kt, rowBase, rowMax, rowInvSum,
                  checkRows ? ArrayRef<Value>(exists) : ArrayRef<Value>());
        return SmallVector<Value>{};
      });
    };
    ifThenElse(
        ule(add(first, idx(s.rq)), n.tq),
        [&] { tileLoop(/*checkRows=*/false); },
        [&] { tileLoop(/*checkRows=*/true); });
  }

  /// The scores of query block `qb` (rows rowBase.. of tile `u`) in key
  /// tile `kt`; `exists` (empty: all) says which of its rows count.
  void scoreTile(const UnitTile &u, Value qb, Value kt, Value rowBase,
                 ArrayRef<Value> rowMax, ArrayRef<Value> rowInvSum,
                 ArrayRef<Value> exists) {
    int64_t nb = s.blocksPerKeyTile;
    Value batchIdx = div(u.head, n.groups), group = rem(u.head, n.groups);
    SmallVector<Type> types(nb, b.getF32Type());
    SmallVector<Value> tileScores = ifElse(
        ult(kt, u.keyTiles), types,
        [&] {
          // The tile's loads first, all in flight at once.
          SmallVector<Value> tileMax = loadRun(
              maxima, u.scratch.maximum(*this, s, kt, rowBase), s.rq, s.rq);
          SmallVector<Value> parts = loadRun(
              partials, u.scratch.partial(*this, s, kt, rowBase, idx(0)),
              s.rq * nb, s.rq * nb);
          SmallVector<Value> score(nb, f32(0.0f));
          for (int64_t i = 0; i < s.rq; ++i) {
            Value coefficient =
                shareCoefficient(*this, tileMax[i], rowMax[i], rowInvSum[i]);
            for (int64_t j = 0; j < nb; ++j)
              score[j] =
                  foldShare(*this, s.reduce, score[j], parts[i * nb + j],
                            coefficient, exists.empty() ? Value() : exists[i]);
          }
          // (Blocks past NBk in the last tile are not stored.)
          return score;
        },
        [&] { return SmallVector<Value>(nb, f32(0.0f)); });
    for (int64_t j = 0; j < nb; ++j) {
      Value blk = add(mul(kt, nb), j);
      ifThen(ult(blk, n.nbk),
             [&] { store(tileScores[j], scores, {batchIdx, group, qb, blk}); });
    }
  }
};

/// block_score in buffer form (16-bit composites) -> the tensor-core
/// kernel.
struct BlockScoreToGPU : OpRewritePattern<BlockScoreOp> {
  BlockScoreToGPU(MLIRContext *ctx, const ScoreKernelOptions &options,
                  const FusedQueryPooling &fused)
      : OpRewritePattern(ctx), options(options), fused(fused) {}

  LogicalResult matchAndRewrite(BlockScoreOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "tensor form");
    if (op.getEstimator() == Estimator::outlier)
      return rewriter.notifyMatchFailure(op, "OutlierScoreKernel.cpp's");
    ScoreKernelOptions opts = options;
    opts.compositeType = getElementTypeOrSelf(op.getQc().getType());
    std::string why = tensorCoreScoreUnsupportedReason(op, opts);
    if (!why.empty())
      return op.emitOpError() << "cannot be lowered to the tensor-core "
                                 "scoring kernel: "
                              << why
                              << " (lower it with convert-unisparse-to-linalg "
                                 "before bufferization)";
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KernelBuilder kb{b};
    auto qcType = cast<MemRefType>(op.getQc().getType());

    ScoreShape s;
    s.warps = opts.warps;
    s.threads = 32 * s.warps;
    s.warpRows = scoreWarpRows(op, opts);
    s.mTiles = s.warpRows / 16;
    s.rows = s.warpRows * s.warps;
    s.keyTile = opts.keyTile;
    s.nTiles = s.keyTile / 8;
    s.slots = isAntidiagonal(op.getEstimator()) ? op.getCQ() : 1;
    s.lse = op.getEstimator() == Estimator::antidiag_lse;
    s.headDim = qcType.getDimSize(qcType.getRank() - 1);
    s.kSteps = s.headDim / 16;
    s.cq = op.getCQ();
    s.ck = op.getCK();
    s.rq = op.getBlock() / s.cq;
    s.rk = op.getBlock() / s.ck;
    s.blocksPerKeyTile = s.keyTile / s.rk;
    s.queryBlocksPerTile = s.rows / s.rq;
    s.causal = op.getCausal();
    s.kvGroup = op.getKvGroup();
    s.separate = opts.separateEpilogue;
    s.reduce = op.getQueryReduce();
    double scale = op.getScale().convertToDouble();
    if (scale == 0.0)
      scale = 1.0 / std::sqrt(static_cast<double>(s.headDim));
    // antidiag's logit is the mean of its s slot products: the 1 / s rides
    // on the scale.
    if (op.getEstimator() == Estimator::antidiag)
      scale /= static_cast<double>(s.slots);
    s.scaleLog2 = static_cast<float>(scale * M_LOG2E);
    s.element = opts.compositeType;
    s.partial = opts.halfPartials ? Type(b.getF16Type()) : b.getF32Type();

    Value q = op.getQc(), k = op.getKc(), scores = op.getInit();
    ScoreSizes n;
    std::optional<QuerySource> pooled;
    if (auto compress = cast_or_null<CompressOp>(fused.queriesOf(op))) {
      // The kernel pools the queries: the composites' buffer is never
      // written (the pass erases it with the compress), so every size
      // comes from the raw queries and the scores.
      s.pooledQueries = true;
      Value raw = compress.getInput();
      auto rawType = cast<MemRefType>(raw.getType());
      pooled = QuerySource{{raw, static_cast<int64_t>(compress.getHeadFactor()),
                            static_cast<int64_t>(compress.getKvGroup()),
                            MeanPooling::chunkWidth(rawType)},
                           static_cast<int64_t>(compress.getSeqFactor()),
                           memref::DimOp::create(b, raw, 2),
                           Value(),
                           opts.prefetchQueries};
      pooled->alignedLen =
          kb.select(rowsAligned(b, raw, 16), pooled->seqLen, kb.idx(0));
      n.batch = memref::DimOp::create(b, raw, 0);
      n.groups = memref::DimOp::create(b, scores, 1);
      n.tq = kb.ceilDiv(pooled->seqLen, pooled->seqFactor);
      q = Value();
    } else {
      n.batch = memref::DimOp::create(b, q, 0);
      n.groups = memref::DimOp::create(b, q, 1);
      n.tq = memref::DimOp::create(b, q, 2);
    }
    n.tk = memref::DimOp::create(b, k, 2);
    n.nbq = memref::DimOp::create(b, scores, 2);
    n.nbk = memref::DimOp::create(b, scores, 3);
    n.queryTiles = kb.ceilDiv(n.tq, s.rows);
    n.tiles = kb.mul(kb.mul(n.batch, n.groups), n.queryTiles);
    n.keyTiles = kb.ceilDiv(n.tk, s.keyTile);
    n.blockStride = kb.mul(n.keyTiles, s.blocksPerKeyTile);

    DictionaryAttr kernelAttrs;
    if (opts.minCtasPerSm > 0)
      kernelAttrs = b.getDictionaryAttr(minCtasPerSmAttr(b, opts.minCtasPerSm));
    auto scoreLaunch = [&](Value ctas, const ScoreSizes &sizes, Value partials,
                           Value maxima, Value rowSums) {
      buildLaunch(
          b, ctas, s.threads, ScoreKernel::workgroupTypes(s),
          "unisparse_block_score",
          [&](ImplicitLocOpBuilder &kbld, Value tid, Value bid, ValueRange wg) {
            Value grid = gpu::GridDimOp::create(kbld, gpu::Dimension::x);
            ScoreKernel(kbld, s, sizes, q, pooled ? &*pooled : nullptr, k,
                        scores, partials, maxima, rowSums)
                .build(tid, bid, grid, wg);
          },
          Value(), kernelAttrs);
    };
    auto flat = MemRefType::get({ShapedType::kDynamic}, b.getF32Type());
    auto flatPartials = MemRefType::get({ShapedType::kDynamic}, s.partial);
    Value partials, maxima, rowSums;
    if (!s.separate) {
      // A scratch slot of `rows` rows per CTA: partial sums [rows,
      // blockStride] and maxima [rows, keyTiles].
      Value ctas = kb.minU(n.tiles, kb.idx(opts.ctas));
      Value slotRows = kb.mul(ctas, s.rows);
      partials = memref::AllocOp::create(
          b, flatPartials, ValueRange{kb.mul(slotRows, n.blockStride)});
      maxima = memref::AllocOp::create(
          b, flat, ValueRange{kb.mul(slotRows, n.keyTiles)});
      scoreLaunch(ctas, n, partials, maxima, Value());
    } else {
      // Work units (causal: pairs of query tiles of equal total work, so
      // every CTA of a chunk does the same), a scratch slot each, in chunks
      // of whole waves (a unit per CTA) that fit in `scratchBytes`, at
      // least one wave, then spread evenly over the chunks; per chunk the
      // scoring launch and the epilogue launch.
      n.unitsPerHead = s.causal ? kb.ceilDiv(n.queryTiles, 2) : n.queryTiles;
      n.unitKeyTiles =
          separateUnitKeyTiles(IndexArith{kb}, s.cq, s.ck, s.rows, s.keyTile,
                               s.causal, n.queryTiles, n.keyTiles);
      Value units = kb.mul(kb.mul(n.batch, n.groups), n.unitsPerHead);
      Value unitBytes = separateUnitBytes(
          IndexArith{kb}, s.rk, s.rows, s.keyTile, s.causal,
          s.partial.getIntOrFloatBitWidth() / 8, n.unitKeyTiles);
      Value one = kb.idx(1);
      Value chunk = units;
      if (opts.scratchBytes > 0) {
        Value wave = kb.maxU(kb.minU(units, kb.idx(opts.ctas)), one);
        Value waveBytes = kb.maxU(kb.mul(wave, unitBytes), one);
        Value waves =
            kb.maxU(kb.div(kb.idx(opts.scratchBytes), waveBytes), one);
        Value chunks = kb.ceilDiv(units, kb.mul(waves, wave));
        chunk = kb.ceilDiv(units, kb.maxU(chunks, one));
      }
      Value step = kb.maxU(chunk, one);
      Value chunkRows = kb.mul(chunk, s.rows);
      partials = memref::AllocOp::create(
          b, flatPartials,
          ValueRange{
              kb.mul(chunkRows, kb.mul(n.unitKeyTiles, s.blocksPerKeyTile))});
      maxima = memref::AllocOp::create(
          b, flat, ValueRange{kb.mul(chunkRows, n.unitKeyTiles)});
      rowSums = memref::AllocOp::create(
          b, flat,
          ValueRange{kb.mul(chunkRows, separateTilesPerUnit(s.causal))});
      kb.forLoop(kb.idx(0), units, step, {}, [&](Value begin, ValueRange) {
        ScoreSizes sizes = n;
        sizes.chunkBegin = begin;
        sizes.chunkEnd = kb.minU(units, kb.add(begin, step));
        Value count = kb.sub(sizes.chunkEnd, begin);
        scoreLaunch(kb.minU(count, kb.idx(opts.ctas)), sizes, partials, maxima,
                    rowSums);
        buildLaunch(
            b, ScoreEpilogue::blocks(kb, s, sizes), ScoreEpilogue::kThreads,
            /*workgroup=*/{}, "unisparse_block_score_epilogue",
            [&](ImplicitLocOpBuilder &kbld, Value tid, Value bid, ValueRange) {
              ScoreEpilogue(kbld, s, sizes, scores, partials, maxima, rowSums)
                  .build(tid, bid);
            });
        return SmallVector<Value>{};
      });
    }
    for (Value buffer : {partials, maxima, rowSums})
      if (buffer)
        memref::DeallocOp::create(b, buffer);
    rewriter.eraseOp(op);
    return success();
  }

  ScoreKernelOptions options;
  const FusedQueryPooling &fused;
};
} // namespace

std::string mlir::unisparse::tensorCoreScoreUnsupportedReason(
    Operation *operation, const ScoreKernelOptions &options) {
  auto op = dyn_cast<BlockScoreOp>(operation);
  if (!op)
    return "not a block_score";
  if (!options.compositeType ||
      !(options.compositeType.isBF16() || options.compositeType.isF16()))
    return "composites are not 16-bit";
  if (op.getEstimator() == Estimator::outlier)
    return outlierScoreUnsupportedReason(op, options);
  if (op.getQueryOffset())
    return "the op is already a tile (query_offset)";
  auto qcType = cast<ShapedType>(op.getQc().getType());
  int64_t d = qcType.getDimSize(qcType.getRank() - 1);
  if (ShapedType::isDynamic(d) || d % 16 != 0 || d > 128)
    return "head_dim must be static, a multiple of 16 and at most 128";
  for (Value composites : {op.getQc(), op.getKc()})
    if (std::string why = compositeRowsUnaligned(composites); !why.empty())
      return why;
  if (options.warps <= 0 || options.keyTile <= 0 || options.keyTile % 16 ||
      (options.keyTile * d / 8) % (32 * options.warps))
    return "the key tile must be a multiple of 16 whose 16-byte chunks "
           "divide among the CTA's threads";
  int64_t rq = op.getBlock() / op.getCQ(), rk = op.getBlock() / op.getCK();
  if (options.warpRows != 16 && options.warpRows != 32)
    return "the query composites per warp must be 16 or 32";
  int64_t rows = scoreWarpRows(op, options) * options.warps;
  if (isAntidiagonal(op.getEstimator())) {
    // A stage holds a slot's key tile and the CTA's query composites.
    int64_t bytes = kStages * (options.keyTile + rows) * (d + kRowPad) *
                    (options.compositeType.getIntOrFloatBitWidth() / 8);
    if (bytes > kMaxWorkgroupBytes)
      return llvm::formatv("the antidiagonal kernel's stages (key tile {0} "
                           "and {1} query composites of {2} elements, x {3}) "
                           "need {4} bytes of workgroup memory, more than "
                           "{5}",
                           options.keyTile, rows, d + kRowPad, kStages, bytes,
                           kMaxWorkgroupBytes)
          .str();
    if ((rows * d / 8) % (32 * options.warps))
      return "the query composites' 16-byte chunks must divide among the "
             "CTA's threads";
  }
  if (rows % rq != 0)
    return llvm::formatv("block / c_q = {0} must divide the {1} query "
                         "composites of a CTA",
                         rq, rows)
        .str();
  // storeBlockSums: a key block is part of an n8 tile (rk 1, 2, 4) or
  // whole n8 tiles.
  if (options.keyTile % rk != 0 || (rk > 4 && rk % 8 != 0) || rk == 3)
    return llvm::formatv("block / c_k = {0} must be 1, 2, 4 or a multiple of "
                         "8 that divides the key tile ({1})",
                         rk, options.keyTile)
        .str();
  return "";
}

int64_t mlir::unisparse::scoreWarpRows(Operation *op,
                                       const ScoreKernelOptions &options) {
  auto score = dyn_cast<BlockScoreOp>(op);
  if (score && isAntidiagonal(score.getEstimator()))
    return 16;
  return options.warpRows;
}

std::string mlir::unisparse::queryPoolingUnsupportedReason(
    Operation *op, const ScoreKernelOptions &options, MemRefType input) {
  auto score = dyn_cast<BlockScoreOp>(op);
  if (!score || score.getEstimator() != Estimator::mean)
    return "only the mean estimator's kernel holds its query composites in "
           "a tile (the antidiagonal ones stream them with the keys)";
  Type element = input.getElementType();
  if (input.getRank() != 4 ||
      !(element.isF32() || element.isF16() || element.isBF16()))
    return "the raw queries must be [B, H, N, D] of f32, f16 or bf16";
  auto qcType = cast<ShapedType>(score.getQc().getType());
  int64_t d = qcType.getDimSize(qcType.getRank() - 1);
  int64_t width = MeanPooling::chunkWidth(input);
  int64_t rows = scoreWarpRows(op, options) * options.warps;
  if (input.getDimSize(3) != d || width == 1 ||
      (rows * d / width) % (32 * options.warps))
    return "the raw queries' 16-byte chunks must divide among the CTA's "
           "threads";
  ScoreShape s{};
  s.keyTile = options.keyTile;
  s.slots = 1;
  s.rows = rows;
  s.headDim = d;
  s.separate = options.separateEpilogue;
  s.pooledQueries = true;
  s.element = options.compositeType;
  int64_t bytes = ScoreKernel::workgroupBytes(s);
  if (bytes > kMaxWorkgroupBytes)
    return llvm::formatv("the key stages and the query tile need {0} bytes "
                         "of workgroup memory, more than {1}",
                         bytes, kMaxWorkgroupBytes)
        .str();
  return "";
}

void mlir::unisparse::populateBlockScoreToGPUPatterns(
    RewritePatternSet &patterns, const ScoreKernelOptions &options,
    const FusedQueryPooling &fused) {
  patterns.add<BlockScoreToGPU>(patterns.getContext(), options, fused);
}
