#!/usr/bin/env bash
# The whole test suite: every package under the race detector, then the
# GOAWAY flood and connection-reset tests at full size (5,000 concurrent
# notifications), which the race detector's slowdown would distort.
# The npm packages of the interop and manifest tests are installed first if
# they are missing (without them those tests skip).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v npm >/dev/null; then
  for d in interop deploy/schema; do
    [ -d "$d/node_modules" ] || npm ci --prefix "$d" --no-audit --no-fund
  done
fi
go test -race -count=1 ./...
go test -count=1 -run 'GoAwayFlood|ConnectionReset' ./proxy/
