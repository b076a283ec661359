#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME (default 5s) each.
#
# A target fails the run when it finds an input that breaks it: Go writes
# that input under the package's testdata/fuzz/<Target>/, where a plain
# `go test` replays it from then on. A run that exits non-zero without
# writing one (the fuzzing engine itself failing, which happens on a
# loaded machine) is retried once and fails the run only if it fails again.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
count=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
	corpus() { { ls "$dir/testdata/fuzz/$1" 2>/dev/null || true; } | wc -l; }
	for t in $targets; do
		log="$logdir/$t.log"
		ok=0
		for attempt in 1 2; do
			before=$(corpus "$t")
			echo "fuzz $pkg $t ($fuzztime, attempt $attempt)"
			if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
				ok=1
				break
			fi
			after=$(corpus "$t")
			grep -v '^fuzz: elapsed' "$log" | tail -40
			if [ "$after" -gt "$before" ]; then
				echo "FAIL: fuzz target $t in $pkg found a failing input (saved under $dir/testdata/fuzz/$t)"
				exit 1
			fi
		done
		if [ "$ok" -ne 1 ]; then
			echo "FAIL: fuzz target $t in $pkg failed twice"
			exit 1
		fi
		count=$((count + 1))
	done
done
echo "fuzz: $count targets passed"
