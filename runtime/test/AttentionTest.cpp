//===- AttentionTest.cpp - Numerics of CPU block-sparse attention ---------===//
//
// Compares the runtime against the double-precision references of
// TestUtil.h: dense layouts against dense attention, random sparse layouts
// against masked attention, in f32/f16/bf16, with GQA, batch > 1, a partial
// last block, strided views, the memref shims, NaN/Inf propagation and
// determinism across thread counts.
//
//===----------------------------------------------------------------------===//

#include "TestFramework.h"
#include "TestUtil.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

using namespace test;

namespace {

/// GQA (Hq = 4, Hkv = 2, Hg = 2), batch 2, N = 200 with S = 64 (the last
/// block has 8 tokens).
const Shape kGqaShape{/*B=*/2,  /*Hq=*/4, /*Hkv=*/2, /*Hg=*/2, /*N=*/200,
                      /*D=*/32, /*S=*/64};

const char *dtypeName(unisparse_dtype_t dtype) {
  return dtype == UNISPARSE_DTYPE_F32   ? "f32"
         : dtype == UNISPARSE_DTYPE_F16 ? "f16"
                                        : "bf16";
}

/// Tolerance on the relative L2 error of O: f32 accumulates like the
/// reference; f16/bf16 round the output.
double tolerance(unisparse_dtype_t dtype) {
  return dtype == UNISPARSE_DTYPE_F32 ? 1e-5 : 1e-2;
}

/// The dense layout must reproduce dense attention.
void checkDense(const Shape &s, unisparse_dtype_t dtype, bool causal,
                uint64_t seed) {
  Inputs in(s, dtype, seed);
  Layout layout = Layout::dense(s, causal);
  Outputs out(s, dtype);
  unisparse_status_t status = runAttention(in, layout, out, s.S, causal);
  CHECK_MSG(status == UNISPARSE_STATUS_SUCCESS, "%s",
            unisparse_rt_last_error_message());
  const double scale = 1.0 / std::sqrt(double(s.D));
  Reference ref = referenceDense(s, in, scale, causal);
  const double errO = relL2(s, out.o, ref.o);
  const double errLse = relL2Lse(s, out.lse, ref.lse);
  std::printf("    dense %s %s N=%lld S=%lld: rel-L2 O %.3g, LSE %.3g\n",
              dtypeName(dtype), causal ? "causal" : "non-causal",
              (long long)s.N, (long long)s.S, errO, errLse);
  CHECK_MSG(errO < tolerance(dtype), "rel-L2(O) = %g", errO);
  CHECK_MSG(errLse < 1e-6, "rel-L2(LSE) = %g", errLse);
}

/// A random sparse layout must match attention masked to its blocks.
void checkSparse(const Shape &s, unisparse_dtype_t dtype, bool causal,
                 double keep, bool sinkAndDiagonal, uint64_t seed) {
  Inputs in(s, dtype, seed);
  Layout layout = Layout::random(s, causal, keep, sinkAndDiagonal, seed + 1);
  Outputs out(s, dtype);
  unisparse_status_t status = runAttention(in, layout, out, s.S, causal);
  CHECK_MSG(status == UNISPARSE_STATUS_SUCCESS, "%s",
            unisparse_rt_last_error_message());
  const double scale = 1.0 / std::sqrt(double(s.D));
  Reference ref = referenceMasked(s, in, layout, scale, causal);
  const double errO = relL2(s, out.o, ref.o);
  const double errLse = relL2Lse(s, out.lse, ref.lse);
  std::printf("    sparse %s %s keep=%.2f: rel-L2 O %.3g, LSE %.3g\n",
              dtypeName(dtype), causal ? "causal" : "non-causal", keep, errO,
              errLse);
  CHECK_MSG(errO < tolerance(dtype), "rel-L2(O) = %g", errO);
  CHECK_MSG(errLse < 1e-6, "rel-L2(LSE) = %g", errLse);
  // Rows without a visible key: O = 0 exactly (the LSE check covers -inf).
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h)
      for (int64_t n = 0; n < s.N; ++n)
        if (std::isinf(ref.lse[(b * s.Hq + h) * s.N + n]))
          for (int64_t d = 0; d < s.D; ++d)
            CHECK(out.o.get({b, h, n, d}) == 0.0);
}

} // namespace

