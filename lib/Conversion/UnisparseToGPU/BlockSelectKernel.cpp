//===- BlockSelectKernel.cpp - block_select as a GPU kernel ---------------===//
//
// unisparse.block_select on tensors becomes one CTA per (batch, head group,
// query block) row, with the semantics of the CPU lowering (Layout.cpp) bit
// for bit on the same scores:
//
//   markRow       flags[J] = 1 for the forced blocks (sink, diagonal, local;
//                 every visible block when tau >= 1); sort keys for the free
//                 visible blocks: (~order(score), J) as one u64, so that an
//                 ascending sort is descending score, ties by ascending J,
//                 NaN after every number; padding keys are all ones;
//   sortKeys      bitonic sort of the next power of two at or above the
//                 visible count (at least a chunk of kChunk keys), in
//                 workgroup memory (dynamic: 8 bytes per key): every pass
//                 whose partners lie within a chunk runs in a warp's
//                 registers (lane l holds keys l, l + 32, ...: partners
//                 under 32 apart are a shuffle away, the others in the
//                 same thread), so a chunk is sorted in one load and store
//                 and only passes over longer distances go through
//                 workgroup memory with a barrier each;
//   topP          thread 0: the row total over the visible blocks in
//                 ascending J and the forced mass in ascending J (f32, the
//                 CPU's order), then the sorted blocks in order while the
//                 kept mass is below tau * total (or fewer than min_blocks
//                 are kept, or the total is NaN), below max_blocks (none
//                 for a NaN total) and blocks remain: the number taken;
//   flagTaken     flags[J] = 1 for the taken prefix;
//   compact       the flags as ascending indices: per chunk of the CTA's
//                 threads a workgroup prefix sum (warp shuffles, then the
//                 warp totals), padding with -1 and the count.
//
// The sums are sequential on purpose: a parallel reduction would round
// differently from the CPU path, and a block at the top-p boundary could
// flip. They cost O(visible blocks) dependent adds per row, spread over
// many rows in flight.
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

namespace {
/// Sort keys per warp-register chunk: kKeysPerLane per lane.
constexpr int64_t kKeysPerLane = 8;
constexpr int64_t kChunk = 32 * kKeysPerLane;

/// The selection attributes of one op.
struct SelectParams {
  int64_t threads;
  double tau;
  int64_t localBlocks, minBlocks, maxBlocks;
  bool sink, causal;
};

class SelectKernel : KernelBuilder {
public:
  SelectKernel(ImplicitLocOpBuilder &b, const SelectParams &p, Value scores,
               Value counts, Value indices, Value groups, Value nbq, Value nbk)
      : KernelBuilder{b}, p(p), scores(scores), counts(counts),
        indices(indices), groups(groups), nbq(nbq), nbk(nbk) {}

  /// Static workgroup buffers: the broadcast scalars and the warp totals
  /// of the prefix sum.
  static SmallVector<MemRefType> workgroupTypes(MLIRContext *ctx,
                                                int64_t threads) {
    Type index = IndexType::get(ctx);
    return {workgroupMemRef({2}, index),
            workgroupMemRef({threads / 32}, index)};
  }

  /// Bytes of dynamic workgroup memory: the sort keys (the next power of
  /// two at or above nbk, at least kChunk, 8 bytes each), the row's scores
  /// and the flags (4 bytes per block each): 196,616 bytes at nbk = 8193
  /// (a million tokens in blocks of 128), under the 227 KiB a CTA may have.
  static Value dynamicBytes(KernelBuilder &kb, Value nbk) {
    return kb.add(kb.mul(keySlots(kb, nbk), 8), kb.mul(nbk, 8));
  }

  /// Sort keys for `count` blocks: the next power of two, at least kChunk.
  static Value keySlots(KernelBuilder &kb, Value count) {
    return arith::MaxUIOp::create(kb.b, nextPowerOfTwo(kb, count),
                                  kb.idx(kChunk));
  }

