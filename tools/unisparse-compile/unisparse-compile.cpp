//===- unisparse-compile.cpp - ahead-of-time compiler ---------------------===//
//
// Compiles a module (or a configuration with a shape signature) through
// unisparse-to-cpu or unisparse-to-nvptx into a shared library holding the
// host code (and, for CUDA, the embedded cubins), plus a C header declaring
// its entry points. The library leaves the runtime's symbols (mgpu*,
// unisparse_rt_*, memrefCopy) undefined: load libunisparse_runtime first
// (RTLD_GLOBAL), or link with --link-runtime=<dir>. This is how compiled code
// runs on a GPU machine that has no LLVM.
//
// Everything happens in this process: LLVM emits the object file and lld,
// linked into the tool, links the shared library, so the tool needs no
// compiler or linker on the machine it runs on (--cc=<driver> links with a
// compiler driver instead). The CUDA target runs ptxas and links libdevice
// from the CUDA toolkit ($CUDA_HOME, default /usr/local/cuda).
//
//   unisparse-compile --config="block=128,tau=0.997" --heads=32 --kv-heads=8 \
//       --head-dim=128 --dtype=bf16 --target=cuda -o libattn.so --header=attn.h
//   unisparse-compile in.mlir --target=cpu -o libattn.so
//
//===----------------------------------------------------------------------===//

#include "unisparse/Dialect/Unisparse/Transforms/Passes.h"
#include "unisparse/Pipelines/EntryModule.h"
#include "unisparse/Pipelines/Pipelines.h"
#include "unisparse/Version.h"

#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

#if UNISPARSE_HAVE_LLD
#include "lld/Common/Driver.h"
LLD_HAS_DRIVER(elf)
#endif

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory category("unisparse-compile options");
static cl::opt<std::string> inputFile(cl::Positional, cl::desc("[input .mlir]"),
                                      cl::init(""), cl::cat(category));
static cl::opt<std::string> outputFile("o", cl::desc("Output file"),
                                       cl::value_desc("path"), cl::Required,
                                       cl::cat(category));
static cl::opt<std::string> target("target",
                                   cl::desc("cpu (unisparse-to-cpu) or cuda "
                                            "(unisparse-to-nvptx)"),
                                   cl::init("cpu"), cl::cat(category));
static cl::opt<std::string>
    emit("emit",
         cl::desc("What to write: so (default), obj, llvm, mlir "
                  "(after the pipeline), entry (the module before "
                  "it)"),
         cl::init("so"), cl::cat(category));
static cl::opt<std::string> configText(
    "config",
    cl::desc("Configuration (instead of an input module): "
             "'block=128,tau=0.997' or '#unisparse.config<...>'; fields "
             "not given take #unisparse.config's defaults (the peaked "
             "configuration: outlier estimator, normalised slash refinement, "
             "tau 0.9965; refine follows causal: 'causal=false' is the "
             "outlier first pass alone); mean pooling is "
             "'estimator=mean,c_k=8,query_reduce=sum,tau=0.99,refine=none'"),
    cl::init(""), cl::cat(category));
static cl::opt<int64_t> heads("heads", cl::desc("Query heads"), cl::init(32),
                              cl::cat(category));
static cl::opt<int64_t> kvHeads("kv-heads", cl::desc("Key/value heads"),
                                cl::init(8), cl::cat(category));
static cl::opt<int64_t> headDim("head-dim", cl::desc("Head dimension"),
                                cl::init(128), cl::cat(category));
static cl::opt<std::string> dtype("dtype", cl::desc("f32, f16 or bf16"),
                                  cl::init("bf16"), cl::cat(category));
static cl::opt<std::string> chip("chip", cl::desc("CUDA: GPU architecture"),
                                 cl::init("sm_90a"), cl::cat(category));
static cl::opt<std::string> features("features", cl::desc("CUDA: PTX features"),
                                     cl::init("+ptx80"), cl::cat(category));
static cl::opt<int64_t> threads("gpu-threads",
                                cl::desc("CUDA: threads per block of the "
                                         "estimation kernels"),
                                cl::init(128), cl::cat(category));
static cl::opt<std::string>
    scorePrecision("score-precision",
                   cl::desc("CUDA: composites of the tensor-core scoring "
                            "kernel (bf16, f16; f32 scores on CUDA cores)"),
                   cl::init("bf16"), cl::cat(category));
