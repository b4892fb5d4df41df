package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestParseWatch(t *testing.T) {
	if w, err := ParseWatch("pushproxy=123"); err != nil || w != (Watch{"pushproxy", 123}) {
		t.Errorf("ParseWatch(pushproxy=123) = %v, %v", w, err)
	}
	for _, bad := range []string{"", "x", "=1", "x=", "x=0", "x=-1", "x=y"} {
		if _, err := ParseWatch(bad); err == nil {
			t.Errorf("ParseWatch(%q) accepted", bad)
		}
	}
}

// A run with --cpu on this very process reports CPU for it and for the load
// client (the same process, so about the same figure), and the machine.
func TestRunMeasuresCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	rep, err := Run(context.Background(), Options{N: 2000, C: 16, Timeout: 10 * time.Second,
		Watches: []Watch{{"self", os.Getpid()}}, MaxOtherLoad: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.CPU) != 2 || rep.CPU[0].Name != "self" || rep.CPU[1].Name != "load client" || rep.Machine == nil {
		t.Fatalf("cpu %+v machine %+v", rep.CPU, rep.Machine)
	}
	if rep.CPU[1].MicrosPerNotification <= 0 || rep.Machine.CPUs < 1 || rep.Machine.Flagged {
		t.Errorf("cpu %+v machine %+v", rep.CPU, rep.Machine)
	}
}

func TestCPUReportFlags(t *testing.T) {
	a := cpuSnapshot{procs: []int64{100, 10}, machine: 1000}
	b := cpuSnapshot{procs: []int64{200, 20}, machine: 1310, cpus: 2}
	procs, m := cpuReport([]Watch{{"p", 1}}, a, b, 1000, 1, 0.25)
	// p: 100 ticks = 1 s over 1000 notifications = 1000 µs; other: (310-110)/100 = 2 cores.
	if procs[0].MicrosPerNotification != 1000 || procs[0].Cores != 1 || m.OtherCores != 2 || !m.Flagged {
		t.Errorf("procs %+v machine %+v", procs, m)
	}
}
