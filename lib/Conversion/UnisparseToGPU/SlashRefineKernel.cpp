//===- SlashRefineKernel.cpp - slash_refine as GPU kernels ----------------===//
//
// unisparse.slash_refine (16-bit q and k) in buffer form becomes six
// launches, the steps of the op's description (M = last_q, P = M - 1, m =
// min(M, N) real rows; all sums f32, exponentials math.exp as on the CPU):
//
//   lastRows     tensor cores: a warp per (b, head, 16 of the last rows,
//                piece of kPieceKeys keys): the rows' logits x = scale q.k
//                on mma.sync m16n8k16 (A fragments of q in registers, B
//                fragments of k loaded per n8 tile), masked (-inf past the
//                row's query), stored to the scratch [B, Hq, M, N] (what
//                the CPU lowering holds too), and the piece's online
//                (max, sum of exp) per row (quad shuffles);
//   rowStats     a thread per (b, head, row): the pieces' (max, sum)
//                merged;
//   vertical     a thread per (b, group, key j): v0[j] = sum_r pv[r, j],
//                pv[r, j] = sum over the group's heads of exp(x - max) /
//                sum, times 1 / (m c_h) (the CPU's order of sums);
//   slash        a thread per (b, group, e), e in [0, N + P) (offset d = N
//                - 1 - e): s0[e] = sum_r pv[r, e + r - P], then slash[e] =
//                sum_r of the pairs with v0 < s0 (ULT: NaN goes to the
//                slash), and -inf for d <= local_blocks * block;
//   topOffsets   a CTA per (b, group): n_offsets rounds of a block-wide
//                arg-max (largest evidence, ties to the larger e, i.e. the
//                smaller offset, NaN never wins): each thread keeps the
//                best of its strided entries, the round reduces them (warp
//                shuffles, then warp 0 over the 32 warps), marks the winner
//                -inf and only its owner rescans; an offset whose evidence is
//                not positive is -1;
//   probeRows    a warp per (b, group, query block I): per head of the
//                group and 16 probe rows, the log-sum-exp of the forced
//                keys (sink block, blocks I - local_blocks .. I up to the
//                row) on tensor cores, as lastRows but online over n8
//                tiles of the two key ranges; then the candidates i - d +
//                e, a lane each (a gathered dot product of D: each row has
//                its own keys, which a tensor-core tile would compute 16
//                times over), each key once (the width rule), their
//                exp(x - lse) / (probe rows * c_h) added into the result
//                row in the CPU's order (lane 0, broadcast by shuffles);
//                then the row's total and forced sums of the first pass
//                (lane-strided, a butterfly) and the combination max(s /
//                tot, E * f / tot) with the op's NaN rules, in place.
//
// The result row is E's accumulator, so nothing grows as N^2 beyond the
// scores; the scratch is the last rows' logits (B Hq M N floats, as on the
// CPU path) plus O(B Hg N).
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
};

/// The dynamic sizes and buffers every kernel reads.
struct RefineData {
  Value batch, n, nb, pieces, evLen; // B, N, NB, ceil(N / piece), N + P
  Value q, k, scores, out;           // the op's memrefs
  Value aligned; // q's and k's rows 16-byte aligned (host, i1)
  // Flat f32 scratch: logits [B, Hq, M, N], piece (max, sum) [B, Hq, M,
  // pieces], row (max, sum) [B, Hq, M], vertical [B, Hg, N], evidence [B,
  // Hg, N + P]; offsets [B, Hg, n_offsets] (i64, -1 where none).
  Value logits, partMax, partSum, rowMax, rowSum, vertical, evidence, offsets;
};

