//===- cuda_attention_test.cu - Self-checking tests of the CUDA backend ---===//
//
// Needs an NVIDIA GPU (sm_80+; the kernels are built for
// UNISPARSE_RUNTIME_CUDA_ARCHITECTURES). Host code only: everything goes
// through the runtime's C ABI (unisparse_rt_*, mgpu*), plus a few direct
// driver calls for device queries and CUDA graph capture.
//
//  - mgpu*: PTX loaded by JIT and a fatbin, function-cache hits, launches
//    (with > 48 KiB of dynamic shared memory, with clusters on sm_90),
//    memsets, events, managed memory, and failures that must be reported
//    as errors, not crashes.
//  - The current stream: mgpuStreamCreate returns it, syncs and destroys of
//    it are no-ops (checked with a spinning kernel), attention with a null
//    stream queues on it (checked with a data dependency), and a sequence of
//    calls as compiled code makes them is captured into a CUDA graph and
//    replayed.
//  - Block-sparse attention on structured random inputs (gaussian plus a
//    sink key, a diagonal and a vertical line; never zeros) against the CPU
//    runtime on the same bf16/f16 values: relative L2 of O < 2e-2 (bf16) /
//    5e-3 (f16), max |LSE diff| < 1e-2, no NaN (outputs are poisoned with
//    NaN before every run), padding around strided outputs untouched. Head
//    dims 64/128, bf16/f16, causal or not, GQA (Hq 8, Hkv 2, Hg 4), batch 2,
//    N = 1000 with S = 128 (partial last block) and N = 512 with S = 64,
//    dense and random sparse layouts, plus empty rows, corrupt layouts,
//    strided and unaligned tensors, the memref shims, and scores that
//    climb along the keys (the running max moves in most blocks).
//  - Bad arguments on CUDA tensors return the right status and message.
//
// Prints one line per case and "N passed, M failed"; exits 1 on failure.
// An optional argument runs only the cases whose name contains it.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"
#include "cuda/Exp2Poly.h"
#include "unisparse/runtime/unisparse_runtime.h"

#include <cuda.h>

#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

// The kernels of TestKernels.cu (embedded by CMake).
extern "C" const unsigned char unisparse_test_kernels_fatbin[];
extern "C" const unsigned long long unisparse_test_kernels_fatbin_size;
extern "C" const unsigned char unisparse_test_kernels_ptx[];

using namespace test;