//===----------------------------------------------------------------------===//
// Dense layouts against dense attention.
//===----------------------------------------------------------------------===//

TEST_CASE(denseF32MatchesDenseAttention) {
  checkDense(kGqaShape, UNISPARSE_DTYPE_F32, /*causal=*/true, 1);
  checkDense(kGqaShape, UNISPARSE_DTYPE_F32, /*causal=*/false, 2);
}

TEST_CASE(denseBF16MatchesDenseAttention) {
  checkDense(kGqaShape, UNISPARSE_DTYPE_BF16, /*causal=*/true, 3);
  checkDense(kGqaShape, UNISPARSE_DTYPE_BF16, /*causal=*/false, 4);
}

TEST_CASE(denseF16MatchesDenseAttention) {
  checkDense(kGqaShape, UNISPARSE_DTYPE_F16, /*causal=*/true, 5);
  checkDense(kGqaShape, UNISPARSE_DTYPE_F16, /*causal=*/false, 6);
}

TEST_CASE(denseOddSizes) {
  // Block larger than N (one partial block), block of one token, a block
  // size that is not a multiple of the key tile, D not a multiple of 4, and
  // one layout group for all heads.
  checkDense({1, 2, 1, 1, 50, 24, 64}, UNISPARSE_DTYPE_F32, true, 7);
  checkDense({1, 2, 2, 2, 9, 8, 1}, UNISPARSE_DTYPE_F32, true, 8);
  checkDense({2, 6, 3, 1, 170, 13, 100}, UNISPARSE_DTYPE_F32, true, 9);
  checkDense({2, 6, 3, 3, 170, 13, 100}, UNISPARSE_DTYPE_F32, false, 10);
}

//===----------------------------------------------------------------------===//
// Sparse layouts against masked attention.
//===----------------------------------------------------------------------===//

TEST_CASE(sparseF32MatchesMaskedAttention) {
  checkSparse(kGqaShape, UNISPARSE_DTYPE_F32, true, 0.5, true, 11);
  checkSparse(kGqaShape, UNISPARSE_DTYPE_F32, false, 0.5, true, 12);
  // Without sink/diagonal some rows select nothing: O = 0, LSE = -inf.
  checkSparse(kGqaShape, UNISPARSE_DTYPE_F32, true, 0.3, false, 13);
  checkSparse(kGqaShape, UNISPARSE_DTYPE_F32, false, 0.3, false, 14);
}

TEST_CASE(sparseHalfMatchesMaskedAttention) {
  checkSparse(kGqaShape, UNISPARSE_DTYPE_BF16, true, 0.4, true, 15);
  checkSparse(kGqaShape, UNISPARSE_DTYPE_F16, false, 0.4, false, 16);
}

TEST_CASE(causalFutureBlocksContributeNothing) {
  // Selecting blocks J > I under a causal mask changes nothing.
  const Shape &s = kGqaShape;
  Inputs in(s, UNISPARSE_DTYPE_F32, 17);
  Layout base = Layout::random(s, /*causal=*/true, 0.5, true, 18);
  Layout withFuture = Layout::random(s, /*causal=*/true, 0.5, true, 18);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t g = 0; g < s.Hg; ++g)
      for (int64_t i = 0; i + 1 < s.numBlocks(); ++i) {
        std::vector<int64_t> row;
        for (int64_t c = 0; c < int64_t(base.counts.get({b, g, i})); ++c)
          row.push_back(int64_t(base.indices.get({b, g, i, c})));
        for (int64_t j = i + 1; j < s.numBlocks(); ++j)
          row.push_back(j);
        withFuture.setRow(b, g, i, row);
      }
  Outputs outBase(s, UNISPARSE_DTYPE_F32), outFuture(s, UNISPARSE_DTYPE_F32);
  CHECK(runAttention(in, base, outBase, s.S, true) == 0);
  CHECK(runAttention(in, withFuture, outFuture, s.S, true) == 0);
  CHECK(bitwiseEqual(outBase.o, outFuture.o));
  CHECK(bitwiseEqual(outBase.lse, outFuture.lse));
}

