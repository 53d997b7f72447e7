//===- unisparse-opt.cpp - the unisparse optimizer driver -----------------===//
//
// Registers only what the unisparse passes and pipelines need (no
// registerAllDialects / registerAllPasses: they slow every link), plus the
// few upstream passes that the lit tests run on their own.
//
//===----------------------------------------------------------------------===//

#include "unisparse/Conversion/Passes.h"
#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"
#include "unisparse/Pipelines/Pipelines.h"
#include "unisparse/Version.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/CommandLine.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::unisparse::registerUnisparseDependencies(registry);

  mlir::unisparse::registerUnisparsePasses();
  mlir::unisparse::registerUnisparseConversionPasses();
  mlir::unisparse::registerUnisparsePipelines();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  mlir::bufferization::registerOneShotBufferizePass();
  // The GPU steps that lit tests exercise on their own.
  mlir::registerConvertParallelLoopToGpuPass();
  mlir::registerGpuKernelOutliningPass();
  llvm::cl::AddExtraVersionPrinter(mlir::unisparse::printVersion);

  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "UniSparse optimizer driver\n", registry));
}
