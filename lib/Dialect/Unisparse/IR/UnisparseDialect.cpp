//===- UnisparseDialect.cpp - unisparse dialect registration --------------===//

#include "unisparse/Dialect/Unisparse/IR/UnisparseDialect.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::unisparse;

#include "unisparse/Dialect/Unisparse/IR/UnisparseDialect.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.cpp.inc"

void UnisparseDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.cpp.inc"
      >();
}