namespace {

//===----------------------------------------------------------------------===//
// Reporting.
//===----------------------------------------------------------------------===//

int numPassed = 0, numFailed = 0;
const char *nameFilter = nullptr;

/// The CUDA attention kernel the attention cases force
/// (unisparse_rt_set_cuda_attention_kernel), and whether this device runs
/// the sm_90a kernel (compute capability 9.0).
int32_t kernelMode = UNISPARSE_CUDA_KERNEL_MMA_SYNC;
bool deviceIsSm90 = false;

const char *kernelModeName(int32_t mode) {
  return mode == UNISPARSE_CUDA_KERNEL_SM90       ? "sm90"
         : mode == UNISPARSE_CUDA_KERNEL_MMA_SYNC ? "mma_sync"
                                                  : "auto";
}

bool selected(const std::string &name) {
  return !nameFilter || name.find(nameFilter) != std::string::npos;
}

void report(bool ok, const std::string &name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

void report(bool ok, const std::string &name, const char *fmt, ...) {
  char detail[1024];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(detail, sizeof(detail), fmt, args);
  va_end(args);
  std::printf("[%s] %s%s%s\n", ok ? "  OK  " : " FAIL ", name.c_str(),
              detail[0] ? ": " : "", detail);
  std::fflush(stdout);
  (ok ? numPassed : numFailed) += 1;
}

/// The runtime's sticky error as text ("" if none); clears it.
std::string takeError() {
  std::string message;
  if (unisparse_rt_last_error() != UNISPARSE_STATUS_SUCCESS)
    message =
        std::string(unisparse_rt_status_string(unisparse_rt_last_error())) +
        ": " + unisparse_rt_last_error_message();
  unisparse_rt_clear_error();
  return message;
}

double millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

/// Direct driver calls of the test: on failure, the message goes to `err`.
#define TEST_CU(call, err)                                                     \
  do {                                                                         \
    CUresult result_ = (call);                                                 \
    if (result_ != CUDA_SUCCESS) {                                             \
      const char *name_ = nullptr;                                             \
      cuGetErrorName(result_, &name_);                                         \
      err = std::string(#call) + " failed: " + (name_ ? name_ : "?");          \
      return false;                                                            \
    }                                                                          \
  } while (0)

//===----------------------------------------------------------------------===//
// Device memory through the runtime's mgpu* functions.
//===----------------------------------------------------------------------===//

/// A stream from mgpuStreamCreate, destroyed last: declare it before the
/// buffers that are freed on it.
struct Stream {
  void *s = mgpuStreamCreate();
  ~Stream() { mgpuStreamDestroy(s); }
  Stream() = default;
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;
  operator void *() const { return s; }
};

/// Stream-ordered device memory (mgpuMemAlloc / mgpuMemFree on `stream`).
struct DeviceBuffer {
  void *ptr = nullptr;
  size_t bytes = 0;
  void *stream = nullptr;
  DeviceBuffer(size_t n, void *s) : bytes(n), stream(s) {
    ptr = mgpuMemAlloc(int64_t(n), s, 0);
  }
  ~DeviceBuffer() {
    if (ptr)
      mgpuMemFree(ptr, stream);
  }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
};

/// A device copy of a host tensor's whole storage, viewed with the same
/// sizes, strides and offset, device = cuda.
struct DeviceTensor {
  DeviceBuffer buffer;
  unisparse_tensor_t t;
  DeviceTensor(const HostTensor &h, void *stream, bool upload)
      : buffer(h.storage.size() * 4, stream), t(h.t) {
    t.device = UNISPARSE_DEVICE_CUDA;
    const size_t offset = static_cast<const char *>(h.t.data) -
                          reinterpret_cast<const char *>(h.storage.data());
    t.data = static_cast<char *>(buffer.ptr) + offset;
    if (upload)
      mgpuMemcpy(buffer.ptr, const_cast<uint32_t *>(h.storage.data()),
                 int64_t(buffer.bytes), stream);
  }
  /// Fills the whole storage with a NaN pattern (outputs).
  void poison(void *stream) {
    if (t.dtype == UNISPARSE_DTYPE_F32)
      mgpuMemset32(buffer.ptr, int32_t(0x7fc00000), int64_t(buffer.bytes / 4),
                   stream);
    else // 0xffff is a NaN in both f16 and bf16
      mgpuMemset16(buffer.ptr, int16_t(-1), int64_t(buffer.bytes / 2), stream);
  }
  /// Copies the storage back into `h` (same layout) and waits.
  void download(HostTensor &h, void *stream) {
    mgpuMemcpy(h.storage.data(), buffer.ptr, int64_t(buffer.bytes), stream);
    mgpuStreamSynchronize(stream);
  }
};

/// An MLIR memref descriptor of a device tensor.
template <typename MemRef, typename T> MemRef memrefOf(const DeviceTensor &d) {
  MemRef m = {};
  m.allocated = static_cast<T *>(d.buffer.ptr);
  m.aligned = static_cast<T *>(d.buffer.ptr);
  m.offset = (static_cast<const char *>(d.t.data) -
              static_cast<const char *>(d.buffer.ptr)) /
             int64_t(sizeof(T));
  for (int i = 0; i < d.t.rank; ++i) {
    m.sizes[i] = d.t.sizes[i];
    m.strides[i] = d.t.strides[i];
  }
  return m;
}

//===----------------------------------------------------------------------===//
// Host tensors: element access by index arrays, padding.
//===----------------------------------------------------------------------===//

using TensorPtr = std::unique_ptr<HostTensor>;

TensorPtr copyOf(const HostTensor &h) {
  return std::make_unique<HostTensor>(h);
}

int64_t numel(const unisparse_tensor_t &t) {
  int64_t n = 1;
  for (int i = 0; i < t.rank; ++i)
    n *= t.sizes[i];
  return n;
}

int64_t offsetOf(const unisparse_tensor_t &t, const int64_t *idx) {
  int64_t off = 0;
  for (int i = 0; i < t.rank; ++i)
    off += idx[i] * t.strides[i];
  return off;
}

/// Calls f(idx) for every index of the view, row-major.
template <typename F> void forEachIndex(const unisparse_tensor_t &t, F f) {
  const int64_t n = numel(t);
  int64_t idx[UNISPARSE_MAX_RANK] = {0, 0, 0, 0};
  for (int64_t e = 0; e < n; ++e) {
    int64_t rem = e;
    for (int i = t.rank - 1; i >= 0; --i) {
      idx[i] = rem % t.sizes[i];
      rem /= t.sizes[i];
    }
    f(idx);
  }
}

double valueAt(const unisparse_tensor_t &t, const int64_t *idx) {
  const int64_t off = offsetOf(t, idx);
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

/// A copy of `src` whose storage has `pad` extra elements after each
/// innermost row (the view keeps the original sizes): rows then start at
/// unaligned offsets, and writes past a row's end are detectable.
HostTensor padInnermost(const HostTensor &src, int64_t pad) {
  const int rank = src.t.rank;
  std::vector<int64_t> sizes(src.t.sizes, src.t.sizes + rank);
  sizes.back() += pad;
  HostTensor dst(static_cast<unisparse_dtype_t>(src.t.dtype), sizes);
  dst.t.sizes[rank - 1] -= pad;
  const int bytes = HostTensor::elemBytes(src.t.dtype);
  forEachIndex(src.t, [&](const int64_t *idx) {
    std::memcpy(static_cast<char *>(dst.t.data) + offsetOf(dst.t, idx) * bytes,
                static_cast<const char *>(src.t.data) +
                    offsetOf(src.t, idx) * bytes,
                bytes);
  });
  return dst;
}

/// Number of storage elements outside the view of `h` that no longer hold
/// the poison pattern (i.e. were written out of bounds).
int64_t touchedOutsideView(const HostTensor &h) {
  const int bytes = HostTensor::elemBytes(h.t.dtype);
  const int64_t storageElems = int64_t(h.storage.size()) * 4 / bytes;
  const int64_t base = (static_cast<const char *>(h.t.data) -
                        reinterpret_cast<const char *>(h.storage.data())) /
                       bytes;
  std::vector<char> inView(storageElems, 0);
  forEachIndex(
      h.t, [&](const int64_t *idx) { inView[base + offsetOf(h.t, idx)] = 1; });
  int64_t touched = 0;
  for (int64_t e = 0; e < storageElems; ++e) {
    if (inView[e])
      continue;
    const char *p =
        reinterpret_cast<const char *>(h.storage.data()) + e * bytes;
    if (bytes == 2) {
      uint16_t v;
      std::memcpy(&v, p, 2);
      touched += v != 0xffffu;
    } else {
      uint32_t v;
      std::memcpy(&v, p, 4);
      touched += v != 0x7fc00000u;
    }
  }
  return touched;
}

//===----------------------------------------------------------------------===//
// Layouts.
//===----------------------------------------------------------------------===//

enum class LayoutKind {
  Dense,     ///< every (causal) block
  Sparse,    ///< random 30%, sink and diagonal kept
  EmptyRows, ///< random 15%, sink and diagonal not forced: empty rows
  Short,     ///< M = 3 < NBk: sink, diagonal, one more
  Corrupt,   ///< Sparse with bad entries the kernel must clamp or skip
};

const char *layoutName(LayoutKind kind) {
  switch (kind) {
  case LayoutKind::Dense:
    return "dense";
  case LayoutKind::Sparse:
    return "sparse";
  case LayoutKind::EmptyRows:
    return "empty-rows";
  case LayoutKind::Short:
    return "M=3";
  case LayoutKind::Corrupt:
    return "corrupt";
  }
  return "?";
}

/// Applies the kernel's safety rules to a layout: counts clamped to [0, M];
/// of the first `count` entries, those outside [0, NBk) or not greater than
/// the last one kept are dropped. The result is a valid layout with the
/// same meaning, which the CPU path accepts.
Layout sanitize(const Shape &s, const Layout &in) {
  const int64_t M = in.indices.t.sizes[3];
  Layout out(s, M);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t g = 0; g < s.Hg; ++g)
      for (int64_t i = 0; i < s.numBlocks(); ++i) {
        int64_t count = int64_t(in.counts.get({b, g, i}));
        count = std::min(std::max<int64_t>(count, 0), M);
        std::vector<int64_t> row;
        int64_t last = -1;
        for (int64_t c = 0; c < count; ++c) {
          const int64_t j = int64_t(in.indices.get({b, g, i, c}));
          if (j < 0 || j >= s.numBlocks() || j <= last)
            continue;
          row.push_back(j);
          last = j;
        }
        out.setRow(b, g, i, row);
      }
  return out;
}

Layout makeLayout(const Shape &s, bool causal, LayoutKind kind, uint64_t seed) {
  switch (kind) {
  case LayoutKind::Dense:
    return Layout::dense(s, causal);
  case LayoutKind::Sparse:
    return Layout::random(s, causal, 0.3, true, seed);
  case LayoutKind::EmptyRows:
    return Layout::random(s, causal, 0.15, false, seed);
  case LayoutKind::Short: {
    std::mt19937_64 rng(seed);
    Layout layout(s, 3);
    const int64_t nb = s.numBlocks();
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t g = 0; g < s.Hg; ++g)
        for (int64_t i = 0; i < nb; ++i) {
          const int64_t hi = causal ? i : nb - 1;
          std::vector<int64_t> row = {0, i, int64_t(rng() % (hi + 1))};
          std::sort(row.begin(), row.end());
          row.erase(std::unique(row.begin(), row.end()), row.end());
          layout.setRow(b, g, i, row);
        }
    return layout;
  }
  case LayoutKind::Corrupt: {
    Layout layout = Layout::random(s, causal, 0.4, true, seed);
    std::mt19937_64 rng(seed ^ 0x5eed);
    const int64_t nb = s.numBlocks();
    const int64_t M = layout.indices.t.sizes[3];
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t g = 0; g < s.Hg; ++g)
        for (int64_t i = 0; i < nb; ++i) {
          const int64_t count = int64_t(layout.counts.get({b, g, i}));
          switch (rng() % 6) {
          case 0: // count past M: clamped, the -1 padding skipped
            layout.counts.set({b, g, i}, double(M + 7));
            break;
          case 1: // negative count: an empty row
            layout.counts.set({b, g, i}, -3.0);
            break;
          case 2: // out-of-range indices
            if (count > 0)
              layout.indices.set({b, g, i, int64_t(rng() % count)},
                                 rng() % 2 ? double(nb) : -5.0);
            break;
          case 3: // a duplicate
            if (count > 1)
              layout.indices.set({b, g, i, 1},
                                 layout.indices.get({b, g, i, 0}));
            break;
          case 4: // unsorted: the first entry becomes the largest
            if (count > 1)
              layout.indices.set({b, g, i, 0}, double(nb - 1));
            break;
          default: // a huge index
            if (count > 0)
              layout.indices.set({b, g, i, count - 1}, 2.0e9);
            break;
          }
        }
    return layout;
  }
  }
  return Layout::dense(s, causal);
}

//===----------------------------------------------------------------------===//
// One attention case: CPU runtime vs CUDA runtime.
//===----------------------------------------------------------------------===//

enum class Entry {
  Direct,      ///< unisparse_rt_block_sparse_attention on an explicit stream
  ShimCurrent, ///< _mlir_ciface_..._cuda_<dtype> with a current stream
  ShimLegacy,  ///< _mlir_ciface_..._cuda_<dtype>, no current stream
};

struct Case {
  Shape s;
  unisparse_dtype_t dtype;
  bool causal;
  LayoutKind layout;
  uint64_t seed;
  float scale = 0.0f;     ///< 0: 1/sqrt(D)
  bool stridedQO = false; ///< q and o laid out [B, N, H, D]
  bool padded = false;    ///< k, v, o, lse rows padded: the element path
  Entry entry = Entry::Direct;
  /// Scores that climb along the keys (addRamp): the running max moves in
  /// most blocks, by less and by more than the lazy rescale's threshold.
  bool ramp = false;

  /// Whether the sm_90a kernel takes this case (S = 128, aligned rows).
  bool sm90Eligible() const { return s.S == 128 && !padded; }
  /// The kernel that must serve the case under kernelMode.
  int32_t expectedKernel() const {
    if (kernelMode == UNISPARSE_CUDA_KERNEL_AUTO)
      return deviceIsSm90 && sm90Eligible() ? UNISPARSE_CUDA_KERNEL_SM90
                                            : UNISPARSE_CUDA_KERNEL_MMA_SYNC;
    return kernelMode;
  }

