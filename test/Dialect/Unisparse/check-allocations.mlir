// RUN: unisparse-opt %s --unisparse-check-allocations --split-input-file | FileCheck %s

// Host allocations of a function that returns nothing: the tracked
// allocator, a null check that leaves through the abort block, the scope
// closed at the return.
// CHECK-LABEL: llvm.func @body(
// CHECK-SAME: %[[N:.+]]: i64)
// CHECK: %[[MARK:.+]] = llvm.call @unisparse_rt_alloc_scope_begin() : () -> i64
// CHECK: %[[P:.+]] = llvm.call @unisparse_rt_alloc(%[[N]], %[[ALIGN:.+]]) : (i64, i64) -> !llvm.ptr
// CHECK: %[[NULL:.+]] = llvm.mlir.zero : !llvm.ptr
// CHECK: %[[FAILED:.+]] = llvm.icmp "eq" %[[P]], %[[NULL]] : !llvm.ptr
// CHECK: llvm.cond_br %[[FAILED]], ^[[FAIL:.+]], ^[[NEXT:.+]]
// CHECK: ^[[NEXT]]:
// CHECK: %[[Q:.+]] = llvm.call @unisparse_rt_alloc(%[[N]], %[[ZERO:.+]]) : (i64, i64) -> !llvm.ptr
// CHECK: llvm.icmp "eq" %[[Q]]
// CHECK: llvm.cond_br %{{.+}}, ^[[FAIL]], ^[[NEXT2:.+]]
// CHECK: ^[[NEXT2]]:
// CHECK: llvm.store %{{.+}}, %[[P]]
// CHECK: llvm.call @unisparse_rt_free(%[[Q]]) : (!llvm.ptr) -> ()
// CHECK: llvm.call @unisparse_rt_free(%[[P]]) : (!llvm.ptr) -> ()
// CHECK-NEXT: llvm.call @unisparse_rt_alloc_scope_end(%[[MARK]]) : (i64) -> ()
// CHECK-NEXT: llvm.return
// CHECK: ^[[FAIL]]:
// CHECK-NEXT: llvm.call @unisparse_rt_alloc_scope_abort(%[[MARK]]) : (i64) -> ()
// CHECK-NEXT: llvm.return
llvm.func @aligned_alloc(i64, i64) -> !llvm.ptr
llvm.func @malloc(i64) -> !llvm.ptr
llvm.func @free(!llvm.ptr)
llvm.func @body(%n: i64) {
  %align = llvm.mlir.constant(64 : i64) : i64
  %p = llvm.call @aligned_alloc(%align, %n) : (i64, i64) -> !llvm.ptr
  %q = llvm.call @malloc(%n) : (i64) -> !llvm.ptr
  %x = llvm.mlir.constant(1.0 : f32) : f32
  llvm.store %x, %p : f32, !llvm.ptr
  llvm.call @free(%q) : (!llvm.ptr) -> ()
  llvm.call @free(%p) : (!llvm.ptr) -> ()
  llvm.return
}

// A function that returns a value may hand its buffers out: left alone.
// CHECK-LABEL: llvm.func @returns(
// CHECK-NOT: unisparse_rt
// CHECK: llvm.call @malloc
// CHECK-NOT: unisparse_rt
// CHECK: llvm.return
llvm.func @returns(%n: i64) -> !llvm.ptr {
  %p = llvm.call @malloc(%n) : (i64) -> !llvm.ptr
  llvm.return %p : !llvm.ptr
}

// -----

// Device allocations: checked unless the size is 0 (null then is no error).
// CHECK-LABEL: llvm.func @device(
// CHECK-SAME: %[[N:.+]]: i64, %[[S:.+]]: !llvm.ptr)
// CHECK: %[[MARK:.+]] = llvm.call @unisparse_rt_alloc_scope_begin()
// CHECK: %[[P:.+]] = llvm.call @mgpuMemAlloc(%[[N]], %[[S]], %{{.+}})
// CHECK: %[[ISNULL:.+]] = llvm.icmp "eq" %[[P]], %{{.+}} : !llvm.ptr
// CHECK: %[[NONZERO:.+]] = llvm.icmp "ne" %[[N]], %{{.+}} : i64
// CHECK: %[[FAILED:.+]] = llvm.and %[[ISNULL]], %[[NONZERO]] : i1
// CHECK: llvm.cond_br %[[FAILED]], ^[[FAIL:.+]], ^
// CHECK: llvm.call @mgpuMemFree(%[[P]], %[[S]])
// CHECK: ^[[FAIL]]:
// CHECK-NEXT: llvm.call @unisparse_rt_alloc_scope_abort(%[[MARK]])
llvm.func @mgpuMemAlloc(i64, !llvm.ptr, i8) -> !llvm.ptr
llvm.func @mgpuMemFree(!llvm.ptr, !llvm.ptr)
llvm.func @device(%n: i64, %s: !llvm.ptr) {
  %f = llvm.mlir.constant(0 : i8) : i8
  %p = llvm.call @mgpuMemAlloc(%n, %s, %f) : (i64, !llvm.ptr, i8) -> !llvm.ptr
  llvm.call @mgpuMemFree(%p, %s) : (!llvm.ptr, !llvm.ptr) -> ()
  llvm.return
}
