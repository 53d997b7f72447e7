// RUN: unisparse-opt %s --split-input-file --unisparse-gpu-dedup-modules | FileCheck %s

// Three copies of one kernel (as the three entry points' estimations give
// them) under outlining's names: the first stays, every launch of a later
// copy launches it, the later copies are gone. The same code with another
// attribute, another parameter order or another external function is kept,
// with its launch.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK:       gpu.module @k_0_module {
// CHECK-NEXT:    llvm.func @__nv_expf(f32) -> f32
// CHECK-NEXT:    gpu.func @k_0(
// CHECK-NOT:   gpu.module @k_1_module
// CHECK-NOT:   gpu.module @k_2_module
// CHECK:       gpu.module @k_3_module
// CHECK:         gpu.func @k_3({{.*}} kernel attributes {nvvm.minctasm = 3 : i32}
// CHECK:       gpu.module @k_4_module
// CHECK:         gpu.func @k_4(%{{.*}}: index, %{{.*}}: memref<?xf32>)
// CHECK:       gpu.module @k_5_module
// CHECK-NEXT:    llvm.func @__nv_logf(f32) -> f32
// CHECK:       func.func @layout
// CHECK:         gpu.launch_func @k_0_module::@k_0
// CHECK-NEXT:    gpu.launch_func @k_0_module::@k_0
// CHECK-NEXT:    gpu.launch_func @k_0_module::@k_0
// CHECK-NEXT:    gpu.launch_func @k_3_module::@k_3
// CHECK-NEXT:    gpu.launch_func @k_4_module::@k_4
// CHECK-NEXT:    gpu.launch_func @k_5_module::@k_5
// CHECK-NEXT:    return
module attributes {gpu.container_module} {
  gpu.module @k_0_module {
    llvm.func @__nv_expf(f32) -> f32
    gpu.func @k_0(%a: memref<?xf32>, %n: index) kernel {
      %c0 = arith.constant 0 : index
      %x = memref.load %a[%n] : memref<?xf32>
      %y = llvm.call @__nv_expf(%x) : (f32) -> f32
      memref.store %y, %a[%c0] : memref<?xf32>
      gpu.return
    }
  }
  gpu.module @k_1_module {
    llvm.func @__nv_expf(f32) -> f32
    gpu.func @k_1(%a: memref<?xf32>, %n: index) kernel {
      %c0 = arith.constant 0 : index
      %x = memref.load %a[%n] : memref<?xf32>
      %y = llvm.call @__nv_expf(%x) : (f32) -> f32
      memref.store %y, %a[%c0] : memref<?xf32>
      gpu.return
    }
  }
  gpu.module @k_2_module {
    llvm.func @__nv_expf(f32) -> f32
    gpu.func @k_2(%a: memref<?xf32>, %n: index) kernel {
      %c0 = arith.constant 0 : index
      %x = memref.load %a[%n] : memref<?xf32>
      %y = llvm.call @__nv_expf(%x) : (f32) -> f32
      memref.store %y, %a[%c0] : memref<?xf32>
      gpu.return
    }
  }
  gpu.module @k_3_module {
    llvm.func @__nv_expf(f32) -> f32
    gpu.func @k_3(%a: memref<?xf32>, %n: index) kernel attributes {nvvm.minctasm = 3 : i32} {
      %c0 = arith.constant 0 : index
      %x = memref.load %a[%n] : memref<?xf32>
      %y = llvm.call @__nv_expf(%x) : (f32) -> f32
      memref.store %y, %a[%c0] : memref<?xf32>
      gpu.return
    }
  }
  gpu.module @k_4_module {
    llvm.func @__nv_expf(f32) -> f32
    gpu.func @k_4(%n: index, %a: memref<?xf32>) kernel {
      %c0 = arith.constant 0 : index
      %x = memref.load %a[%n] : memref<?xf32>
      %y = llvm.call @__nv_expf(%x) : (f32) -> f32
      memref.store %y, %a[%c0] : memref<?xf32>
      gpu.return
    }
  }
  gpu.module @k_5_module {
    llvm.func @__nv_logf(f32) -> f32
    gpu.func @k_5(%a: memref<?xf32>, %n: index) kernel {
      %c0 = arith.constant 0 : index
      %x = memref.load %a[%n] : memref<?xf32>
      %y = llvm.call @__nv_logf(%x) : (f32) -> f32
      memref.store %y, %a[%c0] : memref<?xf32>
      gpu.return
    }
  }
  func.func @layout(%a: memref<?xf32>, %n: index) {
    %c1 = arith.constant 1 : index
    gpu.launch_func @k_0_module::@k_0 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<?xf32>, %n : index)
    gpu.launch_func @k_1_module::@k_1 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<?xf32>, %n : index)
    gpu.launch_func @k_2_module::@k_2 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<?xf32>, %n : index)
    gpu.launch_func @k_3_module::@k_3 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<?xf32>, %n : index)
    gpu.launch_func @k_4_module::@k_4 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%n : index, %a : memref<?xf32>)
    gpu.launch_func @k_5_module::@k_5 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<?xf32>, %n : index)
    return
  }
}