  std::string name() const {
    char buf[320];
    std::snprintf(buf, sizeof(buf),
                  "attention %s d%" PRId64 " %s N=%" PRId64 " S=%" PRId64
                  " B=%" PRId64 " Hq/Hkv/Hg=%" PRId64 "/%" PRId64 "/%" PRId64
                  " %s%s%s%s%s%s",
                  dtype == UNISPARSE_DTYPE_BF16 ? "bf16" : "f16", s.D,
                  causal ? "causal" : "full", s.N, s.S, s.B, s.Hq, s.Hkv, s.Hg,
                  layoutName(layout), stridedQO ? " strided-q/o" : "",
                  padded ? " padded(unaligned)" : "",
                  entry == Entry::ShimCurrent  ? " shim+current-stream"
                  : entry == Entry::ShimLegacy ? " shim+legacy-stream"
                                               : "",
                  scale > 0 ? " scale" : "", ramp ? " ramp" : "");
    return std::string(buf) + " [" + kernelModeName(kernelMode) + "]";
  }
};

/// The host side of a case: inputs, the layout each side sees, outputs.
struct HostProblem {
  TensorPtr q, k, v;
  TensorPtr cpuCounts, cpuIndices; ///< valid layout (sanitized)
  TensorPtr gpuCounts, gpuIndices; ///< what the kernel sees
  TensorPtr cpuO, cpuLse, gpuO, gpuLse;
};

/// Case::ramp: every query gets a random direction u (|u|^2 ~ D) of its kv
/// head, key n gets 0.003 n u, so a query's scores climb by ~0.003 sqrt(D)
/// log2(e) log2-units per key: ~6 (D = 128) / ~4.4 (D = 64) per 128-key
/// block, on top of the gaussian spread. In a float64 model of the sm_90a
/// kernel's warps and blocks (N = 2000) about 90% of the (warp, block)
/// steps after a row's first move the reference max by more than the lazy
/// rescale's threshold (8: a rescale of O, the speculative softmax's slow
/// path), a few only exceed its partial-sum bound (slow path, no move), the
/// rest keep it; without the ramp about 8% move.
void addRamp(Inputs &in, const Shape &s, uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x4a3b);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int64_t group = s.Hq / s.Hkv;
  std::vector<double> u(s.D);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t hk = 0; hk < s.Hkv; ++hk) {
      for (auto &x : u)
        x = normal(rng);
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t d = 0; d < s.D; ++d) {
          in.k.set({b, hk, n, d},
                   in.k.get({b, hk, n, d}) + 0.003 * double(n) * u[d]);
          for (int64_t hq = hk * group; hq < (hk + 1) * group; ++hq)
            in.q.set({b, hq, n, d}, in.q.get({b, hq, n, d}) + u[d]);
        }
    }
}

HostProblem buildProblem(const Case &c) {
  HostProblem p;
  const std::vector<int> qoOrder =
      c.stridedQO ? std::vector<int>{0, 2, 1, 3} : std::vector<int>{};
  Inputs in(c.s, c.dtype, c.seed, qoOrder);
  if (c.ramp)
    addRamp(in, c.s, c.seed);
  p.q = copyOf(in.q);
  p.k = c.padded ? copyOf(padInnermost(in.k, 4)) : copyOf(in.k);
  p.v = c.padded ? copyOf(padInnermost(in.v, 4)) : copyOf(in.v);
  Layout layout = makeLayout(c.s, c.causal, c.layout, c.seed * 7 + 1);
  Layout clean = sanitize(c.s, layout);
  p.gpuCounts = copyOf(layout.counts);
  p.gpuIndices = copyOf(layout.indices);
  p.cpuCounts = copyOf(clean.counts);
  p.cpuIndices = copyOf(clean.indices);
  Outputs out(c.s, c.dtype, qoOrder);
  p.cpuO = copyOf(out.o);
  p.cpuLse = copyOf(out.lse);
  p.gpuO = c.padded ? copyOf(padInnermost(out.o, 4)) : copyOf(out.o);
  p.gpuLse = c.padded ? copyOf(padInnermost(out.lse, 8)) : copyOf(out.lse);
  return p;
}

/// Runs the CPU path (the reference).
unisparse_status_t runCpu(const Case &c, HostProblem &p) {
  const unisparse_attention_params_t params{c.s.S, c.causal ? 1 : 0, c.scale};
  return unisparse_rt_block_sparse_attention(
      &p.q->t, &p.k->t, &p.v->t, &p.cpuCounts->t, &p.cpuIndices->t, &p.cpuO->t,
      &p.cpuLse->t, &params, nullptr);
}

/// Uploads, poisons the outputs, runs the CUDA path through `c.entry` and
/// downloads the outputs into p.gpuO / p.gpuLse. On failure, `err` says why.
bool runGpu(const Case &c, HostProblem &p, void *stream, std::string &err,
            double &ms) {
  DeviceTensor q(*p.q, stream, true), k(*p.k, stream, true),
      v(*p.v, stream, true);
  DeviceTensor counts(*p.gpuCounts, stream, true);
  DeviceTensor indices(*p.gpuIndices, stream, true);
  DeviceTensor o(*p.gpuO, stream, false), lse(*p.gpuLse, stream, false);
  o.poison(stream);
  lse.poison(stream);
  // The legacy stream does not wait for `stream` (non-blocking): finish the
  // uploads first, whatever the entry.
  mgpuStreamSynchronize(stream);
  if (std::string e = takeError(); !e.empty()) {
    err = "setting up device buffers: " + e;
    return false;
  }

  unisparse_rt_set_cuda_attention_kernel(kernelMode);
  const auto start = std::chrono::steady_clock::now();
  int32_t status = UNISPARSE_STATUS_SUCCESS;
  if (c.entry == Entry::Direct) {
    const unisparse_attention_params_t params{c.s.S, c.causal ? 1 : 0, c.scale};
    status = unisparse_rt_block_sparse_attention(
        &q.t, &k.t, &v.t, &counts.t, &indices.t, &o.t, &lse.t, &params, stream);
  } else {
    auto mq = memrefOf<unisparse_memref_4d_u16, uint16_t>(q);
    auto mk = memrefOf<unisparse_memref_4d_u16, uint16_t>(k);
    auto mv = memrefOf<unisparse_memref_4d_u16, uint16_t>(v);
    auto mo = memrefOf<unisparse_memref_4d_u16, uint16_t>(o);
    auto mc = memrefOf<unisparse_memref_3d_i32, int32_t>(counts);
    auto mi = memrefOf<unisparse_memref_4d_i32, int32_t>(indices);
    auto ml = memrefOf<unisparse_memref_3d_f32, float>(lse);
    if (c.entry == Entry::ShimCurrent)
      unisparse_rt_set_current_stream(stream);
    status =
        c.dtype == UNISPARSE_DTYPE_BF16
            ? _mlir_ciface_unisparse_rt_block_sparse_attention_cuda_bf16(
                  &mq, &mk, &mv, &mc, &mi, &mo, &ml, c.s.S, c.causal, c.scale)
            : _mlir_ciface_unisparse_rt_block_sparse_attention_cuda_f16(
                  &mq, &mk, &mv, &mc, &mi, &mo, &ml, c.s.S, c.causal, c.scale);
    unisparse_rt_set_current_stream(nullptr);
  }
  mgpuStreamSynchronize(stream);
  ms = millisecondsSince(start);
  if (status != UNISPARSE_STATUS_SUCCESS) {
    err = "returned " +
          std::string(unisparse_rt_status_string(unisparse_status_t(status))) +
          ": " + unisparse_rt_last_error_message();
    unisparse_rt_clear_error();
    return false;
  }
  o.download(*p.gpuO, stream);
  lse.download(*p.gpuLse, stream);
  if (std::string e = takeError(); !e.empty()) {
    err = "after the launch: " + e;
    return false;
  }
  return true;
}

struct Comparison {
  double relL2 = 0.0;      ///< of O
  double maxLseDiff = 0.0; ///< over rows where both are finite
  int64_t nanO = 0, nanLse = 0;
  int64_t infMismatch = 0; ///< LSE -inf on one side only
};

Comparison compare(const HostProblem &p) {
  Comparison r;
  double num = 0.0, den = 0.0;
  forEachIndex(p.cpuO->t, [&](const int64_t *idx) {
    const double want = valueAt(p.cpuO->t, idx);
    const double got = valueAt(p.gpuO->t, idx);
    if (std::isnan(got)) {
      ++r.nanO;
      return;
    }
    num += (got - want) * (got - want);
    den += want * want;
  });
  r.relL2 = den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
  forEachIndex(p.cpuLse->t, [&](const int64_t *idx) {
    const double want = valueAt(p.cpuLse->t, idx);
    const double got = valueAt(p.gpuLse->t, idx);
    if (std::isnan(got)) {
      ++r.nanLse;
      return;
    }
    if (std::isinf(want) || std::isinf(got)) {
      r.infMismatch += want != got;
      return;
    }
    r.maxLseDiff = std::max(r.maxLseDiff, std::fabs(got - want));
  });
  return r;
}

