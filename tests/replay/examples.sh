#!/bin/sh
# examples.sh - black-box: replay of every example actor after a scripted
# run. Each of examples/{counter,crasher,echo,kv,pingpong,supervisor} is
# built with the SDK recipe its manifest names (sdk/c/build.sh, component
# form), run by `theater run` with a script of sends and requests (the
# supervisor and ping spawn children), and then every chain the session left
# - children included - is replayed by `theater replay`: it must succeed,
# examine every event of the chain, and re-run as many export calls as the
# chain records (each export.result, plus each call that trapped). The
# crasher's trap is reproduced with the recorded message and backtrace.
# No example handles channels (none exports handle-channel-open), so the
# scripts have none.
#   sh tests/replay/examples.sh BUILD_DIR
BUILD=${1:-build}
B=$BUILD/theater
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $1"; }
no() { fail=$((fail + 1)); echo "not ok $1"; }

T=$(mktemp -d /tmp/threplay-ex-XXXXXX)
trap 'rm -rf "$T"' EXIT
W=$T/wasm

build() { # src [world]
	if sh sdk/c/build.sh "$1" "$W" ${2:-} >"$T/build.log" 2>&1; then
		ok "build $1"
	else
		no "build $1"
		sed 's/^/  /' "$T/build.log" | tail -n 15
	fi
}
build examples/counter/counter.c
build examples/crasher/crasher.c
build examples/echo/echo.c
build examples/kv/kv.c
build examples/pingpong/ping.c supervisor-actor
build examples/pingpong/pong.c
build examples/supervisor/supervisor.c supervisor-actor

# The manifests as shipped, with the component path pointing at this run's
# build and save_chain = true: a chain that is not saved lives in memory
# only and is gone with the `theater run` process (docs/replay.md).
for ex in counter crasher echo kv pingpong supervisor; do
	mkdir -p "$T/$ex"
	for m in examples/$ex/*.toml; do
		sed -e "s|^component = \"../../build/examples/[a-z]*/|component = \"$W/|" \
			-e '/^save_chain/d' -e 's/^version = .*/&\nsave_chain = true/' \
			"$m" >"$T/$ex/$(basename "$m")"
	done
done

# session EX MANIFEST WANT_RC ARGS...: a fresh home, one scripted run.
session() {
	ex=$1; m=$2; want=$3; shift 3
	export THEATER_HOME="$T/home-$ex"
	"$B" run "$T/$ex/$m" "$@" >"$T/$ex.run" 2>&1
	rc=$?
	TOP=$(sed -n 's/^actor \([0-9a-f-]*\) started$/\1/p' "$T/$ex.run")
	if [ "$rc" -eq "$want" ] && [ -n "$TOP" ]; then
		ok "$ex: scripted run (exit $rc)"
	else
		no "$ex: scripted run exit $rc (wanted $want)"
		sed 's/^/  /' "$T/$ex.run" | tail -n 15
	fi
}

jnum() { # key json
	echo "$2" | sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p"
}

# replay_all EX: replay every actor chain of the session's home; sets
# CALLS/HOSTS/EVENTS for the top-level actor and NCHAINS.
replay_all() {
	ex=$1
	NCHAINS=0
	"$B" chain verify >/dev/null 2>&1 && ok "$ex: chain verify" || no "$ex: chain verify"
	for c in $("$B" chain ls | awk '$1 != "runtime" {print $1}'); do
		NCHAINS=$((NCHAINS + 1))
		len=$("$B" chain ls | awk -v c="$c" '$1 == c {print $2}')
		results=$("$B" chain show "$c" --type export.result | wc -l)
		traps=$("$B" chain show "$c" --type actor.failed | grep -c " trapped: ")
		js=$("$B" replay --json "$c")
		rc=$?
		ev=$(jnum events "$js")
		calls=$(jnum calls "$js")
		want=$((results + traps))
		if [ "$rc" -eq 0 ] && echo "$js" | grep -q '"ok": true' &&
		   [ "$ev" = "$len" ] && [ "$calls" = "$want" ]; then
			ok "$ex: replay of ${c%%-*}: $ev of $len events, $calls export calls"
		else
			no "$ex: replay of $c (exit $rc; $len events, $want calls in the chain): $js"
		fi
		if [ "$c" = "$TOP" ]; then
			CALLS=$calls
			HOSTS=$(jnum host_calls "$js")
			EVENTS=$ev
		fi
	done
}

