/*===- Unisparse.h - C API of the unisparse compiler --------------*- C -*-===*\
|*                                                                            *|
|* For ML compilers that embed UniSparse.                                     *|
|*                                                                            *|
|* Two ways in:                                                               *|
|*  - with MLIR's own C API: mlirGetDialectHandle__unisparse__(),             *|
|*    unisparseRegisterDependencies() and unisparseRegisterPasses() plug the  *|
|*    dialect, its passes and pipelines into your context and registry;       *|
|*  - self-contained: unisparseContextCreate / unisparseModuleParse /         *|
|*    unisparseRunPipeline / unisparseModulePrint need nothing but this       *|
|*    library (libUnisparseCAPI.so).                                          *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef UNISPARSE_C_UNISPARSE_H
#define UNISPARSE_C_UNISPARSE_H

#include "mlir-c/IR.h"
#include "mlir-c/RegisterEverything.h"
#include "mlir-c/Support.h"

#ifdef __cplusplus
extern "C" {
#endif

/// `MlirDialectHandle mlirGetDialectHandle__unisparse__(void)`.
MLIR_DECLARE_CAPI_DIALECT_REGISTRATION(Unisparse, unisparse);

/// Adds the unisparse dialect and every dialect / interface model its passes
/// and pipelines need to `registry`.
MLIR_CAPI_EXPORTED void
unisparseRegisterDependencies(MlirDialectRegistry registry);

/// Registers the unisparse passes and the `unisparse-to-cpu` pipeline in the
/// global pass registry (idempotent), so textual pipelines can name them.
MLIR_CAPI_EXPORTED void unisparseRegisterPasses(void);

/// A new context with the unisparse dialect and its dependencies registered
/// and loaded. Destroy it with unisparseContextDestroy.
MLIR_CAPI_EXPORTED MlirContext unisparseContextCreate(void);
MLIR_CAPI_EXPORTED void unisparseContextDestroy(MlirContext context);

/// Parses `source`. On failure returns a null module (mlirModuleIsNull) and
/// passes each diagnostic to `onDiagnostic` (which may be null).
MLIR_CAPI_EXPORTED MlirModule
unisparseModuleParse(MlirContext context, MlirStringRef source,
                     MlirStringCallback onDiagnostic, void *userData);
MLIR_CAPI_EXPORTED void unisparseModuleDestroy(MlirModule module);

/// Runs a textual pass pipeline on the module, e.g. "unisparse-to-cpu" or
/// "builtin.module(unisparse-decompose,canonicalize)". Diagnostics (including
/// a malformed pipeline) go to `onDiagnostic`.
MLIR_CAPI_EXPORTED MlirLogicalResult
unisparseRunPipeline(MlirModule module, MlirStringRef pipeline,
                     MlirStringCallback onDiagnostic, void *userData);

/// Prints the module (generic form when `generic` is true).
MLIR_CAPI_EXPORTED void unisparseModulePrint(MlirModule module, bool generic,
                                             MlirStringCallback callback,
                                             void *userData);

#ifdef __cplusplus
}
#endif

#endif // UNISPARSE_C_UNISPARSE_H