void runAttentionCase(const Case &c) {
  if (kernelMode == UNISPARSE_CUDA_KERNEL_SM90 && !c.sm90Eligible())
    return; // the sm_90a kernel rejects it (tested in badArgumentTests)
  const std::string name = c.name();
  if (!selected(name))
    return;
  HostProblem p = buildProblem(c);
  if (runCpu(c, p) != UNISPARSE_STATUS_SUCCESS) {
    report(false, name, "CPU reference failed: %s", takeError().c_str());
    return;
  }
  void *stream = mgpuStreamCreate();
  std::string err;
  double ms = 0.0;
  const bool ran = stream && runGpu(c, p, stream, err, ms);
  mgpuStreamDestroy(stream);
  if (!ran) {
    report(false, name, "%s", stream ? err.c_str() : takeError().c_str());
    return;
  }
  const int32_t used = unisparse_rt_last_cuda_attention_kernel();
  if (used != c.expectedKernel()) {
    report(false, name, "ran the %s kernel, expected %s", kernelModeName(used),
           kernelModeName(c.expectedKernel()));
    return;
  }
  const Comparison r = compare(p);
  const int64_t outOfBounds =
      touchedOutsideView(*p.gpuO) + touchedOutsideView(*p.gpuLse);
  const double tol = c.dtype == UNISPARSE_DTYPE_BF16 ? 2e-2 : 5e-3;
  const bool ok = r.nanO == 0 && r.nanLse == 0 && r.infMismatch == 0 &&
                  r.relL2 < tol && r.maxLseDiff < 1e-2 && outOfBounds == 0;
  report(ok, name,
         "relL2(O) %.2e (tol %.0e), max|dLSE| %.2e (tol 1e-2), NaN O/LSE "
         "%" PRId64 "/%" PRId64 ", -inf mismatches %" PRId64
         ", writes outside views %" PRId64 ", %.1f ms",
         r.relL2, tol, r.maxLseDiff, r.nanO, r.nanLse, r.infMismatch,
         outOfBounds, ms);
}

void attentionCases() {
  const unisparse_dtype_t dtypes[] = {UNISPARSE_DTYPE_BF16,
                                      UNISPARSE_DTYPE_F16};
  uint64_t seed = 1000;
  // The matrix the brief asks for: GQA 8/2/4, batch 2.
  for (int64_t D : {64, 128})
    for (unisparse_dtype_t dtype : dtypes)
      for (bool causal : {false, true})
        for (auto [N, S] : {std::pair<int64_t, int64_t>{1000, 128}, {512, 64}})
          for (LayoutKind layout : {LayoutKind::Dense, LayoutKind::Sparse})
            runAttentionCase(
                Case{{2, 8, 2, 4, N, D, S}, dtype, causal, layout, ++seed});

  const auto bf16 = UNISPARSE_DTYPE_BF16;
  const auto f16 = UNISPARSE_DTYPE_F16;
  // Rows that see no key (O = 0, LSE = -inf) and partly empty rows.
  runAttentionCase(Case{
      {2, 8, 2, 4, 1000, 128, 128}, bf16, true, LayoutKind::EmptyRows, ++seed});
  runAttentionCase(Case{
      {2, 8, 2, 4, 512, 64, 64}, f16, false, LayoutKind::EmptyRows, ++seed});
  // Indices rows shorter than NBk.
  runAttentionCase(
      Case{{2, 8, 2, 4, 1000, 64, 128}, f16, true, LayoutKind::Short, ++seed});
  // Corrupt layouts: clamped / skipped exactly as documented.
  runAttentionCase(Case{
      {2, 8, 2, 4, 1000, 64, 128}, bf16, true, LayoutKind::Corrupt, ++seed});
  runAttentionCase(Case{
      {2, 8, 2, 4, 512, 128, 64}, f16, false, LayoutKind::Corrupt, ++seed});
  // Strided q and o ([B, N, H, D] in memory).
  runAttentionCase(Case{{2, 8, 2, 4, 1000, 128, 128},
                        bf16,
                        true,
                        LayoutKind::Sparse,
                        ++seed,
                        0.0f,
                        true});
  // Padded rows: unaligned strides, the element-by-element path; checks
  // that nothing is written past a row of O or past the N rows of LSE.
  runAttentionCase(Case{{2, 8, 2, 4, 1000, 64, 128},
                        f16,
                        true,
                        LayoutKind::Sparse,
                        ++seed,
                        0.0f,
                        false,
                        true});
  runAttentionCase(Case{{2, 8, 2, 4, 333, 128, 64},
                        bf16,
                        false,
                        LayoutKind::Dense,
                        ++seed,
                        0.0f,
                        false,
                        true});
  // An explicit scale; no GQA; tiny and ragged lengths.
  runAttentionCase(Case{
      {2, 8, 2, 4, 512, 64, 64}, bf16, true, LayoutKind::Sparse, ++seed, 0.3f});
  runAttentionCase(
      Case{{1, 1, 1, 1, 777, 128, 128}, f16, true, LayoutKind::Dense, ++seed});
  runAttentionCase(
      Case{{1, 2, 1, 2, 1, 64, 64}, bf16, true, LayoutKind::Dense, ++seed});
  runAttentionCase(
      Case{{2, 4, 4, 2, 65, 128, 64}, f16, false, LayoutKind::Dense, ++seed});
  runAttentionCase(Case{
      {1, 4, 2, 1, 2048, 128, 128}, bf16, true, LayoutKind::Sparse, ++seed});
  // Long rows: many K/V tiles per CTA, so the sm_90a pipeline wraps its
  // stages (and mbarrier phases) many times; a partial last block.
  runAttentionCase(Case{
      {1, 4, 1, 4, 4000, 128, 128}, bf16, false, LayoutKind::Dense, ++seed});
  runAttentionCase(
      Case{{1, 4, 2, 2, 3000, 64, 128}, f16, true, LayoutKind::Dense, ++seed});
  runAttentionCase(Case{
      {2, 4, 2, 2, 2500, 64, 128}, bf16, false, LayoutKind::Sparse, ++seed});
  // The memref shims, with and without a current stream.
  runAttentionCase(Case{{2, 8, 2, 4, 1000, 128, 128},
                        bf16,
                        true,
                        LayoutKind::Sparse,
                        ++seed,
                        0.0f,
                        false,
                        false,
                        Entry::ShimCurrent});
  runAttentionCase(Case{{2, 8, 2, 4, 512, 64, 64},
                        f16,
                        false,
                        LayoutKind::Dense,
                        ++seed,
                        0.0f,
                        false,
                        false,
                        Entry::ShimLegacy});
  // More query tiles (512, 384) than an H200 has SMs (132): a persistent
  // sm_90a kernel's CTAs take several tiles each from its dynamic
  // scheduler, with rows of every length, empty ones among them.
  runAttentionCase(Case{
      {2, 8, 2, 4, 4000, 128, 128}, bf16, true, LayoutKind::EmptyRows, ++seed});
  runAttentionCase(Case{
      {2, 8, 2, 2, 3000, 64, 128}, f16, false, LayoutKind::Sparse, ++seed});
  // Climbing scores: the running max moves in most key blocks (the lazy
  // rescale and the speculative softmax's slow path; all head dims, both
  // masks, dense and sparse rows).
  for (int64_t D : {64, 128})
    for (bool causal : {false, true})
      for (LayoutKind layout : {LayoutKind::Dense, LayoutKind::Sparse}) {
        Case ramp{{1, 4, 2, 2, 2000, D, 128}, bf16, causal, layout, ++seed};
        ramp.ramp = true;
        runAttentionCase(ramp);
      }
}

//===----------------------------------------------------------------------===//
// mgpu* functions.
//===----------------------------------------------------------------------===//

