//===- SlashRefineKernel.cpp - slash_refine as GPU kernels ----------------===//
//
// unisparse.slash_refine (16-bit q and k) in buffer form becomes five
// launches (six where the evidence tile does not fit), the steps of the op's
// description (M = last_q, P = M - 1, m = min(M, N) real rows; all sums f32;
// the logits in the log2 domain, x2 = S fl(scale log2 e) (scale log2 e
// rounded once from the op's double scale), and exponentials 2^(x2 - .) by
// ex2.approx.ftz, which are the CPU's math.exp of the natural logits: one
// rounding more a logit, within unisparse.reference.twolevel_f32.logit_error;
// results below 2^-126 flush to +0, where the CPU's expf keeps subnormals.
// Token indices are taken in 32 bits in places (the probe rows' forced keys
// and key blocks), so N must stay below 2^31 - 32):
//
//   lastRows     tensor cores: a warp per (b, head, 16 of the last rows,
//                piece of kPieceKeys keys), a CTA's warps the query heads
//                of one kv head on the same piece: the rows' logits x2 =
//                fl(scale log2 e) q.k on mma.sync m16n8k16 (A fragments of
//                q in registers, B fragments of k loaded per n8 tile, the
//                head dimension permuted alike in both for 16-byte loads),
//                masked (-inf past the row's query), stored to the scratch
//                [B, Hq, M, ld] (the CPU lowering holds the natural logits
//                there, rows padded to ld = N rounded up to 8 floats; a
//                lane's two keys one 8-byte store, a quad's 8 keys one
//                32-byte sector), and the piece's online (max, sum of
//                2^(x2 - max)) per row (quad shuffles);
//   rowStats     a warp per (b, head, row): the pieces' (max, sum) merged,
//                stored as the max and 1 / sum (0 where the sum is not
//                positive);
//   evidence     a CTA per (b, group, tile of kEvidenceTile entries e in
//                [0, N + P), offset d = N - 1 - e): the shares pv[r, j] =
//                sum over the group's heads of 2^(x2 - max) (1 / sum),
//                times 1 / (m c_h), of the tile's keys and their P-wide halo
//                into workgroup memory, then v0[j] = sum_r pv[r, j], then per
//                entry s0[e] = sum_r pv[r, e + r - P] and slash[e] = sum_r
//                of the pairs with v0 < s0 (ULT: NaN goes to the slash),
//                -inf for d <= local_blocks * block (the CPU's order of
//                sums); where M rows of shares do not fit in static
//                workgroup memory, two kernels: vertical (a thread per key,
//                v0 to a scratch) and slash (a thread per entry, each share
//                recomputed);
//   topOffsets   a CTA per (b, group): n_offsets rounds of a block-wide
//                arg-max (largest evidence, ties to the larger e, i.e. the
//                smaller offset, NaN never wins): each thread keeps the
//                best of its strided entries, the round reduces them (warp
//                shuffles, then warp 0 over the 32 warps), marks the winner
//                -inf and the owner's warp rescans the owner's entries; an
//                offset whose evidence is not positive is -1; then the
//                candidate slots' rules (slotRule) into the dead evidence
//                row where they fit;
//   probeRows    a warp per (b, query block I, group), the group innermost
//                (a CTA's kProbeWarps warps are one block's consecutive
//                groups: where c_h < G the query heads of one kv head, whose
//                forced keys are the same), E in workgroup memory (a row per
//                warp): per head of the group and tile of 8 probe rows (the
//                mma's n8: B the rows' q), the log-sum-exp of the forced
//                keys (sink block, blocks I - local_blocks .. I up to the
//                row) on tensor cores with 16 keys as the A operand: where
//                the CTA's warps share them (stagedForced) and the rows are
//                16-byte aligned, staged in workgroup memory by the CTA's
//                threads (cp.async two steps of 32 keys ahead, ldmatrix),
//                else from global loads, online over kForcedTiles m16
//                tiles a step (each step's A fragments loaded a step
//                ahead); merged over the 8 lanes
//                of a row, all in the log2 domain (logits times scale
//                log2(e), exp2 by ex2.approx, the lse by log2); then the
//                candidates an offset at a time: its
//                8 (2w + 1) (row, e) entries as the keys of m16 tiles (a
//                row's 2w + 1 keys adjacent; the wanted logit of key m is
//                C[m][row m], 16 of a tile's 128), their exp(x - lse) /
//                (probe rows * c_h) summed per key block (nBins bins) over
//                the warp by a butterfly and added into E by lane 0; then
//                the block's row total and forced sums of the first pass
//                (lane-strided, a butterfly) and the combination max(s /
//                tot, E * f / tot) with the op's NaN rules, written once
//                (with refine_norm the row's sum of E in the same loop and
//                butterfly, and E * f / tot divided by 1 + f / tot sum E).
//
// E lives in workgroup memory (NB floats a block), so nothing grows as N^2
// beyond the scores; the scratch is the last rows' logits (B Hq M ld floats, as
// on the CPU path) plus O(B Hg N).
//
// Fragment layouts (mma.m16n8k16 .bf16/.f16, row.col, lane l = 4 quad +
// q): A reg 0 = row quad, cols 2q..2q+1; reg 1 = row quad + 8; regs 2, 3 =
// cols + 8. B reg 0 = key quad, dims 2q..2q+1; reg 1 = dims + 8. C element
// [h][c] = row quad + 8h, key 2q + c of the n8 tile. The probe rows swap
// the roles: A holds 16 keys, B 8 probe rows (C [h][c] = key quad + 8h, row
// 2q + c).
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include <array>
#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

namespace {
/// Warps per CTA of lastRows (each its own piece of keys).
constexpr int64_t kLastRowWarps = 4;
/// Keys per warp of lastRows.
constexpr int64_t kPieceKeys = 256;
/// Threads per CTA of the elementwise kernels.
constexpr int64_t kThreads = 128;
/// Threads (32 warps) of topOffsets' CTA.
constexpr int64_t kOffsetThreads = 1024;
/// Evidence loads a thread issues before comparing them (topOffsets).
constexpr int64_t kScanUnroll = 8;
/// Warps (query blocks) per CTA of the probe kernel.
constexpr int64_t kProbeWarps = 4;
/// Offsets whose candidates the probe kernel takes together (a unit): an
/// offset's 8 (2w + 1) entries are an odd number of half m16 tiles, a
/// unit's 16 (2w + 1) whole tiles.
constexpr int64_t kUnit = 2;
/// m16 tiles of forced keys per step of the probe kernel. One: with its
/// fragments loaded a step ahead, a step's registers are live twice (two
/// tiles a step spilled 1 KB under the 4-warp kernel's 128-register budget).
constexpr int64_t kForcedTiles = 1;
/// Stages of the probe kernel's forced keys in workgroup memory
/// (stagedForced): the step being read and kForcedStages - 1 landing.
constexpr int64_t kForcedStages = 3;
/// m16 tiles of forced keys per staged step (two independent accumulator
/// chains a step, a barrier per 32 keys).
constexpr int64_t kStagedTiles = 2;
/// Candidate tiles of a unit up to which the probe kernel computes their
/// entries' rows and slots once per tile of rows rather than once per unit.
constexpr int64_t kHoistTiles = 4;
/// Entries (and threads) per CTA of the fused evidence kernel.
constexpr int64_t kEvidenceTile = 256;
/// Rows of shares whose loads the evidence kernel issues together.
constexpr int64_t kShareBatch = 4;
/// Static workgroup memory a CTA may declare (without opting in).
constexpr int64_t kStaticWorkgroupBytes = 48 * 1024;

/// The static parameters of one refinement.
struct RefineShape {
  int64_t M, P, mTiles;    // last_q, last_q - 1, ceil(M / 16)
  int64_t nOffsets, width; // offsets kept, keys each side of one
  int64_t rows;            // rows_per_block
  int64_t block, local;    // block, local_blocks
  int64_t minOffset;       // local_blocks * block (saturated)
  bool sink;
  bool norm;               // refine_norm: R / (1 + sum_J R)
  int64_t hq, G, hg, ch;   // query heads, Hq / Hkv, head groups, Hq / Hg
  int64_t headDim, kSteps; // D, D / 16
  /// The logits' factor in the log2 domain: scale log2(e), rounded once to
  /// f32 from the op's (double) scale.
  float scaleLog2;
  Type element; // bf16 or f16
  int64_t candidates() const { return nOffsets * (2 * width + 1); }
  /// Whether the fused evidence kernel's tile (the shares of M rows over
  /// kEvidenceTile + P keys, and their vertical sums) fits in static
  /// workgroup memory; else the vertical and slash kernels (M > 41).
  bool evidenceFused() const {
    return M * (kEvidenceTile + P + 1) * 4 <= kStaticWorkgroupBytes;
  }
};

/// The dynamic sizes and buffers every kernel reads.
struct RefineData {
  Value batch, n, nb, pieces, evLen; // B, N, NB, ceil(N / piece), N + P
  Value ld; // the logits' row stride: N rounded up to a multiple of 8
  Value q, k, scores, out; // the op's memrefs
  Value aligned;           // q's and k's rows 16-byte aligned (host, i1)
  // Flat f32 scratch: logits [B, Hq, M, ld], piece (max, sum) [B, Hq, M,
  // pieces], row (max, 1 / sum) [B, Hq, M], vertical [B, Hg, N], evidence [B,
  // Hg, N + P]; offsets [B, Hg, n_offsets] (i64, -1 where none).
  Value logits, partMax, partSum, rowMax, rowInv, vertical, evidence, offsets;
};

/// Builds the launches of one refinement.
struct RefineKernels : KernelBuilder {
  const RefineShape &s;
  const RefineData &d;

  RefineKernels(ImplicitLocOpBuilder &b, const RefineShape &s,
                const RefineData &d)
      : KernelBuilder{b}, s(s), d(d) {}

  //===--- small helpers ---------------------------------------------===//

  Value fdiv(Value x, Value y) { return arith::DivFOp::create(b, x, y); }
  Value fmaximum(Value x, Value y) {
    return arith::MaximumFOp::create(b, x, y);
  }
  Value fcmp(arith::CmpFPredicate p, Value x, Value y) {
    return arith::CmpFOp::create(b, p, x, y);
  }
  Value icmp(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, p, x, y);
  }
  Value notI(Value x) {
    return arith::XOrIOp::create(b, x, arith::ConstantIntOp::create(b, 1, 1));
  }
  Value toI32(Value x) {
    return arith::IndexCastOp::create(b, b.getI32Type(), x);
  }
  Value toI64(Value x) {
    return arith::IndexCastOp::create(b, b.getI64Type(), x);
  }
  Value toF32(Value x) {
    return arith::UIToFPOp::create(b, b.getF32Type(), toI64(x));
  }

  /// Flat index of (batch, head, last row) rows of the scratch.
  Value lastRow(Value bi, Value head, Value r) {
    return add(mul(add(mul(bi, s.hq), head), s.M), r);
  }

  //===--- tensor-core tiles -----------------------------------------===//

