//===- UnisparseToGPU.cpp - convert-unisparse-to-gpu pass -----------------===//

#include "unisparse/Conversion/UnisparseToGPU/UnisparseToGPU.h"
#include "GpuBuilder.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Transforms/WalkPatternRewriteDriver.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_CONVERTUNISPARSETOGPUPASS
#define GEN_PASS_DEF_UNISPARSENARROWCOMPOSITESPASS
#include "unisparse/Conversion/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;
using namespace mlir::unisparse;
using namespace mlir::unisparse::gpu_detail;

/// The attribute that marks the launches this pass builds (their outlined
/// kernels get unique names from it).
static constexpr StringLiteral kKernelNameAttr = "unisparse.kernel";
/// Attributes for the outlined kernel of a launch (see buildLaunch).
static constexpr StringLiteral kKernelAttrsAttr = "unisparse.kernel_attrs";

void mlir::unisparse::gpu_detail::buildLaunch(
    ImplicitLocOpBuilder &b, Value blocks, int64_t threads,
    ArrayRef<MemRefType> workgroup, StringRef name,
    function_ref<void(ImplicitLocOpBuilder &, Value, Value, ValueRange)> body,
    Value dynamicSharedBytes, DictionaryAttr kernelAttributes) {
  Value one = arith::ConstantIndexOp::create(b, 1);
  Value block = arith::ConstantIndexOp::create(b, threads);
  SmallVector<Type> wgTypes(workgroup.begin(), workgroup.end());
  auto launch = gpu::LaunchOp::create(b, blocks, one, one, block, one, one,
                                      dynamicSharedBytes, /*asyncTokenType=*/
                                      nullptr, ValueRange{}, wgTypes);
  launch->setAttr(kKernelNameAttr, b.getStringAttr(name));
  if (kernelAttributes && !kernelAttributes.empty())
    launch->setAttr(kKernelAttrsAttr, kernelAttributes);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(&launch.getBody().front());
  body(b, launch.getThreadIds().x, launch.getBlockIds().x,
       launch.getWorkgroupAttributions());
  gpu::TerminatorOp::create(b);
}

Value mlir::unisparse::gpu_detail::rowsAligned(ImplicitLocOpBuilder &b,
                                               Value memref, int64_t bytes) {
  auto type = cast<MemRefType>(memref.getType());
  int64_t elementBytes = type.getElementTypeBitWidth() / 8;
  auto meta = memref::ExtractStridedMetadataOp::create(b, memref);
  Value ptr = memref::ExtractAlignedPointerAsIndexOp::create(b, memref);
  Value eb = arith::ConstantIndexOp::create(b, elementBytes);
  Value mask = arith::ConstantIndexOp::create(b, bytes - 1);
  Value zero = arith::ConstantIndexOp::create(b, 0);
  Value start = arith::AddIOp::create(
      b, ptr, arith::MulIOp::create(b, meta.getOffset(), eb));
  Value bad = arith::AndIOp::create(b, start, mask);
  ValueRange strides = meta.getStrides();
  for (Value stride : strides.drop_back())
    bad = arith::OrIOp::create(
        b, bad,
        arith::AndIOp::create(b, arith::MulIOp::create(b, stride, eb), mask));
  Value ok = arith::CmpIOp::create(b, arith::CmpIPredicate::eq, bad, zero);
  Value unit =
      arith::CmpIOp::create(b, arith::CmpIPredicate::eq, strides.back(),
                            arith::ConstantIndexOp::create(b, 1));
  return arith::AndIOp::create(b, ok, unit);
}

std::string
mlir::unisparse::gpu_detail::compositeRowsUnaligned(Value composites) {
  auto type = dyn_cast<MemRefType>(composites.getType());
  if (!type || type.getLayout().isIdentity())
    return "";
  int64_t elementBytes = type.getElementTypeBitWidth() / 8;
  SmallVector<int64_t> strides;
  int64_t offset;
  bool aligned = succeeded(type.getStridesAndOffset(strides, offset)) &&
                 !strides.empty() && strides.back() == 1;
  auto multiple = [&](int64_t v) {
    return !ShapedType::isDynamic(v) && (v * elementBytes) % 16 == 0;
  };
  aligned = aligned && multiple(offset);
  for (int64_t stride : ArrayRef(strides).drop_back())
    aligned = aligned && multiple(stride);
  if (aligned)
    return "";
  std::string layout;
  llvm::raw_string_ostream os(layout);
  type.getLayout().print(os);
  return "the composites' rows must start on 16-byte boundaries (the "
         "kernel copies them by 16-byte cp.async): the identity layout, or "
         "an innermost stride of 1 and an offset and other strides that are "
         "static multiples of 16 bytes, not " +
         layout;
}

