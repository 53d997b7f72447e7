//===- Passes.td - unisparse transform passes -------------*- tablegen -*-===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_TRANSFORMS_PASSES_TD
#define UNISPARSE_DIALECT_UNISPARSE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def UnisparseDecompose : Pass<"unisparse-decompose"> {
  let summary = "Decompose unisparse.attention into its four stages";
  let description = [{
    Rewrites every `unisparse.attention` into `unisparse.compress` (queries
    and keys), `unisparse.block_score`, `unisparse.block_select` and
    `unisparse.block_sparse_attention`, creating the destination tensors with
    `tensor.empty`. When the configuration keeps every block (`tau = 1`, or
    `min_blocks` at least the static number of key blocks) the layout is a
    `unisparse.dense_layout` and no estimation is emitted. Head counts must be
    static (the GQA factor becomes the `kv_group` attribute). The rewrite is
    `unisparse.attention`'s `linalg::AggregatedOpInterface`
    (`decomposeOperation`), whose stage builders (`Stages.h`) also build the
    AOT entry module's `@layout`, so upstream decomposition drivers (e.g.
    `transform.structured.decompose_interface`) apply as well.

    Before:

    ```mlir
    %o, %lse = unisparse.attention {config = #unisparse.config<block = 64, c_q = 16, c_k = 16>}
        ins(%q, %k, %v : tensor<1x4x?x32xf32>, tensor<1x2x?x32xf32>, tensor<1x2x?x32xf32>)
        outs(%o0, %l0 : tensor<1x4x?x32xf32>, tensor<1x4x?xf32>) -> tensor<1x4x?x32xf32>, tensor<1x4x?xf32>
    ```

    After:

    ```mlir
    %qc = unisparse.compress {seq_factor = 16 : i64} ins(%q : ...) outs(%e0 : tensor<1x4x?x32xf32>) -> ...
    %kc = unisparse.compress {kv_group = 2 : i64, seq_factor = 16 : i64} ins(%k : ...) outs(%e1 : ...) -> ...
    %s = unisparse.block_score {block = 64 : i64, c_k = 16 : i64, c_q = 16 : i64} ins(%qc, %kc : ...) outs(%e2 : tensor<1x4x?x?xf32>) -> ...
    %cnt, %idx = unisparse.block_select {tau = 9.000000e-01 : f64} ins(%s : ...) outs(%e3, %e4 : ...) -> ...
    %o, %lse = unisparse.block_sparse_attention {block = 64 : i64} ins(%q, %k, %v, %cnt, %idx : ...) outs(%o0, %l0 : ...) -> ...
    ```
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect",
                           "::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect"];
}

