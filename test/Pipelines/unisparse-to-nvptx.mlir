// REQUIRES: ptxas
// RUN: unisparse-opt %s --unisparse-to-nvptx | FileCheck %s
// RUN: unisparse-opt %s --unisparse-to-nvptx | FileCheck %s --check-prefix=BIN
// The cubins are real sm_90a ELF objects (ptxas accepted the PTX):
// RUN: unisparse-opt %s --unisparse-to-nvptx | %PYTHON %S/Inputs/check_cubins.py sm_90a | FileCheck %s --check-prefix=CUBIN
// Options reach the NVVM target.
// RUN: unisparse-opt %s --pass-pipeline="builtin.module(unisparse-to-nvptx{chip=sm_80 features=+ptx75 threads=256})" | FileCheck %s --check-prefix=SM80

// Estimation kernels in gpu.binary ops holding sm_90a cubins; attention is a
// call of the runtime's CUDA kernel; the host side calls mgpu* functions.
// BIN-DAG: gpu.binary @attention_kernel  [#gpu.object<#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">, properties = {{.+}}, bin = "
// BIN-DAG: llvm.func private @unisparse_rt_block_sparse_attention_cuda_bf16(
// CHECK-LABEL: llvm.func @attention(
// CHECK: llvm.call @mgpuStreamCreate
// CHECK: llvm.call @mgpuMemAlloc
// CHECK: gpu.launch_func <%{{.+}} : !llvm.ptr> @attention_kernel::@attention_kernel blocks in
// The runtime call comes after the estimation kernels are complete (a no-op
// wait when the host set a current stream: same-stream order suffices).
// CHECK: llvm.call @mgpuStreamSynchronize
// CHECK: llvm.call @unisparse_rt_block_sparse_attention_cuda_bf16
// CHECK: llvm.call @mgpuMemFree
// CHECK-LABEL: llvm.func @_mlir_ciface_attention(
// CHECK-NOT: unisparse.
// CHECK-NOT: linalg.
// CHECK-NOT: scf.

// CUBIN: [[N:[1-9][0-9]*]] cubins, all ELF for sm_90a

// SM80: chip = "sm_80", features = "+ptx75"

func.func @attention(%q: memref<?x8x?x64xbf16>, %k: memref<?x2x?x64xbf16>, %v: memref<?x2x?x64xbf16>,
                     %o: memref<?x8x?x64xbf16>, %l: memref<?x8x?xf32>) attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<?x8x?x64xbf16> to tensor<?x8x?x64xbf16>
  %kt = bufferization.to_tensor %k restrict : memref<?x2x?x64xbf16> to tensor<?x2x?x64xbf16>
  %vt = bufferization.to_tensor %v restrict : memref<?x2x?x64xbf16> to tensor<?x2x?x64xbf16>
  %ot = bufferization.to_tensor %o restrict writable : memref<?x8x?x64xbf16> to tensor<?x8x?x64xbf16>
  %lt = bufferization.to_tensor %l restrict writable : memref<?x8x?xf32> to tensor<?x8x?xf32>
  %r:2 = unisparse.attention {config = #unisparse.config<block = 64, c_q = 16, c_k = 16, tau = 0.9>}
      ins(%qt, %kt, %vt : tensor<?x8x?x64xbf16>, tensor<?x2x?x64xbf16>, tensor<?x2x?x64xbf16>)
      outs(%ot, %lt : tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>) -> tensor<?x8x?x64xbf16>, tensor<?x8x?xf32>
  bufferization.materialize_in_destination %r#0 in restrict writable %o : (tensor<?x8x?x64xbf16>, memref<?x8x?x64xbf16>) -> ()
  bufferization.materialize_in_destination %r#1 in restrict writable %l : (tensor<?x8x?xf32>, memref<?x8x?xf32>) -> ()
  return
}
