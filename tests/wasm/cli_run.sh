#!/bin/sh
# Black-box tests of `theater wasm run`: C programs built for wasm32-wasi with
# clang + wasi-libc (tests/wasm/progs/) run through the CLI; checks output,
# exit codes, WASI (args, env, stdio, clocks, random, preopens), --invoke,
# bad files, and hostile programs that must end as traps (exit 134) with the
# host process intact.
#   sh tests/wasm/cli_run.sh BUILD
BUILD=${1:-build}
T="$BUILD/theater"
SRC=tests/wasm/progs
P="$BUILD/tests/wasm/progs"
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$P"

# Build the programs when missing or older than their source.
build() { # name [extra clang args...]
	n=$1
	shift
	if [ ! -f "$P/$n.wasm" ] || [ "$SRC/$n.c" -nt "$P/$n.wasm" ]; then
		clang -O2 "$@" -o "$P/$n.wasm" "$SRC/$n.c" 2>"$tmp/cc" || {
			echo "not ok - build $n.wasm: $(head -n 3 "$tmp/cc")"
			fail=$((fail + 1))
		}
	fi
}
for n in hello echo sys files hostile; do
	build "$n" --target=wasm32-wasi
done
build exports --target=wasm32 -nostdlib -Wl,--no-entry
for n in huge_table huge_memory table_grow; do
	if [ ! -f "$P/$n.wasm" ] || [ "$SRC/$n.wat" -nt "$P/$n.wasm" ]; then
		wat2wasm "$SRC/$n.wat" -o "$P/$n.wasm" 2>"$tmp/cc" || {
			echo "not ok - build $n.wasm: $(head -n 3 "$tmp/cc")"
			fail=$((fail + 1))
		}
	fi
done

# run [stdin-file] -- ARGS...: runs theater, leaving $rc, $tmp/out, $tmp/err.
run() {
	in=/dev/null
	if [ "$1" != -- ]; then
		in=$1
		shift
	fi
	shift
	timeout 120 "$T" "$@" <"$in" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

ok() {
	pass=$((pass + 1))
	echo "ok - $1"
}
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $1"
	echo "    exit $rc; stdout:"
	head -n 8 "$tmp/out" | sed 's/^/      /'
	echo "    stderr:"
	head -n 8 "$tmp/err" | sed 's/^/      /'
}
# expect DESC CODE [out:TEXT|err:TEXT|noout:TEXT]...: exit code and substrings.
expect() {
	desc=$1 code=$2
	shift 2
	good=1
	[ "$rc" -eq "$code" ] || good=0
	for c in "$@"; do
		case "$c" in
		out:*) grep -qF -- "${c#out:}" "$tmp/out" || good=0 ;;
		err:*) grep -qF -- "${c#err:}" "$tmp/err" || good=0 ;;
		noout:*) grep -qF -- "${c#noout:}" "$tmp/out" && good=0 ;;
		esac
	done
	if [ $good -eq 1 ]; then ok "$desc"; else not_ok "$desc (want exit $code, $*)"; fi
}

# ---- WASI commands ----
run -- wasm run --env GREETING=hi "$P/hello.wasm" 7 "two words"
expect "args, env, stdout, stderr, exit code from main" 7 \
	out:argc=3 out:arg1=7 "out:arg2=two words" out:greeting=hi "err:to stderr"
run -- wasm run "$P/hello.wasm"
expect "no args, no env, exit 0" 0 out:argc=1 "out:greeting=(none)"

printf 'abc\nxyz' >"$tmp/in"
run "$tmp/in" -- wasm run "$P/echo.wasm"
expect "stdin through fd_read, exit() through proc_exit" 5 out:ABC out:XYZ "out:[7 bytes]"

run -- wasm run "$P/sys.wasm"
expect "clocks and random" 0 out:realtime_after_2020=1 out:monotonic_ok=1 \
	out:res_ok=1 out:random_ok=1

mkdir -p "$tmp/data"
echo "hello file" >"$tmp/data/in.txt"
echo "secret" >"$tmp/escape.txt"
run -- wasm run --dir "$tmp/data:/data" "$P/files.wasm"
expect "--dir preopen: read, write, no escape" 0 "out:read: hello file" \
	"out:escape: refused" "out:outside: refused"
if [ "$(cat "$tmp/data/out.txt" 2>/dev/null)" = "written by wasm" ]; then
	ok "--dir preopen: file written on the host"
else
	not_ok "--dir preopen: file written on the host"
fi
run -- wasm run "$P/files.wasm"
expect "no preopen: files are unreachable" 1 "out:read failed"

