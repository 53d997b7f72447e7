//===- EntryModule.cpp - entry points for a configuration -----------------===//

#include "unisparse/Pipelines/EntryModule.h"

#include "unisparse/Dialect/Unisparse/IR/ShapeRules.h"
#include "unisparse/Dialect/Unisparse/IR/Stages.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::unisparse;

namespace {
/// The runtime's guard: unisparse_rt_check_workspace(bytes, batch, seqLen,
/// device) -> status.
constexpr StringLiteral kCheckWorkspace = "unisparse_rt_check_workspace";

/// What the guard of an entry point needs: the size rule's inputs.
struct Guard {
  EstimationParams params;
  AttentionSizes sizes;
  ScoreMapTiling tiling;
  int32_t device; // unisparse_device_t
};

/// Builds the guard `name`: the workspace of q's batch and sequence length
/// (arg 0), the runtime's check, and the call of `body` when it passes.
void buildGuard(OpBuilder &b, Location loc, StringRef name, func::FuncOp body,
                const Guard &guard) {
  auto func = func::FuncOp::create(b, loc, name, body.getFunctionType());
  func->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  OpBuilder::InsertionGuard insertion(b);
  ImplicitLocOpBuilder ib(loc, b);
  ib.setInsertionPointToStart(func.addEntryBlock());
  Value q = func.getArgument(0);
  auto i64Dim = [&](int64_t d) {
    return arith::IndexCastOp::create(ib, ib.getI64Type(),
                                      memref::DimOp::create(ib, q, d));
  };
  Value batch = i64Dim(0), seqLen = i64Dim(2);
  IRSizeArith saturating{ib};
  Value bytes = attentionWorkspaceBytes(saturating, guard.params, guard.sizes,
                                        batch, seqLen, guard.tiling);
  Value device = arith::ConstantIntOp::create(ib, guard.device, 32);
  Value status = func::CallOp::create(ib, kCheckWorkspace, ib.getI32Type(),
                                      ValueRange{bytes, batch, seqLen, device})
                     .getResult(0);
  Value ok = arith::CmpIOp::create(ib, arith::CmpIPredicate::eq, status,
                                   arith::ConstantIntOp::create(ib, 0, 32));
  scf::IfOp::create(ib, ok, [&](OpBuilder &nb, Location l) {
    func::CallOp::create(nb, l, body, func.getArguments());
    scf::YieldOp::create(nb, l);
  });
  func::ReturnOp::create(ib);
}

/// The private function `<name>_impl(inputs..., outputs...)`, the body of
/// entry point `name`, without a block.
func::FuncOp privateBody(OpBuilder &b, Location loc, StringRef name,
                         ArrayRef<MemRefType> inputs,
                         ArrayRef<MemRefType> outputs) {
  SmallVector<Type> args(inputs.begin(), inputs.end());
  args.append(outputs.begin(), outputs.end());
  auto func = func::FuncOp::create(b, loc, (name + "_impl").str(),
                                   b.getFunctionType(args, {}));
  // Private, and internal in LLVM: the guard is the only way in.
  func.setPrivate();
  func->setAttr("llvm.linkage", LLVM::LinkageAttr::get(
                                    b.getContext(), LLVM::Linkage::Internal));
  return func;
}

/// Builds the private body `<name>_impl` of entry point `name` (its guard
/// comes later, buildGuard): memref arguments (identity layouts, dynamic
/// batch and sequence), each seen as a tensor (`restrict`, and `writable`
/// for the outputs); `body` returns the tensors to store into the outputs.
func::FuncOp buildBody(
    OpBuilder &b, Location loc, StringRef name, ArrayRef<MemRefType> inputs,
    ArrayRef<MemRefType> outputs,
    function_ref<SmallVector<Value>(ArrayRef<Value> in, ArrayRef<Value> out)>
        body) {
  func::FuncOp func = privateBody(b, loc, name, inputs, outputs);
  OpBuilder::InsertionGuard insertion(b);
  b.setInsertionPointToStart(func.addEntryBlock());
  SmallVector<Value> in, out;
  for (auto [i, arg] : llvm::enumerate(func.getArguments())) {
    bool isOut = i >= inputs.size();
    auto type = cast<MemRefType>(arg.getType());
    Value t = bufferization::ToTensorOp::create(
        b, loc, RankedTensorType::get(type.getShape(), type.getElementType()),
        arg, /*restrict=*/true, /*writable=*/isOut);
    (isOut ? out : in).push_back(t);
  }
  SmallVector<Value> results = body(in, out);
  for (auto [value, arg] :
       llvm::zip(results, func.getArguments().drop_front(inputs.size()))) {
    auto store =
        bufferization::MaterializeInDestinationOp::create(b, loc, value, arg);
    store.setRestrict(true);
    store.setWritable(true);
  }
  func::ReturnOp::create(b, loc);
  return func;
}

/// Builds the private body `attention_impl` of @attention on the CPU:
/// @attention_layout's body called with counts and indices of its own, the
/// buffers that unisparse.attention's decomposition allocates (so the guard's
/// workspace rule is the same), freed by buffer deallocation after the call.
/// The estimation is then compiled once for both entry points instead of
/// twice (it is most of the LLVM code, and of the compile time). The CUDA
/// pipeline decides host or device memory within a function
/// (unisparse-gpu-host-buffers), so there @attention keeps its own
/// unisparse.attention.
func::FuncOp buildAttentionCall(OpBuilder &b, Location loc, ConfigAttr cfg,
                                ArrayRef<MemRefType> inputs,
                                ArrayRef<MemRefType> outputs,
                                ArrayRef<MemRefType> layoutTypes,
                                func::FuncOp attentionLayout) {
  func::FuncOp func = privateBody(b, loc, "attention", inputs, outputs);
  OpBuilder::InsertionGuard insertion(b);
  ImplicitLocOpBuilder ib(loc, b);
  ib.setInsertionPointToStart(func.addEntryBlock());
  Value q = func.getArgument(0);
  Value batch = memref::DimOp::create(ib, q, 0);
  Value seq = memref::DimOp::create(ib, q, 2);
  Value blocks = getValueOrCreateConstantIndexOp(
      ib, loc, numBlocksOfr(ib, loc, seq, cfg.getBlock()));
  SmallVector<Value> operands(func.getArguments());
  for (MemRefType type : layoutTypes) {
    SmallVector<Value> sizes{batch, blocks};
    if (type.getRank() == 4)
      sizes.push_back(blocks);
    operands.push_back(memref::AllocOp::create(
        ib, type, sizes, ib.getI64IntegerAttr(kBufferAlignment)));
  }
  func::CallOp::create(ib, attentionLayout, operands);
  func::ReturnOp::create(ib);
  return func;
}

/// How the target's pipeline will materialise the score map of `scoreOp`
/// (the block_score of the @layout body, or null): nothing when every block
/// is kept; on the CPU, tiles of unisparse-tile-estimation's query blocks;
/// on CUDA, the tensor-core kernel's scratch slots where that kernel applies
/// (the pipeline's own test, tensorCoreScoreUnsupportedReason), else the
/// whole map of the linalg lowering.
ScoreMapTiling scoreMapTiling(ConfigAttr cfg, const EntrySignature &sig,
                              Operation *scoreOp) {
  if (keepsEveryBlock(cfg.getTauValue(), cfg.getMinBlocks(),
                      ShapedType::kDynamic))
    return {ScoreMapTiling::Kind::none};
  if (sig.target == EntryTarget::cpu)
    return ScoreMapTiling::byQueryBlocks(
        UnisparseTileEstimationOptions().queryBlocks);
  const ScoreKernelOptions &k = sig.scoring;
  if (!scoreOp || !k.compositeType ||
      !tensorCoreScoreUnsupportedReason(scoreOp, k).empty())
    return {ScoreMapTiling::Kind::whole};
  int64_t partialBytes = k.halfPartials ? 2 : 4;
  if (cast<BlockScoreOp>(scoreOp).getEstimator() == Estimator::outlier)
    return ScoreMapTiling::byOutlierScratch(
        k.ctas, outlierScoreCtaComposites(k), k.outlierKeyTile, partialBytes);
  int64_t rows = scoreWarpRows(scoreOp, k) * k.warps;
  if (k.separateEpilogue)
    return ScoreMapTiling::bySeparateScratch(
        k.ctas, rows, k.keyTile, k.scratchBytes,
        cast<BlockScoreOp>(scoreOp).getCausal(), partialBytes);
  return ScoreMapTiling::byCtaScratch(k.ctas, rows, k.keyTile, partialBytes);
}
} // namespace

