//===- Environment.h - byte counts from environment variables ---*- C++ -*-===//
//
// The runtime's size knobs (UNISPARSE_WORKSPACE_LIMIT,
// UNISPARSE_CUDA_POOL_RELEASE) are byte counts written as digits only.
//
//===----------------------------------------------------------------------===//
#ifndef UNISPARSE_RUNTIME_LIB_COMMON_ENVIRONMENT_H
#define UNISPARSE_RUNTIME_LIB_COMMON_ENVIRONMENT_H

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace unisparse::rt {

enum class ByteCountVar { unset, valid, malformed };

/// Environment variable `name` as a byte count into `bytes`: `unset` when it
/// is unset or empty (`bytes` untouched), `malformed` unless it is digits
/// only and fits 64 bits.
inline ByteCountVar byteCountFromEnvironment(const char *name,
                                             uint64_t &bytes) {
  const char *text = std::getenv(name);
  if (!text || !*text)
    return ByteCountVar::unset;
  errno = 0;
  char *end = nullptr;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (errno || *end || text[0] < '0' || text[0] > '9')
    return ByteCountVar::malformed;
  bytes = value;
  return ByteCountVar::valid;
}

} // namespace unisparse::rt

#endif // UNISPARSE_RUNTIME_LIB_COMMON_ENVIRONMENT_H
