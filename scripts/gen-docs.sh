#!/usr/bin/env bash
# Regenerates docs/generated/ (op, attribute and pass docs) from the ODS files.
#   scripts/gen-docs.sh           write them
#   scripts/gen-docs.sh --check   fail (with the diff) if they are out of date
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${UNISPARSE_BUILD_DIR:-$PWD/build}
ninja -C "$BUILD" mlir-doc >/dev/null
if [ "${1:-}" = "--check" ]; then
  status=0
  for f in "$BUILD"/docs/Unisparse/*.md; do
    if ! diff -u "docs/generated/$(basename "$f")" "$f"; then
      status=1
    fi
  done
  [ $status = 0 ] || echo "docs/generated/ is out of date: run scripts/gen-docs.sh and commit" >&2
  [ $status = 0 ] && echo "docs/generated/ is up to date"
  exit $status
fi
mkdir -p docs/generated
cp "$BUILD"/docs/Unisparse/*.md docs/generated/
echo "docs/generated/: $(ls docs/generated | tr '\n' ' ')"
