// RUN: unisparse-opt %s --convert-unisparse-to-gpu="key-tile=40" -verify-diagnostics
// RUN: unisparse-opt %s --convert-unisparse-to-gpu="outlier-key-tile=24" -verify-diagnostics

// The pass refuses knobs that no kernel can be built from.
// expected-error @+1 {{warps and ctas must be positive and key-tile and outlier-key-tile positive multiples of 16}}
module {
}
