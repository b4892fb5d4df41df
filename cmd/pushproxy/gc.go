package main

import (
	"os"
	"runtime/debug"
)

// Garbage collector settings of serve, unless the operator set them.
//
// A notification allocates about 10 KB that is garbage as soon as it is
// answered, while the live heap of an idle or busy sidecar is a few MiB: with
// Go's default GOGC=100 the collector runs tens of times a second under load
// and, with the goroutine stacks it shrinks and x/net then grows again, takes
// a fifth of the CPU. gcPercent lets the heap grow to 5× the live heap
// between collections instead, and memoryLimit caps what that may cost: when
// the process nears it, the collector runs as often as it must (a soft limit,
// as GOMEMLIMIT). Idle RSS does not change (an idle process allocates
// nothing); with 1,000 notifications in flight the limit keeps it under
// 100 MiB.
//
// GOGC and GOMEMLIMIT in the environment win: each is left as the runtime
// read it (GOGC=off with a GOMEMLIMIT, for one, still works as documented).
const (
	gcPercent   = 400
	memoryLimit = 64 << 20
)

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(memoryLimit)
	}
}
