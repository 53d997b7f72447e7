/*===- unisparse-capi-test.c - exercise the unisparse C API ---------------===*/
/* Run by capi.test. */

#include "unisparse-c/Unisparse.h"

#include <stdio.h>
#include <string.h>

/* mlirStringRefCreate is header-only: the test needs nothing but
   libUnisparseCAPI.so. */
static MlirStringRef str(const char *s) {
  return mlirStringRefCreate(s, strlen(s));
}

static void printToStdout(MlirStringRef s, void *userData) {
  (void)userData;
  fwrite(s.data, 1, s.length, stdout);
}

static void countDiagnostics(MlirStringRef s, void *userData) {
  ++*(int *)userData;
  fwrite(s.data, 1, s.length, stdout);
}

static const char *kModule =
    "func.func @f(%q: tensor<1x4x?x32xf32>, %k: tensor<1x2x?x32xf32>,\n"
    "             %v: tensor<1x2x?x32xf32>, %o: tensor<1x4x?x32xf32>,\n"
    "             %l: tensor<1x4x?xf32>) -> (tensor<1x4x?x32xf32>, "
    "tensor<1x4x?xf32>) {\n"
    "  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, tau "
    "= 1.0>}\n"
    "      ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, "
    "tensor<1x2x?x32xf32>)\n"
    "      outs(%o, %l : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>)\n"
    "      -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>\n"
    "  return %r#0, %r#1 : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>\n"
    "}\n";

int main(void) {
  MlirContext ctx = unisparseContextCreate();
  int diagnostics = 0;

  /* A valid module parses and prints. */
  MlirModule module =
      unisparseModuleParse(ctx, str(kModule), countDiagnostics, &diagnostics);
  if (mlirModuleIsNull(module)) {
    fprintf(stderr, "parse failed\n");
    return 1;
  }
  // CHECK-LABEL: parsed:
  printf("parsed:\n");
  unisparseModulePrint(module, false, printToStdout, NULL);
  // CHECK: unisparse.attention {config = #unisparse.config<block = 64, tau
  // = 1.0>}

  /* Decompose: tau = 1 keeps every block, so no estimation is emitted. */
  // CHECK-LABEL: decomposed:
  printf("\ndecomposed:\n");
  if (mlirLogicalResultIsFailure(
          unisparseRunPipeline(module, str("unisparse-decompose,canonicalize"),
                               countDiagnostics, &diagnostics)))
    return 2;
  unisparseModulePrint(module, false, printToStdout, NULL);
  // CHECK-NOT: unisparse.compress
  // CHECK: unisparse.dense_layout
  // CHECK: unisparse.block_sparse_attention

  /* The whole CPU pipeline leaves only the LLVM dialect and a runtime call. */
  // CHECK-LABEL: lowered:
  printf("\nlowered:\n");
  if (mlirLogicalResultIsFailure(unisparseRunPipeline(
          module, str("unisparse-to-cpu"), countDiagnostics, &diagnostics)))
    return 3;
  unisparseModulePrint(module, false, printToStdout, NULL);
  // CHECK: llvm.func private @unisparse_rt_block_sparse_attention_f32
  // CHECK: llvm.call @_mlir_ciface_unisparse_rt_block_sparse_attention_f32
  // CHECK-NOT: unisparse.
  unisparseModuleDestroy(module);

  /* Bad IR is reported through the callback, and parsing returns null. */
  // CHECK-LABEL: invalid:
  printf("\ninvalid:\n");
  diagnostics = 0;
  MlirModule bad = unisparseModuleParse(
      ctx,
      str("func.func @g(%s: tensor<1x2x4x4xf32>, %c: tensor<1x2x4xi32>, "
          "%i: tensor<1x2x4x4xi32>) {\n"
          "  %a:2 = unisparse.block_select {tau = 1.5} ins(%s : "
          "tensor<1x2x4x4xf32>)"
          " outs(%c, %i : tensor<1x2x4xi32>, tensor<1x2x4x4xi32>)"
          " -> tensor<1x2x4xi32>, tensor<1x2x4x4xi32>\n  return\n}\n"),
      countDiagnostics, &diagnostics);
  // CHECK: attribute 'tau' must be in (0, 1], found 1.5{{$}}
  printf("null=%d diagnostics=%d\n", mlirModuleIsNull(bad), diagnostics);
  // CHECK: null=1 diagnostics=1

  /* A malformed pipeline is an error, not a crash. */
  // CHECK-LABEL: bad pipeline:
  printf("\nbad pipeline:\n");
  MlirModule empty = unisparseModuleParse(ctx, str("module {}"), NULL, NULL);
  MlirLogicalResult r =
      unisparseRunPipeline(empty, str("no-such-pass"), printToStdout, NULL);
  // CHECK: invalid pass pipeline
  printf("\nfailed=%d\n", mlirLogicalResultIsFailure(r));
  // CHECK: failed=1
  unisparseModuleDestroy(empty);

  unisparseContextDestroy(ctx);
  return 0;
}
