//===- ValidationTest.cpp - Every bad-argument path of the runtime --------===//
//
// Each case breaks one thing in an otherwise valid call and checks the status
// code, that the message is non-empty and names the problem, that the sticky
// error matches, that the outputs were not touched, and that clearing the
// error resets it.
//
//===----------------------------------------------------------------------===//

#include "TestFramework.h"
#include "TestUtil.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>

using namespace test;

// Defined in CApi.c (compiled as C).
extern "C" const char *capiStatusString(int32_t code);
extern "C" int32_t capiTensorSize(void);

namespace {

/// A valid call: B = 2, Hq = 4, Hkv = 2, Hg = 2, N = 10, D = 8, S = 4
/// (NBq = NBk = 3), f32, causal, dense layout (M = 3). Tests mutate the
/// tensor views, pointers and parameters before `call()`.
struct Fixture {
  Shape s{2, 4, 2, 2, 10, 8, 4};
  Inputs in{s, UNISPARSE_DTYPE_F32, 99};
  Layout layout = Layout::dense(s, /*causal=*/true);
  Outputs out{s, UNISPARSE_DTYPE_F32};
  unisparse_tensor_t q = in.q.t, k = in.k.t, v = in.v.t;
  unisparse_tensor_t counts = layout.counts.t, indices = layout.indices.t;
  unisparse_tensor_t o = out.o.t, lse = out.lse.t;
  unisparse_attention_params_t params{s.S, 1, 0.0f};
  const unisparse_tensor_t *pq = &q, *pk = &k, *pv = &v, *pCounts = &counts,
                           *pIndices = &indices, *po = &o, *pLse = &lse;
  const unisparse_attention_params_t *pParams = &params;
  void *stream = nullptr;

  unisparse_status_t call() {
    return unisparse_rt_block_sparse_attention(pq, pk, pv, pCounts, pIndices,
                                               po, pLse, pParams, stream);
  }
  void setCount(int64_t b, int64_t g, int64_t i, int32_t value) {
    layout.counts.set({b, g, i}, value);
  }
  void setIndex(int64_t b, int64_t g, int64_t i, int64_t j, int32_t value) {
    layout.indices.set({b, g, i, j}, value);
  }
};

/// Runs `mutate` on a fresh fixture, calls the runtime and checks that it
/// fails with `expected` and a message containing `substring`.
void expectError(const char *what, unisparse_status_t expected,
                 const char *substring,
                 const std::function<void(Fixture &)> &mutate) {
  Fixture f;
  mutate(f);
  const std::vector<uint32_t> oBefore = f.out.o.storage;
  const std::vector<uint32_t> lseBefore = f.out.lse.storage;
  unisparse_rt_clear_error();
  const unisparse_status_t status = f.call();
  const char *message = unisparse_rt_last_error_message();
  CHECK_MSG(status == expected, "%s: got %s, expected %s (message: \"%s\")",
            what, unisparse_rt_status_string(status),
            unisparse_rt_status_string(expected), message);
  CHECK_MSG(unisparse_rt_last_error() == expected, "%s: sticky status %s", what,
            unisparse_rt_status_string(unisparse_rt_last_error()));
  CHECK_MSG(message && message[0], "%s: empty message", what);
  CHECK_MSG(message && std::strstr(message, substring),
            "%s: message \"%s\" does not contain \"%s\"", what, message,
            substring);
  CHECK_MSG(f.out.o.storage == oBefore && f.out.lse.storage == lseBefore,
            "%s: outputs were written by a failing call", what);
  unisparse_rt_clear_error();
  CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_SUCCESS);
  CHECK(std::strcmp(unisparse_rt_last_error_message(), "") == 0);
}

/// Runs `mutate` on a fresh fixture and checks that the call succeeds.
void expectSuccess(const char *what,
                   const std::function<void(Fixture &)> &mutate) {
  Fixture f;
  mutate(f);
  unisparse_rt_clear_error();
  const unisparse_status_t status = f.call();
  CHECK_MSG(status == UNISPARSE_STATUS_SUCCESS, "%s: got %s: %s", what,
            unisparse_rt_status_string(status),
            unisparse_rt_last_error_message());
}

} // namespace

TEST_CASE(validFixtureSucceeds) {
  expectSuccess("valid", [](Fixture &) {});
}

