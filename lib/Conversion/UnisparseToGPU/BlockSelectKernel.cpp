//===- BlockSelectKernel.cpp - block_select as a GPU kernel ---------------===//
//
// unisparse.block_select on buffers becomes one warp per (batch, head group,
// query block) row, a CTA of one warp (every index comes from the block id,
// so ptxas sees the shuffles and ballots as warp-uniform), with the
// semantics of the CPU lowering (BlockSelect.cpp) bit for bit on the same
// scores:
//
//   loadRow     the row's visible scores into workgroup memory (coalesced),
//               zeros up to a multiple of 32;
//   sortRow     sort keys of the free visible blocks (neither sink nor
//               local window), made in i32: the score's bits with the
//               non-negative ones' reversed (ascending keys = descending
//               scores, NaN last, padding all ones). A bitonic network
//               whose comparators all ascend (each stage first compares
//               mirror positions) over the next power of two at or above
//               the visible count, at least 256: rows of up to 256, 512 or
//               1024 keys whole in the warp's registers (8, 16 or 32 keys
//               per lane); longer rows in chunks of 1024 (the odd ones
//               sorted on complemented keys, i.e. descending) merged by
//               passes 1024 or more apart through workgroup memory, the
//               rest of each stage per chunk in registers. Network position
//               l R + r is lane l's register r (lane-major), so the passes
//               on the low log2 R bits, the most frequent, stay in the
//               thread and 15 per sort shuffle. The keys go back to scores
//               as they are last stored, 16 bytes a store, position p at
//               word p + 4 (p / 32) (the padding makes the lanes' stores
//               conflict-free);
//   sums        the row total (sequential, ascending J) and the kept mass
//               (from the forced mass, the sorted scores in order) in one
//               pass of 32 a step: lanes 0-15 add the row's scores, lanes
//               16-31 the sorted ones, the same instructions, and store the
//               kept mass before each step (checkpoints);
//   topP        the first position where the kept mass is not below tau *
//               total: when no free score is negative (block_score's
//               scores) the kept mass never decreases, so the steps whose
//               checkpoint is below it are a prefix (ballots), and in the
//               last one lane e adds the step's first e scores to the
//               checkpoint (a prefix of the lanes again); otherwise every
//               position is tested, 8 a step; min_blocks, max_blocks and a
//               NaN total are a closed form around that count (the rule is
//               monotone: once it stops it stops for good);
//   compact     the taken blocks are those scoring above the last taken
//               score v*, and the first m in ascending J of those scoring
//               exactly v* (m = taken - the count above v*, a binary search
//               in the sorted scores): per 32 blocks a ballot of "taken" and
//               one of "equals v*", their prefix counts by popc, the
//               indices stored ascending, -1 padding and the count. When
//               the sorted score after v* is not v* (no tie is split), the
//               taken free blocks are those scoring v* or more: one ballot.
//
// Sorting scores without their indices is enough: equal scores add the same
// sums in any order, so the walk's count does not depend on how ties were
// sorted, and the ascending-J tie rule is applied in compact.
//
// The sums are sequential on purpose: a parallel reduction would round
// differently from the CPU path, and a block at the top-p boundary could
// flip. What bounds the kernel is instruction issue (docs/GPU.md has the
// SASS counts per phase).
//
//===----------------------------------------------------------------------===//

#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <functional>

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

namespace {
/// The register sorts: a row of at most 32 * R sort keys is sorted whole in
/// the warp's registers, R keys per lane, R the least of kKeysPerLane at or
/// above its keys / 32; longer rows in chunks of kChunk keys
/// (kKeysPerLane.back() per lane) merged through workgroup memory.
constexpr int64_t kKeysPerLane[] = {8, 16, 32};
constexpr int64_t kChunk = 32 * 32;
/// Sorted position p lives at word p + kPad * (p / 32) of workgroup memory,
/// so that the lanes' 16-byte stores of their runs (lane l holds positions
/// l R .. l R + R - 1) fall in distinct banks; a run of 32 positions
/// starting at a multiple of 32 stays contiguous and 16-byte aligned.
constexpr int64_t kPad = 4;
/// Words read past the last sort slot by the walk's last step.
constexpr int64_t kSlack = 64;
/// Scores summed per step of the pass that forms the total and the kept
/// mass (eight 16-byte loads; a checkpoint of the kept mass a step), and
/// per step of the walk that tests every position.
constexpr int64_t kSumStep = 32;
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