static cl::opt<int64_t> scoreWarps("score-warps",
                                   cl::desc("CUDA: warps per CTA of the "
                                            "scoring kernel"),
                                   cl::init(4), cl::cat(category));
static cl::opt<int64_t>
    scoreWarpRows("score-warp-rows",
                  cl::desc("CUDA: query composites per warp of the scoring "
                           "kernel (16 or 32)"),
                  cl::init(32), cl::cat(category));
static cl::opt<int64_t>
    scoreKeyTile("score-key-tile",
                 cl::desc("CUDA: key composites per tile of the scoring "
                          "kernel"),
                 cl::init(64), cl::cat(category));
static cl::opt<int64_t> scoreOutlierKeyTile(
    "score-outlier-key-tile",
    cl::desc("CUDA: key composites per tile of the outlier estimator's "
             "scoring kernel"),
    cl::init(32), cl::cat(category));
static cl::opt<int64_t> scoreOutlierExp2Poly(
    "score-outlier-exp2-poly",
    cl::desc("CUDA: of each 8 values of a row in the outlier scoring "
             "kernel's pass 2, how many take their exponentials by a "
             "polynomial on the FMA pipe instead of the MUFU (0..8)"),
    cl::init(2), cl::cat(category));
static cl::opt<bool> scoreOutlierTileFactors(
    "score-outlier-tile-factors",
    cl::desc("CUDA: the outlier scoring kernel's scores with each key "
             "tile's scale factors computed once per tile"),
    cl::init(true), cl::cat(category));
static cl::opt<bool> scoreOutlierUnrollSlots(
    "score-outlier-unroll-slots",
    cl::desc("CUDA: the outlier scoring kernel's loops over the key slots "
             "unrolled (the same bits)"),
    cl::init(false), cl::cat(category));
static cl::opt<bool> scoreOutlierWgmma(
    "score-outlier-wgmma",
    cl::desc("CUDA: the outlier scoring kernel's products on wgmma where "
             "--chip is sm_90a (4 warps a CTA, head_dim a multiple of 64; "
             "off by default: as fast as mma.sync, measured)"),
    cl::init(false), cl::cat(category));
static cl::opt<int64_t> scoreCtas("score-ctas",
                                  cl::desc("CUDA: persistent CTAs of the "
                                           "scoring kernel"),
                                  cl::init(264), cl::cat(category));
static cl::opt<int64_t>
    scoreMinCtasPerSm("score-min-ctas-per-sm",
                      cl::desc("CUDA: scoring CTAs that should fit on one SM "
                               "(a register budget for ptxas; 0: none)"),
                      cl::init(0), cl::cat(category));
static cl::opt<std::string>
    scoreEpilogue("score-epilogue",
                  cl::desc("CUDA: where the scoring kernel forms the block "
                           "scores: fused (per CTA tile) or separate (a "
                           "second kernel, in chunks of at most "
                           "--score-scratch-bytes of scratch)"),
                  cl::init("separate"), cl::cat(category));
static cl::opt<int64_t> scoreScratchBytes(
    "score-scratch-bytes",
    cl::desc("CUDA, separate epilogue: bytes of scratch per chunk of the "
             "scoring work (at least one unit per CTA; 0: every unit at "
             "once, growing as N * NBk)"),
    cl::init(256 << 20), cl::cat(category));
static cl::opt<std::string> scorePartials(
    "score-partials",
    cl::desc("CUDA: type of the scoring kernel's per-key-block partial sums "
             "in its scratch: f16 (half the bytes) or f32"),
    cl::init("f16"), cl::cat(category));
static cl::opt<bool> refineKernels(
    "refine-kernels",
    cl::desc("CUDA: unisparse.slash_refine as the built refinement kernels "
             "(false: its loop lowering through the generic GPU path)"),
    cl::init(true), cl::cat(category));
static cl::opt<bool> scoreFuseQueryPooling(
    "score-fuse-query-pooling",
    cl::desc("CUDA: the mean estimator's scoring kernel pools its query "
             "composites from the raw queries (no query compress kernel); "
             "false keeps the compress kernel"),
    cl::init(true), cl::cat(category));