FailureOr<OwningOpRef<ModuleOp>>
mlir::unisparse::buildEntryModule(MLIRContext *ctx, ConfigAttr cfg,
                                  const EntrySignature &sig,
                                  std::string &error) {
  OpBuilder b(ctx);
  Type et = llvm::StringSwitch<Type>(sig.dtype)
                .Case("f32", b.getF32Type())
                .Case("f16", b.getF16Type())
                .Case("bf16", b.getBF16Type())
                .Default(Type());
  if (!et) {
    error = "dtype must be f32, f16 or bf16, got '" + sig.dtype + "'";
    return failure();
  }
  {
    // The head-count rules of ShapeRules.h (python/unisparse/rules.py).
    std::string message;
    ScopedDiagnosticHandler handler(ctx, [&](Diagnostic &diag) {
      message = diag.str();
      return success();
    });
    if (failed(verifyHeads([&] { return emitError(UnknownLoc::get(ctx)); },
                           sig.heads, sig.kvHeads, sig.headDim, cfg.getCH()))) {
      error = message;
      return failure();
    }
  }
  int64_t dyn = ShapedType::kDynamic, hg = sig.heads / cfg.getCH();
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  auto q = MemRefType::get({dyn, sig.heads, dyn, sig.headDim}, et);
  auto kv = MemRefType::get({dyn, sig.kvHeads, dyn, sig.headDim}, et);
  auto lse = MemRefType::get({dyn, sig.heads, dyn}, f32);
  auto scores = MemRefType::get({dyn, hg, dyn, dyn}, f32);
  auto counts = MemRefType::get({dyn, hg, dyn}, i32);
  auto indices = MemRefType::get({dyn, hg, dyn, dyn}, i32);

  Location loc = NameLoc::get(b.getStringAttr(
      llvm::formatv("entry points for Hq={0}, Hkv={1}, D={2}, {3}", sig.heads,
                    sig.kvHeads, sig.headDim, sig.dtype)
          .str()));
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());

  auto checkType = b.getFunctionType(
      {b.getI64Type(), b.getI64Type(), b.getI64Type(), b.getI32Type()},
      {b.getI32Type()});
  func::FuncOp::create(b, loc, kCheckWorkspace, checkType).setPrivate();

  // @attention(q, k, v, o, lse): one unisparse.attention. On the CPU, its
  // body is built after @attention_layout's, which it calls.
  bool cpu = sig.target == EntryTarget::cpu;
  func::FuncOp attention;
  if (!cpu)
    attention =
        buildBody(b, loc, "attention", {q, kv, kv}, {q, lse},
                  [&](ArrayRef<Value> in, ArrayRef<Value> out) {
                    auto op = AttentionOp::create(
                        b, loc, TypeRange{out[0].getType(), out[1].getType()},
                        cfg, in[0], in[1], in[2], out[0], out[1]);
                    return SmallVector<Value>(op.getResults());
                  });

  // @layout(q, k, scores, counts, indices): the estimation stages alone.
  bool ok = true;
  func::FuncOp layout = buildBody(
      b, loc, "layout", {q, kv}, {scores, counts, indices},
      [&](ArrayRef<Value> in, ArrayRef<Value> out) {
        FailureOr<AttentionShape> shape =
            getAttentionShape(b, loc, in[0], in[1]);
        ok = succeeded(shape); // static heads: always
        if (!ok)
          return SmallVector<Value>(out);
        EstimationValues est = buildEstimation(b, loc, cfg, *shape, in[0],
                                               in[1], out[0], out[1], out[2]);
        return SmallVector<Value>{est.scores, est.counts, est.indices};
      });

  // @attention_layout(q, k, v, o, lse, counts, indices): what @attention
  // computes (the same stages, as unisparse.attention decomposes) with the
  // layout it used, so a caller that wants both runs the estimation once.
  func::FuncOp attentionLayout = buildBody(
      b, loc, "attention_layout", {q, kv, kv}, {q, lse, counts, indices},
      [&](ArrayRef<Value> in, ArrayRef<Value> out) {
        FailureOr<AttentionShape> shape =
            getAttentionShape(b, loc, in[0], in[1]);
        ok = ok && succeeded(shape);
        if (failed(shape))
          return SmallVector<Value>(out);
        OpFoldResult blocks = numBlocksOfr(b, loc, shape->seq, cfg.getBlock());
        EstimationValues layout = buildLayout(b, loc, cfg, *shape, blocks,
                                              in[0], in[1], out[2], out[3]);
        SmallVector<Value> results(buildBlockSparseAttention(
            b, loc, cfg, in[0], in[1], in[2], layout.counts, layout.indices,
            out[0], out[1]));
        results.append({layout.counts, layout.indices});
        return results;
      });
  if (!ok) {
    error = "the entry module does not verify";
    return failure();
  }
  if (cpu) {
    b.setInsertionPoint(layout);
    attention = buildAttentionCall(b, loc, cfg, {q, kv, kv}, {q, lse},
                                   {counts, indices}, attentionLayout);
  }

  // The guards, in front of the bodies they call: the same size rule for
  // every entry point, with the score map as the target's pipeline will
  // materialise it.
  Operation *scoreOp = nullptr;
  layout.walk([&](BlockScoreOp op) { scoreOp = op; });
  bool cuda = sig.target == EntryTarget::cuda;
  Guard guard{
      EstimationParams::of(cfg),
      {sig.heads, sig.kvHeads, sig.headDim, et.getIntOrFloatBitWidth() / 8},
      scoreMapTiling(cfg, sig, scoreOp),
      cuda ? /*UNISPARSE_DEVICE_CUDA=*/1 : /*UNISPARSE_DEVICE_CPU=*/0};
  for (func::FuncOp body : {attention, layout, attentionLayout}) {
    b.setInsertionPoint(body);
    buildGuard(b, loc, body.getSymName().drop_back(strlen("_impl")), body,
               guard);
  }
  if (failed(verify(*module))) {
    error = "the entry module does not verify";
    return failure();
  }
  return module;
}

FailureOr<ConfigAttr> mlir::unisparse::parseConfig(MLIRContext *ctx,
                                                   llvm::StringRef text,
                                                   std::string &error) {
  std::string full = text.trim().str();
  if (!llvm::StringRef(full).starts_with("#"))
    full = "#unisparse.config<" + full + ">";
  std::string diagText;
  ScopedDiagnosticHandler handler(ctx, [&](Diagnostic &diag) {
    diagText += diag.str() + "\n";
    return success();
  });
  Attribute attr = parseAttribute(full, ctx);
  auto cfg = llvm::dyn_cast_or_null<ConfigAttr>(attr);
  if (!cfg) {
    error = "invalid configuration '" + full + "'" +
            (diagText.empty() ? std::string() : ": " + diagText);
    return failure();
  }
  return cfg;
}