// -----

// A module whose kernel calls a helper function of its own: the helper's
// name is part of the code (only gpu.func names are set aside), so copies
// with the same helper merge, and references inside a module to its own
// kernel by qualified name do not stop the merge. A module that something
// outside refers to by a symbol it does not hold is kept.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK:       gpu.module @h_0_module
// CHECK-NOT:   gpu.module @h_1_module
// CHECK:       func.func @f
// CHECK:         gpu.launch_func @h_0_module::@h_0
// CHECK-NEXT:    gpu.launch_func @h_0_module::@h_0
// CHECK-NEXT:    return
module attributes {gpu.container_module} {
  gpu.module @h_0_module {
    func.func private @helper(%x: f32) -> f32 {
      %y = arith.mulf %x, %x : f32
      return %y : f32
    }
    gpu.func @h_0(%a: memref<?xf32>) kernel attributes {self = @h_0_module::@h_0} {
      %c0 = arith.constant 0 : index
      %x = memref.load %a[%c0] : memref<?xf32>
      %y = func.call @helper(%x) : (f32) -> f32
      memref.store %y, %a[%c0] : memref<?xf32>
      gpu.return
    }
  }
  gpu.module @h_1_module {
    func.func private @helper(%x: f32) -> f32 {
      %y = arith.mulf %x, %x : f32
      return %y : f32
    }
    gpu.func @h_1(%a: memref<?xf32>) kernel attributes {self = @h_1_module::@h_1} {
      %c0 = arith.constant 0 : index
      %x = memref.load %a[%c0] : memref<?xf32>
      %y = func.call @helper(%x) : (f32) -> f32
      memref.store %y, %a[%c0] : memref<?xf32>
      gpu.return
    }
  }
  func.func @f(%a: memref<?xf32>) {
    %c1 = arith.constant 1 : index
    gpu.launch_func @h_0_module::@h_0 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<?xf32>)
    gpu.launch_func @h_1_module::@h_1 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<?xf32>)
    return
  }
}

// -----

// A reference to a symbol that the copy does not hold (an error the
// verifier of its user would report) keeps the copy: nothing is left
// dangling by the merge.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK:       gpu.module @d_0_module
// CHECK:       gpu.module @d_1_module
// CHECK:       func.func @f() attributes {unisparse.ref = @d_1_module::@missing}
// CHECK:       gpu.launch_func @d_0_module::@d_0
// CHECK-NEXT:  gpu.launch_func @d_0_module::@d_0
module attributes {gpu.container_module} {
  gpu.module @d_0_module {
    gpu.func @d_0() kernel {
      gpu.return
    }
  }
  gpu.module @d_1_module {
    gpu.func @d_1() kernel {
      gpu.return
    }
  }
  func.func @f() attributes {unisparse.ref = @d_1_module::@missing} {
    %c1 = arith.constant 1 : index
    gpu.launch_func @d_0_module::@d_0 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @d_1_module::@d_1 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    return
  }
}

// -----

// Outlining names kernels after their function (`@f_kernel`) and makes only
// the modules unique, so a kernel's name can spell another module's: a
// launch of @g_kernel_1::@f_kernel_0 is not a reference to the module
// @f_kernel_0, which merges into @f_kernel.
// CHECK-LABEL: module attributes {gpu.container_module}
// CHECK:       gpu.module @f_kernel
// CHECK:       gpu.module @g_kernel_1
// CHECK-NOT:   gpu.module @f_kernel_0
// CHECK:       func.func @f
// CHECK:         gpu.launch_func @f_kernel::@f_kernel
// CHECK-NEXT:    gpu.launch_func @f_kernel::@f_kernel
// CHECK-NEXT:    gpu.launch_func @g_kernel_1::@f_kernel_0
module attributes {gpu.container_module} {
  gpu.module @f_kernel {
    gpu.func @f_kernel() kernel {
      gpu.return
    }
  }
  gpu.module @g_kernel_1 {
    gpu.func @f_kernel_0(%a: memref<?xf32>) kernel {
      gpu.return
    }
  }
  gpu.module @f_kernel_0 {
    gpu.func @f_kernel() kernel {
      gpu.return
    }
  }
  func.func @f(%a: memref<?xf32>) {
    %c1 = arith.constant 1 : index
    gpu.launch_func @f_kernel::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @f_kernel_0::@f_kernel blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1)
    gpu.launch_func @g_kernel_1::@f_kernel_0 blocks in (%c1, %c1, %c1) threads in (%c1, %c1, %c1) args(%a : memref<?xf32>)
    return
  }
}