# ---- Hostile programs: traps with the process intact ----
run -- wasm run --fuel 20000000 "$P/hostile.wasm" loop
expect "infinite loop stopped by --fuel" 134 "err:out of fuel"
run -- wasm run "$P/hostile.wasm" recurse
expect "unbounded recursion traps" 134 "err:call stack exhausted" err:recurse
run -- wasm run --max-depth 500 "$P/hostile.wasm" recurse
expect "--max-depth bounds recursion" 134 "err:call stack exhausted"
run -- wasm run "$P/hostile.wasm" stack
expect "C shadow-stack overflow traps" 134 "err:out of bounds memory access"
run -- wasm run --max-pages 64 "$P/hostile.wasm" grow
expect "memory.grow bomb refused at --max-pages" 134 "out:total 64" "err:unreachable"
run -- wasm run --max-pages 64 "$P/hostile.wasm" malloc
expect "malloc bomb refused at --max-pages" 0 "out:malloc refused after"
run -- wasm run "$P/hostile.wasm" oob
expect "out-of-bounds load traps" 134 "err:out of bounds memory access"
run -- wasm run "$P/hostile.wasm" div
expect "division by zero traps with a named backtrace" 134 \
	"err:integer divide by zero" "err:divide"

{ "$T" wasm run "$P/hostile.wasm" flood 2>"$tmp/err"; echo $? >"$tmp/rc"; } | head -n 1 >"$tmp/out"
rc=$(cat "$tmp/rc")
expect "closed stdout: the guest sees EPIPE, the host is not killed" 3 "out:line 0" "err:write failed"
run -- wasm run "$P/huge_table.wasm"
expect "huge table refused at instantiation" 1 "err:exceed the limit"
run -- wasm run --max-pages 16 "$P/huge_memory.wasm"
expect "memory above --max-pages refused" 1 "err:exceed the limit of 16"
run -- wasm run --fuel 5000000 "$P/table_grow.wasm"
expect "table.grow bomb: grows refused, loop ends by fuel" 134 "err:out of fuel"

# ---- --invoke ----
run -- wasm run "$P/exports.wasm" --invoke add 2 3
expect "--invoke i32" 0 out:5
run -- wasm run "$P/exports.wasm" --invoke add -7 0x10
expect "--invoke negative and hex" 0 out:9
run -- wasm run "$P/exports.wasm" --invoke mul64 4294967296 3
expect "--invoke i64" 0 out:12884901888
run -- wasm run "$P/exports.wasm" --invoke hypot 3 4
expect "--invoke f64" 0 out:5
run -- wasm run "$P/exports.wasm" --invoke half 3
expect "--invoke f32" 0 out:1.5
run -- wasm run "$P/exports.wasm" --invoke fib 20
expect "--invoke recursion" 0 out:6765
run -- wasm run --fuel 100000 "$P/exports.wasm" --invoke fib 40
expect "--invoke with --fuel traps" 134 "err:out of fuel"
run -- wasm run "$P/exports.wasm" --invoke add 1
expect "--invoke wrong argument count is a usage error" 2 err:arguments
run -- wasm run "$P/exports.wasm" --invoke add 1 x
expect "--invoke bad argument is a usage error" 2 "err:not a valid i32"
run -- wasm run "$P/exports.wasm" --invoke nosuch
expect "--invoke unknown export" 1 err:nosuch
run -- wasm run "$P/exports.wasm"
expect "no _start: clear error" 1 err:_start

# ---- Bad files: one line naming file, offset and reason ----
run -- wasm run "$tmp/missing.wasm"
expect "missing file" 1 "err:$tmp/missing.wasm"
head -c 200 "$P/hello.wasm" >"$tmp/trunc.wasm"
run -- wasm run "$tmp/trunc.wasm"
expect "truncated module" 1 "err:$tmp/trunc.wasm" err:offset
if [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "truncated module: one line"; else not_ok "truncated module: one line"; fi
echo "this is not wasm" >"$tmp/text.wasm"
run -- wasm run "$tmp/text.wasm"
expect "not a module" 1 "err:$tmp/text.wasm" "err:magic"
run -- wasm validate "$P/hello.wasm"
expect "validate a good module" 0 out:valid
run -- wasm validate "$tmp/trunc.wasm"
expect "validate a truncated module" 1 err:offset

# ---- Usage ----
run -- wasm
expect "no subcommand" 2
run -- wasm run
expect "no file" 2
run -- wasm run --fuel abc "$P/hello.wasm"
expect "bad --fuel" 2
run -- wasm --help
expect "--help" 0 out:usage

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