/// The axpy kernel of `module` on n = 1000 floats: y = 0.5 * x + y with
/// x = 2i, y = i must give 2i.
bool checkAxpy(void *module, void *stream, std::string &err) {
  void *fn = mgpuModuleGetFunction(module, "unisparse_test_axpy");
  void *again = mgpuModuleGetFunction(module, "unisparse_test_axpy");
  if (!fn || fn != again) {
    err = "mgpuModuleGetFunction: " + takeError() +
          (fn != again ? " (second lookup differs)" : "");
    return false;
  }
  constexpr int n = 1000;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = 2.0f * i;
    y[i] = float(i);
  }
  DeviceBuffer dx(n * 4, stream), dy(n * 4, stream);
  mgpuMemcpy(dx.ptr, x.data(), n * 4, stream);
  mgpuMemcpy(dy.ptr, y.data(), n * 4, stream);
  float a = 0.5f;
  int count = n;
  void *params[] = {&dy.ptr, &dx.ptr, &a, &count};
  mgpuLaunchKernel(fn, (n + 255) / 256, 1, 1, 256, 1, 1, 0, stream, params,
                   nullptr, 4);
  mgpuMemcpy(y.data(), dy.ptr, n * 4, stream);
  mgpuStreamSynchronize(stream);
  if (std::string e = takeError(); !e.empty()) {
    err = e;
    return false;
  }
  for (int i = 0; i < n; ++i)
    if (y[i] != 2.0f * i) {
      err = "y[" + std::to_string(i) + "] = " + std::to_string(y[i]);
      return false;
    }
  return true;
}

/// The device's exp2Poly (the fatbin's unisparse_test_exp2_poly) against
/// the host model of cuda/Exp2Poly.h, whose error bound the CPU test
/// checks: the same bits on a grid of [-130, 130] (step 2^-10), at -inf,
/// +-0 and NaN.
bool checkExp2Poly(void *module, void *stream, std::string &err) {
  void *fn = mgpuModuleGetFunction(module, "unisparse_test_exp2_poly");
  std::vector<float> x;
  for (int k = -130 * 1024; k <= 130 * 1024; ++k)
    x.push_back(float(k) / 1024.0f);
  for (float v : {-INFINITY, -0.0f, 0.0f, NAN})
    x.push_back(v);
  const int n = int(x.size());
  std::vector<float> y(n);
  DeviceBuffer dx(n * 4, stream), dy(n * 4, stream);
  mgpuMemcpy(dx.ptr, x.data(), n * 4, stream);
  int count = n;
  void *params[] = {&dy.ptr, &dx.ptr, &count};
  mgpuLaunchKernel(fn, (n + 255) / 256, 1, 1, 256, 1, 1, 0, stream, params,
                   nullptr, 3);
  mgpuMemcpy(y.data(), dy.ptr, n * 4, stream);
  mgpuStreamSynchronize(stream);
  if (std::string e = takeError(); !e.empty()) {
    err = e;
    return false;
  }
  for (int i = 0; i < n; ++i) {
    const float want = unisparse::rt::cuda::exp2Poly(x[i]);
    if (std::memcmp(&want, &y[i], 4) != 0) {
      char buf[128];
      std::snprintf(buf, sizeof(buf), "x = %.9g: device %.9g, host %.9g",
                    double(x[i]), double(y[i]), double(want));
      err = buf;
      return false;
    }
  }
  return true;
}

