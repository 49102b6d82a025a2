#!/bin/sh
# kill -9 a chain writer in the middle of heavy appends, 20 times. After
# each kill: `theater chain verify` passes and every event the writer
# acknowledged under `always` (it prints "CHAIN SEQ" only after the append
# returned) is in the chain.
#   sh tests/chain/kill9.sh BUILD_DIR
BUILD=${1:-build}
B=$BUILD/theater
ROUNDS=${KILL9_ROUNDS:-20}
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok $1"; }
no() { fail=$((fail + 1)); echo "not ok $1"; }

export THEATER_HOME=$(mktemp -d /tmp/thx-kill9-XXXXXX)
trap 'rm -rf "$THEATER_HOME"' EXIT

i=1
while [ "$i" -le "$ROUNDS" ]; do
	out=$THEATER_HOME/acked.$i
	# odd rounds: 4 threads on 4 chains; even rounds: 4 threads on one chain
	if [ $((i % 2)) -eq 1 ]; then shared=""; else shared="--shared"; fi
	"$B" chain append k9 --threads 4 $shared --count 100000000 --size 256 \
		--durability always >"$out" 2>"$out.err" &
	pid=$!
	# wait until it has acknowledged something, then a little longer
	n=0
	while [ ! -s "$out" ] && [ "$n" -lt 200 ]; do sleep 0.05; n=$((n + 1)); done
	sleep "$(awk -v s="$i" 'BEGIN { srand(s); printf "%.2f", 0.05 + rand() * 0.4 }')"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	if [ ! -s "$out" ]; then
		no "round $i: the writer acknowledged nothing ($(cat "$out.err"))"
		i=$((i + 1))
		continue
	fi
	if "$B" chain verify >"$out.verify" 2>&1; then
		ok "round $i: verify passes after kill -9 ($(wc -l <"$out") acknowledged)"
	else
		no "round $i: verify failed: $(cat "$out.verify")"
	fi
	# every acknowledged seq is below the chain's count
	"$B" chain ls >"$out.ls"
	missing=$(awk 'NR == FNR { count[$1] = $2; next }
		{ if (!($1 in count) || $2 + 0 >= count[$1] + 0) { print; bad++ } }
		END { print bad + 0 }' "$out.ls" "$out" | tail -n 1)
	if [ "$missing" -eq 0 ]; then
		ok "round $i: all acknowledged events present"
	else
		no "round $i: $missing acknowledged events missing"
	fi
	i=$((i + 1))
done
# the store still takes appends afterwards
if "$B" chain append k9-0 --count 3 >/dev/null && "$B" chain verify >/dev/null; then
	ok "appends and verify after all kills"
else
	no "appends after kills"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
