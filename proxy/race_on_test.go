//go:build race

package proxy_test

// raceEnabled: the race detector slows everything about tenfold, so the
// flood tests use fewer notifications; make test also runs them at
// full size without it.
const raceEnabled = true
