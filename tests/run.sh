#!/bin/sh
# Runs the test programs and suites of one area (or "all"), prints each
# program's result line, and last the total: "test: N passed, N failed".
#   tests/run.sh BUILD_DIR AREA|all
BUILD=${1:-build}
AREA=${2:-all}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Sum the "N passed, N failed" line a program printed last.
tally() {
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	p=$(echo "$line" | sed -nE 's/^(.*[^0-9])?([0-9]+) passed.*/\2/p')
	f=$(echo "$line" | sed -nE 's/.*[^0-9]([0-9]+) failed.*/\1/p')
	if [ -z "$line" ] || { [ "$1" -ne 0 ] && [ "${f:-0}" -eq 0 ]; }; then
		# No result line, or a non-zero exit with nothing counted: one failure.
		echo "FAIL $2 (exit $1, no result line)"
		tail -n 20 "$log"
		p=${p:-0}
		f=$((${f:-0} + 1))
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

run_area() {
	for t in "$BUILD"/tests/"$1"/test_*; do
		[ -x "$t" ] || continue
		"$t" >"$log" 2>&1
		rc=$?
		grep -E '^(FAIL|  )' "$log" | head -n 40
		tail -n 1 "$log"
		tally $rc "$t"
	done
	# Shell-driven black-box tests of the same area: tests/AREA/*.sh
	for s in tests/"$1"/*.sh; do
		[ -f "$s" ] || continue
		sh "$s" "$BUILD" >"$log" 2>&1
		rc=$?
		grep -E '^(FAIL|not ok)' "$log" | head -n 40
		tail -n 1 "$log"
		tally $rc "$s"
	done
}

if [ "$AREA" = all ]; then
	for d in tests/*/; do
		a=$(basename "$d")
		[ "$a" = spec ] && continue
		run_area "$a"
	done
	# External conformance suites.
	if [ -f tests/spec/run.sh ]; then
		sh tests/spec/run.sh "$BUILD" >"$log" 2>&1
		rc=$?
		grep -E '^(FAIL|known failure)' "$log" | head -n 60
		tail -n 1 "$log"
		tally $rc "spec"
	fi
else
	run_area "$AREA"
fi

echo "test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
