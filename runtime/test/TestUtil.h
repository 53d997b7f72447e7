//===- TestUtil.h - Test tensors, inputs and references ---------*- C++ -*-===//
//
// Owning host tensors with strided views, structured random inputs, block
// layouts, and a double-precision reference of block-sparse attention that
// is written independently of the runtime (it materializes the mask).
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_RUNTIME_TEST_TESTUTIL_H
#define UNISPARSE_RUNTIME_TEST_TESTUTIL_H

#include "common/FloatConversion.h"
#include "unisparse/runtime/unisparse_runtime.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace test {

/// An owning host tensor; `t` views `storage` (sizes/strides in elements).
struct HostTensor {
  std::vector<uint32_t> storage; // 4-byte aligned; 2-byte dtypes use half
  unisparse_tensor_t t = {};

  /// Allocates a tensor of `sizes`, laid out in memory as the dimensions in
  /// `memoryOrder` (outermost first); the default is row-major.
  HostTensor(unisparse_dtype_t dtype, std::vector<int64_t> sizes,
             std::vector<int> memoryOrder = {}) {
    const int rank = static_cast<int>(sizes.size());
    if (memoryOrder.empty())
      for (int i = 0; i < rank; ++i)
        memoryOrder.push_back(i);
    int64_t numel = 1, stride = 1;
    for (int i = rank - 1; i >= 0; --i) {
      t.strides[memoryOrder[i]] = stride;
      stride *= sizes[memoryOrder[i]];
    }
    for (int i = 0; i < rank; ++i) {
      t.sizes[i] = sizes[i];
      numel *= sizes[i];
    }
    storage.assign(elemBytes(dtype) == 2 ? (numel + 1) / 2 : numel, 0);
    t.data = storage.data();
    t.dtype = dtype;
    t.device = UNISPARSE_DEVICE_CPU;
    t.rank = rank;
  }
  /// Copies the storage; the view keeps its offset into it.
  HostTensor(const HostTensor &other) : storage(other.storage), t(other.t) {
    const char *otherBase =
        reinterpret_cast<const char *>(other.storage.data());
    t.data = reinterpret_cast<char *>(storage.data()) +
             (static_cast<const char *>(other.t.data) - otherBase);
  }
  HostTensor &operator=(const HostTensor &) = delete;

  static int elemBytes(int32_t dtype) {
    return dtype == UNISPARSE_DTYPE_F16 || dtype == UNISPARSE_DTYPE_BF16 ? 2
                                                                         : 4;
  }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < t.rank; ++i)
      n *= t.sizes[i];
    return n;
  }
  int64_t offset(std::initializer_list<int64_t> idx) const {
    int64_t off = 0, i = 0;
    for (int64_t x : idx)
      off += x * t.strides[i++];
    return off;
  }
  /// Element `idx` as double (f16/bf16 widened exactly).
  double get(std::initializer_list<int64_t> idx) const {
    const int64_t off = offset(idx);
    switch (t.dtype) {
    case UNISPARSE_DTYPE_F32:
      return static_cast<const float *>(t.data)[off];
    case UNISPARSE_DTYPE_F16:
      return unisparse::rt::f16ToFloat(
          static_cast<const uint16_t *>(t.data)[off]);
    case UNISPARSE_DTYPE_BF16:
      return unisparse::rt::bf16ToFloat(
          static_cast<const uint16_t *>(t.data)[off]);
    default:
      return static_cast<const int32_t *>(t.data)[off];
    }
  }
  /// Sets element `idx`, rounding to the dtype.
  void set(std::initializer_list<int64_t> idx, double value) {
    const int64_t off = offset(idx);
    switch (t.dtype) {
    case UNISPARSE_DTYPE_F32:
      static_cast<float *>(t.data)[off] = static_cast<float>(value);
      break;
    case UNISPARSE_DTYPE_F16:
      static_cast<uint16_t *>(t.data)[off] =
          unisparse::rt::floatToF16(static_cast<float>(value));
      break;
    case UNISPARSE_DTYPE_BF16:
      static_cast<uint16_t *>(t.data)[off] =
          unisparse::rt::floatToBf16(static_cast<float>(value));
      break;
    default:
      static_cast<int32_t *>(t.data)[off] = static_cast<int32_t>(value);
    }
  }
};

