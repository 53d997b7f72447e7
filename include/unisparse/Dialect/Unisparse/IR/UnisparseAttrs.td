//===- UnisparseAttrs.td - unisparse attributes -----------*- tablegen -*-===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEATTRS_TD
#define UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEATTRS_TD

include "unisparse/Dialect/Unisparse/IR/UnisparseBase.td"
include "unisparse/Dialect/Unisparse/IR/UnisparseEnums.td"

// The parameters of #unisparse.config carry no default, parser or printer:
// its hand-written parser and printer (UnisparseAttrs.cpp) hold them, the
// defaults in one place (`ConfigValues`).

// A floating-point parameter, stored as an APFloat (double semantics) so that
// the attribute can be hashed, and compared bit for bit.
class Unisparse_F64Param<string desc> : AttrParameter<"::llvm::APFloat", desc> {
  let comparator = "$_lhs.bitwiseIsEqual($_rhs)";
}

// A parameter of the C++ enum of `info`.
class Unisparse_EnumParam<EnumAttrInfo info, string desc>
    : AttrParameter<info.cppNamespace # "::" # info.className, desc>;

// `#unisparse.estimator<antidiag_lse>` and friends.
class Unisparse_EnumAttr<EnumAttrInfo info, string name>
    : EnumAttr<Unisparse_Dialect, info, name> {
  let assemblyFormat = "`<` $value `>`";
}
def Unisparse_EstimatorAttr : Unisparse_EnumAttr<Unisparse_Estimator, "estimator">;
def Unisparse_QueryReduceAttr : Unisparse_EnumAttr<Unisparse_QueryReduce, "query_reduce">;
def Unisparse_PoolingAttr : Unisparse_EnumAttr<Unisparse_Pooling, "pooling">;
def Unisparse_RefineAttr : Unisparse_EnumAttr<Unisparse_Refine, "refine">;

