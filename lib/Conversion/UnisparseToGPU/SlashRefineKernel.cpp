//===- SlashRefineKernel.cpp - slash_refine as GPU kernels ----------------===//
//
// unisparse.slash_refine (16-bit q and k) in buffer form becomes five
// launches (six where the evidence tile does not fit), the steps of the op's
// description (M = last_q, P = M - 1, m = min(M, N) real rows; all sums f32,
// exponentials math.exp as on the CPU):
//
//   lastRows     tensor cores: a warp per (b, head, 16 of the last rows,
//                piece of kPieceKeys keys), a CTA's warps the query heads
//                of one kv head on the same piece: the rows' logits x = scale
//                q.k on mma.sync m16n8k16 (A fragments of q in registers, B
//                fragments of k loaded per n8 tile, the head dimension
//                permuted alike in both for 16-byte loads), masked (-inf
//                past the row's query), stored to the scratch [B, Hq, M, ld]
//                (what the CPU lowering holds too, rows padded to ld = N
//                rounded up to 8 floats; a lane's two keys one 8-byte
//                store, a quad's 8 keys one 32-byte sector), and the
//                piece's online (max, sum of exp) per row (quad shuffles);
//   rowStats     a warp per (b, head, row): the pieces' (max, sum) merged;
//   evidence     a CTA per (b, group, tile of kEvidenceTile entries e in
//                [0, N + P), offset d = N - 1 - e): the shares pv[r, j] =
//                sum over the group's heads of exp(x - max) / sum, times 1
//                / (m c_h), of the tile's keys and their P-wide halo into
//                workgroup memory, then v0[j] = sum_r pv[r, j], then per
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
//   probeRows    a warp per (b, group, two query blocks I, I + 1 where
//                rows_per_block <= 8, their probe rows the m16 tile's two
//                halves; else one block I, its rows in m16 tiles), E in
//                workgroup memory (a row per block): per head of the group,
//                the log-sum-exp of the forced keys (sink block, blocks I -
//                local_blocks .. I up to the row; paired, the two blocks'
//                ranges walked as their union, each row masked to its own)
//                on tensor cores, as lastRows but online over n8 tiles of
//                the two key ranges;
//                then the candidates on tensor cores, a slot (offset, e) at
//                a time: the n8 tile's key n is the slot's key i - d + e -
//                w of tile row n, so the rows' logits are the diagonal;
//                their exp(x - lse) / (probe rows * c_h) summed per key
//                block (two at most) by a butterfly and added into the
//                block's E by lane 0; then each block's row total and forced
//                sums of the first pass (lane-strided, a butterfly) and the
//                combination max(s / tot, E * f / tot) with the op's NaN rules,
//                written once.
//
// E lives in workgroup memory (NB floats a block), so nothing grows as N^2
// beyond the scores; the scratch is the last rows' logits (B Hq M ld floats, as
// on the CPU path) plus O(B Hg N).
//
// Fragment layouts (mma.m16n8k16 .bf16/.f16, row.col, lane l = 4 quad +
// q): A reg 0 = row quad, cols 2q..2q+1; reg 1 = row quad + 8; regs 2, 3 =
// cols + 8. B reg 0 = key quad, dims 2q..2q+1; reg 1 = dims + 8. C element
// [h][c] = row quad + 8h, key 2q + c of the n8 tile.
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

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
/// Entries (and threads) per CTA of the fused evidence kernel.
constexpr int64_t kEvidenceTile = 256;
/// Static workgroup memory a CTA may declare (without opting in).
constexpr int64_t kStaticWorkgroupBytes = 48 * 1024;