/// Sizes of an attention problem.
struct Shape {
  int64_t B, Hq, Hkv, Hg, N, D, S;
  int64_t numBlocks() const { return (N + S - 1) / S; }
};

/// q, k, v with structure: gaussian noise plus a strong "sink" key 0 that
/// every query likes, a diagonal pattern (q_i and k_i share a random
/// direction) and a vertical line (key N/3 that many queries like).
struct Inputs {
  HostTensor q, k, v;
  Inputs(const Shape &s, unisparse_dtype_t dtype, uint64_t seed,
         std::vector<int> qMemoryOrder = {})
      : q(dtype, {s.B, s.Hq, s.N, s.D}, qMemoryOrder),
        k(dtype, {s.B, s.Hkv, s.N, s.D}), v(dtype, {s.B, s.Hkv, s.N, s.D}) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    const int64_t group = s.Hq / s.Hkv;
    std::vector<double> sinkDir(s.D), diag(s.N * s.D);
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t hk = 0; hk < s.Hkv; ++hk) {
        for (auto &x : sinkDir)
          x = normal(rng);
        for (auto &x : diag)
          x = normal(rng);
        for (int64_t n = 0; n < s.N; ++n) {
          for (int64_t d = 0; d < s.D; ++d) {
            double key = normal(rng) + 1.5 * diag[n * s.D + d];
            if (n == 0)
              key += 3.0 * sinkDir[d];
            if (n == s.N / 3)
              key += 2.0 * sinkDir[d];
            k.set({b, hk, n, d}, key);
            v.set({b, hk, n, d}, normal(rng) + (n == 0 ? 2.0 : 0.0));
          }
        }
        for (int64_t hq = hk * group; hq < (hk + 1) * group; ++hq)
          for (int64_t n = 0; n < s.N; ++n)
            for (int64_t d = 0; d < s.D; ++d)
              q.set({b, hq, n, d},
                    normal(rng) + 0.5 * sinkDir[d] + 1.5 * diag[n * s.D + d]);
      }
    }
  }
};

/// A block layout: counts [B, Hg, NBq] and indices [B, Hg, NBq, M].
struct Layout {
  HostTensor counts, indices;
  Layout(const Shape &s, int64_t maxBlocks)
      : counts(UNISPARSE_DTYPE_I32, {s.B, s.Hg, s.numBlocks()}),
        indices(UNISPARSE_DTYPE_I32, {s.B, s.Hg, s.numBlocks(), maxBlocks}) {
    for (int64_t i = 0; i < indices.numel(); ++i)
      static_cast<int32_t *>(indices.t.data)[i] = -1; // padding
  }
  /// Sets row (b, g, i) to the given ascending blocks.
  void setRow(int64_t b, int64_t g, int64_t i,
              const std::vector<int64_t> &blocks) {
    counts.set({b, g, i}, double(blocks.size()));
    for (size_t j = 0; j < blocks.size(); ++j)
      indices.set({b, g, i, int64_t(j)}, double(blocks[j]));
  }
  /// Every block (J <= I if causal): the dense layout.
  static Layout dense(const Shape &s, bool causal) {
    Layout layout(s, s.numBlocks());
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t g = 0; g < s.Hg; ++g)
        for (int64_t i = 0; i < s.numBlocks(); ++i) {
          std::vector<int64_t> row;
          for (int64_t j = 0; j < (causal ? i + 1 : s.numBlocks()); ++j)
            row.push_back(j);
          layout.setRow(b, g, i, row);
        }
    return layout;
  }
  /// Each candidate block kept with probability `keep` (some rows end up
  /// empty); with `sinkAndDiagonal` blocks 0 and I are always kept.
  static Layout random(const Shape &s, bool causal, double keep,
                       bool sinkAndDiagonal, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    Layout layout(s, s.numBlocks());
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t g = 0; g < s.Hg; ++g)
        for (int64_t i = 0; i < s.numBlocks(); ++i) {
          std::vector<int64_t> row;
          for (int64_t j = 0; j < (causal ? i + 1 : s.numBlocks()); ++j)
            if (uniform(rng) < keep || (sinkAndDiagonal && (j == 0 || j == i)))
              row.push_back(j);
          layout.setRow(b, g, i, row);
        }
    return layout;
  }
};

