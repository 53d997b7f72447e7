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
//   unisparse_outlier_score        persistent CTAs (`ctas`, a scratch slot
//                                  each) over CTA tiles of 16 * warps query
//                                  composites (rounds of a tile per CTA,
//                                  the heaviest causal tiles first, every
//                                  other round in reverse CTA order), a
//                                  warp per 16 query composites; per tile
//                                  two passes over the key tiles its last
//                                  row sees, then the tile's scores.
//
// The estimator (python/unisparse/reference/outlier.py, docs/Fidelity.md):
// query slot a in {0 (rest mean, spread v), 1 (outlier row, no spread)},
// key slot b in {0 (rest mean, weight c_k - rk), 1..rk (outliers, weight
// 1)}. In the log2 domain x = log2(e) * (s * q_a . k_b + log w_b); slot 0
// rows take the softmax twice, the second time of y = x + log2(e) * s^2 v
// |k_b|^2 (1 - 2 p) / 2 with p the first softmax; slot 1 rows take it once
// (y = x). A[t, u] = omega_0 p'_0 + omega_1 p_1 summed over b, then block
// sums and the query reduction. Each pass is the same key loop (cp.async
// of a key tile of keyTile composites, all rk + 1 slots, double buffered;
// per slot b an mma.sync m16n8k16 GEMM of the warp's query slot rows, A by
// ldmatrix from the CTA's query tile in workgroup memory, against the
// slot's keyTile key rows):
//
//   passFirstStats (statistics of x, slot 0 rows only: one m16 tile, the
//                  16 composites' slot 0 rows)  -> m_x, l_x per composite
//   passScores     (per key tile: the running max m of y for slot 0 rows,
//                  of x for slot 1 rows, an integer in the log2 domain,
//                  and per key block the partial sums P of exp2(y - m),
//                  with m, to the CTA's scratch slot, a lane's two query
//                  slots of a composite as one pair store; two m16 tiles;
//                  of each 8 values of a row on unmasked key tiles the
//                  first exp2Poly take exp2 by a polynomial on the FMA
//                  pipe, the rest by ex2.approx)
//                                               -> m', l' per (composite,
//                                                  slot)
//   tileScores     (the query reduction over each query block's
//                  composites of sum_a P_a 2^(m_tile - m'_a) omega_a /
//                  l'_a, the power of two exact: with tileFactors a thread
//                  per (query block, key tile), the factors 2^(m_tile -
//                  m'_a) omega_a / l'_a once per tile for its blocks; else
//                  a thread per (query block, key block); blocks past the
//                  CTA's keys: 0).
//
// The defaults (convert-unisparse-to-gpu's options) are partials=f16,
// outlier-exp2-poly=2 and outlier-tile-factors; partials=f32,
// outlier-exp2-poly=0 and outlier-tile-factors=false turn each off.
// outlier-unroll-slots (off by default until timed) unrolls both passes'
// loops over the key slots: one basic block a key tile, so that ptxas can
// issue a slot's ldmatrix and mma.sync among the previous slot's epilogue
// and loads the A fragments once for the three slots (ptxas 13.0, the
// default at D 128: pass 2's unmasked key tile 1295 instructions for 192
// HMMA and 64 LDSM, against 3 x 461 with 96 LDSM); the operations and
// their order are the same, and so are the bits.
//
// With outlier-wgmma (sm_90a; 4 warps, D a multiple of 64: wgmmaApplies) the
// products are wgmma.mma_async m64 n keyTile k16 with both operands in
// workgroup memory by descriptor, in the 128-byte swizzle (rows of 64
// elements, panel major; the buffer 1024-byte aligned): the key stages slot
// major (row slot * keyTile + composite: each key slot one K-major B
// operand), the query tile as two m64 tiles (row 64 h + c: query slot h of
// composite c, so warp w's rows of tile h are its 16 composites' slot h).
// The copies are cp.async as before, then a proxy fence (the wgmma reads go
// through the async proxy) before each key tile's barrier. The key slots
// are unrolled; a slot's products are one commit group, issued before the
// previous slot's epilogue and waited for (wait_group 1) after it, the
// waited accumulators tied to the wait (inline PTX), so their reads follow
// it. Thread (w, lane) holds of tile h the elements of mmaSlot's m16 tiles
// (rows quad and quad + 8 of its 16), so the epilogue is the same; the
// products sum the same k16 steps in order, on another instruction.
//
// Row layout of a warp's two m16 tiles (C/D fragment: element [h][c] is row
// quad + 8 h, column 2 q + c): m tile mt holds composites mt * 8 .. mt * 8
// + 7 of the warp, rows 0..7 their slot 0, rows 8..15 their slot 1, so a
// lane holds both slots of composites quad and 8 + quad. The query tile
// stores them in that order (32 rows a warp), so the first pass's one m16
// tile (slot 0 rows of all 16 composites: row r = composite r) is an
// ldmatrix of rows 0..7 and 16..23 of the warp's. Key
// columns: in the GEMM of key slot b, n8 tile nt's column j is key
// composite 8 nt + j of the tile, read by ldmatrix from workgroup row
// (8 nt + j) * (rk + 1) + b (the tile is stored as in global memory), so
// every slot's columns are the same composites and the sum over b is
// in-thread too.
//
// Numbers: composites are 16-bit (the compress rounds them once), products
// accumulate in f32 on the tensor cores, exp2 is ex2.approx.ftz.f32 (or,
// for exp2Poly of each 8 values of pass 2's unmasked key tiles, the
// polynomial: relative error <= 2^-13.7), statistics and sums are f32; the
// scratch's partial sums are f16 (rounded once: 2^-11 relative; f32 with
// partials=f32); the rescales between a key tile's max and the final one
// are exact powers of two (the maxima are integers); |k|^2 and v are f32
// sums of the 16-bit composites.
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
/// wgmma's 128-byte swizzle: rows of 128 bytes (a panel of 64 16-bit
/// elements), 16-byte chunk c of row r at chunk c ^ (r mod 8), from a
/// 1024-byte aligned start; the descriptors' leading byte offset (unused by
/// K-major swizzled operands) and stride byte offset (8 rows to the next 8).
constexpr int64_t kPanelElems = 64;
constexpr int64_t kSwizzleLbo = 16;
constexpr int64_t kSwizzleSbo = 1024;
constexpr int64_t kSwizzleAlign = 1024;

/// The static parameters of the outlier scoring kernel.
struct OutlierShape {
  int64_t warps, threads, rows; // rows: query composites per CTA
  int64_t keyTile, nTiles;      // key composites per tile, n8 tiles
  int64_t keySlots;             // rk + 1 (key rest + key outliers)
  int64_t headDim, kSteps;      // D, D / 16
  int64_t cq, ck, qBlk, kBlk;   // composite sizes, composites per block
  bool causal;
  int64_t kvGroup;
  int64_t ctas; // persistent CTAs (the grid), a scratch slot each
  QueryReduce reduce;
  float scaleLog2;      // s * log2(e)
  float restLog2;       // log2(c_k - rk): the key rest slot's weight
  float spreadLog2;     // log2(e) * s^2 / 2: the spread term per v |k|^2
  float omega0, omega1; // the query slots' shares of the composite's rows
  Type element;
  Type partial; // the scratch's partial sums: f16 or f32
  /// Of each 8 values of a row in pass 2's unmasked key tiles, how many
  /// take exp2 by exp2Poly (the FMA pipe) instead of ex2.approx (the MUFU).
  int64_t exp2Poly;
  /// The scores by a thread per (query block, key tile), the tile's scale
  /// factors once (tileScoresByKeyTile), not per key block.
  bool tileFactors;
  /// The key slot loops unrolled (forSlots).
  bool unrollSlots;
  /// The products on wgmma (sm_90a): both operands from workgroup memory
  /// in the 128-byte swizzle, a warpgroup's m64 tiles; see wgmmaApplies.
  bool wgmma;

  int64_t partialBytes() const { return partial.getIntOrFloatBitWidth() / 8; }
  /// A query block's scratch rows (both slots of its composites): the run
  /// the scores read.
  int64_t run() const { return 2 * qBlk; }