  /// Elements col, col + 1 of row `row` of head `head` of `src` ([B, H, N,
  /// D]) as an operand register; where `valid` is false row 0 is read, and
  /// the register is zero if `zero`.
  Value pairAt(Value src, Value bi, Value head, Value row, Value valid,
               Value col, bool zero = true) {
    auto pairType = VectorType::get({2}, s.element);
    Value safe = select(valid, row, idx(0));
    Value pair = vector::LoadOp::create(b, pairType, src,
                                        ValueRange{bi, head, safe, col},
                                        /*nontemporal=*/false, llvm::Align(4));
    if (!zero)
      return mmaOperand(pair);
    Value zeros = arith::ConstantOp::create(
        b, pairType,
        DenseElementsAttr::get(pairType, b.getZeroAttr(s.element)));
    return select(valid, mmaOperand(pair), mmaOperand(zeros));
  }

  /// One octet of octetsAt: elements col .. col + 7 of row `row` (row 0
  /// where not `valid`; the registers zero there if `zero`).
  struct Octet {
    Value row, valid, col;
  };

  /// The octets `octs` of head `head` of `src` ([B, H, N, D]) as four
  /// operand registers each (pairs 0..3): one 16-byte load an octet where
  /// the host found q's and k's rows 16-byte aligned, else four 4-byte
  /// loads, the choice one branch for all of them (their loads issued
  /// together).
  SmallVector<SmallVector<Value>> octetsAt(Value src, Value bi, Value head,
                                           ArrayRef<Octet> octs,
                                           bool zero = true) {
    auto octType = VectorType::get({8}, s.element);
    auto pairType = VectorType::get({2}, s.element);
    SmallVector<Value> safe;
    for (const Octet &o : octs)
      safe.push_back(select(o.valid, o.row, idx(0)));
    SmallVector<Type> pairTypes(4 * octs.size(), pairType);
    SmallVector<Value> loaded = ifElse(
        d.aligned, pairTypes,
        [&] {
          SmallVector<Value> pairs;
          for (size_t o = 0; o < octs.size(); ++o) {
            Value oct = vector::LoadOp::create(
                b, octType, src, ValueRange{bi, head, safe[o], octs[o].col},
                /*nontemporal=*/false, llvm::Align(16));
            for (int64_t pr = 0; pr < 4; ++pr)
              pairs.push_back(vector::ShuffleOp::create(
                  b, oct, oct, ArrayRef<int64_t>{2 * pr, 2 * pr + 1}));
          }
          return pairs;
        },
        [&] {
          SmallVector<Value> pairs;
          for (size_t o = 0; o < octs.size(); ++o)
            for (int64_t pr = 0; pr < 4; ++pr)
              pairs.push_back(vector::LoadOp::create(
                  b, pairType, src,
                  ValueRange{bi, head, safe[o], add(octs[o].col, 2 * pr)},
                  /*nontemporal=*/false, llvm::Align(4)));
          return pairs;
        });
    Value zeros;
    if (zero)
      zeros = mmaOperand(arith::ConstantOp::create(
          b, pairType,
          DenseElementsAttr::get(pairType, b.getZeroAttr(s.element))));
    SmallVector<SmallVector<Value>> out;
    for (size_t o = 0; o < octs.size(); ++o) {
      SmallVector<Value> regs;
      for (int64_t pr = 0; pr < 4; ++pr) {
        Value reg = mmaOperand(loaded[4 * o + pr]);
        regs.push_back(zero ? select(octs[o].valid, reg, zeros) : reg);
      }
      out.push_back(regs);
    }
    return out;
  }

  // The head dimension in k steps of 16, permuted: Q K^T sums over it, so A
  // and B only have to agree on which dimension each k slot holds. Steps
  // 2p and 2p + 1 of lane l (quad lane ql) hold dimensions 32p + 8ql .. 32p
  // + 8ql + 7 of its rows / key, 16 contiguous bytes: slot (step 2p + h,
  // half c) (A regs c * 2 + row, B reg c) is pair 2h + c of that octet. A
  // last step of 16 (D = 16 mod 32) keeps the mma's own layout, dimensions
  // 16 ks + 2ql (+ 8 for the second half).

  /// The A fragments of 16 rows of `src` (default q; the lane's rows quad
  /// and quad + 8 are `rowIdx[h]`, zero where not `valid[h]` if `zero`): 4
  /// registers per k step.
  SmallVector<Value> queryFragments(Value bi, Value head, Value rowIdx[2],
                                    Value valid[2], Value ql,
                                    Value src = Value(), bool zero = true) {
    if (!src)
      src = d.q;
    SmallVector<Value> regs;
    SmallVector<Octet> octs;
    for (int64_t p = 0; p < s.kSteps / 2; ++p)
      for (int64_t h = 0; h < 2; ++h)
        octs.push_back({rowIdx[h], valid[h], add(mul(ql, 8), 32 * p)});
    SmallVector<SmallVector<Value>> loaded =
        octetsAt(src, bi, head, octs, zero);
    for (int64_t p = 0; p < s.kSteps / 2; ++p)
      for (int64_t half = 0; half < 2; ++half)
        for (int64_t reg = 0; reg < 4; ++reg)
          regs.push_back(loaded[2 * p + reg % 2][2 * half + reg / 2]);
    if (s.kSteps % 2)
      for (int64_t reg = 0; reg < 4; ++reg) {
        Value col = add(mul(ql, 2), (s.kSteps - 1) * 16 + (reg / 2) * 8);
        regs.push_back(
            pairAt(src, bi, head, rowIdx[reg % 2], valid[reg % 2], col, zero));
      }
    return regs;
  }

  /// The B fragments of one n8 tile: the lane's key `key` of kv head `kv`
  /// (of `src`, default k: the probe rows take their q rows so)
  /// (row 0 where not `keyValid`, not zeroed: an n8 tile's column depends
  /// on its own key alone, and every caller masks the logits of a column
  /// whose key is not valid: -inf past N or past the key range, 0 for a
  /// candidate not taken), 2 registers per k step.
  SmallVector<Value> keyFragments(Value bi, Value kv, Value key, Value keyValid,
                                  Value ql, Value src = Value()) {
    if (!src)
      src = d.k;
    SmallVector<Value> regs;
    SmallVector<Octet> octs;
    for (int64_t p = 0; p < s.kSteps / 2; ++p)
      octs.push_back({key, keyValid, add(mul(ql, 8), 32 * p)});
    for (const SmallVector<Value> &oct :
         octetsAt(src, bi, kv, octs, /*zero=*/false))
      regs.append(oct.begin(), oct.end());
    if (s.kSteps % 2)
      for (int64_t reg = 0; reg < 2; ++reg)
        regs.push_back(pairAt(src, bi, kv, key, keyValid,
                              add(mul(ql, 2), (s.kSteps - 1) * 16 + reg * 8),
                              /*zero=*/false));
    return regs;
  }