/// The static parameters of one refinement.
struct RefineShape {
  int64_t M, P, mTiles;     // last_q, last_q - 1, ceil(M / 16)
  int64_t nOffsets, width;  // offsets kept, keys each side of one
  int64_t rows, probeTiles; // rows_per_block, ceil(rows / 16)
  int64_t block, local;     // block, local_blocks
  int64_t minOffset;        // local_blocks * block (saturated)
  bool sink;
  int64_t hq, G, hg, ch;   // query heads, Hq / Hkv, head groups, Hq / Hg
  int64_t headDim, kSteps; // D, D / 16
  float scale;
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
  // pieces], row (max, sum) [B, Hq, M], vertical [B, Hg, N], evidence [B,
  // Hg, N + P]; offsets [B, Hg, n_offsets] (i64, -1 where none).
  Value logits, partMax, partSum, rowMax, rowSum, vertical, evidence, offsets;
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
  Value exp(Value x) { return math::ExpOp::create(b, x); }
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
  Value i64c(int64_t v) { return arith::ConstantIntOp::create(b, v, 64); }

  /// scf.if `cond` yielding then() or `otherwise` (one value).
  Value ifValue(Value cond, function_ref<Value()> then, Value otherwise) {
    auto op = scf::IfOp::create(b, otherwise.getType(), cond,
                                /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    scf::YieldOp::create(b, then());
    b.setInsertionPointToStart(&op.getElseRegion().front());
    scf::YieldOp::create(b, otherwise);
    return op.getResult(0);
  }

  /// scf.if `cond` yielding then() or otherwise() (one value of type i1).
  Value ifElse(Value cond, function_ref<Value()> then,
               function_ref<Value()> otherwise) {
    auto op = scf::IfOp::create(b, b.getI1Type(), cond,
                                /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    scf::YieldOp::create(b, then());
    b.setInsertionPointToStart(&op.getElseRegion().front());
    scf::YieldOp::create(b, otherwise());
    return op.getResult(0);
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

  /// Elements col .. col + 7 of row `row` of head `head` of `src` ([B, H,
  /// N, D]) as four operand registers (pairs 0..3); where `valid` is false
  /// row 0 is read, and the registers are zero if `zero`: one 16-byte load
  /// where the host found q's and k's rows 16-byte aligned, else four
  /// 4-byte loads.
  SmallVector<Value> octetAt(Value src, Value bi, Value head, Value row,
                             Value valid, Value col, bool zero = true) {
    auto octType = VectorType::get({8}, s.element);
    auto pairType = VectorType::get({2}, s.element);
    Value safe = select(valid, row, idx(0));
    SmallVector<Type> pairTypes(4, pairType);
    auto branch = scf::IfOp::create(b, pairTypes, d.aligned,
                                    /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&branch.getThenRegion().front());
      Value oct = vector::LoadOp::create(
          b, octType, src, ValueRange{bi, head, safe, col},
          /*nontemporal=*/false, llvm::Align(16));
      SmallVector<Value> pairs;
      for (int64_t pr = 0; pr < 4; ++pr)
        pairs.push_back(vector::ShuffleOp::create(
            b, oct, oct, ArrayRef<int64_t>{2 * pr, 2 * pr + 1}));
      scf::YieldOp::create(b, pairs);
      b.setInsertionPointToStart(&branch.getElseRegion().front());
      pairs.clear();
      for (int64_t pr = 0; pr < 4; ++pr)
        pairs.push_back(vector::LoadOp::create(
            b, pairType, src, ValueRange{bi, head, safe, add(col, 2 * pr)},
            /*nontemporal=*/false, llvm::Align(4)));
      scf::YieldOp::create(b, pairs);
    }
    SmallVector<Value> regs;
    for (int64_t pr = 0; pr < 4; ++pr)
      regs.push_back(mmaOperand(branch.getResult(pr)));
    if (!zero)
      return regs;
    Value zeros = mmaOperand(arith::ConstantOp::create(
        b, pairType,
        DenseElementsAttr::get(pairType, b.getZeroAttr(s.element))));
    for (Value &reg : regs)
      reg = select(valid, reg, zeros);
    return regs;
  }

  // The head dimension in k steps of 16, permuted: Q K^T sums over it, so A
  // and B only have to agree on which dimension each k slot holds. Steps
  // 2p and 2p + 1 of lane l (quad lane ql) hold dimensions 32p + 8ql .. 32p
  // + 8ql + 7 of its rows / key, 16 contiguous bytes: slot (step 2p + h,
  // half c) (A regs c * 2 + row, B reg c) is pair 2h + c of that octet. A
  // last step of 16 (D = 16 mod 32) keeps the mma's own layout, dimensions
  // 16 ks + 2ql (+ 8 for the second half).

  /// The A fragments of 16 query rows (the lane's rows quad and quad + 8
  /// are `rowIdx[h]`, zero where not `valid[h]`): 4 registers per k step.
  SmallVector<Value> queryFragments(Value bi, Value head, Value rowIdx[2],
                                    Value valid[2], Value ql) {
    SmallVector<Value> regs;
    for (int64_t p = 0; p < s.kSteps / 2; ++p) {
      Value col = add(mul(ql, 8), 32 * p);
      SmallVector<Value> oct[2];
      for (int64_t h = 0; h < 2; ++h)
        oct[h] = octetAt(d.q, bi, head, rowIdx[h], valid[h], col);
      for (int64_t half = 0; half < 2; ++half)
        for (int64_t reg = 0; reg < 4; ++reg)
          regs.push_back(oct[reg % 2][2 * half + reg / 2]);
    }
    if (s.kSteps % 2)
      for (int64_t reg = 0; reg < 4; ++reg) {
        Value col = add(mul(ql, 2), (s.kSteps - 1) * 16 + (reg / 2) * 8);
        regs.push_back(
            pairAt(d.q, bi, head, rowIdx[reg % 2], valid[reg % 2], col));
      }
    return regs;
  }

  /// The B fragments of one n8 tile: the lane's key `key` of kv head `kv`
  /// (row 0 where not `keyValid`, not zeroed: an n8 tile's column depends
  /// on its own key alone, and every caller masks the logits of a column
  /// whose key is not valid: -inf past N or past the key range, 0 for a
  /// candidate not taken), 2 registers per k step.
  SmallVector<Value> keyFragments(Value bi, Value kv, Value key, Value keyValid,
                                  Value ql) {
    SmallVector<Value> regs;
    for (int64_t p = 0; p < s.kSteps / 2; ++p) {
      SmallVector<Value> oct =
          octetAt(d.k, bi, kv, key, keyValid, add(mul(ql, 8), 32 * p),
                  /*zero=*/false);
      regs.append(oct.begin(), oct.end());
    }
    if (s.kSteps % 2)
      for (int64_t reg = 0; reg < 2; ++reg)
        regs.push_back(pairAt(d.k, bi, kv, key, keyValid,
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

  /// (max, sum of exp(x - max)) after adding `xs` (-inf: masked) to (m, l).
  /// A max of -inf shifts by 0, so masked entries add exp(-inf) = 0.
  std::pair<Value, Value> online(Value m, Value l, ArrayRef<Value> xs,
                                 bool propagate) {
    Value t = xs[0];
    for (Value x : xs.drop_front())
      t = fmax(t, x, propagate);
    Value mNew = fmax(m, t, propagate);
    Value safe = select(feq(mNew, negInf()), f32(0.0f), mNew);
    Value sum = fmul(l, exp(fsub(m, safe)));
    for (Value x : xs)
      sum = fadd(sum, exp(fsub(x, safe)));
    return {mNew, sum};
  }

  /// Two (max, sum) pairs of one row merged.
  std::pair<Value, Value> merge(Value m1, Value l1, Value m2, Value l2,
                                bool propagate) {
    Value mNew = fmax(m1, m2, propagate);
    Value safe = select(feq(mNew, negInf()), f32(0.0f), mNew);
    Value sum =
        fadd(fmul(l1, exp(fsub(m1, safe))), fmul(l2, exp(fsub(m2, safe))));
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

  /// The lane's two rows' (max, sum) `st` (maxima, then sums) after the n8
  /// tile `acc` of keys j0 ..: x = scale S where `visible(h, j)`, else
  /// -inf; `each(h, j, x)`, when given, sees every element.
  SmallVector<Value>
  tileStep(ValueRange st, ArrayRef<Value> acc, Value j0, Value ql,
           function_ref<Value(int64_t h, Value j)> visible, bool propagate,
           function_ref<void(int64_t h, Value j, Value x)> each = nullptr) {
    SmallVector<Value> next(st.begin(), st.end());
    for (int64_t h = 0; h < 2; ++h) {
      SmallVector<Value> xs;
      for (int64_t c = 0; c < 2; ++c) {
        Value j = add(add(j0, mul(ql, 2)), c);
        Value x =
            select(visible(h, j), fmul(acc[2 * h + c], f32(s.scale)), negInf());
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
              std::tie(m, l) = merge(m, l, shuffleXor(m, mask),
                                     shuffleXor(l, mask), /*propagate=*/false);
            ifThen(eq(lane, 0), [&] {
              store(m, d.rowMax, {row});
              store(l, d.rowSum, {row});
            });
          });
        });
  }

  //===--- 2. the evidence -------------------------------------------===//

  /// pv[r, j] of head group g: the group's shares of the last row r at key
  /// j, summed over its heads, times 1 / (m c_h).
  Value groupShare(Value bi, Value g, Value r, Value j, Value norm) {
    Value sum = forLoop(idx(0), idx(s.ch), idx(1), {f32(0.0f)},
                        [&](Value hh, ValueRange a) -> SmallVector<Value> {
                          Value row = lastRow(bi, add(mul(g, s.ch), hh), r);
                          Value m = load(d.rowMax, {row});
                          Value l = load(d.rowSum, {row});
                          Value x = load(d.logits, {add(mul(row, d.ld), j)});
                          Value share = select(
                              fcmp(arith::CmpFPredicate::OGT, l, f32(0.0f)),
                              fdiv(exp(fsub(x, m)), l), f32(0.0f));
                          return {fadd(a[0], share)};
                        })[0];
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
            return {
                ifValue(inside, [&] { return body(sub(c, idx(s.P))); }, a[0])};
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
  /// P-wide halo, L keys). The shares pv[r, j] of those keys are computed
  /// once into workgroup memory (coalesced reads of the logits, each share
  /// as groupShare), then v0[j] over the rows, then each thread's entry:
  /// s0 and the slash evidence from the stored shares. The sums' order is
  /// the two kernels' (rows ascending from 0), so the evidence is the same
  /// bit for bit; v0 of the halo keys is recomputed by the neighbouring
  /// tile (P / kEvidenceTile more shares), and never stored.
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
          // N + P.
          auto inside = [&](Value u) {
            Value c = add(e0, u);
            return andI(ule(idx(s.P), c), ult(c, d.evLen));
          };
          forLoop(idx(0), idx(s.M), idx(1), {},
                  [&](Value r, ValueRange) -> SmallVector<Value> {
                    forLoop(tid, idx(L), idx(kEvidenceTile), {},
                            [&](Value u, ValueRange) -> SmallVector<Value> {
                              Value in = inside(u);
                              Value p = ifValue(
                                  in,
                                  [&] {
                                    Value j = sub(add(e0, u), idx(s.P));
                                    return groupShare(bi, g, r, j, norm);
                                  },
                                  f32(0.0f));
                              store(p, pv, {r, u});
                              return {};
                            });
                    return {};
                  });
          gpu::BarrierOp::create(b);
          forLoop(tid, idx(L), idx(kEvidenceTile), {},
                  [&](Value u, ValueRange) -> SmallVector<Value> {
                    Value v = forLoop(
                        idx(0), idx(s.M), idx(1), {f32(0.0f)},
                        [&](Value r, ValueRange a) -> SmallVector<Value> {
                          return {fadd(a[0], load(pv, {r, u}))};
                        })[0];
                    store(v, v0, {u});
                    return {};
                  });
          gpu::BarrierOp::create(b);
          Value e = add(e0, tid);
          ifThen(ult(e, d.evLen), [&] {
            // Pair (r, j = e + r - P) is key u = tid + r of the tile.
            auto pair = [&](Value r, ValueRange a,
                            function_ref<Value(Value u)> body) {
              Value u = add(tid, r);
              return SmallVector<Value>{
                  ifValue(inside(u), [&] { return body(u); }, a[0])};
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
                auto next =
                    scf::IfOp::create(b, TypeRange{bv.getType(), i32Type},
                                      ownerWarp, /*withElseRegion=*/true);
                {
                  OpBuilder::InsertionGuard guard(b);
                  b.setInsertionPointToStart(&next.getThenRegion().front());
                  SmallVector<Value> part =
                      scanBest(base, owner, kOffsetThreads, lane, owned(owner),
                               32, we, init);
                  Value nv, ne;
                  std::tie(nv, ne) = warpArgMax(part[0], part[1]);
                  // The marked winner itself (-inf) stays a candidate, as
                  // it was on the rescan this replaces.
                  Value wv = negInf();
                  Value takeW = wins(wv, we, nv, ne);
                  nv = select(takeW, wv, nv);
                  ne = select(takeW, we, ne);
                  scf::YieldOp::create(b, ValueRange{select(mine, nv, st[0]),
                                                     select(mine, ne, st[1])});
                  b.setInsertionPointToStart(&next.getElseRegion().front());
                  scf::YieldOp::create(b, st);
                }
                return SmallVector<Value>(next.getResults());
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
  Value probeRow(Value I, Value t) {
    int64_t a = s.block / (2 * s.rows), r = s.block % (2 * s.rows);
    Value odd = add(mul(t, 2), 1);
    return add(mul(I, s.block), add(mul(odd, a), div(mul(odd, r), 2 * s.rows)));
  }

  /// Query blocks per warp of the probe kernel: two where a block's probe
  /// rows fit in 8 (rows quad of the m16 tile are block I's, rows quad + 8
  /// block I + 1's), else one (its rows in ceil(rows / 16) tiles).
  int64_t probeBlocks() const { return s.rows <= 8 ? 2 : 1; }

  /// Bytes of the probe kernel's dynamic workgroup memory: each of its
  /// blocks' E accumulator, NB floats.
  Value probeDynamicBytes() {
    return arith::IndexCastUIOp::create(b, b.getI32Type(),
                                        mul(d.nb, 4 * probeBlocks()));
  }

  void probeRows() {
    int64_t per = probeBlocks();
    Value warps = ceilDiv(d.nb, per);
    buildLaunch(
        b, mul(mul(d.batch, s.hg), warps), 32, {}, "unisparse_slash_probe",
        [&](ImplicitLocOpBuilder &, Value lane, Value bid, ValueRange) {
          Value I0 = mul(rem(bid, warps), per), bg = div(bid, warps);
          Value g = rem(bg, s.hg), bi = div(bg, s.hg);
          Value quad = div(lane, 4), ql = rem(lane, 4);
          // Each block's E in workgroup memory (NB floats): the candidates
          // add into it, the combination reads it; the result row is
          // written once.
          Value raw = gpu::DynamicSharedMemoryOp::create(
              b, MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                                 MemRefLayoutAttrInterface(),
                                 workgroupSpace(b.getContext())));
          auto eType = MemRefType::get({ShapedType::kDynamic}, b.getF32Type(),
                                       MemRefLayoutAttrInterface(),
                                       workgroupSpace(b.getContext()));
          ProbeRow row;
          row.bi = bi;
          row.g = g;
          row.lane = lane;
          row.quad = quad;
          row.ql = ql;
          row.group = bg;
          row.table = slotTable();
          row.paired = per == 2;
          for (int64_t h = 0; h < 2; ++h) {
            // Half h of the tile (rows quad + 8 h) is block I0 + h when
            // paired, else block I0 too.
            int64_t u = row.paired ? h : 0;
            Value I = add(I0, u);
            row.I[h] = I;
            row.exists[h] = ult(I, d.nb);
            row.eRow[h] = memref::ViewOp::create(
                b, eType, raw, mul(d.nb, 4 * u), ValueRange{d.nb});
            // The probe rows inside the sequence, and each one's weight.
            Value nValid =
                forLoop(idx(0), idx(s.rows), idx(1), {idx(0)},
                        [&](Value t, ValueRange a) -> SmallVector<Value> {
                          return {add(a[0], select(ult(probeRow(I, t), d.n),
                                                   idx(1), idx(0)))};
                        })[0];
            row.weight[h] =
                fdiv(f32(1.0f), fmul(toF32(maxU(nValid, idx(1))),
                                     f32(static_cast<float>(s.ch))));
            // Forced keys: [0, sinkEnd) and [lo, hiEnd) (up to the row).
            row.lo[h] = select(ule(idx(s.local), I),
                               mul(sub(I, idx(s.local)), s.block), idx(0));
            row.sinkEnd[h] = idx(0);
            if (s.sink)
              row.sinkEnd[h] =
                  select(ult(idx(0), row.lo[h]), idx(s.block), idx(0));
            row.hiEnd[h] = minU(mul(add(I, 1), s.block), d.n);
          }

          for (int64_t u = 0; u < per; ++u)
            forLoop(lane, d.nb, idx(32), {},
                    [&](Value J, ValueRange) -> SmallVector<Value> {
                      store(f32(0.0f), row.eRow[u], {J});
                      return {};
                    });
          gpu::BarrierOp::create(b);
          forLoop(idx(0), idx(s.ch), idx(1), {},
                  [&](Value hh, ValueRange) -> SmallVector<Value> {
                    Value head = add(mul(g, s.ch), hh);
                    forLoop(idx(0), idx(s.probeTiles), idx(1), {},
                            [&](Value mt, ValueRange) -> SmallVector<Value> {
                              probeTile(row, head, mt);
                              return {};
                            });
                    return {};
                  });
          gpu::BarrierOp::create(b);
          for (int64_t u = 0; u < per; ++u)
            ifThen(row.exists[u],
                   [&] { combine(bi, g, row.I[u], lane, row.eRow[u]); });
        },
        probeDynamicBytes());
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

  /// What every step of one warp's probe rows shares: half h of the m16
  /// tile (rows quad + 8 h) holds probe rows of block I[h] (I[0] = I[1]
  /// unless paired).
  struct ProbeRow {
    Value bi, g, lane, quad, ql;
    Value group; // b Hg + g
    Value table; // i1: slotTable()
    bool paired; // blocks I0 and I0 + 1 in halves 0 and 1
    Value I[2], exists[2], lo[2], sinkEnd[2], hiEnd[2], weight[2];
    Value eRow[2]; // [NB] f32: E of block I[h]
  };

  /// Probe rows of the warp's tile `mt` of head `head`: the forced keys'
  /// log-sum-exp on tensor cores, then the candidates into E. Paired, the
  /// two blocks' forced key ranges are walked as their union (the sink
  /// block, then blocks I0 - local_blocks .. I0 + 1: the diagonal block of
  /// I0 is a local block of I0 + 1), each row masked to its own ranges:
  /// (local_blocks + 3) key blocks of tiles where two warps took 2
  /// (local_blocks + 2). A tile no key of which a row sees leaves its (max,
  /// sum) as they were, bit for bit, so each row's log-sum-exp is the one
  /// of its own ranges (where block is a multiple of 8: the same n8 tiles).
  void probeTile(const ProbeRow &p, Value head, Value mt) {
    Value kv = div(head, s.G);
    Value t[2], valid[2], query[2];
    for (int64_t h = 0; h < 2; ++h) {
      t[h] = p.paired ? p.quad : add(add(mul(mt, 16), p.quad), 8 * h);
      Value i = probeRow(p.I[h], t[h]);
      valid[h] = andI(ult(t[h], s.rows), ult(i, d.n));
      query[h] = select(valid[h], i, idx(0));
    }
    SmallVector<Value> aRegs = queryFragments(p.bi, head, query, valid, p.ql);
    SmallVector<Value> st = {negInf(), negInf(), f32(0.0f), f32(0.0f)};
    // Two n8 tiles a step: both tiles' B fragments are loaded before the
    // first mma, so each step waits for one round of loads.
    Value sinkStop = p.paired ? maxU(p.sinkEnd[0], p.sinkEnd[1]) : p.sinkEnd[0];
    Value localStop = p.paired ? maxU(p.hiEnd[0], p.hiEnd[1]) : p.hiEnd[0];
    for (int64_t range = 0; range < 2; ++range) {
      Value begin = range ? p.lo[0] : idx(0);
      Value stop = range ? localStop : sinkStop;
      // Row h sees keys of this range below its own end (and, paired,
      // from its own start).
      auto visible = [&](int64_t h, Value j) {
        Value ok =
            andI(valid[h], andI(ult(j, range ? p.hiEnd[h] : p.sinkEnd[h]),
                                ule(j, query[h])));
        if (p.paired && range)
          ok = andI(ok, ule(p.lo[h], j));
        return ok;
      };
      st = forLoop(idx(0), ceilDiv(sub(stop, begin), 16), idx(1), st,
                   [&](Value step, ValueRange a) -> SmallVector<Value> {
                     Value j0[2], key[2];
                     SmallVector<Value> frags[2];
                     for (int64_t u = 0; u < 2; ++u) {
                       j0[u] = add(begin, add(mul(step, 16), 8 * u));
                       key[u] = add(j0[u], p.quad);
                       frags[u] = keyFragments(p.bi, kv, key[u],
                                               ult(key[u], stop), p.ql);
                     }
                     SmallVector<Value> next(a.begin(), a.end());
                     for (int64_t u = 0; u < 2; ++u)
                       next = tileStep(next, mmaKeys(aRegs, frags[u]), j0[u],
                                       p.ql, visible, /*propagate=*/true);
                     return next;
                   });
    }
    // The lse of rows quad and quad + 8, in every lane of the quad.
    Value lse[2];
    for (int64_t h = 0; h < 2; ++h) {
      Value m, l;
      std::tie(m, l) = quadMerge(st[h], st[2 + h], /*propagate=*/true);
      lse[h] = fadd(m, math::LogOp::create(b, l));
    }
    // The candidates on tensor cores, a slot at a time: the n8 tile's key
    // n is slot c's key of tile row n (+ 8 for the second half), so the
    // useful logits are the diagonal: row n, key n, in lane 4n + n / 2,
    // C element 2 half + n mod 2. Eight of a tile's 128 products are used,
    // at 8 HMMA (D 128) in place of 1024 FMAs, their conversions and loads.
    // Paired, each half's mma serves its own block, and each block's sums
    // go to its own E row.
    int64_t halves = (p.paired || s.rows > 8) ? 2 : 1;
    int64_t rowSets = p.paired ? 2 : 1;
    int64_t per = 2 * s.width + 1;
    Value w64 = i64c(s.width);
    Value diag = eq(p.ql, div(p.quad, 2));
    Value oddQuad = eq(rem(p.quad, 2), 1);
    forLoop(
        idx(0), idx(s.candidates()), idx(1), {},
        [&](Value c, ValueRange) -> SmallVector<Value> {
          Value slotOk = ifElse(
              p.table,
              [&] {
                Value at = add(mul(p.group, d.evLen), c);
                return fcmp(arith::CmpFPredicate::ONE, load(d.evidence, {at}),
                            f32(0.0f));
              },
              [&] { return slotRule(p.group, c); });
          Value off =
              load(d.offsets, {add(mul(p.group, s.nOffsets), div(c, per))});
          // e - w - d: key j = i + shift.
          Value shift = arith::SubIOp::create(
              b, arith::SubIOp::create(b, toI64(rem(c, per)), w64), off);
          // A block's keys of the slot lie in key blocks jLo and jLo + 1
          // (rows of one query block span less than a block).
          Value jLo[2];
          for (int64_t u = 0; u < rowSets; ++u)
            jLo[u] = arith::FloorDivSIOp::create(
                b, arith::AddIOp::create(b, toI64(mul(p.I[u], s.block)), shift),
                i64c(s.block));
          Value sums[2][2] = {{f32(0.0f), f32(0.0f)}, {f32(0.0f), f32(0.0f)}};
          for (int64_t hh = 0; hh < halves; ++hh) {
            int64_t u = p.paired ? hh : 0;
            Value i64q = toI64(query[hh]);
            Value j64 = arith::AddIOp::create(b, i64q, shift);
            Value forced =
                orI(icmp(arith::CmpIPredicate::slt, j64, toI64(p.sinkEnd[u])),
                    icmp(arith::CmpIPredicate::sge, j64, toI64(p.lo[u])));
            Value take =
                andI(andI(slotOk, valid[hh]),
                     andI(andI(icmp(arith::CmpIPredicate::sge, j64, i64c(0)),
                               icmp(arith::CmpIPredicate::sle, j64, i64q)),
                          notI(forced)));
            Value j = arith::IndexCastOp::create(b, b.getIndexType(),
                                                 select(take, j64, i64c(0)));
            SmallVector<Value> acc =
                mmaKeys(aRegs, keyFragments(p.bi, kv, j, take, p.ql));
            Value x = fmul(select(oddQuad, acc[2 * hh + 1], acc[2 * hh]),
                           f32(s.scale));
            Value v =
                select(andI(diag, take),
                       fmul(exp(fsub(x, lse[hh])), p.weight[u]), f32(0.0f));
            Value hi = icmp(arith::CmpIPredicate::ne,
                            arith::FloorDivSIOp::create(b, j64, i64c(s.block)),
                            jLo[u]);
            sums[u][0] = fadd(sums[u][0], select(hi, f32(0.0f), v));
            sums[u][1] = fadd(sums[u][1], select(hi, v, f32(0.0f)));
          }
          // Each block's share over the warp (a fixed butterfly), added
          // into its E row by lane 0.
          for (int64_t u = 0; u < rowSets; ++u)
            for (int64_t k = 0; k < 2; ++k)
              for (int32_t mask : {16, 8, 4, 2, 1})
                sums[u][k] = fadd(sums[u][k], shuffleXor(sums[u][k], mask));
          ifThen(eq(p.lane, 0), [&] {
            for (int64_t u = 0; u < rowSets; ++u)
              for (int64_t k = 0; k < 2; ++k) {
                Value J = arith::AddIOp::create(b, jLo[u], i64c(k));
                Value inRow =
                    andI(icmp(arith::CmpIPredicate::sge, J, i64c(0)),
                         icmp(arith::CmpIPredicate::slt, J, toI64(d.nb)));
                ifThen(inRow, [&] {
                  Value at = arith::IndexCastOp::create(b, b.getIndexType(), J);
                  store(fadd(load(p.eRow[u], {at}), sums[u][k]), p.eRow[u],
                        {at});
                });
              }
          });
          return {};
        });
  }

  /// The combination of row I: max(s / tot, E * (f / tot)), E from `eRow`.
  void combine(Value bi, Value g, Value I, Value lane, Value eRow) {
    SmallVector<Value> sums = forLoop(
        lane, d.nb, idx(32), {f32(0.0f), f32(0.0f)},
        [&](Value J, ValueRange a) -> SmallVector<Value> {
          Value sc = load(d.scores, {bi, g, I, J});
          Value forced = andI(ule(J, I), ule(I, add(J, s.local)));
          if (s.sink)
            forced = orI(forced, eq(J, 0));
          return {fadd(a[0], sc), fadd(a[1], select(forced, sc, f32(0.0f)))};
        });
    Value tot = sums[0], f = sums[1];
    for (int32_t mask : {16, 8, 4, 2, 1}) {
      tot = fadd(tot, shuffleXor(tot, mask));
      f = fadd(f, shuffleXor(f, mask));
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
        shape(op.getQ()).getDimSize(3));
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
    s.probeTiles = llvm::divideCeil(s.rows, 16);
    s.block = op.getBlock();
    s.local = op.getLocalBlocks();
    int64_t maxI64 = std::numeric_limits<int64_t>::max();
    s.minOffset =
        s.local > (maxI64 - 1) / s.block ? maxI64 - 1 : s.local * s.block;
    s.sink = op.getSink();
    s.hq = qType.getDimSize(1);
    s.G = s.hq / kType.getDimSize(1);
    s.hg = sType.getDimSize(1);
    s.ch = s.hq / s.hg;
    s.headDim = qType.getDimSize(3);
    s.kSteps = s.headDim / 16;
    double scale = op.getScale().convertToDouble();
    if (scale == 0.0)
      scale = 1.0 / std::sqrt(static_cast<double>(s.headDim));
    s.scale = static_cast<float>(scale);
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
    d.rowSum = flat(f32, rows);
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
    for (Value buffer : {d.logits, d.partMax, d.partSum, d.rowMax, d.rowSum,
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
