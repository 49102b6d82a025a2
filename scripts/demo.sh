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

# An actor: the counter (tests/runtime/actors/counter.wat) run in-process by
# `theater run`, every step recorded in its hash-linked Event Chain; then a
# message that makes it trap: the failure is recorded and contained.
wat2wasm tests/runtime/actors/counter.wat -o "$BUILD/demo/counter.wasm"
cat >"$BUILD/demo/counter.toml" <<'TOML'
name = "counter"
version = "0.1.0"
component = "counter.wasm"
save_chain = true
[[handler]]
type = "runtime"
TOML
export THEATER_HOME="$BUILD/demo/home"
rm -rf "$THEATER_HOME"
echo "== theater run counter.toml --send + --send l --request '?'   (events, then the reply)"
"$T" run "$BUILD/demo/counter.toml" --send + --send l --request '?'
echo "== theater run counter.toml --send '!'   (a trap in a handler)"
rc=0
"$T" run "$BUILD/demo/counter.toml" --send '!' || rc=$?
if [ "$rc" -eq 1 ]; then
	echo "  the actor failed alone (exit $rc); its chain says why"
else
	echo "  unexpected exit $rc"
	exit 1
fi
echo "== theater chain ls ; theater chain verify"
"$T" chain ls
"$T" chain verify
