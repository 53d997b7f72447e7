#!/usr/bin/env bash
# Run HERE (where LLVM is): compiles every configuration of configs.py with
# unisparse-compile into .device/aot/ (git-ignored), which the device run
# carries. With --runtime, also builds the runtime with CUDA here (nvcc) into
# .device/rt/ (the library and its test binaries), so the GPU machine need
# not build it (run_estimation.sh uses it when present; run.sh builds its own).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device/aot
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
if [ "${1:-}" = --runtime ]; then
  RT_BUILD=${UNISPARSE_RT_CUDA_BUILD:-$PWD/build-rt-cuda}
  cmake -S runtime -B "$RT_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNISPARSE_RUNTIME_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  ninja -C "$RT_BUILD" | tail -n 1
  mkdir -p .device/rt
  cp "$RT_BUILD/libunisparse_runtime.so" "$RT_BUILD"/bin/unisparse_runtime_*tests .device/rt/
fi
python3 scripts/gpu/compile_all.py --out .device/aot --build "${UNISPARSE_BUILD_DIR:-$PWD/build}"
git rev-parse --short HEAD > .device/aot/COMMIT