  void build(Value threadId, Value blockId, ValueRange workgroup) {
    tid = threadId;
    shared = workgroup[0];
    warpTotals = workgroup[1];
    Value lane = rem(tid, 32);
    // The row.
    row = rem(blockId, nbq);
    Value head = div(blockId, nbq);
    batchIdx = div(head, groups);
    group = rem(head, groups);
    nvis = p.causal ? minU(add(row, 1), nbk) : nbk;
    Value sortSize = keySlots(*this, nvis);

    // Dynamic workgroup memory: keys [nextPow2(nbk)] u64, the row's scores
    // [nbk] f32, flags [nbk] i32.
    Value raw = gpu::DynamicSharedMemoryOp::create(
        b, MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                           MemRefLayoutAttrInterface(),
                           workgroupSpace(b.getContext())));
    auto view = [&](Type element, Value byteOffset, Value count) -> Value {
      return memref::ViewOp::create(
          b,
          MemRefType::get({ShapedType::kDynamic}, element,
                          MemRefLayoutAttrInterface(),
                          workgroupSpace(b.getContext())),
          raw, byteOffset, ValueRange{count});
    };
    Value keyCount = keySlots(*this, nbk);
    Value keyBytes = mul(keyCount, 8);
    keys = view(b.getI64Type(), idx(0), keyCount);
    rowScores = view(b.getF32Type(), keyBytes, nbk);
    flags = view(b.getI32Type(), add(keyBytes, mul(nbk, 4)), nbk);

    // The row's scores, read once (coalesced) into workgroup memory.
    forLoop(tid, nbk, idx(p.threads), {}, [&](Value j, ValueRange) {
      store(load(scores, {batchIdx, group, row, j}), rowScores, {j});
      return SmallVector<Value>{};
    });
    gpu::BarrierOp::create(b);
    markRow(sortSize);
    gpu::BarrierOp::create(b);
    if (p.tau < 1.0)
      sortKeys(sortSize, lane);
    ifThen(eq(tid, 0), [&] { store(topP(), shared, {idx(0)}); });
    gpu::BarrierOp::create(b);
    Value taken = load(shared, {idx(0)});
    forLoop(tid, taken, idx(p.threads), {}, [&](Value i, ValueRange) {
      Value j = arith::IndexCastUIOp::create(
          b, b.getIndexType(),
          arith::TruncIOp::create(b, b.getI32Type(), load(keys, {i})));
      store(i32(1), flags, {j});
      return SmallVector<Value>{};
    });
    gpu::BarrierOp::create(b);
    compact(lane);
  }

private:
  const SelectParams &p;
  Value scores, counts, indices, groups, nbq, nbk;
  Value tid, shared, warpTotals, keys, rowScores, flags;
  Value row, batchIdx, group, nvis;

  /// 1 << ceil(log2(max(x, 1))).
  static Value nextPowerOfTwo(KernelBuilder &kb, Value x) {
    ImplicitLocOpBuilder &b = kb.b;
    Value x64 = arith::IndexCastUIOp::create(b, b.getI64Type(), x);
    Value one = arith::ConstantIntOp::create(b, 1, 64);
    Value lz = math::CountLeadingZerosOp::create(
        b, arith::SubIOp::create(b, x64, one));
    Value shift =
        arith::SubIOp::create(b, arith::ConstantIntOp::create(b, 64, 64), lz);
    Value pow = arith::ShLIOp::create(b, one, shift);
    Value small = arith::CmpIOp::create(b, arith::CmpIPredicate::ule, x64, one);
    return arith::IndexCastUIOp::create(
        b, b.getIndexType(), arith::SelectOp::create(b, small, one, pow));
  }

  Value scoreAt(Value j) { return load(rowScores, {j}); }