  int64_t rowElems() const { return headDim + kRowPad; }
  int64_t stageRows() const { return keyTile * keySlots; }
  /// A row's elements in workgroup memory: padded (mma.sync), or the head
  /// dimension in 64-element panels (wgmma: no padding; the swizzle keeps
  /// the copies and the products bank-conflict free).
  int64_t storedRowElems() const { return wgmma ? headDim : rowElems(); }
  int64_t stageElems() const { return stageRows() * storedRowElems(); }
  int64_t queryTileElems() const { return scratchRows() * storedRowElems(); }
  int64_t blocksPerKeyTile() const { return keyTile / kBlk; }
  /// Rows of a CTA's scratch slot: both query slots of each composite.
  int64_t scratchRows() const { return 2 * rows; }
  /// The row statistics in workgroup memory: each run of a query block
  /// padded by 4 f32 (16 bytes), so the 16-byte loads of eight runs by a
  /// quarter warp hit distinct banks.
  int64_t statsElems() const {
    return scratchRows() + scratchRows() / run() * 4;
  }
  /// Where the query tile starts in the workgroup buffer (elements).
  int64_t queryTileOffset() const { return kStages * stageElems(); }
  /// A lane's in-thread partial block sums of one row per key tile: per
  /// block (kBlk >= 8: the quad shares a block), else per n8 tile (its two
  /// columns: a block of 2, or half of one of 4).
  int64_t pieces() const { return kBlk >= 8 ? blocksPerKeyTile() : nTiles; }
  /// Bytes of workgroup memory (workgroupTypes; with wgmma buffer 0 starts
  /// 1024-byte aligned, wherever the others go).
  int64_t workgroupBytes() const {
    return (queryTileOffset() + queryTileElems()) *
               (element.getIntOrFloatBitWidth() / 8) +
           2 * statsElems() * 4 + (wgmma ? kSwizzleAlign - 16 : 0);
  }
};

/// The dynamic sizes of one scoring launch.
struct OutlierSizes {
  Value batch, groups, tq, tk, nbq, nbk, queryTiles, keyTiles;
  Value tiles;       // CTA tiles of all heads
  Value blockStride; // keyTiles * blocksPerKeyTile >= nbk: a scratch row
};

/// The workgroup buffers: the key stages and after them the query slot
/// rows of the CTA tile (the A fragments), flat; per scratch row the final
/// max and omega / sum (the tile's scores read them; padded runs,
/// statsElems). Every size is a multiple of 16 bytes.
SmallVector<MemRefType> workgroupTypes(const OutlierShape &s) {
  Type f32 = Float32Type::get(s.element.getContext());
  return {
      workgroupMemRef({s.queryTileOffset() + s.queryTileElems()}, s.element),
      workgroupMemRef({s.statsElems()}, f32),
      workgroupMemRef({s.statsElems()}, f32)};
}

/// The largest key tile of the wgmma form: pass 2 holds 2 x keyTile / 2
/// accumulators a thread for the slot being read and as many for the next
/// one in flight (128 registers at 64).
constexpr int64_t kWgmmaMaxKeyTile = 64;

/// Whether the wgmma form applies (with the option on): one warpgroup a CTA
/// (4 warps: two m64 tiles of its 128 query slot rows), the head dimension
/// in whole 128-byte panels, and a key tile (wgmma's n) whose two slots'
/// accumulators fit the registers.
bool wgmmaApplies(const ScoreKernelOptions &options, int64_t headDim) {
  return options.outlierWgmma && options.warps == 4 && headDim % 64 == 0 &&
         options.outlierKeyTile % 8 == 0 &&
         options.outlierKeyTile <= kWgmmaMaxKeyTile;
}

/// The fields of the shape that fix its workgroup memory (16-bit composites
/// of `keySlots` key slots at D `headDim`, `qBlk` query composites a
/// block), from the options; the rewrite fills in the others from the op.
OutlierShape sizedShape(const ScoreKernelOptions &opts, int64_t headDim,
                        int64_t keySlots, int64_t qBlk) {
  OutlierShape s{};
  s.warps = opts.warps;
  s.threads = 32 * s.warps;
  s.rows = kWarpComposites * s.warps;
  s.keyTile = opts.outlierKeyTile;
  s.nTiles = s.keyTile / 8;
  s.keySlots = keySlots;
  s.headDim = headDim;
  s.kSteps = headDim / 16;
  s.qBlk = qBlk;
  s.element = opts.compositeType;
  s.wgmma = wgmmaApplies(opts, headDim);
  return s;
}

/// Emits the scoring kernel: persistent CTAs, each walking CTA tiles c, c +
/// grid, ... with its scratch slot.
class OutlierKernel : KernelBuilder {
public:
  OutlierKernel(ImplicitLocOpBuilder &b, const OutlierShape &s,
                const OutlierSizes &n, Value qc, Value kc, Value keyNorms,
                Value spread, Value scores, Value partials, Value maxima)
      : KernelBuilder{b}, s(s), n(n), qc(qc), kc(kc), keyNorms(keyNorms),
        spread(spread), scores(scores), partials(partials), maxima(maxima) {}

  void build(Value threadId, Value blockId, Value gridSize,
             ValueRange workgroup) {
    tid = threadId;
    keys = workgroup[0];
    rowMaxWg = workgroup[1];
    rowCoefWg = workgroup[2];
    Value lane = rem(tid, 32);
    warp = div(tid, 32);
    quad = div(lane, 4);
    qlane = rem(lane, 4);
    // mma.sync's operands by ldmatrix (wgmma takes them by descriptor,
    // below).
    if (!s.wgmma) {
      // ldmatrix.x4 on a key slot: lane l addresses composite 16 p + 8 (l /
      // 16) + l % 8 (matrices 0, 1: n8 tile 2 p, dims [0, 8) and [8, 16);
      // matrices 2, 3: n8 tile 2 p + 1), row composite * (rk + 1) + slot.
      Value ldComposite = add(mul(div(lane, 16), 8), rem(lane, 8));
      ldBase = add(mul(mul(ldComposite, s.keySlots), s.rowElems()),
                   mul(rem(div(lane, 8), 2), 8));
      // ldmatrix.x4 of A: lane l addresses row l % 16 (both slots: of the
      // m tile), columns 8 (l / 16), so matrices 0..3 are A registers 0..3;
      // the slot 0 rows of the warp's 16 composites are rows l % 8 + 16 ((l
      // / 8) % 2).
      Value warpRow = mul(warp, 2 * kWarpComposites);
      Value aCol = mul(div(lane, 16), 8);
      Value tileCol = add(aCol, idx(s.queryTileOffset()));
      aBase = add(mul(add(warpRow, rem(lane, 16)), s.rowElems()), tileCol);
      aBaseSlot0 = add(
          mul(add(warpRow, add(rem(lane, 8), mul(rem(div(lane, 8), 2), 16))),
              s.rowElems()),
          tileCol);
    }
    // The lane's own row (its maxima and final statistics): row r = qlane
    // of its four (mt, h) = (r / 2, r % 2).
    ownScratchRow =
        add(add(mul(warp, 2 * kWarpComposites), mul(div(qlane, 2), 16)),
            add(mul(quad, 2), rem(qlane, 2)));
    ownStatsIndex = statsIndex(ownScratchRow);
    laneOdd = eq(rem(qlane, 2), 1);
    if (s.wgmma) {
      // The descriptor of the workgroup buffer's first byte (its shared
      // address; 1024-byte aligned, so the swizzle's rows are the buffer's):
      // a byte offset o moves it by o / 16 (the start address field holds
      // every address of the CTA's workgroup memory without a carry).
      Value addr = arith::IndexCastOp::create(
          b, b.getI64Type(),
          memref::ExtractAlignedPointerAsIndexOp::create(b, keys));
      int64_t fields = (int64_t(kSwizzleLbo >> 4) << 16) |
                       (int64_t(kSwizzleSbo >> 4) << 32) | (int64_t(1) << 62);
      descBase = arith::OrIOp::create(
          b,
          arith::ShRUIOp::create(
              b, arith::AndIOp::create(b, addr, i64c(0x3FFFF)), i64c(4)),
          i64c(fields));
    }
    // The CTA's scratch slot: scratchRows rows of blockStride partial sums
    // and keyTiles maxima, reused by its tiles.
    Value slotRows = mul(blockId, s.scratchRows());
    partialBase = mul(slotRows, n.blockStride);
    maximaBase = mul(slotRows, n.keyTiles);
    // A static schedule in rounds of a tile per CTA, the tiles heaviest
    // first (causal) and the CTAs' order reversed every other round, so
    // that every CTA's tiles add up to about the same work.
    Value rounds = ceilDiv(n.tiles, gridSize);
    Value lastCta = sub(gridSize, idx(1));
    forLoop(idx(0), rounds, idx(1), {}, [&](Value round, ValueRange) {
      Value forward = eq(rem(round, 2), 0);
      Value tile = add(mul(round, gridSize),
                       select(forward, blockId, sub(lastCta, blockId)));
      ifThen(ult(tile, n.tiles), [&] { processTile(tile); });
      return SmallVector<Value>{};
    });
  }

private:
  const OutlierShape &s;
  const OutlierSizes &n;
  Value qc, kc, keyNorms, spread, scores, partials, maxima;
  Value tid, warp, quad, qlane, ldBase, keys, rowMaxWg, rowCoefWg;
  Value aBase, aBaseSlot0;
  Value ownScratchRow, ownStatsIndex, laneOdd, partialBase, maximaBase;
  Value descBase; // wgmma: the descriptor of the workgroup buffer's start
  /// wgmma: the products of each key slot issued and not yet waited for
  /// (forSlots' unrolled body; reset per key tile and mask form).
  SmallVector<SmallVector<Value>> inFlight;
  // Per tile.
  Value batchIdx, group, keyHead, t0, rowsHere, numKeyTiles;
  Value inside[2], rowLimit[2], spreadRow[2];
  Value xMax[2], xNeg2InvSum[2]; // pass 1, per composite mt: m_x, -2 / l_x

