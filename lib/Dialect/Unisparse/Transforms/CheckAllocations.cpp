//===- CheckAllocations.cpp - lowered code checks its allocations ---------===//
//
// See the pass description in Passes.td. The failure path of a function is
// one block that frees the function's live host blocks (the runtime tracks
// them per thread, from the mark taken at entry) and returns; every checked
// allocation branches to it on a null result.
//
//===----------------------------------------------------------------------===//

#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSECHECKALLOCATIONS
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;

namespace {
/// The runtime functions the rewritten code calls.
struct Runtime {
  LLVM::LLVMFuncOp alloc, free, begin, end, abort;
};

/// `name` in `module`, declared with `type` if missing.
LLVM::LLVMFuncOp declare(ModuleOp module, StringRef name,
                         LLVM::LLVMFunctionType type) {
  if (auto fn = module.lookupSymbol<LLVM::LLVMFuncOp>(name))
    return fn;
  OpBuilder b(module.getBodyRegion());
  return LLVM::LLVMFuncOp::create(b, module.getLoc(), name, type);
}

StringRef calleeOf(LLVM::CallOp call) {
  std::optional<StringRef> callee = call.getCallee();
  return callee ? *callee : StringRef();
}

bool returnsNothing(LLVM::LLVMFuncOp fn) {
  return isa<LLVM::LLVMVoidType>(fn.getFunctionType().getReturnType());
}

/// The allocation and free calls of `fn`.
SmallVector<LLVM::CallOp> memoryCalls(LLVM::LLVMFuncOp fn) {
  SmallVector<LLVM::CallOp> calls;
  fn.walk([&](LLVM::CallOp call) {
    if (llvm::is_contained({"malloc", "aligned_alloc", "free", "mgpuMemAlloc"},
                           calleeOf(call)))
      calls.push_back(call);
  });
  return calls;
}

/// Rewrites the allocation and free `calls` of `fn` (see Passes.td).
void checkFunction(LLVM::LLVMFuncOp fn, ArrayRef<LLVM::CallOp> calls,
                   const Runtime &rt) {
  MLIRContext *ctx = fn.getContext();
  Location loc = fn.getLoc();
  Type i64 = IntegerType::get(ctx, 64), ptr = LLVM::LLVMPointerType::get(ctx);
  OpBuilder b(ctx);

  // The scope mark, at entry; the failure block; the scope end at each
  // return.
  b.setInsertionPointToStart(&fn.getBody().front());
  Value mark = LLVM::CallOp::create(b, loc, rt.begin, ValueRange{}).getResult();
  SmallVector<LLVM::ReturnOp> returns;
  fn.walk([&](LLVM::ReturnOp ret) { returns.push_back(ret); });
  for (LLVM::ReturnOp ret : returns) {
    b.setInsertionPoint(ret);
    LLVM::CallOp::create(b, ret.getLoc(), rt.end, ValueRange{mark});
  }
  Block *fail = b.createBlock(&fn.getBody(), fn.getBody().end());
  LLVM::CallOp::create(b, loc, rt.abort, ValueRange{mark});
  LLVM::ReturnOp::create(b, loc, ValueRange{});

  for (LLVM::CallOp call : calls) {
    StringRef callee = calleeOf(call);
    b.setInsertionPoint(call);
    Location at = call.getLoc();
    if (callee == "free") {
      LLVM::CallOp::create(b, at, rt.free, call.getArgOperands());
      call.erase();
      continue;
    }
    Value result, size;
    if (callee == "mgpuMemAlloc") {
      result = call.getResult();
      size = call.getArgOperands()[0];
      b.setInsertionPointAfter(call);
    } else {
      bool aligned = callee == "aligned_alloc";
      size = call.getArgOperands()[aligned ? 1 : 0];
      Value align = aligned ? call.getArgOperands()[0]
                            : LLVM::ConstantOp::create(b, at, i64, 0);
      auto replacement =
          LLVM::CallOp::create(b, at, rt.alloc, ValueRange{size, align});
      result = replacement.getResult();
      call.getResult().replaceAllUsesWith(result);
      call.erase();
      b.setInsertionPointAfter(replacement);
    }
    // if (!result) goto fail (a device allocation of 0 bytes is null too).
    Value null = LLVM::ZeroOp::create(b, at, ptr);
    Value failed =
        LLVM::ICmpOp::create(b, at, LLVM::ICmpPredicate::eq, result, null);
    if (callee == "mgpuMemAlloc")
      failed = LLVM::AndOp::create(
          b, at, failed,
          LLVM::ICmpOp::create(b, at, LLVM::ICmpPredicate::ne, size,
                               LLVM::ConstantOp::create(b, at, i64, 0)));
    Block *before = b.getInsertionBlock();
    Block *next = before->splitBlock(b.getInsertionPoint());
    b.setInsertionPointToEnd(before);
    LLVM::CondBrOp::create(b, at, failed, fail, ValueRange{}, next,
                           ValueRange{});
  }
}

struct UnisparseCheckAllocationsPass
    : unisparse::impl::UnisparseCheckAllocationsBase<
          UnisparseCheckAllocationsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    Type i64 = IntegerType::get(ctx, 64), ptr = LLVM::LLVMPointerType::get(ctx),
         none = LLVM::LLVMVoidType::get(ctx);
    SmallVector<std::pair<LLVM::LLVMFuncOp, SmallVector<LLVM::CallOp>>> work;
    for (auto fn : module.getOps<LLVM::LLVMFuncOp>())
      if (!fn.isExternal() && returnsNothing(fn))
        if (SmallVector<LLVM::CallOp> calls = memoryCalls(fn); !calls.empty())
          work.emplace_back(fn, std::move(calls));
    if (work.empty())
      return;
    Runtime rt{declare(module, "unisparse_rt_alloc",
                       LLVM::LLVMFunctionType::get(ptr, {i64, i64})),
               declare(module, "unisparse_rt_free",
                       LLVM::LLVMFunctionType::get(none, {ptr})),
               declare(module, "unisparse_rt_alloc_scope_begin",
                       LLVM::LLVMFunctionType::get(i64, {})),
               declare(module, "unisparse_rt_alloc_scope_end",
                       LLVM::LLVMFunctionType::get(none, {i64})),
               declare(module, "unisparse_rt_alloc_scope_abort",
                       LLVM::LLVMFunctionType::get(none, {i64}))};
    for (auto &[fn, calls] : work)
      checkFunction(fn, calls, rt);
  }
};
} // namespace
