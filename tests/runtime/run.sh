#!/bin/sh
# `theater run` from the outside: usage and exit codes, a counter actor
# receiving sends and a request (events printed, reply shown), a crash
# that fails the actor, manifest errors with file:line:column, and the
# chains it leaves in $THEATER_HOME (checked with `theater chain`).
#   sh tests/runtime/run.sh BUILD_DIR
BUILD=${1:-build}
B=$BUILD/theater
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $1"; }
no() { fail=$((fail + 1)); echo "not ok $1"; }
expect_rc() { # want name cmd...
	want=$1; name=$2; shift 2
	"$@" >/dev/null 2>&1
	rc=$?
	[ "$rc" -eq "$want" ] && ok "$name (exit $rc)" || no "$name: exit $rc, wanted $want"
}

T=$(mktemp -d /tmp/theater-run-XXXXXX)
export THEATER_HOME="$T/home"
trap 'rm -rf "$T"' EXIT
wat2wasm tests/runtime/actors/counter.wat -o "$T/counter.wasm" || { echo "wat2wasm failed"; exit 1; }
cat >"$T/counter.toml" <<TOML
name = "counter"
version = "0.1.0"
component = "counter.wasm"
save_chain = true
[[handler]]
type = "runtime"
TOML
printf 'name = "x"\nversion = "1"\ncomponent = 12\n' >"$T/bad.toml"
printf 'name = "x"\nversion = "1"\ncomponent = "nothing.wasm"\n' >"$T/missing.toml"

expect_rc 0 "run --help" "$B" run --help
expect_rc 2 "run without a manifest" "$B" run
expect_rc 2 "run with an unknown option" "$B" run "$T/counter.toml" --frobnicate
expect_rc 1 "run a manifest that does not exist" "$B" run "$T/none.toml"

out=$("$B" run "$T/counter.toml" --timeout 600000 --send + --send l --send + --request '?' 2>&1)
rc=$?
[ "$rc" -eq 0 ] && ok "counter runs (exit 0)" || no "counter: exit $rc: $out"
echo "$out" | grep -q "reply: 0x0300000000000000" && ok "the request sees the 3 sends" ||
	no "reply: $out"
echo "$out" | grep -q "actor.created counter" && ok "creation printed" || no "no actor.created"
echo "$out" | grep -q "host.theater:simple/runtime.log counter started" &&
	ok "init's log line printed" || no "no log line"
echo "$out" | grep -q "host.theater:simple/runtime.log log line" &&
	ok "a handler's log line printed" || no "no handler log"
n=$(echo "$out" | grep -c " message.received ")
[ "$n" -eq 5 ] && ok "5 arrivals (init, 3 sends, 1 request)" || no "$n arrivals"
echo "$out" | grep -q "message.response" && ok "response recorded" || no "no response"
echo "$out" | grep -q "actor.stopped" && ok "stopped at the end" || no "no actor.stopped"

out=$("$B" run "$T/counter.toml" --timeout 600000 --send '!' 2>&1)
rc=$?
[ "$rc" -eq 1 ] && ok "a crash fails the run (exit 1)" || no "crash: exit $rc"
echo "$out" | grep -q "actor.failed .*unreachable" && ok "the trap is printed" || no "crash: $out"

err=$("$B" run "$T/bad.toml" 2>&1 >/dev/null)
rc=$?
[ "$rc" -eq 1 ] && ok "bad manifest (exit 1)" || no "bad manifest: exit $rc"
echo "$err" | grep -q "bad.toml:3:" && ok "manifest error names file:line" || no "error: $err"

out=$("$B" run "$T/missing.toml" 2>&1)
[ $? -eq 1 ] && ok "missing component (exit 1)" || no "missing component exit"
echo "$out" | grep -q "actor.failed .*nothing.wasm" && ok "missing component recorded" ||
	no "missing: $out"

# save_chain = true: the runs left their chains (two actors, the runtime's).
n=$("$B" chain ls 2>/dev/null | grep -c .)
[ "$n" -ge 3 ] && ok "chains kept in THEATER_HOME ($n)" || no "chain ls: $n"
"$B" chain verify >/dev/null 2>&1 && ok "chains verify" || no "chain verify failed"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
