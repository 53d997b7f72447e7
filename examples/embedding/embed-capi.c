/*===- embed-capi.c - the UniSparse C API from a consumer's C program -----===*/
/* Parses a module with unisparse.attention, lowers it with the
 * unisparse-to-cpu pipeline and prints the result; then shows that a bad
 * configuration comes back as a diagnostic. test/capi.test checks the
 * output. */

#include "unisparse-c/Unisparse.h"

#include <stdio.h>
#include <string.h>

static MlirStringRef str(const char *s) {
  return mlirStringRefCreate(s, strlen(s));
}

static void print(MlirStringRef s, void *userData) {
  fwrite(s.data, 1, s.length, (FILE *)userData);
}

/* Grouped-query attention, bf16: 8 query heads over 2 key/value heads,
 * head groups of 2 sharing one block layout. */
static const char *kModule =
    "!q = tensor<1x8x?x64xbf16>\n"
    "!kv = tensor<1x2x?x64xbf16>\n"
    "!lse = tensor<1x8x?xf32>\n"
    "func.func @attn(%q: !q, %k: !kv, %v: !kv, %o: !q, %l: !lse) -> (!q, !lse) "
    "{\n"
    "  %r:2 = unisparse.attention {config = #unisparse.config<block = 128, "
    "c_q = 16, c_k = 8, c_h = 2, tau = 0.95>}\n"
    "      ins(%q, %k, %v : !q, !kv, !kv) outs(%o, %l : !q, !lse) -> !q, !lse\n"
    "  return %r#0, %r#1 : !q, !lse\n"
    "}\n";

static const char *kBadConfig =
    "func.func @bad() attributes {c = #unisparse.config<block = 100, "
    "c_q = 16>} {\n  return\n}\n";

int main(void) {
  MlirContext ctx = unisparseContextCreate();
  MlirModule module = unisparseModuleParse(ctx, str(kModule), print, stderr);
  if (mlirModuleIsNull(module)) {
    fprintf(stderr, "embed-capi: the module did not parse\n");
    return 1;
  }
  if (mlirLogicalResultIsFailure(unisparseRunPipeline(
          module, str("unisparse-to-cpu"), print, stderr))) {
    fprintf(stderr, "embed-capi: unisparse-to-cpu failed\n");
    return 1;
  }
  printf("lowered:\n");
  unisparseModulePrint(module, false, print, stdout);
  unisparseModuleDestroy(module);

  printf("\nbad configuration:\n");
  MlirModule bad = unisparseModuleParse(ctx, str(kBadConfig), print, stdout);
  printf("\nnull module: %d\n", mlirModuleIsNull(bad));
  unisparseContextDestroy(ctx);
  return 0;
}