TEST_CASE(nullPointers) {
  const auto code = UNISPARSE_STATUS_NULL_POINTER;
  expectError("q", code, "q: tensor", [](Fixture &f) { f.pq = nullptr; });
  expectError("k", code, "k: tensor", [](Fixture &f) { f.pk = nullptr; });
  expectError("v", code, "v: tensor", [](Fixture &f) { f.pv = nullptr; });
  expectError("counts", code, "counts: tensor",
              [](Fixture &f) { f.pCounts = nullptr; });
  expectError("indices", code, "indices: tensor",
              [](Fixture &f) { f.pIndices = nullptr; });
  expectError("o", code, "o: tensor", [](Fixture &f) { f.po = nullptr; });
  expectError("lse", code, "lse: tensor", [](Fixture &f) { f.pLse = nullptr; });
  expectError("params", code, "params",
              [](Fixture &f) { f.pParams = nullptr; });
  expectError("q.data", code, "q: data is null",
              [](Fixture &f) { f.q.data = nullptr; });
  expectError("indices.data", code, "indices: data is null",
              [](Fixture &f) { f.indices.data = nullptr; });
  expectError("lse.data", code, "lse: data is null",
              [](Fixture &f) { f.lse.data = nullptr; });
}

TEST_CASE(emptyBatchAllowsNullData) {
  expectSuccess("B = 0", [](Fixture &f) {
    for (unisparse_tensor_t *t :
         {&f.q, &f.k, &f.v, &f.counts, &f.indices, &f.o, &f.lse}) {
      t->sizes[0] = 0;
      t->data = nullptr;
    }
  });
}

TEST_CASE(wrongRanks) {
  const auto code = UNISPARSE_STATUS_INVALID_RANK;
  expectError("q", code, "q: rank = 3, expected 4",
              [](Fixture &f) { f.q.rank = 3; });
  expectError("k", code, "k: rank = 0", [](Fixture &f) { f.k.rank = 0; });
  expectError("counts", code, "counts: rank = 4, expected 3",
              [](Fixture &f) { f.counts.rank = 4; });
  expectError("indices", code, "indices: rank = 3, expected 4",
              [](Fixture &f) { f.indices.rank = 3; });
  expectError("o", code, "o: rank = 5", [](Fixture &f) { f.o.rank = 5; });
  expectError("lse", code, "lse: rank = 4, expected 3",
              [](Fixture &f) { f.lse.rank = 4; });
}

TEST_CASE(wrongDtypes) {
  const auto code = UNISPARSE_STATUS_UNSUPPORTED_DTYPE;
  expectError("q i32", code, "q: dtype = i32", [](Fixture &f) {
    f.q.dtype = f.k.dtype = f.v.dtype = f.o.dtype = UNISPARSE_DTYPE_I32;
  });
  expectError("q invalid", code, "q: dtype = <invalid> (42)",
              [](Fixture &f) { f.q.dtype = 42; });
  expectError("k f16", code, "k: dtype = f16 (1), expected f32",
              [](Fixture &f) { f.k.dtype = UNISPARSE_DTYPE_F16; });
  expectError("v bf16", code, "v: dtype = bf16",
              [](Fixture &f) { f.v.dtype = UNISPARSE_DTYPE_BF16; });
  expectError("o f16", code, "o: dtype = f16",
              [](Fixture &f) { f.o.dtype = UNISPARSE_DTYPE_F16; });
  expectError("counts f32", code, "counts: dtype = f32 (0), expected i32",
              [](Fixture &f) { f.counts.dtype = UNISPARSE_DTYPE_F32; });
  expectError("indices bf16", code, "indices: dtype = bf16",
              [](Fixture &f) { f.indices.dtype = UNISPARSE_DTYPE_BF16; });
  expectError("lse f16", code, "lse: dtype = f16 (1), expected f32",
              [](Fixture &f) { f.lse.dtype = UNISPARSE_DTYPE_F16; });
  expectError("lse i32", code, "lse: dtype = i32",
              [](Fixture &f) { f.lse.dtype = UNISPARSE_DTYPE_I32; });
}