static cl::opt<bool> scorePrefetchQueries(
    "score-prefetch-queries",
    cl::desc("CUDA, with --score-fuse-query-pooling on sm_90 and later: "
             "prefetch each tile's raw queries into L2 before pooling them"),
    cl::init(true), cl::cat(category));
static cl::opt<std::string> headerFile("header",
                                       cl::desc("Also write a C header"),
                                       cl::init(""), cl::cat(category));
static cl::opt<std::string>
    linker("cc",
           cl::desc("Link the .so with this compiler driver instead of the "
                    "lld linked into this tool"),
           cl::init(""), cl::cat(category));
static cl::opt<std::string>
    linkRuntime("link-runtime",
                cl::desc("Directory of libunisparse_runtime.so to link "
                         "against (with an rpath); default: leave the "
                         "runtime's symbols to be resolved at load time"),
                cl::init(""), cl::cat(category));

static cl::opt<std::string> hostCpu(
    "host-cpu",
    cl::desc("CPU the host code is optimised for: 'native' (this machine, "
             "the default for --target=cpu, whose libraries run where they "
             "are built), 'generic' (the default for --target=cuda, whose "
             "host code runs on the GPU machine), or an LLVM CPU name"),
    cl::init(""), cl::cat(category));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "unisparse-compile: error: " << message << "\n";
  return 1;
}

/// Writes `module` to the output file; the exit code.
static int printModule(ModuleOp module) {
  std::string error;
  auto out = openOutputFile(outputFile, &error);
  if (!out)
    return fail(error);
  module->print(out->os());
  out->keep();
  return 0;
}

/// The C header of the entry points.
static std::string headerSource(llvm::StringRef libName, bool cuda) {
  std::string guard =
      "UNISPARSE_COMPILED_" + llvm::sys::path::stem(libName).upper();
  for (char &c : guard)
    if (!isalnum(static_cast<unsigned char>(c)))
      c = '_';
  std::string h;
  llvm::raw_string_ostream os(h);
  os << "/* Generated by unisparse-compile: entry points of " << libName << " ("
     << (cuda ? "CUDA" : "CPU") << ").\n"
     << " *\n"
     << " * Arguments are MLIR memref descriptors passed by pointer; their "
        "data\n"
     << " * pointers are " << (cuda ? "DEVICE" : "host")
     << " pointers. Shapes: q/o [B, Hq, N, D], k/v [B, Hkv, N, D],\n"
     << " * lse [B, Hq, N] f32, scores [B, Hg, NB, NB] f32, counts [B, Hg, NB] "
        "i32,\n"
     << " * indices [B, Hg, NB, NB] i32 (NB = ceil(N / block)). Load\n"
     << " * libunisparse_runtime first; after a call, read\n"
     << " * unisparse_rt_last_error() for failures."
     << (cuda ? " Work is queued on the\n * stream set with "
                "unisparse_rt_set_current_stream (no host synchronisation);\n"
                " * without one, the calls synchronise before returning."
              : "")
     << "\n */\n"
     << "#ifndef " << guard << "\n#define " << guard << "\n\n"
     << "#include <stdint.h>\n\n"
     << "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
     << "typedef struct { void *allocated; void *aligned; int64_t offset; "
        "int64_t sizes[4]; int64_t strides[4]; } unisparse_memref4d_t;\n"
     << "typedef struct { void *allocated; void *aligned; int64_t offset; "
        "int64_t sizes[3]; int64_t strides[3]; } unisparse_memref3d_t;\n\n"
     << "/* o, lse = unisparse.attention(q, k, v) */\n"
     << "void _mlir_ciface_attention(unisparse_memref4d_t *q, "
        "unisparse_memref4d_t *k, unisparse_memref4d_t *v,\n"
     << "                            unisparse_memref4d_t *o, "
        "unisparse_memref3d_t *lse);\n\n"
     << "/* scores, counts, indices = estimation stages (compress, "
        "block_score, block_select) */\n"
     << "void _mlir_ciface_layout(unisparse_memref4d_t *q, "
        "unisparse_memref4d_t *k, unisparse_memref4d_t *scores,\n"
     << "                         unisparse_memref3d_t *counts, "
        "unisparse_memref4d_t *indices);\n\n"
     << "/* o, lse, counts, indices = unisparse.attention(q, k, v) and the "
        "layout it used */\n"
     << "void _mlir_ciface_attention_layout(unisparse_memref4d_t *q, "
        "unisparse_memref4d_t *k,\n"
     << "                                   unisparse_memref4d_t *v, "
        "unisparse_memref4d_t *o,\n"
     << "                                   unisparse_memref3d_t *lse, "
        "unisparse_memref3d_t *counts,\n"
     << "                                   unisparse_memref4d_t *indices);\n\n"
     << "#ifdef __cplusplus\n}\n#endif\n\n#endif\n";
  return h;
}

