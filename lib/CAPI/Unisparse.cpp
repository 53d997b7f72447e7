//===- Unisparse.cpp - C API of the unisparse compiler --------------------===//

#include "unisparse-c/Unisparse.h"
#include "unisparse/Conversion/Passes.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"
#include "unisparse/Pipelines/Pipelines.h"

#include "mlir/CAPI/IR.h"
#include "mlir/CAPI/Registration.h"
#include "mlir/CAPI/Support.h"
#include "mlir/CAPI/Utils.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

#include <mutex>

using namespace mlir;

MLIR_DEFINE_CAPI_DIALECT_REGISTRATION(Unisparse, unisparse,
                                      mlir::unisparse::UnisparseDialect)

void unisparseRegisterDependencies(MlirDialectRegistry registry) {
  unisparse::registerUnisparseDependencies(*unwrap(registry));
}

void unisparseRegisterPasses(void) {
  static std::once_flag once;
  std::call_once(once, [] {
    unisparse::registerUnisparsePasses();
    unisparse::registerUnisparseConversionPasses();
    unisparse::registerUnisparsePipelines();
    registerCanonicalizerPass();
    registerCSEPass();
    bufferization::registerOneShotBufferizePass();
  });
}

MlirContext unisparseContextCreate(void) {
  DialectRegistry registry;
  unisparse::registerUnisparseDependencies(registry);
  auto *ctx = new MLIRContext(registry);
  ctx->loadAllAvailableDialects();
  return wrap(ctx);
}

void unisparseContextDestroy(MlirContext context) { delete unwrap(context); }

namespace {
/// Forwards every diagnostic to a C callback while alive.
class DiagnosticForwarder {
public:
  DiagnosticForwarder(MLIRContext *ctx, MlirStringCallback callback,
                      void *userData)
      : handler(ctx, [=](Diagnostic &diag) {
          if (callback) {
            std::string text;
            llvm::raw_string_ostream os(text);
            os << diag.getLocation() << ": " << diag << "\n";
            callback(mlirStringRefCreate(text.data(), text.size()), userData);
          }
          return success();
        }) {}

private:
  ScopedDiagnosticHandler handler;
};
} // namespace

MlirModule unisparseModuleParse(MlirContext context, MlirStringRef source,
                                MlirStringCallback onDiagnostic,
                                void *userData) {
  MLIRContext *ctx = unwrap(context);
  DiagnosticForwarder forward(ctx, onDiagnostic, userData);
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(unwrap(source), ctx);
  if (!module)
    return MlirModule{nullptr};
  return MlirModule{module.release().getOperation()};
}

void unisparseModuleDestroy(MlirModule module) {
  if (module.ptr)
    unwrap(module)->erase();
}

MlirLogicalResult unisparseRunPipeline(MlirModule module,
                                       MlirStringRef pipeline,
                                       MlirStringCallback onDiagnostic,
                                       void *userData) {
  unisparseRegisterPasses();
  ModuleOp op = unwrap(module);
  MLIRContext *ctx = op.getContext();
  DiagnosticForwarder forward(ctx, onDiagnostic, userData);
  std::string text = unwrap(pipeline).str();
  // A bare pipeline ("unisparse-to-cpu") is anchored on the module.
  if (StringRef(text).trim().find('(') == StringRef::npos ||
      !StringRef(text).trim().starts_with("builtin.module"))
    text = "builtin.module(" + text + ")";
  std::string errors;
  llvm::raw_string_ostream errorStream(errors);
  FailureOr<OpPassManager> parsed = parsePassPipeline(text, errorStream);
  if (failed(parsed)) {
    if (onDiagnostic) {
      std::string msg = "invalid pass pipeline '" + text + "': " + errors;
      onDiagnostic(mlirStringRefCreate(msg.data(), msg.size()), userData);
    }
    return mlirLogicalResultFailure();
  }
  PassManager pm(ctx);
  static_cast<OpPassManager &>(pm) = std::move(*parsed);
  return wrap(pm.run(op));
}

void unisparseModulePrint(MlirModule module, bool generic,
                          MlirStringCallback callback, void *userData) {
  detail::CallbackOstream stream(callback, userData);
  OpPrintingFlags flags;
  if (generic)
    flags.printGenericOpForm();
  unwrap(module)->print(stream, flags);
  stream.flush();
}
