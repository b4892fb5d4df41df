package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// tuneGC sets GOGC 400 and a 64 MiB soft limit, unless the environment set
// them: then the runtime's values stay.
func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	check := func(env map[string]string, wantPercent int, wantLimit int64) {
		t.Helper()
		for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
			if v, ok := env[k]; ok {
				t.Setenv(k, v)
			} else {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
		}
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
		tuneGC()
		if p := debug.SetGCPercent(100); p != wantPercent {
			t.Errorf("env %v: GC percent %d, want %d", env, p, wantPercent)
		}
		if l := debug.SetMemoryLimit(-1); l != wantLimit {
			t.Errorf("env %v: memory limit %d, want %d", env, l, wantLimit)
		}
	}
	check(nil, gcPercent, memoryLimit)
	check(map[string]string{"GOGC": "100"}, 100, memoryLimit)
	check(map[string]string{"GOMEMLIMIT": "1GiB"}, gcPercent, math.MaxInt64)
}