/// The linker arguments that make `objPath` the shared library, for lld
/// itself or (`driver`) for a compiler driver.
static SmallVector<std::string> linkArgs(llvm::StringRef objPath, bool driver) {
  SmallVector<std::string> args = {"-shared", "-o", outputFile, objPath.str()};
  if (!linkRuntime.empty()) {
    args.push_back("-L" + linkRuntime);
    args.push_back("-lunisparse_runtime");
    args.push_back((driver ? "-Wl,-rpath," : "-rpath=") + linkRuntime);
  }
  return args;
}

#if UNISPARSE_HAVE_LLD
static constexpr bool haveLLD = true;

/// Links with lld's ELF driver in this process.
static int linkWithLLD(llvm::StringRef objPath) {
  SmallVector<std::string> args = linkArgs(objPath, /*driver=*/false);
  SmallVector<const char *> argv = {"ld.lld"};
  for (const std::string &arg : args)
    argv.push_back(arg.c_str());
  std::string out, err;
  llvm::raw_string_ostream outOS(out), errOS(err);
  lld::Result result =
      lld::lldMain(argv, outOS, errOS, {{lld::Gnu, &lld::elf::link}});
  if (result.retCode != 0)
    return fail("linking with lld failed: " + err);
  return 0;
}
#else
static constexpr bool haveLLD = false;
static int linkWithLLD(llvm::StringRef) { return 1; }
#endif

