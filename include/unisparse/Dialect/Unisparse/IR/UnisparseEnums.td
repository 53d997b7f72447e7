//===- UnisparseEnums.td - unisparse enums ----------------*- tablegen -*-===//
//
// The estimator family (docs/Fidelity.md, "Estimators"): how composites are
// formed, how a composite pair gets its logit, and how the query composites
// of a block combine into its score.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEENUMS_TD
#define UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEENUMS_TD

include "mlir/IR/EnumAttr.td"

def Unisparse_Estimator : I32EnumAttr<"Estimator",
    "how block_score gives a (query composite, key composite) pair its logit", [
      I32EnumAttrCase<"mean", 0>,
      I32EnumAttrCase<"antidiag", 1>,
      I32EnumAttrCase<"antidiag_lse", 2>,
      I32EnumAttrCase<"outlier", 3>]> {
  let cppNamespace = "::mlir::unisparse";
  let genSpecializedAttr = 0;
}

def Unisparse_QueryReduce : I32EnumAttr<"QueryReduce",
    "how the query composites of a block combine into its score", [
      I32EnumAttrCase<"sum", 0>,
      I32EnumAttrCase<"max", 1>]> {
  let cppNamespace = "::mlir::unisparse";
  let genSpecializedAttr = 0;
}

def Unisparse_Pooling : I32EnumAttr<"Pooling",
    "how compress forms a composite from its tokens", [
      I32EnumAttrCase<"mean", 0>,
      I32EnumAttrCase<"concat", 1>,
      I32EnumAttrCase<"concat_reversed", 2>,
      I32EnumAttrCase<"outlier", 3>]> {
  let cppNamespace = "::mlir::unisparse";
  let genSpecializedAttr = 0;
}

def Unisparse_Refine : I32EnumAttr<"Refine",
    "the second level of a two-level estimation, between block_score and "
    "block_select", [
      I32EnumAttrCase<"none", 0>,
      I32EnumAttrCase<"slash", 1>]> {
  let cppNamespace = "::mlir::unisparse";
  let genSpecializedAttr = 0;
}

#endif // UNISPARSE_DIALECT_UNISPARSE_IR_UNISPARSEENUMS_TD
