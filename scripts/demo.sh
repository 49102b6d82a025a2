#!/bin/sh
# The README's main command: a tour of the whole system on the embedded
# default - the engine, an actor and its Event Chain, a contained failure,
# replay and export/import, supervision, and the content-addressed Store.
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
"$T" run "$BUILD/demo/counter.toml" --send + --send l --request '?' | tee "$BUILD/demo/run.out"
COUNTER=$(sed -n 's/^actor \([0-9a-f-]*\) started$/\1/p' "$BUILD/demo/run.out")
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

# Replay: the counter's run re-executed from its chain, every host call
# answered from the recording and every step compared with it.
echo "== theater replay $COUNTER   (re-run from the chain, checked step by step)"
"$T" replay "$COUNTER"

# The same chain exported as one self-contained file and imported into a
# fresh home elsewhere, where it verifies and replays.
echo "== theater chain export | theater chain import (fresh home) ; verify ; replay"
"$T" chain export "$COUNTER" >"$BUILD/demo/counter.chain"
rm -rf "$BUILD/demo/elsewhere"
THEATER_HOME="$BUILD/demo/elsewhere" "$T" chain import "$BUILD/demo/counter.chain"
THEATER_HOME="$BUILD/demo/elsewhere" "$T" chain verify "$COUNTER"
THEATER_HOME="$BUILD/demo/elsewhere" "$T" replay "$COUNTER"

# Supervision: the same kind of crash, now under a [supervision] policy:
# the runtime restarts the actor with its id and last committed state.
wat2wasm tests/runtime/actors/crasher.wat -o "$BUILD/demo/crasher.wasm"
cat >"$BUILD/demo/phoenix.toml" <<'TOML'
name = "phoenix"
version = "0.1.0"
component = "crasher.wasm"
save_chain = true
[[handler]]
type = "runtime"
[[handler]]
type = "message-server"
[supervision]
restart = "permanent"
backoff_min_ms = 0
TOML
echo "== theater run phoenix.toml --send + --send o --tree   (a crash, a restart, the tree)"
"$T" run "$BUILD/demo/phoenix.toml" --send + --send o --tree

# The content-addressed Store: identical content is stored once.
echo "== theater store put (twice) ; theater store get"
printf 'Theater in C\n' >"$BUILD/demo/hello.txt"
H1=$("$T" store put "$BUILD/demo/hello.txt")
H2=$("$T" store put "$BUILD/demo/hello.txt")
echo "  $H1"
[ "$H1" = "$H2" ] && echo "  same content, same hash: stored once"
"$T" store get "$H1"
echo "== theater chain verify   (every chain of this demo, re-hashed)"
"$T" chain verify
