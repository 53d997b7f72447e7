//===- UnisparseBase.td - unisparse dialect definition ----*- tablegen -*-===//
//
// The `unisparse` dialect and its base op class.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEBASE_TD
#define UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Unisparse_Dialect : Dialect {
  let name = "unisparse";
  let cppNamespace = "::mlir::unisparse";
  let summary = "UniSparse sparse attention: composite tokens, block scoring, "
                "top-p block selection and exact block-sparse attention";
  let description = [{
    The `unisparse` dialect models UniSparse sparse attention ("A Unified
    Sparse Attention via Multi-Granularity Compression", 2025) for
    long-context prefill. `unisparse.attention` is the whole method; it
    decomposes (`unisparse-decompose`) into four destination-passing stages:

    1. `unisparse.compress`: composite tokens by average pooling over
       `seq_factor` tokens and `head_factor` heads;
    2. `unisparse.block_score`: softmax attention among composites, summed
       into the block grid;
    3. `unisparse.block_select`: sink + diagonal + local blocks, then top-p;
    4. `unisparse.block_sparse_attention`: exact attention over the kept
       blocks.

    Layout convention for all tensors: `[batch, heads, sequence, head_dim]`.
    See docs/Rationale.md for the exact semantics of every corner case.
  }];
  let useDefaultAttributePrinterParser = 1;
}

class Unisparse_Op<string mnemonic, list<Trait> traits = []>
    : Op<Unisparse_Dialect, mnemonic, traits>;

class Unisparse_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Unisparse_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEBASE_TD
