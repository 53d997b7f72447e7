//===- GpuBuilder.h - small builders shared by the GPU kernels --*- C++ -*-===//
//
// Constants, lane arithmetic, shuffles and the launch skeleton that the
// scoring and selection kernels are built from.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_LIB_CONVERSION_UNISPARSETOGPU_GPUBUILDER_H
#define UNISPARSE_LIB_CONVERSION_UNISPARSETOGPU_GPUBUILDER_H

#include "unisparse/Conversion/UnisparseToGPU/UnisparseToGPU.h"

#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::unisparse::gpu_detail {

/// Workgroup memory a CTA may use on sm_90 (227 KiB): the bound every
/// built kernel's tiles are checked against.
inline constexpr int64_t kMaxWorkgroupBytes = 227 * 1024;

/// The most `elementBytes`-byte elements a vector access of at most 16
/// bytes may hold so that its element count (a power of two) divides
/// `divisor`: the widest vectors that tile a run of `divisor` elements
/// starting at a multiple of it (vectorElements(1, n): the alignment, at most
/// 16, of an n-byte vector at a multiple of n in an aligned row).
inline int64_t vectorElements(int64_t elementBytes, int64_t divisor) {
  int64_t w = 1;
  while (w * 2 * elementBytes <= 16 && divisor % (w * 2) == 0)
    w *= 2;
  return w;
}

/// The workgroup (shared) memory space.
inline Attribute workgroupSpace(MLIRContext *ctx) {
  return gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
}

/// The outlined kernel's attribute asking ptxas to fit `ctas` CTAs an SM
/// (nvvm.minctasm: a register budget), for buildLaunch's kernel attributes.
inline NamedAttribute minCtasPerSmAttr(OpBuilder &b, int64_t ctas) {
  return b.getNamedAttr(NVVM::NVVMDialect::getMinctasmAttrName(),
                        b.getI32IntegerAttr(static_cast<int32_t>(ctas)));
}

/// A statically shaped workgroup memref type.
inline MemRefType workgroupMemRef(ArrayRef<int64_t> shape, Type element) {
  return MemRefType::get(shape, element, MemRefLayoutAttrInterface(),
                         workgroupSpace(element.getContext()));
}

/// Emits constants and the arithmetic the kernels repeat.
struct KernelBuilder {
  ImplicitLocOpBuilder &b;

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value i32(int32_t v) { return arith::ConstantIntOp::create(b, v, 32); }
  Value i64c(int64_t v) { return arith::ConstantIntOp::create(b, v, 64); }
  Value f32(float v) {
    return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
  }
  Value negInf() { return f32(-std::numeric_limits<float>::infinity()); }