/// Links with a compiler driver: --cc, else the first of cc, clang-22, clang,
/// gcc on PATH.
static int linkWithDriver(llvm::StringRef objPath) {
  std::string driver = linker;
  if (driver.empty()) {
    for (const char *name : {"cc", "clang-22", "clang", "gcc"})
      if (auto path = llvm::sys::findProgramByName(name)) {
        driver = *path;
        break;
      }
  }
  if (driver.empty())
    return fail("no C compiler driver found to link the shared library "
                "(pass --cc=<path>)");
  SmallVector<std::string> args = linkArgs(objPath, /*driver=*/true);
  args.insert(args.begin(), driver);
  SmallVector<llvm::StringRef> argRefs(args.begin(), args.end());
  std::string linkError;
  int rc = llvm::sys::ExecuteAndWait(driver, argRefs, std::nullopt, {}, 0, 0,
                                     &linkError);
  if (rc != 0)
    return fail("linking with " + driver + " failed" +
                (linkError.empty() ? std::string() : ": " + linkError));
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::AddExtraVersionPrinter(unisparse::printVersion);
  cl::ParseCommandLineOptions(argc, argv, "UniSparse ahead-of-time compiler\n");
  bool cuda = target == "cuda";
  if (!cuda && target != "cpu")
    return fail("--target must be 'cpu' or 'cuda', got '" + target + "'");
  if (emit != "so" && emit != "obj" && emit != "llvm" && emit != "mlir" &&
      emit != "entry")
    return fail("--emit must be so, obj, llvm, mlir or entry, got '" + emit +
                "'");
  if (scoreEpilogue != "fused" && scoreEpilogue != "separate")
    return fail("--score-epilogue must be 'fused' or 'separate', got '" +
                scoreEpilogue + "'");
  if (scoreScratchBytes < 0)
    return fail("--score-scratch-bytes must be 0 (unbounded) or positive, "
                "got " +
                std::to_string(scoreScratchBytes));
  if (scorePartials != "f16" && scorePartials != "f32")
    return fail("--score-partials must be 'f16' or 'f32', got '" +
                scorePartials + "'");
  if (scoreOutlierExp2Poly < 0 || scoreOutlierExp2Poly > 8)
    return fail("--score-outlier-exp2-poly must be in [0, 8], got " +
                std::to_string(scoreOutlierExp2Poly));
  if (inputFile.empty() == configText.empty())
    return fail("give either an input module or --config (not both)");

  // The CUDA target links libdevice (math.exp -> __nv_expf) from the toolkit
  // that MLIR finds through CUDA_HOME; default to the usual location.
  if (cuda && !getenv("CUDA_HOME") && !getenv("CUDA_ROOT") &&
      !getenv("CUDA_PATH") && llvm::sys::fs::is_directory("/usr/local/cuda"))
    setenv("CUDA_HOME", "/usr/local/cuda", /*overwrite=*/0);

  DialectRegistry registry;
  unisparse::registerUnisparseDependencies(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();

  // The module: parsed, or generated from the configuration.
  OwningOpRef<ModuleOp> module;
  if (!configText.empty()) {
    std::string error;
    FailureOr<unisparse::ConfigAttr> cfg =
        unisparse::parseConfig(&context, configText, error);
    if (failed(cfg))
      return fail(error);
    unisparse::EntrySignature sig;
    sig.heads = heads;
    sig.kvHeads = kvHeads;
    sig.headDim = headDim;
    sig.dtype = dtype;
    sig.target =
        cuda ? unisparse::EntryTarget::cuda : unisparse::EntryTarget::cpu;
    // The scoring kernel's options, as the pipeline below gets them (the
    // guard's workspace rule depends on them).
    sig.scoring.warps = scoreWarps;
    sig.scoring.warpRows = scoreWarpRows;
    sig.scoring.keyTile = scoreKeyTile;
    sig.scoring.outlierKeyTile = scoreOutlierKeyTile;
    sig.scoring.outlierExp2Poly = scoreOutlierExp2Poly;
    sig.scoring.outlierTileFactors = scoreOutlierTileFactors;
    sig.scoring.outlierUnrollSlots = scoreOutlierUnrollSlots;
    sig.scoring.outlierWgmma =
        unisparse::outlierWgmmaFor(scoreOutlierWgmma, chip);
    sig.scoring.ctas = scoreCtas;
    sig.scoring.separateEpilogue = scoreEpilogue == "separate";
    sig.scoring.scratchBytes = scoreScratchBytes;
    sig.scoring.halfPartials = scorePartials == "f16";
    sig.scoring.fuseQueryPooling = scoreFuseQueryPooling;
    sig.scoring.compositeType = llvm::StringSwitch<Type>(scorePrecision)
                                    .Case("bf16", BFloat16Type::get(&context))
                                    .Case("f16", Float16Type::get(&context))
                                    .Default(Type());
    FailureOr<OwningOpRef<ModuleOp>> built =
        unisparse::buildEntryModule(&context, *cfg, sig, error);
    if (failed(built))
      return fail(error);
    module = std::move(*built);
  } else {
    std::string error;
    auto file = openInputFile(inputFile, &error);
    if (!file)
      return fail(error);
    llvm::SourceMgr sourceMgr;
    sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
    module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  }
  if (!module)
    return fail("could not parse the input module");

  if (emit == "entry")
    return printModule(*module);

  // The pipeline.
  PassManager pm(&context);
  if (cuda) {
    unisparse::UnisparseToNVPTXPipelineOptions options;
    options.chip = chip;
    options.features = features;
    options.threads = threads;
    options.scorePrecision = scorePrecision;
    options.scoreWarps = scoreWarps;
    options.scoreWarpRows = scoreWarpRows;
    options.scoreKeyTile = scoreKeyTile;
    options.scoreOutlierKeyTile = scoreOutlierKeyTile;
    options.scoreOutlierExp2Poly = scoreOutlierExp2Poly;
    options.scoreOutlierTileFactors = scoreOutlierTileFactors;
    options.scoreOutlierUnrollSlots = scoreOutlierUnrollSlots;
    options.scoreOutlierWgmma = scoreOutlierWgmma;
    options.scoreCtas = scoreCtas;
    options.scoreMinCtasPerSm = scoreMinCtasPerSm;
    options.scoreEpilogue = scoreEpilogue;
    options.scoreScratchBytes = scoreScratchBytes;
    options.scorePartials = scorePartials;
    options.refineKernels = refineKernels;
    options.scoreFuseQueryPooling = scoreFuseQueryPooling;
    options.scorePrefetchQueries = scorePrefetchQueries;
    unisparse::buildUnisparseToNVPTXPipeline(pm, options);
  } else {
    unisparse::buildUnisparseToCPUPipeline(
        pm, unisparse::UnisparseToCPUPipelineOptions());
  }
  // Host allocations of the lowered code are checked: a failed one ends the
  // call with the runtime's error instead of a write through null.
  pm.addPass(unisparse::createUnisparseCheckAllocations());
  if (failed(pm.run(*module)))
    return fail("the unisparse-to-" + std::string(cuda ? "nvptx" : "cpu") +
                " pipeline failed");

  std::string error;
  if (!headerFile.empty()) {
    auto out = openOutputFile(headerFile, &error);
    if (!out)
      return fail(error);
    out->os() << headerSource(llvm::sys::path::filename(outputFile), cuda);
    out->keep();
  }
  if (emit == "mlir")
    return printModule(*module);

  // The host's code generation without loop strength reduction on the CPU
  // (unless --disable-lsr is given): for the default configuration it was 6
  // of the 16.5 s of code generation (--time-passes), and the estimation it
  // compiles runs as fast without it (the four estimators of
  // bench_cpu_estimation.py within noise, the same layouts; bench/
  // RESULTS.md, 2026-12-05). The CUDA target's code generation is unchanged.
  if (!cuda) {
    auto &llvmOptions = cl::getRegisteredOptions();
    auto lsr = llvmOptions.find("disable-lsr");
    if (lsr != llvmOptions.end() && lsr->second->getNumOccurrences() == 0 &&
        lsr->second->addOccurrence(0, "disable-lsr", "true"))
      return fail("could not turn off LLVM's loop strength reduction");
  }

  // LLVM IR for the host, optimised.
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(*module, llvmContext);
  if (!llvmModule)
    return fail("translation to LLVM IR failed");
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!llvmTarget)
    return fail(error);
  llvm::TargetOptions targetOptions;
  // Constructors (the cubins' module loads) in .init_array: lld, unlike GNU
  // ld's default script, does not turn the legacy .ctors into it, and the
  // loader would never run them.
  targetOptions.UseInitArray = true;
  std::string cpuName =
      hostCpu.empty() ? (cuda ? "generic" : "native") : std::string(hostCpu);
  std::string cpuFeatures;
  if (cpuName == "native") {
    cpuName = llvm::sys::getHostCPUName().str();
    for (const auto &feature : llvm::sys::getHostCPUFeatures())
      cpuFeatures += (cpuFeatures.empty() ? "" : ",") +
                     std::string(feature.second ? "+" : "-") +
                     feature.first().str();
  }
  std::unique_ptr<llvm::TargetMachine> machine(llvmTarget->createTargetMachine(
      triple, cpuName, cpuFeatures, targetOptions, llvm::Reloc::PIC_));
  if (!machine)
    return fail("no LLVM target machine for CPU '" + cpuName + "'");
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(machine->createDataLayout());
  if (llvm::Error err =
          makeOptimizingTransformer(3, 0, machine.get())(llvmModule.get()))
    return fail("LLVM optimisation failed: " + llvm::toString(std::move(err)));
  if (emit == "llvm") {
    auto out = openOutputFile(outputFile, &error);
    if (!out)
      return fail(error);
    llvmModule->print(out->os(), nullptr);
    out->keep();
    return 0;
  }

  // Object file.
  llvm::SmallString<128> objPath(outputFile);
  if (emit == "so")
    objPath += ".o";
  {
    auto out = openOutputFile(objPath, &error);
    if (!out)
      return fail(error);
    llvm::legacy::PassManager codegen;
    if (machine->addPassesToEmitFile(codegen, out->os(), nullptr,
                                     llvm::CodeGenFileType::ObjectFile))
      return fail("the host target cannot emit object files");
    codegen.run(*llvmModule);
    out->keep();
  }
  if (emit == "obj")
    return 0;

  // Shared library.
  int rc = linker.empty() && haveLLD ? linkWithLLD(objPath)
                                     : linkWithDriver(objPath);
  llvm::sys::fs::remove(objPath);
  return rc;
}
