//===- Error.cpp - Sticky per-thread runtime errors -----------------------===//
//
// The thread-local sticky status and message, and the C entry points that
// read and clear them.
//
//===----------------------------------------------------------------------===//

#include "common/Error.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace {
/// Size of the per-thread message buffer; longer messages are truncated.
constexpr int kMaxMessage = 1024;

// The sticky error of this thread. Plain arrays so that recording an error
// never allocates.
thread_local unisparse_status_t lastStatus = UNISPARSE_STATUS_SUCCESS;
thread_local char lastMessage[kMaxMessage] = "";
} // namespace

namespace unisparse::rt {

unisparse_status_t setError(unisparse_status_t status, const char *fmt, ...) {
  lastStatus = status;
  va_list args;
  va_start(args, fmt);
  int n = std::vsnprintf(lastMessage, kMaxMessage, fmt, args);
  va_end(args);
  if (n < 0)
    std::snprintf(lastMessage, kMaxMessage, "%s (message formatting failed)",
                  unisparse_rt_status_string(status));
  return status;
}

const char *dtypeName(int32_t dtype) {
  switch (dtype) {
  case UNISPARSE_DTYPE_F32:
    return "f32";
  case UNISPARSE_DTYPE_F16:
    return "f16";
  case UNISPARSE_DTYPE_BF16:
    return "bf16";
  case UNISPARSE_DTYPE_I32:
    return "i32";
  default:
    return "<invalid>";
  }
}

const char *deviceName(int32_t device) {
  switch (device) {
  case UNISPARSE_DEVICE_CPU:
    return "cpu";
  case UNISPARSE_DEVICE_CUDA:
    return "cuda";
  default:
    return "<invalid>";
  }
}

} // namespace unisparse::rt

//===----------------------------------------------------------------------===//
// C entry points.
//===----------------------------------------------------------------------===//

extern "C" {

const char *unisparse_rt_last_error_message(void) { return lastMessage; }

unisparse_status_t unisparse_rt_last_error(void) { return lastStatus; }

void unisparse_rt_clear_error(void) {
  lastStatus = UNISPARSE_STATUS_SUCCESS;
  lastMessage[0] = '\0';
}

const char *unisparse_rt_status_string(unisparse_status_t status) {
  // C callers may pass any int: read the bits as an int rather than as the
  // C++ enum, whose out-of-range values are undefined behavior.
  int32_t code;
  static_assert(sizeof(code) == sizeof(status), "enum must be 32-bit");
  std::memcpy(&code, &status, sizeof(code));
  switch (code) {
  case UNISPARSE_STATUS_SUCCESS:
    return "UNISPARSE_STATUS_SUCCESS";
  case UNISPARSE_STATUS_NULL_POINTER:
    return "UNISPARSE_STATUS_NULL_POINTER";
  case UNISPARSE_STATUS_INVALID_RANK:
    return "UNISPARSE_STATUS_INVALID_RANK";
  case UNISPARSE_STATUS_SHAPE_MISMATCH:
    return "UNISPARSE_STATUS_SHAPE_MISMATCH";
  case UNISPARSE_STATUS_UNSUPPORTED_DTYPE:
    return "UNISPARSE_STATUS_UNSUPPORTED_DTYPE";
  case UNISPARSE_STATUS_INVALID_STRIDE:
    return "UNISPARSE_STATUS_INVALID_STRIDE";
  case UNISPARSE_STATUS_INVALID_LAYOUT:
    return "UNISPARSE_STATUS_INVALID_LAYOUT";
  case UNISPARSE_STATUS_INVALID_ARGUMENT:
    return "UNISPARSE_STATUS_INVALID_ARGUMENT";
  case UNISPARSE_STATUS_DEVICE_MISMATCH:
    return "UNISPARSE_STATUS_DEVICE_MISMATCH";
  case UNISPARSE_STATUS_NOT_SUPPORTED:
    return "UNISPARSE_STATUS_NOT_SUPPORTED";
  case UNISPARSE_STATUS_CUDA_ERROR:
    return "UNISPARSE_STATUS_CUDA_ERROR";
  case UNISPARSE_STATUS_OUT_OF_MEMORY:
    return "UNISPARSE_STATUS_OUT_OF_MEMORY";
  }
  return "UNISPARSE_STATUS_<unknown>";
}

} // extern "C"
