//===- unisparse-fuzz.cpp - libFuzzer target over the CPU compile path ----===//
//
// Each input is MLIR text. It is parsed, verified, decomposed, canonicalized
// and run through `unisparse-to-cpu`: every input must either be rejected
// with a diagnostic or compile; a crash, a sanitizer report (the project's
// sources are built with ASan/UBSan) or a failed assertion is a finding.
// Build and run with scripts/fuzz.sh (seed corpus: the lit tests; dictionary:
// test/Fuzz/unisparse.dict).
//
//===----------------------------------------------------------------------===//

#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"
#include "unisparse/Pipelines/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

using namespace mlir;

namespace {
/// One context for the whole run (creating one per input costs more than
/// most inputs): threading off, diagnostics swallowed.
MLIRContext &context() {
  static MLIRContext *ctx = [] {
    DialectRegistry registry;
    unisparse::registerUnisparseDependencies(registry);
    auto *c = new MLIRContext(registry, MLIRContext::Threading::DISABLED);
    c->loadAllAvailableDialects();
    c->printOpOnDiagnostic(false);
    return c;
  }();
  return *ctx;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MLIRContext &ctx = context();
  ScopedDiagnosticHandler quiet(&ctx, [](Diagnostic &) { return success(); });
  ParserConfig config(&ctx);
  // The MLIR lexer reads up to a NUL terminator, which libFuzzer's buffer
  // lacks: parse a NUL-terminated copy (as a file read by mlir-opt is).
  std::string text(reinterpret_cast<const char *>(data), size);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, config);
  if (!module || failed(verify(*module)))
    return 0;
  PassManager pm(&ctx);
  pm.addPass(unisparse::createUnisparseDecompose());
  pm.addPass(createCanonicalizerPass());
  unisparse::UnisparseToCPUPipelineOptions options;
  unisparse::buildUnisparseToCPUPipeline(pm, options);
  (void)pm.run(*module);
  return 0;
}
