#!/bin/sh
# `theater replay` and `theater chain export|import|prove|check-proof` from
# the outside: an actor run with `theater run`, replayed (text and JSON);
# another build of it diverges with exit 1 and an explanation; export ->
# import into a fresh home -> verify -> replay; malformed imports; proofs
# checked against the right and a wrong block hash.
#   sh tests/replay/cli.sh BUILD_DIR
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

T=$(mktemp -d /tmp/threplay-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
export THEATER_HOME=$T/home
wat2wasm tests/runtime/actors/counter.wat -o "$T/counter.wasm" || exit 1
sed 's/"log line"/"LOG line"/' tests/runtime/actors/counter.wat > "$T/v2.wat"
wat2wasm "$T/v2.wat" -o "$T/v2.wasm" || exit 1
printf 'name = "c"\nversion = "1"\nsave_chain = true\ncomponent = "counter.wasm"\n[[handler]]\ntype = "runtime"\n' > "$T/m.toml"

expect_rc 0 "replay --help" "$B" replay --help
expect_rc 2 "replay without a chain" "$B" replay
expect_rc 0 "chain export --help" "$B" chain export --help

"$B" run "$T/m.toml" --send + --send l --send + --send l --send + >/dev/null 2>&1
ID=$("$B" chain ls | awk '$1 != "runtime" {print $1}' | head -1)
[ -n "$ID" ] && ok "theater run recorded an actor chain" || no "no actor chain"

out=$("$B" replay "$ID")
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "replayed 23 events .*(6 export calls, 3 host calls" \
	&& ok "replay matches: $out" || no "replay (exit $rc): $out"
out=$("$B" replay "$ID" --json)
echo "$out" | grep -q '"ok": true, "events": 23' && ok "replay --json" || no "replay --json: $out"
out=$("$B" replay "$ID" --until 7)
echo "$out" | grep -q "replayed 8 events" && ok "replay --until 7" || no "replay --until: $out"
expect_rc 1 "replay of an unknown chain" "$B" replay no-such-actor

out=$("$B" replay "$ID" --component "$T/v2.wasm")
rc=$?
LOGSEQ=$("$B" chain show "$ID" --type host.theater:simple/runtime.log | sed -n 2p | cut -f1)
[ $rc -eq 1 ] && echo "$out" | grep -q "DIVERGED at event $LOGSEQ (host.theater:simple/runtime.log)" \
	&& echo "$out" | grep -q 'expected: theater:simple/runtime.log(\["log line"\])' \
	&& echo "$out" | grep -q 'actual:   theater:simple/runtime.log(\["LOG line"\])' \
	&& echo "$out" | grep -q "last matching step: event" \
	&& ok "another build diverges at event $LOGSEQ, explained" || no "divergence (exit $rc, log at $LOGSEQ): $out"
H=$("$B" store put "$T/v2.wasm" | awk '{print $1}')
out=$("$B" replay "$ID" --component "$H")
[ $? -eq 1 ] && echo "$out" | grep -q "DIVERGED at event $LOGSEQ" \
	&& ok "--component by Store hash" || no "--component $H: $out"
out=$("$B" replay "$ID" --component "$T/v2.wasm" --json)
echo "$out" | grep -q "\"divergence\": {\"seq\": $LOGSEQ" && ok "divergence in JSON" || no "json divergence: $out"

"$B" chain export "$ID" > "$T/x.thx"
[ $? -eq 0 ] && [ -s "$T/x.thx" ] && ok "export" || no "export"
out=$(THEATER_HOME=$T/h2 "$B" chain import "$T/x.thx")
echo "$out" | grep -q "imported chain $ID: 23 events, 1 objects" && ok "import into a fresh home" || no "import: $out"
expect_rc 0 "imported chain verifies" env THEATER_HOME=$T/h2 "$B" chain verify "$ID"
out=$(THEATER_HOME=$T/h2 "$B" replay "$ID")
echo "$out" | grep -q "replayed 23 events" && ok "imported chain replays" || no "replay after import: $out"
expect_rc 1 "a second import is refused" env THEATER_HOME=$T/h2 "$B" chain import "$T/x.thx"

head -c 300 "$T/x.thx" > "$T/short.thx"
out=$(THEATER_HOME=$T/h3 "$B" chain import "$T/short.thx" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "byte [0-9]*:" && ok "truncated import: $out" || no "truncated: $out"
echo "not an export" > "$T/bad.thx"
out=$(THEATER_HOME=$T/h3 "$B" chain import "$T/bad.thx" 2>&1)
[ $? -eq 1 ] && echo "$out" | grep -q "byte 0: not a Theater chain export" && ok "garbage import" || no "garbage: $out"

expect_rc 1 "prove in an open block" "$B" chain prove "$ID" 3
"$B" chain prove "$ID" 3 --seal > "$T/p.hex"
[ $? -eq 0 ] && ok "prove --seal" || no "prove --seal"
BH=$("$B" chain prove "$ID" 3 --json | sed -E 's/.*"block": \{[^}]*"hash": "([0-9a-f]{64})".*/\1/')
out=$("$B" chain check-proof "$T/p.hex" --block "$BH")
[ $? -eq 0 ] && echo "$out" | grep -q "^ok: event 3 of chain $ID" && ok "check-proof against the block hash" || no "check-proof: $out"
WRONG=$(echo "$BH" | tr '0-9a-f' '1-9a-f0')
out=$("$B" chain check-proof "$T/p.hex" --block "$WRONG")
[ $? -eq 1 ] && echo "$out" | grep -q INVALID && ok "check-proof against a wrong block hash" || no "wrong block: $out"
sed 's/^\(.\{200\}\)./\1f/' "$T/p.hex" > "$T/p2.hex"
cmp -s "$T/p.hex" "$T/p2.hex" && sed 's/^\(.\{200\}\)./\10/' "$T/p.hex" > "$T/p2.hex"
expect_rc 1 "check-proof of an altered proof" "$B" chain check-proof "$T/p2.hex" --block "$BH"
expect_rc 1 "check-proof of non-hex" "$B" chain check-proof "$T/bad.thx"

# theater run --resume (docs/replay.md; the crash itself: test_resume.c).
expect_rc 2 "run --durability with a bad value" "$B" run "$T/m.toml" --durability sometimes
out=$("$B" run --resume 00000000-0000-4000-8000-000000000000 2>&1)
rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "no chain" && ok "resume of an unknown chain refused (exit 1)" ||
	no "resume unknown (exit $rc): $out"
n0=$("$B" chain ls | awk -v c="$ID" '$1 == c {print $2}')
out=$("$B" run --resume "$ID" --durability always --send + --request r 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^actor $ID resumed after event $((n0 - 1)): 0 messages redelivered" &&
	echo "$out" | grep -q 'actor.resumed' &&
	ok "resume after a clean stop continues the chain" || no "resume (exit $rc): $out"
"$B" replay "$ID" >/dev/null && ok "the resumed chain replays" || no "resumed chain does not replay"
# A runtime whose chains live in memory leaves this on-disk chain on disk
# (the events it adds are still there when the process has ended).
n1=$("$B" chain ls | awk -v c="$ID" '$1 == c {print $2}')
"$B" run --resume "$ID" --durability none --send + >/dev/null 2>&1 &&
	[ "$("$B" chain ls | awk -v c="$ID" '$1 == c {print $2}')" -gt "$n1" ] &&
	"$B" replay "$ID" >/dev/null && ok "resume under --durability none keeps the chain on disk" ||
	no "resume under --durability none"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
