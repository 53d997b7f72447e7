//===- Passes.td - unisparse conversion passes ------------*- tablegen -*-===//

#ifndef UNISPARSE_CONVERSION_PASSES_TD
#define UNISPARSE_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertUnisparseToLinalgPass : Pass<"convert-unisparse-to-linalg"> {
  let summary = "Lower the estimation stages to linalg, tensor, scf, arith and math";
  let description = [{
    Lowers `unisparse.compress`, `unisparse.block_score`,
    `unisparse.block_select` and `unisparse.dense_layout` on tensors:

    - compress: the full composites as a `tensor.expand_shape` view
      `[B, H, T, c, D]` and the partial last composite in place, each summed
      by a reduction `linalg.generic` (head pooling as an expanded head dim
      or a broadcast over GQA replicas), then an elementwise generic that
      divides by the number of real tokens (a partial last composite is the
      mean of the tokens it has);
    - block_score: a contraction `linalg.generic` for the composite logits
      into a map padded to whole blocks, masked row max, `exp(x - m)` and row
      sum generics, and the block sums as a reduction over the expanded view
      `[B, Hg, NBq, rq, NBk, rk]`;
    - block_select: an `scf.forall` over the rows with an `scf.while`
      top-p loop (repeated arg-max, so no sort is materialised);
    - dense_layout: two `linalg.generic` ops on `linalg.index`.

    `unisparse.block_sparse_attention` is left alone (see
    `convert-unisparse-to-runtime`), and with `gpu-kernels` so are
    mean-pooling and concatenating (antidiagonal composites)
    `unisparse.compress`, the outlier ones whose shape the outlier compress
    kernels take (a head dimension D a multiple of 32 up to 256, at most
    128 values c D / 32 of a composite's tokens a lane: c <= 32 at D 128),
    `unisparse.block_select` and the
    `unisparse.block_score` ops with 16-bit composites and (unless
    `gpu-refine-kernels=false`) `unisparse.slash_refine` with 16-bit q and
    k: they are bufferized and lowered by `convert-unisparse-to-gpu`.

    Before:

    ```mlir
    %c = unisparse.compress {seq_factor = 16 : i64} ins(%q : tensor<1x4x?x32xf32>)
        outs(%e : tensor<1x4x?x32xf32>) -> tensor<1x4x?x32xf32>
    ```

    After (abridged):

    ```mlir
    %x = tensor.extract_slice %q[0, 0, 0, 0] [1, 4, %full, 32] [1, 1, 1, 1]
    %v = tensor.expand_shape %x [[0], [1], [2, 3], [4]] output_shape [1, 4, %t, 16, 32]
    %s = linalg.generic {iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
        ins(%v : tensor<1x4x?x16x32xf32>) outs(%zero : ...) { arith.addf }
    // ... the same for the partial composite, then
    %c = linalg.generic ... { arith.divf }
    ```
  }];
  let options = [
    Option<"gpuKernels", "gpu-kernels", "bool", /*default=*/"false",
           "Leave mean-pooling, concatenating and (where its kernel takes "
           "it) outlier compress, block_select "
           "and the block_score ops with 16-bit composites for "
           "convert-unisparse-to-gpu">,
    Option<"gpuRefineKernels", "gpu-refine-kernels", "bool",
           /*default=*/"true",
           "With gpu-kernels, also leave slash_refine with 16-bit q and k "
           "for convert-unisparse-to-gpu (false: its loop lowering, for "
           "debugging and comparison)">,
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::affine::AffineDialect"];
}

def ConvertUnisparseToRuntimePass
    : Pass<"convert-unisparse-to-runtime", "::mlir::ModuleOp"> {
  let summary = "Lower buffer-form block_sparse_attention to runtime calls";
  let description = [{
    Replaces each `unisparse.block_sparse_attention` in buffer form (after
    bufferization) with a call of the runtime's C ABI,
    `unisparse_rt_block_sparse_attention_<f32|f16|bf16>`, declared in the
    module with `llvm.emit_c_interface`. Operands are cast to fully dynamic
    strided memrefs so one declaration serves every shape. The call returns
    the runtime status, which is also recorded as the thread's sticky error
    (`unisparse_rt_last_error`) for the embedding host to read. Tensor-form
    ops are rejected: bufferize first.

    Before:

    ```mlir
    unisparse.block_sparse_attention {block = 64 : i64}
        ins(%q, %k, %v, %c, %i : memref<1x4x?x32xf32>, ...) outs(%o, %l : ...)
    ```

    After:

    ```mlir
    %q2 = memref.cast %q : memref<1x4x?x32xf32> to memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>
    ...
    %st = func.call @unisparse_rt_block_sparse_attention_f32(%q2, %k2, %v2, %c2, %i2, %o2, %l2, %block, %causal, %scale)
        : (...) -> i32
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "Runtime backend called: 'cpu' (host memrefs) or 'cuda' (device "
           "memrefs, unisparse_rt_block_sparse_attention_cuda_<dtype>, "
           "bf16/f16 only)">,
  ];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
}

def UnisparseNarrowCompositesPass : Pass<"unisparse-narrow-composites"> {
  let summary = "Round the composites of tensor-core-scorable block_score ops "
                "to 16 bits";
  let description = [{
    The first step of the GPU estimation, on tensors: for each
    `unisparse.block_score` that the tensor-core scoring kernel of
    `convert-unisparse-to-gpu` accepts with the given tile knobs (mean
    estimator, head dim a multiple of 16 up to 128, `block / c_q` dividing
    the `32 * warps` query composites of a CTA, `block / c_k` dividing
    `key-tile`), the composites become `type`: the `unisparse.compress`
    that made them writes `type` (its sums stay f32; the mean is rounded
    once), or an elementwise truncation when they come from elsewhere.
    Other block_score ops keep f32 composites (and are lowered by
    `convert-unisparse-to-linalg`).

    Before:

    ```mlir
    %kc = unisparse.compress {kv_group = 4 : i64, seq_factor = 8 : i64}
        ins(%k : tensor<1x8x?x128xbf16>) outs(%e : tensor<1x32x?x128xf32>) -> tensor<1x32x?x128xf32>
    %s = unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
        ins(%qc, %kc : tensor<1x32x?x128xf32>, tensor<1x32x?x128xf32>) outs(...) -> ...
    ```

    After:

    ```mlir
    %kc = unisparse.compress {kv_group = 4 : i64, seq_factor = 8 : i64}
        ins(%k : tensor<1x8x?x128xbf16>) outs(%e16 : tensor<1x32x?x128xbf16>) -> tensor<1x32x?x128xbf16>
    %s = unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
        ins(%qc, %kc : tensor<1x32x?x128xbf16>, tensor<1x32x?x128xbf16>) outs(...) -> ...
    ```
  }];
  let options = [
    Option<"type", "type", "std::string", /*default=*/"\"bf16\"",
           "The 16-bit composite type: bf16 or f16">,
    Option<"warps", "warps", "int64_t", /*default=*/"4",
           "Warps per CTA of the scoring kernel (as convert-unisparse-to-gpu)">,
    Option<"warpRows", "warp-rows", "int64_t", /*default=*/"32",
           "Query composites per warp of the scoring kernel (as "
           "convert-unisparse-to-gpu)">,
    Option<"keyTile", "key-tile", "int64_t", /*default=*/"64",
           "Key composites per tile of the scoring kernel (as "
           "convert-unisparse-to-gpu)">,
    Option<"outlierKeyTile", "outlier-key-tile", "int64_t", /*default=*/"32",
           "Key composites per tile of the outlier scoring kernel (as "
           "convert-unisparse-to-gpu)">,
  ];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def ConvertUnisparseToGPUPass
    : Pass<"convert-unisparse-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Lower the buffer-form estimation stages to GPU kernels";
  let description = [{
    The GPU estimation, after bufferization: each op becomes one or two
    `gpu.launch` ops whose bodies this pass builds op by op from the op's
    attributes and shapes (gpu, nvgpu, nvvm, scf, arith, math, memref and
    vector ops; no linalg, no text), plus the scratch buffers they need.

    - `unisparse.block_score` with 16-bit composites (see
      `unisparse-narrow-composites`): a persistent tensor-core kernel. CTA
      c takes tiles c, c + grid, ... of `warp-rows * warps` query
      composites (a static schedule, head-major, the heaviest causal tile
      of a head first); each walks the visible key composites in tiles of
      `key-tile`, three stages in workgroup memory filled by
      `nvgpu.device_async_copy` (one barrier per key tile), multiplies them
      on tensor cores (`nvgpu.ldmatrix` + `nvvm.mma.sync` m16n8k16, f32
      accumulation), keeps each row's running max (rounded up to an integer
      in the log2 domain) and the lane's share of its sum in registers
      (the mask only on key tiles some row does not see whole), and writes
      the per-key-block partial sums of `exp2(x - max)` (a reduce-scatter
      over the quad) to its own scratch slot; at the end of the tile it
      rescales them by exact powers of two and sums (or maxes) the query
      composites of each query block into the scores. The `[Tq, Tk]` map
      is never stored; the scratch is `ctas` slots of `warp-rows * warps`
      rows by the key blocks (it grows as N, not N^2). With
      `epilogue=separate` the work is cut into units (causal: the CTA tiles
      p and Q - 1 - p of a head, equal work for every unit; else one tile)
      and the units into chunks of whole waves (a unit per CTA) whose
      scratch fits in `scratch-bytes` (at least one wave; 0: one chunk of
      every unit); per chunk, a host loop launches the scoring kernel
      (a slot per unit; each tile ends after its key loop, storing each
      row's 1 / sum) and then a second, memory-bound kernel with a CTA per
      query block of the chunk's tiles that forms the scores in one pass
      over the stored partial sums. With
      `min-ctas-per-sm`, the kernel carries `nvvm.minctasm` (applied after
      outlining by `unisparse-gpu-kernel-attributes`).
    - `unisparse.block_select`: one warp (a CTA of 32 threads) per
      `(batch, head group, query block)` row: the free visible blocks'
      scores sorted descending (bitonic; rows of up to 1024 keys in
      registers, longer ones in chunks of 1024 merged in workgroup memory;
      NaN last), the total and the kept mass
      summed sequentially in the order of the CPU lowering, the forced
      blocks, `min_blocks`/`max_blocks` and the NaN rule as there, then the
      kept blocks (above the last kept score, and of those equal to it the
      first in ascending index) compacted into ascending indices with
      ballots. The layout equals the CPU path's on the same scores, bit for
      bit.

    - `unisparse.slash_refine` with 16-bit q and k: six launches. The last
      rows' logits on tensor cores (a warp per 16 rows and 256 keys: A
      fragments of q in registers, B fragments of k per n8 tile,
      `nvvm.mma.sync` m16n8k16), stored to a scratch `[B, Hq, last_q, N]`
      with each piece's online (max, sum); the rows' statistics; the
      vertical and the slash evidence (a thread per key, per offset); the
      offsets' top-n in one CTA per head group (per round a block-wide
      arg-max by shuffles, the winner's owner rescans); and a warp per
      query block for the probe rows: the forced keys' log-sum-exp on
      tensor cores, the candidates a lane each (gathered dot products),
      their mass added into the result row in the CPU path's order, then
      the combination in place.

    With `fuse-query-pooling` (the default), a mean-estimator block_score
    whose query composites come from a buffer that a mean `compress` of
    `c_q` tokens writes only for it (nothing between them that may write
    that compress's input) gets a scoring kernel that pools them from the
    raw queries into a workgroup tile itself (16-byte loads, the same f32
    sums, order and rounding as the compress kernel, so the same bits);
    that compress, its buffer and its deallocation are erased. The keys
    stay pooled by the compress kernel. `prefetch-queries` prefetches each
    tile's raw queries into L2 first (sm_90 and later).

    A buffer-form block_score the kernel cannot take is an error (lower it
    with `convert-unisparse-to-linalg` before bufferization). The scoring
    kernel copies composite rows with 16-byte `cp.async`: its composite
    buffers must be 16-byte aligned with contiguous rows, as the buffers
    bufferization allocates for `unisparse.compress` are. The pooling kernel
    checks the alignment of its (user) inputs on the host and uses 16-byte
    loads only when it holds.

    Before:

    ```mlir
    unisparse.block_score {block = 128 : i64, c_q = 16 : i64, c_k = 8 : i64}
        ins(%qc, %kc : memref<1x32x?x128xbf16>, memref<1x32x?x128xbf16>)
        outs(%s : memref<1x32x?x?xf32>)
    ```

    After (abridged):

    ```mlir
    %partials = memref.alloc(%n0) : memref<?xf32>
    gpu.launch blocks(...) in (%gx = %ctas, ...) threads(...) in (%tx = %c128, ...)
        function(@unisparse_block_score_0)
        workgroup(%keys : memref<3x64x136xbf16, #gpu.address_space<workgroup>>, ...) {
      scf.for %tile = %bid to %tiles step %grid {
        scf.for %kt = ... {      // key tiles
          nvgpu.device_async_copy ...
          nvgpu.ldmatrix ... ; nvvm.mma.sync ...
          gpu.shuffle xor ... ; math.exp2 ...
        }
        scf.for ... { memref.store %score, %s[...] }   // the tile's block scores
      }
      gpu.terminator
    }
    memref.dealloc %partials : memref<?xf32>
    ```
  }];
  let options = [
    Option<"warps", "warps", "int64_t", /*default=*/"4",
           "Warps per CTA of the scoring kernel">,
    Option<"warpRows", "warp-rows", "int64_t", /*default=*/"32",
           "Query composites per warp of the scoring kernel: 16 or 32 (one "
           "or two m16 MMA tiles)">,
    Option<"keyTile", "key-tile", "int64_t", /*default=*/"64",
           "Key composites per workgroup-memory tile (a multiple of 16)">,
    Option<"outlierKeyTile", "outlier-key-tile", "int64_t", /*default=*/"32",
           "Key composites per workgroup-memory tile of the outlier "
           "estimator's scoring kernel (a multiple of 16; all key slots)">,
    Option<"outlierExp2Poly", "outlier-exp2-poly", "int64_t", /*default=*/"2",
           "Of each 8 consecutive values of a row in the outlier scoring "
           "kernel's pass 2 (unmasked key tiles), how many take their "
           "exponentials by a degree-3 polynomial on the FMA pipe instead of "
           "ex2.approx on the MUFU (0..8; 0: none)">,
    Option<"outlierTileFactors", "outlier-tile-factors", "bool",
           /*default=*/"true",
           "The outlier scoring kernel's scores by a thread per (query "
           "block, key tile), its rows' scale factors computed once per key "
           "tile (instead of once per key block)">,
    Option<"outlierUnrollSlots", "outlier-unroll-slots", "bool",
           /*default=*/"false",
           "The outlier scoring kernel's loops over the key slots unrolled "
           "(one basic block a key tile: ptxas may overlap a slot's "
           "mma.sync with the previous slot's epilogue; the same bits)">,
    Option<"outlierWgmma", "outlier-wgmma", "bool", /*default=*/"false",
           "The outlier scoring kernel's products on wgmma (sm_90a only; 4 "
           "warps a CTA, head_dim a multiple of 64): both operands from "
           "workgroup memory in the 128-byte swizzle, the next key slot's "
           "products in flight during a slot's epilogue (as fast as "
           "mma.sync on the H100: off by default)">,
    Option<"ctas", "ctas", "int64_t", /*default=*/"264",
           "Persistent CTAs of the scoring kernel (each owns a scratch slot)">,
    Option<"minCtasPerSm", "min-ctas-per-sm", "int64_t", /*default=*/"0",
           "Scoring CTAs that should fit on one SM (nvvm.minctasm, a "
           "register budget for ptxas); 0: none">,
    Option<"epilogue", "epilogue", "std::string", /*default=*/"\"separate\"",
           "Where the scoring kernel's block scores are formed: `fused` (at "
           "the end of each CTA tile, from a scratch slot per CTA) or "
           "`separate` (the default: a second, memory-bound kernel, from "
           "scratch rows for every query composite of a chunk)">,
    Option<"scratchBytes", "scratch-bytes", "int64_t",
           /*default=*/"256 << 20",
           "With `epilogue=separate`: the bytes of scratch of one chunk of "
           "the scoring work (whole waves of units, at least one unit per "
           "CTA); 0: one chunk of every unit (N * NBk floats)">,
    Option<"partials", "partials", "std::string", /*default=*/"\"f16\"",
           "Type of the per-key-block partial sums in the scoring kernel's "
           "scratch: `f16` (the default: half the bytes; 2^-11 relative "
           "rounding of each partial sum) or `f32`">,
    Option<"fuseQueryPooling", "fuse-query-pooling", "bool",
           /*default=*/"true",
           "The scoring kernel of the mean estimator pools its query "
           "composites from the raw queries as it fills its query tile, "
           "where a mean-pooling compress writes them just for it (that "
           "compress and its buffer disappear); false keeps the compress "
           "kernel">,
    Option<"prefetchQueries", "prefetch-queries", "bool", /*default=*/"true",
           "With fuse-query-pooling: prefetch each tile's raw queries into "
           "L2 before pooling them (prefetch.global.L2: sm_90 and later)">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::nvgpu::NVGPUDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
}

#endif // UNISPARSE_CONVERSION_PASSES_TD
