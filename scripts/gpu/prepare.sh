#!/usr/bin/env bash
# Run HERE (where LLVM is): compiles every configuration of configs.py with
# unisparse-compile into .device/aot/ (git-ignored), which the device run
# carries. The runtime itself is built on the GPU machine from source (run.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .device/aot
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
python3 scripts/gpu/compile_all.py --out .device/aot --build "${UNISPARSE_BUILD_DIR:-$PWD/build}"
git rev-parse --short HEAD > .device/aot/COMMIT
