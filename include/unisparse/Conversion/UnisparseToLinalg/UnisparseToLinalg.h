//===- UnisparseToLinalg.h - estimation stages to linalg --------*- C++ -*-===//

#ifndef UNISPARSE_CONVERSION_UNISPARSETOLINALG_UNISPARSETOLINALG_H
#define UNISPARSE_CONVERSION_UNISPARSETOLINALG_UNISPARSETOLINALG_H

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace mlir::unisparse {

#define GEN_PASS_DECL_CONVERTUNISPARSETOLINALGPASS
#include "unisparse/Conversion/Passes.h.inc"

/// compress -> reductions over expand_shape views + linalg.generic (mean,
/// concat); includes the outlier pooling's patterns (`hostLoops`: theirs).
void populateCompressToLinalgPatterns(RewritePatternSet &patterns,
                                      bool hostLoops = true);
/// compress {pooling = outlier} -> center, scores, per-composite argmax
/// reductions, masked means. `hostLoops`: the sums over a composite's slots
/// with the slot loop outside the coordinates (for the host's vectorizer);
/// false: the slot loop innermost (the GPU pipeline's loops).
void populateOutlierCompressToLinalgPatterns(RewritePatternSet &patterns,
                                             bool hostLoops = true);
/// block_score -> contraction, masked softmax reductions, block sums;
/// includes the outlier estimator's patterns.
void populateBlockScoreToLinalgPatterns(RewritePatternSet &patterns);
/// block_score {estimator = outlier} -> slot contraction, two masked
/// softmaxes with the spread correction, the slot mixture, block sums.
void populateOutlierScoreToLinalgPatterns(RewritePatternSet &patterns);
/// block_select -> scf loops.
void populateBlockSelectToLinalgPatterns(RewritePatternSet &patterns);
/// slash_refine -> last-row contraction and softmax, evidence reductions,
/// arg-max offsets, scf loops for the probe rows' gather, the combination.
/// `hostLoops`: the logits' and the evidence's loops with the keys (entries)
/// innermost (over k transposed), for the host's vectorizer; false: the
/// loops the GPU pipeline maps to threads (d, r innermost, k read in place).
void populateSlashRefineToLinalgPatterns(RewritePatternSet &patterns,
                                         bool hostLoops = true);
/// dense_layout -> linalg.generic.
void populateDenseLayoutToLinalgPatterns(RewritePatternSet &patterns);
/// All of the above (`hostLoops`: see populateSlashRefineToLinalgPatterns).
void populateUnisparseToLinalgPatterns(RewritePatternSet &patterns,
                                       bool hostLoops = true);

} // namespace mlir::unisparse

#endif // UNISPARSE_CONVERSION_UNISPARSETOLINALG_UNISPARSETOLINALG_H
