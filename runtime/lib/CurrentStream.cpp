//===- CurrentStream.cpp - The thread's current CUDA stream ---------------===//
//
// unisparse_rt_set_current_stream / unisparse_rt_get_current_stream: a
// thread-local CUstream that the CUDA backend and the mgpu* functions use in
// place of their own streams (see unisparse_runtime.h). Present in every
// build, so that callers need not know whether CUDA was compiled in.
//
//===----------------------------------------------------------------------===//

#include "unisparse/runtime/unisparse_runtime.h"

namespace {
thread_local void *currentStream = nullptr;
} // namespace

extern "C" {

void unisparse_rt_set_current_stream(void *cuStream) {
  currentStream = cuStream;
}

void *unisparse_rt_get_current_stream(void) { return currentStream; }

} // extern "C"