def UnisparseGpuMapLoops : Pass<"unisparse-gpu-map-loops"> {
  let summary = "Tile outermost scf.parallel loops for a grid of thread blocks";
  let description = [{
    Tiles every outermost `scf.parallel` (one that is not nested in another
    `scf.parallel` or a `gpu.launch`) so that its innermost dimension is split
    into blocks of `threads` iterations and every other dimension into blocks
    of 1, then attaches the GPU mapping: the outer loop's dimensions are
    collapsed into one linearized dimension, `blockIdx.x` (whose limit,
    2^31 - 1, a long sequence does not reach, where `blockIdx.y/z` stop at
    65535), and the inner loop's one non-unit dimension becomes `threadIdx.x`. The innermost loop dimension is the contiguous one of the
    tensors the estimation kernels write, so consecutive threads touch
    consecutive addresses (coalesced). Out-of-range threads are guarded with
    `scf.if` (no min/max bounds), so the inner loop has a constant trip count.

    Before:

    ```mlir
    scf.parallel (%b, %g, %t, %d) = (%c0, %c0, %c0, %c0) to (%B, %G, %T, %D) step (%c1, %c1, %c1, %c1) { ... }
    ```

    After (abridged):

    ```mlir
    scf.parallel (%i) = (%c0) to (%B * %G * %T * ceildiv(%D, 128)) step (%c1) {
      // %b, %g, %t, %d0 = delinearize %i
      scf.parallel (%d1) = (%c0) to (%c128) step (%c1) {
        scf.if %in_range { ... }
      } {mapping = [#gpu.loop_dim_map<processor = thread_x, ...>]}
    } {mapping = [#gpu.loop_dim_map<processor = block_x, ...>]}
    ```
  }];
  let options = [
    Option<"threads", "threads", "int64_t", /*default=*/"128",
           "Threads per block along the innermost loop dimension">,
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::affine::AffineDialect"];
}

def UnisparseGpuCopyKernels : Pass<"unisparse-gpu-copy-kernels"> {
  let summary = "Turn host-side copies that gpu.memcpy cannot express into "
                "linalg.copy (GPU kernels through the loop path)";
  let description = [{
    `unisparse-gpu-host-buffers` makes a host-side `memref.copy` a
    `gpu.memcpy`, and `gpu-to-llvm` (MLIR 22) lowers that to one flat
    `mgpuMemcpy`: the source's element count, from the source's aligned
    pointer to the target's aligned pointer. It checks only that the
    source has the identity layout: a target with an offset or strides (a
    subview, which bufferization makes of a `tensor.insert_slice` into the
    middle of a buffer) is written at its buffer's first element and
    contiguously, i.e. to the wrong elements, without a diagnostic. This
    pass runs before the loops are mapped and rewrites every host-side
    `memref.copy` whose source or target does not have the identity layout
    into `linalg.copy`, which `convert-linalg-to-parallel-loops` and the
    mapping make a GPU kernel that reads and writes through the strides.
    Copies between identity-layout buffers stay `memref.copy`.

    Before:

    ```mlir
    %col = memref.subview %t[0, 0, %k] [%b, 8, 1] [1, 1, 1]
        : memref<?x8x16xi64> to memref<?x8x1xi64, strided<[128, 16, 1], offset: ?>>
    memref.copy %src, %col : memref<?x8x1xi64> to memref<?x8x1xi64, strided<[128, 16, 1], offset: ?>>
    ```

    After:

    ```mlir
    linalg.copy ins(%src : memref<?x8x1xi64>)
                outs(%col : memref<?x8x1xi64, strided<[128, 16, 1], offset: ?>>)
    ```
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::memref::MemRefDialect"];
}

def UnisparseGpuHostBuffers : Pass<"unisparse-gpu-host-buffers"> {
  let summary = "Place host-side buffers of GPU code in device memory";
  let description = [{
    In code whose loops run as GPU kernels, the buffers that bufferization
    allocates on the host side (outside `gpu.launch`) must live in device
    memory. Rewrites host-side `memref.alloc` to `gpu.alloc`,
    `memref.dealloc` to `gpu.dealloc` and `memref.copy` to `gpu.memcpy`;
    `gpu-async-region` then makes them stream-ordered. A `memref.copy` whose
    source or target does not have the identity layout is an error: its
    `gpu.memcpy` would lower to a flat copy to the wrong elements
    (`unisparse-gpu-copy-kernels` makes such copies kernels first).

    Before:

    ```mlir
    %a = memref.alloc(%n) : memref<?xf32>
    gpu.launch ... { ... %a ... }
    memref.dealloc %a : memref<?xf32>
    ```

    After:

    ```mlir
    %a = gpu.alloc (%n) : memref<?xf32>
    gpu.launch ... { ... %a ... }
    gpu.dealloc %a : memref<?xf32>
    ```
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::memref::MemRefDialect"];
}

def UnisparseGpuKernelAttributes
    : Pass<"unisparse-gpu-kernel-attributes", "::mlir::ModuleOp"> {
  let summary = "Attach the attributes recorded for named kernels to their "
                "outlined gpu.func";
  let description = [{
    Outlining drops the attributes of a `gpu.launch`, so a pass that builds
    a kernel and wants, e.g., `nvvm.minctasm` on it (a register budget for
    ptxas) records it on the enclosing module under
    `unisparse.kernel_attributes`: a dictionary from kernel name to a
    dictionary of attributes. Run after `gpu-kernel-outlining`, this pass
    sets them on the `gpu.func` of that name and removes the record. A
    record naming no outlined kernel is an error.

    Before:

    ```mlir
    module attributes {unisparse.kernel_attributes =
        {unisparse_block_score_0 = {nvvm.minctasm = 3 : i32}}} {
      gpu.module @unisparse_block_score_0_module {
        gpu.func @unisparse_block_score_0() kernel { ... }
      }
    }
    ```

    After:

    ```mlir
    module {
      gpu.module @unisparse_block_score_0_module {
        gpu.func @unisparse_block_score_0() kernel attributes
            {nvvm.minctasm = 3 : i32} { ... }
      }
    }
    ```
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def UnisparseGpuExternSharedMemory : Pass<"unisparse-gpu-extern-shared-memory"> {
  let summary = "Declare each GPU module's dynamic workgroup memory as an "
                "extern array";
  let description = [{
    `gpu.dynamic_shared_memory` lowers (convert-gpu-to-nvvm) to a symbol of a
    zero-sized array in address space 3. In LLVM 22 the symbol it creates
    has internal linkage, and the NVPTX back end "demotes" it into a
    function-scope `.shared .b8 __dynamic_shmem__0;` of one byte: every
    access past it lands on the other workgroup buffers. The lowering reuses
    a suitable existing symbol (zero-sized, address space 3, the same
    alignment), so this pass, run after outlining, adds one with external
    linkage to every `gpu.module` that uses dynamic workgroup memory; NVPTX
    then emits `.extern .shared .align 16 .b8 __unisparse_dynamic_smem[];`.

    Before:

    ```mlir
    gpu.module @m {
      gpu.func @k() kernel {
        %d = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
        ...
    ```

    After:

    ```mlir
    gpu.module @m {
      llvm.mlir.global external @__unisparse_dynamic_smem() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<0 x i8>
      gpu.func @k() kernel {
        %d = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
        ...
    ```
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def UnisparseGpuDedupModules
    : Pass<"unisparse-gpu-dedup-modules", "::mlir::ModuleOp"> {
  let summary = "Keep one gpu.module of each set of identical outlined "
                "kernels";
  let description = [{
    The entry module of ahead-of-time compilation holds the estimation once
    per entry point (`@attention`, `@layout`, `@attention_layout`), so
    outlining gives the same kernel up to three times under names that
    differ only by their suffix; each copy would be translated to PTX,
    assembled by ptxas, embedded in the library and loaded when it is. Run
    after outlining (and after the passes that finish the modules:
    `unisparse-gpu-kernel-attributes`, `unisparse-gpu-extern-shared-memory`),
    this pass compares the top-level `gpu.module`s with their own symbol and
    their functions' symbols set aside (each function named by its position
    in the module; every other operation, attribute and type as printed,
    locations not), keeps the first of each set of equal ones, points every
    reference to a function of a later one (`gpu.launch_func`'s kernel, or
    any other nested symbol reference) at the function in the same position
    of the first, and erases the later ones. Modules that differ in
    anything else, such as the order of a kernel's parameters or an
    attribute, are kept. A module whose function a reference names but that
    it does not hold is left alone (the verifier reports the reference).

    Before:

    ```mlir
    gpu.module @k_0_module { gpu.func @k_0(%a: memref<?xf32>) kernel { ... } }
    gpu.module @k_1_module { gpu.func @k_1(%a: memref<?xf32>) kernel { ... } }
    func.func @f(...) {
      gpu.launch_func @k_0_module::@k_0 ...
      gpu.launch_func @k_1_module::@k_1 ...
    }
    ```

    After:

    ```mlir
    gpu.module @k_0_module { gpu.func @k_0(%a: memref<?xf32>) kernel { ... } }
    func.func @f(...) {
      gpu.launch_func @k_0_module::@k_0 ...
      gpu.launch_func @k_0_module::@k_0 ...
    }
    ```
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def UnisparseGpuModuleToBinary
    : Pass<"unisparse-gpu-module-to-binary", ""> {
  let summary = "gpu-module-to-binary with the modules serialized in "
                "parallel";
  let description = [{
    Upstream's `gpu-module-to-binary` translates, optimizes and assembles the
    top-level `gpu.module`s one after another; the NVPTX back end and ptxas
    take most of a CUDA library's compile time, and the modules are
    independent (one per kernel after `unisparse-gpu-dedup-modules`). This
    pass does the same with each module's serialization (every target
    attribute's `serializeToObject`: the module's translation to LLVM IR,
    the LLVM optimizations, PTX and ptxas) on a thread of the context's pool
    (`failableParallelForEach`, so its diagnostics come out in the modules'
    order; none in parallel where the context's multithreading is off, or
    where a target is not `#nvvm.target`, the one serializer checked for
    it); the
    parent's symbol table is built before, and the objects
    (`createObject`) and the `gpu.binary` ops, each in its module's place,
    after, in the modules' order. The binaries are those of
    `gpu-module-to-binary`, byte for byte. Its options are that pass's;
    `unisparse-to-nvptx` runs it in that pass's place in MLIR's
    `gpu-lower-to-nvvm-pipeline`.
  }];
  let options = [
    Option<"toolkitPath", "toolkit", "std::string", [{""}],
           "Toolkit path.">,
    ListOption<"linkFiles", "l", "std::string",
               "Extra files to link to.">,
    Option<"cmdOptions", "opts", "std::string", [{""}],
           "Command line options to pass to the tools.">,
    Option<"compilationTarget", "format", "std::string", [{"fatbin"}],
           "The target representation of the compilation process (offloading "
           "/ llvm, assembly / isa, binary / bin, fatbinary / fatbin).">,
    Option<"elfSection", "section", "std::string", [{""}],
           "ELF section where binary is to be located.">
  ];
}

def UnisparseApproximateExp : Pass<"unisparse-approximate-exp"> {
  let summary = "Replace f32 math.exp by a vectorizable polynomial approximation";
  let description = [{
    Rewrites every f32 `math.exp` into upstream MLIR's polynomial
    approximation (range reduction to `2^k * exp(r)`, a minimax polynomial,
    exponent bit manipulation): plain `arith` ops, so the host compiler
    vectorizes the loops of the estimation's `exp(x - m)` instead of calling
    libm's `expf` once per element. The result agrees with `expf` to a few
    ulp (an f32 relative error of a few 1e-7), far inside the 1e-4 the
    estimation's scores are tested to, and every element still goes through
    the same operations (ties stay ties). `unisparse-to-cpu` runs it; the GPU
    path keeps `math.exp` (NVVM lowers it to the hardware `ex2`).

    Before:

    ```mlir
    %e = math.exp %x : f32
    ```

    After (abridged):

    ```mlir
    %k = math.floor ...   // x = k * ln2 + r
    %p = math.fma ...     // polynomial in r
    %e = arith.mulf ...   // p * 2^k through the exponent bits
    ```
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::vector::VectorDialect"];
}

def UnisparseTileEstimation : Pass<"unisparse-tile-estimation"> {
  let summary = "Tile unisparse.block_score by query blocks (TilingInterface)";
  let description = [{
    Tiles every `unisparse.block_score` over (batch, head group, query
    block) with tile sizes `(1, 1, query-blocks)` through the upstream
    `scf::tileUsingSCF` driver and the op's TilingInterface, into an
    `scf.forall`. Each tile scores its query composites against only the key
    composites its last query block can see (causal), with `query_offset`
    saying where the tile starts, and is 0 past them. Lowered afterwards, a
    tile's compressed map is `[rq * query-blocks, visible keys]`, small
    enough to stay in cache, and the causal half of the map is never
    computed. `unisparse-to-cpu` runs it.

    Before:

    ```mlir
    %s = unisparse.block_score {block = 64, c_q = 16, c_k = 16}
        ins(%qc, %kc : tensor<1x4x?x32xf32>, tensor<1x4x?x32xf32>)
        outs(%init : tensor<1x4x?x?xf32>) -> tensor<1x4x?x?xf32>
    ```

    After (abridged):

    ```mlir
    %s = scf.forall (%b, %g, %i) in (1, 4, %nbq) shared_outs(%o = %init) -> ... {
      %q = tensor.extract_slice %qc[%b, %g, %i * 4, 0] [1, 1, min(4, Tq - %i * 4), 32] ...
      %k = tensor.extract_slice %kc[%b, %g, 0, 0] [1, 1, min(Tk, (%i + 1) * 4), 32] ...
      %z = linalg.fill ins(%zero : f32) outs(%tile : tensor<1x1x1x?xf32>)
      %t = unisparse.block_score {...} ins(%q, %k : ...) query_offset(%i * 4)
          outs(%corner : tensor<1x1x1x?xf32>) -> ...
      ...
    }
    ```
  }];
  let options = [
    Option<"queryBlocks", "query-blocks", "int64_t", /*default=*/"1",
           "Query blocks per tile">,
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect"];
}

def UnisparseTestTile : Pass<"unisparse-test-tile"> {
  let summary = "Test only: tile the ops named `op` through TilingInterface";
  let description = [{
    Tiles every op named `op` with `tile-sizes` through the upstream
    `scf::tileUsingSCF` driver into an `scf.forall`, so that lit tests can
    show the tiled form of each unisparse op. A size of 0 leaves the loop
    untiled.
  }];
  let options = [
    Option<"opName", "op", "std::string", /*default=*/"\"unisparse.compress\"",
           "Name of the ops to tile">,
    ListOption<"tileSizes", "tile-sizes", "int64_t", "Tile size per loop">,
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect"];
}

def UnisparseCheckAllocations
    : Pass<"unisparse-check-allocations", "::mlir::ModuleOp"> {
  let summary = "Check every host allocation of lowered code; stop cleanly on failure";
  let description = [{
    Runs on the LLVM dialect (after `unisparse-to-cpu` or
    `unisparse-to-nvptx`). In every function that returns nothing (the
    compiled entry points' bodies), host allocations go through the
    runtime's tracked allocator and are checked: a null result frees what
    the call holds and returns, leaving the runtime's error
    (`UNISPARSE_STATUS_OUT_OF_MEMORY`) for the caller to read, instead of
    writing through a null pointer. Device allocations (`mgpuMemAlloc`,
    which records its own error) of a non-zero size are checked the same
    way; device buffers allocated earlier in that call are not freed.
    Functions that return values (their buffers may escape) are left alone.

    Before:

    ```mlir
    llvm.func @body(...) {
      %p = llvm.call @aligned_alloc(%align, %size) : (i64, i64) -> !llvm.ptr
      ...
      llvm.call @free(%p) : (!llvm.ptr) -> ()
      llvm.return
    }
    ```

    After:

    ```mlir
    llvm.func @body(...) {
      %mark = llvm.call @unisparse_rt_alloc_scope_begin() : () -> i64
      %p = llvm.call @unisparse_rt_alloc(%size, %align) : (i64, i64) -> !llvm.ptr
      %null = llvm.icmp "eq" %p, %zero : !llvm.ptr
      llvm.cond_br %null, ^fail, ^next
    ^next:
      ...
      llvm.call @unisparse_rt_free(%p) : (!llvm.ptr) -> ()
      llvm.call @unisparse_rt_alloc_scope_end(%mark) : (i64) -> ()
      llvm.return
    ^fail:
      llvm.call @unisparse_rt_alloc_scope_abort(%mark) : (i64) -> ()
      llvm.return
    }
    ```
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // UNISPARSE_DIALECT_UNISPARSE_TRANSFORMS_PASSES_TD
