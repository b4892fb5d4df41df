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

func TestRetries(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	t.Run("5xx with back-off, attempts true", func(t *testing.T) {
		tok := h.token()
		h.fake.Script(tok, fakeapns.Response{Status: 500}, fakeapns.Response{Status: 503, Reason: "Shutdown"})
		a := h.post("/v1/notifications", alert(tok))
		if a.Status != 200 || a.Body["attempts"] != float64(3) {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		var times []time.Time
		for _, r := range h.fake.Requests() {
			if r.DeviceToken == tok {
				times = append(times, r.Received)
			}
		}
		if len(times) != 3 || times[1].Sub(times[0]) < 20*time.Millisecond || times[2].Sub(times[1]) < 40*time.Millisecond {
			t.Errorf("no back-off between attempts: %v", times)
		}
	})
	t.Run("IdleTimeout on a new connection", func(t *testing.T) {
		tok := h.token()
		h.fake.Script(tok, fakeapns.Response{Status: 400, Reason: "IdleTimeout"})
		a := h.post("/v1/notifications", alert(tok))
		if a.Status != 200 || a.Body["attempts"] != float64(2) {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		var conns []uint64
		for _, r := range h.fake.Requests() {
			if r.DeviceToken == tok {
				conns = append(conns, r.Conn)
			}
		}
		if len(conns) != 2 || conns[0] == conns[1] {
			t.Errorf("connections %v", conns)
		}
	})
	t.Run("429 honours Retry-After", func(t *testing.T) {
		tok := h.token()
		h.fake.Script(tok, fakeapns.Response{Status: 429, Reason: "TooManyRequests", RetryAfter: "1"})
		start := time.Now()
		a := h.post("/v1/notifications", alert(tok))
		if a.Status != 200 || time.Since(start) < 900*time.Millisecond {
			t.Fatalf("%d after %v: %s", a.Status, time.Since(start), a.Raw)
		}
	})
	t.Run("429 without Retry-After backs off", func(t *testing.T) {
		tok := h.token()
		h.fake.Script(tok, fakeapns.Response{Status: 429, Reason: "TooManyRequests"})
		if a := h.post("/v1/notifications", alert(tok)); a.Status != 200 || a.Body["attempts"] != float64(2) {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	})
	t.Run("Retry-After beyond the deadline answers at once", func(t *testing.T) {
		tok := h.token()
		h.fake.Script(tok, fakeapns.Response{Status: 429, Reason: "TooManyRequests", RetryAfter: "30"})
		start := time.Now()
		a := h.post("/v1/notifications", alert(tok), "X-Request-Timeout", "2")
		if a.Status != 429 || a.code() != "rate_limited" || a.errField("retry_after") != float64(30) || a.Header.Get("Retry-After") != "30" || time.Since(start) > time.Second {
			t.Fatalf("%d after %v: %s", a.Status, time.Since(start), a.Raw)
		}
	})
	t.Run("retries stop at the deadline", func(t *testing.T) {
		tok := h.token()
		r := fakeapns.Response{Status: 503}
		h.fake.Script(tok, r, r, r, r, r, r, r, r)
		start := time.Now()
		a := h.post("/v1/notifications", alert(tok), "X-Request-Timeout", "0.12")
		if el := time.Since(start); el > 400*time.Millisecond {
			t.Errorf("answered after %v", el)
		}
		if a.code() != "upstream_unavailable" && a.code() != "upstream_timeout" {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	})
	t.Run("TooManyProviderTokenUpdates is not retried and is loud", func(t *testing.T) {
		tok := h.token()
		h.fake.Script(tok, fakeapns.Response{Status: 429, Reason: "TooManyProviderTokenUpdates"})
		if a := h.post("/v1/notifications", alert(tok)); a.code() != "rate_limited" {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		if !strings.Contains(h.logs.String(), `"level":"ERROR","msg":"APNs answered TooManyProviderTokenUpdates`) {
			t.Error("not logged as an error")
		}
	})
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

// sentFor is what the fake received for one device token, in order.
func sentFor(f *fakeapns.Server, tok string) []fakeapns.Request {
	var out []fakeapns.Request
	for _, r := range f.Requests() {
		if r.DeviceToken == tok {
			out = append(out, r)
		}
	}
	return out
}

// distinctConns counts the connections requests came on.
func distinctConns(rs []fakeapns.Request) int {
	m := map[uint64]bool{}
	for _, r := range rs {
		m[r.Conn] = true
	}
	return len(m)
}

// TestRetryPolicies: for a sample of each row policy of translate's APNs
// table, through the real server, pushproxy retries exactly as the row
// says (requests counted at the fake), and the final answer's retryable
// and action say what the caller should do, which is not always what
// pushproxy did.
func TestRetryPolicies(t *testing.T) {
	type want struct {
		sent, conns int // requests at the fake; distinct connections (0: any)
		status      int
		code        string
		retryable   bool
		action      string
	}
	check := func(t *testing.T, h *harness, tok string, a answer, w want) []fakeapns.Request {
		t.Helper()
		sent := sentFor(h.fake, tok)
		if len(sent) != w.sent {
			t.Errorf("the fake received %d requests, want %d", len(sent), w.sent)
		}
		if w.conns > 0 && distinctConns(sent) != w.conns {
			t.Errorf("requests came on %d connections, want %d", distinctConns(sent), w.conns)
		}
		if a.Status != w.status || a.code() != w.code {
			t.Fatalf("answer %d %s, want %d %s: %s", a.Status, a.code(), w.status, w.code, a.Raw)
		}
		if w.code != "" && (a.errField("retryable") != w.retryable || a.errField("action") != w.action) {
			t.Errorf("caller told retryable=%v action=%v, want %v %s: %s", a.errField("retryable"), a.errField("action"), w.retryable, w.action, a.Raw)
		}
		return sent
	}
	h := newHarness(t, harnessOpts{})
	always := func(r fakeapns.Response) string {
		tok := h.token()
		h.fake.ScriptAlways(tok, &r)
		return tok
	}

	t.Run("none: TooManyProviderTokenUpdates is not retried, the caller retries later", func(t *testing.T) {
		tok := always(fakeapns.Response{Status: 429, Reason: "TooManyProviderTokenUpdates"})
		a := h.post("/v1/notifications", alert(tok))
		check(t, h, tok, a, want{sent: 1, status: 429, code: "rate_limited", retryable: true, action: "retry_later"})
	})
	t.Run("none: BadTopic is answered at once, not retryable", func(t *testing.T) {
		tok := always(fakeapns.Response{Status: 400, Reason: "BadTopic"})
		a := h.post("/v1/notifications", alert(tok))
		check(t, h, tok, a, want{sent: 1, status: 400, code: "topic_mismatch", retryable: false, action: "fix_request"})
	})
	t.Run("backoff: ServiceUnavailable until the attempts run out, then retry later", func(t *testing.T) {
		tok := always(fakeapns.Response{Status: 503, Reason: "ServiceUnavailable"})
		a := h.post("/v1/notifications", alert(tok), "X-Request-Timeout", "5")
		sent := check(t, h, tok, a, want{sent: 4, status: 503, code: "upstream_unavailable", retryable: true, action: "retry_later"})
		if len(sent) == 4 && sent[1].Conn != sent[0].Conn && sent[2].Conn != sent[1].Conn {
			t.Errorf("back-off retries moved to new connections: %d, %d, %d", sent[0].Conn, sent[1].Conn, sent[2].Conn)
		}
		if !strings.Contains(a.errField("message").(string), "after 4 attempts") {
			t.Errorf("message %v", a.errField("message"))
		}
	})
	t.Run("new_conn: IdleTimeout on a new connection each time, then retry later", func(t *testing.T) {
		tok := always(fakeapns.Response{Status: 400, Reason: "IdleTimeout"})
		a := h.post("/v1/notifications", alert(tok), "X-Request-Timeout", "5")
		check(t, h, tok, a, want{sent: 4, conns: 4, status: 503, code: "upstream_unavailable", retryable: true, action: "retry_later"})
	})
	t.Run("new_conn: a Shutdown answer retires its connection", func(t *testing.T) {
		tok := h.token()
		h.fake.Script(tok, fakeapns.Response{Status: 503, Reason: "Shutdown"})
		a := h.post("/v1/notifications", alert(tok))
		check(t, h, tok, a, want{sent: 2, conns: 2, status: 200})
		if a.Body["attempts"] != float64(2) {
			t.Errorf("attempts %v", a.Body["attempts"])
		}
	})
	t.Run("new_conn_once: UnrelatedKeyIdInToken once on a new connection, then fix the credentials", func(t *testing.T) {
		tok := always(fakeapns.Response{Status: 403, Reason: "UnrelatedKeyIdInToken"})
		a := h.post("/v1/notifications", alert(tok))
		check(t, h, tok, a, want{sent: 2, conns: 2, status: 502, code: "credentials_rejected", retryable: false, action: "fix_credentials"})
	})
	t.Run("fresh_token: ExpiredProviderToken once with a token signed now, then fix the credentials", func(t *testing.T) {
		h := newHarness(t, harnessOpts{}) // a forced refresh is allowed once per key per 20 minutes
		tok := h.token()
		h.fake.ScriptAlways(tok, &fakeapns.Response{Status: 403, Reason: "ExpiredProviderToken"})
		before := time.Now().Unix()
		a := h.post("/v1/notifications", alert(tok))
		sent := check(t, h, tok, a, want{sent: 2, status: 502, code: "credentials_rejected", retryable: false, action: "fix_credentials"})
		if len(sent) == 2 && (sent[0].JWT == sent[1].JWT || sent[1].IssuedAt < before-1) {
			t.Errorf("the retry's token is not a fresh one: iat %d then %d (sent at %d)", sent[0].IssuedAt, sent[1].IssuedAt, before)
		}
	})
	t.Run("fresh_token: ExpiredProviderToken once, then delivered", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		tok := h.token()
		h.fake.Script(tok, fakeapns.Response{Status: 403, Reason: "ExpiredProviderToken"})
		a := h.post("/v1/notifications", alert(tok))
		check(t, h, tok, a, want{sent: 2, status: 200})
	})
}
