#!/usr/bin/env bash
# The whole test suite: set-up (install, build), lint, unit tests beside the code, integration
# tests in test/ against real berthd, crun, overlayfs and the real docker CLI.
# `scripts/test.sh unit` runs only the unit tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx biome lint src test bench >&2 || { echo "lint failed" >&2; exit 1; }
# Types of everything, tests and benchmarks included (the build covers src/ only; tsx strips types).
npx tsc -p tsconfig.check.json >&2 || { echo "type check failed" >&2; exit 1; }

mapfile -t unit < <(find src -name '*.test.ts' | sort)
integration=()
if [ "${1:-all}" != unit ]; then mapfile -t integration < <(find test -name '*.test.ts' | sort); fi

# Node 20's test runner does not expand globs: pass the files. Integration tests each start their
# own berthd; run files one at a time on this 2-core machine so timings stay sane.
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${unit[@]}" "${integration[@]}"