  /// CTA tile `tile`: query tile rank r = tile / heads of head tile mod
  /// heads, the causal ranks from the last query tile (the most keys) on.
  void processTile(Value tile) {
    Value heads = mul(n.batch, n.groups);
    Value head = rem(tile, heads);
    Value r = div(tile, heads);
    Value queryTile = s.causal ? sub(sub(n.queryTiles, idx(1)), r) : r;
    batchIdx = div(head, n.groups);
    group = rem(head, n.groups);
    keyHead = s.kvGroup == 1 ? group : div(group, s.kvGroup);
    t0 = mul(queryTile, s.rows);
    rowsHere = minU(idx(s.rows), sub(n.tq, t0));
    Value lastKey = sub(n.tk, idx(1));
    Value numKeys = n.tk;
    if (s.causal)
      numKeys = minU(n.tk, add(lastVisible(add(t0, sub(rowsHere, idx(1)))), 1));
    numKeyTiles = ceilDiv(numKeys, s.keyTile);

    // The lane's composites (mt = 0, 1): t0 + 16 warp + 8 mt + quad.
    for (int64_t mt = 0; mt < 2; ++mt) {
      Value t = add(t0, add(add(mul(warp, kWarpComposites), mt * 8), quad));
      inside[mt] = ult(t, n.tq);
      Value limit = lastKey;
      if (s.causal)
        limit = minU(limit, lastVisible(t));
      rowLimit[mt] = arith::IndexCastOp::create(b, b.getI32Type(), limit);
      // s^2 v / 2 in log2 units: the spread term's row factor (0 past Tq).
      Value v = load(spread, {batchIdx, group, select(inside[mt], t, idx(0))});
      spreadRow[mt] = select(inside[mt], fmul(v, f32(s.spreadLog2)), f32(0));
    }
    loadQueryTileAsync();

    // Pass 1: x statistics of the slot 0 rows (row h of the one m tile is
    // composite 8 h + quad: the lane's composite mt = h).
    SmallVector<Value> first = passFirstStats();
    for (int64_t mt = 0; mt < 2; ++mt) {
      xMax[mt] = first[mt];
      xNeg2InvSum[mt] = fmul(rowInverse(first[2 + mt]), f32(-2.0f));
    }
    // Pass 2: y statistics of slot 0, x statistics of slot 1 (row 2 mt +
    // h), and per key tile the rows' block partial sums to the scratch.
    SmallVector<Value> second = passScores();
    // The scores from the scratch.
    tileScores(second);
  }

  /// The last key composite query composite `t` sees (causal: u * c_k <=
  /// (t + 1) * c_q - 1), before the clamp to Tk - 1.
  Value lastVisible(Value t) {
    return div(sub(mul(add(t, 1), s.cq), idx(1)), s.ck);
  }

  /// The whole row sum from the lane's share (the quad's lanes).
  Value quadSum(Value share) {
    Value sum = fadd(share, shuffleXor(share, 1));
    return fadd(sum, shuffleXor(sum, 2));
  }

  /// 1 / the whole row sum from the lane's share.
  Value rowInverse(Value share) {
    return arith::DivFOp::create(b, f32(1.0f), quadSum(share));
  }