TEST_CASE(explicitScale) {
  const Shape &s = kGqaShape;
  Inputs in(s, UNISPARSE_DTYPE_F32, 19);
  Layout layout = Layout::random(s, false, 0.6, true, 20);
  Outputs out(s, UNISPARSE_DTYPE_F32);
  CHECK(runAttention(in, layout, out, s.S, false, /*scale=*/0.05f) == 0);
  Reference ref = referenceMasked(s, in, layout, double(0.05f), false);
  const double errO = relL2(s, out.o, ref.o);
  const double errLse = relL2Lse(s, out.lse, ref.lse);
  CHECK_MSG(errO < 1e-5, "rel-L2(O) = %g", errO);
  CHECK_MSG(errLse < 1e-6, "rel-L2(LSE) = %g", errLse);
}

//===----------------------------------------------------------------------===//
// Strided views, memref shims, determinism.
//===----------------------------------------------------------------------===//

TEST_CASE(stridedQueryAndOutput) {
  // q and o as [B, H, N, D] views of [B, N, H, D] buffers, k with a padded
  // row stride and v with an element stride of 2: same bits as contiguous.
  const Shape &s = kGqaShape;
  for (unisparse_dtype_t dtype : {UNISPARSE_DTYPE_F32, UNISPARSE_DTYPE_BF16}) {
    Inputs contiguous(s, dtype, 21);
    Inputs strided(s, dtype, 21, /*qMemoryOrder=*/{0, 2, 1, 3});
    CHECK(strided.q.t.strides[1] == s.D &&
          strided.q.t.strides[2] == s.Hq * s.D);
    // Repack k and v into padded / interleaved buffers.
    HostTensor kPadded(dtype, {s.B, s.Hkv, s.N, s.D + 3});
    kPadded.t.sizes[3] = s.D;
    HostTensor vInterleaved(dtype, {s.B, s.Hkv, s.N, 2 * s.D});
    vInterleaved.t.sizes[3] = s.D;
    vInterleaved.t.strides[3] = 2;
    vInterleaved.t.strides[2] = 2 * s.D;
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.Hkv; ++h)
        for (int64_t n = 0; n < s.N; ++n)
          for (int64_t d = 0; d < s.D; ++d) {
            kPadded.set({b, h, n, d}, contiguous.k.get({b, h, n, d}));
            vInterleaved.set({b, h, n, d}, contiguous.v.get({b, h, n, d}));
          }
    strided.k.storage = kPadded.storage;
    strided.k.t = kPadded.t;
    strided.k.t.data = strided.k.storage.data();
    strided.v.storage = vInterleaved.storage;
    strided.v.t = vInterleaved.t;
    strided.v.t.data = strided.v.storage.data();

    Layout layout = Layout::random(s, true, 0.5, true, 22);
    Outputs outContiguous(s, dtype);
    Outputs outStrided(s, dtype, /*oMemoryOrder=*/{0, 2, 1, 3});
    CHECK(runAttention(contiguous, layout, outContiguous, s.S, true) == 0);
    CHECK_MSG(runAttention(strided, layout, outStrided, s.S, true) == 0, "%s",
              unisparse_rt_last_error_message());
    CHECK(bitwiseEqual(outContiguous.o, outStrided.o));
    CHECK(bitwiseEqual(outContiguous.lse, outStrided.lse));
    Reference ref =
        referenceMasked(s, strided, layout, 1.0 / std::sqrt(double(s.D)), true);
    const double errO = relL2(s, outStrided.o, ref.o);
    CHECK_MSG(errO < tolerance(dtype), "rel-L2(O) = %g", errO);
  }
}

