#!/bin/sh
# full_disk.sh - a full disk: the store lives on a 4 MiB tmpfs; a put that
# does not fit fails with a clear "no space" error, leaves no partial
# object, and everything stored before still verifies and reads back.
# Needs mount(2) (root with CAP_SYS_ADMIN); without it the test says so
# and counts as neither passed nor failed.
#   sh tests/store/full_disk.sh BUILD_DIR
. "$(dirname "$0")/testlib.sh.in"
W=$(mktemp -d /tmp/theater_store_full.XXXXXX)
mkdir -p "$S"
cleanup() {
	umount "$S" 2>/dev/null
	rm -rf "$THEATER_HOME" "$W"
}
trap cleanup EXIT
if ! mount -t tmpfs -o size=4m tmpfs "$S" 2>"$W/mount.err"; then
	echo "skip: cannot mount a small tmpfs here ($(cat "$W/mount.err"))"
	finish
	exit 0
fi

head -c 1000000 /dev/urandom >"$W/first"
h1=$("$T" store put "$W/first")
check "a put that fits succeeds" [ -n "$h1" ]
"$T" store label first "$h1"

head -c 8000000 /dev/urandom >"$W/huge"
"$T" store put "$W/huge" >"$W/out" 2>"$W/err"
rc=$?
check "a put that does not fit fails" [ "$rc" -eq 1 ]
check "with a clear 'no space' error" grep -q "no space left on device" "$W/err"
check "and prints no hash" [ ! -s "$W/out" ]
check "it leaves no temporary files" [ "$(find "$S/tmp" -type f | wc -l)" -eq 0 ]
"$T" store verify >"$W/verify" 2>&1
check "earlier content still verifies" [ $? -eq 0 ]
check "earlier content reads back" sh -c "'$T' store get $h1 | cmp -s - '$W/first'"
"$T" store gc --grace 0 >/dev/null 2>&1
check "gc of the failed put's chunks succeeds" [ $? -eq 0 ]
printf 'after\n' >"$W/small"
h2=$("$T" store put "$W/small")
check "space is usable again afterwards" [ -n "$h2" ]
# Fill the disk completely, then try to label: clear error too.
head -c 3500000 /dev/urandom >"$S/filler" 2>/dev/null
"$T" store put "$W/first" >/dev/null 2>&1
"$T" store verify >/dev/null 2>&1
check "verify passes on a completely full disk" [ $? -eq 0 ]
finish
