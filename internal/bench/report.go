package bench

// What a run reports, and how it prints.

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is the summary of a run; pushproxy bench --json prints it as is.
type Report struct {
	Mode        string `json:"mode"`
	Target      string `json:"target"` // "built-in fake APNs" or "external pushproxy"
	N           int    `json:"n"`
	Concurrency int    `json:"concurrency"`
	Batch       int    `json:"batch,omitempty"`
	// Elapsed covers the n notifications, not the setup or the warm-up.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	Rate           float64 `json:"notifications_per_second"`
	// Latency of each notification, from sending its HTTP request to having
	// read the whole answer; in batch mode, that of the batch it was in.
	Latency struct {
		P50  float64 `json:"p50"`
		P99  float64 `json:"p99"`
		P999 float64 `json:"p999"`
		Max  float64 `json:"max"`
	} `json:"latency_ms"`
	OK       int `json:"ok"`
	Failures int `json:"failures"`
	// FailuresBy counts failures by "<HTTP status> <code or reason>" (the
	// proxy's normalised code; APNs's reason in direct mode), or
	// "transport_error" when no answer came.
	FailuresBy map[string]int `json:"failures_by"`
	// TokensSigned is the number of provider tokens pushproxy signed (from
	// /metrics): with the built-in pushproxy, since it started (warm-up
	// included); with --url, during the run. Absent when unknown and in
	// direct mode.
	TokensSigned *int `json:"provider_tokens_signed,omitempty"`
	// UpstreamConns is the number of TLS connections the fake APNs accepted
	// (self-contained mode only).
	UpstreamConns *int `json:"upstream_connections,omitempty"`
	// Token is the fingerprint (SHA-256, 8 hex) of the --token used for
	// every notification; absent when each notification had a random one.
	Token       string `json:"token_fingerprint,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
	// CPU is, per process named with --cpu and for the load client itself,
	// the CPU it spent during the run; Machine says how busy the rest of
	// the machine was meanwhile. Both absent without --cpu.
	CPU     []ProcCPU `json:"cpu,omitempty"`
	Machine *Machine  `json:"machine,omitempty"`
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Print writes the human-readable summary.
func (r *Report) Print(w io.Writer) {
	via := map[string]string{
		ModeEndToEnd: "POST /v1/notifications → pushproxy → APNs",
		ModeBatch:    "POST /v1/notifications/batch → pushproxy → APNs",
		ModeDirect:   "hand-written HTTP/2 client → APNs, no pushproxy",
	}[r.Mode]
	kind := "provider token(s)"
	if r.Target == TargetBuiltInFCM {
		via, kind = strings.Replace(via, "APNs", "FCM", 1), "FCM access token(s) fetched"
	}
	fmt.Fprintf(w, "pushproxy bench: %s (%s; %s)\n", r.Mode, via, r.Target)
	batch := ""
	if r.Batch > 0 {
		batch = fmt.Sprintf(", %d per batch", r.Batch)
	}
	fmt.Fprintf(w, "  notifications  %d, concurrency %d%s\n", r.N, r.Concurrency, batch)
	if r.Token != "" {
		fmt.Fprintf(w, "  device token   %s (fingerprint), the same for every notification\n", r.Token)
	}
	fmt.Fprintf(w, "  elapsed        %.3fs\n", r.ElapsedSeconds)
	fmt.Fprintf(w, "  throughput     %.0f notifications/s\n", r.Rate)
	fmt.Fprintf(w, "  latency        p50 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms\n", r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max)
	if r.TokensSigned != nil {
		scope := "during the run"
		if r.Target == TargetBuiltIn || r.Target == TargetBuiltInFCM {
			scope = "since pushproxy started"
		}
		fmt.Fprintf(w, "  tokens signed  %d %s %s\n", *r.TokensSigned, kind, scope)
	}
	for _, c := range r.CPU {
		fmt.Fprintf(w, "  CPU            %-12s %7.1f µs/notification  %.2f cores (pid %d)\n", c.Name, c.MicrosPerNotification, c.Cores, c.PID)
	}
	if m := r.Machine; m != nil {
		flag := ""
		if m.Flagged {
			flag = "  FLAGGED: other load on the machine"
		}
		fmt.Fprintf(w, "  machine        %d CPUs, other load %.2f cores, load average %.2f %.2f %.2f%s\n", m.CPUs, m.OtherCores, m.LoadAvg[0], m.LoadAvg[1], m.LoadAvg[2], flag)
	}
	if r.UpstreamConns != nil {
		fmt.Fprintf(w, "  APNs conns     %d TLS connection(s) to the fake APNs\n", *r.UpstreamConns)
	}
	fmt.Fprintf(w, "  ok             %d\n", r.OK)
	fmt.Fprintf(w, "  failures       %d\n", r.Failures)
	for _, k := range slices.Sorted(maps.Keys(r.FailuresBy)) {
		fmt.Fprintf(w, "    %-40s %d\n", k, r.FailuresBy[k])
	}
	if r.Interrupted {
		fmt.Fprintf(w, "  interrupted before the end\n")
	}
}
