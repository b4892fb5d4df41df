package bench

import (
	"context"
	"os"
	"strings"
	"sync"
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

func TestCheckSeparateProcessFlags(t *testing.T) {
	base := Options{N: 1, C: 1, Timeout: time.Second}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Fake: "https://127.0.0.1:1"}, "--fake"},
		{Options{Direct: true, Fake: "https://127.0.0.1:1"}, "--ca and --key"},
		{Options{WebPush: "sub.json"}, "--url"},
	} {
		o := tc.o
		o.N, o.C, o.Timeout = base.N, base.C, base.Timeout
		if err := o.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Check() = %v, want an error naming %s", tc.o, err, tc.want)
		}
	}
	ok := base
	ok.Direct, ok.Fake, ok.CAFile, ok.KeyFile = true, "https://127.0.0.1:1", "ca.pem", "key.p8"
	if err := ok.Check(); err != nil {
		t.Errorf("--direct --fake --ca --key: %v", err)
	}
}

// Options.Send drives a run with a sender of the caller's (the webpush-go
// baseline): the warm-up is index 0, the run 1…n.
func TestRunWithSend(t *testing.T) {
	var seen sync.Map
	rep, err := Run(context.Background(), Options{N: 100, C: 4, Timeout: time.Second, Target: "test sender",
		Send: func(ctx context.Context, i int) string {
			seen.Store(i, true)
			if i == 7 {
				return "418 teapot"
			}
			return ""
		}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != ModeDirect || rep.Target != "test sender" || rep.OK != 99 || rep.FailuresBy["418 teapot"] != 1 {
		t.Errorf("report %+v", rep)
	}
	for i := range 101 {
		if _, ok := seen.Load(i); !ok {
			t.Errorf("index %d never sent", i)
		}
	}
}
