/*===- CApi.c - The runtime header compiled as C --------------------------===*
 *
 * Checks that unisparse_runtime.h is valid C, and lets the C++ tests pass
 * values only a C caller can (an out-of-range status code).
 *
 *===----------------------------------------------------------------------===*/

#include "unisparse/runtime/unisparse_runtime.h"

/* Calls unisparse_rt_status_string with an arbitrary int, as C allows. */
const char *capiStatusString(int32_t code) {
  return unisparse_rt_status_string((unisparse_status_t)code);
}

/* The size of the tensor descriptor as C sees it. */
int32_t capiTensorSize(void) { return (int32_t)sizeof(unisparse_tensor_t); }