void mgpuTests() {
  std::string err;
  void *stream = mgpuStreamCreate();
  void *stream2 = mgpuStreamCreate();
  report(stream && stream2 && stream != stream2 && takeError().empty(),
         "mgpu streams", "two distinct non-null streams");

  // PTX through the JIT, and the fatbin.
  void *ptxModule = mgpuModuleLoadJIT(
      const_cast<unsigned char *>(unisparse_test_kernels_ptx), 2);
  if (selected("mgpu JIT"))
    report(ptxModule && checkAxpy(ptxModule, stream, err),
           "mgpu JIT PTX + launch", "%s",
           ptxModule ? err.c_str() : takeError().c_str());
  err.clear();
  void *binModule =
      mgpuModuleLoad(const_cast<unsigned char *>(unisparse_test_kernels_fatbin),
                     int64_t(unisparse_test_kernels_fatbin_size));
  if (selected("mgpu fatbin"))
    report(binModule && checkAxpy(binModule, stream, err),
           "mgpu fatbin + launch", "%s",
           binModule ? err.c_str() : takeError().c_str());
  err.clear();
  if (binModule && selected("exp2 polynomial"))
    report(checkExp2Poly(binModule, stream, err),
           "exp2 polynomial: device bits = host model", "%s", err.c_str());
  err.clear();

  // More than 48 KiB of dynamic shared memory: the function's limit raised
  // on the first launch, kept for the second, raised again for a larger
  // size, and still enough for a smaller one after it.
  if (binModule && selected("mgpu smem")) {
    void *fn = mgpuModuleGetFunction(binModule, "unisparse_test_reverse");
    bool ok = true;
    std::string sizes;
    for (int n : {16384, 16384, 24576, 16384}) { // 64, 64, 96, 64 KiB
      std::vector<float> in(n), out(n, -1.0f);
      for (int i = 0; i < n; ++i)
        in[i] = float(i);
      DeviceBuffer dIn(n * 4, stream), dOut(n * 4, stream);
      mgpuMemcpy(dIn.ptr, in.data(), n * 4, stream);
      int count = n;
      void *params[] = {&dOut.ptr, &dIn.ptr, &count};
      mgpuLaunchKernel(fn, 1, 1, 1, 256, 1, 1, n * 4, stream, params, nullptr,
                       3);
      mgpuMemcpy(out.data(), dOut.ptr, n * 4, stream);
      mgpuStreamSynchronize(stream);
      bool same = true;
      for (int i = 0; i < n && same; ++i)
        same = out[i] == float(n - 1 - i);
      ok &= same;
      sizes +=
          std::to_string(n / 256) + " KiB " + (same ? "ok" : "wrong") + "; ";
    }
    const std::string e = takeError();
    report(ok && e.empty(), "mgpu launch with 64 / 96 KiB dynamic smem", "%s%s",
           sizes.c_str(), e.c_str());
  }

  // Launches beyond the device's limits (read once per device, then from
  // the runtime's cache): a clear error each time, nothing launched, and a
  // valid launch afterwards still runs.
  if (binModule && selected("mgpu launch limits")) {
    void *fn = mgpuModuleGetFunction(binModule, "unisparse_test_axpy");
    float a = 0.5f;
    int count = 0;
    void *none = nullptr;
    void *params[] = {&none, &none, &a, &count};
    std::string messages[3];
    for (int i = 0; i < 2; ++i) {
      mgpuLaunchKernel(fn, 1, 1, 1, 2048, 1, 1, 0, stream, params, nullptr, 4);
      messages[i] = takeError();
    }
    mgpuLaunchKernel(fn, 1, 65536, 1, 32, 1, 1, 0, stream, params, nullptr, 4);
    messages[2] = takeError();
    const bool blockOk =
        messages[0].find("block x dimension 2048 exceeds the device limit") !=
            std::string::npos &&
        messages[1] == messages[0];
    const bool gridOk =
        messages[2].find("grid y dimension 65536 exceeds the device limit "
                         "65535") != std::string::npos;
    std::string axpyErr;
    const bool after = checkAxpy(binModule, stream, axpyErr);
    report(blockOk && gridOk && after, "mgpu launch limits",
           "block x: '%s' / '%s'; grid y: '%s'; axpy after: %s",
           messages[0].c_str(), messages[1].c_str(), messages[2].c_str(),
           after ? "ok" : axpyErr.c_str());
  }

  // Clusters (sm_90+): 8 blocks in clusters of 2.
  CUdevice device = 0;
  int major = 0;
  cuCtxGetDevice(&device);
  cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                       device);
  if (binModule && selected("mgpu cluster")) {
    if (major < 9) {
      report(true, "mgpu cluster launch", "skipped: compute capability %d.x",
             major);
    } else {
      std::vector<int> out(16, -7);
      DeviceBuffer dOut(16 * 4, stream);
      void *fn = mgpuModuleGetFunction(binModule, "unisparse_test_cluster");
      void *params[] = {&dOut.ptr};
      mgpuLaunchClusterKernel(fn, 2, 1, 1, 8, 1, 1, 32, 1, 1, 0, stream, params,
                              nullptr);
      mgpuMemcpy(out.data(), dOut.ptr, 16 * 4, stream);
      mgpuStreamSynchronize(stream);
      bool ok = true;
      for (int b = 0; b < 8; ++b)
        ok &= out[2 * b] == b % 2 && out[2 * b + 1] == 2;
      const std::string e = takeError();
      report(ok && e.empty(), "mgpu cluster launch",
             "ranks %d %d %d %d, sizes %d %s", out[0], out[2], out[4], out[6],
             out[1], e.c_str());
    }
  }

  // Memsets.
  if (selected("mgpu memset")) {
    constexpr int n = 1000;
    DeviceBuffer buf(n * 4, stream);
    std::vector<uint32_t> words(n);
    mgpuMemset32(buf.ptr, int32_t(0x12345678), n, stream);
    mgpuMemcpy(words.data(), buf.ptr, n * 4, stream);
    mgpuStreamSynchronize(stream);
    bool ok = true;
    for (uint32_t w : words)
      ok &= w == 0x12345678u;
    std::vector<uint16_t> halves(2 * n);
    mgpuMemset16(buf.ptr, int16_t(0x2345), 2 * n - 1, stream);
    mgpuMemcpy(halves.data(), buf.ptr, n * 4, stream);
    mgpuStreamSynchronize(stream);
    for (int i = 0; i < 2 * n - 1; ++i)
      ok &= halves[i] == 0x2345;
    ok &= halves[2 * n - 1] == 0x1234; // high half of the last word kept
    const std::string e = takeError();
    report(ok && e.empty(), "mgpu memset32/memset16", "%s", e.c_str());
  }

  // Events: record on one stream, wait on another, synchronize.
  if (selected("mgpu events")) {
    void *event = mgpuEventCreate();
    mgpuEventRecord(event, stream);
    mgpuStreamWaitEvent(stream2, event);
    mgpuEventSynchronize(event);
    mgpuEventDestroy(event);
    mgpuStreamSynchronize(stream2);
    const std::string e = takeError();
    report(event && e.empty(), "mgpu events", "%s", e.c_str());
  }

  // Managed (host-shared) memory.
  if (selected("mgpu managed")) {
    auto *p = static_cast<uint32_t *>(mgpuMemAlloc(4096, stream, 1));
    bool ok = p != nullptr;
    if (ok) {
      p[0] = 7; // host-accessible
      mgpuMemset32(p + 1, 9, 1023, stream);
      mgpuStreamSynchronize(stream);
      ok = p[0] == 7 && p[1] == 9 && p[1023] == 9;
      mgpuMemFree(p, stream);
    }
    const std::string e = takeError();
    report(ok && e.empty(), "mgpu managed alloc", "%s", e.c_str());
  }

  // Zero-size requests are no-ops.
  if (selected("mgpu zero")) {
    void *p = mgpuMemAlloc(0, stream, 0);
    mgpuMemcpy(nullptr, nullptr, 0, stream);
    mgpuMemset32(nullptr, 0, 0, stream);
    mgpuLaunchKernel(mgpuModuleGetFunction(binModule, "unisparse_test_axpy"), 0,
                     1, 1, 256, 1, 1, 0, stream, nullptr, nullptr, 0);
    const std::string e = takeError();
    report(p == nullptr && e.empty(), "mgpu zero-size alloc/copy/launch", "%s",
           e.c_str());
  }

  // Failures are errors with messages, not crashes.
  if (selected("mgpu errors")) {
    std::vector<std::string> problems;
    auto expect = [&](const char *what, bool nullOk, unisparse_status_t status,
                      const char *substring) {
      const std::string message = unisparse_rt_last_error_message();
      const unisparse_status_t got = unisparse_rt_last_error();
      if (!nullOk || got != status ||
          message.find(substring) == std::string::npos)
        problems.push_back(std::string(what) + " -> " +
                           unisparse_rt_status_string(got) + ": " + message);
      unisparse_rt_clear_error();
    };
    unisparse_rt_clear_error();
    void *fn = mgpuModuleGetFunction(binModule, "no_such_kernel");
    expect("unknown kernel", fn == nullptr, UNISPARSE_STATUS_CUDA_ERROR,
           "CUDA_ERROR_NOT_FOUND");
    void *huge = mgpuMemAlloc(int64_t(1) << 60, stream, 0);
    expect("2^60-byte alloc", huge == nullptr, UNISPARSE_STATUS_CUDA_ERROR,
           "cuMemAllocFromPoolAsync failed");
    void *bad = mgpuModuleLoadJIT(const_cast<char *>(".version 8.0\n"
                                                     ".target sm_80\n"
                                                     "this is not ptx\n"),
                                  2);
    expect("bad PTX", bad == nullptr, UNISPARSE_STATUS_CUDA_ERROR,
           "cuModuleLoadDataEx failed");
    // A failed load's null module: the root cause stays the sticky error.
    void *module = mgpuModuleLoad(const_cast<char *>("not an image"), 12);
    void *fromNull = mgpuModuleGetFunction(module, "unisparse_test_axpy");
    mgpuLaunchKernel(fromNull, 1, 1, 1, 1, 1, 1, 0, stream, nullptr, nullptr,
                     0);
    expect("garbage image, then its function and launch",
           module == nullptr && fromNull == nullptr,
           UNISPARSE_STATUS_CUDA_ERROR, "cuModuleLoadData failed");
    mgpuLaunchKernel(nullptr, 1, 1, 1, 1, 1, 1, 0, stream, nullptr, nullptr, 0);
    expect("null function", true, UNISPARSE_STATUS_NULL_POINTER,
           "function is null");
    mgpuLaunchKernel(mgpuModuleGetFunction(binModule, "unisparse_test_axpy"),
                     int64_t(1) << 40, 1, 1, 1, 1, 1, 0, stream, nullptr,
                     nullptr, 0);
    expect("2^40 blocks", true, UNISPARSE_STATUS_INVALID_ARGUMENT,
           "launch dimension 0");
    // Within 2^32 but past the device's grid y limit (65535): a clear error
    // naming the dimension, not the driver's bare CUDA_ERROR_INVALID_VALUE.
    mgpuLaunchKernel(mgpuModuleGetFunction(binModule, "unisparse_test_axpy"), 1,
                     70000, 1, 1, 1, 1, 0, stream, nullptr, nullptr, 0);
    expect("grid y 70000", true, UNISPARSE_STATUS_INVALID_ARGUMENT,
           "grid y dimension 70000 exceeds the device limit 65535");
    mgpuLaunchKernel(mgpuModuleGetFunction(binModule, "unisparse_test_axpy"), 1,
                     1, 1, 2048, 1, 1, 0, stream, nullptr, nullptr, 0);
    expect("2048 threads", true, UNISPARSE_STATUS_INVALID_ARGUMENT,
           "block x dimension 2048 exceeds the device limit 1024");
    mgpuSetDefaultDevice(12345);
    expect("device 12345", true, UNISPARSE_STATUS_CUDA_ERROR,
           "cuDeviceGet failed");
    mgpuSetDefaultDevice(0);
    expect("device 0", unisparse_rt_last_error() == UNISPARSE_STATUS_SUCCESS,
           UNISPARSE_STATUS_SUCCESS, "");
    std::string all;
    for (const std::string &p : problems)
      all += p + "; ";
    report(problems.empty(), "mgpu failures are reported", "%s", all.c_str());
  }

  mgpuModuleUnload(ptxModule);
  mgpuModuleUnload(binModule);
  mgpuStreamDestroy(stream2);
  mgpuStreamDestroy(stream);
  const std::string e = takeError();
  report(e.empty(), "mgpu unload/destroy", "%s", e.c_str());
}

//===----------------------------------------------------------------------===//
// The current stream.
//===----------------------------------------------------------------------===//

