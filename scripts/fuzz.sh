#!/usr/bin/env bash
# The fuzz smoke test (CI runs it for a minute):
#   scripts/fuzz.sh [SECONDS]        default 60
# Builds unisparse-fuzz (tools/unisparse-fuzz: parse -> verify -> decompose ->
# canonicalize -> unisparse-to-cpu) with clang-22, the project's sources
# instrumented with ASan + UBSan and libFuzzer coverage (libMLIR.so is not),
# in ./build-fuzz; seeds a corpus with every lit test input (split at
# `// -----`); fuzzes for SECONDS with test/Fuzz/unisparse.dict. Any crash,
# sanitizer report, timeout or out-of-memory fails the script, and the input
# that caused it is left in build-fuzz/ (crash-*, timeout-*, oom-*).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-60}
LLVM=/usr/lib/llvm-22
B=${UNISPARSE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
say() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }

if [ ! -f "$B/build.ninja" ]; then
  say "configuring $B (ASan + UBSan + libFuzzer coverage)"
  cmake -G Ninja -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=$LLVM/lib/cmake/mlir -DLLVM_EXTERNAL_LIT=$LLVM/bin/lit \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 -DLLVM_USE_LINKER=lld \
    -DMLIR_LINK_MLIR_DYLIB=ON -DUNISPARSE_ENABLE_FUZZER=ON \
    -DLLVM_USE_SANITIZER="Address;Undefined" -DLLVM_USE_SANITIZE_COVERAGE=ON \
    -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
fi
say "building unisparse-fuzz"
ninja -C "$B" -j"${UNISPARSE_JOBS:-$(nproc)}" unisparse-fuzz | tail -n 1

CORPUS="$B/fuzz-corpus"
mkdir -p "$CORPUS"
python3 - "$ROOT/test" "$CORPUS" <<'PY'
import hashlib, pathlib, sys
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
n = 0
for f in sorted(src.rglob("*.mlir")):
    for part in f.read_text().split("// -----"):
        body = "\n".join(l for l in part.splitlines() if not l.lstrip().startswith("//"))
        if body.strip():
            (out / hashlib.sha1(body.encode()).hexdigest()).write_text(body)
            n += 1
print(f"[fuzz] {n} seed inputs from {src}")
PY

say "fuzzing for ${SECS}s"
cd "$B"
# The context is leaked on purpose (one per run); UBSan findings are fatal.
# allow_user_poisoning=0: llvm::BumpPtrAllocator poisons its slabs when the
# code using it is built with ASan, and the uninstrumented libMLIR.so then
# allocates from the same (uniquer) allocator without unpoisoning, which
# ASan reports as use-after-poison; real heap errors are still caught.
ASAN_OPTIONS=detect_leaks=0:allow_user_poisoning=0 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ./bin/unisparse-fuzz -max_total_time="$SECS" -timeout=30 -rss_limit_mb=4096 \
    -dict="$ROOT/test/Fuzz/unisparse.dict" -print_final_stats=1 "$CORPUS" > "$B/fuzz.log" 2>&1 \
  || { grep -v '^INFO\|^#[0-9]*\s*\(NEW\|REDUCE\|pulse\|INITED\)' "$B/fuzz.log" | tail -n 80; exit 1; }
tail -n 6 "$B/fuzz.log"
say "no crash in ${SECS}s"
