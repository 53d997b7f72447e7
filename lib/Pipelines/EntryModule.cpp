//===- EntryModule.cpp - entry points for a configuration -----------------===//

#include "unisparse/Pipelines/EntryModule.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::unisparse;

namespace {
/// "?x<h>x?x<d>x<et>" and friends.
std::string shape(std::initializer_list<std::string> dims,
                  llvm::StringRef et) {
  std::string s;
  for (const std::string &d : dims)
    s += d + "x";
  return s + et.str();
}

std::string boolText(bool b) { return b ? "true" : "false"; }
} // namespace

FailureOr<std::string>
mlir::unisparse::buildEntryModuleSource(ConfigAttr cfg,
                                        const EntrySignature &sig,
                                        std::string &error) {
  if (sig.dtype != "f32" && sig.dtype != "f16" && sig.dtype != "bf16") {
    error = "dtype must be f32, f16 or bf16, got '" + sig.dtype + "'";
    return failure();
  }
  if (sig.heads <= 0 || sig.kvHeads <= 0 || sig.headDim <= 0) {
    error = "heads, kv heads and head dim must be positive";
    return failure();
  }
  if (sig.heads % sig.kvHeads) {
    error = llvm::formatv("query heads ({0}) must be a multiple of kv heads "
                          "({1})",
                          sig.heads, sig.kvHeads);
    return failure();
  }
  if (sig.heads % cfg.getCH()) {
    error = llvm::formatv("query heads ({0}) must be a multiple of c_h ({1})",
                          sig.heads, cfg.getCH());
    return failure();
  }
  std::string hq = std::to_string(sig.heads), hkv = std::to_string(sig.kvHeads),
              hg = std::to_string(sig.heads / cfg.getCH()),
              d = std::to_string(sig.headDim),
              g = std::to_string(sig.heads / sig.kvHeads);
  const std::string &et = sig.dtype;
  std::string q = shape({"?", hq, "?", d}, et), kv = shape({"?", hkv, "?", d}, et),
              lse = shape({"?", hq, "?"}, "f32"),
              qc = isAntidiagonal(cfg.getEstimator())
                       ? shape({"?", hg, "?", std::to_string(cfg.getCQ()), d},
                               "f32")
                       : shape({"?", hg, "?", d}, "f32"),
              sc = shape({"?", hg, "?", "?"}, "f32"),
              cnt = shape({"?", hg, "?"}, "i32"),
              idx = shape({"?", hg, "?", "?"}, "i32");

  std::string cfgText;
  llvm::raw_string_ostream os(cfgText);
  os << cfg;

  auto arg = [](const std::string &name, const std::string &ty,
                bool writable = false) {
    return llvm::formatv("    %{0}_t = bufferization.to_tensor %{0} restrict{2} "
                         ": memref<{1}> to tensor<{1}>\n",
                         name, ty, writable ? " writable" : "")
        .str();
  };
  auto store = [](const std::string &value, const std::string &name,
                  const std::string &ty) {
    return llvm::formatv("    bufferization.materialize_in_destination {0} in "
                         "restrict writable %{1} : (tensor<{2}>, memref<{2}>) "
                         "-> ()\n",
                         value, name, ty)
        .str();
  };

  std::string src;
  src += llvm::formatv("// Entry points for Hq={0}, Hkv={1}, D={2}, {3}.\n",
                       hq, hkv, d, et);
  src += "module {\n";
  // @attention
  src += llvm::formatv("  func.func @attention(%q: memref<{0}>, %k: memref<{1}>, "
                       "%v: memref<{1}>, %o: memref<{0}>, %lse: memref<{2}>) "
                       "attributes {{llvm.emit_c_interface} {{\n",
                       q, kv, lse);
  src += arg("q", q) + arg("k", kv) + arg("v", kv) + arg("o", q, true) +
         arg("lse", lse, true);
  src += llvm::formatv("    %r:2 = unisparse.attention {{config = {0}}\n"
                       "        ins(%q_t, %k_t, %v_t : tensor<{1}>, tensor<{2}>, "
                       "tensor<{2}>)\n"
                       "        outs(%o_t, %lse_t : tensor<{1}>, tensor<{3}>) "
                       "-> tensor<{1}>, tensor<{3}>\n",
                       cfgText, q, kv, lse);
  src += store("%r#0", "o", q) + store("%r#1", "lse", lse) +
         "    return\n  }\n\n";
  // @layout
  src += llvm::formatv(
      "  func.func @layout(%q: memref<{0}>, %k: memref<{1}>, %scores: "
      "memref<{2}>, %counts: memref<{3}>, %indices: memref<{4}>) attributes "
      "{{llvm.emit_c_interface} {{\n",
      q, kv, sc, cnt, idx);
  src += llvm::formatv(
      "    %c0 = arith.constant 0 : index\n"
      "    %c2 = arith.constant 2 : index\n"
      "    %b = memref.dim %q, %c0 : memref<{0}>\n"
      "    %n = memref.dim %q, %c2 : memref<{0}>\n"
      "    %tq = affine.apply affine_map<()[s0] -> (s0 ceildiv {1})>()[%n]\n"
      "    %tk = affine.apply affine_map<()[s0] -> (s0 ceildiv {2})>()[%n]\n",
      q, cfg.getCQ(), cfg.getCK());
  src += arg("q", q) + arg("k", kv) + arg("scores", sc, true) +
         arg("counts", cnt, true) + arg("indices", idx, true);
  // The estimator's attributes, spelled only where they differ from the
  // defaults (mean pooling, sum over query composites).
  bool anti = isAntidiagonal(cfg.getEstimator());
  std::string qPool =
      anti ? ", pooling = #unisparse.pooling<concat_reversed>" : "";
  std::string kPool = anti ? ", pooling = #unisparse.pooling<concat>" : "";
  std::string scoreAttrs;
  if (anti)
    scoreAttrs += (", estimator = #unisparse.estimator<" +
                   stringifyEstimator(cfg.getEstimator()) + ">")
                      .str();
  if (cfg.getQueryReduce() != QueryReduce::sum)
    scoreAttrs += (", query_reduce = #unisparse.query_reduce<" +
                   stringifyQueryReduce(cfg.getQueryReduce()) + ">")
                      .str();
  src += llvm::formatv(
      "    %qc0 = tensor.empty(%b, %tq) : tensor<{0}>\n"
      "    %kc0 = tensor.empty(%b, %tk) : tensor<{0}>\n"
      "    %qc = unisparse.compress {{seq_factor = {1}, head_factor = {2}{7}}\n"
      "        ins(%q_t : tensor<{3}>) outs(%qc0 : tensor<{0}>) -> tensor<{0}>\n"
      "    %kc = unisparse.compress {{seq_factor = {4}, head_factor = {2}, "
      "kv_group = {5}{8}}\n"
      "        ins(%k_t : tensor<{6}>) outs(%kc0 : tensor<{0}>) -> tensor<{0}>\n",
      qc, cfg.getCQ(), cfg.getCH(), q, cfg.getCK(), g, kv, qPool, kPool);
  src += llvm::formatv(
      "    %s = unisparse.block_score {{block = {0}, c_q = {1}, c_k = {2}, "
      "causal = {3}, scale = {4}{7}}\n"
      "        ins(%qc, %kc : tensor<{5}>, tensor<{5}>) outs(%scores_t : "
      "tensor<{6}>) -> tensor<{6}>\n",
      cfg.getBlock(), cfg.getCQ(), cfg.getCK(), boolText(cfg.getCausal()),
      formatShortestDouble(cfg.getScaleValue()), qc, sc, scoreAttrs);
  src += llvm::formatv(
      "    %cnt, %idx = unisparse.block_select {{tau = {0}, local_blocks = {1}, "
      "sink = {2}, min_blocks = {3}, max_blocks = {4}, causal = {5}}\n"
      "        ins(%s : tensor<{6}>) outs(%counts_t, %indices_t : tensor<{7}>, "
      "tensor<{8}>) -> tensor<{7}>, tensor<{8}>\n",
      formatShortestDouble(cfg.getTauValue()), cfg.getLocalBlocks(),
      boolText(cfg.getSink()), cfg.getMinBlocks(), cfg.getMaxBlocks(),
      boolText(cfg.getCausal()), sc, cnt, idx);
  src += store("%s", "scores", sc) + store("%cnt", "counts", cnt) +
         store("%idx", "indices", idx) + "    return\n  }\n}\n";
  return src;
}

FailureOr<ConfigAttr> mlir::unisparse::parseConfig(MLIRContext *ctx,
                                                   llvm::StringRef text,
                                                   std::string &error) {
  std::string full = text.trim().str();
  if (!llvm::StringRef(full).starts_with("#"))
    full = "#unisparse.config<" + full + ">";
  std::string diagText;
  ScopedDiagnosticHandler handler(ctx, [&](Diagnostic &diag) {
    diagText += diag.str() + "\n";
    return success();
  });
  Attribute attr = parseAttribute(full, ctx);
  auto cfg = llvm::dyn_cast_or_null<ConfigAttr>(attr);
  if (!cfg) {
    error = "invalid configuration '" + full + "'" +
            (diagText.empty() ? std::string() : ": " + diagText);
    return failure();
  }
  return cfg;
}