/// Builds the six launches of one refinement.
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

  /// The value of `x` in lane `lane` (an index) of the warp.
  Value shuffleIdx(Value x, Value lane) {
    return gpu::ShuffleOp::create(b, x, toI32(lane), i32(32),
                                  gpu::ShuffleMode::IDX)
        .getShuffleResult();
  }

  /// Flat index of (batch, head, last row) rows of the scratch.
  Value lastRow(Value bi, Value head, Value r) {
    return add(mul(add(mul(bi, s.hq), head), s.M), r);
  }

  //===--- tensor-core tiles -----------------------------------------===//

  /// Elements col, col + 1 of row `row` of head `head` of `src` ([B, H, N,
  /// D]) as an operand register, zero where `valid` is false (row 0 read).
  Value pairAt(Value src, Value bi, Value head, Value row, Value valid,
               Value col) {
    auto pairType = VectorType::get({2}, s.element);
    Value safe = select(valid, row, idx(0));
    Value pair = vector::LoadOp::create(b, pairType, src,
                                        ValueRange{bi, head, safe, col},
                                        /*nontemporal=*/false, llvm::Align(4));
    Value zero = arith::ConstantOp::create(
        b, pairType,
        DenseElementsAttr::get(pairType, b.getZeroAttr(s.element)));
    return select(valid, mmaOperand(pair), mmaOperand(zero));
  }

  /// The A fragments of 16 query rows (the lane's rows quad and quad + 8
  /// are `rowIdx[h]`, zero where not `valid[h]`): 4 registers per k step.
  SmallVector<Value> queryFragments(Value bi, Value head, Value rowIdx[2],
                                    Value valid[2], Value ql) {
    SmallVector<Value> regs;
    for (int64_t ks = 0; ks < s.kSteps; ++ks)
      for (int64_t reg = 0; reg < 4; ++reg) {
        Value col = add(mul(ql, 2), ks * 16 + (reg / 2) * 8);
        regs.push_back(
            pairAt(d.q, bi, head, rowIdx[reg % 2], valid[reg % 2], col));
      }
    return regs;
  }

  /// S = Q K^T of one n8 tile: the lane's B fragment is key `key` of kv
  /// head `kv` (zero where not `keyValid`); returns the C registers.
  SmallVector<Value> mmaKeys(ArrayRef<Value> aRegs, Value bi, Value kv,
                             Value key, Value keyValid, Value ql) {
    auto accType = LLVM::LLVMStructType::getLiteral(
        b.getContext(), SmallVector<Type>(4, b.getF32Type()));
    NVVM::MMATypes ptx =
        s.element.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
    SmallVector<Value> bRegs;
    for (int64_t ks = 0; ks < s.kSteps; ++ks)
      for (int64_t reg = 0; reg < 2; ++reg)
        bRegs.push_back(pairAt(d.k, bi, kv, key, keyValid,
                               add(mul(ql, 2), ks * 16 + reg * 8)));
    SmallVector<Value> acc(4, f32(0.0f));
    for (int64_t ks = 0; ks < s.kSteps; ++ks) {
      Value out = NVVM::MmaOp::create(
          b, accType, aRegs.slice(ks * 4, 4),
          ArrayRef<Value>(bRegs).slice(ks * 2, 2), acc, {16, 8, 16},
          std::nullopt, std::nullopt, std::array<NVVM::MMATypes, 2>{ptx, ptx},
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

  void lastRows() {
    Value perRow = ceilDiv(d.pieces, kLastRowWarps);
    Value grid = mul(mul(mul(d.batch, s.hq), s.mTiles), perRow);
    buildLaunch(
        b, grid, 32 * kLastRowWarps, {}, "unisparse_slash_last_rows",
        [&](ImplicitLocOpBuilder &, Value tid, Value bid, ValueRange) {
          Value warp = div(tid, 32), lane = rem(tid, 32);
          Value quad = div(lane, 4), ql = rem(lane, 4);
          Value rest = div(bid, perRow);
          Value mt = rem(rest, s.mTiles), bh = div(rest, s.mTiles);
          Value head = rem(bh, s.hq), bi = div(bh, s.hq);
          Value kv = div(head, s.G);
          Value piece = add(mul(rem(bid, perRow), kLastRowWarps), warp);
          ifThen(ult(piece, d.pieces), [&] {
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
            SmallVector<Value> init = {negInf(), negInf(), f32(0.0f),
                                       f32(0.0f)};
            SmallVector<Value> st = forLoop(
                idx(0), ceilDiv(count, 8), idx(1), init,
                [&](Value nt, ValueRange a) -> SmallVector<Value> {
                  Value j0 = add(first, mul(nt, 8));
                  Value key = add(j0, quad);
                  SmallVector<Value> acc =
                      mmaKeys(aRegs, bi, kv, key, ult(key, d.n), ql);
                  return tileStep(
                      a, acc, j0, ql,
                      [&](int64_t h, Value j) {
                        return andI(valid[h], ule(j, query[h]));
                      },
                      /*propagate=*/false,
                      [&](int64_t h, Value j, Value x) {
                        Value rowBase = mul(lastRow(bi, head, r[h]), d.n);
                        ifThen(andI(inRows[h], ult(j, d.n)),
                               [&] { store(x, d.logits, add(rowBase, j)); });
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

  void rowStats() {
    Value items = mul(mul(d.batch, s.hq), s.M);
    elementwise(items, "unisparse_slash_row_stats", [&](Value row) {
      Value base = mul(row, d.pieces);
      SmallVector<Value> st =
          forLoop(idx(0), d.pieces, idx(1), {negInf(), f32(0.0f)},
                  [&](Value p, ValueRange a) -> SmallVector<Value> {
                    auto [m, l] =
                        merge(a[0], a[1], load(d.partMax, {add(base, p)}),
                              load(d.partSum, {add(base, p)}),
                              /*propagate=*/false);
                    return {m, l};
                  });
      store(st[0], d.rowMax, {row});
      store(st[1], d.rowSum, {row});
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
                          Value x = load(d.logits, {add(mul(row, d.n), j)});
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
          // The thread's best of e = tid, tid + threads, ...
          auto scan = [&]() {
            return forLoop(tid, d.evLen, idx(kOffsetThreads),
                           {negInf(), i32(-1)},
                           [&](Value e, ValueRange a) -> SmallVector<Value> {
                             Value v = load(d.evidence, {add(base, e)});
                             Value eI = toI32(e);
                             Value w = wins(v, eI, a[0], a[1]);
                             return {select(w, v, a[0]), select(w, eI, a[1])};
                           });
          };
          forLoop(
              idx(0), idx(s.nOffsets), idx(1), scan(),
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
                // The winner's owner marks it taken and rescans.
                Value we = load(bufs[2], {idx(0)});
                Value mine = andI(
                    icmp(arith::CmpIPredicate::sge, we, i32(0)),
                    icmp(arith::CmpIPredicate::eq,
                         arith::RemUIOp::create(b, we, i32(kOffsetThreads)),
                         toI32(tid)));
                auto next =
                    scf::IfOp::create(b, TypeRange{bv.getType(), i32Type}, mine,
                                      /*withElseRegion=*/true);
                {
                  OpBuilder::InsertionGuard guard(b);
                  b.setInsertionPointToStart(&next.getThenRegion().front());
                  Value at = add(base, arith::IndexCastUIOp::create(
                                           b, b.getIndexType(), we));
                  store(negInf(), d.evidence, {at});
                  scf::YieldOp::create(b, scan());
                  b.setInsertionPointToStart(&next.getElseRegion().front());
                  scf::YieldOp::create(b, st);
                }
                return SmallVector<Value>(next.getResults());
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

  /// x = scale q[h, i] . k[kv, j] (f32 products and sums, 8 at a time:
  /// 16-byte loads where the host found q's and k's rows 16-byte aligned,
  /// else element loads).
  Value dotLogit(Value bi, Value head, Value kv, Value i, Value j) {
    auto eltVec = VectorType::get({8}, s.element);
    auto f32Vec = VectorType::get({8}, b.getF32Type());
    Value zero = arith::ConstantOp::create(
        b, f32Vec, DenseElementsAttr::get(f32Vec, b.getF32FloatAttr(0.0f)));
    auto sums = [&](llvm::MaybeAlign alignment) {
      auto loadF32 = [&](Value src, ValueRange at) -> Value {
        Value x = vector::LoadOp::create(b, eltVec, src, at,
                                         /*nontemporal=*/false, alignment);
        return arith::ExtFOp::create(b, f32Vec, x);
      };
      return forLoop(idx(0), idx(s.headDim), idx(8), {zero},
                     [&](Value dd, ValueRange a) -> SmallVector<Value> {
                       Value qv = loadF32(d.q, {bi, head, i, dd});
                       Value kvv = loadF32(d.k, {bi, kv, j, dd});
                       return {math::FmaOp::create(b, qv, kvv, a[0])};
                     })[0];
    };
    auto branch = scf::IfOp::create(b, f32Vec, d.aligned,
                                    /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&branch.getThenRegion().front());
      scf::YieldOp::create(b, sums(llvm::Align(16)));
      b.setInsertionPointToStart(&branch.getElseRegion().front());
      scf::YieldOp::create(b, sums(llvm::MaybeAlign()));
    }
    Value acc = branch.getResult(0);
    SmallVector<Value> parts;
    for (int64_t e = 0; e < 8; ++e)
      parts.push_back(vector::ExtractOp::create(b, acc, e));
    while (parts.size() > 1) {
      SmallVector<Value> next;
      for (size_t e = 0; e + 1 < parts.size(); e += 2)
        next.push_back(fadd(parts[e], parts[e + 1]));
      parts = std::move(next);
    }
    return fmul(parts[0], f32(s.scale));
  }

  void probeRows() {
    SmallVector<MemRefType> wg = {workgroupMemRef({16}, b.getF32Type())};
    buildLaunch(
        b, mul(mul(d.batch, s.hg), d.nb), 32, wg, "unisparse_slash_probe",
        [&](ImplicitLocOpBuilder &, Value lane, Value bid, ValueRange bufs) {
          Value I = rem(bid, d.nb), bg = div(bid, d.nb);
          Value g = rem(bg, s.hg), bi = div(bg, s.hg);
          Value quad = div(lane, 4), ql = rem(lane, 4);
          // The probe rows inside the sequence, and each one's weight.
          Value nValid =
              forLoop(idx(0), idx(s.rows), idx(1), {idx(0)},
                      [&](Value t, ValueRange a) -> SmallVector<Value> {
                        return {add(a[0], select(ult(probeRow(I, t), d.n),
                                                 idx(1), idx(0)))};
                      })[0];
          Value weight = fdiv(f32(1.0f), fmul(toF32(maxU(nValid, idx(1))),
                                              f32(static_cast<float>(s.ch))));
          // Forced keys: [0, sinkEnd) and [lo, hiEnd) (up to the row).
          Value lo = select(ule(idx(s.local), I),
                            mul(sub(I, idx(s.local)), s.block), idx(0));
          Value sinkEnd = idx(0);
          if (s.sink)
            sinkEnd = select(ult(idx(0), lo), idx(s.block), idx(0));
          Value hiEnd = minU(mul(add(I, 1), s.block), d.n);

          // The result row accumulates E first.
          forLoop(lane, d.nb, idx(32), {},
                  [&](Value J, ValueRange) -> SmallVector<Value> {
                    store(f32(0.0f), d.out, {bi, g, I, J});
                    return {};
                  });
          gpu::BarrierOp::create(b);
          forLoop(idx(0), idx(s.ch), idx(1), {},
                  [&](Value hh, ValueRange) -> SmallVector<Value> {
                    Value head = add(mul(g, s.ch), hh);
                    forLoop(idx(0), idx(s.probeTiles), idx(1), {},
                            [&](Value mt, ValueRange) -> SmallVector<Value> {
                              probeTile(bi, g, I, head, mt, lane, quad, ql, lo,
                                        sinkEnd, hiEnd, weight, bufs[0]);
                              return {};
                            });
                    return {};
                  });
          combine(bi, g, I, lane);
        });
  }

  /// Probe rows 16 mt .. 16 mt + 15 of head `head`: the forced keys'
  /// log-sum-exp on tensor cores, then the candidates into the result row.
  void probeTile(Value bi, Value g, Value I, Value head, Value mt, Value lane,
                 Value quad, Value ql, Value lo, Value sinkEnd, Value hiEnd,
                 Value weight, Value lseBuf) {
    Value kv = div(head, s.G);
    Value t[2], valid[2], query[2];
    for (int64_t h = 0; h < 2; ++h) {
      t[h] = add(add(mul(mt, 16), quad), 8 * h);
      Value i = probeRow(I, t[h]);
      valid[h] = andI(ult(t[h], s.rows), ult(i, d.n));
      query[h] = select(valid[h], i, idx(0));
    }
    SmallVector<Value> aRegs = queryFragments(bi, head, query, valid, ql);
    SmallVector<Value> st = {negInf(), negInf(), f32(0.0f), f32(0.0f)};
    for (auto [start, end] :
         {std::pair(idx(0), sinkEnd), std::pair(lo, hiEnd)}) {
      Value begin = start, stop = end;
      st = forLoop(idx(0), ceilDiv(sub(stop, begin), 8), idx(1), st,
                   [&](Value nt, ValueRange a) -> SmallVector<Value> {
                     Value j0 = add(begin, mul(nt, 8));
                     Value key = add(j0, quad);
                     SmallVector<Value> acc =
                         mmaKeys(aRegs, bi, kv, key, ult(key, stop), ql);
                     return tileStep(
                         a, acc, j0, ql,
                         [&](int64_t h, Value j) {
                           return andI(valid[h],
                                       andI(ult(j, stop), ule(j, query[h])));
                         },
                         /*propagate=*/true);
                   });
    }
    for (int64_t h = 0; h < 2; ++h) {
      Value m, l;
      std::tie(m, l) = quadMerge(st[h], st[2 + h], /*propagate=*/true);
      Value lse = fadd(m, math::LogOp::create(b, l));
      ifThen(eq(ql, 0), [&] { store(lse, lseBuf, {add(quad, 8 * h)}); });
    }
    gpu::BarrierOp::create(b);
    forLoop(idx(0), idx(16), idx(1), {},
            [&](Value tl, ValueRange) -> SmallVector<Value> {
              Value row = add(mul(mt, 16), tl);
              Value i = probeRow(I, row);
              ifThen(andI(ult(row, s.rows), ult(i, d.n)), [&] {
                candidates(bi, g, I, head, kv, i, load(lseBuf, {tl}), lane, lo,
                           sinkEnd, weight);
              });
              return {};
            });
    gpu::BarrierOp::create(b);
  }

  /// The candidates of probe row `i`: lane c of each chunk of 32 takes
  /// candidate (offset c / (2w + 1), e = c mod (2w + 1)); lane 0 then adds
  /// the taken ones into the result row in order.
  void candidates(Value bi, Value g, Value I, Value head, Value kv, Value i,
                  Value lse, Value lane, Value lo, Value sinkEnd,
                  Value weight) {
    int64_t per = 2 * s.width + 1, total = s.candidates();
    Value offBase = mul(add(mul(bi, s.hg), g), s.nOffsets);
    Value i64i = toI64(i), w64 = i64c(s.width);
    forLoop(
        idx(0), idx(total), idx(32), {},
        [&](Value c0, ValueRange) -> SmallVector<Value> {
          Value c = add(c0, lane);
          Value inC = ult(c, total);
          Value kk = select(inC, div(c, per), idx(0));
          Value e = toI64(rem(c, per));
          Value off = load(d.offsets, {add(offBase, kk)});
          Value has = andI(inC, icmp(arith::CmpIPredicate::sge, off, i64c(0)));
          Value j64 = arith::SubIOp::create(
              b,
              arith::AddIOp::create(b, arith::SubIOp::create(b, i64i, off), e),
              w64);
          Value inRange = andI(icmp(arith::CmpIPredicate::sge, j64, i64c(0)),
                               icmp(arith::CmpIPredicate::sle, j64, i64i));
          Value forced =
              orI(icmp(arith::CmpIPredicate::slt, j64, toI64(sinkEnd)),
                  icmp(arith::CmpIPredicate::sge, j64, toI64(lo)));
          // The width rule: a key within `width` of an earlier offset's.
          Value dup = forLoop(
              idx(0), kk, idx(1), {arith::ConstantIntOp::create(b, 0, 1)},
              [&](Value k2, ValueRange a) -> SmallVector<Value> {
                Value d2 = load(d.offsets, {add(offBase, k2)});
                Value gap = math::AbsIOp::create(
                    b, arith::SubIOp::create(
                           b, j64, arith::SubIOp::create(b, i64i, d2)));
                Value near = andI(icmp(arith::CmpIPredicate::sge, d2, i64c(0)),
                                  icmp(arith::CmpIPredicate::sle, gap, w64));
                return {orI(a[0], near)};
              })[0];
          Value take = andI(andI(has, inRange), andI(notI(forced), notI(dup)));
          Value j = arith::IndexCastOp::create(b, b.getIndexType(),
                                               select(take, j64, i64c(0)));
          Value contribution = ifValue(
              take,
              [&] {
                Value x = dotLogit(bi, head, kv, i, j);
                return fmul(exp(fsub(x, lse)), weight);
              },
              f32(0.0f));
          Value blockJ = toI32(div(j, s.block));
          Value takeI = arith::ExtUIOp::create(b, b.getI32Type(), take);
          forLoop(idx(0), idx(32), idx(1), {},
                  [&](Value src, ValueRange) -> SmallVector<Value> {
                    Value tb = shuffleIdx(takeI, src);
                    Value jb = shuffleIdx(blockJ, src);
                    Value wb = shuffleIdx(contribution, src);
                    ifThen(andI(eq(lane, 0),
                                icmp(arith::CmpIPredicate::ne, tb, i32(0))),
                           [&] {
                             SmallVector<Value> at = {
                                 bi, g, I,
                                 arith::IndexCastUIOp::create(
                                     b, b.getIndexType(), jb)};
                             store(fadd(load(d.out, at), wb), d.out, at);
                           });
                    return {};
                  });
          return {};
        });
  }

  /// The combination of row I in place: max(s / tot, E * (f / tot)).
  void combine(Value bi, Value g, Value I, Value lane) {
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
              Value e = load(d.out, at);
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

/// slash_refine in buffer form (16-bit q and k) -> the six launches.
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
    d.aligned = kb.andI(rowsAligned(b, d.q, 16), rowsAligned(b, d.k, 16));
    auto flat = [&](Type type, Value size) {
      return memref::AllocOp::create(
          b, MemRefType::get({ShapedType::kDynamic}, type), ValueRange{size});
    };
    Type f32 = b.getF32Type();
    Value rows = kb.mul(kb.mul(d.batch, s.hq), s.M);
    Value groups = kb.mul(d.batch, s.hg);
    d.logits = flat(f32, kb.mul(rows, d.n));
    d.partMax = flat(f32, kb.mul(rows, d.pieces));
    d.partSum = flat(f32, kb.mul(rows, d.pieces));
    d.rowMax = flat(f32, rows);
    d.rowSum = flat(f32, rows);
    d.vertical = flat(f32, kb.mul(groups, d.n));
    d.evidence = flat(f32, kb.mul(groups, d.evLen));
    d.offsets = flat(b.getI64Type(), kb.mul(groups, s.nOffsets));

    RefineKernels kernels(b, s, d);
    kernels.lastRows();
    kernels.rowStats();
    kernels.vertical();
    kernels.slash();
    kernels.topOffsets();
    kernels.probeRows();
    for (Value buffer : {d.logits, d.partMax, d.partSum, d.rowMax, d.rowSum,
                         d.vertical, d.evidence, d.offsets})
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
