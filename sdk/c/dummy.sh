#!/bin/sh
# dummy.sh - make a component from a WIT world alone (trapping bodies), with
# jco: for decoder and world-check tests.
#   sh sdk/c/dummy.sh WIT_FILE WORLD OUT.component.wasm
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NPM_DIR=${THEATER_NPM_DIR:-$ROOT/build/npm}
JCO_VERSION=${JCO_VERSION:-1.35.0}
die() { echo "dummy.sh: $*" >&2; exit 1; }
command -v node >/dev/null || die "node not found"
if [ ! -f "$NPM_DIR/node_modules/@bytecodealliance/jco/package.json" ]; then
	mkdir -p "$NPM_DIR"
	npm install --silent --no-save --no-audit --no-fund --prefix "$NPM_DIR" \
		"@bytecodealliance/jco@$JCO_VERSION" >&2 || die "npm install of jco failed"
fi
NODE_PATH="$NPM_DIR/node_modules" node "$ROOT/tools/jco/embed.mjs" --dummy "$1" "$2" "$3.embedded" ||
	die "embedding failed"
"$NPM_DIR/node_modules/.bin/jco" new "$3.embedded" -o "$3" >/dev/null || die "jco new failed"
rm -f "$3.embedded"
