#!/bin/sh
# cli.sh - `theater store` round trips and error messages, black-box.
#   sh tests/store/cli.sh BUILD_DIR
. "$(dirname "$0")/testlib.sh.in"
cleanup() { rm -rf "$THEATER_HOME"; }
trap cleanup EXIT
W=$THEATER_HOME/work
mkdir -p "$W"

printf 'hello\n' >"$W/small"
h=$("$T" store put "$W/small")
check "put prints the SHA-256 of small content" \
	[ "$h" = "$(sha256sum "$W/small" | cut -d' ' -f1)" ]
check "get returns small content" sh -c "'$T' store get $h | cmp -s - '$W/small'"

head -c 3000000 /dev/urandom >"$W/big"
hb=$("$T" store put "$W/big")
hs=$("$T" store put - <"$W/big")
check "put of a file and of stdin agree" [ -n "$hb" ] && [ "$hb" = "$hs" ]
check "get returns large content" sh -c "'$T' store get $hb | cmp -s - '$W/big'"
# Objects on disk: loose files plus the entry count in each pack's footer
# (8 bytes at 48 from the end; see src/store/pack.c).
count_objects() {
	n=$(find "$S/objects" -type f | wc -l)
	for p in "$S"/packs/*.pack; do
		[ -f "$p" ] || continue
		sz=$(wc -c <"$p")
		n=$((n + $(od -An -tu8 -j $((sz - 48)) -N8 "$p")))
	done
	echo "$n"
}
n1=$(count_objects)
f1=$(find "$S/objects" "$S/packs" -type f | wc -l)
"$T" store put "$W/big" >/dev/null
n2=$(count_objects)
check "storing the same content again adds no object" [ "$n1" -eq "$n2" ]
check "nor any file" [ "$f1" -eq "$(find "$S/objects" "$S/packs" -type f | wc -l)" ]

"$T" store label greeting "$h"
"$T" store label big "$hb"
check "ls lists labels with hash and size" \
	sh -c "'$T' store ls | grep -qx 'greeting $h 6'"
check "ls --all lists every object" \
	[ "$("$T" store ls --all | wc -l)" -eq "$n2" ]
check "ls --all marks the manifest" \
	sh -c "'$T' store ls --all | grep -q '^$hb 3000000 .* manifest$'"

"$T" store rm-label big
check "rm-label removes the label" sh -c "! '$T' store ls | grep -q '^big '"
out=$("$T" store gc --grace 0)
check "gc removes unlabelled content" \
	sh -c "! '$T' store get $hb >/dev/null 2>&1"
check "gc keeps labelled content" sh -c "'$T' store get $h | cmp -s - '$W/small'"
check "gc reports what it removed" sh -c "echo '$out' | grep -q 'removed [1-9]'"
check "verify passes on a good store" "$T" store verify

id=$("$T" store new)
"$T" store --store "$id" label mine "$h"
check "--store selects a named store" \
	sh -c "'$T' store --store $id ls | grep -q '^mine ' && ! '$T' store ls | grep -q '^mine '"

# Errors: each is a clear message and exit code 1 (2 for usage).
expect() { # expect NAME CODE PATTERN CMD...
	n=$1 code=$2 pat=$3
	shift 3
	"$@" >"$W/out" 2>"$W/err"
	rc=$?
	if [ "$rc" -eq "$code" ] && grep -q -- "$pat" "$W/err"; then
		ok "$n"
	else
		bad "$n (exit $rc: $(cat "$W/err"))"
	fi
}
expect "bad hash (short)" 1 "must be 64 hex digits" "$T" store get 1234
expect "bad hash (not hex)" 1 "not a hex digit" "$T" store get \
	zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz
expect "missing object" 1 "no content" "$T" store get \
	0000000000000000000000000000000000000000000000000000000000000000
expect "label with a path separator" 1 "label must be" \
	"$T" store label ../../etc/passwd "$h"
huge=$(head -c 300 /dev/zero | tr '\0' x)
expect "huge label" 1 "300 bytes long" "$T" store label "$huge" "$h"
expect "label starting with a dot" 1 "label must be" "$T" store label .x "$h"
expect "label of a missing object" 1 "no object" "$T" store label x \
	1111111111111111111111111111111111111111111111111111111111111111
expect "rm-label of a missing label" 1 "no label" "$T" store rm-label nope
expect "put of a missing file" 1 "cannot open" "$T" store put "$W/nope"
expect "put of a directory" 1 "directory" "$T" store put "$W"
expect "unknown store" 1 "no store" "$T" store --store nosuch ls
expect "unknown command" 2 "unknown command" "$T" store frob

# --json (the documents a server answers with) and label compare-and-swap.
check "ls --json is one JSON document with the label" \
	sh -c "'$T' store ls --json | grep -q '{\"labels\":\\[.*{\"hash\":\"$h\",\"name\":\"greeting\",\"size\":6}'"
check "ls --all --json lists objects" sh -c "'$T' store ls --all --json | grep -q '^{\"objects\":\\[{\"hash\":'"
check "put --json gives hash and size" \
	sh -c "'$T' store put --json '$W/small' | grep -qx '{\"hash\":\"$h\",\"size\":6}'"
check "gc --json" sh -c "'$T' store gc --json | grep -q '\"removed\":[0-9]*,\"removed_bytes\"'"
check "verify --json says ok" sh -c "'$T' store verify --json | grep -q '\"ok\":true}$'"
printf 'other\n' >"$W/other"
ho=$("$T" store put "$W/other")
expect "label --expect with a stale hash fails" 1 "changed" \
	"$T" store label greeting "$ho" --expect "$ho"
check "and leaves the label as it was" sh -c "'$T' store ls | grep -qx 'greeting $h 6'"
check "label --expect with the current hash swaps" \
	"$T" store label greeting "$ho" --expect "$h"
check "and moves the label" sh -c "'$T' store ls | grep -q '^greeting $ho '"
expect "label --expect none on an existing label fails" 1 "changed" \
	"$T" store label greeting "$h" --expect none
check "label --expect none creates a new label" "$T" store label fresh "$h" --expect none
expect "--expect on another command is a usage error" 2 "label" \
	"$T" store ls --expect "$h"
expect "missing argument" 2 "takes 1 argument" "$T" store get
expect "bad --grace" 2 "number of seconds" "$T" store gc --grace soon
check "--help exits 0" sh -c "'$T' store --help | grep -q usage"

# Progress bar: drawn only when stderr is a terminal (script(1) gives one).
head -c 20000000 /dev/urandom >"$W/long"
"$T" store put "$W/long" >"$W/out" 2>"$W/err"
check "no progress bar when stderr is not a terminal" [ ! -s "$W/err" ]
if command -v script >/dev/null 2>&1; then
	script -qc "'$T' store put '$W/long'" /dev/null >"$W/tty" 2>&1
	check "progress bar on a terminal reaches 100%" grep -q "100%" "$W/tty"
	check "and the hash is still printed" grep -q "$(cat "$W/out")" "$W/tty"
fi

# A flipped byte: get refuses, verify names the file, the rest is readable.
p=$(object_path "$h")
chmod u+w "$p"
printf 'J' | dd of="$p" bs=1 seek=0 conv=notrunc 2>/dev/null
expect "get of a corrupt object fails" 1 "corrupt" "$T" store get "$h"
"$T" store verify >"$W/verify" 2>&1
rc=$?
check "verify fails on a corrupt object" [ "$rc" -eq 1 ]
check "verify names the corrupt file" grep -q "BAD $p: corrupt" "$W/verify"
h2=$("$T" store put "$W/big")
check "the rest stays readable" sh -c "'$T' store get $h2 | cmp -s - '$W/big'"

finish
