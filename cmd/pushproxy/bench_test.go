package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runBenchJSON runs the bench subcommand in-process with --json and decodes
// its report.
func runBenchJSON(t *testing.T, args ...string) (benchReport, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"bench", "--json"}, args...), &out, &errb)
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d; output is not a JSON report: %v\nstdout: %s\nstderr: %s", code, err, out.String(), errb.String())
	}
	return rep, code, errb.String()
}

// TestBenchSelfContained runs each mode against the built-in fake APNs,
// and checks that it leaves no goroutine and no temporary directory behind.
func TestBenchSelfContained(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	// The first signal.Notify starts os/signal's process-wide goroutine,
	// which never ends: start it before counting.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	signal.Stop(sig)
	for _, tc := range []struct {
		name, mode string
		args       []string
		batch      int
	}{
		{"single", modeEndToEnd, nil, 0},
		{"direct", modeDirect, []string{"--direct"}, 0},
		{"batch", modeBatch, []string{"--batch", "50"}, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			rep, code, stderr := runBenchJSON(t, append([]string{"-n", "500", "-c", "16"}, tc.args...)...)
			if code != 0 {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
			if rep.Mode != tc.mode || rep.N != 500 || rep.Concurrency != 16 || rep.Batch != tc.batch || rep.Target != targetBuiltIn {
				t.Errorf("report header %+v", rep)
			}
			if rep.OK != 500 || rep.Failures != 0 || len(rep.FailuresBy) != 0 || rep.Interrupted {
				t.Errorf("ok %d, failures %d %v, interrupted %v", rep.OK, rep.Failures, rep.FailuresBy, rep.Interrupted)
			}
			if rep.Rate <= 0 || rep.ElapsedSeconds <= 0 {
				t.Errorf("rate %v over %vs", rep.Rate, rep.ElapsedSeconds)
			}
			l := rep.Latency
			if !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
				t.Errorf("latencies %+v", l)
			}
			if rep.UpstreamConns == nil || *rep.UpstreamConns != 1 {
				t.Errorf("upstream connections %v, want 1", rep.UpstreamConns)
			}
			switch {
			case tc.mode == modeDirect && rep.TokensSigned != nil:
				t.Errorf("direct mode reports pushproxy's signatures: %d", *rep.TokensSigned)
			case tc.mode != modeDirect && (rep.TokensSigned == nil || *rep.TokensSigned != 1):
				t.Errorf("provider tokens signed %v, want 1", rep.TokensSigned)
			}
			if rep.Token != "" {
				t.Errorf("token fingerprint %q without --token", rep.Token)
			}
			waitGoroutines(t, before)
			if ents, err := os.ReadDir(tmp); err != nil || len(ents) != 0 {
				t.Errorf("temporary files left behind: %v %v", ents, err)
			}
		})
	}
}

// waitGoroutines waits until no more goroutines run than before.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left running (before: %d):\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBenchCountsFailures points --url at a stand-in that refuses every
// other notification: the failures are counted by status and code, the exit
// status is 1, and the device token appears only as its fingerprint.
func TestBenchCountsFailures(t *testing.T) {
	var n atomic.Int64
	var sawToken atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			To struct {
				APNs struct {
					Token string `json:"token"`
					Topic string `json:"topic"`
				} `json:"apns"`
			} `json:"to"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		sawToken.Store(body.To.APNs.Token + "/" + body.To.APNs.Topic)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/v1/notifications" || n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusGone)
			_, _ = w.Write([]byte(`{"error":{"code":"recipient_gone"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"x","platform":"apns","upstream":{"status":200}}`))
	}))
	defer srv.Close()
	tok := strings.Repeat("ab", 32)
	rep, code, _ := runBenchJSON(t, "-n", "10", "-c", "2", "--url", srv.URL, "--token", tok, "--topic", "com.example.other")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if rep.Target != targetExternal || rep.OK != 5 || rep.Failures != 5 || rep.FailuresBy["410 recipient_gone"] != 5 {
		t.Errorf("report %+v", rep)
	}
	if got := sawToken.Load(); got != tok+"/com.example.other" {
		t.Errorf("sent token/topic %v", got)
	}
	if rep.Token == "" || strings.Contains(rep.Token, tok) {
		t.Errorf("token shown as %q, want a fingerprint", rep.Token)
	}

	n.Store(0) // the warm-up (the first request) succeeds
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "-n", "4", "--url", srv.URL, "--token", tok}, &out, &errb); code != 1 || strings.Contains(out.String(), tok) || !strings.Contains(out.String(), "410 recipient_gone") {
		t.Errorf("text summary: exit %d\n%s", code, out.String())
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"-c", "0"},
		{"--direct", "--url", "http://127.0.0.1:1"},
		{"--direct", "--batch", "5"},
		{"--token", "nothex"},
		{"--timeout", "0s"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"bench"}, args...), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "-n", "1", "--url", "http://127.0.0.1:1"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "warm-up") {
		t.Errorf("unreachable --url: exit %d, %q", code, errb.String())
	}
}
