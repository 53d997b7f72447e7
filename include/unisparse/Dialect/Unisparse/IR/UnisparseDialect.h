//===- UnisparseDialect.h - unisparse dialect -------------------*- C++ -*-===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEDIALECT_H
#define UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEDIALECT_H

#include "mlir/IR/Dialect.h"

#include "unisparse/Dialect/Unisparse/IR/UnisparseDialect.h.inc"

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEDIALECT_H