TEST_CASE(stridedLayoutAndBroadcastInputs) {
  // counts/indices as non-contiguous views, and k/v broadcast over the batch
  // with a zero batch stride (inputs may overlap; outputs may not).
  Shape s{2, 2, 1, 1, 70, 16, 32};
  Inputs in(s, UNISPARSE_DTYPE_F32, 23);
  for (int64_t h = 0; h < s.Hkv; ++h)
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t d = 0; d < s.D; ++d) {
        in.k.set({1, h, n, d}, in.k.get({0, h, n, d}));
        in.v.set({1, h, n, d}, in.v.get({0, h, n, d}));
      }
  Inputs broadcast = in;
  broadcast.k.t.strides[0] = 0;
  broadcast.v.t.strides[0] = 0;
  Layout layout = Layout::random(s, true, 0.5, true, 24);
  // The same layout stored as a [NBq, Hg, B] / [M, NBq, Hg, B] buffer.
  Layout transposed = layout;
  HostTensor counts(UNISPARSE_DTYPE_I32, {s.B, s.Hg, s.numBlocks()}, {2, 1, 0});
  HostTensor indices(UNISPARSE_DTYPE_I32,
                     {s.B, s.Hg, s.numBlocks(), s.numBlocks()}, {3, 2, 1, 0});
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t i = 0; i < s.numBlocks(); ++i) {
      counts.set({b, 0, i}, layout.counts.get({b, 0, i}));
      for (int64_t j = 0; j < s.numBlocks(); ++j)
        indices.set({b, 0, i, j}, layout.indices.get({b, 0, i, j}));
    }
  transposed.counts.storage = counts.storage;
  transposed.counts.t = counts.t;
  transposed.counts.t.data = transposed.counts.storage.data();
  transposed.indices.storage = indices.storage;
  transposed.indices.t = indices.t;
  transposed.indices.t.data = transposed.indices.storage.data();
  Outputs outA(s, UNISPARSE_DTYPE_F32), outB(s, UNISPARSE_DTYPE_F32);
  CHECK(runAttention(in, layout, outA, s.S, true) == 0);
  CHECK_MSG(runAttention(broadcast, transposed, outB, s.S, true) == 0, "%s",
            unisparse_rt_last_error_message());
  CHECK(bitwiseEqual(outA.o, outB.o));
  CHECK(bitwiseEqual(outA.lse, outB.lse));
}

