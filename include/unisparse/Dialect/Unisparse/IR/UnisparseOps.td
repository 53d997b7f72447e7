//===- UnisparseOps.td - unisparse operations -------------*- tablegen -*-===//
//
// All ops use destination-passing style: the `outs` operands carry the result
// shapes (and, for the memref form of block_sparse_attention, the buffers).
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEOPS_TD
#define UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEOPS_TD

include "unisparse/Dialect/Unisparse/IR/UnisparseBase.td"
include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// attention
//===----------------------------------------------------------------------===//

def Unisparse_AttentionOp : Unisparse_Op<"attention", [
    Pure, DestinationStyleOpInterface,
    AllTypesMatch<["o_init", "o"]>, AllTypesMatch<["lse_init", "lse"]>]> {
  let summary = "UniSparse sparse attention (estimation + block-sparse attention)";
  let description = [{
    The whole UniSparse method on `q: [B, Hq, N, D]`, `k, v: [B, Hkv, N, D]`:
    composite tokens (average pooling over `c_q`/`c_k` tokens and `c_h`
    query heads), block scoring on the compressed attention map, top-p block
    selection per head group and query block, and exact block-sparse
    attention over the selected blocks. Results: `o: [B, Hq, N, D]` (the
    element type of `q`) and the log-sum-exp `lse: [B, Hq, N]` (f32).

    `unisparse-decompose` rewrites it into `unisparse.compress`,
    `unisparse.block_score`, `unisparse.block_select` (or
    `unisparse.dense_layout` when the configuration selects every block) and
    `unisparse.block_sparse_attention`.

    Example:

    ```mlir
    %o, %lse = unisparse.attention {config = #unisparse.config<block = 128, c_q = 16, c_k = 16, tau = 0.9>}
        ins(%q, %k, %v : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16>, tensor<1x8x?x128xbf16>)
        outs(%o0, %l0 : tensor<1x32x?x128xbf16>, tensor<1x32x?xf32>)
        -> tensor<1x32x?x128xbf16>, tensor<1x32x?xf32>
    ```
  }];
  let arguments = (ins Unisparse_ConfigAttr:$config,
                       AnyRankedTensor:$q, AnyRankedTensor:$k, AnyRankedTensor:$v,
                       AnyRankedTensor:$o_init, AnyRankedTensor:$lse_init);
  let results = (outs AnyRankedTensor:$o, AnyRankedTensor:$lse);
  let assemblyFormat = [{
    attr-dict `ins` `(` $q `,` $k `,` $v `:` type($q) `,` type($k) `,` type($v) `)`
    `outs` `(` $o_init `,` $lse_init `:` type($o_init) `,` type($lse_init) `)`
    `->` type($o) `,` type($lse)
  }];
  let extraClassDeclaration = [{
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return ::mlir::MutableOperandRange(getOperation(), /*start=*/3, /*length=*/2);
    }
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// compress
//===----------------------------------------------------------------------===//

def Unisparse_CompressOp : Unisparse_Op<"compress", [
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "Composite tokens: average pooling over tokens and heads";
  let description = [{
    Pools `input: [B, H, N, D]` into composites `result: [B, H * kv_group /
    head_factor, ceil(N / seq_factor), D]` (f32). Each source head is first
    repeated `kv_group` times (the "expanded" heads: expanded head `e` reads
    source head `e / kv_group`; this is how the keys of a GQA model are
    brought to the query heads), then groups of `head_factor` consecutive
    expanded heads and runs of `seq_factor` consecutive tokens are averaged:

    ```
    result[b, g, t, d] = mean over e in [g*hf, (g+1)*hf), n in [t*sf, min((t+1)*sf, N))
                         of input[b, e / kv_group, n, d]
    ```

    A partial last composite is the mean of the tokens it has.
    For queries `kv_group = 1, head_factor = c_h`; for keys
    `kv_group = Hq / Hkv, head_factor = c_h`. The result is f32, or bf16/f16
    (the sums are f32, the mean is rounded once).

    The op has tensor semantics (one result) before bufferization and
    buffer semantics (memref operands, no result) after it;
    `convert-unisparse-to-gpu` lowers the buffer form of mean pooling to a
    GPU kernel.

    With `pooling = concat` (or `concat_reversed`) the tokens of a composite
    are kept side by side instead of averaged (the composites of the
    antidiagonal estimators of `unisparse.block_score`): `result: [B, G,
    ceil(N / seq_factor), seq_factor, D]`, slot `a` of composite `t` holding
    token `t * seq_factor + a` (`concat_reversed`: token
    `t * seq_factor + seq_factor - 1 - a`), heads pooled as above, and the
    slots past the last token zero.

    With `pooling = outlier` (the composites of the `outlier` estimator of
    `unisparse.block_score`) a composite keeps `outliers` (r) of its tokens
    apart and pools the rest: `result: [B, G, ceil(N / seq_factor), r + 1
    (+ 1 with spread), D]`. Heads are pooled as above; then, per head group
    and composite, the outliers are, in this order, `hot` tokens with the
    largest `probe . x` (`probe`: the mean of `queries: [B, G * head_factor,
    Nq, D]` over the group's query heads and all their tokens; the key the
    average query attends to most) and `r - hot` tokens, among the others,
    farthest (squared distance) from the mean of the group's `N` tokens; each
    kind by descending score, ties to the lower token. The rest is the
    composite's other tokens, or all of them when it has none left. Slot 0
    holds the mean of the rest, slots `1 .. r` the outliers (a slot past the
    composite's tokens holds the mean of the rest) and, with `spread`, slot
    `r + 1` the per-coordinate variance of the rest around its mean (all
    in f32, stored as f32 or rounded once to bf16/f16). The NumPy reference is `unisparse.reference.outlier.compress_outlier`.

    Example (keys of a 32/8 GQA model, c_k = 16):

    ```mlir
    %kc = unisparse.compress {seq_factor = 16, head_factor = 1, kv_group = 4}
        ins(%k : tensor<1x8x?x128xbf16>) outs(%kc0 : tensor<1x32x?x128xf32>)
        -> tensor<1x32x?x128xf32>
    ```

    The outlier keys of the same model (c_k = 32, one hot and one far
    token):

    ```mlir
    %ko = unisparse.compress {seq_factor = 32, kv_group = 4,
                              pooling = #unisparse.pooling<outlier>,
                              outliers = 2, hot = 1}
        ins(%k : tensor<1x8x?x128xbf16>) queries(%q : tensor<1x32x?x128xbf16>)
        outs(%ko0 : tensor<1x32x?x3x128xf32>) -> tensor<1x32x?x3x128xf32>
    ```
  }];
  let arguments = (ins AnyShaped:$input, Optional<AnyShaped>:$queries,
                       AnyShaped:$init,
                       I64Attr:$seq_factor,
                       DefaultValuedAttr<I64Attr, "1">:$head_factor,
                       DefaultValuedAttr<I64Attr, "1">:$kv_group,
                       DefaultValuedAttr<Unisparse_PoolingAttr,
                                         "::mlir::unisparse::Pooling::mean">:$pooling,
                       DefaultValuedAttr<I64Attr, "0">:$outliers,
                       DefaultValuedAttr<I64Attr, "0">:$hot,
                       DefaultValuedAttr<BoolAttr, "false">:$spread);
  let results = (outs Optional<AnyRankedTensor>:$result);
  let assemblyFormat = [{
    attr-dict `ins` `(` $input `:` type($input) `)`
    (`queries` `(` $queries^ `:` type($queries) `)`)?
    `outs` `(` $init `:` type($init) `)` (`->` type($result)^)?
  }];
  let extraClassDeclaration = [{
    ::mlir::MutableOperandRange getDpsInitsMutable() { return getInitMutable(); }
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// block_score
//===----------------------------------------------------------------------===//

def Unisparse_BlockScoreOp : Unisparse_Op<"block_score", [
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "Block scores from the compressed attention map";
  let description = [{
    Given query composites `qc: [B, Hg, Tq, D]` and key composites
    `kc: [B, Hg, Tk, D]` (f32), computes the compressed attention map
    `A = softmax_row(qc kcᵀ * scale + mask)` over *all* key composites of a
    row and sums it into the block grid:

    ```
    result[b, g, I, J] = sum of A[b, g, t, u] over t / (block / c_q) == I,
                                                   u / (block / c_k) == J
    ```

    `result: [B, Hg, ceil(Tq / (block / c_q)), ceil(Tk / (block / c_k))]`
    (f32). With `causal`, key composite `u` is visible from query composite
    `t` iff its first token is not after the last token of `t`:
    `u * c_k <= (t + 1) * c_q - 1`. `scale = 0` selects `1/sqrt(D)`.
    The row sums of `result` count the composites of each query block.

    The optional `query_offset` (index, a multiple of `block / c_q`, default
    0) says that `qc` starts at query composite `query_offset` of the
    sequence: the causal mask compares `u` with `t + query_offset`. It is how
    a tile of query blocks is scored on its own (TilingInterface): a tile
    needs the keys up to its last visible one only.

    `estimator` says how a composite pair gets its logit (the softmax, mask
    and block sums are the same for all):

    - `mean` (default): `qc[t] . kc[u] * scale` on mean composites
      (rank 4);
    - `antidiag` (XAttention) and `antidiag_lse`: `qc: [B, Hg, Tq, s, D]`
      and `kc: [B, Hg, Tk, s, D]` from `compress` with `pooling =
      concat_reversed` / `concat` and `s = c_q = c_k`; the per-slot logits
      `x_a = qc[t, a] . kc[u, a] * scale` (one antidiagonal of the `s x s`
      tile of token logits) combine by their mean (`antidiag`) or by
      `log(mean_a exp(x_a))` (`antidiag_lse`, outlier-aware: a line or a
      needle keeps its full logit);
    - `outlier`: `qc: [B, Hg, Tq, rq + 2, D]` and `kc: [B, Hg, Tk, rk + 1,
      D]` from `compress {pooling = outlier}` (queries with `spread`, keys
      without; `1 <= rq < c_q`, `1 <= rk < c_k`, static). Key slot `b`
      stands for `w_b` tokens (`w_0 = c_k - rk`, the rest; 1 for an outlier)
      and query slot `a` for a share `omega_a` of the rows (`(c_q - rq) /
      c_q`, then `1 / c_q` per outlier row). Each query slot `(t, a)` is a
      softmax row over all key slots `(u, b)`: `x = qc[t, a] . kc[u, b] *
      scale + log w_b`, `p = softmax(x)`, then once more with the spread
      correction `y = x + sigma2 * (1 - 2 p) / 2`, `sigma2 = scale^2 *
      v[t, a] * |kc[u, b]|^2`, `v[t, 0]` the mean over `d` of the spread slot
      and `v[t, a >= 1] = 0` (the second-order correction of the mean of the
      rows' softmaxes, exponentiated); `A[t, u] = sum_a omega_a sum_b
      softmax(y)[a, u, b]`. The NumPy reference is
      `unisparse.reference.outlier.block_score`.

    `query_reduce = max` replaces the sum over the query composites of a
    block by their maximum: `result[b, g, I, J] = max_t sum_u A[b, g, t, u]`.

    `kv_group` (default 1) says that `kv_group` consecutive head groups
    share their key composites: `kc` has `Hg / kv_group` heads and head
    group `g` reads `kc[:, g / kv_group]`. With GQA, the keys a head group
    reads are then pooled once per kv head instead of once per head group
    (`compress {kv_group = 1, head_factor = 1}` of the kv heads): the
    estimation's mean-pooling composites are built that way when every head
    group lies within one kv head's queries.

    Composites are f32, or bf16/f16 (both the same type; products are
    accumulated in f32): the GPU pipeline rounds them to 16 bits for its
    tensor cores (`unisparse-narrow-composites`).

    The op has tensor semantics (one result, the type of `init`) before
    bufferization and buffer semantics (memref operands, no result) after
    it; `convert-unisparse-to-gpu` lowers the buffer form to a GPU kernel.

    Example:

    ```mlir
    %s = unisparse.block_score {block = 128, c_q = 16, c_k = 16, causal = true}
        ins(%qc, %kc : tensor<1x32x?x128xf32>, tensor<1x32x?x128xf32>)
        outs(%s0 : tensor<1x32x?x?xf32>) -> tensor<1x32x?x?xf32>
    ```
  }];
  let arguments = (ins AnyShaped:$qc, AnyShaped:$kc,
                       AnyShaped:$init, Optional<Index>:$query_offset,
                       I64Attr:$block, I64Attr:$c_q, I64Attr:$c_k,
                       DefaultValuedAttr<BoolAttr, "true">:$causal,
                       DefaultValuedAttr<F64Attr, "0.0">:$scale,
                       DefaultValuedAttr<Unisparse_EstimatorAttr,
                                         "::mlir::unisparse::Estimator::mean">:$estimator,
                       DefaultValuedAttr<Unisparse_QueryReduceAttr,
                                         "::mlir::unisparse::QueryReduce::sum">:$query_reduce,
                       DefaultValuedAttr<I64Attr, "1">:$kv_group);
  let results = (outs Optional<AnyRankedTensor>:$result);
  let assemblyFormat = [{
    attr-dict `ins` `(` $qc `,` $kc `:` type($qc) `,` type($kc) `)`
    (`query_offset` `(` $query_offset^ `)`)?
    `outs` `(` $init `:` type($init) `)` (`->` type($result)^)?
  }];
  let extraClassDeclaration = [{
    ::mlir::MutableOperandRange getDpsInitsMutable() { return getInitMutable(); }
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// block_select
//===----------------------------------------------------------------------===//

def Unisparse_BlockSelectOp : Unisparse_Op<"block_select", [
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "Top-p block selection into a block layout";
  let description = [{
    Selects key blocks per `(batch, head group, query block)` row of the
    block scores `scores: [B, Hg, NBq, NBk]`:

    1. visible blocks: `J <= I` when `causal`, else every `J`;
    2. forced blocks (always kept): the sink `J = 0` (when `sink`), the
       diagonal `J = I` and the `local_blocks` blocks before it;
    3. with `tau >= 1` every visible block is kept; otherwise the remaining
       visible blocks are taken by descending score (ties: lower `J` first)
       while the kept mass is below `tau` times the row's total visible mass
       or fewer than `min_blocks` are kept, and never beyond `max_blocks`
       (0 = no cap; forced blocks are kept even past the cap). Masses are
       accumulated in f32: the total in ascending `J`, the kept mass over the
       forced blocks in ascending `J`, then in selection order;
    4. a row whose total is NaN (a NaN/Inf input reached its scores) keeps
       every visible block, past `max_blocks` too, so its attention output is
       the dense one, NaN included; the descending order is total (NaN ranks
       below every number), so no block is taken twice.

    Results: `counts: [B, Hg, NBq]` and `indices: [B, Hg, NBq, NBk]` (i32),
    each row's first `counts` entries ascending, the rest padded with -1.

    The op has tensor semantics (two results, the types of the inits)
    before bufferization and buffer semantics (memref operands, no results)
    after it; `convert-unisparse-to-gpu` lowers the buffer form to a GPU
    kernel.

    Example:

    ```mlir
    %cnt, %idx = unisparse.block_select {tau = 0.9, local_blocks = 1, sink = true}
        ins(%s : tensor<1x32x?x?xf32>)
        outs(%c0, %i0 : tensor<1x32x?xi32>, tensor<1x32x?x?xi32>)
        -> tensor<1x32x?xi32>, tensor<1x32x?x?xi32>
    ```
  }];
  let arguments = (ins AnyShaped:$scores,
                       AnyShaped:$counts_init, AnyShaped:$indices_init,
                       F64Attr:$tau,
                       DefaultValuedAttr<I64Attr, "1">:$local_blocks,
                       DefaultValuedAttr<BoolAttr, "true">:$sink,
                       DefaultValuedAttr<I64Attr, "0">:$min_blocks,
                       DefaultValuedAttr<I64Attr, "0">:$max_blocks,
                       DefaultValuedAttr<BoolAttr, "true">:$causal);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    attr-dict `ins` `(` $scores `:` type($scores) `)`
    `outs` `(` $counts_init `,` $indices_init `:` type($counts_init) `,` type($indices_init) `)`
    (`->` type($results)^)?
  }];
  let extraClassDeclaration = [{
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return ::mlir::MutableOperandRange(getOperation(), /*start=*/1, /*length=*/2);
    }
    /// The results of the tensor form (null in the buffer form).
    ::mlir::Value getCounts() {
      return getResults().empty() ? ::mlir::Value() : getResults()[0];
    }
    ::mlir::Value getIndices() {
      return getResults().empty() ? ::mlir::Value() : getResults()[1];
    }
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

//===----------------------------------------------------------------------===//
// slash_refine
//===----------------------------------------------------------------------===//

def Unisparse_SlashRefineOp : Unisparse_Op<"slash_refine", [
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "Two-level estimation: block scores refined from exact logits";
  let description = [{
    Rescores the first pass's block scores `scores: [B, Hg, NB, NB]` (from
    `unisparse.block_score`, any estimator) from exact logits of
    `q: [B, Hq, N, D]` against `k: [B, Hkv, N, D]` (query head `h` reads kv
    head `h / (Hq / Hkv)`; head group `g` is the `c_h = Hq / Hg` heads
    `g * c_h .. (g + 1) * c_h - 1`; `NB = ceil(N / block)`), so that a
    **slash line** (query `i` reading key `i - o` at a fixed offset `o`),
    which any pooling of consecutive tokens averages away, reaches the
    selection. Causal only: the last queries of the sequence see every key.
    `block_select` then runs on `result: [B, Hg, NB, NB]` (f32). All sums
    are f32. The NumPy reference is `unisparse.reference.twolevel.refine`,
    whose parameter names the attributes carry:

    1. **Last rows.** The `m = min(last_q, N)` last queries `i = N - m ..
       N - 1`: `p_h[i, j] = softmax_j(scale * q[h, i] . k[j])` over `j <=
       i`, and `p[i, j]` their sum over the group's heads divided by `m *
       c_h`. The first evidence is `v0[j] = sum_i p[i, j]` (a vertical
       line) and `s0[d] = sum_i p[i, i - d]` (a slash line); each pair
       `(i, j)` then goes to the vertical evidence where `v0[j] >= s0[i -
       j]` and to the slash evidence `slash[d]` otherwise.
    2. **Offsets.** The `n_offsets` offsets `d > local_blocks * block` with
       the largest `slash[d]`, largest first (ties: the smaller offset); an
       offset whose evidence is not positive is dropped (`-1`).
    3. **Probe rows.** `rows_per_block` rows per query block `I`, `i = I *
       block + (2 t + 1) * block / (2 rows_per_block)` (those `< N`). For
       each and each head of the group, with `x_j = scale * q[h, i] . k[j]`:
       the forced keys `F` (block 0 with `sink`, and blocks `max(0, I -
       local_blocks) .. I`, up to `j <= i`) and the candidate keys `C`, `j =
       i - d + e` for each kept offset `d` and `e` in `-width .. width`,
       `0 <= j <= i`, not in `F`, each key once. `E[I, J] = mean over the
       heads and probe rows of sum_{j in C, j / block = J} exp(x_j) /
       sum_{j in F} exp(x_j)` (0 for a block without a probe row).
    4. **Combination.** With `tot = sum_J scores[I, J]` and `f` the sum
       over the forced blocks (`J = 0` with `sink`, `max(0, I -
       local_blocks) <= J <= I`): `result = max(scores / tot, E * (f /
       tot))`, where a row with `tot = 0` takes `scores` itself for `scores
       / tot`, a NaN `f / tot` counts as 0, and a NaN `scores / tot` stays
       NaN (the selection then keeps every visible block of its row). With
       `refine_norm`, `R = E * (f / tot)` is divided by one plus its row
       sum, `result = max(scores / tot, R / (1 + sum_J R))`: `R` is the
       candidates' mass relative to the forced keys and unbounded where the
       first pass misses mass; normalised it is their share of the forced
       keys, the candidates and the rest (at most 1 a row).

    `scale = 0` selects `1/sqrt(D)`. Inputs bf16, f16 or f32.

    `convert-unisparse-to-linalg` lowers steps 1, 2 and 4 to structured
    linalg (contractions, masked softmax, reductions, arg-max reductions)
    and the data-dependent gather of step 3 to scf loops (the CPU path).
    The op has tensor semantics (one result, the type of the init) before
    bufferization and buffer semantics (memref operands, no result) after
    it; `convert-unisparse-to-gpu` lowers the buffer form (16-bit q and k)
    to six GPU kernels, the last rows and the probe rows on tensor cores.

    Example (GQA 32/8, c_h = 1):

    ```mlir
    %r = unisparse.slash_refine {block = 128, last_q = 16, n_offsets = 16,
                                 rows_per_block = 8, width = 1}
        ins(%q, %k, %s : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16>,
            tensor<1x32x?x?xf32>)
        outs(%r0 : tensor<1x32x?x?xf32>) -> tensor<1x32x?x?xf32>
    ```
  }];
  let arguments = (ins AnyShaped:$q, AnyShaped:$k,
                       AnyShaped:$scores, AnyShaped:$init,
                       I64Attr:$block, I64Attr:$last_q,
                       DefaultValuedAttr<I64Attr, "16">:$n_offsets,
                       DefaultValuedAttr<I64Attr, "8">:$rows_per_block,
                       DefaultValuedAttr<I64Attr, "1">:$width,
                       DefaultValuedAttr<I64Attr, "1">:$local_blocks,
                       DefaultValuedAttr<BoolAttr, "true">:$sink,
                       DefaultValuedAttr<F64Attr, "0.0">:$scale,
                       DefaultValuedAttr<BoolAttr, "false">:$refine_norm);
  let results = (outs Optional<AnyRankedTensor>:$result);
  let assemblyFormat = [{
    attr-dict `ins` `(` $q `,` $k `,` $scores `:` type($q) `,` type($k) `,` type($scores) `)`
    `outs` `(` $init `:` type($init) `)` (`->` type($result)^)?
  }];
  let extraClassDeclaration = [{
    ::mlir::MutableOperandRange getDpsInitsMutable() { return getInitMutable(); }
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// dense_layout
//===----------------------------------------------------------------------===//

def Unisparse_DenseLayoutOp : Unisparse_Op<"dense_layout", [
    Pure, DestinationStyleOpInterface,
    AllTypesMatch<["counts_init", "counts"]>,
    AllTypesMatch<["indices_init", "indices"]>]> {
  let summary = "The layout that keeps every visible block";
  let description = [{
    Writes the dense block layout into `counts: [B, Hg, NBq]` and
    `indices: [B, Hg, NBq, NBk]`: row `I` keeps key blocks `0 .. I` when
    `causal` (count `min(I + 1, NBk)`), else `0 .. NBk - 1`; the rest is -1.
    It is what `unisparse.block_select` produces for `tau = 1`, without
    looking at any score, so estimation disappears.

    Example:

    ```mlir
    %cnt, %idx = unisparse.dense_layout {causal = true}
        outs(%c0, %i0 : tensor<1x32x?xi32>, tensor<1x32x?x?xi32>)
        -> tensor<1x32x?xi32>, tensor<1x32x?x?xi32>
    ```
  }];
  let arguments = (ins AnyRankedTensor:$counts_init, AnyRankedTensor:$indices_init,
                       DefaultValuedAttr<BoolAttr, "true">:$causal);
  let results = (outs AnyRankedTensor:$counts, AnyRankedTensor:$indices);
  let assemblyFormat = [{
    attr-dict `outs` `(` $counts_init `,` $indices_init `:` type($counts_init) `,` type($indices_init) `)`
    `->` type($counts) `,` type($indices)
  }];
  let extraClassDeclaration = [{
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return ::mlir::MutableOperandRange(getOperation(), /*start=*/0, /*length=*/2);
    }
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// block_sparse_attention
//===----------------------------------------------------------------------===//

def Unisparse_BlockSparseAttentionOp : Unisparse_Op<"block_sparse_attention", [
    DestinationStyleOpInterface,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>]> {
  let summary = "Exact attention over the blocks of a block layout";
  let description = [{
    Exact softmax attention of every query over the keys of its selected key
    blocks: query `i` of query block `I`, head `h` (head group
    `h / (Hq / Hg)`, kv head `h / (Hq / Hkv)`) attends to the keys of blocks
    `indices[b, g, I, 0 .. counts[b, g, I])`, with key `j` masked when
    `causal` and `j > i`. Results: `o: [B, Hq, N, D]` (the element type of
    `q`) and `lse: [B, Hq, N]` (f32, natural log; -inf for a row that sees no
    key, whose `o` is 0).

    The op has tensor semantics (two results) before bufferization and
    buffer semantics (memref operands, no results) after it;
    `convert-unisparse-to-runtime` turns the buffer form into a call of the
    runtime's `unisparse_rt_block_sparse_attention_<dtype>`.

    Example:

    ```mlir
    %o, %lse = unisparse.block_sparse_attention {block = 128, causal = true}
        ins(%q, %k, %v, %cnt, %idx : tensor<1x32x?x128xbf16>, tensor<1x8x?x128xbf16>,
            tensor<1x8x?x128xbf16>, tensor<1x32x?xi32>, tensor<1x32x?x?xi32>)
        outs(%o0, %l0 : tensor<1x32x?x128xbf16>, tensor<1x32x?xf32>)
        -> tensor<1x32x?x128xbf16>, tensor<1x32x?xf32>
    ```
  }];
  let arguments = (ins AnyShaped:$q, AnyShaped:$k, AnyShaped:$v,
                       AnyShaped:$counts, AnyShaped:$indices,
                       AnyShaped:$o_init, AnyShaped:$lse_init,
                       I64Attr:$block,
                       DefaultValuedAttr<BoolAttr, "true">:$causal,
                       DefaultValuedAttr<F64Attr, "0.0">:$scale);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    attr-dict `ins` `(` $q `,` $k `,` $v `,` $counts `,` $indices `:`
      type($q) `,` type($k) `,` type($v) `,` type($counts) `,` type($indices) `)`
    `outs` `(` $o_init `,` $lse_init `:` type($o_init) `,` type($lse_init) `)`
    (`->` type($results)^)?
  }];
  let extraClassDeclaration = [{
    ::mlir::MutableOperandRange getDpsInitsMutable() {
      return ::mlir::MutableOperandRange(getOperation(), /*start=*/5, /*length=*/2);
    }
  }];
  let hasVerifier = 1;
}

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEOPS_TD