  /// Bytes of dynamic workgroup memory: the sort slots in their padded
  /// layout (slotWords of the next power of two at or above nbk, at least
  /// 256, 4 bytes each), the row's scores (rowWords) and the checkpoints
  /// (checkpointWords): 107,908 bytes at nbk = 8193 (a million tokens in
  /// blocks of 128), 9,088 at nbk = 1024, under the 227 KiB a CTA may have.
  static Value dynamicBytes(KernelBuilder &kb, Value nbk) {
    return kb.mul(
        kb.add(kb.add(slotWords(kb, keySlots(kb, nbk)), rowWords(kb, nbk)),
               checkpointWords(kb, nbk)),
        4);
  }

  /// Words of the row's scores: nbk (at least one, so that the clamped
  /// reads of an empty row stay inside) rounded up to kSumStep, the tail
  /// zeros.
  static Value rowWords(KernelBuilder &kb, Value nbk) {
    return kb.mul(kb.ceilDiv(kb.maxU(nbk, kb.idx(1)), kSumStep), kSumStep);
  }
  /// Words of the kept mass's checkpoints: one per kSumStep blocks.
  static Value checkpointWords(KernelBuilder &kb, Value nbk) {
    return kb.ceilDiv(kb.maxU(nbk, kb.idx(1)), kSumStep);
  }

  /// Sort keys for `count` blocks: the next power of two, at least the
  /// smallest register sort's 32 * kKeysPerLane[0].
  static Value keySlots(KernelBuilder &kb, Value count) {
    return arith::MaxUIOp::create(kb.b, nextPowerOfTwo(kb, count),
                                  kb.idx(32 * kKeysPerLane[0]));
  }

  /// Words of workgroup memory for `slots` sorted positions (a multiple of
  /// 32): the padded layout and the walk's slack.
  static Value slotWords(KernelBuilder &kb, Value slots) {
    return kb.add(kb.add(slots, kb.div(kb.mul(slots, kPad), 32)), kSlack);
  }

  void build(Value lane, Value blockId) {
    this->lane = lane;
    row = rem(blockId, nbq);
    Value head = div(blockId, nbq);
    batchIdx = div(head, groups);
    group = rem(head, groups);
    nvis = p.causal ? minU(add(row, 1), nbk) : nbk;

    // Dynamic workgroup memory: the sort slots [slotWords(keySlots(nbk))]
    // (u32 keys, then the sorted scores in place, position p at word
    // at(p)), the row's scores [rowWords(nbk)] f32 and the kept mass's
    // checkpoints [checkpointWords(nbk)] f32; `words` views the first two.
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
    Value slots = slotWords(*this, keySlots(*this, nbk));
    Value rowCount = rowWords(*this, nbk);
    rowStart = slots;
    keys = view(b.getI32Type(), idx(0), slots);
    sorted = view(b.getF32Type(), idx(0), slots);
    rowScores = view(b.getF32Type(), mul(slots, 4), rowCount);
    checkpoints = view(b.getF32Type(), mul(add(slots, rowCount), 4),
                       checkpointWords(*this, nbk));
    words = view(b.getF32Type(), idx(0), add(slots, rowCount));

    // The row's visible scores, read once (coalesced), zeros up to a
    // whole step.
    forLoop(lane, nvis, idx(32), {}, [&](Value j, ValueRange) {
      store(load(scores, {batchIdx, group, row, j}), rowScores, {j});
      return SmallVector<Value>{};
    });
    forLoop(add(nvis, lane), mul(ceilDiv(nvis, kSumStep), kSumStep), idx(32),
            {}, [&](Value j, ValueRange) {
              store(f32(0.0f), rowScores, {j});
              return SmallVector<Value>{};
            });
    gpu::BarrierOp::create(b);

    makeRow32();
    Value taken = idx(0), vStar = f32(0.0f), takeAllFree = boolConst(true);
    Value nfree = idx(0);
    if (p.tau < 1.0) {
      sortRow(keySlots(*this, nvis));
      std::tie(taken, takeAllFree, nfree) = topP();
      Value last = sub(arith::MaxUIOp::create(b, taken, idx(1)), idx(1));
      vStar = load(sorted, {at(last)});
    }
    compact(taken, vStar, takeAllFree, nfree);
  }

private:
  const SelectParams &p;
  Value scores, counts, indices, groups, nbq, nbk;
  Value lane, keys, sorted, rowScores, checkpoints, words, rowStart;
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

