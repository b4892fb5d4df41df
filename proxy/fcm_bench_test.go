package proxy_test

// FCM end to end against a direct client, both to the same fake FCM
// (internal/fakefcm: TLS + HTTP/2 on loopback, every message validated and
// its access token checked):
//
//   - BenchmarkFCMEndToEnd: POST /v1/notifications to an in-process
//     pushproxy (HTTP/1.1 keep-alive on loopback, one connection per
//     sending goroutine, as pushproxy bench does), which translates,
//     takes its cached access token and sends over its shared HTTP/2
//     client. It reports "token-fetches": the token requests the fake saw
//     during the whole benchmark, warm-up included (the bar: 1).
//   - BenchmarkFCMDirect: the smallest correct client, an HTTP/2
//     http.Client posting the same message bytes with one access token
//     fetched before the clock starts. The floor any FCM client reaches
//     here.
//
// Both send from fcmBenchSenders goroutines to registration tokens drawn
// from a pre-made pool, and fail on any answer but 200. The fake runs in
// the same process: its share is in both. Each also reports "cpu-ns/op",
// the process's CPU time per notification, which a busy shared machine
// disturbs much less than ns/op. scripts/bench-fcm.sh runs them
// in rotated order over several rounds and prints the ratio of medians
// (end to end / direct throughput = ns/op(direct) / ns/op(end to end); the
// bar is 0.5×, as for APNs). One sitting:
//
//	go test -run='^$' -bench='FCMEndToEnd|FCMDirect' -benchtime=20000x ./proxy/

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/proxy"
)

// fcmBenchSenders is the number of goroutines sending at once (pushproxy
// bench's default -c).
const fcmBenchSenders = 64

// fcmBenchEnv is a fake FCM with the test service account and a pool of
// registration tokens.
type fcmBenchEnv struct {
	fake   *fakefcm.Server
	tokens []string
	next   atomic.Uint64
	failed atomic.Int64
	first  atomic.Pointer[string]
}

func newFCMBenchEnv(b *testing.B) *fcmBenchEnv {
	b.Helper()
	fake, err := fakefcm.New(fakefcm.Options{MaxRecords: 1000})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = fake.Close() })
	fake.AddServiceAccount(fcmEmail, fcmKeyID(0), &fcmKey(b, 0).PublicKey, fcmProject)
	e := &fcmBenchEnv{fake: fake, tokens: make([]string, 4096)}
	for i := range e.tokens {
		e.tokens[i] = fmt.Sprintf("bench%017d:APA91b%0140d", i, i)
	}
	return e
}

func (e *fcmBenchEnv) token() string { return e.tokens[(e.next.Add(1)-1)%uint64(len(e.tokens))] }

// fail records a failure (RunParallel's goroutines may not call b.Fatal).
func (e *fcmBenchEnv) fail(format string, args ...any) {
	if e.failed.Add(1) == 1 {
		s := fmt.Sprintf(format, args...)
		e.first.Store(&s)
	}
}

// run sends from fcmBenchSenders goroutines, b.N times in all, after one
// warm-up send outside the timer; any failure fails the benchmark.
func (e *fcmBenchEnv) run(b *testing.B, send func()) {
	b.Helper()
	send()
	if e.failed.Load() > 0 {
		b.Fatalf("warm-up: %s", *e.first.Load())
	}
	b.ReportAllocs()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism(max(1, (fcmBenchSenders+procs-1)/procs))
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			send()
		}
	})
	b.StopTimer()
	// CPU time of the whole process (client, pushproxy, fake) per
	// notification: on a shared machine, wall-clock ns/op moves with the
	// other tenants' load, the CPU a notification costs much less.
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	if n := e.failed.Load(); n > 0 {
		b.Fatalf("%d failures, the first: %s", n, *e.first.Load())
	}
}

// fcmBenchBody is the notification of both benchmarks.
// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fcmBenchBody(tok string) map[string]any {
	return map[string]any{"to": map[string]any{"fcm": map[string]any{"token": tok}},
		"title": "Order shipped", "body": "On its way", "data": map[string]any{"order": "1234"}, "priority": "high", "ttl": 3600}
}

func BenchmarkFCMEndToEnd(b *testing.B) {
	e := newFCMBenchEnv(b)
	dir := b.TempDir()
	saPath := filepath.Join(dir, "service-account.json")
	data, err := creds.EncodeServiceAccount(fcmKey(b, 0), fcmEmail, fcmKeyID(0), fcmProject, e.fake.TokenURL())
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(saPath, data, 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := proxy.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.MaxInFlight = max(cfg.MaxInFlight, 4*fcmBenchSenders)
	cfg.FCM = []proxy.FCMConfig{{ServiceAccountFile: saPath}}
	cfg.Upstream.FCMURL = e.fake.URL()
	cfg.Reload.PollInterval = 0
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	srv, err := proxy.New(&cfg, proxy.Options{Logger: slog.New(slog.DiscardHandler), RootCAs: e.fake.CertPool()})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := proxy.Listen(cfg.Listen)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	})
	url := "http://" + ln.Addr().String() + "/v1/notifications"
	bodies := make(map[string][]byte, len(e.tokens))
	for _, tok := range e.tokens {
		bodies[tok], _ = json.Marshal(fcmBenchBody(tok))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * fcmBenchSenders, MaxIdleConnsPerHost: 2 * fcmBenchSenders,
		DisableCompression: true, IdleConnTimeout: 90 * time.Second}}
	defer client.CloseIdleConnections()
	e.run(b, func() {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[e.token()]))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			e.fail("%v", err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			e.fail("%d %s", resp.StatusCode, body)
		}
	})
	b.ReportMetric(float64(len(e.fake.TokenFetches())), "token-fetches")
}

func BenchmarkFCMDirect(b *testing.B) {
	e := newFCMBenchEnv(b)
	// One access token, fetched before the clock starts, as a hand-written
	// client would keep it.
	data, err := creds.EncodeServiceAccount(fcmKey(b, 0), fcmEmail, fcmKeyID(0), fcmProject, e.fake.TokenURL())
	if err != nil {
		b.Fatal(err)
	}
	acct, err := creds.ParseServiceAccount(data, "")
	if err != nil {
		b.Fatal(err)
	}
	src, err := creds.NewFCMTokenSource(acct, creds.FCMTokenOptions{RootCAs: e.fake.CertPool()})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	tok, err := src.Token(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	// The message bytes pushproxy would send, made once per token.
	bodies := make(map[string][]byte, len(e.tokens))
	for _, t := range e.tokens {
		n := fcmBenchBody(t)
		bodies[t], _ = json.Marshal(map[string]any{"message": map[string]any{
			"token": t, "notification": map[string]any{"title": n["title"], "body": n["body"]},
			"data": n["data"], "android": map[string]any{"priority": "HIGH", "ttl": "3600s"},
		}})
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.fake.CertPool()}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	url := e.fake.URL() + "/v1/projects/" + fcmProject + "/messages:send"
	auth := "Bearer " + tok.AccessToken
	e.run(b, func() {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[e.token()]))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		resp, err := client.Do(req)
		if err != nil {
			e.fail("%v", err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			e.fail("%d %s", resp.StatusCode, body)
		}
	})
}
