# make test: the whole test suite, exactly what CI runs after installing.
#  1. the npm packages of the interop and manifest tests, if missing
#     (without them those tests skip);
#  2. every package under the race detector;
#  3. the GOAWAY flood and connection-reset tests at full size (5,000
#     concurrent notifications), which the race detector's slowdown would
#     distort.
.PHONY: test
test:
	@if command -v npm >/dev/null; then \
	  for d in interop deploy/schema; do \
	    [ -d "$$d/node_modules" ] || npm ci --prefix "$$d" --no-audit --no-fund || exit 1; \
	  done; \
	fi
	go test -race -count=1 ./...
	go test -count=1 -run 'GoAwayFlood|ConnectionReset|NoLeakAcrossKeySwaps' ./proxy/