  /// The workgroup-memory word of sorted position p (the padded layout).
  Value at(Value p) {
    return add(p, mul(arith::ShRUIOp::create(b, p, idx(5)), kPad));
  }

  /// The sort key of a score s: ascending keys are descending scores (+0
  /// for -0, so that they tie as on the CPU), NaN after every number (and
  /// padding, all ones, after that). For the bits u of s, key = u ^ (~(u >>
  /// 31) & 0x7fffffff) (arithmetic shift): a non-negative score's bits
  /// reversed below 2^31, a negative one's kept above.
  Value sortKey(Value score) {
    Value s = fadd(score, f32(0.0f));
    Value isNaN = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, s, s);
    return select(isNaN, i32(-1),
                  flipKey(arith::BitcastOp::create(b, b.getI32Type(), s)));
  }

  /// The involution between a score's bits and its sort key (the sign bit
  /// is the same on both sides): the bits of the score a key was made from
  /// (-0 comes back as +0; padding and NaN keys give a NaN).
  Value flipKey(Value bits) {
    Value sign = arith::ShRSIOp::create(b, bits, i32(31));
    return arith::XOrIOp::create(
        b, bits,
        arith::AndIOp::create(b, arith::XOrIOp::create(b, sign, i32(-1)),
                              i32(INT32_MAX)));
  }

  /// The sort key of block j (an i32): a free visible block's, else
  /// padding. i32 compares (one instruction each, where index compares take
  /// two): j < nvis, j outside the local window [lo, row] ((j - lo) above
  /// row - lo unsigned), and j != 0 with the sink.
  Value keyOfBlock(Value j) {
    auto ult32 = [&](Value x, Value y) {
      return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, x, y);
    };
    Value free =
        andI(ult32(j, row32.nvis),
             ult32(row32.window, arith::SubIOp::create(b, j, row32.lo)));
    if (p.sink)
      free = andI(free, ult32(i32(0), j));
    Value s =
        load(rowScores, {toIndex(arith::MinUIOp::create(b, j, row32.last))});
    return select(free, sortKey(s), i32(-1));
  }

  /// The row's bounds as i32, for keyOfBlock: nvis, the local window's
  /// first block lo = max(0, row - local_blocks) and row - lo, the last
  /// visible score's index max(nvis, 1) - 1 (loadRow wrote the scores up
  /// to nvis rounded up to a step; a causal row's slots past that hold
  /// another row's scores or nothing, so no read goes there even where the
  /// key is discarded).
  struct {
    Value nvis, lo, window, last;
  } row32;
  void makeRow32() {
    auto cast = [&](Value x) {
      return arith::IndexCastUIOp::create(b, b.getI32Type(), x);
    };
    Value lo = arith::MaxSIOp::create(
        b, arith::SubIOp::create(b, row, idx(p.localBlocks)), idx(0));
    row32.nvis = cast(nvis);
    row32.lo = cast(lo);
    row32.window = cast(sub(row, lo));
    row32.last = cast(sub(maxU(nvis, idx(1)), idx(1)));
  }

  /// Sorts the free visible blocks' keys (`size` slots, a power of two at
  /// least 32 * kKeysPerLane[0]) and leaves their scores in `sorted`,
  /// descending (position p at word at(p)): rows of up to 32 * R keys for
  /// R in kKeysPerLane whole in registers, longer ones in chunks.
  void sortRow(Value size) {
    std::function<void(size_t)> classes = [&](size_t c) {
      int64_t perLane = kKeysPerLane[c];
      if (c + 1 == std::size(kKeysPerLane)) {
        sortChunks(size);
        return;
      }
      ifThenElse(
          ule(size, idx(32 * perLane)),
          [&] {
            SmallVector<Value> regs = blockKeys(idx(0), perLane);
            sortRegisters(regs);
            for (Value &x : regs)
              x = flipKey(x);
            storeRun(idx(0), regs);
          },
          [&] { classes(c + 1); });
    };
    classes(0);
    gpu::BarrierOp::create(b);
  }

  /// The keys of blocks base + 32 r + l (r < perLane) in lane l's
  /// registers: coalesced reads; where a key starts in the network does not
  /// matter.
  SmallVector<Value> blockKeys(Value base, int64_t perLane) {
    SmallVector<Value> regs;
    Value first =
        arith::IndexCastUIOp::create(b, b.getI32Type(), add(base, lane));
    for (int64_t r = 0; r < perLane; ++r)
      regs.push_back(keyOfBlock(
          arith::AddIOp::create(b, first, i32(static_cast<int32_t>(32 * r)))));
    return regs;
  }

  /// Compare-exchange of every network position i = 32-lane-major (lane l,
  /// register r: i = l R + r, R = regs.size()) with i ^ mask, the lower
  /// position keeping the min: partners mask & (R - 1) registers apart in
  /// the same thread when mask < R, else a shuffle (xor mask / R) of the
  /// partner's register r ^ (mask & (R - 1)), the lane whose top bit of
  /// mask / R is clear keeping the min. The predicate is the lane's only:
  /// no direction select.
  void exchange(SmallVector<Value> &regs, int64_t mask) {
    int64_t perLane = regs.size();
    int64_t rmask = mask & (perLane - 1), lmask = mask / perLane;
    if (lmask == 0) {
      for (int64_t r = 0; r < perLane; ++r) {
        int64_t q = r ^ rmask;
        if (q < r)
          continue;
        std::tie(regs[r], regs[q]) = minMax(regs[r], regs[q]);
      }
      return;
    }
    Value lower = eq(andI(lane, idx(llvm::bit_floor<uint64_t>(lmask))), 0);
    SmallVector<Value> next;
    for (int64_t r = 0; r < perLane; ++r) {
      Value other = shuffleXor(regs[r ^ rmask], static_cast<int32_t>(lmask));
      auto [lo, hi] = minMax(regs[r], other);
      next.push_back(select(lower, lo, hi));
    }
    regs = next;
  }

  /// Ascending bitonic sort of the 32 * R keys in registers, in the form
  /// whose every comparator is ascending: stage k compares each position
  /// with its mirror in the run of k (i ^ (k - 1)), then half-cleans (i ^
  /// j, j = k / 4 .. 1). In the lane-major layout the passes on the low
  /// log2 R bits, the most frequent, stay in the thread: 15 of the
  /// log2(32 R) (log2(32 R) + 1) / 2 passes shuffle.
  void sortRegisters(SmallVector<Value> &regs) {
    int64_t n = 32 * static_cast<int64_t>(regs.size());
    for (int64_t k = 2; k <= n; k *= 2) {
      exchange(regs, k - 1);
      for (int64_t j = k / 4; j >= 1; j /= 2)
        exchange(regs, j);
    }
  }

  /// Keys of sorted positions base + l R .. base + l R + R - 1 stored from
  /// lane l's registers (16 bytes a store).
  void storeRun(Value base, ArrayRef<Value> regs) {
    int64_t perLane = regs.size();
    Value first = add(base, mul(lane, perLane));
    auto type = VectorType::get({4}, b.getI32Type());
    for (int64_t r = 0; r < perLane; r += 4) {
      Value vec = vector::FromElementsOp::create(b, type, regs.slice(r, 4));
      vector::StoreOp::create(b, vec, keys, ValueRange{at(add(first, r))},
                              /*nontemporal=*/false, llvm::MaybeAlign(16));
    }
  }
  SmallVector<Value> loadRun(Value base, int64_t perLane) {
    Value first = add(base, mul(lane, perLane));
    auto type = VectorType::get({4}, b.getI32Type());
    SmallVector<Value> regs;
    for (int64_t r = 0; r < perLane; r += 4) {
      Value vec =
          vector::LoadOp::create(b, type, keys, ValueRange{at(add(first, r))},
                                 /*nontemporal=*/false, llvm::MaybeAlign(16));
      for (int64_t e = 0; e < 4; ++e)
        regs.push_back(vector::ExtractOp::create(b, vec, e));
    }
    return regs;
  }

  /// x, or its complement (reversing the key order) where `flip` is all
  /// ones.
  SmallVector<Value> complement(ArrayRef<Value> regs, Value flip) {
    SmallVector<Value> out;
    for (Value x : regs)
      out.push_back(arith::XOrIOp::create(b, x, flip));
    return out;
  }

  /// Rows longer than the other register sorts: chunks of kChunk keys
  /// sorted in registers (ascending where c is even, descending where odd:
  /// the keys complemented around the ascending network), then the
  /// standard bitonic stages 2 kChunk .. size: their passes kChunk or more
  /// apart through workgroup memory, the rest per chunk in registers
  /// (half-cleaners, complemented where the chunk's run descends); the
  /// keys decoded to scores as they are stored the last time.
  void sortChunks(Value size) {
    int64_t perLane = kChunk / 32;
    int64_t chunkLog = llvm::Log2_64(kChunk);
    Value chunks = div(size, kChunk);
    Value log2 = log2Of(size);
    Value single = eq(chunks, 1);
    forLoop(idx(0), chunks, idx(1), {}, [&](Value c, ValueRange) {
      Value odd = eq(arith::AndIOp::create(b, c, idx(1)), 1);
      Value flip = select(odd, i32(-1), i32(0));
      SmallVector<Value> regs =
          complement(blockKeys(mul(c, kChunk), perLane), flip);
      sortRegisters(regs);
      regs = complement(regs, flip);
      for (Value &x : regs)
        x = select(single, flipKey(x), x);
      storeRun(mul(c, kChunk), regs);
      return SmallVector<Value>{};
    });
    gpu::BarrierOp::create(b);
    forLoop(idx(chunkLog + 1), add(log2, 1), idx(1), {},
            [&](Value stage, ValueRange) {
              Value k = arith::ShLIOp::create(b, idx(1), stage);
              Value last = eq(stage, log2);
              // Passes j = k / 2 .. kChunk in workgroup memory.
              forLoop(idx(1), sub(stage, idx(chunkLog - 1)), idx(1), {},
                      [&](Value pass, ValueRange) {
                        sharedPass(size, k, sub(stage, pass));
                        return SmallVector<Value>{};
                      });
              // Passes kChunk / 2 .. 1 in registers.
              forLoop(idx(0), chunks, idx(1), {}, [&](Value c, ValueRange) {
                Value base = mul(c, kChunk);
                Value up = eq(arith::AndIOp::create(b, base, k), 0);
                Value flip = select(up, i32(0), i32(-1));
                SmallVector<Value> regs =
                    complement(loadRun(base, perLane), flip);
                for (int64_t j = kChunk / 2; j >= 1; j /= 2)
                  exchange(regs, j);
                regs = complement(regs, flip);
                for (Value &x : regs)
                  x = select(last, flipKey(x), x);
                storeRun(base, regs);
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

  std::pair<Value, Value> minMax(Value a, Value c) {
    return {arith::MinUIOp::create(b, a, c), arith::MaxUIOp::create(b, a, c)};
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
      auto [lo, hi] = minMax(load(keys, {at(i)}), load(keys, {at(l)}));
      Value up = eq(arith::AndIOp::create(b, i, k), 0);
      store(select(up, lo, hi), keys, {at(i)});
      store(select(up, hi, lo), keys, {at(l)});
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
  /// blocks it takes, whether it takes them all (a NaN total), and the
  /// number of free visible blocks.
  std::tuple<Value, Value, Value> topP() {
    Value zeroF = f32(0.0f);
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
    Value total = sums(forcedMass[0]);
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
    Value lastFree = load(sorted, {at(sub(maxU(nfree, idx(1)), idx(1)))});
    Value monotone =
        orI(eq(nfree, 0), arith::CmpFOp::create(b, arith::CmpFPredicate::OGE,
                                                lastFree, f32(0.0f)));
    Value c0 = ifElseValue(
        monotone, b.getIndexType(),
        [&] {
          Value c = monotoneStop(nfree, threshold);
          return minU(maxU(c, minFree), nfree);
        },
        [&] { return testedStop(forcedMass[0], nfree, threshold, minFree); });
    // max_blocks counts the forced blocks too.
    Value taken = c0;
    if (p.maxBlocks > 0)
      taken = minU(taken, select(ult(forcedCount, idx(p.maxBlocks)),
                                 sub(idx(p.maxBlocks), forcedCount), idx(0)));
    taken = minU(taken, nfree);
    return {select(totalIsNaN, nfree, taken), totalIsNaN, nfree};
  }

  /// The row total and the kept mass's checkpoints, in one pass of
  /// kSumStep scores a step: lanes 0-15 add the visible scores in ascending
  /// J (zeros past nvis change no sum) and lanes 16-31 the sorted free
  /// scores from `kept` on, the same instructions on different words, so
  /// the two sequential sums cost one chain; lanes 16-31 store the kept
  /// mass before each step (checkpoints[s] = the mass before sorted
  /// position kSumStep s; past the free blocks it is not used). Returns
  /// the total (lane 0's, to every lane).
  Value sums(Value kept) {
    Value steps = ceilDiv(nvis, kSumStep);
    Value totalLane = ult(lane, 16);
    Value first = select(totalLane, rowStart, idx(0));
    Value stride = select(totalLane, idx(kSumStep), idx(kSumStep + kPad));
    Value init = select(totalLane, f32(0.0f), kept);
    Value sum = forLoop(idx(0), steps, idx(1), {init, first},
                        [&](Value step, ValueRange a) -> SmallVector<Value> {
                          ifThen(notI(totalLane),
                                 [&] { store(a[0], checkpoints, {step}); });
                          Value t = a[0];
                          for (Value x : loadVector(words, a[1], kSumStep))
                            t = fadd(t, x);
                          return {t, add(a[1], stride)};
                        })[0];
    gpu::BarrierOp::create(b);
    return gpu::ShuffleOp::create(b, sum, 0, 32, gpu::ShuffleMode::IDX)
        .getShuffleResult();
  }

  /// The first sorted position (at most nfree) where the kept mass is not
  /// below `threshold`, when it never decreases: the steps whose
  /// checkpoint is below it are a prefix (a ballot a 32 steps), and in the
  /// last of them lane e adds the step's first e scores to its checkpoint
  /// (the sequential sum, the adds of lanes past e skipped), so the
  /// positions still taken are a prefix of the lanes again.
  Value monotoneStop(Value nfree, Value threshold) {
    Value steps = ceilDiv(nvis, kSumStep);
    Value count = forLoop(
        idx(0), ceilDiv(steps, 32), idx(1), {idx(0)},
        [&](Value g, ValueRange a) -> SmallVector<Value> {
          Value t = add(mul(g, 32), lane);
          Value inside = andI(ult(t, steps), ult(mul(t, kSumStep), nfree));
          Value cp = load(checkpoints, {minU(t, sub(steps, idx(1)))});
          Value ok =
              andI(inside, arith::CmpFOp::create(b, arith::CmpFPredicate::OLT,
                                                 cp, threshold));
          return {add(a[0], popc(ballot(ok)))};
        })[0];
    Value none = eq(count, 0);
    Value step = select(none, idx(0), sub(count, idx(1)));
    Value i = mul(step, kSumStep);
    SmallVector<Value> xs = loadVector(sorted, at(i), kSumStep);
    Value mass = load(checkpoints, {step});
    Value lane32 = arith::IndexCastUIOp::create(b, b.getI32Type(), lane);
    for (int64_t e = 0; e + 1 < kSumStep; ++e)
      mass = select(arith::CmpIOp::create(b, arith::CmpIPredicate::ugt, lane32,
                                          i32(static_cast<int32_t>(e))),
                    fadd(mass, xs[e]), mass);
    Value ok = andI(
        ult(add(i, lane), nfree),
        arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, mass, threshold));
    return select(none, idx(0), add(i, popc(ballot(ok))));
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
          // Past the free blocks the loads read padding or the slack: not
          // used.
          SmallVector<Value> xs = loadVector(sorted, at(i), kWalkStep);
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
                                              load(sorted, {at(mid)}), v);
          scf::YieldOp::create(b, ValueRange{select(above, add(mid, 1), a[0]),
                                             select(above, a[1], mid)});
        });
    return search.getResult(0);
  }

  Value popc(Value x) { return toIndex(math::CtPopOp::create(b, x)); }

  /// Whether visible block j (i32) is forced (always kept).
  Value forced32(Value j) {
    if (p.tau >= 1.0)
      return boolConst(true);
    Value near = arith::CmpIOp::create(b, arith::CmpIPredicate::ule,
                                       arith::SubIOp::create(b, j, row32.lo),
                                       row32.window);
    if (p.sink)
      near = orI(near,
                 arith::CmpIOp::create(b, arith::CmpIPredicate::eq, j, i32(0)));
    return near;
  }

  /// The kept blocks as ascending indices, -1 padding, and the count: the
  /// forced ones, the free ones scoring above v*, and the first m in
  /// ascending J of those scoring v* (all free ones for a NaN total). When
  /// no free block scoring v* is left out (the sorted score after the last
  /// taken one is not v*, or none is left), those are the free blocks
  /// scoring v* or more: one ballot per 32 blocks and no count of the
  /// scores above v*; otherwise the ties are ranked by a second ballot.
  void compact(Value taken, Value vStar, Value takeAllFree, Value nfree) {
    Value count;
    if (p.tau < 1.0) {
      // Position taken <= nfree: a sorted score, padding or the slack.
      Value next = load(sorted, {at(taken)});
      Value split =
          andI(andI(ult(idx(0), taken), ult(taken, nfree)), feq(next, vStar));
      count = ifElseValue(
          split, b.getIndexType(),
          [&] {
            return compactBlocks(taken, vStar, takeAllFree, /*ties=*/true);
          },
          [&] {
            return compactBlocks(taken, vStar, takeAllFree, /*ties=*/false);
          });
    } else {
      count = compactBlocks(taken, vStar, takeAllFree, /*ties=*/false);
    }
    forLoop(add(count, lane), nbk, idx(32), {}, [&](Value i, ValueRange) {
      store(i32(-1), indices, {batchIdx, group, row, i});
      return SmallVector<Value>{};
    });
    ifThen(eq(lane, 0), [&] {
      store(arith::IndexCastUIOp::create(b, b.getI32Type(), count), counts,
            {batchIdx, group, row});
    });
  }

  /// The kept blocks' indices stored ascending, 32 blocks a step (i32
  /// block indices): per step a ballot of "kept" and its prefix count by
  /// popc; with `ties`, a ballot of the free blocks scoring v* ranks them.
  /// Returns the count.
  Value compactBlocks(Value taken, Value vStar, Value takeAllFree, bool ties) {
    Value m = ties ? sub(taken, countAbove(taken, vStar)) : Value();
    Value some = ult(idx(0), taken);
    Value below = NVVM::LaneMaskLtOp::create(b, b.getI32Type());
    Value first = arith::IndexCastUIOp::create(b, b.getI32Type(), lane);
    SmallVector<Value> done = forLoop(
        idx(0), ceilDiv(nvis, 32), idx(1), {idx(0), idx(0), first},
        [&](Value, ValueRange a) -> SmallVector<Value> {
          Value j = a[2];
          Value visible = arith::CmpIOp::create(b, arith::CmpIPredicate::ult, j,
                                                row32.nvis);
          Value f = andI(visible, forced32(j));
          Value sel = f;
          Value equalCount = idx(0);
          if (p.tau < 1.0) {
            // Past nvis the row's scores are zeros (and not free).
            Value s = load(rowScores, {toIndex(j)});
            Value free = andI(visible, notI(f));
            Value take;
            if (ties) {
              Value equal = andI(andI(free, some), feq(s, vStar));
              Value equalVotes = ballot(equal);
              equalCount = popc(equalVotes);
              Value eqRank =
                  add(a[1], popc(arith::AndIOp::create(b, equalVotes, below)));
              Value above =
                  arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, s, vStar);
              take = orI(andI(some, above), andI(equal, ult(eqRank, m)));
            } else {
              take = andI(some, arith::CmpFOp::create(
                                    b, arith::CmpFPredicate::OGE, s, vStar));
            }
            sel = orI(f, andI(free, orI(take, takeAllFree)));
          }
          Value votes = ballot(sel);
          Value pos = add(a[0], popc(arith::AndIOp::create(b, votes, below)));
          ifThen(sel, [&] { store(j, indices, {batchIdx, group, row, pos}); });
          return {add(a[0], popc(votes)), add(a[1], equalCount),
                  arith::AddIOp::create(b, j, i32(32))};
        });
    return done[0];
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
