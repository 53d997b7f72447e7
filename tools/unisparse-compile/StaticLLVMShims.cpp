//===- StaticLLVMShims.cpp - what lld names but the static tool leaves out ===//
//
// Built only with UNISPARSE_STATIC_LLVM (the wheel). lld's ELF driver, linked
// into unisparse-compile, initialises every target that LLVM was configured
// with and registers LLVM's statically linked pass plugins (Debian's LLVM
// names Polly), both for link-time optimisation, which unisparse-compile never
// asks of it (it links one native object). The static tool carries only the
// X86 and NVPTX targets and no Polly, so the others' initialisers are empty
// (those targets are just not registered) and Polly's plugin registers no
// pass.
//
//===----------------------------------------------------------------------===//

#include "llvm/Plugins/PassPlugin.h"

#define UNISPARSE_ABSENT_LLVM_TARGET(T)                                        \
  extern "C" void LLVMInitialize##T##TargetInfo() {}                           \
  extern "C" void LLVMInitialize##T##Target() {}                               \
  extern "C" void LLVMInitialize##T##TargetMC() {}                             \
  extern "C" void LLVMInitialize##T##AsmPrinter() {}                           \
  extern "C" void LLVMInitialize##T##AsmParser() {}                            \
  extern "C" void LLVMInitialize##T##Disassembler() {}
#include "unisparse/AbsentLLVMTargets.inc"

llvm::PassPluginLibraryInfo getPollyPluginInfo() {
  return {LLVM_PLUGIN_API_VERSION, "Polly (not linked)", "none",
          [](llvm::PassBuilder &) {}};
}
