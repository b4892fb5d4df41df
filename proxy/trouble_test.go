package proxy_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// flood posts n notifications at once through the real server, each with
// its own token and apns-id, and returns the answers by apns-id.
func flood(t *testing.T, h *harness, n int) map[string]answer {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(2*n+512) > lim.Cur {
		n = int(lim.Cur-512) / 2
		t.Logf("file descriptor limit %d: %d concurrent notifications", lim.Cur, n)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	defer client.CloseIdleConnections()
	type res struct {
		id string
		a  answer
	}
	out := make(chan res, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		id := newTestUUID()
		tok := h.token()
		wg.Go(func() {
			body, _ := json.Marshal(map[string]any{"to": map[string]any{"apns": map[string]any{"token": tok}}, "title": "t", "id": id})
			<-start
			resp, err := client.Post(h.url+"/v1/notifications", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Errorf("post: %v", err)
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			a := answer{Status: resp.StatusCode, Raw: raw}
			_ = json.Unmarshal(raw, &a.Body)
			out <- res{id, a}
		})
	}
	close(start)
	wg.Wait()
	close(out)
	answers := map[string]answer{}
	for r := range out {
		answers[r.id] = r.a
	}
	return answers
}

func newTestUUID() string {
	var b [16]byte
	_, _ = io.ReadFull(rand.Reader, b[:])
	return translate.UUIDv4(b)
}

// processedByID counts, per apns-id, the requests the fake received.
func processedByID(h *harness) map[string]int {
	m := map[string]int{}
	for _, r := range h.fake.Requests() {
		m[r.Header.Get("apns-id")]++
	}
	return m
}

// TestGoAwayFloodLosesNothing: the fake advertises 1,000 streams like
// APNs and sends GOAWAY after every 50 streams; 5,000 concurrent
// notifications through the real server all succeed within the default
// deadline, and none is sent twice.
func TestGoAwayFloodLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("flood")
	}
	h := newHarness(t, harnessOpts{fakeOpts: fakeapns.Options{MaxConcurrentStreams: 1000, GoAwayAfter: 50},
		mutate: func(c *proxy.Config) { c.MaxInFlight = 10000 }})
	n := 5000
	if raceEnabled {
		n = 600
	}
	start := time.Now()
	answers := flood(t, h, n)
	t.Logf("%d notifications in %v over %d connections", len(answers), time.Since(start), h.fake.Conns())
	failed := 0
	for _, a := range answers {
		if a.Status != 200 {
			failed++
			if failed <= 3 {
				t.Errorf("status %d: %s", a.Status, a.Raw)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d failed", failed, len(answers))
	}
	seen := processedByID(h)
	for id := range answers {
		if seen[id] != 1 {
			t.Fatalf("apns-id %s reached the server %d times", id, seen[id])
		}
	}
	// The server's last stream ID covers every stream it had received when
	// it sent the GOAWAY, so a connection carries 50 or more.
	if h.fake.Conns() < n/500 {
		t.Errorf("only %d connections: the GOAWAYs did not happen", h.fake.Conns())
	}
}

// TestConnectionResetNeverResends: the fake drops each connection (TCP
// RST) at its 50th stream. A notification the server may have processed is
// answered upstream_unavailable saying it may have been delivered, never
// re-sent; the others are delivered. The fake allows 25 concurrent streams,
// so a connection's 50th stream opens only after 25 were answered: both
// outcomes happen however fast the client writes (with 1,000 allowed, all
// 1,000 could be on the wire before the reset, as happened once in CI).
func TestConnectionResetNeverResends(t *testing.T) {
	h := newHarness(t, harnessOpts{fakeOpts: fakeapns.Options{ResetAfter: 50, MaxConcurrentStreams: 25},
		mutate: func(c *proxy.Config) { c.MaxInFlight = 10000 }})
	n := 1000
	if raceEnabled {
		n = 300
	}
	answers := flood(t, h, n)
	seen := processedByID(h)
	ok, maybe := 0, 0
	for id, a := range answers {
		switch {
		case a.Status == 200:
			ok++
			if seen[id] != 1 {
				t.Errorf("delivered %s reached the server %d times", id, seen[id])
			}
		case a.code() == "upstream_unavailable" && strings.Contains(a.errField("hint").(string), "may have been delivered"):
			maybe++
			if seen[id] > 1 {
				t.Errorf("%s was re-sent after a reset (%d times)", id, seen[id])
			}
			if a.errField("retryable") != false {
				t.Errorf("a maybe-delivered notification is marked retryable: %s", a.Raw)
			}
		default:
			t.Errorf("unexpected answer %d %s", a.Status, a.Raw)
		}
	}
	t.Logf("%d delivered, %d may have been delivered, %d connections", ok, maybe, h.fake.Conns())
	if maybe == 0 || ok < 25 {
		t.Errorf("want both outcomes (at least 25 delivered), got %d delivered and %d failed", ok, maybe)
	}
}

// TestGoAwayReasonReported: APNs's GOAWAY debug data reaches the log, the
// metric and the error of the notification it failed; the streams above
// the GOAWAY's last stream are re-sent and delivered.
func TestGoAwayReasonReported(t *testing.T) {
	h := newHarness(t, harnessOpts{fakeOpts: fakeapns.Options{GoAwayAfter: 3, GoAwayReason: "Shutdown"}})
	var failedWith []answer
	delivered := 0
	for range 8 {
		a := h.post("/v1/notifications", alert(h.token()))
		if a.Status == 200 {
			delivered++
		} else {
			failedWith = append(failedWith, a)
		}
	}
	if len(failedWith) == 0 {
		t.Fatal("no notification met the GOAWAY")
	}
	for _, a := range failedWith {
		up, _ := a.errField("upstream").(map[string]any)
		if a.code() != "upstream_unavailable" || up == nil || up["reason"] != "Shutdown" || !strings.Contains(a.errField("hint").(string), "may have been delivered") {
			t.Errorf("answer %d %s", a.Status, a.Raw)
		}
	}
	if got := metricValue(t, h, `pushproxy_apns_goaway_total{reason="Shutdown"}`); got < 1 {
		t.Errorf("goaway metric %v", got)
	}
	if !strings.Contains(h.logs.String(), `"reason":"Shutdown"`) {
		t.Error("the GOAWAY reason is not in the log")
	}
	// Concurrent: only the stream each GOAWAY names as the last one fails
	// (it was in flight when the connection closed); the streams above it
	// are re-sent on a new connection and delivered.
	h.fake.Reset()
	conns0 := h.fake.Conns()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []answer
	delivered = 0
	for range 30 {
		tok := h.token()
		wg.Go(func() {
			start := time.Now()
			a := h.post("/v1/notifications", alert(tok))
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("took %v: %s", el, a.Raw)
			}
			mu.Lock()
			defer mu.Unlock()
			if a.Status == 200 {
				delivered++
			} else {
				failed = append(failed, a)
			}
		})
	}
	wg.Wait()
	// +1: the last connection of the first phase may meet its GOAWAY here.
	goaways := h.fake.Conns() - conns0 + 1

	if len(failed) > goaways || delivered+len(failed) != 30 {
		t.Errorf("%d delivered, %d failed, %d GOAWAYs: more failures than GOAWAYs means unprocessed streams were not re-sent", delivered, len(failed), goaways)
	}
	for _, a := range failed {
		if up, _ := a.errField("upstream").(map[string]any); up == nil || up["reason"] != "Shutdown" {
			t.Errorf("failure %s", a.Raw)
		}
	}
	seen := processedByID(h)
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%s processed %d times", id, n)
		}
	}
}

