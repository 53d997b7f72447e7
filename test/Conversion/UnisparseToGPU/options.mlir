// RUN: unisparse-opt %s --convert-unisparse-to-gpu="select-threads=48" -verify-diagnostics

// The pass refuses knobs that no kernel can be built from.
// expected-error @+1 {{select-threads must be a power of two in [32, 1024]}}
module {
}