void currentStreamTests() {
  if (!selected("current stream"))
    return;
  unisparse_rt_set_current_stream(nullptr);
  void *module =
      mgpuModuleLoad(const_cast<unsigned char *>(unisparse_test_kernels_fatbin),
                     int64_t(unisparse_test_kernels_fatbin_size));
  void *spin = mgpuModuleGetFunction(module, "unisparse_test_spin");
  const Stream s1;
  if (!module || !spin || !s1.s) {
    report(false, "current stream", "setup: %s", takeError().c_str());
    return;
  }

  // Stream creation returns the current stream; sync and destroy of it are
  // no-ops (a 300 ms spin is still running when the sync returns); the
  // stream stays usable; events still wait.
  DeviceBuffer done(4, s1);
  mgpuMemset32(done.ptr, 0, 1, s1);
  mgpuStreamSynchronize(s1);
  unisparse_rt_set_current_stream(s1);
  const bool getOk = unisparse_rt_get_current_stream() == s1;
  void *created = mgpuStreamCreate();
  unsigned long long ns = 300000000ull;
  void *params[] = {&ns, &done.ptr};
  const auto start = std::chrono::steady_clock::now();
  mgpuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, created, params, nullptr, 2);
  mgpuStreamSynchronize(created);
  mgpuStreamDestroy(created);
  const double syncMs = millisecondsSince(start);
  int flag = -1;
  void *event = mgpuEventCreate();
  mgpuMemcpy(&flag, done.ptr, 4, s1); // pageable D2H: returns when done
  mgpuEventRecord(event, s1);
  mgpuEventSynchronize(event);
  const double eventMs = millisecondsSince(start);
  mgpuEventDestroy(event);
  unisparse_rt_set_current_stream(nullptr);
  const bool noCurrent = unisparse_rt_get_current_stream() == nullptr;
  std::string e = takeError();
  report(getOk && created == s1.s && syncMs < 150.0 && eventMs >= 250.0 &&
             flag == 1 && noCurrent && e.empty(),
         "current stream: create returns it, sync/destroy are no-ops",
         "created == current: %d, sync returned after %.1f ms (< 150), "
         "event after %.1f ms (>= 250), flag %d %s",
         created == s1.s, syncMs, eventMs, flag, e.c_str());

  // Without a current stream: a real sync waits for the spin.
  mgpuMemset32(done.ptr, 0, 1, s1);
  const auto start2 = std::chrono::steady_clock::now();
  ns = 200000000ull;
  mgpuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, s1, params, nullptr, 2);
  mgpuStreamSynchronize(s1);
  const double realMs = millisecondsSince(start2);
  e = takeError();
  report(realMs >= 150.0 && e.empty(), "current stream: none set -> real sync",
         "sync returned after %.1f ms (>= 150) %s", realMs, e.c_str());

  // Attention with a null stream queues on the current stream: q only gets
  // its values from a copy queued on s1 after a 200 ms spin. Launched on the
  // legacy stream instead (which does not wait for the non-blocking s1), it
  // would read the zeros that q holds before.
  {
    const Case c{{2, 8, 2, 4, 1000, 128, 128},
                 UNISPARSE_DTYPE_BF16,
                 true,
                 LayoutKind::Sparse,
                 4242};
    HostProblem p = buildProblem(c);
    if (runCpu(c, p) != UNISPARSE_STATUS_SUCCESS)
      report(false, "current stream: CPU reference", "%s", takeError().c_str());
    DeviceTensor qGood(*p.q, s1, true), k(*p.k, s1, true), v(*p.v, s1, true);
    DeviceTensor q(*p.q, s1, false);
    mgpuMemset32(q.buffer.ptr, 0, int64_t(q.buffer.bytes / 4), s1);
    DeviceTensor counts(*p.gpuCounts, s1, true),
        indices(*p.gpuIndices, s1, true);
    DeviceTensor o(*p.gpuO, s1, false), lse(*p.gpuLse, s1, false);
    o.poison(s1);
    lse.poison(s1);
    mgpuStreamSynchronize(s1);
    unisparse_rt_set_current_stream(s1);
    mgpuLaunchKernel(spin, 1, 1, 1, 32, 1, 1, 0, s1, params, nullptr, 2);
    mgpuMemcpy(q.buffer.ptr, qGood.buffer.ptr, int64_t(q.buffer.bytes), s1);
    const unisparse_attention_params_t ap{c.s.S, 1, 0.0f};
    const unisparse_status_t status = unisparse_rt_block_sparse_attention(
        &q.t, &k.t, &v.t, &counts.t, &indices.t, &o.t, &lse.t, &ap,
        /*stream=*/nullptr);
    unisparse_rt_set_current_stream(nullptr);
    o.download(*p.gpuO, s1);
    lse.download(*p.gpuLse, s1);
    e = takeError();
    const Comparison r = compare(p);
    report(status == UNISPARSE_STATUS_SUCCESS && e.empty() && r.nanO == 0 &&
               r.relL2 < 2e-2 && r.maxLseDiff < 1e-2,
           "current stream: attention with a null stream queues on it",
           "relL2 %.2e, max|dLSE| %.2e %s", r.relL2, r.maxLseDiff, e.c_str());
  }
  mgpuStreamSynchronize(s1);
  mgpuModuleUnload(module);
  takeError();
}