TEST_CASE(devices) {
  expectError("k on cuda", UNISPARSE_STATUS_DEVICE_MISMATCH, "k: device = cuda",
              [](Fixture &f) { f.k.device = UNISPARSE_DEVICE_CUDA; });
  expectError("counts on cuda", UNISPARSE_STATUS_DEVICE_MISMATCH,
              "counts: device = cuda",
              [](Fixture &f) { f.counts.device = UNISPARSE_DEVICE_CUDA; });
  expectError("q on cuda", UNISPARSE_STATUS_DEVICE_MISMATCH, "k: device = cpu",
              [](Fixture &f) { f.q.device = UNISPARSE_DEVICE_CUDA; });
  expectError("invalid device", UNISPARSE_STATUS_INVALID_ARGUMENT,
              "v: device = 3", [](Fixture &f) { f.v.device = 3; });
  // f32 (and these host pointers) on cuda: rejected before any driver call,
  // with or without a CUDA backend, so this runs on any machine.
  expectError("all on cuda", UNISPARSE_STATUS_NOT_SUPPORTED, "CUDA backend",
              [](Fixture &f) {
                for (unisparse_tensor_t *t :
                     {&f.q, &f.k, &f.v, &f.counts, &f.indices, &f.o, &f.lse})
                  t->device = UNISPARSE_DEVICE_CUDA;
              });
  int dummy = 0;
  expectError("stream on cpu", UNISPARSE_STATUS_INVALID_ARGUMENT,
              "expected null for CPU tensors",
              [&](Fixture &f) { f.stream = &dummy; });
  CHECK(unisparse_rt_has_cuda() == UNISPARSE_RT_TEST_EXPECT_CUDA);
}

TEST_CASE(scalarParameters) {
  const auto code = UNISPARSE_STATUS_INVALID_ARGUMENT;
  expectError("block_size 0", code, "block_size = 0, expected > 0",
              [](Fixture &f) { f.params.block_size = 0; });
  expectError("block_size -4", code, "block_size = -4",
              [](Fixture &f) { f.params.block_size = -4; });
  expectError("causal 2", code, "causal = 2, expected 0 or 1",
              [](Fixture &f) { f.params.causal = 2; });
  expectError("causal -1", code, "causal = -1",
              [](Fixture &f) { f.params.causal = -1; });
  expectError("scale nan", code, "scale = nan", [](Fixture &f) {
    f.params.scale = std::numeric_limits<float>::quiet_NaN();
  });
  expectError("scale inf", code, "scale = inf", [](Fixture &f) {
    f.params.scale = std::numeric_limits<float>::infinity();
  });
  expectError("misaligned q", code, "q: data",
              [](Fixture &f) { f.q.data = static_cast<char *>(f.q.data) + 2; });
}

TEST_CASE(strides) {
  const auto code = UNISPARSE_STATUS_INVALID_STRIDE;
  expectError("q negative", code, "q: strides[3] (D) = -1 is negative",
              [](Fixture &f) { f.q.strides[3] = -1; });
  expectError("counts negative", code, "counts: strides[0] (B) = -6",
              [](Fixture &f) { f.counts.strides[0] = -6; });
  expectError("lse negative", code, "lse: strides[2]",
              [](Fixture &f) { f.lse.strides[2] = -1; });
  expectError("o overlapping", code, "o: strides[2] = 0",
              [](Fixture &f) { f.o.strides[2] = 0; });
  expectError("o rows alias heads", code, "overlap",
              [](Fixture &f) { f.o.strides[1] = 8; });
  expectError("lse overlapping", code, "lse: strides[0] = 0",
              [](Fixture &f) { f.lse.strides[0] = 0; });
  expectError("q extent overflows", code, "overflow",
              [](Fixture &f) { f.q.strides[0] = INT64_MAX / 2; });
  // Zero strides on inputs (broadcast) are fine.
  expectSuccess("k broadcast over heads", [](Fixture &f) {
    f.k.strides[1] = 0;
    f.v.strides[1] = 0;
  });
}

