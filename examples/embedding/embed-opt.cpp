//===- embed-opt.cpp - an ML compiler's opt tool with UniSparse inside ----===//
//
// Upstream MLIR's dialects, extensions and passes, plus the unisparse
// dialect, its passes and its pipelines (unisparse-to-cpu,
// unisparse-to-nvptx), all from the installed package.
//
//===----------------------------------------------------------------------===//

#include "unisparse/Conversion/Passes.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"
#include "unisparse/Pipelines/Pipelines.h"
#include "unisparse/Version.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

#include "llvm/Support/CommandLine.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  mlir::registerAllPasses();

  mlir::unisparse::registerUnisparseDependencies(registry);
  mlir::unisparse::registerUnisparsePasses();
  mlir::unisparse::registerUnisparseConversionPasses();
  mlir::unisparse::registerUnisparsePipelines();
  llvm::cl::AddExtraVersionPrinter(mlir::unisparse::printVersion);

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "An ML compiler's opt tool with UniSparse\n", registry));
}
