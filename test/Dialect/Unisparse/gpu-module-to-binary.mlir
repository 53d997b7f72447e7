// unisparse-gpu-module-to-binary: each gpu.module serialized on a thread of
// the context's pool, the gpu.binary ops in the modules' places and order,
// the objects those of upstream's gpu-module-to-binary (byte for byte, up to
// the serialization's timing properties), with threads or without.
// RUN: unisparse-opt %s --unisparse-gpu-module-to-binary="format=isa" | FileCheck %s
// RUN: unisparse-opt %s --unisparse-gpu-module-to-binary="format=isa" | sed -E 's/[A-Za-z]+TimeInMs = [0-9]+ : i64, //g' > %t.ours
// RUN: unisparse-opt %s --unisparse-gpu-module-to-binary="format=isa" --mlir-disable-threading | sed -E 's/[A-Za-z]+TimeInMs = [0-9]+ : i64, //g' > %t.serial
// RUN: mlir-opt %s --gpu-module-to-binary="format=isa" | sed -E 's/[A-Za-z]+TimeInMs = [0-9]+ : i64, //g' > %t.upstream
// RUN: diff %t.ours %t.upstream
// RUN: diff %t.serial %t.upstream
// RUN: not unisparse-opt %s --unisparse-gpu-module-to-binary="format=cubin" 2>&1 | FileCheck %s --check-prefix=FORMAT

// CHECK: func.func @host
// CHECK-NEXT: return
// CHECK: gpu.binary @first [#gpu.object<#nvvm.target<chip = "sm_90a", features = "+ptx80">, properties = {{.+}}, assembly = "{{.+}}.target sm_90a{{.+}}.visible .entry first_kernel{{.+}}st.global.b32{{.+}}">]
// CHECK-NEXT: gpu.binary @second [#gpu.object<#nvvm.target<chip = "sm_90a", features = "+ptx80">, properties = {{.+}}, assembly = "{{.+}}.visible .entry second_kernel{{.+}}add.rn.f32{{.+}}">]
// CHECK-NEXT: gpu.binary @third [#gpu.object<#nvvm.target<chip = "sm_80", features = "+ptx75">, properties = {{.+}}, assembly = "{{.+}}.target sm_80{{.+}}.visible .entry third_kernel{{.+}}">]
// CHECK-NOT: gpu.module
// FORMAT: error: unisparse-gpu-module-to-binary: invalid format 'cubin' (offloading, llvm, assembly, isa, binary, bin, fatbinary or fatbin)
module attributes {gpu.container_module} {
  func.func @host() {
    return
  }
  gpu.module @first [#nvvm.target<chip = "sm_90a", features = "+ptx80">] {
    llvm.func @first_kernel(%out: !llvm.ptr<1>, %x: f32) attributes {gpu.kernel, nvvm.kernel} {
      llvm.store %x, %out : f32, !llvm.ptr<1>
      llvm.return
    }
  }
  gpu.module @second [#nvvm.target<chip = "sm_90a", features = "+ptx80">] {
    llvm.func @second_kernel(%out: !llvm.ptr<1>, %x: f32, %y: f32) attributes {gpu.kernel, nvvm.kernel} {
      %s = llvm.fadd %x, %y : f32
      llvm.store %s, %out : f32, !llvm.ptr<1>
      llvm.return
    }
  }
  gpu.module @third [#nvvm.target<chip = "sm_80", features = "+ptx75">] {
    llvm.func @third_kernel(%out: !llvm.ptr<1>, %x: i32) attributes {gpu.kernel, nvvm.kernel} {
      llvm.store %x, %out : i32, !llvm.ptr<1>
      llvm.return
    }
  }
}