namespace {
/// Builds a memref descriptor over a host tensor with a leading offset of
/// `offset` elements (the view starts that far into the allocation).
template <typename MemRef, typename T, int Rank>
MemRef memrefOf(const HostTensor &h, int64_t offset) {
  MemRef m;
  m.allocated = static_cast<T *>(h.t.data) - offset;
  m.aligned = m.allocated;
  m.offset = offset;
  for (int i = 0; i < Rank; ++i) {
    m.sizes[i] = h.t.sizes[i];
    m.strides[i] = h.t.strides[i];
  }
  return m;
}

/// Runs `dtype` through its _mlir_ciface_ shim (tensors viewed with an
/// offset) and through the main entry point; the bits must agree.
void checkShim(unisparse_dtype_t dtype) {
  const Shape &s = kGqaShape;
  // Put every tensor 5 elements into a bigger buffer, to exercise `offset`.
  auto shifted = [](const HostTensor &h) {
    HostTensor copy = h;
    copy.storage.insert(copy.storage.begin(), 5, 0u); // 5 or 10 elements
    copy.t.data = copy.storage.data() + 5;
    return copy;
  };
  Inputs in(s, dtype, 25);
  Layout layout = Layout::random(s, true, 0.5, true, 26);
  Outputs direct(s, dtype), viaShim(s, dtype);
  CHECK(runAttention(in, layout, direct, s.S, true, 0.2f) == 0);
  HostTensor q = shifted(in.q), k = shifted(in.k), v = shifted(in.v);
  HostTensor counts = shifted(layout.counts);
  HostTensor indices = shifted(layout.indices);
  HostTensor o = shifted(viaShim.o), lse = shifted(viaShim.lse);
  const int64_t off = dtype == UNISPARSE_DTYPE_F32 ? 5 : 10;
  auto c = memrefOf<unisparse_memref_3d_i32, int32_t, 3>(counts, 5);
  auto ix = memrefOf<unisparse_memref_4d_i32, int32_t, 4>(indices, 5);
  auto l = memrefOf<unisparse_memref_3d_f32, float, 3>(lse, 5);
  int32_t status;
  if (dtype == UNISPARSE_DTYPE_F32) {
    auto mq = memrefOf<unisparse_memref_4d_f32, float, 4>(q, off);
    auto mk = memrefOf<unisparse_memref_4d_f32, float, 4>(k, off);
    auto mv = memrefOf<unisparse_memref_4d_f32, float, 4>(v, off);
    auto mo = memrefOf<unisparse_memref_4d_f32, float, 4>(o, off);
    status = _mlir_ciface_unisparse_rt_block_sparse_attention_f32(
        &mq, &mk, &mv, &c, &ix, &mo, &l, s.S, 1, 0.2f);
  } else {
    auto mq = memrefOf<unisparse_memref_4d_u16, uint16_t, 4>(q, off);
    auto mk = memrefOf<unisparse_memref_4d_u16, uint16_t, 4>(k, off);
    auto mv = memrefOf<unisparse_memref_4d_u16, uint16_t, 4>(v, off);
    auto mo = memrefOf<unisparse_memref_4d_u16, uint16_t, 4>(o, off);
    auto fn = dtype == UNISPARSE_DTYPE_F16
                  ? _mlir_ciface_unisparse_rt_block_sparse_attention_f16
                  : _mlir_ciface_unisparse_rt_block_sparse_attention_bf16;
    status = fn(&mq, &mk, &mv, &c, &ix, &mo, &l, s.S, 1, 0.2f);
  }
  CHECK_MSG(status == UNISPARSE_STATUS_SUCCESS, "%s: %s", dtypeName(dtype),
            unisparse_rt_last_error_message());
  CHECK(bitwiseEqual(direct.o, o));
  CHECK(bitwiseEqual(direct.lse, lse));
}
} // namespace

TEST_CASE(memrefShims) {
  checkShim(UNISPARSE_DTYPE_F32);
  checkShim(UNISPARSE_DTYPE_F16);
  checkShim(UNISPARSE_DTYPE_BF16);
}

TEST_CASE(deterministicAcrossThreadCounts) {
  const Shape &s = kGqaShape;
  Inputs in(s, UNISPARSE_DTYPE_BF16, 27);
  Layout layout = Layout::random(s, true, 0.5, true, 28);
  Outputs one(s, UNISPARSE_DTYPE_BF16), many(s, UNISPARSE_DTYPE_BF16);
  setenv("UNISPARSE_RT_NUM_THREADS", "1", 1);
  CHECK(runAttention(in, layout, one, s.S, true) == 0);
  setenv("UNISPARSE_RT_NUM_THREADS", "7", 1);
  CHECK(runAttention(in, layout, many, s.S, true) == 0);
  unsetenv("UNISPARSE_RT_NUM_THREADS");
  CHECK(bitwiseEqual(one.o, many.o));
  CHECK(bitwiseEqual(one.lse, many.lse));
}

//===----------------------------------------------------------------------===//
// NaN / Inf propagate as in dense attention.
//===----------------------------------------------------------------------===//