Value mlir::unisparse::gpu_detail::compositesOfType(ImplicitLocOpBuilder &b,
                                                    Value value, Type type) {
  auto tensorType = cast<RankedTensorType>(value.getType());
  if (tensorType.getElementType() == type)
    return value;
  auto target = tensorType.clone(type);
  // The compress that made the composites writes 16 bits itself (its sums
  // stay f32; each value is rounded once: a mean, or an outlier
  // composite's slot). Sizes come from its init, so the f32 compress is
  // left dead.
  if (auto compress = value.getDefiningOp<CompressOp>()) {
    if (auto empty = compress.getInit().getDefiningOp<tensor::EmptyOp>()) {
      Value init = tensor::EmptyOp::create(b, empty.getMixedSizes(), type);
      return CompressOp::create(
                 b, target, compress.getInput(), compress.getQueries(), init,
                 compress.getSeqFactorAttr(), compress.getHeadFactorAttr(),
                 compress.getKvGroupAttr(), compress.getPoolingAttr(),
                 compress.getOutliersAttr(), compress.getHotAttr(),
                 compress.getSpreadAttr())
          .getResult();
    }
  }
  Value init = tensor::EmptyOp::create(
      b, tensor::getMixedSizes(b, b.getLoc(), value), type);
  MLIRContext *ctx = b.getContext();
  auto id = AffineMap::getMultiDimIdentityMap(tensorType.getRank(), ctx);
  return linalg::GenericOp::create(
             b, TypeRange{target}, ValueRange{value}, ValueRange{init},
             ArrayRef<AffineMap>{id, id},
             SmallVector<utils::IteratorType>(tensorType.getRank(),
                                              utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location loc, ValueRange args) {
               linalg::YieldOp::create(
                   nb, loc,
                   arith::TruncFOp::create(nb, loc, type, args[0]).getResult());
             })
      .getResult(0);
}

