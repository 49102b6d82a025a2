#!/bin/sh
# make bench-engine: CPU-bound C programs (bench/engine/*.c) timed natively
# (gcc -O2), on Theater's engine (`theater wasm run`, clang -O2 wasm32-wasi),
# on Node's V8 (run_node.mjs, same .wasm) and on wabt's wasm-interp (a
# freestanding build of the same code: Debian's wasm-interp has no WASI).
#
#   sh bench/engine/run.sh [BUILD]
#   BENCH_RUNS=3        runs per program and runtime (the median is shown)
#   BENCH_ONLY="fib vm" a subset of programs
#   BENCH_INTERP_RUNS=1 runs on wasm-interp (it is ~100x slower than native)
#   BENCH_INTERP_TIMEOUT=30  seconds before a wasm-interp run is given up
#                       (shown as ">30.000" and a lower-bound ratio)
#
# Times are CPU seconds (user + system) of the whole process, which the
# shared machine's load disturbs far less than wall-clock time. They include
# module preparation and Node's start-up; V8 also compiles on helper threads,
# whose CPU time counts too. Every run's checksum must equal
# the native one, or the run counts as wrong. Last line: the geometric mean of
# engine/native over all programs, then the micro-benchmarks of
# tools/bench_engine.c (instantiation, idle instances, preparation speed).
set -u
BUILD=${1:-build}
RUNS=${BENCH_RUNS:-3}
IRUNS=${BENCH_INTERP_RUNS:-1}
ITIMEOUT=${BENCH_INTERP_TIMEOUT:-30}
SRC=bench/engine
OUT="$BUILD/bench/engine"
THEATER="$BUILD/theater"
PROGS=${BENCH_ONLY:-"sha256 matmul sort fib nbody vm"}
mkdir -p "$OUT"
BENCH_TMP=$(mktemp)
export BENCH_TMP
trap 'rm -f "$BENCH_TMP"' EXIT

have() { command -v "$1" >/dev/null 2>&1; }

for p in sha256 matmul sort fib nbody vm; do
	if [ ! -x "$OUT/$p" ] || [ "$SRC/$p.c" -nt "$OUT/$p" ] || [ "$SRC/bench.h" -nt "$OUT/$p" ]; then
		gcc -O2 -o "$OUT/$p" "$SRC/$p.c" -lm || exit 1
		clang --target=wasm32-wasi -O2 -o "$OUT/$p.wasm" "$SRC/$p.c" || exit 1
		clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -DBENCH_FREESTANDING \
			-o "$OUT/$p.free.wasm" "$SRC/$p.c" || exit 1
	fi
done

# time_cmd LIMIT CMD...: runs CMD with a CPU-time limit of LIMIT seconds and
# prints "MS CHECKSUM": the CPU time (user + system) CMD used, and the number
# after the last ':' or '=>' of its last output line; "timeout -" when the
# limit killed it, "- -" on another failure.
time_cmd() {
	limit=$1
	shift
	t=$(sh -c 'ulimit -t "$1"; shift; "$@" >"$BENCH_TMP" 2>/dev/null; rc=$?; times; exit $rc' \
		sh "$limit" "$@")
	rc=$?
	if [ $rc -eq 137 ] || [ $rc -eq 152 ]; then
		echo "timeout -"
		return
	fi
	if [ $rc -ne 0 ]; then
		echo "- -"
		return
	fi
	ms=$(echo "$t" | tail -n 1 | awk '{
		n = 0
		for (i = 1; i <= 2; i++) {
			split($i, p, "m"); sub("s", "", p[2]); n += p[1] * 60 + p[2]
		}
		printf "%d", n * 1000 }')
	sum=$(tail -n 1 "$BENCH_TMP" | sed -E 's/.*(:|=>) *(i32:)?//')
	echo "$ms $sum"
}