TEST_CASE(nanAndInfPropagate) {
  Shape s{1, 1, 1, 1, 96, 8, 32};
  Inputs in(s, UNISPARSE_DTYPE_F32, 29);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  in.q.set({0, 0, 10, 3}, nan); // query row 10
  in.k.set({0, 0, 40, 0}, nan); // key 40: rows >= 40 see it (causal)
  in.v.set({0, 0, 70, 5}, inf); // value 70: rows >= 70 see it
  Layout layout = Layout::dense(s, true);
  Outputs out(s, UNISPARSE_DTYPE_F32);
  CHECK(runAttention(in, layout, out, s.S, true) == 0);
  auto rowHasNaN = [&](int64_t n) {
    for (int64_t d = 0; d < s.D; ++d)
      if (std::isnan(out.o.get({0, 0, n, d})))
        return true;
    return false;
  };
  auto rowFinite = [&](int64_t n) {
    for (int64_t d = 0; d < s.D; ++d)
      if (!std::isfinite(out.o.get({0, 0, n, d})))
        return false;
    return std::isfinite(out.lse.get({0, 0, n}));
  };
  CHECK(rowHasNaN(10) && std::isnan(out.lse.get({0, 0, 10})));
  for (int64_t n : {0, 9, 11, 39})
    CHECK_MSG(rowFinite(n), "row %lld", (long long)n);
  for (int64_t n : {40, 41, 69, 95})
    CHECK_MSG(rowHasNaN(n), "row %lld", (long long)n);
  // Key 40 excluded from row 50's layout: row 50 is then finite except for
  // nothing (value 70 is also in the future of row 50).
  Layout skip40 = Layout::dense(s, true);
  skip40.setRow(0, 0, 1, {0}); // query block 1 (rows 32..63) sees block 0 only
  Outputs out2(s, UNISPARSE_DTYPE_F32);
  CHECK(runAttention(in, skip40, out2, s.S, true) == 0);
  for (int64_t d = 0; d < s.D; ++d)
    CHECK(std::isfinite(out2.o.get({0, 0, 50, d})));
  // +inf in a value: rows that see it get +-inf or NaN in that column.
  Inputs in3(s, UNISPARSE_DTYPE_F32, 30);
  in3.v.set({0, 0, 70, 5}, inf);
  Outputs out3(s, UNISPARSE_DTYPE_F32);
  CHECK(runAttention(in3, layout, out3, s.S, true) == 0);
  CHECK(!std::isfinite(out3.o.get({0, 0, 80, 5})));
  CHECK(std::isfinite(out3.o.get({0, 0, 80, 4})));
  CHECK(std::isfinite(out3.o.get({0, 0, 69, 5})));
  // A score of +inf (q with +inf against a positive k): NaN, as dense.
  Inputs in4(s, UNISPARSE_DTYPE_F32, 31);
  in4.q.set({0, 0, 20, 0}, inf);
  in4.k.set({0, 0, 5, 0}, 1.0);
  Outputs out4(s, UNISPARSE_DTYPE_F32);
  CHECK(runAttention(in4, layout, out4, s.S, true) == 0);
  CHECK(std::isnan(out4.o.get({0, 0, 20, 0})));
  CHECK(std::isfinite(out4.o.get({0, 0, 19, 0})));
}

//===----------------------------------------------------------------------===//
// Speed (reported, not asserted: the machine may be shared).
//===----------------------------------------------------------------------===//

TEST_CASE(speedN4096H8D64) {
  Shape s{1, 8, 8, 8, 4096, 64, 128};
  Inputs in(s, UNISPARSE_DTYPE_BF16, 32);
  for (bool dense : {false, true}) {
    // Sparse: sink + diagonal + 1 local block + ~10% random; dense causal.
    Layout layout =
        dense ? Layout::dense(s, true) : Layout::random(s, true, 0.1, true, 33);
    Outputs out(s, UNISPARSE_DTYPE_BF16);
    auto start = std::chrono::steady_clock::now();
    CHECK(runAttention(in, layout, out, s.S, true) == 0);
    const double ms = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - start)
                          .count();
    std::printf("    N=4096 H=8 D=64 bf16 causal %s: %.1f ms\n",
                dense ? "dense" : "sparse (~10% + sink + diagonal)", ms);
    CHECK(std::isfinite(out.o.get({0, 7, 4095, 63})));
  }
}