/// Outputs o [B, Hq, N, D] and lse [B, Hq, N], pre-filled with a sentinel.
struct Outputs {
  HostTensor o, lse;
  Outputs(const Shape &s, unisparse_dtype_t dtype,
          std::vector<int> oMemoryOrder = {})
      : o(dtype, {s.B, s.Hq, s.N, s.D}, oMemoryOrder),
        lse(UNISPARSE_DTYPE_F32, {s.B, s.Hq, s.N}) {
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.Hq; ++h)
        for (int64_t n = 0; n < s.N; ++n) {
          lse.set({b, h, n}, 12345.0);
          for (int64_t d = 0; d < s.D; ++d)
            o.set({b, h, n, d}, 12345.0);
        }
  }
};

/// Calls the runtime.
inline unisparse_status_t runAttention(const Inputs &in, const Layout &layout,
                                       Outputs &out, int64_t blockSize,
                                       bool causal, float scale = 0.0f) {
  unisparse_attention_params_t params{blockSize, causal ? 1 : 0, scale};
  return unisparse_rt_block_sparse_attention(
      &in.q.t, &in.k.t, &in.v.t, &layout.counts.t, &layout.indices.t, &out.o.t,
      &out.lse.t, &params, nullptr);
}

/// The reference result, in double.
struct Reference {
  std::vector<double> o;   // [B, Hq, N, D]
  std::vector<double> lse; // [B, Hq, N]
};

/// Double-precision softmax attention of each query over the keys `visible`
/// says it may see (`visible(b, h, i, j)`); a row with none gets O = 0 and
/// LSE = -inf.
template <typename VisibleFn>
Reference referenceAttention(const Shape &s, const Inputs &in, double scale,
                             VisibleFn visible) {
  Reference ref;
  ref.o.assign(s.B * s.Hq * s.N * s.D, 0.0);
  ref.lse.assign(s.B * s.Hq * s.N, -std::numeric_limits<double>::infinity());
  std::vector<double> scores(s.N);
  std::vector<char> mask(s.N);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h) {
      const int64_t hk = h / (s.Hq / s.Hkv);
      for (int64_t i = 0; i < s.N; ++i) {
        double maxScore = -std::numeric_limits<double>::infinity();
        bool any = false;
        for (int64_t j = 0; j < s.N; ++j) {
          mask[j] = visible(b, h, i, j);
          if (!mask[j])
            continue;
          double dot = 0.0;
          for (int64_t d = 0; d < s.D; ++d)
            dot += in.q.get({b, h, i, d}) * in.k.get({b, hk, j, d});
          scores[j] = scale * dot;
          maxScore = std::max(maxScore, scores[j]);
          any = true;
        }
        if (!any)
          continue;
        double sum = 0.0;
        double *o = &ref.o[((b * s.Hq + h) * s.N + i) * s.D];
        for (int64_t j = 0; j < s.N; ++j) {
          if (!mask[j])
            continue;
          const double p = std::exp(scores[j] - maxScore);
          sum += p;
          for (int64_t d = 0; d < s.D; ++d)
            o[d] += p * in.v.get({b, hk, j, d});
        }
        for (int64_t d = 0; d < s.D; ++d)
          o[d] /= sum;
        ref.lse[(b * s.Hq + h) * s.N + i] = maxScore + std::log(sum);
      }
    }
  return ref;
}

