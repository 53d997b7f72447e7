// RUN: unisparse-opt %s --unisparse-gpu-module-to-binary="format=isa" -verify-diagnostics

// A module without targets is an error, as in upstream's pass, and nothing
// is serialized.
module attributes {gpu.container_module} {
  // expected-error @below {{the module has no target attributes}}
  gpu.module @bare {
    llvm.func @k() attributes {gpu.kernel, nvvm.kernel} {
      llvm.return
    }
  }
  gpu.module @fine [#nvvm.target<chip = "sm_90a", features = "+ptx80">] {
    llvm.func @k() attributes {gpu.kernel, nvvm.kernel} {
      llvm.return
    }
  }
}