  /// S = Q K^T of one n8 tile from its B fragments; returns the C
  /// registers.
  SmallVector<Value> mmaKeys(ArrayRef<Value> aRegs, ArrayRef<Value> bRegs) {
    auto accType = LLVM::LLVMStructType::getLiteral(
        b.getContext(), SmallVector<Type>(4, b.getF32Type()));
    NVVM::MMATypes ptx =
        s.element.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
    SmallVector<Value> acc(4, f32(0.0f));
    for (int64_t ks = 0; ks < s.kSteps; ++ks) {
      Value out = NVVM::MmaOp::create(
          b, accType, aRegs.slice(ks * 4, 4), bRegs.slice(ks * 2, 2), acc,
          {16, 8, 16}, std::nullopt, std::nullopt,
          std::array<NVVM::MMATypes, 2>{ptx, ptx},
          std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                         NVVM::MMALayout::col});
      for (int64_t e = 0; e < 4; ++e)
        acc[e] = LLVM::ExtractValueOp::create(b, out, e);
    }
    return acc;
  }

  //===--- online softmax statistics ---------------------------------===//

  /// max(x, y): NaN-propagating (`propagate`, the probe rows' online
  /// log-sum-exp on the CPU) or NaN-ignoring (the last rows' row max).
  Value fmax(Value x, Value y, bool propagate) {
    return propagate ? fmaximum(x, y) : fmaxnum(x, y);
  }

  /// (max, sum of 2^(x - max)) after adding `xs` (-inf: masked) to (m, l):
  /// every statistic of the kernels is in the log2 domain (x = S fl(scale
  /// log2 e)), its exponentials ex2.approx.ftz (one MUFU op, within 2 ulp
  /// where the result is normal; below 2^-126 it gives +0). A max of -inf
  /// shifts by 0, so masked entries add 2^-inf = 0.
  std::pair<Value, Value> online(Value m, Value l, ArrayRef<Value> xs,
                                 bool propagate) {
    Value t = xs[0];
    for (Value x : xs.drop_front())
      t = fmax(t, x, propagate);
    Value mNew = fmax(m, t, propagate);
    Value safe = select(feq(mNew, negInf()), f32(0.0f), mNew);
    Value sum = fmul(l, exp2Ftz(fsub(m, safe)));
    for (Value x : xs)
      sum = fadd(sum, exp2Ftz(fsub(x, safe)));
    return {mNew, sum};
  }

  /// Two (max, sum) pairs of one row merged (log2 domain).
  std::pair<Value, Value> merge(Value m1, Value l1, Value m2, Value l2,
                                bool propagate) {
    Value mNew = fmax(m1, m2, propagate);
    Value safe = select(feq(mNew, negInf()), f32(0.0f), mNew);
    Value sum = fadd(fmul(l1, exp2Ftz(fsub(m1, safe))),
                     fmul(l2, exp2Ftz(fsub(m2, safe))));
    return {mNew, sum};
  }

  /// A row's (max, sum) over its quad (every lane of the quad gets it).
  std::pair<Value, Value> quadMerge(Value m, Value l, bool propagate) {
    for (int32_t mask : {1, 2}) {
      auto [mm, ll] =
          merge(m, l, shuffleXor(m, mask), shuffleXor(l, mask), propagate);
      m = mm;
      l = ll;
    }
    return {m, l};
  }

  /// The lane's two rows' (max, sum of 2^(x - max)) `st` (maxima, then
  /// sums) after the n8 tile `acc` of keys j0 ..: x = S fl(scale log2 e)
  /// (the log2 domain) where `visible(h, j)`, else -inf; `each(h, j, x)`,
  /// when given, sees every element.
  SmallVector<Value>
  tileStep(ValueRange st, ArrayRef<Value> acc, Value j0, Value ql,
           function_ref<Value(int64_t h, Value j)> visible, bool propagate,
           function_ref<void(int64_t h, Value j, Value x)> each = nullptr) {
    Value scaleLog2 = f32(s.scaleLog2);
    SmallVector<Value> next(st.begin(), st.end());
    for (int64_t h = 0; h < 2; ++h) {
      SmallVector<Value> xs;
      for (int64_t c = 0; c < 2; ++c) {
        Value j = add(add(j0, mul(ql, 2)), c);
        Value x =
            select(visible(h, j), fmul(acc[2 * h + c], scaleLog2), negInf());
        if (each)
          each(h, j, x);
        xs.push_back(x);
      }
      std::tie(next[h], next[2 + h]) = online(st[h], st[2 + h], xs, propagate);
    }
    return next;
  }

  //===--- 1. the last rows ------------------------------------------===//

  /// A warp per (b, kv head, m16 tile of rows, piece, query head of the kv
  /// head), the query head innermost: a CTA's warps are the G query heads
  /// of one kv head on the same keys (all of them where G >= 4), so K's
  /// fragments come from L1 after the first warp's loads instead of from L2
  /// once per query head.
  void lastRows() {
    int64_t hkv = s.hq / s.G;
    Value items =
        mul(mul(mul(mul(d.batch, hkv), s.mTiles), d.pieces), idx(s.G));
    buildLaunch(
        b, ceilDiv(items, kLastRowWarps), 32 * kLastRowWarps, {},
        "unisparse_slash_last_rows",
        [&](ImplicitLocOpBuilder &, Value tid, Value bid, ValueRange) {
          Value warp = div(tid, 32), lane = rem(tid, 32);
          Value quad = div(lane, 4), ql = rem(lane, 4);
          Value item = add(mul(bid, kLastRowWarps), warp);
          Value rest = div(item, s.G);
          Value piece = rem(rest, d.pieces);
          rest = div(rest, d.pieces);
          Value mt = rem(rest, s.mTiles);
          rest = div(rest, s.mTiles);
          Value kv = rem(rest, hkv), bi = div(rest, hkv);
          Value head = add(mul(kv, s.G), rem(item, s.G));
          ifThen(ult(item, items), [&] {
            // Row r is query N - M + r: real when r < M and r + N >= M.
            Value r[2], inRows[2], valid[2], query[2];
            for (int64_t h = 0; h < 2; ++h) {
              r[h] = add(add(mul(mt, 16), quad), 8 * h);
              inRows[h] = ult(r[h], s.M);
              valid[h] = andI(inRows[h], ule(idx(s.M), add(r[h], d.n)));
              query[h] =
                  select(valid[h], sub(add(r[h], d.n), idx(s.M)), idx(0));
            }
            SmallVector<Value> aRegs =
                queryFragments(bi, head, query, valid, ql);
            Value first = mul(piece, kPieceKeys);
            Value count = minU(idx(kPieceKeys), sub(d.n, first));
            Value pending; // the lane's logit of key 2 ql of the tile
            SmallVector<Value> init = {negInf(), negInf(), f32(0.0f),
                                       f32(0.0f)};
            SmallVector<Value> st = forLoop(
                idx(0), ceilDiv(count, 8), idx(1), init,
                [&](Value nt, ValueRange a) -> SmallVector<Value> {
                  Value j0 = add(first, mul(nt, 8));
                  Value key = add(j0, quad);
                  SmallVector<Value> acc = mmaKeys(
                      aRegs, keyFragments(bi, kv, key, ult(key, d.n), ql));
                  return tileStep(
                      a, acc, j0, ql,
                      [&](int64_t h, Value j) {
                        return andI(valid[h], ule(j, query[h]));
                      },
                      /*propagate=*/false,
                      [&](int64_t h, Value j, Value x) {
                        // The lane's two keys j, j + 1 (even j) of row h:
                        // one 8-byte store, so the quad writes the row's 8
                        // keys of the tile as one 32-byte sector (the row
                        // stride a multiple of 8 floats; a key past N
                        // lands in the row's padding).
                        if (!pending) {
                          pending = x;
                          return;
                        }
                        Value pair = vector::FromElementsOp::create(
                            b, VectorType::get({2}, b.getF32Type()),
                            ValueRange{pending, x});
                        pending = Value();
                        Value j0 = sub(j, idx(1));
                        Value at = add(mul(lastRow(bi, head, r[h]), d.ld), j0);
                        ifThen(andI(inRows[h], ult(j0, d.n)), [&] {
                          vector::StoreOp::create(
                              b, pair, d.logits, ValueRange{at},
                              /*nontemporal=*/false, llvm::Align(8));
                        });
                      });
                });
            for (int64_t h = 0; h < 2; ++h) {
              Value m, l;
              std::tie(m, l) = quadMerge(st[h], st[2 + h], /*propagate=*/false);
              ifThen(andI(eq(ql, 0), inRows[h]), [&] {
                Value at = add(mul(lastRow(bi, head, r[h]), d.pieces), piece);
                store(m, d.partMax, at);
                store(l, d.partSum, at);
              });
            }
          });
        });
  }

  /// A launch of a thread per item of `items`.
  void elementwise(Value items, StringRef name,
                   function_ref<void(Value item)> body) {
    buildLaunch(b, ceilDiv(items, kThreads), kThreads, {}, name,
                [&](ImplicitLocOpBuilder &, Value tid, Value bid, ValueRange) {
                  Value item = add(mul(bid, kThreads), tid);
                  ifThen(ult(item, items), [&] { body(item); });
                });
  }

  /// A warp per (b, head, row): the lanes merge the row's pieces lane-
  /// strided, then a butterfly.
  void rowStats() {
    Value rows = mul(mul(d.batch, s.hq), s.M);
    int64_t perCta = kThreads / 32;
    buildLaunch(
        b, ceilDiv(rows, perCta), kThreads, {}, "unisparse_slash_row_stats",
        [&](ImplicitLocOpBuilder &, Value tid, Value bid, ValueRange) {
          Value lane = rem(tid, 32);
          Value row = add(mul(bid, perCta), div(tid, 32));
          ifThen(ult(row, rows), [&] {
            Value base = mul(row, d.pieces);
            SmallVector<Value> st =
                forLoop(lane, d.pieces, idx(32), {negInf(), f32(0.0f)},
                        [&](Value p, ValueRange a) -> SmallVector<Value> {
                          auto [m, l] =
                              merge(a[0], a[1], load(d.partMax, {add(base, p)}),
                                    load(d.partSum, {add(base, p)}),
                                    /*propagate=*/false);
                          return {m, l};
                        });
            Value m = st[0], l = st[1];
            for (int32_t mask : {16, 8, 4, 2, 1})
              std::tie(m, l) =
                  merge(m, l, shuffleXor(m, mask), shuffleXor(l, mask),
                        /*propagate=*/false);
            // 1 / l once a row (0 where l is not positive, NaN included:
            // such a row's shares are 0), so a share is a product.
            Value inv = select(fcmp(arith::CmpFPredicate::OGT, l, f32(0.0f)),
                               fdiv(f32(1.0f), l), f32(0.0f));
            ifThen(eq(lane, 0), [&] {
              store(m, d.rowMax, {row});
              store(inv, d.rowInv, {row});
            });
          });
        });
  }

  //===--- 2. the evidence -------------------------------------------===//

  /// A last row's share of a key: 2^(x - m) / l from the row's max m, 1 /
  /// l (`inv`, 0 where l is not positive: the share is then 0) and the
  /// key's logit x (log2 domain).
  Value share(Value m, Value inv, Value x) {
    return select(fcmp(arith::CmpFPredicate::OGT, inv, f32(0.0f)),
                  fmul(exp2Ftz(fsub(x, m)), inv), f32(0.0f));
  }

  /// pv[r, j] of head group g: the group's shares of the last row r at key
  /// j, summed over its heads, times 1 / (m c_h).
  Value groupShare(Value bi, Value g, Value r, Value j, Value norm) {
    Value sum = forLoop(idx(0), idx(s.ch), idx(1), {f32(0.0f)},
                        [&](Value hh, ValueRange a) -> SmallVector<Value> {
                          Value row = lastRow(bi, add(mul(g, s.ch), hh), r);
                          Value x = load(d.logits, {add(mul(row, d.ld), j)});
                          return {fadd(a[0], share(load(d.rowMax, {row}),
                                                   load(d.rowInv, {row}), x))};
                        })[0];
    return fmul(sum, norm);
  }

  /// groupShare's loads for one (r, j), the heads unrolled: (m, l, x) a
  /// head of the group.
  SmallVector<std::array<Value, 3>> shareLoads(Value bi, Value g, int64_t r,
                                               Value j) {
    SmallVector<std::array<Value, 3>> in;
    for (int64_t hh = 0; hh < s.ch; ++hh) {
      Value row = lastRow(bi, add(mul(g, s.ch), hh), idx(r));
      in.push_back({load(d.rowMax, {row}), load(d.rowInv, {row}),
                    load(d.logits, {add(mul(row, d.ld), j)})});
    }
    return in;
  }

  /// groupShare from shareLoads' values (the same operations, in its order).
  Value shareFrom(ArrayRef<std::array<Value, 3>> in, Value norm) {
    Value sum = f32(0.0f);
    for (const std::array<Value, 3> &h : in)
      sum = fadd(sum, share(h[0], h[1], h[2]));
    return fmul(sum, norm);
  }

  /// 1 / (min(M, N) c_h).
  Value shareNorm() {
    Value m = toF32(minU(idx(s.M), d.n));
    return fdiv(f32(1.0f), fmul(m, f32(static_cast<float>(s.ch))));
  }

  /// A thread per entry x of a [B, Hg, len] array: body(item, x, bg, bi,
  /// g, norm), bg = b Hg + g, norm = shareNorm().
  void perGroupEntry(
      Value len, StringRef name,
      function_ref<void(Value, Value, Value, Value, Value, Value)> body) {
    elementwise(mul(mul(d.batch, s.hg), len), name, [&](Value item) {
      Value x = rem(item, len), bg = div(item, len);
      body(item, x, bg, div(bg, s.hg), rem(bg, s.hg), shareNorm());
    });
  }

  void vertical() {
    perGroupEntry(
        d.n, "unisparse_slash_vertical",
        [&](Value item, Value j, Value, Value bi, Value g, Value norm) {
          Value v =
              forLoop(idx(0), idx(s.M), idx(1), {f32(0.0f)},
                      [&](Value r, ValueRange a) -> SmallVector<Value> {
                        return {fadd(a[0], groupShare(bi, g, r, j, norm))};
                      })[0];
          store(v, d.vertical, {item});
        });
  }

  void slash() {
    perGroupEntry(
        d.evLen, "unisparse_slash_evidence",
        [&](Value item, Value e, Value bg, Value bi, Value g, Value norm) {
          // Pair (r, j = e + r - P), inside the sequence.
          auto pair =
              [&](Value r, ValueRange a,
                  function_ref<Value(Value j)> body) -> SmallVector<Value> {
            Value c = add(e, r);
            Value inside = andI(ule(idx(s.P), c), ult(c, add(d.n, s.P)));
            return {ifElseValue(
                inside, a[0].getType(), [&] { return body(sub(c, idx(s.P))); },
                [&] { return a[0]; })};
          };
          Value s0 =
              forLoop(idx(0), idx(s.M), idx(1), {f32(0.0f)},
                      [&](Value r, ValueRange a) {
                        return pair(r, a, [&](Value j) {
                          return fadd(a[0], groupShare(bi, g, r, j, norm));
                        });
                      })[0];
          Value sl =
              forLoop(idx(0), idx(s.M), idx(1), {f32(0.0f)},
                      [&](Value r, ValueRange a) {
                        return pair(r, a, [&](Value j) {
                          Value v0 = load(d.vertical, {add(mul(bg, d.n), j)});
                          Value p = groupShare(bi, g, r, j, norm);
                          Value toSlash =
                              fcmp(arith::CmpFPredicate::ULT, v0, s0);
                          return fadd(a[0], select(toSlash, p, f32(0.0f)));
                        });
                      })[0];
          // Offsets d = N - 1 - e at most local_blocks * block are forced.
          Value off = sub(sub(d.n, idx(1)), e);
          Value far = icmp(arith::CmpIPredicate::sgt, off, idx(s.minOffset));
          store(select(far, sl, negInf()), d.evidence, {item});
        });
  }

  /// The vertical and the slash evidence in one kernel: a CTA per (b,
  /// group, tile of kEvidenceTile entries e0 ..), whose pairs (r, e + r -
  /// P) lie in the keys e0 - P .. e0 + kEvidenceTile - 1 (the tile and its
  /// P-wide halo, L keys). A thread per key u of the tile (tid, then tid +
  /// kEvidenceTile for the first P threads): its M shares pv[r, u] (each as
  /// groupShare; coalesced reads of the logits) in registers, the rows
  /// unrolled, stored into workgroup memory for the entries, and their
  /// vertical sum v0[u] from the registers; then each thread's entry: s0 and
  /// the slash evidence from the stored shares. The sums' order is the two
  /// kernels' (rows ascending from 0), so the evidence is the same bit for
  /// bit; v0 of the halo keys is recomputed by the neighbouring tile (P /
  /// kEvidenceTile more shares), and never stored.
  void evidence() {
    int64_t L = kEvidenceTile + s.P;
    SmallVector<MemRefType> wg = {workgroupMemRef({s.M, L}, b.getF32Type()),
                                  workgroupMemRef({L}, b.getF32Type())};
    Value tiles = ceilDiv(d.evLen, kEvidenceTile);
    buildLaunch(
        b, mul(mul(d.batch, s.hg), tiles), kEvidenceTile, wg,
        "unisparse_slash_evidence",
        [&](ImplicitLocOpBuilder &, Value tid, Value bid, ValueRange bufs) {
          Value pv = bufs[0], v0 = bufs[1];
          Value e0 = mul(rem(bid, tiles), kEvidenceTile), bg = div(bid, tiles);
          Value g = rem(bg, s.hg), bi = div(bg, s.hg);
          Value norm = shareNorm();
          // Key u of the tile is j = e0 + u - P: inside when P <= e0 + u <
          // N + P. A key outside holds the share +0 in every row (and v0 =
          // +0, the sum of those), as before.
          auto inside = [&](Value u) {
            Value c = add(e0, u);
            return andI(ule(idx(s.P), c), ult(c, d.evLen));
          };
          forLoop(tid, idx(L), idx(kEvidenceTile), {},
                  [&](Value u, ValueRange) -> SmallVector<Value> {
                    ifThenElse(
                        inside(u),
                        [&] {
                          Value j = sub(add(e0, u), idx(s.P));
                          // kShareBatch rows' loads issued before their shares
                          // are computed (from when a share was a division,
                          // whose slow path was a branch that the loads would
                          // not cross).
                          Value v = f32(0.0f);
                          for (int64_t r0 = 0; r0 < s.M; r0 += kShareBatch) {
                            SmallVector<SmallVector<std::array<Value, 3>>> in;
                            for (int64_t r = r0;
                                 r < std::min(s.M, r0 + kShareBatch); ++r)
                              in.push_back(shareLoads(bi, g, r, j));
                            for (int64_t r = r0;
                                 r < std::min(s.M, r0 + kShareBatch); ++r) {
                              Value p = shareFrom(in[r - r0], norm);
                              store(p, pv, {idx(r), u});
                              v = fadd(v, p);
                            }
                          }
                          store(v, v0, {u});
                        },
                        [&] {
                          for (int64_t r = 0; r < s.M; ++r)
                            store(f32(0.0f), pv, {idx(r), u});
                          store(f32(0.0f), v0, {u});
                        });
                    return {};
                  });
          gpu::BarrierOp::create(b);
          Value e = add(e0, tid);
          ifThen(ult(e, d.evLen), [&] {
            // Pair (r, j = e + r - P) is key u = tid + r of the tile (u <
            // L). A key outside the sequence holds the share +0 (and v0 =
            // +0), so its pair adds +0 to sums that are never -0 (from +0,
            // terms >= +0 or NaN): the sums are those of the pairs inside,
            // bit for bit, with no branch per row.
            auto pair = [&](Value r, ValueRange,
                            function_ref<Value(Value u)> body) {
              return SmallVector<Value>{body(add(tid, r))};
            };
            Value s0 = forLoop(idx(0), idx(s.M), idx(1), {f32(0.0f)},
                               [&](Value r, ValueRange a) {
                                 return pair(r, a, [&](Value u) {
                                   return fadd(a[0], load(pv, {r, u}));
                                 });
                               })[0];
            Value sl = forLoop(
                idx(0), idx(s.M), idx(1), {f32(0.0f)},
                [&](Value r, ValueRange a) {
                  return pair(r, a, [&](Value u) {
                    Value toSlash =
                        fcmp(arith::CmpFPredicate::ULT, load(v0, {u}), s0);
                    return fadd(a[0],
                                select(toSlash, load(pv, {r, u}), f32(0.0f)));
                  });
                })[0];
            Value off = sub(sub(d.n, idx(1)), e);
            Value far = icmp(arith::CmpIPredicate::sgt, off, idx(s.minOffset));
            store(select(far, sl, negInf()), d.evidence,
                  {add(mul(bg, d.evLen), e)});
          });
        });
  }

  //===--- 3. the offsets --------------------------------------------===//

  /// Whether (v, e) beats (bv, be): larger, or equal at a larger e.
  Value wins(Value v, Value e, Value bv, Value be) {
    return orI(fcmp(arith::CmpFPredicate::OGT, v, bv),
               andI(feq(v, bv), icmp(arith::CmpIPredicate::sgt, e, be)));
  }

  /// The warp's best (value, index) pair (every lane gets it).
  std::pair<Value, Value> warpArgMax(Value v, Value e) {
    for (int32_t mask : {16, 8, 4, 2, 1}) {
      Value ov = shuffleXor(v, mask), oe = shuffleXor(e, mask);
      Value w = wins(ov, oe, v, e);
      v = select(w, ov, v);
      e = select(w, oe, e);
    }
    return {v, e};
  }

  /// The best (value, i32 index) of entries e = first + stride m, m in
  /// [m0, count) step `mStep`, folded into `init`; `kScanUnroll` loads are
  /// issued before they are compared (the loads are independent; the
  /// comparisons are not), entries past `count` and `skip` never win.
  SmallVector<Value> scanBest(Value base, Value first, int64_t stride, Value m0,
                              Value count, int64_t mStep, Value skip,
                              ValueRange init) {
    Value span = idx(mStep * kScanUnroll);
    return forLoop(m0, count, span, init,
                   [&](Value m, ValueRange a) -> SmallVector<Value> {
                     SmallVector<Value> vs, es;
                     for (int64_t u = 0; u < kScanUnroll; ++u) {
                       Value mu = add(m, u * mStep);
                       Value in = ult(mu, count);
                       Value e = add(first, mul(mu, stride));
                       Value v =
                           load(d.evidence, {add(base, select(in, e, idx(0)))});
                       Value eI = toI32(e);
                       // A NaN never wins: the entries out of range, and
                       // `skip`.
                       Value ok =
                           andI(in, arith::CmpIOp::create(
                                        b, arith::CmpIPredicate::ne, eI, skip));
                       vs.push_back(select(ok, v, f32(std::nanf(""))));
                       es.push_back(eI);
                     }
                     Value bv = a[0], be = a[1];
                     for (int64_t u = 0; u < kScanUnroll; ++u) {
                       Value w = wins(vs[u], es[u], bv, be);
                       bv = select(w, vs[u], bv);
                       be = select(w, es[u], be);
                     }
                     return {bv, be};
                   });
  }

  void topOffsets() {
    int64_t warps = kOffsetThreads / 32;
    Type i32Type = b.getI32Type();
    SmallVector<MemRefType> wg = {workgroupMemRef({warps}, b.getF32Type()),
                                  workgroupMemRef({warps}, i32Type),
                                  workgroupMemRef({1}, i32Type)};
    buildLaunch(
        b, mul(d.batch, s.hg), kOffsetThreads, wg, "unisparse_slash_offsets",
        [&](ImplicitLocOpBuilder &, Value tid, Value bid, ValueRange bufs) {
          Value base = mul(bid, d.evLen);
          Value lane = rem(tid, 32), warp = div(tid, 32);
          // Thread t owns the entries e = t + threads m, m < owned(t).
          auto owned = [&](Value t) {
            return ceilDiv(sub(maxU(d.evLen, t), t), kOffsetThreads);
          };
          SmallVector<Value> init = {negInf(), i32(-1)};
          SmallVector<Value> first = scanBest(base, tid, kOffsetThreads, idx(0),
                                              owned(tid), 1, i32(-1), init);
          forLoop(
              idx(0), idx(s.nOffsets), idx(1), first,
              [&](Value kk, ValueRange st) -> SmallVector<Value> {
                Value bv, be;
                std::tie(bv, be) = warpArgMax(st[0], st[1]);
                ifThen(eq(lane, 0), [&] {
                  store(bv, bufs[0], {warp});
                  store(be, bufs[1], {warp});
                });
                gpu::BarrierOp::create(b);
                // Warp 0 reduces the warps' bests (one per lane).
                ifThen(eq(warp, 0), [&] {
                  Value wv, we;
                  std::tie(wv, we) =
                      warpArgMax(load(bufs[0], {lane}), load(bufs[1], {lane}));
                  ifThen(eq(lane, 0), [&] {
                    // The offset N - 1 - e, or -1 without positive evidence.
                    Value last = arith::SubIOp::create(b, toI64(d.n), i64c(1));
                    Value picked = select(
                        fcmp(arith::CmpFPredicate::OGT, wv, f32(0.0f)),
                        arith::SubIOp::create(
                            b, last,
                            arith::ExtSIOp::create(b, b.getI64Type(), we)),
                        i64c(-1));
                    store(picked, d.offsets, {add(mul(bid, s.nOffsets), kk)});
                    store(we, bufs[2], {idx(0)});
                  });
                });
                gpu::BarrierOp::create(b);
                // The winner is marked taken (-inf, read by later rounds'
                // rescans, after their barriers), and its owner's warp
                // rescans the owner's entries, a lane each m = lane + 32 u,
                // the winner left out: the owner's new best.
                Value we = load(bufs[2], {idx(0)});
                Value valid = icmp(arith::CmpIPredicate::sge, we, i32(0));
                Value owner = arith::IndexCastUIOp::create(
                    b, b.getIndexType(),
                    arith::RemUIOp::create(b, select(valid, we, i32(0)),
                                           i32(kOffsetThreads)));
                Value mine = andI(valid, eq(tid, owner));
                ifThen(mine, [&] {
                  Value at = add(base, arith::IndexCastUIOp::create(
                                           b, b.getIndexType(), we));
                  store(negInf(), d.evidence, {at});
                });
                Value ownerWarp = andI(valid, eq(warp, div(owner, 32)));
                return ifElse(
                    ownerWarp, TypeRange{bv.getType(), i32Type},
                    [&] {
                      SmallVector<Value> part =
                          scanBest(base, owner, kOffsetThreads, lane,
                                   owned(owner), 32, we, init);
                      Value nv, ne;
                      std::tie(nv, ne) = warpArgMax(part[0], part[1]);
                      // The marked winner itself (-inf) stays a candidate, as
                      // it was on the rescan this replaces.
                      Value wv = negInf();
                      Value takeW = wins(wv, we, nv, ne);
                      nv = select(takeW, wv, nv);
                      ne = select(takeW, we, ne);
                      return SmallVector<Value>{select(mine, nv, st[0]),
                                                select(mine, ne, st[1])};
                    },
                    [&] { return SmallVector<Value>(st); });
              });
          // The slot rules into the evidence row, once every rescan is
          // done (the offsets were written before the last round's
          // barrier).
          gpu::BarrierOp::create(b);
          ifThen(slotTable(), [&] {
            forLoop(tid, idx(s.candidates()), idx(kOffsetThreads), {},
                    [&](Value c, ValueRange) -> SmallVector<Value> {
                      store(select(slotRule(bid, c), f32(1.0f), f32(0.0f)),
                            d.evidence, {add(base, c)});
                      return {};
                    });
          });
        });
  }

  //===--- 4. the probe rows and the combination ---------------------===//

  /// Probe row t of query block I: I block + (2t + 1) block / (2 rows),
  /// computed as (2t + 1) a + (2t + 1) rem / (2 rows), block = 2 rows a +
  /// rem (the CPU lowering's formula).
  /// probeRow(0, t) for a static t.
  int64_t probeOffset(int64_t t) const {
    int64_t a = s.block / (2 * s.rows), r = s.block % (2 * s.rows);
    return (2 * t + 1) * a + (2 * t + 1) * r / (2 * s.rows);
  }

  Value probeRow(Value I, Value t) {
    int64_t a = s.block / (2 * s.rows), r = s.block % (2 * s.rows);
    Value odd = add(mul(t, 2), 1);
    return add(mul(I, s.block), add(mul(odd, a), div(mul(odd, r), 2 * s.rows)));
  }

  /// Bytes of the probe kernel's dynamic workgroup memory with `warps`
  /// warps a CTA: each warp's E accumulator, NB floats.
  Value probeDynamicBytes(int64_t warps) {
    return arith::IndexCastUIOp::create(
        b, b.getI32Type(), add(mul(d.nb, 4 * warps), forcedStageBytes(warps)));
  }

  /// Whether the probe kernel of `warps` warps a CTA stages its forced keys
  /// in workgroup memory, shared by the CTA's warps: they are consecutive
  /// head groups of one query block (hg a multiple of warps), and every
  /// head of them is of one kv head (4 c_h divides G: the same keys, the
  /// same forced ranges, the same steps); D a multiple of 64 (a step's 32
  /// rows are whole 16-byte chunks for the CTA's 128 threads). Where q's
  /// and k's rows are not 16-byte aligned (the host's test) the kernel
  /// takes the register path all the same.
  bool stagedForced(int64_t warps) const {
    return warps == kProbeWarps && s.hg % warps == 0 &&
           s.G % (warps * s.ch) == 0 && s.headDim % 64 == 0;
  }
  /// A forced stage's row (D + 8 elements: the ldmatrix rows and the
  /// 16-byte copies bank-conflict free) and all stages' bytes.
  int64_t forcedRowElems() const { return s.headDim + 8; }
  int64_t forcedStagesElems() const {
    return kForcedStages * 16 * kStagedTiles * forcedRowElems();
  }
  int64_t forcedStageBytes(int64_t warps) const {
    if (!stagedForced(warps))
      return 0;
    return forcedStagesElems() * (s.element.getIntOrFloatBitWidth() / 8);
  }

  /// The probe kernel with kProbeWarps warps a CTA where their E rows (and
  /// the forced keys' stages, stagedForced) fit a CTA's workgroup memory
  /// (NB up to 14,528: 1.86M tokens at block 128; 12,896 with the stages of
  /// D 128: 1.65M), else with one warp a CTA (NB up to 58,112), chosen on
  /// the host.
  void probeRows() {
    Value fits =
        ule(add(mul(d.nb, 4 * kProbeWarps), forcedStageBytes(kProbeWarps)),
            idx(kMaxWorkgroupBytes));
    ifThenElse(
        fits, [&] { probeLaunch(kProbeWarps, "unisparse_slash_probe"); },
        [&] { probeLaunch(1, "unisparse_slash_probe_narrow"); });
  }

  /// The m16 tiles of a unit's candidate entries (kUnit offsets of 8 (2w +
  /// 1) entries each): 2w + 1.
  int64_t unitTiles() const {
    return llvm::divideCeil(kUnit * 8 * (2 * s.width + 1), 16);
  }

  /// The probe kernel of `warps` warps a CTA held to 16 warps an SM
  /// (nvvm.minctasm: ptxas then keeps it within 128 registers a thread)
  /// where its units' entries are hoisted (width <= 1, the default's: 128
  /// registers and 8 bytes of spill by ptxas 13.0 at D 128, 134 registers
  /// without the hint, i.e. 12 warps an SM). Wider units need more
  /// registers than that (width 8: 648 bytes of spill under the hint), and
  /// so does D above 128 (a forced step's A fragments alone are 8 D / 16
  /// registers), so they get no hint, nor does the narrow kernel.
  DictionaryAttr probeKernelAttributes(int64_t warps) {
    if (warps == 1 || unitTiles() > kHoistTiles || s.headDim > 128)
      return DictionaryAttr();
    return b.getDictionaryAttr(minCtasPerSmAttr(b, 16 / warps));
  }

  /// A warp per (batch, query block I, head group), the head group
  /// innermost: a CTA's `warps` warps are consecutive head groups of the
  /// same block, so where c_h < G they are query heads of one kv head with
  /// the same forced keys (K's fragments from L1 after the first warp's
  /// loads, as in the last rows). E of each warp's (block, group) in dynamic
  /// workgroup memory (NB floats), zeroed; per head of the group and tile of
  /// 8 probe rows (probeTile), the forced keys' log-sum-exp and the
  /// candidates into E; then the combination.
  void probeLaunch(int64_t warps, StringRef name) {
    Value items = mul(mul(d.batch, d.nb), s.hg);
    buildLaunch(
        b, ceilDiv(items, warps), 32 * warps, {}, name,
        [&](ImplicitLocOpBuilder &, Value tid, Value bid, ValueRange) {
          Value warp = div(tid, 32), lane = rem(tid, 32);
          Value item = add(mul(bid, warps), warp);
          ProbeBlock p;
          p.g = rem(item, s.hg);
          p.I = rem(div(item, s.hg), d.nb);
          p.bi = div(div(item, s.hg), d.nb);
          p.lane = lane;
          p.quad = div(lane, 4);
          p.ql = rem(lane, 4);
          p.group = add(mul(p.bi, s.hg), p.g);
          p.table = slotTable();
          Value exists = ult(item, items);
          // The warp's E in workgroup memory (NB floats): the candidates
          // add into it, the combination reads it; the result row is
          // written once.
          Value raw = gpu::DynamicSharedMemoryOp::create(
              b, MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                 MemRefLayoutAttrInterface(),
                                 workgroupSpace(b.getContext())));
          auto eType = MemRefType::get({ShapedType::kDynamic}, b.getF32Type(),
                                       MemRefLayoutAttrInterface(),
                                       workgroupSpace(b.getContext()));
          p.eRow = memref::ViewOp::create(
              b, eType, raw, mul(mul(d.nb, 4), warp), ValueRange{d.nb});
          p.tid = tid;
          if (stagedForced(warps)) {
            // The forced keys' stages after the E rows (16-byte aligned).
            auto stageType = MemRefType::get({forcedStagesElems()}, s.element,
                                             MemRefLayoutAttrInterface(),
                                             workgroupSpace(b.getContext()));
            p.stage = memref::ViewOp::create(
                b, stageType, raw, mul(d.nb, 4 * warps), ValueRange{});
          }
          // The probe rows inside the sequence, and each one's weight.
          Value nValid =
              forLoop(idx(0), idx(s.rows), idx(1), {idx(0)},
                      [&](Value t, ValueRange a) -> SmallVector<Value> {
                        return {add(a[0], select(ult(probeRow(p.I, t), d.n),
                                                 idx(1), idx(0)))};
                      })[0];
          p.weight = fdiv(f32(1.0f), fmul(toF32(maxU(nValid, idx(1))),
                                          f32(static_cast<float>(s.ch))));
          // Forced keys: [0, sinkEnd) and [lo, hiEnd) (up to the row).
          p.lo = select(ule(idx(s.local), p.I),
                        mul(sub(p.I, idx(s.local)), s.block), idx(0));
          p.sinkEnd = idx(0);
          if (s.sink)
            p.sinkEnd = select(ult(idx(0), p.lo), idx(s.block), idx(0));
          p.hiEnd = minU(mul(add(p.I, 1), s.block), d.n);

          forLoop(lane, d.nb, idx(32), {},
                  [&](Value J, ValueRange) -> SmallVector<Value> {
                    store(f32(0.0f), p.eRow, {J});
                    return {};
                  });
          gpu::BarrierOp::create(b);
          ifThen(exists, [&] {
            forLoop(idx(0), idx(s.ch), idx(1), {},
                    [&](Value hh, ValueRange) -> SmallVector<Value> {
                      Value head = add(mul(p.g, s.ch), hh);
                      forLoop(idx(0), idx(llvm::divideCeil(s.rows, 8)), idx(1),
                              {},
                              [&](Value rt, ValueRange) -> SmallVector<Value> {
                                probeTile(p, head, rt);
                                return {};
                              });
                      return {};
                    });
          });
          gpu::BarrierOp::create(b);
          ifThen(exists, [&] { combine(p.bi, p.g, p.I, lane, p.eRow); });
        },
        probeDynamicBytes(warps), probeKernelAttributes(warps));
  }

  /// Candidate slot c = (offset c / (2w + 1), e = c mod (2w + 1)), key j =
  /// i - d + e - w of probe row i. Whether the slot's keys are taken apart
  /// from the row (i1): the offset exists, and the width rule: j is not
  /// within `width` of an earlier offset's key i - d2, |d2 - d + e - w| <=
  /// w, the same for every row. `group` = b Hg + g.
  Value slotRule(Value group, Value c) {
    int64_t per = 2 * s.width + 1;
    Value w64 = i64c(s.width);
    Value offBase = mul(group, s.nOffsets);
    Value kk = div(c, per);
    Value e = toI64(rem(c, per));
    Value off = load(d.offsets, {add(offBase, kk)});
    Value has = icmp(arith::CmpIPredicate::sge, off, i64c(0));
    Value dup = forLoop(
        idx(0), kk, idx(1), {arith::ConstantIntOp::create(b, 0, 1)},
        [&](Value k2, ValueRange a) -> SmallVector<Value> {
          Value d2 = load(d.offsets, {add(offBase, k2)});
          Value gap = math::AbsIOp::create(
              b, arith::SubIOp::create(
                     b,
                     arith::AddIOp::create(b, arith::SubIOp::create(b, d2, off),
                                           e),
                     w64));
          Value near = andI(icmp(arith::CmpIPredicate::sge, d2, i64c(0)),
                            icmp(arith::CmpIPredicate::sle, gap, w64));
          return {orI(a[0], near)};
        })[0];
    return andI(has, notI(dup));
  }

  /// Whether the slot rules fit in the group's evidence row, dead once the
  /// offsets are picked (candidates <= N + P): topOffsets then writes them
  /// there (1 or 0) and the probe rows read them; else the probe rows
  /// apply slotRule themselves.
  Value slotTable() { return ule(idx(s.candidates()), d.evLen); }

  /// What one warp's probe rows share: query block I. In its tiles of 8
  /// probe rows the rows are the mma's n8 (B: lane l = 4 quad + ql gives
  /// row quad's q; C: the lane holds rows 2 ql and 2 ql + 1) and 16 keys
  /// its m16 (A: the lane loads keys quad and quad + 8).
  struct ProbeBlock {
    Value bi, g, lane, quad, ql;
    Value group; // b Hg + g
    Value table; // i1: slotTable()
    Value I, lo, sinkEnd, hiEnd, weight;
    Value eRow;  // [NB] f32: E of block I
    Value tid;   // the thread in the CTA
    Value stage; // stagedForced: the CTA's forced-key stages, else null
  };

  /// The forced keys' range `range` of block p.I: [0, sinkEnd) (the sink
  /// block), then [lo, hiEnd) (the local blocks up to the row's own).
  std::pair<Value, Value> forcedRange(const ProbeBlock &p, int64_t range) {
    return range ? std::make_pair(p.lo, p.hiEnd)
                 : std::make_pair(idx(0), p.sinkEnd);
  }

  /// Probe row rt * 8 + n of block I: (inside: a row of the block and of
  /// the sequence, its query index or 0).
  std::pair<Value, Value> probeQuery(Value I, Value rt, Value n) {
    Value t = add(mul(rt, 8), n);
    Value i = probeRow(I, t);
    Value valid = andI(andI(ult(n, 8), ult(t, s.rows)), ult(i, d.n));
    return {valid, select(valid, i, idx(0))};
  }

  /// The forced keys' (max, sum) of the lane's two rows (probeTile), their
  /// keys staged in the CTA's workgroup memory (stagedForced: the CTA's
  /// warps have the same keys and steps): per range, steps of 16
  /// kStagedTiles keys (that many m16 tiles, one online step), each
  /// step's rows copied by the CTA's threads (cp.async, 16 bytes each; rows
  /// past the range zero-filled) kForcedStages - 1 steps ahead into a ring
  /// of kForcedStages stages, a step's A fragments by ldmatrix.x4 (the
  /// mma's own layout, so the B fragments, the rows' q, are taken in it
  /// too rather than in the global loads' permuted one); per step one wait
  /// for the thread's copies of the step and one barrier (every thread's
  /// copies visible; every warp done with the stage the next copy
  /// overwrites), and a barrier after each range (the next range's first
  /// copies overwrite stages its last steps read). The same masks and
  /// online steps as the register path; the logits are the same D products
  /// summed on the tensor cores in another grouping of the head dimension
  /// into k steps (natural rather than permuted), so they may differ from
  /// it in the last bits (f32 sums of D terms either way: the checks'
  /// logit bound does not depend on their order).
  SmallVector<Value>
  stagedForcedKeys(const ProbeBlock &p, Value head, Value kv, Value bQuery,
                   Value bValid, ArrayRef<Value> fresh,
                   function_ref<void(Value, Value *)> rowLimits,
                   function_ref<SmallVector<Value>(Value, ArrayRef<Value>,
                                                   Value *, ArrayRef<Value>)>
                       forcedTile) {
    // B in the mma's layout: k step ks holds dimensions 16 ks + 2 ql (+ 8).
    SmallVector<Value> bNat;
    for (int64_t ks = 0; ks < s.kSteps; ++ks)
      for (int64_t half = 0; half < 2; ++half)
        bNat.push_back(pairAt(d.q, p.bi, head, bQuery, bValid,
                              add(mul(p.ql, 2), 16 * ks + 8 * half),
                              /*zero=*/false));
    int64_t rowElems = forcedRowElems();
    int64_t stepKeys = 16 * kStagedTiles;
    int64_t stageElems = stepKeys * rowElems;
    int64_t chunksPerRow = s.headDim / 8;
    int64_t threads = 32 * kProbeWarps;
    int64_t perThread = stepKeys * chunksPerRow / threads;
    auto tokenType = nvgpu::DeviceAsyncTokenType::get(b.getContext());
    auto fragsType = VectorType::get({4, 2}, s.element);
    // ldmatrix.x4 of a 16 x 16 tile: lane l addresses row l % 16, columns
    // 8 (l / 16): matrices 0..3 are A registers 0..3.
    Value ldLane = add(mul(rem(p.lane, 16), rowElems), mul(div(p.lane, 16), 8));
    SmallVector<Value> st(fresh.begin(), fresh.end());
    for (int64_t range = 0; range < 2; ++range) {
      Value begin, stop;
      std::tie(begin, stop) = forcedRange(p, range);
      Value lim[2];
      rowLimits(stop, lim);
      Value begin32 = toI32(begin);
      Value steps = ceilDiv(sub(stop, begin), stepKeys);
      auto copyStep = [&](Value step) {
        Value first = add(begin, mul(step, stepKeys));
        Value stageBase = mul(rem(step, kForcedStages), stageElems);
        for (int64_t i = 0; i < perThread; ++i) {
          Value chunk = add(p.tid, i * threads);
          Value row = div(chunk, chunksPerRow);
          Value col = mul(rem(chunk, chunksPerRow), 8);
          Value key = add(first, row);
          Value in = ult(key, stop);
          nvgpu::DeviceAsyncCopyOp::create(
              b, tokenType, p.stage,
              ValueRange{add(stageBase, add(mul(row, rowElems), col))}, d.k,
              ValueRange{p.bi, kv, select(in, key, idx(0)), col},
              b.getIndexAttr(8), select(in, idx(8), idx(0)), b.getUnitAttr());
        }
      };
      Value group;
      for (int64_t i = 0; i + 1 < kForcedStages; ++i) {
        ifThen(ult(idx(i), steps), [&] { copyStep(idx(i)); });
        group =
            nvgpu::DeviceAsyncCreateGroupOp::create(b, tokenType, ValueRange{});
      }
      st = forLoop(
          idx(0), steps, idx(1), st,
          [&](Value step, ValueRange state) -> SmallVector<Value> {
            nvgpu::DeviceAsyncWaitOp::create(
                b, group, b.getI32IntegerAttr(kForcedStages - 2));
            gpu::BarrierOp::create(b);
            Value ahead = add(step, kForcedStages - 1);
            ifThen(ult(ahead, steps), [&] { copyStep(ahead); });
            nvgpu::DeviceAsyncCreateGroupOp::create(b, tokenType, ValueRange{});
            Value base = add(mul(rem(step, kForcedStages), stageElems), ldLane);
            SmallVector<Value> acc;
            for (int64_t u = 0; u < kStagedTiles; ++u) {
              SmallVector<Value> frags;
              for (int64_t ks = 0; ks < s.kSteps; ++ks) {
                Value tile = nvgpu::LdMatrixOp::create(
                    b, fragsType, p.stage,
                    ValueRange{add(base, 16 * u * rowElems + 16 * ks)},
                    b.getBoolAttr(false), b.getI32IntegerAttr(4));
                for (int64_t reg = 0; reg < 4; ++reg)
                  frags.push_back(
                      mmaOperand(vector::ExtractOp::create(b, tile, reg)));
              }
              llvm::append_range(acc, mmaKeys(frags, bNat));
            }
            Value j0 =
                arith::AddIOp::create(b, begin32, toI32(mul(step, stepKeys)));
            return forcedTile(j0, acc, lim, SmallVector<Value>(state));
          });
      gpu::BarrierOp::create(b);
    }
    return st;
  }

  /// Probe rows rt * 8 .. rt * 8 + 7 of the warp's block and head `head`:
  /// the forced keys' log-sum-exp on tensor cores (A: 16 keys, B: the 8
  /// rows' q), then the candidates into E. Logits are taken in the log2
  /// domain, x = S fl(scale log2(e)), their exponentials by ex2.approx.ftz
  /// (one MUFU op, where expf takes a range reduction of ~8 instructions)
  /// and the lse by an accurate log2: the terms 2^(x - lse2) are the
  /// natural exp(x - lse).
  void probeTile(const ProbeBlock &p, Value head, Value rt) {
    Value kv = div(head, s.G);
    Value scaleLog2 = f32(s.scaleLog2);
    Value bValid, bQuery;
    std::tie(bValid, bQuery) = probeQuery(p.I, rt, p.quad);
    SmallVector<Value> bRegs =
        keyFragments(p.bi, head, bQuery, bValid, p.ql, d.q);
    // The lane's rows of C: n = 2 ql + c.
    Value valid[2], query[2];
    for (int64_t c = 0; c < 2; ++c)
      std::tie(valid[c], query[c]) = probeQuery(p.I, rt, add(mul(p.ql, 2), c));
    // The A fragments of the 16 keys at key[h] (rows quad, quad + 8 of the
    // tile; row 0 where not ok[h], not zeroed: every such value is masked).
    auto keyTile = [&](Value key[2], Value ok[2]) {
      return queryFragments(p.bi, kv, key, ok, p.ql, d.k, /*zero=*/false);
    };

    // Forced keys, kForcedTiles m16 tiles a step (their A fragments loaded
    // a step ahead, below), online (max, sum) per row with the
    // NaN-propagating max of the loop lowering's log-sum-exp; a tile no
    // key of which a row sees leaves its (max, sum) as they were. Row c
    // sees key j >= begin of the range iff j <= lim[c] = min(stop - 1,
    // its query) (-1 for a row outside the block or the sequence): one
    // 32-bit compare a value (keys, up to stop + 63 with the steps loaded
    // ahead, and rows are below N < 2^31 - 64, as the key blocks' 32-bit J
    // below assumes too).
    SmallVector<Value> fresh = {negInf(), negInf(), f32(0.0f), f32(0.0f)};
    // The lane's rows' last key of range [begin, stop) (32 bits): lim[c] =
    // min(stop - 1, its query), -1 for a row outside.
    auto rowLimits = [&](Value stop, Value lim[2]) {
      for (int64_t c = 0; c < 2; ++c)
        lim[c] =
            select(valid[c], toI32(minU(sub(stop, idx(1)), query[c])), i32(-1));
    };
    // The logits of acc.size() / 4 consecutive m16 tiles of keys from j0
    // (32 bits; the lane's keys of tile u j0 + 16 u + quad + 8 h) masked by
    // lim, into the running (max, sum) of the lane's two rows (one online
    // step for all of them).
    auto forcedTile = [&](Value j0, ArrayRef<Value> acc, Value lim[2],
                          ArrayRef<Value> state) {
      Value j0q = arith::AddIOp::create(b, j0, toI32(p.quad));
      SmallVector<Value> xs[2];
      for (size_t u = 0; u < acc.size() / 4; ++u)
        for (int64_t h = 0; h < 2; ++h) {
          Value key32 = arith::AddIOp::create(b, j0q, i32(16 * u + 8 * h));
          for (int64_t c = 0; c < 2; ++c) {
            Value see = icmp(arith::CmpIPredicate::sle, key32, lim[c]);
            xs[c].push_back(
                select(see, fmul(acc[4 * u + 2 * h + c], scaleLog2), negInf()));
          }
        }
      SmallVector<Value> next(state.begin(), state.end());
      for (int64_t c = 0; c < 2; ++c)
        std::tie(next[c], next[2 + c]) =
            online(state[c], state[2 + c], xs[c], /*propagate=*/true);
      return next;
    };
    // The forced keys with their A fragments from global memory (each
    // warp its own loads).
    auto registerForced = [&]() -> SmallVector<Value> {
      SmallVector<Value> st = fresh;
      for (int64_t range = 0; range < 2; ++range) {
        Value begin, stop;
        std::tie(begin, stop) = forcedRange(p, range);
        Value lim[2];
        rowLimits(stop, lim);
        Value begin32 = toI32(begin), stop32 = toI32(stop);
        // The first key of tile u of a step (32 bits).
        auto tileStart = [&](Value step, int64_t u) {
          return arith::AddIOp::create(
              b, begin32, toI32(add(mul(step, 16 * kForcedTiles), 16 * u)));
        };
        // A step's A fragments, its tiles' in order: a key past the range's
        // end loads row 0 (valid memory; never used).
        auto stepFragments = [&](Value step) {
          SmallVector<Value> regs;
          for (int64_t u = 0; u < kForcedTiles; ++u) {
            Value j0q =
                arith::AddIOp::create(b, tileStart(step, u), toI32(p.quad));
            Value ok[2], key[2];
            for (int64_t h = 0; h < 2; ++h) {
              Value key32 = arith::AddIOp::create(b, j0q, i32(8 * h));
              ok[h] = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, key32,
                                            stop32);
              key[h] = arith::IndexCastUIOp::create(b, b.getIndexType(), key32);
            }
            llvm::append_range(regs, keyTile(key, ok));
          }
          return regs;
        };
        // One step's mma and exponentials on its fragments `frags`, into the
        // running (max, sum) of the lane's two rows `state`.
        auto runStep = [&](Value step, ArrayRef<Value> frags,
                           ArrayRef<Value> state) {
          int64_t perTile = frags.size() / kForcedTiles;
          SmallVector<Value> next(state.begin(), state.end());
          for (int64_t u = 0; u < kForcedTiles; ++u)
            next = forcedTile(tileStart(step, u),
                              mmaKeys(frags.slice(u * perTile, perTile), bRegs),
                              lim, next);
          return next;
        };
        // Steps in pairs, each step's fragments loaded a step ahead of their
        // use, so that their global loads' latency overlaps a step of work
        // instead of stalling the step that uses them: the pair's first
        // step's fragments come with the loop (loaded in the previous pair),
        // its second step's are loaded before the first step's work, and the
        // next pair's first step's before the second step's. Two buffers that
        // alternate need no register copies at the back edge (a loop that
        // carried one step's fragments had ptxas copy the new loads into the
        // carried registers right after issuing them: the copies stalled on
        // the loads). A step past the range's end has no key any row sees:
        // it leaves (max, sum) as they were.
        int64_t nState = st.size();
        SmallVector<Value> carriedInit = st;
        llvm::append_range(carriedInit, stepFragments(idx(0)));
        SmallVector<Value> carried = forLoop(
            idx(0), ceilDiv(sub(stop, begin), 2 * 16 * kForcedTiles), idx(1),
            carriedInit, [&](Value pair, ValueRange a) -> SmallVector<Value> {
              Value first = mul(pair, 2), second = add(mul(pair, 2), 1);
              SmallVector<Value> fragsB = stepFragments(second);
              SmallVector<Value> fragsA(a.drop_front(nState));
              SmallVector<Value> state0(a.take_front(nState));
              SmallVector<Value> state = runStep(first, fragsA, state0);
              SmallVector<Value> fragsNext = stepFragments(add(first, 2));
              SmallVector<Value> next = runStep(second, fragsB, state);
              llvm::append_range(next, fragsNext);
              return next;
            });
        st.assign(carried.begin(), carried.begin() + nState);
      }
      return st;
    };
    SmallVector<Value> st =
        p.stage
            ? ifElse(
                  d.aligned, TypeRange(SmallVector<Type>(4, b.getF32Type())),
                  [&] {
                    return stagedForcedKeys(p, head, kv, bQuery, bValid, fresh,
                                            rowLimits, forcedTile);
                  },
                  registerForced)
            : registerForced();
    // The lse of rows 2 ql and 2 ql + 1: the 8 lanes of a ql merged.
    Value lse[2];
    for (int64_t c = 0; c < 2; ++c) {
      Value m = st[c], l = st[2 + c];
      for (int32_t mask : {4, 8, 16})
        std::tie(m, l) = merge(m, l, shuffleXor(m, mask), shuffleXor(l, mask),
                               /*propagate=*/true);
      lse[c] = fadd(m, math::Log2Op::create(b, l));
    }

    // The candidates, kUnit offsets at a time (a unit): their 8 (2w + 1)
    // (row, e) entries each, entry kk 8 (2w + 1) + n (2w + 1) + e of the
    // unit's offset kk, as the keys of m16 tiles (A: entry 16 s + m is key
    // m of tile s; a row's 2w + 1 keys adjacent; the unit's entries fill
    // 2w + 1 tiles: 3 at w 1),
    // B the rows' q as above: the wanted logit of key m is C[m][n], in the
    // lane 4 (m mod 8) + n / 2 (16 of a tile's 128 products). The slot's
    // rule (the offset exists; the width rule, the same for every row) from
    // the evidence row or, where it did not fit, computed, only for entries
    // inside their row's range. The rows' keys of one offset lie in nBins
    // consecutive key blocks from its jBase: the lanes' terms exp(x - lse)
    // / (probe rows c_h) summed per (offset, block), over the warp by a
    // butterfly, and added into E by lane 0, offsets in order.
    int64_t per = 2 * s.width + 1;
    int64_t perOffset = 8 * per;
    int64_t entries = kUnit * perOffset;
    int64_t tiles = unitTiles();
    int64_t span = 0; // the widest tile's first to last row
    for (int64_t t0 = 0; t0 < s.rows; t0 += 8)
      span = std::max(span, probeOffset(std::min(t0 + 7, s.rows - 1)) -
                                probeOffset(t0));
    int64_t keysSpan = span + 2 * s.width + 1;
    int64_t nBins = keysSpan >= 2 ? (keysSpan - 2) / s.block + 2 : 1;
    Value w64 = i64c(s.width);
    Value first64 = toI64(probeRow(p.I, mul(rt, 8)));
    Value sinkEnd64 = toI64(p.sinkEnd), lo64 = toI64(p.lo);
    // What the lane's entry 16 t + quad + 8 h (t < tiles, h < 2: static)
    // is in every unit, computed once per tile of rows rather than per unit
    // (the units differ only in their offsets): of the unit's second offset
    // or its first; its key j = i + e - w - d of row n (query i) taken
    // apart from the row iff d in [oLo, oHi] (j in [0, i], not forced: j
    // >= sinkEnd and j < lo; empty where the entry is past the unit's or
    // the row outside the block or the sequence), which is then j = oHi +
    // sinkEnd - d; its slot's bit in the unit's rule words (slot second
    // (2w + 1) + e). A d of -1 (no offset) or past n_offsets is never taken:
    // its slot's rule is 0. (Where a unit has more than kHoistTiles tiles,
    // widths above 1, entries are computed per unit instead, as their
    // registers would spill.)
    struct Entry {
      Value second, mine, odd, oLo, oHi, bit, high;
    };
    auto entryAt = [&](int64_t t, int64_t h) {
      Entry en;
      Value entry = add(p.quad, 16 * t + 8 * h);
      en.second = ule(idx(perOffset), entry);
      Value rest = select(en.second, sub(entry, idx(perOffset)), entry);
      Value n = div(rest, per);
      Value e = rem(rest, per);
      auto [rowOk, i] = probeQuery(p.I, rt, n);
      Value live = andI(ult(entry, entries), rowOk);
      Value base = arith::SubIOp::create(
          b, arith::AddIOp::create(b, toI64(i), toI64(e)), w64);
      Value lo = arith::MaxSIOp::create(
          b, arith::SubIOp::create(b, toI64(e), w64),
          arith::AddIOp::create(b, arith::SubIOp::create(b, base, lo64),
                                i64c(1)));
      en.oLo = select(live, lo, i64c(std::numeric_limits<int64_t>::max()));
      en.oHi = arith::SubIOp::create(b, base, sinkEnd64);
      Value slot = toI32(add(select(en.second, idx(per), idx(0)), e));
      en.high =
          arith::CmpIOp::create(b, arith::CmpIPredicate::uge, slot, i32(32));
      en.bit = arith::ShLIOp::create(b, i32(1),
                                     arith::AndIOp::create(b, slot, i32(31)));
      // Row n is the lane's row 2 ql + (n mod 2) of C, or none.
      en.mine = eq(div(n, 2), p.ql);
      en.odd = eq(rem(n, 2), 1);
      return en;
    };
    SmallVector<Entry> ents;
    if (tiles <= kHoistTiles)
      for (int64_t t = 0; t < tiles; ++t)
        for (int64_t h = 0; h < 2; ++h)
          ents.push_back(entryAt(t, h));
    // The unit's slot rules as ballot words: lane l decides slot 32 wd + l
    // of the unit (from the evidence row, or computed where it did not
    // fit), once per unit instead of once per entry.
    int64_t unitSlots = kUnit * per;
    int64_t words = llvm::divideCeil(unitSlots, 32);
    assert(words <= 2 && "width is at most kRefineKernelMaxWidth");
    Value blockI32 = i32(static_cast<int32_t>(s.block));
    forLoop(
        idx(0), idx(llvm::divideCeil(s.nOffsets, kUnit)), idx(1), {},
        [&](Value uIdx, ValueRange) -> SmallVector<Value> {
          // The unit's offsets (-1 past n_offsets) and their first key
          // blocks.
          Value off[kUnit], jBase[kUnit], kOk[kUnit];
          for (int64_t kk = 0; kk < kUnit; ++kk) {
            Value k = add(mul(uIdx, kUnit), kk);
            kOk[kk] = ult(k, s.nOffsets);
            Value at =
                add(mul(p.group, s.nOffsets), minU(k, idx(s.nOffsets - 1)));
            off[kk] = select(kOk[kk], load(d.offsets, {at}), i64c(-1));
            jBase[kk] = arith::TruncIOp::create(
                b, b.getI32Type(),
                arith::FloorDivSIOp::create(
                    b,
                    arith::SubIOp::create(
                        b, arith::SubIOp::create(b, first64, w64), off[kk]),
                    i64c(s.block)));
          }
          Value word[2];
          for (int64_t wd = 0; wd < words; ++wd) {
            Value c = add(mul(uIdx, unitSlots), add(p.lane, 32 * wd));
            Value ok = andI(ult(add(p.lane, 32 * wd), unitSlots),
                            ult(c, s.candidates()));
            Value flag = ifElseValue(
                ok, b.getI1Type(),
                [&] {
                  return ifElseValue(
                      p.table, b.getI1Type(),
                      [&] {
                        Value at = add(mul(p.group, d.evLen), c);
                        return fcmp(arith::CmpFPredicate::ONE,
                                    load(d.evidence, {at}), f32(0.0f));
                      },
                      [&] { return slotRule(p.group, c); });
                },
                [&] { return arith::ConstantIntOp::create(b, 0, 1); });
            word[wd] = ballot(flag);
          }
          SmallVector<Value> bins(kUnit * nBins, f32(0.0f));
          for (int64_t t = 0; t < tiles; ++t) {
            Entry tileEnts[2];
            for (int64_t h = 0; h < 2; ++h)
              tileEnts[h] = ents.empty() ? entryAt(t, h) : ents[2 * t + h];
            Value take[2], key[2];
            for (int64_t h = 0; h < 2; ++h) {
              const Entry &en = tileEnts[h];
              Value o = select(en.second, off[1], off[0]);
              Value inside = andI(icmp(arith::CmpIPredicate::sge, o, en.oLo),
                                  icmp(arith::CmpIPredicate::sle, o, en.oHi));
              Value bits =
                  words > 1 ? select(en.high, word[1], word[0]) : word[0];
              Value rule = arith::CmpIOp::create(
                  b, arith::CmpIPredicate::ne,
                  arith::AndIOp::create(b, bits, en.bit), i32(0));
              take[h] = andI(inside, rule);
              Value j64 = arith::AddIOp::create(
                  b, arith::SubIOp::create(b, en.oHi, o), sinkEnd64);
              key[h] = arith::IndexCastOp::create(
                  b, b.getIndexType(), select(take[h], j64, i64c(0)));
            }
            SmallVector<Value> acc = mmaKeys(keyTile(key, take), bRegs);
            for (int64_t h = 0; h < 2; ++h) {
              const Entry &en = tileEnts[h];
              Value x =
                  fmul(select(en.odd, acc[2 * h + 1], acc[2 * h]), scaleLog2);
              Value v =
                  select(andI(en.mine, take[h]),
                         fmul(exp2Ftz(fsub(x, select(en.odd, lse[1], lse[0]))),
                              p.weight),
                         f32(0.0f));
              Value J = arith::DivUIOp::create(b, toI32(key[h]), blockI32);
              for (int64_t kk = 0; kk < kUnit; ++kk) {
                Value bin = arith::SubIOp::create(b, J, jBase[kk]);
                Value ofThis = kk ? en.second : notI(en.second);
                for (int64_t bb = 0; bb < nBins; ++bb) {
                  Value here =
                      andI(eq(bin, i32(static_cast<int32_t>(bb))), ofThis);
                  bins[kk * nBins + bb] =
                      fadd(bins[kk * nBins + bb], select(here, v, f32(0.0f)));
                }
              }
            }
          }
          for (Value &sum : bins)
            for (int32_t mask : {16, 8, 4, 2, 1})
              sum = fadd(sum, shuffleXor(sum, mask));
          ifThen(eq(p.lane, 0), [&] {
            for (int64_t kk = 0; kk < kUnit; ++kk)
              for (int64_t bb = 0; bb < nBins; ++bb) {
                Value J = arith::ExtSIOp::create(
                    b, b.getI64Type(),
                    arith::AddIOp::create(b, jBase[kk],
                                          i32(static_cast<int32_t>(bb))));
                Value inRow =
                    andI(icmp(arith::CmpIPredicate::sge, J, i64c(0)),
                         icmp(arith::CmpIPredicate::slt, J, toI64(d.nb)));
                ifThen(inRow, [&] {
                  Value at = arith::IndexCastOp::create(b, b.getIndexType(), J);
                  store(fadd(load(p.eRow, {at}), bins[kk * nBins + bb]), p.eRow,
                        {at});
                });
              }
          });
          return {};
        });
  }

  /// The combination of row I: max(s / tot, E * (f / tot)), E from `eRow`;
  /// with refine_norm E * (f / tot) / (1 + (f / tot) sum_J E), the sum of E
  /// taken with the row's total (lane-strided, the same butterfly).
  void combine(Value bi, Value g, Value I, Value lane, Value eRow) {
    Value step = idx(32); // (created before the sums' zeros)
    SmallVector<Value> init = {f32(0.0f), f32(0.0f)};
    if (s.norm)
      init.push_back(f32(0.0f));
    SmallVector<Value> sums = forLoop(
        lane, d.nb, step, init,
        [&](Value J, ValueRange a) -> SmallVector<Value> {
          Value sc = load(d.scores, {bi, g, I, J});
          Value forced = andI(ule(J, I), ule(I, add(J, s.local)));
          if (s.sink)
            forced = orI(forced, eq(J, 0));
          SmallVector<Value> next = {fadd(a[0], sc),
                                     fadd(a[1], select(forced, sc, f32(0.0f)))};
          if (s.norm)
            next.push_back(fadd(a[2], load(eRow, {J})));
          return next;
        });
    for (int32_t mask : {16, 8, 4, 2, 1})
      for (Value &sum : sums)
        sum = fadd(sum, shuffleXor(sum, mask));
    Value tot = sums[0], f = sums[1];
    // 1 + S, S = (f / tot) sum_J E (a NaN share as 0, as below).
    Value denom;
    if (s.norm) {
      Value share = fdiv(f, tot);
      share = select(fcmp(arith::CmpFPredicate::UNO, share, share), f32(0.0f),
                     share);
      denom = fadd(f32(1.0f), fmul(sums[2], share));
    }
    forLoop(lane, d.nb, idx(32), {},
            [&](Value J, ValueRange) -> SmallVector<Value> {
              SmallVector<Value> at = {bi, g, I, J};
              Value sc = load(d.scores, at);
              Value e = load(eRow, {J});
              Value sn = select(feq(tot, f32(0.0f)), sc, fdiv(sc, tot));
              Value share = fdiv(f, tot);
              share = select(fcmp(arith::CmpFPredicate::UNO, share, share),
                             f32(0.0f), share);
              Value refined = fmul(e, share);
              if (s.norm)
                refined = fdiv(refined, denom);
              Value res = select(fcmp(arith::CmpFPredicate::UNO, sn, sn), sn,
                                 fmaximum(sn, refined));
              store(res, d.out, at);
              return {};
            });
  }
};

