#!/bin/sh
# `theater chain` from the outside: usage and exit codes, ls/show/verify
# output forms, and a flipped byte reported with chain, seq and offset.
#   sh tests/chain/cli.sh BUILD_DIR
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

export THEATER_HOME=$(mktemp -d /tmp/thx-cli-XXXXXX)
trap 'rm -rf "$THEATER_HOME"' EXIT

expect_rc 0 "chain --help" "$B" chain --help
expect_rc 2 "chain without a command" "$B" chain
expect_rc 2 "unknown subcommand" "$B" chain frobnicate
expect_rc 1 "verify without a store" "$B" chain verify
expect_rc 0 "ls without a store" "$B" chain ls
expect_rc 2 "show without a chain" "$B" chain show
expect_rc 2 "append with a bad durability" "$B" chain append x --durability sometimes

"$B" chain append actor-1 --count 20 --type message.received --data "ping" >/dev/null
"$B" chain append actor-1 --count 5 --type wasm.call --data "call" >/dev/null
"$B" chain append runtime --type actor.created --actor actor-1 >/dev/null

out=$("$B" chain ls)
echo "$out" | grep -q "^actor-1	25	" && ok "ls lists actor-1 with 25 events" || no "ls: $out"
n=$("$B" chain show actor-1 --type wasm.call | wc -l)
[ "$n" -eq 5 ] && ok "show --type filters (5 lines)" || no "show --type gave $n lines"
n=$("$B" chain show actor-1 --since 1h --limit 7 | wc -l)
[ "$n" -eq 7 ] && ok "show --since --limit" || no "show --since --limit gave $n"
n=$("$B" chain show actor-1 --since 2099-01-01 | wc -l)
[ "$n" -eq 0 ] && ok "show --since in the future is empty" || no "future gave $n"
expect_rc 2 "show --limit -3 is refused" "$B" chain show actor-1 --limit -3
for w in export import prove check-proof; do
	"$B" chain --help | grep -q "^  $w " && ok "chain --help lists $w" || no "chain --help lacks $w"
done
expect_rc 2 "show with a bad time" "$B" chain show actor-1 --since yesterday-ish
expect_rc 1 "show of an unknown chain" "$B" chain show nobody
json=$("$B" chain show actor-1 --json --limit 2)
if command -v python3 >/dev/null 2>&1; then
	echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["chain"]=="actor-1" and len(d["events"])==2 and d["events"][1]["parent"]==d["events"][0]["hash"]' &&
		ok "show --json is one JSON document with linked events" || no "show --json: $json"
	"$B" chain verify --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ok"] and d["events"]==26' &&
		ok "verify --json" || no "verify --json"
fi
out=$("$B" chain verify)
[ $? -eq 0 ] && echo "$out" | grep -q "^ok: 2 chains, 26 events" && ok "verify: $out" || no "verify: $out"

# flip one byte inside the data of actor-1's event 7
seg=$THEATER_HOME/chains/seg-00000001.0.log
off=$(python3 - "$seg" <<'PY'
import sys, struct
d = open(sys.argv[1], 'rb').read()
pos, hits = 32, []
while pos + 16 <= len(d):
    n = struct.unpack_from('<I', d, pos + 4)[0]
    if d[pos + 8] == 2:
        hits.append(pos)
    pos += 16 + n
print(hits[7])
PY
)
python3 - "$seg" "$off" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
d = bytearray(open(p, 'rb').read())
d[off + 16 + 4 + 32 + 10] ^= 0x01   # inside the actor id in the CBOR
open(p, 'wb').write(d)
PY
out=$("$B" chain verify)
rc=$?
if [ "$rc" -eq 1 ] && echo "$out" | grep -q "chain 'actor-1' seq 7" && echo "$out" | grep -q "offset $off"; then
	ok "flipped byte reported: $(echo "$out" | head -n 1)"
else
	no "flipped byte: rc $rc, $out (offset $off)"
fi
n=$("$B" chain show actor-1 | grep -vc damaged)
[ "$n" -eq 24 ] && ok "the other 24 events of the chain still readable" || no "read around damage: $n"
"$B" chain show actor-1 | grep -q "^7	.*damaged" && ok "the damaged event is marked in show" || no "damaged not marked"
"$B" chain show runtime | grep -q actor.created && ok "other chains still readable" || no "other chain"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