/// Dense attention (all keys; j <= i if causal).
inline Reference referenceDense(const Shape &s, const Inputs &in, double scale,
                                bool causal) {
  return referenceAttention(s, in, scale,
                            [&](int64_t, int64_t, int64_t i, int64_t j) {
                              return !causal || j <= i;
                            });
}

/// Attention restricted to the blocks of `layout` (j <= i if causal).
inline Reference referenceMasked(const Shape &s, const Inputs &in,
                                 const Layout &layout, double scale,
                                 bool causal) {
  // Materialize the selected key blocks of each (b, g, query block).
  const int64_t nb = s.numBlocks();
  std::vector<char> selected(s.B * s.Hg * nb * nb, 0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t g = 0; g < s.Hg; ++g)
      for (int64_t i = 0; i < nb; ++i) {
        const int64_t count = int64_t(layout.counts.get({b, g, i}));
        for (int64_t c = 0; c < count; ++c)
          selected[((b * s.Hg + g) * nb + i) * nb +
                   int64_t(layout.indices.get({b, g, i, c}))] = 1;
      }
  return referenceAttention(
      s, in, scale, [&](int64_t b, int64_t h, int64_t i, int64_t j) {
        const int64_t g = h / (s.Hq / s.Hg);
        return (!causal || j <= i) &&
               selected[((b * s.Hg + g) * nb + i / s.S) * nb + j / s.S];
      });
}

/// Relative L2 error ||got - want|| / ||want|| of o.
inline double relL2(const Shape &s, const HostTensor &o,
                    const std::vector<double> &want) {
  double num = 0.0, den = 0.0;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h)
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t d = 0; d < s.D; ++d) {
          const double w = want[((b * s.Hq + h) * s.N + n) * s.D + d];
          const double diff = o.get({b, h, n, d}) - w;
          num += diff * diff;
          den += w * w;
        }
  return std::sqrt(num / den);
}

/// Relative L2 error of lse over the finite reference entries; returns
/// +inf if an entry that should be -inf is not, or the reverse.
inline double relL2Lse(const Shape &s, const HostTensor &lse,
                       const std::vector<double> &want) {
  double num = 0.0, den = 0.0;
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.Hq; ++h)
      for (int64_t n = 0; n < s.N; ++n) {
        const double w = want[(b * s.Hq + h) * s.N + n];
        const double got = lse.get({b, h, n});
        if (std::isinf(w) || std::isinf(got)) {
          if (got != w)
            return std::numeric_limits<double>::infinity();
          continue;
        }
        num += (got - w) * (got - w);
        den += w * w;
      }
  return den == 0.0 ? std::sqrt(num) : std::sqrt(num / den);
}

/// True if the bytes of two tensors' elements are identical (same shape).
inline bool bitwiseEqual(const HostTensor &a, const HostTensor &b) {
  const int64_t n = a.numel();
  const int bytes = HostTensor::elemBytes(a.t.dtype);
  for (int64_t e = 0; e < n; ++e) {
    int64_t offA = 0, offB = 0, rem = e;
    for (int i = a.t.rank - 1; i >= 0; --i) {
      const int64_t x = rem % a.t.sizes[i];
      rem /= a.t.sizes[i];
      offA += x * a.t.strides[i];
      offB += x * b.t.strides[i];
    }
    if (std::memcmp(static_cast<const char *>(a.t.data) + offA * bytes,
                    static_cast<const char *>(b.t.data) + offB * bytes,
                    bytes) != 0)
      return false;
  }
  return true;
}

} // namespace test

#endif // UNISPARSE_RUNTIME_TEST_TESTUTIL_H
