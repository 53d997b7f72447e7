//===- Passes.h - unisparse conversion passes -------------------*- C++ -*-===//

#ifndef UNISPARSE_CONVERSION_PASSES_H
#define UNISPARSE_CONVERSION_PASSES_H

#include "unisparse/Conversion/UnisparseToGPU/UnisparseToGPU.h"
#include "unisparse/Conversion/UnisparseToLinalg/UnisparseToLinalg.h"
#include "unisparse/Conversion/UnisparseToRuntime/UnisparseToRuntime.h"

namespace mlir::unisparse {
#define GEN_PASS_REGISTRATION
#include "unisparse/Conversion/Passes.h.inc"
} // namespace mlir::unisparse

#endif // UNISPARSE_CONVERSION_PASSES_H
