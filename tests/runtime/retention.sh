#!/bin/sh
# An actor's [chain] section from the outside: `theater run` of a counter
# whose manifest keeps 5 events' data, then `theater chain prune` (its own
# policy, then explicit limits, with compaction); the chain still verifies
# end to end, the newest events keep their data, replay refuses clearly.
# Also the prune command's usage and errors.
#   sh tests/runtime/retention.sh BUILD_DIR
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

T=$(mktemp -d /tmp/theater-ret-XXXXXX)
export THEATER_HOME="$T/home"
trap 'rm -rf "$T"' EXIT
wat2wasm tests/runtime/actors/counter.wat -o "$T/counter.wasm" || { echo "wat2wasm failed"; exit 1; }
cat >"$T/counter.toml" <<TOML
name = "counter"
version = "0.1.0"
component = "counter.wasm"
[[handler]]
type = "runtime"
[chain]
durability = "batch"
batch_ms = 5
retain_events = 5
TOML
printf 'name = "x"\nversion = "1"\ncomponent = "counter.wasm"\n[chain]\nretain_age = "3 weeks"\n' >"$T/bad.toml"

err=$("$B" run "$T/bad.toml" 2>&1 >/dev/null)
echo "$err" | grep -q "bad.toml:5:14: chain.retain_age must be a positive duration" &&
	ok "a bad [chain] key is named with file:line:column" || no "bad manifest: $err"

set -- --timeout 600000
i=0
while [ $i -lt 20 ]; do set -- "$@" --send +; i=$((i + 1)); done
out=$("$B" run "$T/counter.toml" "$@" --request '?' 2>&1)
rc=$?
[ "$rc" -eq 0 ] && ok "counter with [chain] retention runs (exit 0)" || no "run: exit $rc: $out"
echo "$out" | grep -q "reply: 0x1400000000000000" && ok "it counted 20 sends" || no "reply: $out"

id=$("$B" chain ls | awk -F'\t' '$1 != "runtime" { print $1 }')
[ -n "$id" ] && ok "the actor's chain is on disk" || no "no actor chain: $("$B" chain ls)"
n=$("$B" chain ls | awk -F'\t' -v id="$id" '$1 == id { print $2 }')
dur=$("$B" chain ls | awk -F'\t' -v id="$id" '$1 == id { print $4 }')
[ "$dur" = batch ] && ok "the chain has the manifest's durability (batch)" || no "durability $dur"

out=$("$B" chain prune "$id" --json)
rc=$?
echo "$out" | grep -q "\"pruned_below\":$((n - 5))," && [ "$rc" -eq 0 ] &&
	ok "prune without limits applies the manifest's retain_events = 5" || no "prune: rc $rc $out"
expect_rc 0 "the pruned chain verifies end to end" "$B" chain verify "$id"
expect_rc 0 "the whole store verifies" "$B" chain verify
shown=$("$B" chain show "$id" --json)
p=$(echo "$shown" | grep -c '"pruned":true')
k=$(echo "$shown" | grep -c '"pruned":false')
[ "$p" -eq $((n - 5)) ] && [ "$k" -eq 5 ] && ok "$p old events pruned, the newest 5 keep their data" ||
	no "pruned $p kept $k of $n"
err=$("$B" replay "$id" 2>&1)
rc=$?
[ "$rc" -eq 1 ] && echo "$err" | grep -q "pruned" && ok "replay refuses a pruned chain clearly (exit 1)" ||
	no "replay: rc $rc $err"

# Explicit limits, by hand; big events so that compaction has a sealed
# segment to rewrite (segments roll at 64 MiB).
"$B" chain append big --count 70 --size 1000000 --durability batch >/dev/null
before=$(du -sk "$THEATER_HOME/chains" | cut -f1)
out=$("$B" chain prune big --keep 5 2>&1)
echo "$out" | grep -q "pruned 65 " && ok "--keep 5 prunes 65 of 70" || no "keep: $out"
after=$(du -sk "$THEATER_HOME/chains" | cut -f1)
[ "$after" -lt $((before / 4)) ] && ok "compaction reclaimed the space (${before}k -> ${after}k)" ||
	no "space ${before}k -> ${after}k: $out"
out=$("$B" chain verify big --json)
echo "$out" | grep -q '"ok":true' && echo "$out" | grep -q '"pruned":65' &&
	ok "verify after compaction: ok, 65 pruned stubs" || no "verify: $out"
"$B" chain append small --count 10 --data 0123456789 --durability batch >/dev/null
out=$("$B" chain prune small --max-bytes 35 --json)
echo "$out" | grep -q '"pruned_below":7,"pruned":7' && ok "--max-bytes 35 keeps the newest 3 of 10-byte events" ||
	no "max-bytes: $out"
out=$("$B" chain prune small --older-than 1h --json)
echo "$out" | grep -q '"pruned":0' && ok "--older-than 1h prunes nothing new" || no "older-than 1h: $out"
out=$("$B" chain prune small --older-than 0s --no-compact --json)
echo "$out" | grep -q '"pruned_below":10,"pruned":3' && ok "--older-than 0s prunes the rest" || no "older-than 0s: $out"
expect_rc 0 "everything still verifies" "$B" chain verify

expect_rc 0 "prune --help" "$B" chain prune --help
expect_rc 2 "prune without a chain" "$B" chain prune
expect_rc 2 "prune --keep x" "$B" chain prune small --keep x
expect_rc 2 "prune --older-than 3 weeks" "$B" chain prune small --older-than "3 weeks"
expect_rc 2 "prune a chain without a policy, no limits" "$B" chain prune small
expect_rc 1 "prune an unknown chain" "$B" chain prune nope --keep 1

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
