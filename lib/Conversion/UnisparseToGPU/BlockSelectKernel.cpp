//===- BlockSelectKernel.cpp - block_select as a GPU kernel ---------------===//
//
// unisparse.block_select on buffers becomes one warp per (batch, head group,
// query block) row, a CTA of one warp (every index comes from the block id,
// so ptxas sees the shuffles and ballots as warp-uniform), with the
// semantics of the CPU lowering (BlockSelect.cpp) bit for bit on the same
// scores:
//
//   loadRow     the row's visible scores into workgroup memory (coalesced);
//   sortRow     sort keys of the free visible blocks (neither sink nor
//               local window): order(score) as a u32, descending score
//               first, NaN last, padding all ones; a bitonic sort of the
//               next power of two at or above the visible count (at least
//               a chunk of 256): chunks of 256 in the warp's registers (8
//               keys per lane, partners under 32 apart a shuffle away, the
//               others in the same thread), passes over 256 or more apart
//               through workgroup memory; then every key decoded back to
//               its score in place;
//   topP        every lane the same sequential f32 sums (the CPU's order;
//               the same instruction for all lanes, so no lane waits for
//               another): the row total and the forced mass in ascending
//               J, then the sorted scores while the kept mass stays below
//               tau * total, 8 a step with the adds chained: one test a
//               step when no free score is negative (the kept mass then
//               never decreases; block_score's scores), else a test per
//               position off the chain; min_blocks, max_blocks and a NaN
//               total are a closed form around that count (the rule is
//               monotone: once it stops it stops for good);
//   compact     the taken blocks are those scoring above the last taken
//               score v*, and the first m in ascending J of those scoring
//               exactly v* (m = taken - the count above v*, a binary search
//               in the sorted scores): per 32 blocks a ballot of "taken" and
//               one of "equals v*", their prefix counts by popc, the
//               indices stored ascending, -1 padding and the count.
//
// Sorting scores without their indices is enough: equal scores add the same
// sums in any order, so the walk's count does not depend on how ties were
// sorted, and the ascending-J tie rule is applied in compact.
//
// The sums are sequential on purpose: a parallel reduction would round
// differently from the CPU path, and a block at the top-p boundary could
// flip.
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

namespace {
/// Sort keys per warp-register chunk: kKeysPerLane per lane.
constexpr int64_t kKeysPerLane = 8;
constexpr int64_t kChunk = 32 * kKeysPerLane;
/// Sorted scores summed per step of the top-p walk (two 16-byte loads).
constexpr int64_t kWalkStep = 8;

/// The selection attributes of one op.
struct SelectParams {
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

  /// Bytes of dynamic workgroup memory: the sort keys (the next power of
  /// two at or above nbk, at least kChunk, 4 bytes each) and the row's
  /// scores (4 bytes per block): 98,308 bytes at nbk = 8193 (a million
  /// tokens in blocks of 128), under the 227 KiB a CTA may have.
  static Value dynamicBytes(KernelBuilder &kb, Value nbk) {
    return kb.add(kb.mul(keySlots(kb, nbk), 4), kb.mul(nbk, 4));
  }

  /// Sort keys for `count` blocks: the next power of two, at least kChunk.
  static Value keySlots(KernelBuilder &kb, Value count) {
    return arith::MaxUIOp::create(kb.b, nextPowerOfTwo(kb, count),
                                  kb.idx(kChunk));
  }

