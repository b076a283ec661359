#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME (default 5s) each.
# Fails on the first target that finds a crash; the failing input is left
# under the package's testdata/fuzz/ directory, where `go test` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
count=0
for pkg in $(go list ./...); do
	targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	for t in $targets; do
		echo "fuzz $pkg $t ($fuzztime)"
		go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/ledgerd-fuzz.log 2>&1 || {
			cat /tmp/ledgerd-fuzz.log
			echo "FAIL: fuzz target $t in $pkg"
			exit 1
		}
		count=$((count + 1))
	done
done
echo "fuzz: $count targets passed"