// TestGoAwayWithCredentialReason: a documented reason in a GOAWAY keeps its
// meaning.
func TestGoAwayWithCredentialReason(t *testing.T) {
	h := newHarness(t, harnessOpts{fakeOpts: fakeapns.Options{GoAwayAfter: 1, GoAwayReason: "BadCertificateEnvironment", GoAwayCode: http2.ErrCodeProtocol}})
	a := h.post("/v1/notifications", alert(h.token()))
	if a.code() != "credentials_rejected" || a.Status != 502 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
}

func TestUnreachableUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) { c.Upstream.APNsProductionURL = "https://" + addr }})
	start := time.Now()
	a := h.post("/v1/notifications", alert(h.token()))
	if a.Status != 503 || a.code() != "upstream_unavailable" || a.errField("retryable") != true {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if el := time.Since(start); el < 50*time.Millisecond || el > 5*time.Second {
		t.Errorf("answered after %v: want bounded retries with back-off", el)
	}
}

// TestEnvironmentAuto: a token refused with BadDeviceToken on production is
// tried once on the sandbox host.
func TestEnvironmentAuto(t *testing.T) {
	dev, err := fakeapns.New(fakeapns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
		c.APNs[0].Environment = "auto"
		c.Upstream.APNsDevelopmentURL = dev.URL()
	}})
	// Both fakes' CAs must be trusted: append the sandbox fake's.
	appendCA(t, h.cfg.Upstream.CAFile, dev.CAPEM())
	h.start() // a new server that reads the extended CA file
	dev.AddKey(teamID, keyID, &h.key.PublicKey, bundle)

	tok := h.token()
	h.fake.Script(tok, fakeapns.Response{Status: 400, Reason: "BadDeviceToken"})
	a := h.post("/v1/notifications", alert(tok))
	if a.Status != 200 || a.Body["environment"] != "development" || a.Body["attempts"] != float64(2) {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	tok = h.token()
	h.fake.Script(tok, fakeapns.Response{Status: 400, Reason: "BadDeviceToken"})
	dev.Script(tok, fakeapns.Response{Status: 400, Reason: "BadDeviceToken"})
	a = h.post("/v1/notifications", alert(tok))
	if a.code() != "invalid_recipient" || !strings.Contains(a.errField("hint").(string), "both") {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	// Policy other_host: once on each host, then the caller is told to
	// delete the token, not to retry.
	if p, d := len(sentFor(h.fake, tok)), len(sentFor(dev, tok)); p != 1 || d != 1 {
		t.Errorf("sent %d times to production and %d to the sandbox, want once each", p, d)
	}
	if a.errField("retryable") != false || a.errField("action") != "remove_recipient" {
		t.Errorf("caller told %s", a.Raw)
	}
	tok = h.token()
	h.fake.Script(tok, fakeapns.Response{Status: 400, Reason: "BadDeviceToken"})
	dev.Script(tok, fakeapns.Response{Status: 403, Reason: "InvalidProviderToken"})
	a = h.post("/v1/notifications", alert(tok))
	if a.code() != "environment_mismatch" || !strings.Contains(a.errField("hint").(string), "development") {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	// An explicit environment is not switched.
	tok = h.token()
	h.fake.Script(tok, fakeapns.Response{Status: 400, Reason: "BadDeviceToken"})
	n := alert(tok)
	n["to"].(map[string]any)["apns"].(map[string]any)["environment"] = "production"
	a = h.post("/v1/notifications", n)
	if a.code() != "invalid_recipient" || !strings.Contains(a.errField("hint").(string), "development build") {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if p, d := len(sentFor(h.fake, tok)), len(sentFor(dev, tok)); p != 1 || d != 0 || a.errField("retryable") != false {
		t.Errorf("sent %d times to production and %d to the sandbox: %s", p, d, a.Raw)
	}
}

func appendCA(t *testing.T, path string, pem []byte) {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(old, pem...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOverloadFlood: beyond max_in_flight the answer is overloaded at once
// (503 + Retry-After), never a queue; what was admitted is delivered.
func TestOverloadFlood(t *testing.T) {
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) { c.MaxInFlight = 20 }})
	// The admitted ones take 1.5 s: an overloaded answer that came later
	// than that waited for a slot.
	h.fake.SetDefault(&fakeapns.Response{Delay: 1500 * time.Millisecond})
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	var slowest time.Duration
	for range 300 {
		tok := h.token()
		wg.Go(func() {
			start := time.Now()
			a := h.post("/v1/notifications", alert(tok))
			el := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			codes[a.code()]++
			if a.code() == "overloaded" {
				slowest = max(slowest, el)
				if a.Header.Get("Retry-After") == "" || a.Status != 503 {
					t.Errorf("overloaded answer %d without Retry-After", a.Status)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("outcomes %v; slowest overloaded answer %v", codes, slowest)
	if codes["overloaded"] == 0 || codes[""] < 20 || codes[""]+codes["overloaded"] != 300 {
		t.Errorf("outcomes %v", codes)
	}
	if slowest > 1200*time.Millisecond {
		t.Errorf("an overloaded answer took %v: it waited in a queue", slowest)
	}
	if n := len(h.fake.Requests()); n != codes[""] {
		t.Errorf("the fake saw %d requests for %d delivered", n, codes[""])
	}
}