TEST_CASE(shapeMismatches) {
  const auto code = UNISPARSE_STATUS_SHAPE_MISMATCH;
  expectError("q negative N", code, "q: sizes[2] (N) = -1 is negative",
              [](Fixture &f) { f.q.sizes[2] = -1; });
  expectError("q D = 0", code, "expected Hq, N, D >= 1",
              [](Fixture &f) { f.q.sizes[3] = 0; });
  expectError("k B", code, "k: sizes[0] (B) = 3, expected 2",
              [](Fixture &f) { f.k.sizes[0] = 3; });
  expectError("Hq % Hkv", code,
              "k: sizes[1] (Hkv) = 3, expected a divisor of Hq = 4",
              [](Fixture &f) { f.k.sizes[1] = 3; });
  expectError("Hkv > Hq", code, "(Hkv) = 8",
              [](Fixture &f) { f.k.sizes[1] = 8; });
  expectError("k N", code, "k: sizes[2] (N) = 9, expected 10",
              [](Fixture &f) { f.k.sizes[2] = 9; });
  expectError("k D", code, "k: sizes[3] (D) = 7, expected 8",
              [](Fixture &f) { f.k.sizes[3] = 7; });
  expectError("v Hkv", code, "v: sizes[1] (Hkv) = 1, expected 2",
              [](Fixture &f) { f.v.sizes[1] = 1; });
  expectError("v N", code, "v: sizes[2] (N) = 11",
              [](Fixture &f) { f.v.sizes[2] = 11; });
  expectError("o D", code, "o: sizes[3] (D) = 7, expected 8",
              [](Fixture &f) { f.o.sizes[3] = 7; });
  expectError("o Hq", code, "o: sizes[1] (Hq) = 2",
              [](Fixture &f) { f.o.sizes[1] = 2; });
  expectError("lse N", code, "lse: sizes[2] (N) = 11, expected 10",
              [](Fixture &f) { f.lse.sizes[2] = 11; });
  expectError("lse Hq", code, "lse: sizes[1] (Hq) = 2",
              [](Fixture &f) { f.lse.sizes[1] = 2; });
  expectError("counts B", code, "counts: sizes[0] (B) = 1",
              [](Fixture &f) { f.counts.sizes[0] = 1; });
  expectError("Hq % Hg", code,
              "counts: sizes[1] (Hg) = 3, expected a divisor of Hq = 4",
              [](Fixture &f) { f.counts.sizes[1] = 3; });
  expectError("Hg = 0", code, "counts: sizes[1] (Hg) = 0",
              [](Fixture &f) { f.counts.sizes[1] = 0; });
  expectError("counts NBq", code, "ceil(N / S) = ceil(10 / 4) = 3",
              [](Fixture &f) { f.counts.sizes[2] = 2; });
  expectError("counts NBq for S", code, "ceil(10 / 5) = 2",
              [](Fixture &f) { f.params.block_size = 5; });
  expectError("indices Hg", code, "indices: sizes[1] (Hg) = 1, expected 2",
              [](Fixture &f) { f.indices.sizes[1] = 1; });
  expectError("indices NBq", code, "indices: sizes[2] (NBq) = 2",
              [](Fixture &f) { f.indices.sizes[2] = 2; });
  expectError("M = 0", code,
              "indices: sizes[3] (M) = 0, expected 1 <= M <= NBk",
              [](Fixture &f) { f.indices.sizes[3] = 0; });
  expectError("M > NBk", code,
              "indices: sizes[3] (M) = 4, expected 1 <= M <= NBk = ceil(N / "
              "S) = 3",
              [](Fixture &f) { f.indices.sizes[3] = 4; });
}

TEST_CASE(layoutContents) {
  const auto code = UNISPARSE_STATUS_INVALID_LAYOUT;
  expectError("count < 0", code, "counts[0,1,2] = -1 is negative",
              [](Fixture &f) { f.setCount(0, 1, 2, -1); });
  expectError("count > NBk", code, "counts[1,0,2] = 4 exceeds M = 3",
              [](Fixture &f) { f.setCount(1, 0, 2, 4); });
  expectError("count > M", code, "counts[0,0,2] = 3 exceeds M = 2",
              [](Fixture &f) {
                f.indices.sizes[3] = 2; // M = 2 < NBk, a view of the buffer
                f.setCount(0, 0, 2, 3);
              });
  expectError("index < 0", code,
              "indices[0,1,2,0] = -1 is outside [0, NBk) = [0, 3)",
              [](Fixture &f) { f.setIndex(0, 1, 2, 0, -1); });
  expectError("index >= NBk", code,
              "indices[1,1,2,2] = 3 is outside [0, NBk) = [0, 3)",
              [](Fixture &f) { f.setIndex(1, 1, 2, 2, 3); });
  expectError("repeated index", code, "indices[1,0,2,1] = 0, expected > 0",
              [](Fixture &f) { f.setIndex(1, 0, 2, 1, 0); });
  expectError("descending", code, "indices[0,0,2,2] = 1, expected > 2",
              [](Fixture &f) {
                f.setIndex(0, 0, 2, 1, 2);
                f.setIndex(0, 0, 2, 2, 1);
              });
  // Entries past counts[...] are padding and never read.
  expectSuccess("padding ignored", [](Fixture &f) {
    f.setCount(0, 0, 2, 1);
    f.setIndex(0, 0, 2, 1, 99);
    f.setIndex(0, 0, 2, 2, -7);
  });
  expectSuccess("empty rows", [](Fixture &f) {
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t g = 0; g < 2; ++g)
        for (int64_t i = 0; i < 3; ++i)
          f.setCount(b, g, i, 0);
  });
}

