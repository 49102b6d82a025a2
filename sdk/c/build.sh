#!/bin/sh
# build.sh - build a C actor with the Theater guest SDK into a core module
# and (with jco) into a component.
#   sh sdk/c/build.sh SRC.c OUTDIR [WORLD]
# WORLD is message-actor (default) or supervisor-actor (also links
# sdk/c/supervisor.c for the supervisor-handlers exports).
# Produces OUTDIR/NAME.core.wasm (core-module form) and
# OUTDIR/NAME.component.wasm (component form). Needs Debian's clang, lld
# (wasm-ld), wasi-libc and libclang-rt-14-dev-wasm32 (scripts/setup.sh) and
# node/npm; jco is installed on first use into build/npm (npm registry).
# Fails loudly (exit 1) when a tool is missing: nothing is skipped.
# CORE_ONLY=1 stops after the core module (actors that import WASI, e.g.
# through stdio, load only as core modules: Theater gives them WASI).
set -eu
SRC=$1
OUT=$2
WORLD=${3:-message-actor}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=$(basename "$SRC" .c)
NPM_DIR=${THEATER_NPM_DIR:-$ROOT/build/npm}
JCO_VERSION=${JCO_VERSION:-1.35.0}

die() { echo "build.sh: $*" >&2; exit 1; }
command -v clang >/dev/null || die "clang not found (run scripts/setup.sh)"
command -v wasm-ld >/dev/null || die "wasm-ld not found (Debian package lld)"
[ -f /usr/lib/wasm32-wasi/libc.a ] || die "wasi-libc not found (Debian package wasi-libc)"
command -v node >/dev/null || die "node not found"
command -v npm >/dev/null || die "npm not found"

EXTRA=""
[ "$WORLD" = supervisor-actor ] && EXTRA="$ROOT/sdk/c/supervisor.c"
mkdir -p "$OUT"
clang --target=wasm32-wasi -O2 -std=c11 -Wall -Wextra -Werror \
	-nostartfiles -Wl,--no-entry -Wl,--export=cabi_realloc \
	-I"$ROOT/sdk/c" -o "$OUT/$NAME.core.wasm" "$SRC" "$ROOT/sdk/c/theater.c" $EXTRA

if [ "${CORE_ONLY:-0}" = 1 ]; then
	echo "$OUT/$NAME.core.wasm"
	exit 0
fi
if [ ! -f "$NPM_DIR/node_modules/@bytecodealliance/jco/package.json" ]; then
	mkdir -p "$NPM_DIR"
	npm install --silent --no-save --no-audit --no-fund --prefix "$NPM_DIR" \
		"@bytecodealliance/jco@$JCO_VERSION" >&2 || die "npm install of jco failed"
fi
NODE_PATH="$NPM_DIR/node_modules" node "$ROOT/tools/jco/embed.mjs" \
	"$OUT/$NAME.core.wasm" "$ROOT/wit/theater-simple.wit" "$WORLD" \
	"$OUT/$NAME.embedded.wasm" || die "embedding the WIT failed"
"$NPM_DIR/node_modules/.bin/jco" new "$OUT/$NAME.embedded.wasm" \
	-o "$OUT/$NAME.component.wasm" >/dev/null || die "jco new failed"
echo "$OUT/$NAME.core.wasm $OUT/$NAME.component.wasm"
