// REQUIRES: ptxas
// The cubins (format=bin: the PTX through ptxas, one process per module,
// in parallel) are upstream gpu-module-to-binary's, byte for byte, with
// threads or without (the properties are the serialization's timings).
// RUN: unisparse-opt %s --unisparse-gpu-module-to-binary="format=bin" | sed -E 's/[A-Za-z]+TimeInMs = [0-9]+ : i64(, )?//g' > %t.ours
// RUN: unisparse-opt %s --unisparse-gpu-module-to-binary="format=bin" --mlir-disable-threading | sed -E 's/[A-Za-z]+TimeInMs = [0-9]+ : i64(, )?//g' > %t.serial
// RUN: mlir-opt %s --gpu-module-to-binary="format=bin" | sed -E 's/[A-Za-z]+TimeInMs = [0-9]+ : i64(, )?//g' > %t.upstream
// RUN: diff %t.ours %t.upstream
// RUN: diff %t.serial %t.upstream
// RUN: FileCheck %s --input-file=%t.ours
// CHECK: gpu.binary @first [#gpu.object<#nvvm.target<chip = "sm_90a", features = "+ptx80">, properties = {}, bin = "\7FELF
// CHECK-NEXT: gpu.binary @second [#gpu.object<#nvvm.target<chip = "sm_90a", features = "+ptx80">, properties = {}, bin = "\7FELF
// CHECK-NEXT: gpu.binary @third [#gpu.object<#nvvm.target<chip = "sm_80", features = "+ptx75">, properties = {}, bin = "\7FELF
module attributes {gpu.container_module} {
  gpu.module @first [#nvvm.target<chip = "sm_90a", features = "+ptx80">] {
    llvm.func @first_kernel(%out: !llvm.ptr<1>, %x: f32) attributes {gpu.kernel, nvvm.kernel} {
      llvm.store %x, %out : f32, !llvm.ptr<1>
      llvm.return
    }
  }
  gpu.module @second [#nvvm.target<chip = "sm_90a", features = "+ptx80">] {
    llvm.func @second_kernel(%out: !llvm.ptr<1>, %x: f32, %y: f32) attributes {gpu.kernel, nvvm.kernel} {
      %s = llvm.fmul %x, %y : f32
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