TEST_CASE(emptyRowsGiveZeroAndMinusInf) {
  Fixture f;
  f.setCount(0, 1, 1, 0); // heads 2, 3 of batch 0, rows 4..7
  CHECK(f.call() == UNISPARSE_STATUS_SUCCESS);
  for (int64_t h : {2, 3})
    for (int64_t n = 4; n < 8; ++n) {
      CHECK(f.out.lse.get({0, h, n}) ==
            -std::numeric_limits<double>::infinity());
      for (int64_t d = 0; d < 8; ++d)
        CHECK(f.out.o.get({0, h, n, d}) == 0.0);
    }
  CHECK(std::isfinite(f.out.lse.get({0, 1, 4})));
  CHECK(std::isfinite(f.out.lse.get({1, 2, 4})));
}

TEST_CASE(memrefShimErrors) {
  Fixture f;
  unisparse_memref_4d_f32 q{static_cast<float *>(f.q.data),
                            static_cast<float *>(f.q.data),
                            0,
                            {},
                            {}};
  for (int i = 0; i < 4; ++i) {
    q.sizes[i] = f.q.sizes[i];
    q.strides[i] = f.q.strides[i];
  }
  unisparse_rt_clear_error();
  int32_t status = _mlir_ciface_unisparse_rt_block_sparse_attention_f32(
      &q, &q, &q, nullptr, nullptr, &q, nullptr, 4, 1, 0.0f);
  CHECK(status == UNISPARSE_STATUS_NULL_POINTER);
  CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_NULL_POINTER);
  CHECK(std::strstr(unisparse_rt_last_error_message(),
                    "memref descriptor of counts is null"));
  // A rank/shape problem surfaces through the shim: q passed as k with
  // Hkv = Hq but the wrong sizes for counts.
  unisparse_memref_3d_i32 counts{nullptr, nullptr, 0, {2, 2, 3}, {6, 3, 1}};
  unisparse_memref_4d_i32 indices{
      nullptr, nullptr, 0, {2, 2, 3, 3}, {18, 9, 3, 1}};
  unisparse_memref_3d_f32 lse{nullptr, nullptr, 0, {2, 4, 10}, {40, 10, 1}};
  unisparse_rt_clear_error();
  status = _mlir_ciface_unisparse_rt_block_sparse_attention_f32(
      &q, &q, &q, &counts, &indices, &q, &lse, 4, 1, 0.0f);
  CHECK(status == UNISPARSE_STATUS_NULL_POINTER);
  CHECK(std::strstr(unisparse_rt_last_error_message(), "counts: data is null"));
  unisparse_rt_clear_error();
}

TEST_CASE(stickyPerThreadError) {
  // A failure stays recorded across later successful calls until cleared.
  Fixture bad;
  bad.params.causal = 3;
  unisparse_rt_clear_error();
  CHECK(bad.call() == UNISPARSE_STATUS_INVALID_ARGUMENT);
  Fixture good;
  CHECK(good.call() == UNISPARSE_STATUS_SUCCESS);
  CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_INVALID_ARGUMENT);
  CHECK(std::strstr(unisparse_rt_last_error_message(), "causal = 3"));
  // Another thread's failure is not visible here.
  unisparse_rt_clear_error();
  std::thread other([] {
    Fixture f;
    f.params.block_size = 0;
    CHECK(f.call() == UNISPARSE_STATUS_INVALID_ARGUMENT);
    CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_INVALID_ARGUMENT);
  });
  other.join();
  CHECK(unisparse_rt_last_error() == UNISPARSE_STATUS_SUCCESS);
  CHECK(unisparse_rt_last_error_message()[0] == '\0');
}

TEST_CASE(statusStrings) {
  for (int a = 0; a <= UNISPARSE_STATUS_OUT_OF_MEMORY; ++a) {
    const char *sa = unisparse_rt_status_string(unisparse_status_t(a));
    CHECK(sa && std::strncmp(sa, "UNISPARSE_STATUS_", 17) == 0);
    for (int b = 0; b < a; ++b)
      CHECK(std::strcmp(
                sa, unisparse_rt_status_string(unisparse_status_t(b))) != 0);
  }
  // An out-of-range code, as a C caller could pass it.
  CHECK(std::strcmp(capiStatusString(77), "UNISPARSE_STATUS_<unknown>") == 0);
  CHECK(capiTensorSize() == int32_t(sizeof(unisparse_tensor_t)));
}