  /// The score a sort key was made from (NaN keys give a NaN).
  Value scoreOfKey(Value key) {
    Value hi = arith::TruncIOp::create(
        b, b.getI32Type(),
        arith::ShRUIOp::create(b, key,
                               arith::ConstantIntOp::create(b, 32, 64)));
    Value order = arith::XOrIOp::create(b, hi, i32(-1));
    Value positive =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, order, i32(0));
    Value bits =
        select(positive, arith::AndIOp::create(b, order, i32(INT32_MAX)),
               arith::XOrIOp::create(b, order, i32(-1)));
    return arith::BitcastOp::create(b, b.getF32Type(), bits);
  }

  /// Whether visible block j is forced (always kept).
  Value forced(Value j) {
    if (p.tau >= 1.0)
      return arith::ConstantIntOp::create(b, 1, 1);
    Value near = andI(ule(j, row), ule(row, add(j, p.localBlocks)));
    if (p.sink)
      near = orI(near, eq(j, 0));
    return near;
  }

  /// The descending-order sort key of block j: (~order(s), j), NaN last.
  Value sortKey(Value j) {
    Type i32t = b.getI32Type(), i64t = b.getI64Type();
    // +0 for -0 (they compare equal, so ties go by j as on the CPU).
    Value s = fadd(scoreAt(j), f32(0.0f));
    Value bits = arith::BitcastOp::create(b, i32t, s);
    Value negative =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, bits, i32(0));
    Value allOnes = i32(-1);
    Value order = select(negative, arith::XOrIOp::create(b, bits, allOnes),
                         arith::OrIOp::create(b, bits, i32(INT32_MIN)));
    Value desc = arith::XOrIOp::create(b, order, allOnes);
    Value isNaN = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, s, s);
    desc = select(isNaN, allOnes, desc);
    Value hi = arith::ShLIOp::create(b, arith::ExtUIOp::create(b, i64t, desc),
                                     arith::ConstantIntOp::create(b, 32, 64));
    Value lo = arith::IndexCastUIOp::create(b, i64t, j);
    return arith::OrIOp::create(b, hi, lo);
  }

  /// Flags of the forced blocks; sort keys of the free visible ones.
  void markRow(Value sortSize) {
    Value padKey = arith::ConstantIntOp::create(b, -1, 64);
    forLoop(tid, nbk, idx(p.threads), {}, [&](Value j, ValueRange) {
      Value f = andI(ult(j, nvis), forced(j));
      store(select(f, i32(1), i32(0)), flags, {j});
      return SmallVector<Value>{};
    });
    forLoop(tid, sortSize, idx(p.threads), {}, [&](Value j, ValueRange) {
      Value free =
          andI(ult(j, nvis),
               arith::XOrIOp::create(b, forced(j),
                                     arith::ConstantIntOp::create(b, 1, 1)));
      auto key = scf::IfOp::create(b, b.getI64Type(), free,
                                   /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(&key.getThenRegion().front());
        scf::YieldOp::create(b, sortKey(j));
        b.setInsertionPointToStart(&key.getElseRegion().front());
        scf::YieldOp::create(b, padKey);
      }
      store(key.getResult(0), keys, {j});
      return SmallVector<Value>{};
    });
  }

  /// Bitonic sort of keys[0, size), size a power of two >= kChunk,
  /// ascending: stage k merges runs of k (ascending where i & k == 0),
  /// pass j compares keys j apart. Stages up to kChunk run whole in the
  /// warps' registers; a later stage runs its passes over kChunk or more
  /// through workgroup memory, then the rest in registers.
  void sortKeys(Value size, Value lane) {
    Value warp = div(tid, 32);
    int64_t warps = p.threads / 32;
    Value chunks = div(size, kChunk);
    // Stages 2 .. kChunk: each chunk sorted (alternating directions).
    forLoop(warp, chunks, idx(warps), {}, [&](Value c, ValueRange) {
      SmallVector<Value> regs = loadChunk(c, lane);
      for (int64_t k = 2; k <= kChunk; k *= 2) {
        // Below kChunk the direction bit of element c * kChunk + 32 r + l
        // is that of 32 r + l; at kChunk it is the chunk's parity.
        Value chunkUp = eq(arith::AndIOp::create(b, c, idx(1)), 0);
        for (int64_t j = k / 2; j >= 1; j /= 2)
          registerPass(regs, lane, j, [&](int64_t r) -> Value {
            if (k == kChunk)
              return chunkUp;
            if (k >= 32)
              return boolConst(((32 * r) & k) == 0);
            return eq(arith::AndIOp::create(b, lane, idx(k)), 0);
          });
      }
      storeChunk(c, lane, regs);
      return SmallVector<Value>{};
    });
    gpu::BarrierOp::create(b);
    // Stages 2 kChunk .. size.
    Value log2 = log2Of(size);
    forLoop(idx(llvm::Log2_64(kChunk) + 1), add(log2, 1), idx(1), {},
            [&](Value stage, ValueRange) {
              Value k = arith::ShLIOp::create(b, idx(1), stage);
              // Passes j = k / 2 .. kChunk in workgroup memory.
              forLoop(idx(1), sub(stage, idx(llvm::Log2_64(kChunk) - 1)),
                      idx(1), {}, [&](Value pass, ValueRange) {
                        Value jLog = sub(stage, pass);
                        sharedPass(size, k, jLog);
                        return SmallVector<Value>{};
                      });
              // Passes kChunk / 2 .. 1 in registers.
              forLoop(warp, chunks, idx(warps), {}, [&](Value c, ValueRange) {
                Value up = eq(arith::AndIOp::create(b, mul(c, kChunk), k), 0);
                SmallVector<Value> regs = loadChunk(c, lane);
                for (int64_t j = kChunk / 2; j >= 1; j /= 2)
                  registerPass(regs, lane, j, [&](int64_t) { return up; });
                storeChunk(c, lane, regs);
                return SmallVector<Value>{};
              });
              gpu::BarrierOp::create(b);
              return SmallVector<Value>{};
            });
  }

  Value boolConst(bool v) { return arith::ConstantIntOp::create(b, v, 1); }

  /// log2 of a power of two.
  Value log2Of(Value pow2) {
    Value x64 = arith::IndexCastUIOp::create(b, b.getI64Type(), pow2);
    return arith::IndexCastUIOp::create(
        b, b.getIndexType(),
        arith::SubIOp::create(b, arith::ConstantIntOp::create(b, 63, 64),
                              math::CountLeadingZerosOp::create(b, x64)));
  }

  /// Chunk c's keys in the lane's registers: r -> key c * kChunk + 32 r + l.
  SmallVector<Value> loadChunk(Value c, Value lane) {
    Value base = add(mul(c, kChunk), lane);
    SmallVector<Value> regs;
    for (int64_t r = 0; r < kKeysPerLane; ++r)
      regs.push_back(load(keys, {add(base, 32 * r)}));
    return regs;
  }
  void storeChunk(Value c, Value lane, ArrayRef<Value> regs) {
    Value base = add(mul(c, kChunk), lane);
    for (int64_t r = 0; r < kKeysPerLane; ++r)
      store(regs[r], keys, {add(base, 32 * r)});
  }

  /// One compare-exchange pass at distance j (< kChunk) over a chunk in
  /// registers; `ascending(r)` is whether register r's element sorts
  /// ascending in this stage (an i1).
  void registerPass(SmallVector<Value> &regs, Value lane, int64_t j,
                    function_ref<Value(int64_t r)> ascending) {
    auto minMax = [&](Value a, Value c) {
      Value less = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, a, c);
      return std::make_pair(select(less, a, c), select(less, c, a));
    };
    if (j >= 32) {
      // Partners in the same thread: registers r and r + j / 32.
      int64_t step = j / 32;
      for (int64_t r = 0; r < kKeysPerLane; ++r) {
        if (r & step)
          continue;
        auto [lo, hi] = minMax(regs[r], regs[r + step]);
        Value up = ascending(r);
        regs[r] = select(up, lo, hi);
        regs[r + step] = select(up, hi, lo);
      }
      return;
    }
    // Partners j lanes apart: the lower lane keeps the min when ascending.
    Value lower = eq(arith::AndIOp::create(b, lane, idx(j)), 0);
    for (int64_t r = 0; r < kKeysPerLane; ++r) {
      Value other = shuffleXor64(regs[r], static_cast<int32_t>(j));
      auto [lo, hi] = minMax(regs[r], other);
      Value keepMin = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lower,
                                            ascending(r));
      regs[r] = select(keepMin, lo, hi);
    }
  }

  /// An i64 from lane `lane ^ mask` (two 32-bit shuffles).
  Value shuffleXor64(Value x, int32_t mask) {
    Type i32t = b.getI32Type(), i64t = b.getI64Type();
    Value c32 = arith::ConstantIntOp::create(b, 32, 64);
    Value lo = arith::TruncIOp::create(b, i32t, x);
    Value hi =
        arith::TruncIOp::create(b, i32t, arith::ShRUIOp::create(b, x, c32));
    Value lo2 = gpu::ShuffleOp::create(b, lo, mask, 32, gpu::ShuffleMode::XOR)
                    .getShuffleResult();
    Value hi2 = gpu::ShuffleOp::create(b, hi, mask, 32, gpu::ShuffleMode::XOR)
                    .getShuffleResult();
    return arith::OrIOp::create(
        b, arith::ShLIOp::create(b, arith::ExtUIOp::create(b, i64t, hi2), c32),
        arith::ExtUIOp::create(b, i64t, lo2));
  }

  /// One compare-exchange pass at distance 2^jLog (>= kChunk) of stage k
  /// through workgroup memory: pair p compares i = p with a 0 bit inserted
  /// at jLog and i + j; a barrier after.
  void sharedPass(Value size, Value k, Value jLog) {
    Value j = arith::ShLIOp::create(b, idx(1), jLog);
    Value lowMask = sub(j, idx(1));
    forLoop(tid, div(size, 2), idx(p.threads), {}, [&](Value pr, ValueRange) {
      Value high = arith::ShLIOp::create(b, arith::ShRUIOp::create(b, pr, jLog),
                                         add(jLog, 1));
      Value i =
          arith::OrIOp::create(b, high, arith::AndIOp::create(b, pr, lowMask));
      Value l = add(i, j);
      Value a = load(keys, {i}), c = load(keys, {l});
      Value up = eq(arith::AndIOp::create(b, i, k), 0);
      Value less = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, a, c);
      Value lo = select(less, a, c), hi = select(less, c, a);
      store(select(up, lo, hi), keys, {i});
      store(select(up, hi, lo), keys, {l});
      return SmallVector<Value>{};
    });
    gpu::BarrierOp::create(b);
  }

  /// Thread 0: how many sorted blocks the top-p rule takes.
  Value topP() {
    if (p.tau >= 1.0)
      return idx(0);
    Value zeroF = f32(0.0f);
    // The visible total, ascending J: sequential adds, 8 loads ahead.
    constexpr int64_t kUnroll = 8;
    Value whole = mul(div(nvis, kUnroll), kUnroll);
    Value total = forLoop(idx(0), whole, idx(kUnroll), {zeroF},
                          [&](Value j, ValueRange a) -> SmallVector<Value> {
                            SmallVector<Value> v;
                            for (int64_t i = 0; i < kUnroll; ++i)
                              v.push_back(scoreAt(add(j, i)));
                            Value t = a[0];
                            for (Value x : v)
                              t = fadd(t, x);
                            return {t};
                          })[0];
    total = forLoop(whole, nvis, idx(1), {total},
                    [&](Value j, ValueRange a) -> SmallVector<Value> {
                      return {fadd(a[0], scoreAt(j))};
                    })[0];
    // The forced mass in ascending J: the sink (when before the local
    // window), then the window [max(0, I - local), I] (all visible: I <
    // nvis when causal, and the diagonal is a column otherwise).
    Value lo = arith::MaxSIOp::create(
        b, arith::SubIOp::create(b, row, idx(p.localBlocks)), idx(0));
    Value hi = arith::MinUIOp::create(b, row, sub(nvis, idx(1)));
    Value kept = zeroF, count = idx(0);
    if (p.sink) {
      Value sinkFirst = ult(idx(0), lo);
      kept = select(sinkFirst, scoreAt(idx(0)), zeroF);
      count = select(sinkFirst, idx(1), idx(0));
    }
    SmallVector<Value> forced =
        forLoop(lo, add(hi, 1), idx(1), {kept, count},
                [&](Value j, ValueRange a) -> SmallVector<Value> {
                  return {fadd(a[0], scoreAt(j)), add(a[1], 1)};
                });
    Value threshold = fmul(f32(static_cast<float>(p.tau)), total);
    Value totalIsNaN =
        arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, total, total);
    // Whether the walk takes one more block with `kept`, `cnt` so far.
    auto takes = [&](Value keptSoFar, Value cnt) {
      Value need = orI(ult(cnt, idx(p.minBlocks)),
                       orI(arith::CmpFOp::create(b, arith::CmpFPredicate::OLT,
                                                 keptSoFar, threshold),
                           totalIsNaN));
      Value go = andI(need, ult(cnt, nvis));
      if (p.maxBlocks > 0)
        go = andI(go, orI(totalIsNaN, ult(cnt, idx(p.maxBlocks))));
      return go;
    };
    // The walk, 8 sorted blocks a step: their loads first, then the
    // sequential adds, each guarded by the rule (the rule stops for good
    // once it stops: the kept mass only grows).
    Value lastKey = sub(nextPowerOfTwo(*this, nbk), idx(1));
    auto loop = scf::WhileOp::create(
        b,
        TypeRange{b.getF32Type(), b.getIndexType(), b.getIndexType(),
                  b.getI1Type()},
        ValueRange{forced[0], forced[1], idx(0),
                   arith::ConstantIntOp::create(b, 1, 1)},
        [&](OpBuilder &nb, Location, ValueRange a) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          scf::ConditionOp::create(b, a[3], a);
        },
        [&](OpBuilder &nb, Location, ValueRange a) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          SmallVector<Value> v;
          for (int64_t i = 0; i < kUnroll; ++i)
            v.push_back(scoreOfKey(load(keys, {minU(add(a[2], i), lastKey)})));
          Value k = a[0], cnt = a[1], taken = a[2];
          Value go = a[3];
          for (Value x : v) {
            go = andI(go, takes(k, cnt));
            k = select(go, fadd(k, x), k);
            cnt = select(go, add(cnt, 1), cnt);
            taken = select(go, add(taken, 1), taken);
          }
          scf::YieldOp::create(b, ValueRange{k, cnt, taken, go});
        });
    return loop.getResult(2);
  }

  /// The flags as ascending indices, -1 padding, and the count.
  void compact(Value lane) {
    Value warp = div(tid, 32);
    int64_t warps = p.threads / 32;
    Value chunks = ceilDiv(nbk, p.threads);
    SmallVector<Value> done = forLoop(
        idx(0), chunks, idx(1), {idx(0)},
        [&](Value chunk, ValueRange a) -> SmallVector<Value> {
          Value j = add(mul(chunk, p.threads), tid);
          Value inside = ult(j, nbk);
          Value flag =
              select(inside, load(flags, {select(inside, j, idx(0))}), i32(0));
          // Inclusive prefix sum over the warp.
          Value incl = flag;
          for (int32_t d = 1; d < 32; d *= 2) {
            Value up =
                gpu::ShuffleOp::create(b, incl, d, 32, gpu::ShuffleMode::UP)
                    .getShuffleResult();
            incl = arith::AddIOp::create(b, incl,
                                         select(ult(lane, idx(d)), i32(0), up));
          }
          ifThen(eq(lane, 31), [&] {
            store(arith::IndexCastUIOp::create(b, b.getIndexType(), incl),
                  warpTotals, {warp});
          });
          gpu::BarrierOp::create(b);
          Value before = a[0], chunkTotal = a[0];
          for (int64_t w = 0; w < warps; ++w) {
            Value t = load(warpTotals, {idx(w)});
            before = add(before, select(ult(idx(w), warp), t, idx(0)));
            chunkTotal = add(chunkTotal, t);
          }
          Value pos = add(before, arith::IndexCastUIOp::create(
                                      b, b.getIndexType(),
                                      arith::SubIOp::create(b, incl, flag)));
          ifThen(andI(inside, eq(flag, i32(1))), [&] {
            store(arith::IndexCastUIOp::create(b, b.getI32Type(), j), indices,
                  {batchIdx, group, row, pos});
          });
          // The totals are read by every thread before the next chunk
          // writes them.
          gpu::BarrierOp::create(b);
          return {chunkTotal};
        });
    Value count = done[0];
    forLoop(add(count, tid), nbk, idx(p.threads), {}, [&](Value i, ValueRange) {
      store(i32(-1), indices, {batchIdx, group, row, i});
      return SmallVector<Value>{};
    });
    ifThen(eq(tid, 0), [&] {
      store(arith::IndexCastUIOp::create(b, b.getI32Type(), count), counts,
            {batchIdx, group, row});
    });
  }
};

