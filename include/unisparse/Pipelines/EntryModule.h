//===- EntryModule.h - entry points for a configuration ---------*- C++ -*-===//
//
// The host entry points that ahead-of-time compilation exposes for one
// configuration and shape signature (batch and sequence length dynamic):
//
//   @attention(q, k, v, o, lse)            one unisparse.attention
//   @layout(q, k, scores, counts, indices) the estimation stages alone
//   @attention_layout(q, k, v, o, lse, counts, indices)
//                                          both at once: the attention and
//                                          the layout it used (one estimation)
//
// All are destination-passing on memrefs with llvm.emit_c_interface, so a
// host calls `_mlir_ciface_attention(&q, &k, &v, &o, &lse)` with MLIR memref
// descriptors (host pointers on the CPU target, device pointers on CUDA).
//
// On the CPU, @attention's body calls @attention_layout's with counts and
// indices of its own (the buffers the decomposition of unisparse.attention
// allocates), so the library holds the attention's estimation once, not
// twice (most of its code and of its compile time); on CUDA it is one
// unisparse.attention (the GPU pipeline places buffers on the host or the
// device within one function).
//
// Each is a guard around a private body (@attention_impl, @layout_impl):
// it computes the bytes of the buffers the body will allocate for the actual
// batch and sequence length (attentionWorkspaceBytes of ShapeRules.h, for the
// target's lowering) and calls the runtime's unisparse_rt_check_workspace;
// the body runs only if that succeeds, else the call returns with the
// runtime's error (UNISPARSE_STATUS_OUT_OF_MEMORY) recorded.
//
//===----------------------------------------------------------------------===//

#ifndef UNISPARSE_PIPELINES_ENTRYMODULE_H
#define UNISPARSE_PIPELINES_ENTRYMODULE_H

#include "unisparse/Conversion/UnisparseToGPU/UnisparseToGPU.h"
#include "unisparse/Dialect/Unisparse/IR/UnisparseAttrs.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace mlir::unisparse {

/// The pipeline the entry module is compiled with: it decides how the score
/// map is materialised, hence the workspace the guard computes, and which
/// memory bounds it.
enum class EntryTarget { cpu, cuda };

/// A shape signature: heads, head dim and element type ("f32", "f16", "bf16"),
/// and the target with, for CUDA, the scoring kernel's options as the
/// pipeline gets them (a null compositeType: f32 scoring, no tensor-core
/// kernel).
struct EntrySignature {
  int64_t heads = 32;
  int64_t kvHeads = 8;
  int64_t headDim = 128;
  std::string dtype = "bf16";
  EntryTarget target = EntryTarget::cpu;
  ScoreKernelOptions scoring;
};

/// The entry module, built with the ops' builders (the estimation through
/// Stages.h, as the decomposition does), or failure with a message in `error`
/// (bad dtype, heads not divisible, ...).
FailureOr<OwningOpRef<ModuleOp>> buildEntryModule(MLIRContext *ctx,
                                                  ConfigAttr config,
                                                  const EntrySignature &sig,
                                                  std::string &error);

/// Parses `text` as a configuration: either a full `#unisparse.config<...>`
/// attribute or the short form `block=128,c_q=16,tau=0.9` (same fields).
FailureOr<ConfigAttr> parseConfig(MLIRContext *ctx, llvm::StringRef text,
                                  std::string &error);

} // namespace mlir::unisparse

#endif // UNISPARSE_PIPELINES_ENTRYMODULE_H
