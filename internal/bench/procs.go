package bench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// What a separate-process run measures besides throughput: the CPU time of
// named processes (pushproxy, the fake) read from /proc/PID/stat, the load
// client's own, and how busy the rest of the machine was meanwhile, so that
// a round disturbed by other work can be flagged instead of trusted.

// clockTicks is USER_HZ, the unit of /proc/PID/stat's utime and stime and of
// /proc/stat: 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcCPU is the CPU one process spent during the measured window.
type ProcCPU struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// MicrosPerNotification is user + system CPU time over the window,
	// divided by the notifications finished in it.
	MicrosPerNotification float64 `json:"cpu_us_per_notification"`
	// Cores is the average number of CPUs it kept busy.
	Cores float64 `json:"cores"`
}

// Machine is the state of the whole machine during the window.
type Machine struct {
	CPUs int `json:"cpus"`
	// LoadAvg is /proc/loadavg's 1-, 5- and 15-minute averages at the end
	// of the window (they include this run's own processes).
	LoadAvg [3]float64 `json:"load_average"`
	// OtherCores is the CPU the machine spent outside the watched
	// processes and the load client, in cores, averaged over the window.
	OtherCores float64 `json:"other_cores"`
	// Flagged is true when OtherCores exceeded Options.MaxOtherLoad: the
	// round competed with other work and its figures are suspect.
	Flagged bool `json:"flagged,omitempty"`
}

// Watch names a process whose CPU a run measures (--cpu NAME=PID).
type Watch struct {
	Name string
	PID  int
}

// ParseWatch parses NAME=PID.
func ParseWatch(s string) (Watch, error) {
	name, pid, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(pid)
	if !ok || name == "" || err != nil || n <= 0 {
		return Watch{}, fmt.Errorf("%q is not NAME=PID", s)
	}
	return Watch{Name: name, PID: n}, nil
}

// procTicks is utime + stime of a process (all its threads, living and
// exited) in clock ticks; pid 0 is this process.
func procTicks(pid int) (int64, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted from the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New(path + ": no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New(path + ": too few fields")
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return u + s, nil
}

// machineTicks is the busy time of all CPUs together, from /proc/stat, in
// clock ticks, and the number of CPUs.
func machineTicks() (busy int64, cpus int, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] != "cpu" {
			if strings.HasPrefix(f[0], "cpu") {
				cpus++
			}
			continue
		}
		// user nice system idle iowait irq softirq steal (guest time is
		// already counted in user).
		for j, v := range f[1:] {
			if j == 3 || j == 4 || j >= 8 {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, 0, err
			}
			busy += n
		}
	}
	return busy, cpus, nil
}

func loadAvg() (out [3]float64) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	for i, f := range strings.Fields(string(b)) {
		if i < 3 {
			out[i], _ = strconv.ParseFloat(f, 64)
		}
	}
	return out
}

// cpuSnapshot is the counters at one instant.
type cpuSnapshot struct {
	procs   []int64 // per watch, then this process last
	machine int64
	cpus    int
}

func snapshotCPU(watches []Watch) (cpuSnapshot, error) {
	var s cpuSnapshot
	for _, w := range watches {
		t, err := procTicks(w.PID)
		if err != nil {
			return s, fmt.Errorf("--cpu %s=%d: %w", w.Name, w.PID, err)
		}
		s.procs = append(s.procs, t)
	}
	t, err := procTicks(0)
	if err != nil {
		return s, err
	}
	s.procs = append(s.procs, t)
	s.machine, s.cpus, err = machineTicks()
	return s, err
}

// cpuReport turns two snapshots around a window of n notifications and
// seconds into the report's CPU figures.
func cpuReport(watches []Watch, a, b cpuSnapshot, n int, seconds, maxOther float64) ([]ProcCPU, Machine) {
	var out []ProcCPU
	var ours int64
	for i := range a.procs {
		d := b.procs[i] - a.procs[i]
		ours += d
		pc := ProcCPU{Name: "load client", PID: os.Getpid()}
		if i < len(watches) {
			pc.Name, pc.PID = watches[i].Name, watches[i].PID
		}
		sec := float64(d) / clockTicks
		if n > 0 {
			pc.MicrosPerNotification = round1(sec * 1e6 / float64(n))
		}
		if seconds > 0 {
			pc.Cores = round3(sec / seconds)
		}
		out = append(out, pc)
	}
	m := Machine{CPUs: b.cpus, LoadAvg: loadAvg()}
	if seconds > 0 {
		m.OtherCores = round3(max(0, float64(b.machine-a.machine-ours)/clockTicks/seconds))
	}
	m.Flagged = m.OtherCores > maxOther
	return out, m
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