# top EX CALLS HOSTS: the top-level actor re-ran exactly the script.
top() {
	if [ "$CALLS" = "$2" ] && [ "$HOSTS" = "$3" ]; then
		ok "$1: the top actor re-ran init + the script ($2 calls, $3 host calls answered)"
	else
		no "$1: top actor: $CALLS calls, $HOSTS host calls (wanted $2, $3)"
	fi
}

# counter: three sends and a request (its reply is the count so far).
session counter manifest.toml 0 --send a --send b --request '?' --send c
grep -q 'reply: "2"' "$T/counter.run" && ok "counter: reply 2" || no "counter: no reply 2"
replay_all counter
top counter 5 4

# echo: requests and a send.
session echo manifest.toml 0 --request hello --send world --request again
grep -q 'reply: "again"' "$T/echo.run" && ok "echo: replies" || no "echo: no reply"
replay_all echo
top echo 4 1

# kv: puts and gets through the store handler (store.* answered from the
# chain: the replay reads no Store label).
session kv manifest.toml 0 --request "put a 42" --request "get a" --request "get b" \
	--request "put a 43" --request "get a"
grep -q 'reply: "43"' "$T/kv.run" && ok "kv: replies" || no "kv: no reply 43"
replay_all kv
top kv 6 8

# pingpong: ping spawns pong in init and requests "ping" from it per "go".
session pingpong ping.toml 0 --send go --send go
grep -q "ping got: pong" "$T/pingpong.run" && ok "pingpong: played" || no "pingpong: no pong"
replay_all pingpong
[ "$NCHAINS" -eq 2 ] && ok "pingpong: ping and pong replayed" || no "pingpong: $NCHAINS chains"
top pingpong 3 6

# supervisor: two crasher workers, one trapping and one failing, both
# restarted by the policy; messages before and after.
session supervisor manifest.toml 0 --send hello --send crash:0 --send after \
	--send fail:1 --send again
replay_all supervisor
[ "$NCHAINS" -eq 3 ] && ok "supervisor: itself and 2 workers replayed" ||
	no "supervisor: $NCHAINS chains"
n=0
for c in $("$B" chain ls | awk '$1 != "runtime" {print $1}'); do
	[ "$c" = "$TOP" ] && continue
	if "$B" replay "$c" | grep -q "^crash reproduced at event [0-9]*: trap: handle-send trapped: unreachable"; then
		n=$((n + 1))
	fi
done
[ "$n" -eq 1 ] && ok "supervisor: worker 0's trap reproduced across its restart" ||
	no "supervisor: $n workers reproduced a trap"

# crasher: logs, then traps on "crash": the run fails (exit 1), the replay
# reproduces the trap with the recorded message and backtrace.
session crasher manifest.toml 1 --send hi --send there --send crash
replay_all crasher
top crasher 4 2
out=$("$B" replay "$TOP")
rc=$?
fseq=$("$B" chain show "$TOP" --type actor.failed | awk '{print $1}')
if [ "$rc" -eq 0 ] && echo "$out" | grep -q "^crash reproduced at event $fseq: trap: handle-send trapped: unreachable" &&
   echo "$out" | grep -q "^backtrace (the recorded one, reproduced):" &&
   echo "$out" | grep -q "^#0 theater_handle_send (func "; then
	ok "crasher: trap reproduced at event $fseq with the recorded backtrace"
else
	no "crasher: exit $rc: $out"
fi
# ... and another build (the echo example's component) does not pass for it.
"$B" replay "$TOP" --component "$W/echo.component.wasm" >"$T/div.out" 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -q "DIVERGED at event" "$T/div.out" &&
	ok "crasher: another component diverges (exit 1)" ||
	no "crasher: another component: exit $rc: $(cat "$T/div.out")"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
