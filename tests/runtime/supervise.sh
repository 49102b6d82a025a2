#!/bin/sh
# Supervision from the outside: `theater run --tree` on a crashing actor
# with a [supervision] policy restarts it (events printed, the tree shows
# the restart), and without a policy the actor stays failed (exit 1).
#   sh tests/runtime/supervise.sh BUILD_DIR
BUILD=${1:-build}
B=$BUILD/theater
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $1"; }
no() { fail=$((fail + 1)); echo "not ok $1"; }

T=$(mktemp -d /tmp/theater-sv-XXXXXX)
export THEATER_HOME="$T/home"
trap 'rm -rf "$T"' EXIT
wat2wasm tests/runtime/actors/crasher.wat -o "$T/crasher.wasm" || { echo "wat2wasm failed"; exit 1; }
cat >"$T/sup.toml" <<TOML
name = "phoenix"
version = "0.1.0"
component = "crasher.wasm"
[[handler]]
type = "runtime"
[[handler]]
type = "message-server"
[supervision]
restart = "permanent"
backoff_min_ms = 0
TOML
sed -e '/^\[supervision\]/,$d' -e 's/phoenix/mortal/' "$T/sup.toml" >"$T/plain.toml"

out=$("$B" run "$T/sup.toml" --send + --send o --tree 2>&1)
rc=$?
[ "$rc" -eq 0 ] && ok "supervised crash: exit 0" || no "supervised crash: exit $rc"
for ev in actor.failed supervision.notified supervision.decision supervision.restarting \
	actor.restarted supervision.recovered; do
	echo "$out" | grep -q " $ev" && ok "event $ev printed" || no "event $ev missing"
done
echo "$out" | grep -q "phoenix  running  restarts=1  circuit=closed" \
	&& ok "tree shows the restart" || { no "tree shows the restart"; echo "$out" | tail -8; }

out=$("$B" run "$T/plain.toml" --send ! --tree 2>&1)
rc=$?
[ "$rc" -eq 1 ] && ok "unsupervised crash: exit 1" || no "unsupervised crash: exit $rc"
echo "$out" | grep -q "mortal  failed  restarts=0" && ok "tree shows it failed" \
	|| { no "tree shows it failed"; echo "$out" | tail -5; }
echo "$out" | grep -q "supervision.restarting" && no "no restart without a policy" \
	|| ok "no restart without a policy"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
