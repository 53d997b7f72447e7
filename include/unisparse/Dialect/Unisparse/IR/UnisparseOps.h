//===- UnisparseOps.h - unisparse operations --------------------*- C++ -*-===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEOPS_H
#define UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseDialect.h"

#define GET_OP_CLASSES
#include "unisparse/Dialect/Unisparse/IR/UnisparseOps.h.inc"

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEOPS_H
