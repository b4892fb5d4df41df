package bench

import (
	"bytes"
	"context"
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

// runJSON runs o, writes its report as pushproxy bench --json does and
// decodes it back; code is the command's exit status.
func runJSON(t *testing.T, o Options) (Report, int) {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, data)
	}
	code := 0
	if rep.Failures > 0 || rep.Interrupted {
		code = 1
	}
	return back, code
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
		direct     bool
		batch      int
	}{
		{"single", ModeEndToEnd, false, 0},
		{"direct", ModeDirect, true, 0},
		{"batch", ModeBatch, false, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			rep, code := runJSON(t, Options{N: 500, C: 16, Direct: tc.direct, Batch: tc.batch})
			if code != 0 {
				t.Errorf("exit %d", code)
			}
			if rep.Mode != tc.mode || rep.N != 500 || rep.Concurrency != 16 || rep.Batch != tc.batch || rep.Target != TargetBuiltIn {
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
			case tc.mode == ModeDirect && rep.TokensSigned != nil:
				t.Errorf("direct mode reports pushproxy's signatures: %d", *rep.TokensSigned)
			case tc.mode != ModeDirect && (rep.TokensSigned == nil || *rep.TokensSigned != 1):
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
	rep, code := runJSON(t, Options{N: 10, C: 2, URL: srv.URL, Token: tok, Topic: "com.example.other"})
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if rep.Target != TargetExternal || rep.OK != 5 || rep.Failures != 5 || rep.FailuresBy["410 recipient_gone"] != 5 {
		t.Errorf("report %+v", rep)
	}
	if got := sawToken.Load(); got != tok+"/com.example.other" {
		t.Errorf("sent token/topic %v", got)
	}
	if rep.Token == "" || strings.Contains(rep.Token, tok) {
		t.Errorf("token shown as %q, want a fingerprint", rep.Token)
	}

	n.Store(0) // the warm-up (the first request) succeeds
	r, err := Run(context.Background(), Options{N: 4, C: 64, URL: srv.URL, Token: tok, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r.Print(&out)
	if r.Failures == 0 || strings.Contains(out.String(), tok) || !strings.Contains(out.String(), "410 recipient_gone") {
		t.Errorf("text summary: %d failures\n%s", r.Failures, out.String())
	}
}

// TestBenchFCM: --fcm sends every notification to Android through the
// built-in fake FCM, with one access token for the whole run.
func TestBenchFCM(t *testing.T) {
	rep, code := runJSON(t, Options{N: 300, C: 8, FCM: true, Batch: 0})
	if code != 0 || rep.OK != 300 || rep.Failures != 0 || rep.Target != TargetBuiltInFCM {
		t.Fatalf("exit %d, report %+v", code, rep)
	}
	if rep.TokensSigned == nil || *rep.TokensSigned != 1 {
		t.Errorf("access tokens fetched %v, want 1", rep.TokensSigned)
	}
	for _, bad := range []Options{{N: 1, C: 1, Timeout: time.Second, FCM: true, Direct: true}, {N: 1, C: 1, Timeout: time.Second, FCM: true, URL: "http://127.0.0.1:1"}} {
		if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "--fcm") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