  void build(Value lane, Value blockId) {
    this->lane = lane;
    row = rem(blockId, nbq);
    Value head = div(blockId, nbq);
    batchIdx = div(head, groups);
    group = rem(head, groups);
    nvis = p.causal ? minU(add(row, 1), nbk) : nbk;

    // Dynamic workgroup memory: keys [keySlots(nbk)] (u32, then the
    // sorted scores in place), the row's scores [nbk] f32.
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
    keyCount = keySlots(*this, nbk);
    keys = view(b.getI32Type(), idx(0), keyCount);
    sorted = view(b.getF32Type(), idx(0), keyCount);
    rowScores = view(b.getF32Type(), mul(keyCount, 4), nbk);

    // The row's visible scores, read once (coalesced).
    forLoop(lane, nvis, idx(32), {}, [&](Value j, ValueRange) {
      store(load(scores, {batchIdx, group, row, j}), rowScores, {j});
      return SmallVector<Value>{};
    });
    gpu::BarrierOp::create(b);

    Value taken = idx(0), vStar = f32(0.0f), takeAllFree = boolConst(true);
    if (p.tau < 1.0) {
      Value sortSize = keySlots(*this, nvis);
      sortKeys(sortSize);
      // Every key back to its score, in place.
      forLoop(lane, sortSize, idx(32), {}, [&](Value i, ValueRange) {
        store(scoreOfKey(load(keys, {i})), sorted, {i});
        return SmallVector<Value>{};
      });
      gpu::BarrierOp::create(b);
      std::tie(taken, takeAllFree) = topP();
      Value last = sub(arith::MaxUIOp::create(b, taken, idx(1)), idx(1));
      vStar = load(sorted, {last});
    }
    compact(taken, vStar, takeAllFree);
  }

private:
  const SelectParams &p;
  Value scores, counts, indices, groups, nbq, nbk;
  Value lane, keyCount, keys, sorted, rowScores;
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

  Value boolConst(bool v) { return arith::ConstantIntOp::create(b, v, 1); }
  Value notI(Value x) { return arith::XOrIOp::create(b, x, boolConst(true)); }
  Value toIndex(Value i32v) {
    return arith::IndexCastUIOp::create(b, b.getIndexType(), i32v);
  }

  /// Whether visible block j is forced (always kept).
  Value forced(Value j) {
    if (p.tau >= 1.0)
      return boolConst(true);
    Value near = andI(ule(j, row), ule(row, add(j, p.localBlocks)));
    if (p.sink)
      near = orI(near, eq(j, 0));
    return near;
  }