struct BlockSelectToGPU : OpRewritePattern<BlockSelectOp> {
  BlockSelectToGPU(MLIRContext *ctx, int64_t threads)
      : OpRewritePattern(ctx), threads(threads) {}

  LogicalResult matchAndRewrite(BlockSelectOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "tensor form");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KernelBuilder kb{b};
    SelectParams p;
    p.threads = threads;
    p.tau = op.getTau().convertToDouble();
    p.localBlocks = static_cast<int64_t>(op.getLocalBlocks());
    p.minBlocks = static_cast<int64_t>(op.getMinBlocks());
    p.maxBlocks = static_cast<int64_t>(op.getMaxBlocks());
    p.sink = op.getSink();
    p.causal = op.getCausal();
    Value scores = op.getScores();
    Value counts = op.getCountsInit(), indices = op.getIndicesInit();
    Value batch = memref::DimOp::create(b, scores, 0);
    Value groups = memref::DimOp::create(b, scores, 1);
    Value nbq = memref::DimOp::create(b, scores, 2);
    Value nbk = memref::DimOp::create(b, scores, 3);
    Value rows = kb.mul(kb.mul(batch, groups), nbq);
    Value bytes = arith::IndexCastUIOp::create(
        b, b.getI32Type(), SelectKernel::dynamicBytes(kb, nbk));
    buildLaunch(
        b, rows, threads, SelectKernel::workgroupTypes(b.getContext(), threads),
        "unisparse_block_select",
        [&](ImplicitLocOpBuilder &kbld, Value tid, Value bid, ValueRange wg) {
          SelectKernel(kbld, p, scores, counts, indices, groups, nbq, nbk)
              .build(tid, bid, wg);
        },
        bytes);
    rewriter.eraseOp(op);
    return success();
  }

  int64_t threads;
};
} // namespace

void mlir::unisparse::populateBlockSelectToGPUPatterns(
    RewritePatternSet &patterns, int64_t threads) {
  patterns.add<BlockSelectToGPU>(patterns.getContext(), threads);
}
