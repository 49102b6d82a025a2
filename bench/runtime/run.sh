#!/bin/sh
# run.sh - the runtime benchmarks (bench_runtime.c) with the same programs
# on Erlang/OTP side by side (savina.erl), when `erl` is installed.
#   sh bench/runtime/run.sh BUILD_DIR [bench_runtime options]
set -eu
BUILD=${1:-build}
shift || true
OUT=$BUILD/bench/runtime
mkdir -p "$OUT"
wat2wasm tests/runtime/actors/counter.wat -o "$OUT/counter.wasm"
wat2wasm bench/runtime/actors/node.wat -o "$OUT/node.wasm"
ERL=""
if command -v erl >/dev/null 2>&1 && command -v erlc >/dev/null 2>&1; then
	erlc -o "$OUT" bench/runtime/savina.erl
	N=1000000 prev=""
	for a in "$@"; do
		[ "$prev" = --n ] && N=$a
		prev=$a
	done
	# Erlang on the same number of schedulers as this machine has CPUs.
	(cd "$OUT" && erl -noshell -pa . -s savina main "$N" -s init stop) >"$OUT/erlang.txt"
	ERL="--erlang $OUT/erlang.txt"
	echo "erlang/otp: $(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')"
else
	echo "erl not found: no Erlang/OTP reference figures"
fi
# The reference for the page-fault share of the in-memory runs.
if [ -x "$BUILD/bench/runtime/fresh_pages" ]; then
	"$BUILD/bench/runtime/fresh_pages" 256
fi
# shellcheck disable=SC2086
"$BUILD/bench/runtime/bench_runtime" "$OUT" "$@" $ERL