  Value add(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value div(Value x, Value y) { return arith::DivUIOp::create(b, x, y); }
  Value rem(Value x, Value y) { return arith::RemUIOp::create(b, x, y); }
  Value minU(Value x, Value y) { return arith::MinUIOp::create(b, x, y); }
  Value maxU(Value x, Value y) { return arith::MaxUIOp::create(b, x, y); }
  Value add(Value x, int64_t y) { return add(x, idx(y)); }
  Value mul(Value x, int64_t y) { return mul(x, idx(y)); }
  Value div(Value x, int64_t y) { return div(x, idx(y)); }
  Value rem(Value x, int64_t y) { return rem(x, idx(y)); }
  /// ceil(x / y) for non-negative x and positive y.
  Value ceilDiv(Value x, int64_t y) { return div(add(x, y - 1), y); }
  Value ceilDiv(Value x, Value y) {
    return arith::CeilDivUIOp::create(b, x, y);
  }
  Value ult(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, x, y);
  }
  Value ule(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ule, x, y);
  }
  Value eq(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, y);
  }
  Value ult(Value x, int64_t y) { return ult(x, idx(y)); }
  Value eq(Value x, int64_t y) { return eq(x, idx(y)); }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, c, x, y);
  }
  Value andI(Value x, Value y) { return arith::AndIOp::create(b, x, y); }

  /// A pair of 16-bit elements (a vector<2x...>) as an mma operand
  /// register: bf16 pairs as an i32 (the form nvvm.mma.sync takes for
  /// .bf16), f16 pairs as they are.
  Value mmaOperand(Value pair) {
    if (!cast<VectorType>(pair.getType()).getElementType().isBF16())
      return pair;
    Value w = vector::BitCastOp::create(b, VectorType::get({1}, b.getI32Type()),
                                        pair);
    return vector::ExtractOp::create(b, w, 0);
  }
  Value orI(Value x, Value y) { return arith::OrIOp::create(b, x, y); }

  /// `x` (f32, f16 or bf16, or a vector of them) as f32: f32 as it is, a
  /// 16-bit type extended (exact).
  Value widenToF32(Value x) {
    Type type = x.getType();
    if (getElementTypeOrSelf(type).isF32())
      return x;
    Type f32 = b.getF32Type();
    if (auto vector = dyn_cast<VectorType>(type))
      f32 = vector.clone(f32);
    return arith::ExtFOp::create(b, f32, x);
  }
  /// `x` (f32, or a vector of f32) as `element` (f32, f16 or bf16): f32 as
  /// it is, a 16-bit type rounded once (to nearest even).
  Value narrowF32(Value x, Type element) {
    if (element.isF32())
      return x;
    Type type = element;
    if (auto vector = dyn_cast<VectorType>(x.getType()))
      type = vector.clone(element);
    return arith::TruncFOp::create(b, type, x);
  }

  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  /// max ignoring NaN operands (PTX max.f32).
  Value fmaxnum(Value x, Value y) { return arith::MaxNumFOp::create(b, x, y); }
  Value feq(Value x, Value y) {
    return arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, x, y);
  }

  /// 2^x on the special-function unit, denormal results flushed to zero
  /// (ex2.approx.ftz.f32: one MUFU op; math.exp2 gives the non-ftz form,
  /// which ptxas wraps in a range test and two multiplies).
  Value exp2Ftz(Value x) {
    return LLVM::CallIntrinsicOp::create(
               b, b.getF32Type(), b.getStringAttr("llvm.nvvm.ex2.approx.ftz.f"),
               ValueRange{x})
        .getResult(0);
  }

  /// 2^d for an integer-valued d <= 0, from the exponent bits instead of
  /// the special-function unit: max(d, -127) + 2^23 + 127 is exact and
  /// holds d + 127 in its low mantissa bits, which shifted left by 23 are
  /// the exponent field of 2^d (the rest shifts out). d <= -127, -inf and
  /// NaN (-inf - -inf) give 0, as ex2.approx.ftz flushes 2^-127.
  Value exactPow2(Value d) {
    Value t = fadd(fmaxnum(d, f32(-127.0f)), f32(8388735.0f));
    Value bits = arith::BitcastOp::create(b, b.getI32Type(), t);
    bits = arith::ShLIOp::create(b, bits, i32(23));
    return arith::BitcastOp::create(b, b.getF32Type(), bits);
  }

  /// D = A B + C on mma.sync m16n8k16 (`element` bf16 or f16, f32
  /// accumulators, row.col): `a` the four A registers, `b0`, `b1` the two B
  /// registers, `c` the four accumulators; returns D's four f32.
  SmallVector<Value> mmaSync(Type element, ArrayRef<Value> a, Value b0,
                             Value b1, ArrayRef<Value> c) {
    auto accType = LLVM::LLVMStructType::getLiteral(
        b.getContext(), SmallVector<Type>(4, b.getF32Type()));
    NVVM::MMATypes ptx =
        element.isBF16() ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
    Value d = NVVM::MmaOp::create(
        b, accType, a, ValueRange{b0, b1}, c, {16, 8, 16}, std::nullopt,
        std::nullopt, std::array<NVVM::MMATypes, 2>{ptx, ptx},
        std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                       NVVM::MMALayout::col});
    SmallVector<Value> out;
    for (int64_t e = 0; e < 4; ++e)
      out.push_back(LLVM::ExtractValueOp::create(b, d, e));
    return out;
  }

  /// The coordinates of the row-major linear index `i` over `sizes`
  /// (outermost first; the outermost size is not needed).
  SmallVector<Value> delinearize(Value i, ArrayRef<Value> sizes) {
    SmallVector<Value> out(sizes.size());
    for (size_t d = sizes.size(); d-- > 1;) {
      out[d] = rem(i, sizes[d]);
      i = div(i, sizes[d]);
    }
    out[0] = i;
    return out;
  }

  /// The value of `x` in the lane `lane ^ mask` of the warp.
  Value shuffleXor(Value x, int32_t mask) {
    return gpu::ShuffleOp::create(b, x, mask, 32, gpu::ShuffleMode::XOR)
        .getShuffleResult();
  }

  /// The warp's i1 `pred` as a 32-bit mask (bit l: lane l), every lane of
  /// the warp converged here.
  Value ballot(Value pred) {
    return NVVM::VoteSyncOp::create(b, b.getI32Type(), i32(-1), pred,
                                    NVVM::VoteSyncKind::ballot);
  }

  /// prefetch.global.L2 of the line holding global-memory byte `address`
  /// (an index): no register held, nothing waits on it.
  void prefetchL2(Value address) {
    Value at = arith::IndexCastUIOp::create(b, b.getI64Type(), address);
    NVVM::PrefetchOp::create(
        b,
        NVVM::PrefetchCacheLevelAttr::get(b.getContext(),
                                          NVVM::PrefetchCacheLevel::L2),
        /*evictPriority=*/nullptr,
        LLVM::IntToPtrOp::create(
            b, LLVM::LLVMPointerType::get(b.getContext(), /*addressSpace=*/1),
            at),
        /*predicate=*/Value());
  }

  /// `memref[indices]` as a scalar load / store.
  Value load(Value memref, ValueRange indices) {
    return memref::LoadOp::create(b, memref, indices);
  }
  void store(Value value, Value memref, ValueRange indices) {
    memref::StoreOp::create(b, value, memref, indices);
  }

  /// scf.if `cond` { then() } with no results.
  void ifThen(Value cond, function_ref<void()> then) {
    auto op = scf::IfOp::create(b, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    then();
  }

  /// scf.if `cond` { then() } else { otherwise() } with no results (each
  /// region built in that order, before its yield).
  void ifThenElse(Value cond, function_ref<void()> then,
                  function_ref<void()> otherwise) {
    auto op = scf::IfOp::create(b, cond, /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    then();
    b.setInsertionPointToStart(&op.getElseRegion().front());
    otherwise();
  }

  /// scf.if `cond` yielding then() or otherwise() (values of `types`; the
  /// then region is built first).
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

  /// ifElse of one value of `type`.
  Value ifElseValue(Value cond, Type type, function_ref<Value()> then,
                    function_ref<Value()> otherwise) {
    return ifElse(
               cond, type, [&] { return SmallVector<Value>{then()}; },
               [&] { return SmallVector<Value>{otherwise()}; })
        .front();
  }

  /// scf.for iv in [lb, ub) step `step` carrying `init`; `body` returns the
  /// next values.
  SmallVector<Value>
  forLoop(Value lb, Value ub, Value step, ValueRange init,
          function_ref<SmallVector<Value>(Value iv, ValueRange args)> body) {
    OpBuilder::InsertionGuard guard(b);
    auto loop = scf::ForOp::create(
        b, lb, ub, step, init,
        [&](OpBuilder &nb, Location, Value iv, ValueRange args) {
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          SmallVector<Value> next = body(iv, args);
          scf::YieldOp::create(b, next);
        });
    return loop.getResults();
  }
};

/// Whether every row of `memref` (its innermost dimension, unit stride)
/// starts on a `bytes`-byte boundary: the aligned pointer plus the offset,
/// and every outer stride, times the element size, are multiples of it.
/// Evaluated on the host (an i1).
Value rowsAligned(ImplicitLocOpBuilder &b, Value memref, int64_t bytes);

/// Why the rows of `composites` (a block_score operand: rows of D 16-bit
/// values, D a multiple of 16) might not all start on a 16-byte boundary,
/// which the tensor-core scoring kernels' 16-byte cp.async copies need, or
/// an empty string when they do: a tensor (bufferized to fresh, aligned
/// buffers), a memref of the identity layout, or a strided one whose
/// innermost stride is 1 and whose offset and other strides are static
/// multiples of 16 bytes. Decided when the op is lowered, so a view that may
/// be misaligned is refused instead of faulting in the kernel.
std::string compositeRowsUnaligned(Value composites);

/// Whether `op` may write the memory of `input`: it has a write (or free)
/// effect on anything but a memref.alloc other than `input`, or effects it
/// does not state.
bool mayWrite(Operation *op, Value input);

/// A 1-D launch of `blocks` x `threads` with `workgroup` buffers; `body`
/// builds the kernel (it gets the thread and block ids and the workgroup
/// buffers). The outlined kernel is named `name` (made unique by the pass).
void buildLaunch(ImplicitLocOpBuilder &b, Value blocks, int64_t threads,
                 ArrayRef<MemRefType> workgroup, StringRef name,
                 function_ref<void(ImplicitLocOpBuilder &, Value threadId,
                                   Value blockId, ValueRange workgroup)>
                     body,
                 Value dynamicSharedBytes = Value(),
                 DictionaryAttr kernelAttributes = DictionaryAttr());

/// A launch of a thread per item: ceil(items / threads) blocks of
/// `threads`; `body` runs for item i = block * threads + thread where i <
/// items.
inline void
launchPerItem(ImplicitLocOpBuilder &b, Value items, int64_t threads,
              StringRef name,
              function_ref<void(KernelBuilder &, Value item)> body) {
  KernelBuilder kb{b};
  buildLaunch(b, kb.ceilDiv(items, threads), threads, {}, name,
              [&](ImplicitLocOpBuilder &lb, Value tid, Value bid, ValueRange) {
                KernelBuilder k{lb};
                Value item = k.add(k.mul(bid, threads), tid);
                k.ifThen(k.ult(item, items), [&] { body(k, item); });
              });
}

/// The 16-bit composites of `value` (f32 or already `type`): the compress
/// that produced it rewritten to write `type` when it is a mean compress
/// into a tensor.empty, else an elementwise truncation.
Value compositesOfType(ImplicitLocOpBuilder &b, Value value, Type type);

/// The arithmetic of mean pooling (`compress`, pooling = mean or concat) on
/// one chunk of `width` consecutive head-dim elements of one composite, as
/// the compress kernel computes it: f32 sums, from zero, over the group's
/// `headFactor` expanded heads (outer) and the composite's tokens (inner),
/// both ascending, one load per (head, token); the mean is the sum divided
/// in f32 by the tokens times the heads, rounded once to the destination
/// type. The compress kernel and the scoring kernel's fused query load
/// (BlockScoreKernel.cpp) are both built from it, so their composites are
/// the same bits.
struct MeanPooling {
  Value input; // [B, H, N, D]
  int64_t headFactor, kvGroup;
  /// Elements per chunk: 16 bytes of the input, or 1 (see chunkWidth).
  int64_t width;

  /// The input's elements per 16 bytes when they divide the (static) head
  /// dimension, else 1.
  static int64_t chunkWidth(MemRefType input);

  /// Source head of expanded head `group` * headFactor + `j`.
  Value sourceHead(KernelBuilder &k, Value group, int64_t j) const;
  /// Token `token`'s chunk at `d` of `srcHead` as f32 (one load).
  Value load(KernelBuilder &k, Value batch, Value srcHead, Value token, Value d,
             llvm::MaybeAlign alignment) const;
  /// The loads of `tokens` tokens from `first` of every head of `group`, in
  /// the order sum() adds them (heads outer, tokens inner). With `limit`,
  /// token indices are clamped to limit - 1 (in bounds; sum() leaves out
  /// the tokens at or past `limit`).
  SmallVector<Value> loadRun(KernelBuilder &k, Value batch, Value group,
                             Value first, int64_t tokens, Value d,
                             llvm::MaybeAlign alignment,
                             Value limit = Value()) const;
  /// The f32 sum of `loads` in their order, from zero.
  Value sum(KernelBuilder &k, ArrayRef<Value> loads) const;
  /// sum() of each of `runs` (loadRun()s of `tokens` tokens), the adds of all
  /// runs interleaved, so that every run's loads are wanted from the first
  /// add. With `limit`, run r leaves out its tokens at or past `limit`
  /// (from `firsts[r]`): the sum keeps its value there (a select, not an
  /// add of 0, so the bits are those of the sum of the tokens it has).
  SmallVector<Value> sums(KernelBuilder &k, ArrayRef<SmallVector<Value>> runs,
                          int64_t tokens, ArrayRef<Value> firsts = {},
                          Value limit = Value()) const;
  /// The f32 sum over tokens [first, last) of every head of `group` (a loop
  /// per head; the same adds in the same order as sum(loadRun(...))).
  Value sumLoop(KernelBuilder &k, Value batch, Value group, Value first,
                Value last, Value d, llvm::MaybeAlign alignment) const;
  /// `total` / `count` (an index: tokens times heads) in f32, rounded to
  /// `element` (no rounding for f32).
  Value mean(KernelBuilder &k, Value total, Value count, Type element) const;
};

} // namespace mlir::unisparse::gpu_detail

#endif // UNISPARSE_LIB_CONVERSION_UNISPARSETOGPU_GPUBUILDER_H
