#!/usr/bin/env bash
# Regenerates docs/generated/ (op, attribute and pass docs) from the ODS files.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
ninja -C "$BUILD" mlir-doc >/dev/null
mkdir -p docs/generated
cp "$BUILD"/docs/Unisparse/*.md docs/generated/
echo "docs/generated/: $(ls docs/generated | tr '\n' ' ')"
