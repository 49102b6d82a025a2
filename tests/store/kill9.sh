#!/bin/sh
# kill9.sh - crash safety: a writer doing heavy puts (and labels) is killed
# with SIGKILL at random moments, 20 times; its puts are 0.2-1.6 MB, and
# every third one 4-12 MB, so kills land while packs are being written
# (several 4 MiB buffers, O_DIRECT), synced and renamed. Afterwards
# `verify` passes (no torn or partial object or pack is visible under
# objects/ or packs/), every put whose hash
# the writer had printed (acknowledged) is present with the right bytes,
# and GC removes the leftover temporary files.
#   sh tests/store/kill9.sh BUILD_DIR
. "$(dirname "$0")/testlib.sh.in"
cleanup() { rm -rf "$THEATER_HOME"; }
trap cleanup EXIT
W=$THEATER_HOME/work
mkdir -p "$W"
ROUNDS=${ROUNDS:-20}

# The writer: makes a new file, puts it, records "HASH FILE" only once the
# put has printed the hash, labels it, and goes on.
cat >"$W/writer.sh" <<'EOW'
T=$1 W=$2 r=$3
i=0
while :; do
	i=$((i + 1))
	f=$W/in.$r.$i
	size=$(( ($(od -An -N2 -tu2 /dev/urandom) % 8 + 1) * 196608 + i ))
	[ $((i % 3)) -eq 0 ] && size=$(( size * 8 ))
	head -c "$size" /dev/urandom >"$f"
	h=$("$T" store put "$f") || exit 1
	echo "$h $f" >>"$W/acked"
	"$T" store label "k$r-$i" "$h" || exit 1
done
EOW

r=0
while [ "$r" -lt "$ROUNDS" ]; do
	r=$((r + 1))
	sh "$W/writer.sh" "$T" "$W" "$r" &
	wpid=$!
	# 0.1 .. 0.7 s: long enough for a few puts, random within them.
	ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 600 + 100 ))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kids=$(ps -o pid= --ppid "$wpid" 2>/dev/null)
	kill -9 "$wpid" $kids 2>/dev/null
	wait "$wpid" 2>/dev/null
done

acked=$(grep -cE '^[0-9a-f]{64} ' "$W/acked" 2>/dev/null || echo 0)
check "writer acknowledged puts ($acked over $ROUNDS kills)" [ "$acked" -gt "$ROUNDS" ]
"$T" store verify >"$W/verify" 2>&1
check "verify passes after $ROUNDS kills" [ $? -eq 0 ]
grep BAD "$W/verify" | head -n 5

missing=0
grep -E '^[0-9a-f]{64} ' "$W/acked" | while read -r h f; do
	if ! "$T" store get "$h" | cmp -s - "$f"; then
		echo "acknowledged $h ($f) is missing or wrong"
		echo x >>"$W/missing"
	fi
done
[ -f "$W/missing" ] && missing=$(wc -l <"$W/missing")
check "every acknowledged put is present and intact" [ "$missing" -eq 0 ]

# Interrupted writes leave temporaries only in tmp/, never under objects/.
partial=$(find "$S/objects" -type f -exec sha256sum {} + |
	awk '{ n = split($2, a, "/"); if ($1 != a[n-1] a[n]) print $2 }' | wc -l)
check "no object file differs from its name (sha256sum)" [ "$partial" -eq 0 ]
echo "# $(find "$S/tmp" -name '*.pack' | wc -l) partial packs left in tmp/ by the kills"
npacks=$(find "$S/packs" -name '*.pack' | wc -l)
check "the puts wrote packs ($npacks)" [ "$npacks" -gt 0 ]
# GC killed at random moments: unlabel every other put, then start
# `gc --grace 0` and kill it, 10 times. Manifests go before their chunks,
# so whatever the moment, verify must still pass.
n=0
for l in $("$T" store ls | cut -d' ' -f1); do
	n=$((n + 1))
	[ $((n % 2)) -eq 0 ] && "$T" store rm-label "$l"
done
k=0
while [ "$k" -lt 10 ]; do
	k=$((k + 1))
	"$T" store gc --grace 0 >/dev/null 2>&1 &
	gpid=$!
	ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 60 ))
	sleep "$(printf '0.%03d' "$ms")"
	kill -9 "$gpid" 2>/dev/null
	wait "$gpid" 2>/dev/null
done
"$T" store verify >"$W/verify2" 2>&1
check "verify passes after 10 killed GCs" [ $? -eq 0 ]
grep BAD "$W/verify2" | head -n 5
echo "# $(find "$S/tmp" -type f | wc -l) temporary files left by the kills"
"$T" store gc >"$W/gc" 2>&1
check "gc runs after the kills" [ $? -eq 0 ]
check "no temporary files remain after gc" \
	[ "$(find "$S/tmp" -type f | wc -l)" -eq 0 ]
"$T" store verify >/dev/null 2>&1
check "verify passes after gc" [ $? -eq 0 ]
finish
