#!/bin/sh
# The WebAssembly core spec suite: converts every script of core/ and
# extended-const/ with wabt's wast2json (cached under BUILD/spec/, redone when
# the .wast is newer) and runs each through BUILD/tools/wast_run.
#
#   sh tests/spec/run.sh [BUILD]          (what `make spec` runs)
#   SPEC_ONLY='core/i32.wast core/f32*'   run only scripts matching these globs
#   SPEC_VERBOSE=1                        show every failing command
#   SPEC_DIR=...                          the suite (default ../shared/testdata/wasm-spec)
#   SPEC_CONVERT_ONLY=1                   only convert (make fuzz takes its seeds there)
#
# Prints one line per script, then last "spec: N passed, N failed, N skipped"
# counting commands. Skipped: simd_*.wast (SIMD is not implemented yet) and
# text-format modules (assert_malformed on .wat, judged only by a text parser).
#
# tests/spec/skip-commands.txt excuses single commands ("SCRIPT:LINE reason"),
# counted as skipped: only where the suite contradicts itself or wast2json
# encodes a different binary than the reference interpreter; each says why.
#
# tests/spec/known-failures.txt lists scripts that still fail (one per line,
# '#' comments). They print "known failure: ..." and their failed commands are
# reported on the line before the summary, not in its "failed" count. The run
# fails (exit 1) when a script not on the list fails, or when a listed script
# now passes: remove it from the list then, so the list only ever shrinks.
BUILD=${1:-build}
SPEC_DIR=${SPEC_DIR:-../shared/testdata/wasm-spec}
KNOWN=tests/spec/known-failures.txt
EXCUSED=tests/spec/skip-commands.txt
RUNNER="$BUILD/tools/wast_run"
CACHE="$BUILD/spec"
TIMEOUT=${SPEC_TIMEOUT:-60}

if [ ! -d "$SPEC_DIR/core" ]; then
	echo "FAIL spec: suite not found at $SPEC_DIR"
	echo "spec: 0 passed, 1 failed, 0 skipped"
	exit 1
fi
if [ -z "${SPEC_CONVERT_ONLY:-}" ] && [ ! -x "$RUNNER" ] || ! command -v wast2json >/dev/null 2>&1; then
	echo "FAIL spec: need $RUNNER (make) and wast2json (make deps)"
	echo "spec: 0 passed, 1 failed, 0 skipped"
	exit 1
fi

passed=0 failed=0 skipped=0
kscripts=0 kpassed=0 kfailed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

is_known() {
	[ -f "$KNOWN" ] && sed 's/#.*//' "$KNOWN" | tr -d ' \t' | grep -qxF "$1"
}

selected() {
	[ -z "${SPEC_ONLY:-}" ] && return 0
	for pat in $SPEC_ONLY; do
		# shellcheck disable=SC2254
		case "$1" in $pat) return 0 ;; esac
	done
	return 1
}

# Commands in a converted script: wast2json writes one per line.
ncommands() {
	grep -c '^  {"type": ' "$1"
}

run_script() { # $1 = path of the .wast, $2 = label such as core/i32.wast
	wast=$1 label=$2
	name=$(basename "$wast" .wast)
	dir="$CACHE/$(dirname "$label")/$name"
	json="$dir/$name.json"
	flags=""
	case "$label" in extended-const/*) flags="--enable-extended-const" ;; esac
	if [ ! -f "$json" ] || [ "$wast" -nt "$json" ]; then
		rm -rf "$dir" && mkdir -p "$dir"
		# shellcheck disable=SC2086
		if ! wast2json $flags "$wast" -o "$json" >"$out" 2>&1; then
			rm -f "$json"
			echo "FAIL $label: wast2json failed: $(head -n 1 "$out")"
			failed=$((failed + 1))
			return
		fi
	fi
	[ -n "${SPEC_CONVERT_ONLY:-}" ] && return
	case "$name" in
	simd_*)
		n=$(ncommands "$json")
		skipped=$((skipped + n))
		return
		;;
	esac
	nshow=5
	[ -n "${SPEC_VERBOSE:-}" ] && nshow=8
	skips=""
	if [ -f "$EXCUSED" ]; then
		for l in $(sed -n "s|^$label:\([0-9][0-9]*\).*|\1|p" "$EXCUSED"); do
			skips="$skips -s $l"
		done
	fi
	# shellcheck disable=SC2086
	timeout "$TIMEOUT" "$RUNNER" -n "$nshow" $skips "$json" "$label" >"$out" 2>&1
	rc=$?
	counts=$(grep '^counts ' "$out" | tail -n 1)
	if [ -n "$counts" ]; then
		set -- $counts
		p=$2 f=$3 s=$4
		summary=$(grep -v '^counts ' "$out")
	else
		# Crashed or timed out: every command counts as failed.
		p=0 f=$(ncommands "$json") s=0
		why="exit $rc"
		[ "$rc" -eq 124 ] && why="timed out after ${TIMEOUT}s"
		summary="FAIL $label 0/$f ($why)
$(tail -n 5 "$out" | sed 's/^/  /')"
	fi
	skipped=$((skipped + s))
	passed=$((passed + p))
	if is_known "$label"; then
		if [ "$f" -eq 0 ]; then
			echo "FAIL $label now passes: remove it from $KNOWN"
			failed=$((failed + 1))
		else
			echo "$summary" | sed '1s/^FAIL /known failure: /'
			kscripts=$((kscripts + 1))
			kfailed=$((kfailed + f))
		fi
		kpassed=$((kpassed + p))
	else
		echo "$summary"
		failed=$((failed + f))
	fi
}

for wast in "$SPEC_DIR"/core/*.wast "$SPEC_DIR"/extended-const/*.wast; do
	[ -f "$wast" ] || continue
	label="$(basename "$(dirname "$wast")")/$(basename "$wast")"
	selected "$label" || continue
	run_script "$wast" "$label"
done

[ -n "${SPEC_CONVERT_ONLY:-}" ] && exit $((failed > 0))
if [ "$kscripts" -gt 0 ]; then
	echo "spec: $kscripts known-failure scripts ($kfailed commands failing, $kpassed passing) in $KNOWN"
fi
echo "spec: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
