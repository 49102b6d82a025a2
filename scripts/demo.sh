#!/bin/sh
# The README's main command: a tour of what works today.
set -e
BUILD=${1:-build}
T="$BUILD/theater"
echo "== theater --version"
"$T" --version

# A C program compiled to WebAssembly (wasm32-wasi, clang + wasi-libc) and run
# on Theater's own engine; then hostile code stopped by a fuel limit.
mkdir -p "$BUILD/demo"
clang --target=wasm32-wasi -O2 -o "$BUILD/demo/demo.wasm" scripts/demo/demo.c
echo "== theater wasm run demo.wasm hash abc 'Theater in C'   (C -> wasm32-wasi, WASI args/stdout)"
"$T" wasm run "$BUILD/demo/demo.wasm" hash abc "Theater in C"
echo "== theater wasm run --fuel 50000000 demo.wasm spin   (an endless loop)"
rc=0
"$T" wasm run --fuel 50000000 "$BUILD/demo/demo.wasm" spin || rc=$?
if [ "$rc" -eq 134 ]; then
	echo "  stopped after 50 million instructions: a trap (exit $rc), the host is unharmed"
else
	echo "  unexpected exit $rc"
	exit 1
fi
