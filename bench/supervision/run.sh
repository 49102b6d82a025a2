#!/bin/sh
# run.sh - the supervision benchmarks (bench_supervision.c).
#   sh bench/supervision/run.sh BUILD_DIR [bench_supervision options]
set -eu
BUILD=${1:-build}
shift || true
OUT=$BUILD/bench/supervision
mkdir -p "$OUT"
wat2wasm tests/runtime/actors/crasher.wat -o "$OUT/crasher.wasm"
OUT_ABS=$(cd "$OUT" && pwd)
"$BUILD/bench/supervision/bench_supervision" "$OUT_ABS" "$@"