def Unisparse_ConfigAttr : Unisparse_Attr<"Config", "config"> {
  let summary = "Configuration of a UniSparse attention";
  let description = [{
    All knobs of the method. Every field has a default and may be omitted;
    fields may appear in any order. The defaults are the `peaked`
    configuration (python/unisparse/config.py, `Config()`): outlier
    composites, the max over a block's query composites, `tau = 0.9965`
    and the normalised slash refinement. The refinement follows `causal`:
    an omitted `refine` is `slash` for causal attention and `none`
    otherwise (`slash_refine` needs causal attention), and an omitted
    `refine_norm` is true iff `refine` is `slash`; so
    `#unisparse.config<causal = false>` is the outlier first pass alone.
    Given explicitly, `refine = slash` with `causal = false` or
    `refine_norm = true` with `refine = none` is an error. Mean pooling,
    the default before 2026-12-04, is `estimator = mean, c_k = 8,
    query_reduce = sum, tau = 0.99, refine = none` (the `mean` preset).

    | field | default | meaning |
    |---|---|---|
    | `block` | 128 | square block size S of the attention layout |
    | `c_q` | 16 | query tokens per composite (divides `block`) |
    | `c_k` | 32 | key tokens per composite (divides `block`) |
    | `c_h` | 1 | query heads per head group (divides Hq); one layout per group |
    | `tau` | 0.9965 | top-p threshold on the block-score mass, in (0, 1]; 1 = dense |
    | `local_blocks` | 1 | blocks before the diagonal that are always kept |
    | `sink` | true | always keep key block 0 |
    | `min_blocks` | 0 | keep at least this many blocks per row |
    | `max_blocks` | 0 | keep at most this many blocks per row (0 = no cap; forced blocks are always kept) |
    | `causal` | true | causal attention |
    | `scale` | 0.0 | softmax scale, at most the largest f32; 0 selects 1/sqrt(head_dim) |
    | `estimator` | outlier | composite logit: `mean` pooling, `antidiag` (XAttention: mean of one antidiagonal of a stride × stride tile, stride = c_q = c_k), `antidiag_lse` (the same antidiagonal by log-mean-exp) or `outlier` (composites that keep some tokens apart, spread-corrected softmax; `compress {pooling = outlier}`) |
    | `query_reduce` | max | block score from its query composites: `sum` or `max` |
    | `q_outliers` | 1 | `outlier` estimator: rows of a query composite kept apart (positive; smaller than `c_q` for that estimator) |
    | `k_outliers` | 2 | `outlier` estimator: keys of a key composite kept apart, the first the one the mean query prefers (positive; smaller than `c_k` for that estimator) |
    | `refine` | slash if `causal`, else none | second level of the estimation: `none`, or `slash` (`unisparse.slash_refine` between `block_score` and `block_select`: slash offsets from the `last_q` last queries, exact probe rows; causal only) |
    | `last_q` | 16 | `slash`: last queries whose exact softmax gives the slash evidence (positive, at most 2^20) |
    | `n_offsets` | 16 | `slash`: slash offsets kept (positive, at most 2^20) |
    | `rows_per_block` | 8 | `slash`: probe rows per query block (positive, at most 2^20; at most `block` with `slash`) |
    | `width` | 1 | `slash`: keys on either side of each offset's key (non-negative, at most 2^20) |
    | `refine_norm` | true iff `refine` = `slash` | `slash`: each row of the refinement divided by one plus its sum, `R / (1 + sum_J R)` (the candidates' share of the forced keys, the candidates and the rest); only with `refine` = `slash` |

    Example:

    ```mlir
    #cfg = #unisparse.config<block = 128, c_q = 16, c_k = 16, tau = 0.9>
    ```
  }];
  let parameters = (ins
    AttrParameter<"int64_t", "block size">:$block,
    AttrParameter<"int64_t", "query composite size">:$c_q,
    AttrParameter<"int64_t", "key composite size">:$c_k,
    AttrParameter<"int64_t", "heads per head group">:$c_h,
    Unisparse_F64Param<"top-p threshold">:$tau,
    AttrParameter<"int64_t", "local blocks">:$local_blocks,
    AttrParameter<"bool", "keep the sink block">:$sink,
    AttrParameter<"int64_t", "minimum blocks per row">:$min_blocks,
    AttrParameter<"int64_t", "maximum blocks per row (0: none)">:$max_blocks,
    AttrParameter<"bool", "causal attention">:$causal,
    Unisparse_F64Param<"softmax scale (0: 1/sqrt(D))">:$scale,
    Unisparse_EnumParam<Unisparse_Estimator, "composite estimator">:$estimator,
    Unisparse_EnumParam<Unisparse_QueryReduce, "query composite reduction">:$query_reduce,
    AttrParameter<"int64_t", "outlier rows per query composite">:$q_outliers,
    AttrParameter<"int64_t", "outlier keys per key composite">:$k_outliers,
    Unisparse_EnumParam<Unisparse_Refine, "second level of the estimation">:$refine,
    AttrParameter<"int64_t", "slash refinement: last queries">:$last_q,
    AttrParameter<"int64_t", "slash refinement: offsets kept">:$n_offsets,
    AttrParameter<"int64_t", "slash refinement: probe rows per query block">:$rows_per_block,
    AttrParameter<"int64_t", "slash refinement: keys on either side of an offset">:$width,
    AttrParameter<"bool", "slash refinement: normalised by one plus its row sum">:$refine_norm
  );
  // `<` struct(params) `>`, written by hand (UnisparseAttrs.cpp, one table of
  // the fields and their defaults): the defaults of `refine` and `refine_norm`
  // depend on other fields, which struct(params) cannot say.
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// tau as a double.
    double getTauValue() const { return getTau().convertToDouble(); }
    /// The scale as a double (0 selects 1/sqrt(head_dim)).
    double getScaleValue() const { return getScale().convertToDouble(); }
    /// The refinement of a configuration that does not give `refine`:
    /// slash for causal attention, none otherwise.
    static Refine defaultRefine(bool causal) {
      return causal ? Refine::slash : Refine::none;
    }
    /// `refine_norm` of a configuration that does not give it: true iff the
    /// refinement is slash.
    static bool defaultRefineNorm(Refine refine) {
      return refine == Refine::slash;
    }
  }];
}

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEATTRS_TD