/// Compiled host code run with a current stream, captured into a CUDA
/// graph: stream creation, a stream-ordered temporary, a copy, the
/// attention shim, free, sync and destroy; then the graph is replayed twice
/// and checked each time.
bool graphCapture(std::string &err) {
  const Case c{{2, 8, 2, 4, 1000, 64, 128},
               UNISPARSE_DTYPE_F16,
               true,
               LayoutKind::Sparse,
               777};
  HostProblem p = buildProblem(c);
  if (runCpu(c, p) != UNISPARSE_STATUS_SUCCESS) {
    err = "CPU reference: " + takeError();
    return false;
  }
  const Stream s;
  DeviceTensor q(*p.q, s, true), k(*p.k, s, true), v(*p.v, s, true);
  DeviceTensor counts(*p.gpuCounts, s, true), indices(*p.gpuIndices, s, true);
  DeviceTensor o(*p.gpuO, s, false), lse(*p.gpuLse, s, false);
  // Warm-up outside capture (loads the kernels into the context).
  {
    const unisparse_attention_params_t ap{c.s.S, 1, 0.0f};
    if (unisparse_rt_block_sparse_attention(&q.t, &k.t, &v.t, &counts.t,
                                            &indices.t, &o.t, &lse.t, &ap,
                                            s) != UNISPARSE_STATUS_SUCCESS) {
      err = "warm-up: " + takeError();
      return false;
    }
    mgpuStreamSynchronize(s);
  }
  auto mk = memrefOf<unisparse_memref_4d_u16, uint16_t>(k);
  auto mv = memrefOf<unisparse_memref_4d_u16, uint16_t>(v);
  auto mo = memrefOf<unisparse_memref_4d_u16, uint16_t>(o);
  auto mc = memrefOf<unisparse_memref_3d_i32, int32_t>(counts);
  auto mi = memrefOf<unisparse_memref_4d_i32, int32_t>(indices);
  auto ml = memrefOf<unisparse_memref_3d_f32, float>(lse);

  unisparse_rt_set_current_stream(s);
  TEST_CU(cuStreamBeginCapture(static_cast<CUstream>(s.s),
                               CU_STREAM_CAPTURE_MODE_GLOBAL),
          err);
  // What compiled code does, in order.
  void *st = mgpuStreamCreate();
  void *tmp = mgpuMemAlloc(int64_t(q.buffer.bytes), st, 0);
  mgpuMemcpy(tmp, q.buffer.ptr, int64_t(q.buffer.bytes), st);
  unisparse_memref_4d_u16 mq = memrefOf<unisparse_memref_4d_u16, uint16_t>(q);
  mq.allocated = mq.aligned = static_cast<uint16_t *>(tmp);
  const int32_t status =
      _mlir_ciface_unisparse_rt_block_sparse_attention_cuda_f16(
          &mq, &mk, &mv, &mc, &mi, &mo, &ml, c.s.S, 1, 0.0f);
  mgpuMemFree(tmp, st);
  mgpuStreamSynchronize(st);
  mgpuStreamDestroy(st);
  CUgraph graph = nullptr;
  const CUresult endResult =
      cuStreamEndCapture(static_cast<CUstream>(s.s), &graph);
  unisparse_rt_set_current_stream(nullptr);
  if (st != s || status != UNISPARSE_STATUS_SUCCESS) {
    err = "during capture: stream " + std::string(st == s ? "ok" : "differs") +
          ", " + takeError();
    return false;
  }
  if (std::string e = takeError(); !e.empty()) {
    err = "during capture: " + e;
    return false;
  }
  TEST_CU(endResult, err);
  CUgraphExec exec = nullptr;
  TEST_CU(cuGraphInstantiate(&exec, graph, 0), err);
  for (int replay = 0; replay < 2; ++replay) {
    o.poison(s);
    lse.poison(s);
    TEST_CU(cuGraphLaunch(exec, static_cast<CUstream>(s.s)), err);
    o.download(*p.gpuO, s);
    lse.download(*p.gpuLse, s);
    const Comparison r = compare(p);
    if (r.nanO || r.nanLse || r.infMismatch || r.relL2 >= 5e-3 ||
        r.maxLseDiff >= 1e-2) {
      err = "replay " + std::to_string(replay) + ": relL2 " +
            std::to_string(r.relL2) + ", NaN " + std::to_string(r.nanO);
      return false;
    }
  }
  TEST_CU(cuGraphExecDestroy(exec), err);
  TEST_CU(cuGraphDestroy(graph), err);
  mgpuStreamSynchronize(s);
  if (std::string e = takeError(); !e.empty()) {
    err = "after replays: " + e;
    return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Bad arguments on CUDA tensors.
//===----------------------------------------------------------------------===//

void badArgumentTests() {
  if (!selected("bad argument"))
    return;
  // A valid small problem: B 1, Hq 2, Hkv 1, Hg 1, N 128, D 64, S 64.
  const Case c{{1, 2, 1, 1, 128, 64, 64},
               UNISPARSE_DTYPE_BF16,
               true,
               LayoutKind::Dense,
               99};
  HostProblem p = buildProblem(c);
  const Stream s;
  DeviceTensor q(*p.q, s, true), k(*p.k, s, true), v(*p.v, s, true);
  DeviceTensor counts(*p.gpuCounts, s, true), indices(*p.gpuIndices, s, true);
  DeviceTensor o(*p.gpuO, s, false), lse(*p.gpuLse, s, false);
  o.poison(s);
  lse.poison(s);
  mgpuStreamSynchronize(s);
  std::vector<char> hostBuffer(q.buffer.bytes);

  struct Args {
    unisparse_tensor_t q, k, v, counts, indices, o, lse;
    unisparse_attention_params_t params;
  };
  const Args valid{q.t,       k.t, v.t,   counts.t,
                   indices.t, o.t, lse.t, {c.s.S, 1, 0.0f}};
  auto expectError = [&](const char *what, unisparse_status_t expected,
                         const char *substring, auto mutate) {
    Args a = valid;
    mutate(a);
    unisparse_rt_clear_error();
    const unisparse_status_t status = unisparse_rt_block_sparse_attention(
        &a.q, &a.k, &a.v, &a.counts, &a.indices, &a.o, &a.lse, &a.params, s);
    const std::string message = unisparse_rt_last_error_message();
    const bool ok = status == expected &&
                    unisparse_rt_last_error() == expected &&
                    message.find(substring) != std::string::npos;
    unisparse_rt_clear_error();
    report(ok, std::string("bad argument: ") + what, "%s: %s",
           unisparse_rt_status_string(status), message.c_str());
  };
  expectError("head dim 96", UNISPARSE_STATUS_NOT_SUPPORTED,
              "head dims 64 and 128", [](Args &a) {
                // A consistent D = 96 problem (contiguous strides), so that
                // only the head dim is unsupported.
                for (unisparse_tensor_t *t : {&a.q, &a.k, &a.v, &a.o}) {
                  t->sizes[3] = 96;
                  t->strides[2] = 96;
                  t->strides[1] = t->sizes[2] * 96;
                  t->strides[0] = t->sizes[1] * t->strides[1];
                }
              });
  expectError("f32 on cuda", UNISPARSE_STATUS_NOT_SUPPORTED, "f16 and bf16",
              [](Args &a) {
                for (unisparse_tensor_t *t : {&a.q, &a.k, &a.v, &a.o})
                  t->dtype = UNISPARSE_DTYPE_F32;
              });
  expectError("block size 32", UNISPARSE_STATUS_NOT_SUPPORTED,
              "block sizes 64 and 128", [](Args &a) {
                a.params.block_size = 32;
                a.counts.sizes[2] = a.indices.sizes[2] = 4;
              });
  expectError("mixed devices", UNISPARSE_STATUS_DEVICE_MISMATCH,
              "k: device = cpu",
              [](Args &a) { a.k.device = UNISPARSE_DEVICE_CPU; });
  expectError("innermost stride 2", UNISPARSE_STATUS_INVALID_STRIDE,
              "strides[3] (D) = 2", [](Args &a) { a.v.strides[3] = 2; });
  expectError("host pointer as cuda", UNISPARSE_STATUS_DEVICE_MISMATCH,
              "not memory the CUDA driver knows",
              [&](Args &a) { a.q.data = hostBuffer.data(); });
  // Hq = 2: a huge head stride makes q reach 16 GiB past its data.
  expectError("extent past the allocation", UNISPARSE_STATUS_INVALID_ARGUMENT,
              "q: the tensor spans",
              [](Args &a) { a.q.strides[1] = int64_t(1) << 33; });
  expectError("null layout data", UNISPARSE_STATUS_NULL_POINTER,
              "indices: data is null",
              [](Args &a) { a.indices.data = nullptr; });
  // The sm_90a kernel forced on a problem it does not take (S = 64).
  unisparse_rt_set_cuda_attention_kernel(UNISPARSE_CUDA_KERNEL_SM90);
  expectError("sm90 forced on block size 64", UNISPARSE_STATUS_NOT_SUPPORTED,
              "the sm_90a attention kernel was forced", [](Args &) {});
  unisparse_rt_set_cuda_attention_kernel(UNISPARSE_CUDA_KERNEL_AUTO);
  {
    unisparse_rt_clear_error();
    const unisparse_status_t st = unisparse_rt_set_cuda_attention_kernel(7);
    const bool ok =
        st == UNISPARSE_STATUS_INVALID_ARGUMENT &&
        unisparse_rt_get_cuda_attention_kernel() == UNISPARSE_CUDA_KERNEL_AUTO;
    report(ok, "bad argument: kernel choice 7", "%s: %s",
           unisparse_rt_status_string(st), unisparse_rt_last_error_message());
    unisparse_rt_clear_error();
  }
  // Nothing may have been written by the failing calls.
  mgpuStreamSynchronize(s);
  o.download(*p.gpuO, s);
  lse.download(*p.gpuLse, s);
  int64_t written = 0;
  forEachIndex(p.gpuO->t, [&](const int64_t *idx) {
    written += !std::isnan(valueAt(p.gpuO->t, idx));
  });
  forEachIndex(p.gpuLse->t, [&](const int64_t *idx) {
    written += !std::isnan(valueAt(p.gpuLse->t, idx));
  });
  report(written == 0, "bad argument: outputs untouched",
         "%" PRId64 " elements written", written);
  takeError();
}

} // namespace

int main(int argc, char **argv) {
  nameFilter = argc > 1 ? argv[1] : nullptr;
  if (!unisparse_rt_has_cuda()) {
    std::printf("the runtime was built without CUDA\n0 passed, 1 failed\n");
    return 1;
  }
  // Device information (the runtime creates the context lazily; the test's
  // own driver calls below happen after it did).
  void *probe = mgpuStreamCreate();
  if (!probe) {
    std::printf("no usable CUDA device: %s\n0 passed, 1 failed\n",
                takeError().c_str());
    return 1;
  }
  mgpuStreamDestroy(probe);
  CUdevice device = 0;
  char deviceName[256] = "?";
  int major = 0, minor = 0, driver = 0;
  cuCtxGetDevice(&device);
  cuDeviceGetName(deviceName, sizeof(deviceName), device);
  cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                       device);
  cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                       device);
  cuDriverGetVersion(&driver);
  std::printf("device %d: %s, sm_%d%d, driver API %d\n", int(device),
              deviceName, major, minor, driver);

  mgpuTests();
  currentStreamTests();
  if (selected("graph capture")) {
    std::string err;
    const bool ok = graphCapture(err);
    unisparse_rt_set_current_stream(nullptr);
    report(ok, "graph capture of compiled-code calls on the current stream",
           "%s", err.c_str());
  }
  badArgumentTests();
  // A runtime built without sm_90a kernels serves an H100/H200 with
  // mma.sync, in AUTO too; a forced sm_90a call then fails (checked below).
  deviceIsSm90 = major == 9 && minor == 0 && UNISPARSE_RT_TEST_HAVE_SM90;
  if (major == 9 && minor == 0 && !UNISPARSE_RT_TEST_HAVE_SM90)
    std::printf("note: the runtime was built without sm_90a kernels\n");
  // Every case on the mma.sync kernel, then on the sm_90a kernel (the cases
  // it takes; on a compute capability 9.0 device), then under automatic
  // dispatch (checks that each case lands on the kernel it should).
  kernelMode = UNISPARSE_CUDA_KERNEL_MMA_SYNC;
  attentionCases();
  if (deviceIsSm90) {
    kernelMode = UNISPARSE_CUDA_KERNEL_SM90;
    attentionCases();
  } else {
    std::printf("note: sm_%d%d device: the sm_90a kernel is not tested\n",
                major, minor);
  }
  kernelMode = UNISPARSE_CUDA_KERNEL_AUTO;
  attentionCases();
  unisparse_rt_set_cuda_attention_kernel(UNISPARSE_CUDA_KERNEL_AUTO);

  std::printf("%d passed, %d failed\n", numPassed, numFailed);
  return numFailed == 0 ? 0 : 1;
}
