#!/bin/sh
# The README's main command: a tour of what works today.
set -e
BUILD=${1:-build}
T="$BUILD/theater"
echo "== theater --version"
"$T" --version
