#!/bin/sh
# examples.sh - black-box: the C examples (echo, kv, crasher, pingpong),
# built with the SDK recipe and jco, run under `theater run`.
#   sh tests/component/examples.sh BUILD_DIR
BUILD=${1:-build}
passed=0
failed=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OUT="$BUILD/test-examples"

check() { # name, log, pattern
	if grep -q -- "$3" "$2"; then
		passed=$((passed + 1))
		echo "ok $1"
	else
		failed=$((failed + 1))
		echo "not ok $1 (no \"$3\")"
		sed 's/^/  /' "$2" | tail -n 15
	fi
}

build() { # src, world
	if ! sh sdk/c/build.sh "$1" "$OUT" ${2:-} >"$TMP/build.log" 2>&1; then
		failed=$((failed + 1))
		echo "not ok build $1"
		sed 's/^/  /' "$TMP/build.log" | tail -n 15
	fi
}

# Manifests point at build/examples/...; rewrite them to this run's output.
manifest() { # example dir, manifest file
	sed "s|^component = \"../../build/examples/[a-z]*/|component = \"$(pwd)/$OUT/|" \
		"examples/$1/$2" >"$TMP/$2"
}

run() { # manifest, args...
	m=$1
	shift
	THEATER_HOME="$TMP/home" "$BUILD/theater" run "$TMP/$m" "$@" >"$TMP/run.log" 2>&1
}

build examples/echo/echo.c
manifest echo manifest.toml
run manifest.toml --request hello --send world
check "echo answers a request" "$TMP/run.log" 'reply: "hello"'
check "echo logs a send" "$TMP/run.log" "runtime.log world"

build examples/kv/kv.c
manifest kv manifest.toml
run manifest.toml --request "put a 42" --request "get a" --request "get b" --quiet
check "kv stores and reads back through the store handler" "$TMP/run.log" 'reply: "42"'
check "kv answers not found" "$TMP/run.log" 'reply: "not found"'

build examples/crasher/crasher.c
manifest crasher manifest.toml
run manifest.toml --send hi --send crash
check "crasher's trap is recorded" "$TMP/run.log" "trapped: unreachable"
check "crasher ran before the trap" "$TMP/run.log" "runtime.log hi"

build examples/pingpong/ping.c supervisor-actor
build examples/pingpong/pong.c
manifest pingpong ping.toml
manifest pingpong pong.toml
run ping.toml --send go --send go
check "ping spawns pong (supervisor)" "$TMP/run.log" "runtime.log spawned pong"
check "ping gets pong's reply" "$TMP/run.log" "runtime.log ping got: pong"

# Regression: a state that is some(empty list) survives handlers that
# replace it (the SDK freed the pointer cabi_realloc returned for size 0).
build tests/component/empty_state.c
cat >"$TMP/empty.toml" <<EOF
name = "empty-state"
version = "0.1.0"
component = "$(pwd)/$OUT/empty_state.component.wasm"
[[handler]]
type = "runtime"
EOF
run empty.toml --send a --send b --send c
check "an empty state survives handlers that replace it" "$TMP/run.log" \
	"empty state kept, 3 handled"

echo "examples.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