namespace {
/// The 16-bit type named by a pass option, or null.
Type compositeTypeNamed(MLIRContext *ctx, StringRef name) {
  if (name == "bf16")
    return BFloat16Type::get(ctx);
  if (name == "f16")
    return Float16Type::get(ctx);
  return Type();
}

struct UnisparseNarrowCompositesPass
    : unisparse::impl::UnisparseNarrowCompositesPassBase<
          UnisparseNarrowCompositesPass> {
  using Base::Base;

  void runOnOperation() override {
    ScoreKernelOptions options;
    options.warps = warps;
    options.warpRows = warpRows;
    options.keyTile = keyTile;
    options.outlierKeyTile = outlierKeyTile;
    options.compositeType = compositeTypeNamed(&getContext(), type);
    if (!options.compositeType) {
      getOperation()->emitError()
          << "type must be bf16 or f16, got '" << type << "'";
      return signalPassFailure();
    }
    SmallVector<BlockScoreOp> work;
    getOperation()->walk([&](BlockScoreOp op) {
      if (op.hasPureTensorSemantics() &&
          tensorCoreScoreUnsupportedReason(op, options).empty())
        work.push_back(op);
    });
    for (BlockScoreOp op : work) {
      OpBuilder builder(op);
      ImplicitLocOpBuilder b(op.getLoc(), builder);
      Value qc = compositesOfType(b, op.getQc(), options.compositeType);
      Value kc = compositesOfType(b, op.getKc(), options.compositeType);
      op.getQcMutable().assign(qc);
      op.getKcMutable().assign(kc);
    }
    // The f32 compresses left without users.
    getOperation()->walk([&](CompressOp op) {
      if (op->use_empty())
        op->erase();
    });
  }
};

struct ConvertUnisparseToGPUPass
    : unisparse::impl::ConvertUnisparseToGPUPassBase<
          ConvertUnisparseToGPUPass> {
  using Base::Base;

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    ModuleOp module = getOperation();
    if (warps <= 0 || keyTile <= 0 || keyTile % 16 != 0 || ctas <= 0 ||
        outlierKeyTile <= 0 || outlierKeyTile % 16 != 0)
      return fail("warps and ctas must be positive and key-tile and "
                  "outlier-key-tile positive multiples of 16");
    if (warpRows != 16 && warpRows != 32)
      return fail("warp-rows must be 16 or 32");
    if (minCtasPerSm < 0 || minCtasPerSm > 32)
      return fail("min-ctas-per-sm must be in [0, 32]");
    if (epilogue != "fused" && epilogue != "separate")
      return fail("epilogue must be fused or separate, got '" + epilogue + "'");
    if (scratchBytes < 0)
      return fail("scratch-bytes must be 0 (unbounded) or positive, got " +
                  Twine(scratchBytes));
    if (partials != "f16" && partials != "f32")
      return fail("partials must be f16 or f32, got '" + partials + "'");
    if (outlierExp2Poly < 0 || outlierExp2Poly > 8)
      return fail("outlier-exp2-poly must be in [0, 8], got " +
                  Twine(outlierExp2Poly));
    ScoreKernelOptions options;
    options.warps = warps;
    options.warpRows = warpRows;
    options.keyTile = keyTile;
    options.outlierKeyTile = outlierKeyTile;
    options.ctas = ctas;
    options.minCtasPerSm = minCtasPerSm;
    options.separateEpilogue = epilogue == "separate";
    options.scratchBytes = scratchBytes;
    options.halfPartials = partials == "f16";
    options.outlierExp2Poly = outlierExp2Poly;
    options.outlierTileFactors = outlierTileFactors;
    options.outlierUnrollSlots = outlierUnrollSlots;
    options.outlierWgmma = outlierWgmma;
    options.fuseQueryPooling = fuseQueryPooling;
    options.prefetchQueries = prefetchQueries;

    // Which scoring kernels pool their queries, decided before anything is
    // lowered; their compresses are skipped, then erased with their buffers.
    FusedQueryPooling fused(module, options);
    RewritePatternSet patterns(ctx);
    populateCompressToGPUPatterns(patterns, fused);
    populateOutlierCompressToGPUPatterns(patterns);
    populateBlockScoreToGPUPatterns(patterns, options, fused);
    populateOutlierScoreToGPUPatterns(patterns, options);
    populateBlockSelectToGPUPatterns(patterns);
    populateSlashRefineToGPUPatterns(patterns);
    walkAndApplyPatterns(module, std::move(patterns));
    fused.eraseFused();
    // A buffer-form op that no pattern took (its pattern reported why).
    WalkResult left = module.walk([&](Operation *op) {
      if (isa<CompressOp, BlockScoreOp, BlockSelectOp, SlashRefineOp>(op) &&
          cast<DestinationStyleOpInterface>(op).hasPureBufferSemantics())
        return WalkResult::interrupt();
      return WalkResult::advance();
    });
    if (left.wasInterrupted())
      return signalPassFailure();

    // Kernel names, unique within the module: <name>_<n>.
    llvm::StringMap<unsigned> seen;
    SmallVector<NamedAttribute> kernelAttributes;
    if (auto old =
            module->getAttrOfType<DictionaryAttr>(kKernelAttributesAttrName))
      llvm::append_range(kernelAttributes, old.getValue());
    module.walk([&](gpu::LaunchOp launch) {
      auto name = launch->getAttrOfType<StringAttr>(kKernelNameAttr);
      if (!name)
        return;
      std::string unique =
          (name.getValue() + "_" + Twine(seen[name.getValue()]++)).str();
      launch.setFunctionAttr(FlatSymbolRefAttr::get(ctx, unique));
      launch.setModuleAttr(FlatSymbolRefAttr::get(ctx, unique + "_module"));
      launch->removeAttr(kKernelNameAttr);
      if (auto attrs =
              launch->getAttrOfType<DictionaryAttr>(kKernelAttrsAttr)) {
        kernelAttributes.push_back(NamedAttribute(unique, attrs));
        launch->removeAttr(kKernelAttrsAttr);
      }
    });
    // For unisparse-gpu-kernel-attributes, after outlining.
    if (!kernelAttributes.empty())
      module->setAttr(kKernelAttributesAttrName,
                      DictionaryAttr::get(ctx, kernelAttributes));
  }

  void fail(const Twine &message) {
    getOperation()->emitError() << message;
    signalPassFailure();
  }
};
} // namespace