/// slash_refine in buffer form (16-bit q and k) -> the five (six) launches.
struct SlashRefineToGPU : OpRewritePattern<SlashRefineOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(SlashRefineOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "tensor form");
    auto shape = [](Value v) { return cast<ShapedType>(v.getType()); };
    std::string why = refinementKernelUnsupportedReason(
        shape(op.getQ()).getElementType(), shape(op.getQ()).getDimSize(1),
        shape(op.getK()).getDimSize(1), shape(op.getScores()).getDimSize(1),
        shape(op.getQ()).getDimSize(3), op.getWidth());
    if (!why.empty())
      return op.emitOpError()
             << "cannot be lowered to the refinement kernels: " << why
             << " (lower it with convert-unisparse-to-linalg before "
                "bufferization)";
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KernelBuilder kb{b};
    auto qType = cast<MemRefType>(op.getQ().getType());
    auto kType = cast<MemRefType>(op.getK().getType());
    auto sType = cast<MemRefType>(op.getScores().getType());

    RefineShape s;
    s.M = op.getLastQ();
    s.P = s.M - 1;
    s.mTiles = llvm::divideCeil(s.M, 16);
    s.nOffsets = op.getNOffsets();
    s.width = op.getWidth();
    s.rows = op.getRowsPerBlock();
    s.block = op.getBlock();
    s.local = op.getLocalBlocks();
    int64_t maxI64 = std::numeric_limits<int64_t>::max();
    s.minOffset =
        s.local > (maxI64 - 1) / s.block ? maxI64 - 1 : s.local * s.block;
    s.sink = op.getSink();
    s.norm = op.getRefineNorm();
    s.hq = qType.getDimSize(1);
    s.G = s.hq / kType.getDimSize(1);
    s.hg = sType.getDimSize(1);
    s.ch = s.hq / s.hg;
    s.headDim = qType.getDimSize(3);
    s.kSteps = s.headDim / 16;
    double scale = op.getScale().convertToDouble();
    if (scale == 0.0)
      scale = 1.0 / std::sqrt(static_cast<double>(s.headDim));
    s.scaleLog2 = static_cast<float>(scale * M_LOG2E);
    s.element = qType.getElementType();

    RefineData d;
    d.q = op.getQ();
    d.k = op.getK();
    d.scores = op.getScores();
    d.out = op.getInit();
    d.batch = memref::DimOp::create(b, d.q, 0);
    d.n = memref::DimOp::create(b, d.q, 2);
    d.nb = memref::DimOp::create(b, d.scores, 2);
    d.pieces = kb.ceilDiv(d.n, kPieceKeys);
    d.evLen = kb.add(d.n, s.P);
    d.ld = kb.mul(kb.ceilDiv(d.n, 8), 8);
    d.aligned = kb.andI(rowsAligned(b, d.q, 16), rowsAligned(b, d.k, 16));
    auto flat = [&](Type type, Value size) {
      return memref::AllocOp::create(
          b, MemRefType::get({ShapedType::kDynamic}, type), ValueRange{size});
    };
    Type f32 = b.getF32Type();
    Value rows = kb.mul(kb.mul(d.batch, s.hq), s.M);
    Value groups = kb.mul(d.batch, s.hg);
    d.logits = flat(f32, kb.mul(rows, d.ld));
    d.partMax = flat(f32, kb.mul(rows, d.pieces));
    d.partSum = flat(f32, kb.mul(rows, d.pieces));
    d.rowMax = flat(f32, rows);
    d.rowInv = flat(f32, rows);
    if (!s.evidenceFused())
      d.vertical = flat(f32, kb.mul(groups, d.n));
    d.evidence = flat(f32, kb.mul(groups, d.evLen));
    d.offsets = flat(b.getI64Type(), kb.mul(groups, s.nOffsets));

    RefineKernels kernels(b, s, d);
    kernels.lastRows();
    kernels.rowStats();
    if (s.evidenceFused()) {
      kernels.evidence();
    } else {
      kernels.vertical();
      kernels.slash();
    }
    kernels.topOffsets();
    kernels.probeRows();
    for (Value buffer : {d.logits, d.partMax, d.partSum, d.rowMax, d.rowInv,
                         d.vertical, d.evidence, d.offsets})
      if (buffer)
        memref::DeallocOp::create(b, buffer);
    rewriter.eraseOp(op);
    return success();
  }
};
} // namespace

void mlir::unisparse::populateSlashRefineToGPUPatterns(
    RewritePatternSet &patterns) {
  patterns.add<SlashRefineToGPU>(patterns.getContext());
}
