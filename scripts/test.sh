#!/usr/bin/env bash
# The whole test suite: every package under the race detector, then the
# GOAWAY flood and connection-reset tests at full size (5,000 concurrent
# notifications), which the race detector's slowdown would distort.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -race -count=1 ./...
go test -count=1 -run 'GoAwayFlood|ConnectionReset' ./proxy/
