//===- Error.h - Sticky per-thread runtime errors ---------------*- C++ -*-===//
//
// Every runtime entry point reports failure by returning a status and by
// recording it, with a message, as the calling thread's sticky error (read
// through unisparse_rt_last_error / unisparse_rt_last_error_message).
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_LIB_COMMON_ERROR_H
#define UNISPARSE_RUNTIME_LIB_COMMON_ERROR_H

#include "unisparse/runtime/unisparse_runtime.h"

namespace unisparse::rt {

/// Records `status` with a printf-formatted message as this thread's sticky
/// error and returns `status`, so that callers can `return setError(...)`.
/// The message is truncated to a fixed size; it never allocates.
unisparse_status_t setError(unisparse_status_t status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/// A short name ("f32", "bf16", ...) for a dtype value, or "<invalid>".
const char *dtypeName(int32_t dtype);

/// A short name ("cpu", "cuda") for a device value, or "<invalid>".
const char *deviceName(int32_t device);

} // namespace unisparse::rt

#endif // UNISPARSE_RUNTIME_LIB_COMMON_ERROR_H