  /// The ascending sort key of score s: descending s (+0 for -0, so that
  /// they tie as on the CPU), NaN after every number.
  Value sortKey(Value score) {
    Value s = fadd(score, f32(0.0f));
    Value bits = arith::BitcastOp::create(b, b.getI32Type(), s);
    Value negative =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, bits, i32(0));
    Value order = select(negative, arith::XOrIOp::create(b, bits, i32(-1)),
                         arith::OrIOp::create(b, bits, i32(INT32_MIN)));
    Value desc = arith::XOrIOp::create(b, order, i32(-1));
    Value isNaN = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, s, s);
    return select(isNaN, i32(-1), desc);
  }

  /// The score a sort key was made from (-0 comes back as +0; padding and
  /// NaN keys give a NaN).
  Value scoreOfKey(Value key) {
    Value order = arith::XOrIOp::create(b, key, i32(-1));
    Value positive =
        arith::CmpIOp::create(b, arith::CmpIPredicate::slt, order, i32(0));
    Value bits =
        select(positive, arith::AndIOp::create(b, order, i32(INT32_MAX)),
               arith::XOrIOp::create(b, order, i32(-1)));
    return arith::BitcastOp::create(b, b.getF32Type(), bits);
  }

  /// The sort key of block j: a free visible block's, else padding.
  Value keyOfBlock(Value j) {
    Value free = andI(ult(j, nvis), notI(forced(j)));
    auto key = scf::IfOp::create(b, b.getI32Type(), free,
                                 /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&key.getThenRegion().front());
    scf::YieldOp::create(b, sortKey(load(rowScores, {j})));
    b.setInsertionPointToStart(&key.getElseRegion().front());
    scf::YieldOp::create(b, i32(-1));
    return key.getResult(0);
  }

  /// Bitonic sort of keys[0, size), size a power of two >= kChunk,
  /// ascending: stage k merges runs of k (ascending where i & k == 0),
  /// pass j compares keys j apart. Stages up to kChunk run whole in
  /// registers, each chunk's keys made from the scores as it is loaded;
  /// a later stage runs its passes over kChunk or more through workgroup
  /// memory, then the rest in registers.
  void sortKeys(Value size) {
    Value chunks = div(size, kChunk);
    // Stages 2 .. kChunk: each chunk sorted (alternating directions).
    forLoop(idx(0), chunks, idx(1), {}, [&](Value c, ValueRange) {
      Value base = add(mul(c, kChunk), lane);
      SmallVector<Value> regs;
      for (int64_t r = 0; r < kKeysPerLane; ++r)
        regs.push_back(keyOfBlock(add(base, 32 * r)));
      Value chunkUp = eq(arith::AndIOp::create(b, c, idx(1)), 0);
      for (int64_t k = 2; k <= kChunk; k *= 2) {
        // Below kChunk the direction bit of element c * kChunk + 32 r + l
        // is that of 32 r + l; at kChunk it is the chunk's parity.
        for (int64_t j = k / 2; j >= 1; j /= 2)
          registerPass(regs, j, [&](int64_t r) -> Value {
            if (k == kChunk)
              return chunkUp;
            if (k >= 32)
              return boolConst(((32 * r) & k) == 0);
            return eq(arith::AndIOp::create(b, lane, idx(k)), 0);
          });
      }
      storeChunk(c, regs);
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
                        sharedPass(size, k, sub(stage, pass));
                        return SmallVector<Value>{};
                      });
              // Passes kChunk / 2 .. 1 in registers.
              forLoop(idx(0), chunks, idx(1), {}, [&](Value c, ValueRange) {
                Value up = eq(arith::AndIOp::create(b, mul(c, kChunk), k), 0);
                SmallVector<Value> regs = loadChunk(c);
                for (int64_t j = kChunk / 2; j >= 1; j /= 2)
                  registerPass(regs, j, [&](int64_t) { return up; });
                storeChunk(c, regs);
                return SmallVector<Value>{};
              });
              gpu::BarrierOp::create(b);
              return SmallVector<Value>{};
            });
  }

  /// log2 of a power of two.
  Value log2Of(Value pow2) {
    Value x64 = arith::IndexCastUIOp::create(b, b.getI64Type(), pow2);
    return arith::IndexCastUIOp::create(
        b, b.getIndexType(),
        arith::SubIOp::create(b, arith::ConstantIntOp::create(b, 63, 64),
                              math::CountLeadingZerosOp::create(b, x64)));
  }

  /// Chunk c's keys in the lane's registers: r -> key c * kChunk + 32 r + l.
  SmallVector<Value> loadChunk(Value c) {
    Value base = add(mul(c, kChunk), lane);
    SmallVector<Value> regs;
    for (int64_t r = 0; r < kKeysPerLane; ++r)
      regs.push_back(load(keys, {add(base, 32 * r)}));
    return regs;
  }
  void storeChunk(Value c, ArrayRef<Value> regs) {
    Value base = add(mul(c, kChunk), lane);
    for (int64_t r = 0; r < kKeysPerLane; ++r)
      store(regs[r], keys, {add(base, 32 * r)});
  }

  std::pair<Value, Value> minMax(Value a, Value c) {
    return {arith::MinUIOp::create(b, a, c), arith::MaxUIOp::create(b, a, c)};
  }

  /// One compare-exchange pass at distance j (< kChunk) over a chunk in
  /// registers; `ascending(r)` is whether register r's element sorts
  /// ascending in this stage (an i1).
  void registerPass(SmallVector<Value> &regs, int64_t j,
                    function_ref<Value(int64_t r)> ascending) {
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
      Value other = shuffleXor(regs[r], static_cast<int32_t>(j));
      auto [lo, hi] = minMax(regs[r], other);
      Value keepMin = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, lower,
                                            ascending(r));
      regs[r] = select(keepMin, lo, hi);
    }
  }

  /// One compare-exchange pass at distance 2^jLog (>= kChunk) of stage k
  /// through workgroup memory: pair q compares i = q with a 0 bit inserted
  /// at jLog and i + j; a barrier after.
  void sharedPass(Value size, Value k, Value jLog) {
    Value j = arith::ShLIOp::create(b, idx(1), jLog);
    Value lowMask = sub(j, idx(1));
    forLoop(lane, div(size, 2), idx(32), {}, [&](Value q, ValueRange) {
      Value high = arith::ShLIOp::create(b, arith::ShRUIOp::create(b, q, jLog),
                                         add(jLog, 1));
      Value i =
          arith::OrIOp::create(b, high, arith::AndIOp::create(b, q, lowMask));
      Value l = add(i, j);
      auto [lo, hi] = minMax(load(keys, {i}), load(keys, {l}));
      Value up = eq(arith::AndIOp::create(b, i, k), 0);
      store(select(up, lo, hi), keys, {i});
      store(select(up, hi, lo), keys, {l});
      return SmallVector<Value>{};
    });
    gpu::BarrierOp::create(b);
  }

  /// `count` f32 of `buffer` from `start` (a multiple of 4) on.
  SmallVector<Value> loadVector(Value buffer, Value start, int64_t count) {
    auto type = VectorType::get({4}, b.getF32Type());
    SmallVector<Value> out;
    for (int64_t v = 0; v < count; v += 4) {
      Value vec =
          vector::LoadOp::create(b, type, buffer, ValueRange{add(start, v)},
                                 /*nontemporal=*/false, llvm::MaybeAlign(16));
      for (int64_t e = 0; e < 4; ++e)
        out.push_back(vector::ExtractOp::create(b, vec, e));
    }
    return out;
  }

  /// The top-p rule, computed alike by every lane: how many sorted free
  /// blocks it takes, and whether it takes them all (a NaN total).
  std::pair<Value, Value> topP() {
    Value zeroF = f32(0.0f);
    // The visible total, ascending J: sequential adds, 8 loaded ahead.
    Value whole = mul(div(nvis, kWalkStep), kWalkStep);
    Value total = forLoop(idx(0), whole, idx(kWalkStep), {zeroF},
                          [&](Value j, ValueRange a) -> SmallVector<Value> {
                            Value t = a[0];
                            for (Value x : loadVector(rowScores, j, kWalkStep))
                              t = fadd(t, x);
                            return {t};
                          })[0];
    total = forLoop(whole, nvis, idx(1), {total},
                    [&](Value j, ValueRange a) -> SmallVector<Value> {
                      return {fadd(a[0], load(rowScores, {j}))};
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
      kept = select(sinkFirst, load(rowScores, {idx(0)}), zeroF);
      count = select(sinkFirst, idx(1), idx(0));
    }
    SmallVector<Value> forcedMass =
        forLoop(lo, add(hi, 1), idx(1), {kept, count},
                [&](Value j, ValueRange a) -> SmallVector<Value> {
                  return {fadd(a[0], load(rowScores, {j})), add(a[1], 1)};
                });
    Value forcedCount = forcedMass[1];
    Value nfree = sub(nvis, forcedCount);
    Value threshold = fmul(f32(static_cast<float>(p.tau)), total);
    Value totalIsNaN =
        arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, total, total);

    // Blocks min_blocks still asks for beyond the forced ones.
    Value minFree = select(ult(forcedCount, idx(p.minBlocks)),
                           sub(idx(p.minBlocks), forcedCount), idx(0));
    // c0: the first sorted position where the rule stops (the kept mass
    // before it not below the threshold, and min_blocks reached), nfree if
    // none. When no free score is negative (as block_score's are) the kept
    // mass never decreases (a rounded add of x >= 0 is not below its
    // operand), so one test a step finds the step where it stops, and
    // min_blocks is a max; otherwise every position is tested.
    Value lastFree = load(sorted, {sub(maxU(nfree, idx(1)), idx(1))});
    Value monotone =
        orI(eq(nfree, 0), arith::CmpFOp::create(b, arith::CmpFPredicate::OGE,
                                                lastFree, f32(0.0f)));
    auto stop = scf::IfOp::create(b, b.getIndexType(), monotone,
                                  /*withElseRegion=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&stop.getThenRegion().front());
      Value c = monotoneStop(forcedMass[0], nfree, threshold);
      scf::YieldOp::create(b, minU(maxU(c, minFree), nfree));
      b.setInsertionPointToStart(&stop.getElseRegion().front());
      scf::YieldOp::create(
          b, testedStop(forcedMass[0], nfree, threshold, minFree));
    }
    Value c0 = stop.getResult(0);
    // max_blocks counts the forced blocks too.
    Value taken = c0;
    if (p.maxBlocks > 0)
      taken = minU(taken, select(ult(forcedCount, idx(p.maxBlocks)),
                                 sub(idx(p.maxBlocks), forcedCount), idx(0)));
    taken = minU(taken, nfree);
    return {select(totalIsNaN, nfree, taken), totalIsNaN};
  }

  /// The first sorted position (at most nfree) where the kept mass, from
  /// `kept` adding the sorted free scores in order, is not below
  /// `threshold`, when it never decreases: kWalkStep scores a step, the
  /// adds chained and one test (the mass before the step's last score),
  /// then the step where it stops resolved score by score.
  Value monotoneStop(Value kept, Value nfree, Value threshold) {
    auto walk = scf::WhileOp::create(
        b, TypeRange{b.getF32Type(), b.getIndexType()},
        ValueRange{kept, idx(0)},
        [&](OpBuilder &nb, Location, ValueRange a) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          Value i = a[1];
          // Past the free blocks the loads read padding: not used.
          SmallVector<Value> xs = loadVector(
              sorted, minU(i, sub(keyCount, idx(kWalkStep))), kWalkStep);
          Value next = a[0];
          for (int64_t e = 0; e + 1 < kWalkStep; ++e)
            next = fadd(next, xs[e]);
          Value go = andI(ule(add(i, kWalkStep), nfree),
                          arith::CmpFOp::create(b, arith::CmpFPredicate::OLT,
                                                next, threshold));
          Value whole = fadd(next, xs[kWalkStep - 1]);
          scf::ConditionOp::create(b, go,
                                   ValueRange{select(go, whole, a[0]), i});
        },
        [&](OpBuilder &nb, Location, ValueRange a) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          scf::YieldOp::create(b, ValueRange{a[0], add(a[1], kWalkStep)});
        });
    Value next = walk.getResult(0), i = walk.getResult(1);
    SmallVector<Value> xs =
        loadVector(sorted, minU(i, sub(keyCount, idx(kWalkStep))), kWalkStep);
    Value alive = boolConst(true), c = i;
    for (int64_t e = 0; e < kWalkStep; ++e) {
      alive =
          andI(alive, andI(ult(add(i, e), nfree),
                           arith::CmpFOp::create(b, arith::CmpFPredicate::OLT,
                                                 next, threshold)));
      c = select(alive, add(i, e + 1), c);
      next = fadd(next, xs[e]);
    }
    return c;
  }

  /// The same position for any scores, min_blocks included: every
  /// position's test beside the chained adds; the loop carries (kept
  /// mass, position) and goes on while the whole step is taken; its
  /// results add the last step's tests, from which the step where it
  /// stops is resolved after it.
  Value testedStop(Value kept, Value nfree, Value threshold, Value minFree) {
    SmallVector<Type> types = {b.getF32Type(), b.getIndexType()};
    types.append(kWalkStep, b.getI1Type());
    auto walk = scf::WhileOp::create(
        b, types, ValueRange{kept, idx(0)},
        [&](OpBuilder &nb, Location, ValueRange a) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          Value k = a[0], i = a[1];
          Value all = ult(i, nfree);
          SmallVector<Value> below;
          Value next = k;
          // Past the free blocks the loads read padding: not used.
          Value start = minU(i, sub(keyCount, idx(kWalkStep)));
          SmallVector<Value> xs = loadVector(sorted, start, kWalkStep);
          for (int64_t e = 0; e < kWalkStep; ++e) {
            Value ok = arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, next,
                                             threshold);
            if (p.minBlocks > 0)
              ok = orI(ok, ult(add(i, e), minFree));
            below.push_back(ok);
            all = andI(all, ok);
            next = fadd(next, xs[e]);
          }
          // The whole step is taken when every test passed and it lies
          // inside the free blocks.
          Value inside = ule(add(i, kWalkStep), nfree);
          Value go = andI(all, inside);
          SmallVector<Value> carried = {select(go, next, k), i};
          carried.append(below);
          scf::ConditionOp::create(b, go, carried);
        },
        [&](OpBuilder &nb, Location, ValueRange a) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          scf::YieldOp::create(b, ValueRange{a[0], add(a[1], kWalkStep)});
        });
    // The step it stopped in: the run of passed tests inside the free
    // blocks.
    Value i = walk.getResult(1);
    Value alive = boolConst(true), c0 = i;
    for (int64_t e = 0; e < kWalkStep; ++e) {
      alive = andI(alive, andI(walk.getResult(2 + e), ult(add(i, e), nfree)));
      c0 = select(alive, add(i, e + 1), c0);
    }
    return c0;
  }

  /// The number of sorted scores above v (sorted descending, v one of them
  /// at a position below `taken`): a binary search.
  Value countAbove(Value taken, Value v) {
    auto search = scf::WhileOp::create(
        b, TypeRange{b.getIndexType(), b.getIndexType()},
        ValueRange{idx(0),
                   sub(arith::MaxUIOp::create(b, taken, idx(1)), idx(1))},
        [&](OpBuilder &nb, Location, ValueRange a) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          scf::ConditionOp::create(b, ult(a[0], a[1]), a);
        },
        [&](OpBuilder &nb, Location, ValueRange a) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          Value mid = div(add(a[0], a[1]), 2);
          Value above = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT,
                                              load(sorted, {mid}), v);
          scf::YieldOp::create(b, ValueRange{select(above, add(mid, 1), a[0]),
                                             select(above, a[1], mid)});
        });
    return search.getResult(0);
  }

  Value ballot(Value pred) {
    return NVVM::VoteSyncOp::create(b, b.getI32Type(), i32(-1), pred,
                                    NVVM::VoteSyncKind::ballot);
  }
  Value popc(Value x) { return toIndex(math::CtPopOp::create(b, x)); }

  /// The kept blocks as ascending indices, -1 padding, and the count: the
  /// forced ones, the free ones scoring above v*, and the first m in
  /// ascending J of those scoring v* (all free ones for a NaN total).
  void compact(Value taken, Value vStar, Value takeAllFree) {
    Value m = idx(0);
    if (p.tau < 1.0)
      m = sub(taken, countAbove(taken, vStar));
    Value some = ult(idx(0), taken);
    Value below = NVVM::LaneMaskLtOp::create(b, b.getI32Type());
    SmallVector<Value> done = forLoop(
        idx(0), ceilDiv(nvis, 32), idx(1), {idx(0), idx(0)},
        [&](Value chunk, ValueRange a) -> SmallVector<Value> {
          Value j = add(mul(chunk, 32), lane);
          Value visible = ult(j, nvis);
          Value f = andI(visible, forced(j));
          Value sel = f;
          Value equalCount = idx(0);
          if (p.tau < 1.0) {
            Value s =
                fadd(load(rowScores, {select(visible, j, idx(0))}), f32(0.0f));
            Value free = andI(visible, notI(f));
            Value equal = andI(andI(free, some), feq(s, vStar));
            Value equalVotes = ballot(equal);
            equalCount = popc(equalVotes);
            Value eqRank =
                add(a[1], popc(arith::AndIOp::create(b, equalVotes, below)));
            Value above =
                arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, s, vStar);
            Value take = orI(andI(some, above), andI(equal, ult(eqRank, m)));
            sel = orI(f, andI(free, orI(take, takeAllFree)));
          }
          Value votes = ballot(sel);
          Value pos = add(a[0], popc(arith::AndIOp::create(b, votes, below)));
          ifThen(sel, [&] {
            store(arith::IndexCastUIOp::create(b, b.getI32Type(), j), indices,
                  {batchIdx, group, row, pos});
          });
          return {add(a[0], popc(votes)), add(a[1], equalCount)};
        });
    Value count = done[0];
    forLoop(add(count, lane), nbk, idx(32), {}, [&](Value i, ValueRange) {
      store(i32(-1), indices, {batchIdx, group, row, i});
      return SmallVector<Value>{};
    });
    ifThen(eq(lane, 0), [&] {
      store(arith::IndexCastUIOp::create(b, b.getI32Type(), count), counts,
            {batchIdx, group, row});
    });
  }
};

struct BlockSelectToGPU : OpRewritePattern<BlockSelectOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BlockSelectOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureBufferSemantics())
      return rewriter.notifyMatchFailure(op, "tensor form");
    ImplicitLocOpBuilder b(op.getLoc(), rewriter);
    KernelBuilder kb{b};
    SelectParams p;
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
        b, rows, /*threads=*/32, /*workgroup=*/{}, "unisparse_block_select",
        [&](ImplicitLocOpBuilder &kbld, Value lane, Value bid, ValueRange) {
          SelectKernel(kbld, p, scores, counts, indices, groups, nbq, nbk)
              .build(lane, bid);
        },
        bytes);
    rewriter.eraseOp(op);
    return success();
  }
};
} // namespace

void mlir::unisparse::populateBlockSelectToGPUPatterns(
    RewritePatternSet &patterns) {
  patterns.add<BlockSelectToGPU>(patterns.getContext());
}
