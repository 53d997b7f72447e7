//===- GpuDedupModules.cpp - one gpu.module per identical kernel ----------===//
//
// The entry module holds the estimation once per entry point, so outlining
// gives each of its kernels up to three times; see the pass description in
// Passes.td.
//
//===----------------------------------------------------------------------===//

#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/AttrTypeSubElements.h"
#include "mlir/IR/SymbolTable.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::unisparse {
#define GEN_PASS_DEF_UNISPARSEGPUDEDUPMODULES
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h.inc"
} // namespace mlir::unisparse

using namespace mlir;

namespace {
/// The symbols a gpu.module defines directly, in the order of its body.
SmallVector<Operation *> definedSymbols(gpu::GPUModuleOp module) {
  SmallVector<Operation *> symbols;
  for (Operation &op : module.getBody()->getOperations())
    if (isa<SymbolOpInterface>(op) &&
        op.getAttrOfType<StringAttr>(SymbolTable::getSymbolAttrName()))
      symbols.push_back(&op);
  return symbols;
}

/// The module as printed with its own name and the names of its functions
/// (`gpu.func`: the outlined kernels, named uniquely by outlining) replaced
/// by placeholders (`@__m`, `@__f<i>` by position), and references to them
/// inside it rewritten to match: two modules with the same key hold the same
/// code. Every other symbol keeps its name (an external declaration such as
/// a libdevice function is what its name says). Locations are not printed.
std::string moduleKey(gpu::GPUModuleOp module) {
  // Work on a clone, so that the renaming cannot leak into the IR.
  OpBuilder b(module.getContext());
  auto clone = cast<gpu::GPUModuleOp>(b.clone(*module.getOperation()));
  MLIRContext *ctx = module.getContext();
  StringAttr moduleName = clone.getNameAttr();
  StringAttr placeholder = StringAttr::get(ctx, "__m");
  llvm::DenseMap<StringAttr, StringAttr> renamed;
  unsigned functions = 0;
  for (Operation *op : definedSymbols(clone)) {
    if (!isa<gpu::GPUFuncOp>(op))
      continue;
    StringAttr to = StringAttr::get(ctx, "__f" + Twine(functions++));
    renamed[SymbolTable::getSymbolName(op)] = to;
    SymbolTable::setSymbolName(op, to);
  }
  SymbolTable::setSymbolName(clone, placeholder);
  // References inside the module: @f (one of its functions) and
  // @module::@f (its own qualified names); every other one is kept. A
  // reference is rewritten whole and its parts are not visited again: a
  // nested leaf is a name inside another symbol table, not a reference to
  // this module's symbol of the same name.
  auto rename = [&](StringAttr name) {
    auto it = renamed.find(name);
    return it == renamed.end() ? name : it->second;
  };
  AttrTypeReplacer replacer;
  replacer.addReplacement(
      [&](SymbolRefAttr ref)
          -> std::optional<std::pair<Attribute, WalkResult>> {
        StringAttr root = ref.getRootReference();
        ArrayRef<FlatSymbolRefAttr> nested = ref.getNestedReferences();
        if (root != moduleName)
          return std::make_pair(SymbolRefAttr::get(rename(root), nested),
                                WalkResult::skip());
        SmallVector<FlatSymbolRefAttr> inner(nested);
        if (!inner.empty())
          inner.front() =
              FlatSymbolRefAttr::get(rename(inner.front().getAttr()));
        return std::make_pair(SymbolRefAttr::get(placeholder, inner),
                              WalkResult::skip());
      });
  clone->walk([&](Operation *op) {
    replacer.replaceElementsIn(op, /*replaceAttrs=*/true, /*replaceLocs=*/false,
                               /*replaceTypes=*/false);
  });
  std::string key;
  llvm::raw_string_ostream os(key);
  clone->print(os, OpPrintingFlags().printGenericOpForm().enableDebugInfo(
                       /*enable=*/false));
  clone->erase();
  return key;
}

struct UnisparseGpuDedupModulesPass
    : unisparse::impl::UnisparseGpuDedupModulesBase<
          UnisparseGpuDedupModulesPass> {
  void runOnOperation() override {
    ModuleOp top = getOperation();
    SmallVector<gpu::GPUModuleOp> modules(top.getOps<gpu::GPUModuleOp>());
    if (modules.size() < 2)
      return;

    // Each later module equal to an earlier one: the map from its symbols'
    // qualified references to the earlier module's.
    llvm::StringMap<gpu::GPUModuleOp> firstOfKey;
    DenseMap<SymbolRefAttr, SymbolRefAttr> redirect;
    SmallVector<gpu::GPUModuleOp> duplicates;
    for (gpu::GPUModuleOp module : modules) {
      auto [it, inserted] = firstOfKey.try_emplace(moduleKey(module), module);
      if (inserted)
        continue;
      gpu::GPUModuleOp kept = it->second;
      SmallVector<Operation *> from = definedSymbols(module);
      SmallVector<Operation *> to = definedSymbols(kept);
      // Equal keys print the same body, so the same symbols by position
      // (the same names but for the functions').
      assert(from.size() == to.size() && "equal modules, unequal symbols");
      redirect[SymbolRefAttr::get(module.getNameAttr())] =
          SymbolRefAttr::get(kept.getNameAttr());
      for (auto [a, b] : llvm::zip_equal(from, to))
        redirect[SymbolRefAttr::get(
            module.getNameAttr(),
            {FlatSymbolRefAttr::get(SymbolTable::getSymbolName(a))})] =
            SymbolRefAttr::get(
                kept.getNameAttr(),
                {FlatSymbolRefAttr::get(SymbolTable::getSymbolName(b))});
      duplicates.push_back(module);
    }
    if (duplicates.empty())
      return;

    AttrTypeReplacer replacer;
    // Whole references only (see moduleKey): a nested leaf that happens to
    // spell a merged module's name is not a reference to it.
    replacer.addReplacement(
        [&](SymbolRefAttr ref)
            -> std::optional<std::pair<Attribute, WalkResult>> {
          auto it = redirect.find(ref);
          return std::make_pair(it == redirect.end() ? Attribute(ref)
                                                     : Attribute(it->second),
                                WalkResult::skip());
        });
    top->walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (isa<gpu::GPUModuleOp>(op))
        return WalkResult::skip();
      replacer.replaceElementsIn(op, /*replaceAttrs=*/true,
                                 /*replaceLocs=*/false, /*replaceTypes=*/false);
      return WalkResult::advance();
    });
    for (gpu::GPUModuleOp module : duplicates)
      if (SymbolTable::symbolKnownUseEmpty(module, top))
        module.erase();
  }
};
} // namespace