  /// cp.async of the CTA's query slot rows (slot 0 and 1 of each
  /// composite) into the query tile: row 32 w + 16 mt + 8 h + i holds slot
  /// h of composite 16 w + 8 mt + i of the tile (the A layout of the
  /// warp's m tile mt: rows 0..7 slot 0, 8..15 slot 1); composites past Tq
  /// zero-filled from a clamped source. Committed with the first key
  /// tile's copies.
  void loadQueryTileAsync() {
    int64_t chunksPerRow = s.headDim / 8;
    int64_t chunks = s.scratchRows() * chunksPerRow;
    Value lastComposite = sub(n.tq, idx(1));
    for (int64_t i = 0; i < chunks / s.threads; ++i) {
      Value chunk = add(tid, i * s.threads);
      Value row = div(chunk, chunksPerRow);
      Value col = mul(rem(chunk, chunksPerRow), 8);
      // wgmma: row h * rows + c holds slot h of composite c (m64 tile h:
      // warp w's 16 rows are its composites' slot h); mma.sync: the
      // warps' m16 tiles as above.
      Value t, slot, dst;
      if (s.wgmma) {
        t = add(t0, rem(row, s.rows));
        slot = div(row, s.rows);
        dst = add(swizzled(s.scratchRows(), row, col), s.queryTileOffset());
      } else {
        t = add(t0, add(mul(div(row, 16), 8), rem(row, 8)));
        slot = rem(div(row, 8), 2);
        dst = add(add(mul(row, s.rowElems()), col), idx(s.queryTileOffset()));
      }
      Value in = ult(t, n.tq);
      nvgpu::DeviceAsyncCopyOp::create(
          b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), keys,
          ValueRange{dst}, qc,
          ValueRange{batchIdx, group, select(in, t, lastComposite), slot, col},
          b.getIndexAttr(8), select(in, idx(8), idx(0)), b.getUnitAttr());
    }
  }

  /// wgmma: the element of (`row`, `col`) (col a multiple of 8) in a region
  /// of `rows` rows stored in the 128-byte swizzle, panel major: panel
  /// col / 64 holds every row's 128 bytes of it, chunk (col mod 64) / 8 of
  /// row r at chunk position ((col mod 64) / 8) ^ (r mod 8).
  Value swizzled(int64_t rows, Value row, Value col) {
    Value panel = div(col, kPanelElems);
    Value chunk = div(rem(col, kPanelElems), 8);
    Value at = arith::XOrIOp::create(b, chunk, rem(row, 8));
    return add(mul(add(mul(panel, rows), row), kPanelElems), mul(at, 8));
  }

  /// The A registers of k step `ks` by ldmatrix.x4 from the query tile:
  /// with both slots, m tile `mt` (the warp's rows 16 mt .. 16 mt + 15);
  /// else the one m16 tile of the slot 0 rows of the warp's 16 composites
  /// (rows 0..7 and 16..23 of its 32).
  SmallVector<Value> aStep(bool bothSlots, int64_t mt, int64_t ks) {
    auto fragsType = VectorType::get({4, 2}, s.element);
    Value at = bothSlots ? add(aBase, mt * 16 * s.rowElems() + ks * 16)
                         : add(aBaseSlot0, ks * 16);
    Value frags =
        nvgpu::LdMatrixOp::create(b, fragsType, keys, ValueRange{at},
                                  b.getBoolAttr(false), b.getI32IntegerAttr(4));
    SmallVector<Value> regs;
    for (int64_t reg = 0; reg < 4; ++reg)
      regs.push_back(mmaOperand(vector::ExtractOp::create(b, frags, reg)));
    return regs;
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
      // wgmma: slot major (row slot * keyTile + composite: each slot's rows
      // one B operand), swizzled; mma.sync: as in global memory, padded.
      Value dst = s.wgmma
                      ? add(stageBase,
                            swizzled(s.stageRows(),
                                     add(mul(rem(row, s.keySlots), s.keyTile),
                                         div(row, s.keySlots)),
                                     col))
                      : add(stageBase, add(mul(row, s.rowElems()), col));
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
          // wgmma reads the stage (and the query tile) through the async
          // proxy: each thread orders its copies' writes before them.
          if (s.wgmma)
            NVVM::FenceProxyOp::create(
                b,
                NVVM::ProxyKindAttr::get(b.getContext(),
                                         NVVM::ProxyKind::async_shared),
                NVVM::SharedSpaceAttr::get(b.getContext(),
                                           NVVM::SharedSpace::shared_cta));
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
    if (s.wgmma)
      return wgmmaSlot(stageBase, slot, bothSlots);
    int64_t mTiles = bothSlots ? 2 : 1;
    SmallVector<Value> acc(mTiles * s.nTiles * 4, f32(0.0f));
    auto fragsType = VectorType::get({4, 2}, s.element);
    Value base = add(add(stageBase, ldBase), mul(slot, s.rowElems()));
    for (int64_t ks = 0; ks < s.kSteps; ++ks) {
      SmallVector<SmallVector<Value>> a;
      for (int64_t mt = 0; mt < mTiles; ++mt)
        a.push_back(aStep(bothSlots, mt, ks));
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
            SmallVector<Value> d = mmaSync(s.element, a[mt], b0, b1,
                                           ArrayRef<Value>(acc).slice(at, 4));
            std::copy(d.begin(), d.end(), acc.begin() + at);
          }
        }
      }
    }
    return acc;
  }

  /// wgmma: mmaSlot's products for key slot `slotValue` (a constant:
  /// forSlots unrolls the slots) from the stage at `stageBase`, in mmaSlot's
  /// order. The slot's products were issued with the previous slot's (or
  /// are issued now, the first slot); the next slot's are issued before
  /// this one's are waited for, so that they run on the tensor cores while
  /// this slot's epilogue runs.
  SmallVector<Value> wgmmaSlot(Value stageBase, Value slotValue,
                               bool bothSlots) {
    int64_t slot = *getConstantIntValue(slotValue);
    if (inFlight[slot].empty())
      inFlight[slot] = issueSlot(stageBase, slot, bothSlots);
    bool ahead = slot + 1 < s.keySlots;
    if (ahead)
      inFlight[slot + 1] = issueSlot(stageBase, slot + 1, bothSlots);
    SmallVector<Value> d = waitGroups(inFlight[slot], ahead ? 1 : 0);
    inFlight[slot].clear();
    if (!bothSlots)
      return d; // row h of the m tile's warp rows: composite 8 h + quad
    // m64 tile h (query slot h) against mmaSlot's m16 tiles mt (composites
    // 8 mt .. 8 mt + 7 of the warp, rows of slot h at 8 h): the same
    // (row, column) of a thread, element [nt][2 mt + c] of tile h.
    int64_t acc = s.keyTile / 2;
    SmallVector<Value> out(2 * acc);
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t nt = 0; nt < s.nTiles; ++nt)
        for (int64_t mt = 0; mt < 2; ++mt)
          for (int64_t c = 0; c < 2; ++c)
            out[(mt * s.nTiles + nt) * 4 + 2 * h + c] =
                d[h * acc + nt * 4 + 2 * mt + c];
    return out;
  }

  /// wgmma: issues S = Q_h K_slot^T for the query slots h (both, or slot 0)
  /// against key slot `slot` of the stage at `stageBase`, D / 16 k steps of
  /// m64 n keyTile k16 each, as one commit group; returns the in-flight
  /// accumulators (keyTile / 2 a thread and h, h major), which only
  /// waitGroups may read.
  SmallVector<Value> issueSlot(Value stageBase, int64_t slot, bool bothSlots) {
    int64_t mTiles = bothSlots ? 2 : 1, acc = s.keyTile / 2;
    int64_t elementBytes = s.element.getIntOrFloatBitWidth() / 8;
    int64_t rowBytes = kPanelElems * elementBytes;
    NVVM::WgmmaFenceAlignedOp::create(b);
    Value poison = LLVM::PoisonOp::create(b, b.getF32Type());
    SmallVector<SmallVector<Value>> d(mTiles, SmallVector<Value>(acc, poison));
    Value stageDesc = arith::AddIOp::create(
        b, descBase,
        arith::IndexCastOp::create(b, b.getI64Type(),
                                   div(mul(stageBase, elementBytes), 16)));
    auto at = [&](Value desc, int64_t bytes) {
      return arith::AddIOp::create(b, desc, i64c(bytes >> 4)).getResult();
    };
    for (int64_t ks = 0; ks < s.kSteps; ++ks) {
      // k step ks: panel ks / 4, its 32-byte chunk pair ks mod 4.
      int64_t inner = (ks % 4) * 32;
      Value bDesc = at(stageDesc, (ks / 4) * s.stageRows() * rowBytes +
                                      slot * s.keyTile * rowBytes + inner);
      for (int64_t h = 0; h < mTiles; ++h) {
        Value aDesc = at(descBase, s.queryTileOffset() * elementBytes +
                                       (ks / 4) * s.scratchRows() * rowBytes +
                                       h * s.rows * rowBytes + inner);
        d[h] = wgmmaAsync(aDesc, bDesc, ks > 0, d[h]);
      }
    }
    NVVM::WgmmaGroupSyncAlignedOp::create(b);
    SmallVector<Value> out;
    for (auto &tile : d)
      out.append(tile);
    return out;
  }

  /// One wgmma.mma_async m64 n keyTile k16 (f32 += A B, A and B K-major in
  /// workgroup memory by descriptor), the accumulators tied (`accumulate`
  /// false: scale-d 0, they are only outputs).
  SmallVector<Value> wgmmaAsync(Value aDesc, Value bDesc, bool accumulate,
                                ArrayRef<Value> in) {
    int64_t acc = in.size();
    std::string regs, constraints;
    for (int64_t i = 0; i < acc; ++i) {
      regs += (i ? ", $" : "$") + std::to_string(i);
      constraints += "=f,";
    }
    constraints += "l,l,r";
    for (int64_t i = 0; i < acc; ++i)
      constraints += "," + std::to_string(i);
    std::string type = s.element.isBF16() ? "bf16" : "f16";
    std::string text = llvm::formatv(
        "{{\n.reg .pred p;\nsetp.ne.b32 p, ${0}, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n{1}k16.f32.{2}.{2} {{{3}}, ${4}, "
        "${5}, p, 1, 1, 0, 0;\n}\n",
        acc + 2, s.keyTile, type, regs, acc, acc + 1);
    SmallVector<Value> operands{aDesc, bDesc, i32(accumulate ? 1 : 0)};
    operands.append(in.begin(), in.end());
    return inlineAsm(text, constraints, operands, acc);
  }

  /// wgmma.wait_group `pending` with the accumulators of the groups it
  /// completes tied to it: their reads come after it.
  SmallVector<Value> waitGroups(ArrayRef<Value> regs, int64_t pending) {
    std::string constraints;
    for (size_t i = 0; i < regs.size(); ++i)
      constraints += "=f,";
    for (size_t i = 0; i < regs.size(); ++i)
      constraints += (i ? "," : "") + std::to_string(i);
    return inlineAsm(
        llvm::formatv("wgmma.wait_group.sync.aligned {0};", pending).str(),
        constraints, regs, regs.size());
  }

  /// Volatile inline PTX with `results` f32 results.
  SmallVector<Value> inlineAsm(StringRef text, StringRef constraints,
                               ValueRange operands, int64_t results) {
    auto type = LLVM::LLVMStructType::getLiteral(
        b.getContext(), SmallVector<Type>(results, b.getF32Type()));
    Value r =
        LLVM::InlineAsmOp::create(
            b, type, operands, text, constraints,
            /*has_side_effects=*/true, /*is_align_stack=*/false,
            LLVM::tailcallkind::TailCallKind::None,
            LLVM::AsmDialectAttr::get(b.getContext(), LLVM::AsmDialect::AD_ATT),
            /*operand_attrs=*/ArrayAttr())
            .getRes();
    SmallVector<Value> out;
    for (int64_t i = 0; i < results; ++i)
      out.push_back(LLVM::ExtractValueOp::create(b, r, i));
    return out;
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

  /// The accumulators S of key slot `slot` for the lane's row (mt, h) of
  /// `acc`, n8 tile major, -inf past the row's last visible key (the check
  /// only where `masked`). The logits are x = S s log2(e) + log2 w_b; the
  /// passes fold that FMA into the exponent's argument (x - m = S s log2(e)
  /// + (log2 w_b - m), one FMA) and take maxima of S, since s log2(e) > 0
  /// makes the max commute with it (fl of an FMA is monotone in S).
  SmallVector<Value> rowAcc(ArrayRef<Value> acc, int64_t accTile, int64_t h,
                            int64_t mt, Value kt, bool masked) {
    Value room;
    if (masked)
      room = arith::SubIOp::create(
          b, rowLimit[mt],
          arith::IndexCastOp::create(b, b.getI32Type(), laneFirstKey(kt)));
    SmallVector<Value> x;
    for (int64_t nt = 0; nt < s.nTiles; ++nt)
      for (int64_t c = 0; c < 2; ++c) {
        Value v = acc[(accTile * s.nTiles + nt) * 4 + 2 * h + c];
        if (masked) {
          Value ok = arith::CmpIOp::create(b, arith::CmpIPredicate::sle,
                                           i32(nt * 8 + c), room);
          v = select(ok, v, negInf());
        }
        x.push_back(v);
      }
    return x;
  }

  /// x - m for accumulators `a` and `offset` = log2 w_b - m.
  Value logitMinus(Value a, Value offset) {
    return math::FmaOp::create(b, a, f32(s.scaleLog2), offset);
  }

  /// `v` reduced by `combine` as a tree (independent operations, not a
  /// chain of dependent ones).
  Value tree(ArrayRef<Value> v, function_ref<Value(Value, Value)> combine) {
    SmallVector<Value> level(v.begin(), v.end());
    while (level.size() > 1) {
      SmallVector<Value> next;
      for (size_t i = 0; i + 1 < level.size(); i += 2)
        next.push_back(combine(level[i], level[i + 1]));
      if (level.size() % 2)
        next.push_back(level.back());
      level = next;
    }
    return level.front();
  }
  Value treeMax(ArrayRef<Value> v) {
    return tree(v, [&](Value x, Value y) { return fmaxnum(x, y); });
  }
  Value treeSum(ArrayRef<Value> v) {
    return tree(v, [&](Value x, Value y) { return fadd(x, y); });
  }

  /// The quad's max of the logits x of accumulators `a` (log2 w_b `logW`)
  /// and `mOld`.
  Value quadLogitMax(ArrayRef<Value> a, Value logW, Value mOld) {
    Value m = treeMax(a);
    m = fmaxnum(m, shuffleXor(m, 1));
    m = fmaxnum(m, shuffleXor(m, 2));
    return fmaxnum(mOld, math::FmaOp::create(b, m, f32(s.scaleLog2), logW));
  }

  /// y - m_x of a slot 0 row of composite `mt` from its accumulators `a`:
  /// t = x - m_x (one FMA, `offX` = log2 w_b - m_x), p l_x = exp2(t), and
  /// y - m_x = t + spreadRow |k|^2 (1 - 2 p), 1 - 2 p = exp2(t) (-2 / l_x)
  /// + 1 (one FMA; -2 / l_x is exact from 1 / l_x). The slot 0 rows' maxima
  /// are kept in this frame (y - m_x; m_x is fixed per row): only their
  /// differences are used.
  SmallVector<Value> corrected(ArrayRef<Value> a, ArrayRef<Value> norms,
                               int64_t mt, Value offX, bool masked) {
    SmallVector<Value> y;
    for (size_t j = 0; j < a.size(); ++j) {
      Value t = logitMinus(a[j], offX);
      Value oneMinus2p = math::FmaOp::create(b, exp2Of(t, j, masked),
                                             xNeg2InvSum[mt], f32(1.0f));
      y.push_back(
          math::FmaOp::create(b, fmul(spreadRow[mt], norms[j]), oneMinus2p, t));
    }
    return y;
  }

  /// -m, with m = -inf (a row that saw only masked keys so far) taken as
  /// -FLT_MAX: exp2(-inf - m) is then 0, never NaN.
  Value safeNeg(Value m) {
    return arith::NegFOp::create(
        b, fmaxnum(m, f32(-std::numeric_limits<float>::max())));
  }

  /// exp2 of value `j` of a row in pass 2: on unmasked key tiles (`masked`
  /// false) the first `exp2Poly` of each 8 by exp2Poly, the rest (and every
  /// value of a masked tile, where -inf must give exactly 0) by
  /// ex2.approx.ftz.
  Value exp2Of(Value x, size_t j, bool masked) {
    if (!masked && static_cast<int64_t>(j % 8) < s.exp2Poly)
      return exp2Poly(x);
    return exp2Ftz(x);
  }

  /// 2^x for x <= 1/2 on the FMA pipe (FlashAttention-4's emulation): x
  /// clamped to >= -126, j = round(x) by the 1.5 * 2^23 shift (exact; j in
  /// the low mantissa bits of x + 1.5 * 2^23), f = x - j in [-1/2, 1/2]
  /// (exact), 2^f by a degree-3 minimax polynomial (Horner, 3 FMA), and j
  /// added to its exponent field by an integer add (bits(x + 1.5 * 2^23) <<
  /// 23 = j << 23 mod 2^32). Relative error at most 2^-13.7 (7.49e-5, the
  /// polynomial's with its f32 FMAs; unisparse.margin.EXP2_POLY_REL) where
  /// the result is normal (x >= -125.5); below, it is positive and below
  /// 2^-125 (ex2.approx.ftz gives 0 there): absolute error < 2^-125.
  Value exp2Poly(Value x) {
    constexpr float kShift = 12582912.0f; // 1.5 * 2^23
    // The minimax coefficients of 2^f on [-1/2, 1/2], c0 .. c3.
    constexpr float kC0 = 0.99992806f, kC1 = 0.69326097f, kC2 = 0.24261113f,
                    kC3 = 0.05517167f;
    Value c = fmaxnum(x, f32(-126.0f));
    Value shifted = fadd(c, f32(kShift));
    Value f = fsub(c, fsub(shifted, f32(kShift)));
    Value p = math::FmaOp::create(b, f32(kC3), f, f32(kC2));
    p = math::FmaOp::create(b, p, f, f32(kC1));
    p = math::FmaOp::create(b, p, f, f32(kC0));
    Value exponent = arith::ShLIOp::create(
        b, arith::BitcastOp::create(b, b.getI32Type(), shifted), i32(23));
    Value bits = arith::AddIOp::create(
        b, arith::BitcastOp::create(b, b.getI32Type(), p), exponent);
    return arith::BitcastOp::create(b, b.getF32Type(), bits);
  }

  /// The max over the quad of the lane's values `x` and `mOld`.
  Value quadMax(ArrayRef<Value> x, Value mOld) {
    Value m = treeMax(x);
    m = fmaxnum(m, shuffleXor(m, 1));
    m = fmaxnum(m, shuffleXor(m, 2));
    return fmaxnum(mOld, m);
  }

  /// `body` over the key slots 0 .. rk in order, carrying `init`: unrolled
  /// (one basic block a key tile, so that ptxas can issue a slot's mma.sync
  /// while the previous slot's epilogue runs) with unrollSlots or wgmma
  /// (whose slots' commit groups are issued ahead: inFlight, reset here),
  /// else an scf.for.
  SmallVector<Value>
  forSlots(ValueRange init,
           function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    if (!s.unrollSlots && !s.wgmma)
      return forLoop(idx(0), idx(s.keySlots), idx(1), init, body);
    inFlight.assign(s.keySlots, {});
    SmallVector<Value> st(init.begin(), init.end());
    for (int64_t slot = 0; slot < s.keySlots; ++slot)
      st = body(idx(slot), st);
    return st;
  }

  /// Whether every row of the CTA sees key tile `kt` whole (no mask).
  Value wholeTile(Value kt) {
    Value firstRowLimit =
        s.causal ? minU(sub(n.tk, idx(1)), lastVisible(t0)) : sub(n.tk, idx(1));
    return ule(mul(add(kt, 1), s.keyTile), add(firstRowLimit, 1));
  }

  /// Pass 1: the online max and (the lane's share of the) sum of exp2 of x
  /// of the slot 0 rows (one m16 tile; 2 rows a lane: composites mt = 0,
  /// 1) over every key slot of every key tile. Returns the maxima, then the
  /// sum shares.
  SmallVector<Value> passFirstStats() {
    SmallVector<Value> init(2, negInf());
    init.append(2, f32(0.0f));
    return keyLoop(init, [&](Value kt, Value stageBase, ValueRange st) {
      auto slotLoop = [&](bool masked) {
        return forSlots(
            st, [&](Value slot, ValueRange in) -> SmallVector<Value> {
              SmallVector<Value> acc = mmaSlot(stageBase, slot, false);
              Value logW = select(eq(slot, 0), f32(s.restLog2), f32(0.0f));
              SmallVector<Value> next(in.begin(), in.end());
              for (int64_t mt = 0; mt < 2; ++mt) {
                // Row h = mt of the one tile: composite mt.
                SmallVector<Value> a = rowAcc(acc, 0, mt, mt, kt, masked);
                Value mOld = in[mt];
                Value mNew = quadLogitMax(a, logW, mOld);
                Value negM = safeNeg(mNew);
                Value offset = fadd(logW, negM);
                SmallVector<Value> e;
                for (Value v : a)
                  e.push_back(exp2Ftz(logitMinus(v, offset)));
                next[mt] = mNew;
                next[2 + mt] = math::FmaOp::create(
                    b, in[2 + mt], exp2Ftz(fadd(mOld, negM)), treeSum(e));
              }
              return next;
            });
      };
      return ifElse(
          wholeTile(kt), st.getTypes(), [&] { return slotLoop(false); },
          [&] { return slotLoop(true); });
    });
  }

  /// The lane's in-thread partial block sums (pieces()) of one row's 2
  /// nTiles values `e` (n8 tile major).
  SmallVector<Value> pieceSums(ArrayRef<Value> e) {
    SmallVector<Value> out;
    int64_t width = s.kBlk >= 8 ? s.kBlk / 4 : 2; // values a piece
    for (int64_t p = 0; p < s.pieces(); ++p) {
      Value sum = e[p * width];
      for (int64_t i = 1; i < width; ++i)
        sum = fadd(sum, e[p * width + i]);
      out.push_back(sum);
    }
    return out;
  }

  /// Pass 2, folded with the scores: per key tile and row (2 mt + h; slot 0
  /// rows y, slot 1 rows x) the running max m, an integer in the log2
  /// domain, and per key slot the lane's partial block sums E of exp2(y -
  /// m) (E rescaled by the exact power of two 2^(m_old - m) where a slot
  /// raises m), then finishTile. Returns the final maxima, then the lanes'
  /// shares of the row sums.
  SmallVector<Value> passScores() {
    int64_t pieces = s.pieces();
    SmallVector<Value> init(4, negInf());
    init.append(4, f32(0.0f));
    return keyLoop(init, [&](Value kt, Value stageBase, ValueRange st) {
      SmallVector<Value> tileInit(st.take_front(4));
      tileInit.append(4 * pieces, f32(0.0f));
      SmallVector<Type> types(tileInit.size(), b.getF32Type());
      auto slotLoop = [&](bool masked) {
        return forSlots(
            tileInit, [&](Value slot, ValueRange in) -> SmallVector<Value> {
              SmallVector<Value> acc = mmaSlot(stageBase, slot, true);
              Value logW = select(eq(slot, 0), f32(s.restLog2), f32(0.0f));
              SmallVector<Value> norms = keyNormPairs(kt, slot);
              SmallVector<Value> next(in.begin(), in.end());
              for (int64_t row = 0; row < 4; ++row) {
                int64_t mt = row / 2, h = row % 2;
                SmallVector<Value> a = rowAcc(acc, mt, h, mt, kt, masked);
                Value mOld = in[row];
                SmallVector<Value> e;
                Value mNew;
                if (h == 0) {
                  // y - m_x, its running max (integer) in that frame.
                  SmallVector<Value> y = corrected(
                      a, norms, mt, fadd(logW, safeNeg(xMax[mt])), masked);
                  mNew = math::CeilOp::create(b, quadMax(y, mOld));
                  Value negM = safeNeg(mNew);
                  for (size_t j = 0; j < y.size(); ++j)
                    e.push_back(exp2Of(fadd(y[j], negM), j, masked));
                } else {
                  mNew = math::CeilOp::create(b, quadLogitMax(a, logW, mOld));
                  Value offset = fadd(logW, safeNeg(mNew));
                  for (size_t j = 0; j < a.size(); ++j)
                    e.push_back(exp2Of(logitMinus(a[j], offset), j, masked));
                }
                Value factor = exactPow2(fsub(mOld, mNew));
                SmallVector<Value> part = pieceSums(e);
                for (int64_t p = 0; p < pieces; ++p) {
                  int64_t at = 4 + row * pieces + p;
                  next[at] = math::FmaOp::create(b, in[at], factor, part[p]);
                }
                next[row] = mNew;
              }
              return next;
            });
      };
      SmallVector<Value> tile = ifElse(
          wholeTile(kt), types, [&] { return slotLoop(false); },
          [&] { return slotLoop(true); });
      return finishTile(kt, st, tile);
    });
  }

  /// The scratch row of the lane's row (mt, h): composite 16 warp + 8 mt +
  /// quad of the CTA tile, query slot h.
  Value scratchRow(int64_t mt, int64_t h) {
    return add(mul(warp, 2 * kWarpComposites),
               add(mul(quad, 2), idx(16 * mt + h)));
  }

  /// The end of key tile `kt` in pass 2: `tile` = the rows' maxima after
  /// it, then their pieces; `st` = the maxima and sum shares before it.
  /// The block sums to the scratch (key block major: partials[partialBase
  /// + key block * scratchRows + row], f16 or f32), each row's max to
  /// maxima[maximaBase + kt * scratchRows + row] (one store a lane: lane q
  /// owns row q), and the sum shares rescaled to the new maxima plus the
  /// tile's. A lane's rows of composite mt are the scratch rows 2 c and 2 c
  /// + 1 (query slots 0 and 1): one 2-element store per (mt, block), and a
  /// store instruction writes each of its blocks' 8 quads' rows whole (16
  /// rows, 32 or 64 contiguous bytes: whole sectors).
  SmallVector<Value> finishTile(Value kt, ValueRange st, ArrayRef<Value> tile) {
    int64_t pieces = s.pieces(), bpk = s.blocksPerKeyTile();
    Value tileBase = add(partialBase, mul(mul(kt, bpk), s.scratchRows()));
    auto part = [&](int64_t row) {
      return tile.slice(4 + row * pieces, pieces);
    };
    auto storePair = [&](int64_t mt, Value v0, Value v1, Value blk) {
      auto type = VectorType::get({2}, s.partial);
      Value vec = vector::FromElementsOp::create(
          b, type, ValueRange{partialValue(v0), partialValue(v1)});
      vector::StoreOp::create(
          b, vec, partials,
          ValueRange{
              add(tileBase, add(mul(blk, s.scratchRows()), scratchRow(mt, 0)))},
          /*nontemporal=*/false, llvm::Align(2 * s.partialBytes()));
    };
    for (int64_t mt = 0; mt < 2; ++mt) {
      ArrayRef<Value> p0 = part(2 * mt), p1 = part(2 * mt + 1);
      if (s.kBlk >= 8) {
        // Block j: the quad's pieces j. Lane q stores blocks q, q + 4, ...
        // (with fewer than 4 blocks in a group, q mod their count: lanes
        // that share one store the same value).
        SmallVector<Value> w0, w1;
        for (int64_t p = 0; p < pieces; ++p) {
          w0.push_back(quadSum(p0[p]));
          w1.push_back(quadSum(p1[p]));
        }
        for (int64_t j = 0; j * 4 < bpk; ++j) {
          int64_t count = std::min<int64_t>(4, bpk - j * 4);
          Value which = count == 4 ? qlane : rem(qlane, count);
          Value v0 = w0[j * 4], v1 = w1[j * 4];
          for (int64_t i = 1; i < count; ++i) {
            v0 = select(eq(which, i), w0[j * 4 + i], v0);
            v1 = select(eq(which, i), w1[j * 4 + i], v1);
          }
          storePair(mt, v0, v1, add(which, j * 4));
        }
      } else if (s.kBlk == 4) {
        // n8 tile nt holds blocks 2 nt (lanes q = 0, 1) and 2 nt + 1 (q =
        // 2, 3). Of the pair of n8 tiles (2 j, 2 j + 1) the even lane sums
        // (its own + its partner's, one shuffle) tile 2 j's, the odd lane
        // tile 2 j + 1's: block 2 (2 j + q % 2) + q / 2.
        for (int64_t j = 0; j < s.nTiles / 2; ++j) {
          auto half = [&](ArrayRef<Value> p) {
            Value keep = select(laneOdd, p[2 * j + 1], p[2 * j]);
            Value send = select(laneOdd, p[2 * j], p[2 * j + 1]);
            return fadd(keep, shuffleXor(send, 1));
          };
          Value blk =
              add(add(idx(4 * j), mul(rem(qlane, 2), 2)), div(qlane, 2));
          storePair(mt, half(p0), half(p1), blk);
        }
      } else {
        // kBlk 2: n8 tile nt, the lane's own block 4 nt + q.
        for (int64_t nt = 0; nt < s.nTiles; ++nt)
          storePair(mt, p0[nt], p1[nt], add(qlane, 4 * nt));
      }
    }
    SmallVector<Value> next(tile.take_front(4));
    for (int64_t row = 0; row < 4; ++row) {
      Value share = treeSum(part(row));
      next.push_back(math::FmaOp::create(
          b, st[4 + row], exactPow2(fsub(st[row], tile[row])), share));
    }
    store(ownRow(tile.take_front(4)), maxima,
          {add(add(maximaBase, mul(kt, s.scratchRows())), ownScratchRow)});
    return next;
  }

  /// `v` (f32) as the scratch's partial-sum type (f16: rounded once).
  Value partialValue(Value v) { return narrowF32(v, s.partial); }

  /// Index of scratch row `r` in the workgroup row statistics (padded runs).
  Value statsIndex(Value r) { return add(r, mul(div(r, s.run()), 4)); }

  /// The value of the lane's own row (row qlane) among its four.
  Value ownRow(ArrayRef<Value> v) {
    Value r = v[0];
    for (int64_t i = 1; i < 4; ++i)
      r = select(eq(qlane, i), v[i], r);
    return r;
  }

  /// The query reduction of two partial scores.
  Value reduce(Value x, Value y) {
    if (s.reduce == QueryReduce::sum)
      return fadd(x, y);
    return arith::MaximumFOp::create(b, x, y);
  }

  /// The tile's scores from the scratch slot: each row's final max and
  /// omega_h / l to workgroup memory, then per (query block, key block)
  /// the reduction over the block's composites of the sum over the query
  /// slots h of P * 2^(m_tile - m) * omega_h / l; 0 past the key tiles the
  /// CTA walked. `stats`: passScores' result.
  void tileScores(ArrayRef<Value> stats) {
    SmallVector<Value> coef;
    for (int64_t row = 0; row < 4; ++row)
      coef.push_back(
          fmul(rowInverse(stats[4 + row]), f32(row % 2 ? s.omega1 : s.omega0)));
    store(ownRow(stats.take_front(4)), rowMaxWg, {ownStatsIndex});
    store(ownRow(coef), rowCoefWg, {ownStatsIndex});
    // The slot's partial sums and maxima, written by other threads, are
    // visible after the barrier.
    gpu::BarrierOp::create(b);
    Value blocksWritten = minU(n.nbk, mul(numKeyTiles, s.blocksPerKeyTile()));
    Value firstQb = div(t0, s.qBlk);
    // A thread per (query block, key block), query block fastest: its 2
    // qBlk scratch rows are contiguous (vector loads), and so are the
    // threads' (a warp reads whole lines).
    int64_t qbs = s.rows / s.qBlk, count = s.run();
    // 16-byte loads of the run (f32 or f16, widened).
    auto loadRun = [&](Value buffer, Type element, Value first) {
      int64_t bytes = element.getIntOrFloatBitWidth() / 8;
      int64_t width = std::min<int64_t>(16 / bytes, count);
      auto type = VectorType::get({width}, element);
      SmallVector<Value> out;
      for (int64_t i = 0; i < count; i += width) {
        Value v = vector::LoadOp::create(b, type, buffer, add(first, idx(i)),
                                         /*nontemporal=*/false,
                                         llvm::Align(width * bytes));
        for (int64_t j = 0; j < width; ++j)
          out.push_back(widenToF32(vector::ExtractOp::create(b, v, j)));
      }
      return out;
    };
    if (s.tileFactors) {
      scoresByKeyTile(firstQb, loadRun);
      gpu::BarrierOp::create(b);
      return;
    }
    forLoop(tid, mul(n.nbk, qbs), idx(s.threads), {}, [&](Value p, ValueRange) {
      Value local = rem(p, qbs);
      Value blk = div(p, qbs);
      Value qb = add(firstQb, local);
      ifThen(ult(qb, n.nbq), [&] {
        Value written = ifElseValue(
            ult(blk, blocksWritten), b.getF32Type(),
            [&] {
              Value kt = div(blk, s.blocksPerKeyTile());
              Value first = mul(local, count);
              SmallVector<Value> part = loadRun(
                  partials, s.partial,
                  add(add(partialBase, mul(blk, s.scratchRows())), first));
              SmallVector<Value> tileMax = loadRun(
                  maxima, b.getF32Type(),
                  add(add(maximaBase, mul(kt, s.scratchRows())), first));
              // The run in the padded workgroup statistics (ptxas merges the
              // scalar loads into 16-byte ones; the padding spreads a quarter
              // warp's eight runs over distinct banks).
              Value statsFirst = mul(local, count + 4);
              SmallVector<Value> rowMax, rowCoef;
              for (int64_t r = 0; r < count; ++r) {
                rowMax.push_back(load(rowMaxWg, {add(statsFirst, idx(r))}));
                rowCoef.push_back(load(rowCoefWg, {add(statsFirst, idx(r))}));
              }
              Value score = f32(0.0f);
              for (int64_t i = 0; i < s.qBlk; ++i) {
                Value v = f32(0.0f);
                for (int64_t h = 0; h < 2; ++h) {
                  int64_t r = 2 * i + h;
                  Value factor =
                      fmul(exactPow2(fsub(tileMax[r], rowMax[r])), rowCoef[r]);
                  v = math::FmaOp::create(b, part[r], factor, v);
                }
                // Composites past Tq leave the reduction (the scores are >= 0,
                // so 0 is the max's identity too).
                Value c = add(mul(local, s.qBlk), i);
                score = select(ult(c, rowsHere), reduce(score, v), score);
              }
              return score;
            },
            [&] { return f32(0.0f); });
        store(written, scores, {batchIdx, group, qb, blk});
      });
      return SmallVector<Value>{};
    });
    // The slot and the row statistics are reused by the next tile.
    gpu::BarrierOp::create(b);
  }

  /// tileScores with `tileFactors`: a thread per (query block, key tile),
  /// query block fastest; the 2 qBlk rows' scale factors 2^(m_tile - m)
  /// omega_h / l are computed once for the tile's blocksPerKeyTile blocks
  /// (the same f32 operations per score as a thread per block: the factor
  /// is one product, rounded once, then one FMA a share), each block's run
  /// of partial sums loaded, reduced and stored in turn; key tiles past the
  /// CTA's get 0, blocks past NBk are not stored.
  void scoresByKeyTile(
      Value firstQb,
      function_ref<SmallVector<Value>(Value, Type, Value)> loadRun) {
    int64_t qbs = s.rows / s.qBlk, count = s.run();
    int64_t bpk = s.blocksPerKeyTile();
    forLoop(
        tid, mul(n.keyTiles, qbs), idx(s.threads), {},
        [&](Value p, ValueRange) {
          Value local = rem(p, qbs);
          Value kt = div(p, qbs);
          Value qb = add(firstQb, local);
          Value first = mul(local, count);
          Value firstBlk = mul(kt, bpk);
          // Each block of the tile inside NBk gets score(blk).
          auto eachBlock = [&](function_ref<Value(Value)> score) {
            for (int64_t j = 0; j < bpk; ++j) {
              Value blk = add(firstBlk, j);
              ifThen(ult(blk, n.nbk), [&] {
                store(score(blk), scores, {batchIdx, group, qb, blk});
              });
            }
          };
          ifThen(ult(qb, n.nbq), [&] {
            ifThenElse(
                ult(kt, numKeyTiles),
                [&] {
                  SmallVector<Value> tileMax = loadRun(
                      maxima, b.getF32Type(),
                      add(add(maximaBase, mul(kt, s.scratchRows())), first));
                  Value statsFirst = mul(local, count + 4);
                  // A composite past Tq gets factors 0: its shares are then +0
                  // (its partial sums are finite: zero query rows), which leave
                  // the reduction as the select of a thread per block does
                  // (scores >= +0, the max's and the sum's identity).
                  SmallVector<Value> factor;
                  for (int64_t r = 0; r < count; ++r) {
                    Value rowMax = load(rowMaxWg, {add(statsFirst, idx(r))});
                    Value rowCoef = load(rowCoefWg, {add(statsFirst, idx(r))});
                    Value c = add(mul(local, s.qBlk), r / 2);
                    factor.push_back(select(
                        ult(c, rowsHere),
                        fmul(exactPow2(fsub(tileMax[r], rowMax)), rowCoef),
                        f32(0.0f)));
                  }
                  eachBlock([&](Value blk) {
                    SmallVector<Value> part =
                        loadRun(partials, s.partial,
                                add(add(partialBase, mul(blk, s.scratchRows())),
                                    first));
                    Value score = f32(0.0f);
                    for (int64_t i = 0; i < s.qBlk; ++i) {
                      Value v = f32(0.0f);
                      for (int64_t h = 0; h < 2; ++h)
                        v = math::FmaOp::create(b, part[2 * i + h],
                                                factor[2 * i + h], v);
                      score = reduce(score, v);
                    }
                    return score;
                  });
                },
                [&] { eachBlock([&](Value) { return f32(0.0f); }); });
          });
          return SmallVector<Value>{};
        });
  }
};

