#!/bin/sh
# Installs, from Debian's archive, everything the build, the tests and the
# benchmarks need. Runs apt-get only when something is missing, so it is cheap
# to call before every build. Needs root (or sudo) only in that case.
set -eu

PKGS="build-essential make pkg-config clang lld wasi-libc libclang-rt-14-dev-wasm32
wabt libssl-dev libzstd-dev libevent-dev libwslay-dev openssl erlang-base
libclang-rt-14-dev"
# Node.js may come from elsewhere with its own npm; Debian's are only a fallback.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
	PKGS="$PKGS nodejs npm"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "setup: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