# median N CMD...: runs N times; prints "MEDIAN_MS CHECKSUM" or "- -" or
# "wrong CHECKSUM".
median() {
	n=$1 limit=$2
	shift 2
	times="" sum=""
	i=0
	while [ $i -lt "$n" ]; do
		r=$(time_cmd "$limit" "$@")
		t=${r% *}
		s=${r#* }
		[ "$t" = - ] && { echo "- -"; return; }
		[ "$t" = timeout ] && { echo "timeout -"; return; }
		times="$times $t"
		sum=$s
		i=$((i + 1))
	done
	m=$(echo $times | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	echo "$m $sum"
}

fmt_s() { # ms -> seconds with 3 decimals, or "-"
	[ "$1" = - ] && { echo "-"; return; }
	[ "$1" = timeout ] && { echo ">$ITIMEOUT"; return; }
	awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }'
}
ratio() { # a/b with one decimal and an x, or "-"
	if [ "$1" = timeout ] && [ "$2" != - ]; then
		awk -v a="$ITIMEOUT" -v b="$2" 'BEGIN { printf ">%.0fx", a * 1000 / b }'
		return
	fi
	{ [ "$1" = - ] || [ "$2" = - ] || [ "$2" -eq 0 ]; } && { echo "-"; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'
}

echo "engine benchmark: median of $RUNS runs (wasm-interp: $IRUNS), CPU seconds (user+sys)"
printf "%-8s %8s %9s %7s %8s %7s %12s %7s\n" program native engine ratio node ratio wasm-interp ratio
logsum=0 nlog=0 lognode=0 nnode=0 logint=0 nint=0 ntimeout=0
for p in $PROGS; do
	nat=$(median "$RUNS" 60 "$OUT/$p")
	nms=${nat% *} want=${nat#* }
	eng=$(median "$RUNS" 300 "$THEATER" wasm run "$OUT/$p.wasm")
	ems=${eng% *}
	if [ "${eng#* }" != "$want" ]; then
		echo "engine: $p gave '${eng#* }', expected '$want'" >&2
		ems=-
	fi
	nod=-
	if have node; then
		nod=$(median "$RUNS" 120 node --no-warnings "$SRC/run_node.mjs" "$OUT/$p.wasm")
		[ "${nod#* }" != "$want" ] && nod="- -"
		nod=${nod% *}
	fi
	itp=-
	if have wasm-interp; then
		itp=$(median "$IRUNS" "$ITIMEOUT" wasm-interp "$OUT/$p.free.wasm" --run-all-exports)
		[ "${itp% *}" != timeout ] && [ "${itp#* }" != "$want" ] && itp="- -"
		itp=${itp% *}
	fi
	printf "%-8s %8s %9s %7s %8s %7s %12s %7s\n" "$p" "$(fmt_s "$nms")" \
		"$(fmt_s "$ems")" "$(ratio "$ems" "$nms")" "$(fmt_s "$nod")" \
		"$(ratio "$nod" "$nms")" "$(fmt_s "$itp")" "$(ratio "$itp" "$nms")"
	if [ "$ems" != - ] && [ "$nms" != - ]; then
		logsum=$(awk -v s="$logsum" -v a="$ems" -v b="$nms" 'BEGIN { print s + log(a / b) }')
		nlog=$((nlog + 1))
	fi
	if [ "$nod" != - ] && [ "$nms" != - ]; then
		lognode=$(awk -v s="$lognode" -v a="$nod" -v b="$nms" 'BEGIN { print s + log(a / b) }')
		nnode=$((nnode + 1))
	fi
	[ "$itp" = timeout ] && ntimeout=$((ntimeout + 1))
	if [ "$itp" != - ] && [ "$itp" != timeout ] && [ "$nms" != - ]; then
		logint=$(awk -v s="$logint" -v a="$itp" -v b="$nms" 'BEGIN { print s + log(a / b) }')
		nint=$((nint + 1))
	fi
done
gm() { [ "$2" -eq 0 ] && { echo "-"; return; }; awk -v s="$1" -v n="$2" 'BEGIN { printf "%.1fx", exp(s / n) }'; }
echo "geomean node/native: $(gm "$lognode" "$nnode") over $nnode; wasm-interp/native: $(gm "$logint" "$nint") over $nint (+$ntimeout over ${ITIMEOUT}s)"
echo "geomean engine/native: $(gm "$logsum" "$nlog") over $nlog programs"

# A large module for the preparation speed: generated C, compiled once.
large="$OUT/large.wasm"
if [ ! -f "$large" ] || [ "$SRC/gen_large.awk" -nt "$large" ]; then
	awk -v N=1000 -f "$SRC/gen_large.awk" >"$OUT/large.c" &&
		clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -o "$large" "$OUT/large.c" ||
		large=$(ls -S "$OUT"/*.wasm | head -n 1)
fi
echo
echo "micro-benchmarks (tools/bench_engine.c):"
"$BUILD/tools/bench_engine" -n 10000 "$OUT/vm.free.wasm" "$large" "$OUT/vm.wasm"