/// The f32 sum over d of x[..., d] (or of its squares, fused) of a rank-5
/// composite buffer, ascending in d, from 16-byte vector loads all issued
/// before the first add (a thread's row in flight at once, where scalar
/// loads in a loop left one load to wait on per add: these prologue kernels
/// took 120 us of a 32K call on the H200). The rows are 16-byte aligned:
/// outlierScoreUnsupportedReason refuses composites not known to be
/// (compositeRowsUnaligned), as the scoring kernel's cp.async needs it too.
Value sumOverDim(KernelBuilder &kb, Value buffer, ValueRange prefix,
                 int64_t headDim, bool square) {
  Type element = cast<MemRefType>(buffer.getType()).getElementType();
  int64_t bytes = element.getIntOrFloatBitWidth() / 8;
  int64_t width = vectorElements(bytes, headDim);
  auto type = VectorType::get({width}, element);
  SmallVector<Value> chunks;
  for (int64_t d = 0; d < headDim; d += width) {
    SmallVector<Value> at(prefix.begin(), prefix.end());
    at.push_back(kb.idx(d));
    chunks.push_back(kb.widenToF32(
        vector::LoadOp::create(kb.b, type, buffer, at, /*nontemporal=*/false,
                               llvm::Align(width * bytes))));
  }
  Value total = kb.f32(0.0f);
  for (Value chunk : chunks)
    for (int64_t j = 0; j < width; ++j) {
      Value x = vector::ExtractOp::create(kb.b, chunk, j);
      total = square ? math::FmaOp::create(kb.b, x, x, total).getResult()
                     : kb.fadd(total, x);
    }
  return total;
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

    OutlierShape s =
        sizedShape(opts, qcType.getDimSize(4), kcType.getDimSize(3),
                   op.getBlock() / op.getCQ());
    s.cq = op.getCQ();
    s.ck = op.getCK();
    s.kBlk = op.getBlock() / s.ck;
    s.causal = op.getCausal();
    s.kvGroup = op.getKvGroup();
    s.ctas = opts.ctas;
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
    s.partial = opts.halfPartials ? Type(b.getF16Type()) : b.getF32Type();
    s.exp2Poly = opts.outlierExp2Poly;
    s.tileFactors = opts.outlierTileFactors;
    s.unrollSlots = opts.outlierUnrollSlots;

    OutlierSizes n;
    n.batch = memref::DimOp::create(b, qc, 0);
    n.groups = memref::DimOp::create(b, qc, 1);
    n.tq = memref::DimOp::create(b, qc, 2);
    n.tk = memref::DimOp::create(b, kc, 2);
    n.nbq = memref::DimOp::create(b, scores, 2);
    n.nbk = memref::DimOp::create(b, scores, 3);
    n.queryTiles = kb.ceilDiv(n.tq, s.rows);
    n.keyTiles = kb.ceilDiv(n.tk, s.keyTile);
    n.tiles = kb.mul(kb.mul(n.batch, n.groups), n.queryTiles);
    n.blockStride = kb.mul(n.keyTiles, s.blocksPerKeyTile());
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
    // A scratch slot per CTA, key block (tile) major: partial sums (f16 or
    // f32) [blockStride, scratchRows] and f32 maxima [keyTiles,
    // scratchRows].
    Value ctas = kb.minU(n.tiles, kb.idx(s.ctas));
    Value slotRows = kb.mul(ctas, s.scratchRows());
    auto flat = MemRefType::get({ShapedType::kDynamic}, f32);
    Value partials = memref::AllocOp::create(
        b, MemRefType::get({ShapedType::kDynamic}, s.partial),
        ValueRange{kb.mul(slotRows, n.blockStride)});
    Value maxima = memref::AllocOp::create(
        b, flat, ValueRange{kb.mul(slotRows, n.keyTiles)});
    // wgmma: the swizzled stages and query tile start 1024-byte aligned.
    // min-ctas-per-sm: ptxas's register budget (nvvm.minctasm).
    SmallVector<NamedAttribute> attrs;
    if (s.wgmma) {
      Attribute aligned = b.getDictionaryAttr(
          b.getNamedAttr(LLVM::LLVMDialect::getAlignAttrName(),
                         b.getI64IntegerAttr(kSwizzleAlign)));
      Attribute none = b.getDictionaryAttr({});
      attrs.push_back(b.getNamedAttr("workgroup_attrib_attrs",
                                     b.getArrayAttr({aligned, none, none})));
    }
    if (opts.minCtasPerSm > 0)
      attrs.push_back(minCtasPerSmAttr(b, opts.minCtasPerSm));
    DictionaryAttr kernelAttrs = b.getDictionaryAttr(attrs);
    buildLaunch(
        b, ctas, s.threads, workgroupTypes(s), "unisparse_outlier_score",
        [&](ImplicitLocOpBuilder &lb, Value tid, Value bid, ValueRange wg) {
          Value grid = gpu::GridDimOp::create(lb, gpu::Dimension::x);
          OutlierKernel(lb, s, n, qc, kc, keyNorms, spread, scores, partials,
                        maxima)
              .build(tid, bid, grid, wg);
        },
        /*dynamicSharedBytes=*/Value(), kernelAttrs);
    for (Value buffer : {keyNorms, spread, partials, maxima})
      memref::DeallocOp::create(b, buffer);
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
  for (Value composites : {op.getQc(), op.getKc()})
    if (std::string why = compositeRowsUnaligned(composites); !why.empty())
      return why;
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
  int64_t keyTile = options.outlierKeyTile;
  if (options.warps <= 0 || keyTile <= 0 || keyTile % 16 ||
      (keyTile * keySlots * d / 8) % (32 * options.warps))
    return "the key tile must be a multiple of 16 whose 16-byte chunks (all "
           "slots) divide among the CTA's threads";
  if (kBlk != 2 && kBlk != 4 && kBlk % 8 != 0)
    return llvm::formatv("block / c_k = {0} must be 2, 4 or a multiple of 8",
                         kBlk)
        .str();
  if (keyTile % kBlk != 0)
    return llvm::formatv("block / c_k = {0} must divide the key tile ({1})",
                         kBlk, keyTile)
        .str();
  int64_t bytes = sizedShape(options, d, keySlots, qBlk).workgroupBytes();
  if (bytes > kMaxWorkgroupBytes)
    return llvm::formatv("the key stages ({0} composites of {1} slots, x {2}), "
                         "the query tile and the row statistics need {3} "
                         "bytes of workgroup "
                         "memory, more than {4}",
                         keyTile, keySlots, kStages, bytes, kMaxWorkgroupBytes)
        .str();
  return "";
}

int64_t
mlir::unisparse::outlierScoreCtaComposites(const ScoreKernelOptions &options) {
  return kWarpComposites * options.warps;
}

void mlir::unisparse::populateOutlierScoreToGPUPatterns(
    RewritePatternSet &patterns, const ScoreKernelOptions &options) {
  patterns.add<OutlierScoreToGPU>(patterns.getContext(), options);
}
