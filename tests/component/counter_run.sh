#!/bin/sh
# counter_run.sh - black-box: the counter example, built with the C SDK
# recipe and packaged by jco, runs under `theater run` (component form and
# core-module form) and counts the messages sent to it.
#   sh tests/component/counter_run.sh BUILD_DIR
BUILD=${1:-build}
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok $1"; }
bad() { failed=$((failed + 1)); echo "not ok $1"; }

OUT="$BUILD/test-component-sh"
HOME_DIR=$(mktemp -d)
trap 'rm -rf "$HOME_DIR"' EXIT
if sh sdk/c/build.sh examples/counter/counter.c "$OUT" >/dev/null; then
	ok "counter builds (clang, wasm-ld, wasi-libc, jco)"
else
	bad "counter builds (clang, wasm-ld, wasi-libc, jco)"
fi

for form in component core; do
	sed "s|^component = .*|component = \"$(pwd)/$OUT/counter.$form.wasm\"|" \
		examples/counter/manifest.toml >"$HOME_DIR/counter-$form.toml"
	log="$HOME_DIR/run-$form.log"
	THEATER_HOME="$HOME_DIR/home" "$BUILD/theater" run "$HOME_DIR/counter-$form.toml" \
		--send tick --send tock --send tack >"$log" 2>&1
	rc=$?
	if [ $rc -eq 0 ] && grep -q "runtime.log count = 3" "$log" &&
		grep -q "runtime.log counter .* starting" "$log"; then
		ok "theater run counter ($form form) counts 3 messages"
	else
		bad "theater run counter ($form form) counts 3 messages (exit $rc)"
		sed 's/^/  /' "$log" | tail -n 20
	fi
done

echo "counter_run.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
