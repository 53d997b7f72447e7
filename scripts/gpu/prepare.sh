#!/usr/bin/env bash
# Run HERE (where LLVM is): compiles every configuration of configs.py with
# unisparse-compile (CUDA and, for the layout comparison, CPU) into
# .device/aot/, which the device run carries. Also copies nothing else: the
# runtime is built on the GPU machine from source (run.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${UNISPARSE_BUILD_DIR:-$ROOT/build}
OUT=$ROOT/.device/aot
mkdir -p "$OUT"
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
PYTHONPATH="$ROOT/scripts/gpu" python3 - "$BUILD" "$OUT" <<'PY'
import subprocess, sys
import configs
build, out = sys.argv[1], sys.argv[2]
for table in (configs.CHECK, configs.BENCH):
    for name, (cfg, hq, hkv, d, dtype, targets) in table.items():
        for target in targets:
            lib = f"{out}/{configs.lib_name(name, target)}"
            cmd = [f"{build}/bin/unisparse-compile", f"--config={cfg}", f"--heads={hq}",
                   f"--kv-heads={hkv}", f"--head-dim={d}", f"--dtype={dtype}",
                   f"--target={target}", "-o", lib, f"--header={lib[:-3]}.h"]
            subprocess.run(cmd, check=True)
            print("compiled", lib)
PY
ls -la "$OUT"
