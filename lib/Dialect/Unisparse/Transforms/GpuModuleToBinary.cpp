//===- GpuModuleToBinary.cpp - gpu.modules to binaries in parallel --------===//
//
// Upstream's gpu-module-to-binary with each module's serialization on a
// thread of the context's pool; see the pass description in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/CompilationInterfaces.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Threading.h"

#include "llvm/ADT/Sequence.h"
#include "llvm/ADT/StringSwitch.h"

#include <optional>

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSEGPUMODULETOBINARY
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;

namespace {
struct UnisparseGpuModuleToBinaryPass
    : unisparse::impl::UnisparseGpuModuleToBinaryBase<
          UnisparseGpuModuleToBinaryPass> {
  using Base::Base;

  void runOnOperation() override {
    Operation *root = getOperation();
    MLIRContext *ctx = &getContext();
    std::optional<gpu::CompilationTarget> format =
        llvm::StringSwitch<std::optional<gpu::CompilationTarget>>(
            compilationTarget)
            .Cases({"offloading", "llvm"}, gpu::CompilationTarget::Offload)
            .Cases({"assembly", "isa"}, gpu::CompilationTarget::Assembly)
            .Cases({"binary", "bin"}, gpu::CompilationTarget::Binary)
            .Cases({"fatbinary", "fatbin"}, gpu::CompilationTarget::Fatbin)
            .Default(std::nullopt);
    if (!format) {
      root->emitError() << "unisparse-gpu-module-to-binary: invalid format '"
                        << compilationTarget
                        << "' (offloading, llvm, assembly, isa, binary, bin, "
                           "fatbinary or fatbin)";
      return signalPassFailure();
    }

    // The modules, in order; every one must name its targets.
    SmallVector<gpu::GPUModuleOp> modules;
    for (Region &region : root->getRegions())
      for (Block &block : region)
        for (auto module : block.getOps<gpu::GPUModuleOp>())
          modules.push_back(module);
    for (gpu::GPUModuleOp module : modules)
      if (!module.getTargetsAttr()) {
        module.emitError("the module has no target attributes");
        return signalPassFailure();
      }

    // The parent's symbol table, built here: the threads only read it.
    std::optional<SymbolTable> parentTable;
    if (Operation *table = SymbolTable::getNearestSymbolTable(root))
      parentTable.emplace(table);
    auto symbolTable = [&]() -> SymbolTable * {
      return parentTable ? &*parentTable : nullptr;
    };
    SmallVector<Attribute> libraries;
    for (const std::string &path : linkFiles)
      libraries.push_back(StringAttr::get(ctx, path));
    gpu::TargetOptions options(toolkitPath, libraries, cmdOptions, elfSection,
                               *format, symbolTable);

    // Each module's objects, one per target, serialized on its own thread
    // where every target is NVVM's (its serializer reads, and translating
    // may rewrite, only its own module's IR, and makes its own LLVM context;
    // other targets' serializers are not known to be safe so): in order
    // otherwise.
    bool parallel = llvm::all_of(modules, [](gpu::GPUModuleOp module) {
      return llvm::all_of(module.getTargetsAttr(), [](Attribute target) {
        return isa<NVVM::NVVMTargetAttr>(target);
      });
    });
    SmallVector<SmallVector<SmallVector<char, 0>>> serialized(modules.size());
    auto serialize = [&](size_t i) -> LogicalResult {
      gpu::GPUModuleOp module = modules[i];
      for (Attribute attr : module.getTargetsAttr()) {
        auto target = cast<gpu::TargetAttrInterface>(attr);
        std::optional<SmallVector<char, 0>> object =
            target.serializeToObject(module, options);
        if (!object)
          return module.emitError(
              "An error happened while serializing the module.");
        serialized[i].push_back(std::move(*object));
      }
      return success();
    };
    auto indices = llvm::seq<size_t>(0, modules.size());
    LogicalResult result =
        parallel ? failableParallelForEach(ctx, indices, serialize)
                 : success(llvm::all_of(indices, [&](size_t i) {
                     return succeeded(serialize(i));
                   }));
    if (failed(result))
      return signalPassFailure();

    // The objects and the binaries in the modules' order, each binary in its
    // module's place.
    OpBuilder builder(ctx);
    for (auto [module, objects] : llvm::zip_equal(modules, serialized)) {
      SmallVector<Attribute> attrs;
      for (auto [attr, object] :
           llvm::zip_equal(module.getTargetsAttr(), objects)) {
        Attribute created = cast<gpu::TargetAttrInterface>(attr).createObject(
            module, object, options);
        if (!created) {
          module.emitError("An error happened while creating the object.");
          return signalPassFailure();
        }
        attrs.push_back(created);
      }
      auto handler =
          dyn_cast_or_null<gpu::OffloadingLLVMTranslationAttrInterface>(
              module.getOffloadingHandlerAttr());
      builder.setInsertionPointAfter(module);
      gpu::BinaryOp::create(builder, module.getLoc(), module.getName(), handler,
                            builder.getArrayAttr(attrs));
      module->erase();
    }
  }
};
} // namespace
