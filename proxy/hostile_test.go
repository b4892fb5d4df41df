package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// rawConn opens a plain TCP connection to the harness's server.
func rawConn(t *testing.T, h *harness) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAnswer reads one HTTP answer from c within d.
func readAnswer(t *testing.T, c net.Conn, d time.Duration) (int, map[string]any) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// TestStalledBodiesHoldNoSlot: bodies that never finish (declared length or
// chunked) do not take notification slots, and each is answered once the
// request's deadline passes.
func TestStalledBodiesHoldNoSlot(t *testing.T) {
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) { c.MaxInFlight = 2 }})
	var stalled []net.Conn
	for i := range 6 {
		c := rawConn(t, h)
		head := "POST /v1/notifications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Timeout: 1\r\n"
		if i%2 == 0 {
			head += "Content-Length: 500\r\n\r\n{\"to\":"
		} else {
			head += "Transfer-Encoding: chunked\r\n\r\n6\r\n{\"to\":\r\n"
		}
		if _, err := c.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	// With six stalled bodies and two slots, notifications still go through.
	for range 4 {
		if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
			t.Fatalf("a stalled body holds a slot: %d %s", a.Status, a.Raw)
		}
	}
	for i, c := range stalled {
		status, body := readAnswer(t, c, 5*time.Second)
		e, _ := body["error"].(map[string]any)
		if status != 400 || e == nil || e["code"] != "invalid_request" || !strings.Contains(e["message"].(string), "did not arrive") {
			t.Errorf("stalled body %d: %d %v", i, status, body)
		}
	}
}

// TestRequestBytesBudget: request bodies are admitted against
// max_body_bytes_in_flight before they are read: a declared length that
// does not fit is refused at once, a chunked body as soon as it outgrows
// what is left; the budget comes back when a request ends.
func TestRequestBytesBudget(t *testing.T) {
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
		c.MaxBodyBytes = 1 << 20
		c.MaxBodyBytesInFlight = 3 << 20
	}})
	// A stalled batch holds 2 MiB of the 3.
	c := rawConn(t, h)
	if _, err := fmt.Fprintf(c, "POST /v1/notifications/batch HTTP/1.1\r\nHost: x\r\nX-Request-Timeout: 2\r\nContent-Length: %d\r\n\r\n{", 2<<20); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server to admit the stalled batch", func() bool {
		return metricValue(t, h, "pushproxy_request_bytes_in_flight") == 2<<20
	})
	big := map[string]any{"notifications": []any{map[string]any{"to": map[string]any{"apns": map[string]any{"token": h.token()}}, "title": "x", "body": strings.Repeat("b", 3000)}}}
	raw, _ := json.Marshal(big)
	pad := bytes.Repeat([]byte(" "), (3<<19)-len(raw)) // 1.5 MiB in all
	body := append(raw[:len(raw)-1:len(raw)-1], append(pad, '}')...)
	start := time.Now()
	a := h.post("/v1/notifications/batch", body)
	if a.Status != 503 || a.code() != "overloaded" || a.Header.Get("Retry-After") == "" {
		t.Fatalf("a declared body over the budget: %d %s", a.Status, a.Raw)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("refused after %v, not at once", el)
	}
	// Chunked: refused once it outgrows the 1 MiB left.
	req, _ := http.NewRequest("POST", h.url+"/v1/notifications/batch", struct{ *bytes.Reader }{bytes.NewReader(body)})
	req.Header.Set("Content-Type", "application/json")
	if a := h.do(req); a.Status != 503 || a.code() != "overloaded" {
		t.Fatalf("a chunked body over the budget: %d %s", a.Status, a.Raw)
	}
	// A small notification fits beside the stalled batch.
	if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
		t.Fatalf("small: %d %s", a.Status, a.Raw)
	}
	// Once the stalled batch is answered (its deadline), the budget is back.
	status, _ := readAnswer(t, c, 5*time.Second)
	if status != 400 {
		t.Errorf("stalled batch: %d", status)
	}
	waitFor(t, "the budget to come back", func() bool {
		return metricValue(t, h, "pushproxy_request_bytes_in_flight") == 0
	})
	if a := h.post("/v1/notifications/batch", body); a.Status != 200 {
		t.Fatalf("after the budget came back: %d %s", a.Status, a.Raw)
	}
}

// TestBatchWaitsForSlots: one batch larger than max_in_flight on an idle
// server is delivered whole: its entries wait for slots within the deadline.
func TestBatchWaitsForSlots(t *testing.T) {
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) { c.MaxInFlight = 8 }})
	var ns []any
	for range 40 {
		ns = append(ns, alert(h.token()))
	}
	a := h.post("/v1/notifications/batch", map[string]any{"notifications": ns})
	rs, _ := a.Body["results"].([]any)
	if a.Status != 200 || len(rs) != 40 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	for i, r := range rs {
		if _, bad := r.(map[string]any)["error"]; bad {
			t.Errorf("entry %d: %v", i, r)
		}
	}
	// A batch whose deadline passes while it waits: the entries that got no
	// slot are overloaded, the others delivered; nothing is lost.
	slow := h.token()
	h.fake.ScriptAlways(slow, &fakeapns.Response{Delay: 3 * time.Second})
	ns = ns[:0]
	for range 8 {
		ns = append(ns, alert(slow))
	}
	for range 4 {
		ns = append(ns, alert(h.token()))
	}
	a = h.post("/v1/notifications/batch", map[string]any{"notifications": ns}, "X-Request-Timeout", "0.5")
	rs, _ = a.Body["results"].([]any)
	if a.Status != 200 || len(rs) != 12 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	codes := map[string]int{}
	for _, r := range rs {
		e, _ := r.(map[string]any)["error"].(map[string]any)
		if e == nil {
			codes["ok"]++
		} else {
			codes[e["code"].(string)]++
		}
	}
	if codes["upstream_timeout"] != 8 || codes["overloaded"]+codes["ok"] != 4 {
		t.Errorf("codes %v: %s", codes, a.Raw)
	}
}

// TestShutdownGraceAnswersWhatIsLeft: requests still running when
// shutdown_grace ends are answered (a sent one "may have been delivered",
// a queued batch entry "not delivered"), and Serve returns nil (exit 0).
func TestShutdownGraceAnswersWhatIsLeft(t *testing.T) {
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
		c.ShutdownGrace = 300 * time.Millisecond
		c.MaxInFlight = 1
	}})
	slow := h.token()
	h.fake.ScriptAlways(slow, &fakeapns.Response{Delay: 30 * time.Second})
	var wg sync.WaitGroup
	var single, batch answer
	wg.Go(func() {
		single = h.post("/v1/notifications", alert(slow), "X-Request-Timeout", "60")
	})
	waitFor(t, "the slow request to reach the fake", func() bool { return len(h.fake.Requests()) == 1 })
	held := metricValue(t, h, "pushproxy_request_bytes_in_flight") // the slow one's body
	wg.Go(func() {
		batch = h.post("/v1/notifications/batch", map[string]any{"notifications": []any{alert(h.token()), alert(h.token())}}, "X-Request-Timeout", "60")
	})
	waitFor(t, "the batch to be admitted (it then waits for the one slot)", func() bool {
		return metricValue(t, h, "pushproxy_request_bytes_in_flight") > held
	})
	start := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Serve returned %v; want nil once every request is answered", err)
	}
	wg.Wait()
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("shutdown took %v", el)
	}
	if single.code() != "upstream_unavailable" || single.errField("retryable") != false || !strings.Contains(single.errField("hint").(string), "may have been delivered") {
		t.Errorf("the sent notification: %d %s", single.Status, single.Raw)
	}
	rs, _ := batch.Body["results"].([]any)
	if batch.Status != 200 || len(rs) != 2 {
		t.Fatalf("batch: %d %s", batch.Status, batch.Raw)
	}
	for _, r := range rs {
		e, _ := r.(map[string]any)["error"].(map[string]any)
		if e == nil || e["code"] != "overloaded" || e["retryable"] != true {
			t.Errorf("queued batch entry: %v", r)
		}
	}
}

// TestCallerMistakesAre4xx: what the caller got wrong is a 4xx naming the
// field, never a retryable-looking 5xx; and JSON that encoding/json would
// accept with silent rewriting is refused.
func TestCallerMistakesAre4xx(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tok := h.token()
	to := `"to":{"apns":{"token":"` + tok + `"}}`
	cases := []struct {
		name, body string
		headers    []string
		status     int
		code       string
		field      string
	}{
		{"tiny X-Request-Timeout", "{" + to + `,"title":"x"}`, []string{"X-Request-Timeout", "1e-12"}, 400, "invalid_request", "X-Request-Timeout"},
		{"NaN X-Request-Timeout", "{" + to + `,"title":"x"}`, []string{"X-Request-Timeout", "NaN"}, 400, "invalid_request", "X-Request-Timeout"},
		{"X-Request-Timeout Inf", "{" + to + `,"title":"x"}`, []string{"X-Request-Timeout", "Inf"}, 400, "invalid_request", "X-Request-Timeout"},
		{"X-Request-Timeout 0x1p3", "{" + to + `,"title":"x"}`, []string{"X-Request-Timeout", "0x1p3"}, 400, "invalid_request", "X-Request-Timeout"},
		{"X-Request-Timeout 1_0", "{" + to + `,"title":"x"}`, []string{"X-Request-Timeout", "1_0"}, 400, "invalid_request", "X-Request-Timeout"},
		{"X-Request-Timeout 1e3", "{" + to + `,"title":"x"}`, []string{"X-Request-Timeout", "1e3"}, 400, "invalid_request", "X-Request-Timeout"},
		{"X-Request-Timeout -2", "{" + to + `,"title":"x"}`, []string{"X-Request-Timeout", "-2"}, 400, "invalid_request", "X-Request-Timeout"},
		{"X-Request-Timeout .", "{" + to + `,"title":"x"}`, []string{"X-Request-Timeout", "."}, 400, "invalid_request", "X-Request-Timeout"},
		{"X-Request-Timeout 2.5s", "{" + to + `,"title":"x"}`, []string{"X-Request-Timeout", "2.5s"}, 400, "invalid_request", "X-Request-Timeout"},
		{"field name in another case", "{" + to + `,"Title":"x"}`, nil, 400, "invalid_request", "Title"},
		{"unlisted topic", `{"to":{"apns":{"token":"` + tok + `","topic":"org.nobody.app"}},"title":"x"}`, nil, 400, "topic_mismatch", "to.apns.topic"},
		{"invalid UTF-8", "{" + to + ",\"title\":\"\xc3\x28\"}", nil, 400, "invalid_request", "title"},
		{"duplicate key", "{" + to + `,"title":"a","title":"b"}`, nil, 400, "invalid_request", "title"},
		{"webpush null", "{" + to + `,"title":"a","webpush":null}`, nil, 400, "invalid_request", "webpush"},
		{"Content-Type prefix", "{" + to + `,"title":"a"}`, []string{"Content-Type", "application/jsonx"}, 400, "invalid_request", "Content-Type"},
		{"Content-Type charset", "{" + to + `,"title":"a"}`, []string{"Content-Type", "application/json; charset=latin1"}, 400, "invalid_request", "Content-Type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h.post("/v1/notifications", c.body, c.headers...)
			if a.Status != c.status || a.code() != c.code || a.errField("field") != c.field {
				t.Fatalf("%d %s", a.Status, a.Raw)
			}
		})
	}
	if a := h.post("/v1/notifications", "{"+to+`,"title":"a"}`, "Content-Type", "application/json; charset=UTF-8"); a.Status != 200 {
		t.Errorf("charset=UTF-8 refused: %d %s", a.Status, a.Raw)
	}
	if len(h.fake.Requests()) != 1 {
		t.Errorf("%d requests reached the fake; only the valid one should", len(h.fake.Requests()))
	}
}

// TestPanicIsAnswered: a panic in the request path is answered
// internal_error (logged and counted), in a batch it fails only its entry,
// and the process goes on.
func TestPanicIsAnswered(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	proxy.SetTestHook(h.srv, func(n *translate.Notification) {
		if n.Title == "boom" {
			panic("test panic")
		}
	})
	boom := alert(h.token())
	boom["title"] = "boom"
	a := h.post("/v1/notifications", boom)
	if a.Status != 500 || a.code() != "internal_error" {
		t.Fatalf("single: %d %s", a.Status, a.Raw)
	}
	a = h.post("/v1/notifications/batch", map[string]any{"notifications": []any{alert(h.token()), boom, alert(h.token())}})
	rs, _ := a.Body["results"].([]any)
	if a.Status != 200 || len(rs) != 3 {
		t.Fatalf("batch: %d %s", a.Status, a.Raw)
	}
	for i, r := range rs {
		_, failed := r.(map[string]any)["error"]
		if failed != (i == 1) {
			t.Errorf("entry %d: %v", i, r)
		}
	}
	if got := metricValue(t, h, `pushproxy_notifications_total{code="internal_error",platform="unknown"}`); got != 2 {
		t.Errorf("internal_error counted %v times, want 2", got)
	}
	if !strings.Contains(h.logs.String(), "test panic") {
		t.Error("the panic is not logged")
	}
	if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
		t.Fatalf("after the panics: %d %s", a.Status, a.Raw)
	}
}

// TestConfigAndCredentialsSwapTogether: auth_token_file is added to and
// removed from the configuration over and over while requests carrying
// the right token run: never a 401 (the configuration and the credentials
// it names are one state, swapped whole).
func TestConfigAndCredentialsSwapTogether(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	tokPath := filepath.Join(dir, "api-token")
	if err := os.WriteFile(tokPath, []byte("swap-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var h *harness
	write := func(auth bool) {
		y := fmt.Sprintf(`listen: 127.0.0.1:0
upstream: {apns_production_url: %s, apns_development_url: %s, ca_file: %s}
reload: {poll_interval: 0s}
apns:
  - {name: default, key_file: %s, team_id: %s, topics: [%s]}
`, h.fake.URL(), h.fake.URL(), h.cfg.Upstream.CAFile, h.keyPath, teamID, bundle)
		if auth {
			y = "auth_token_file: " + tokPath + "\n" + y
		}
		if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h = newHarness(t, harnessOpts{configPath: cfgPath})
	h.addSecret("swap-secret")
	write(false)
	h.srv.Reload("test")
	stop := make(chan struct{})
	var sent, refused atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := h.post("/v1/notifications", map[string]any{"to": map[string]any{"apns": map[string]any{"token": h.token()}}, "title": "x", "dry_run": true},
					"Authorization", "Bearer swap-secret")
				sent.Add(1)
				if a.Status != 200 {
					refused.Add(1)
					t.Errorf("%d %s", a.Status, a.Raw)
				}
			}
		})
	}
	for i := range 60 {
		write(i%2 == 0)
		h.srv.Reload("test")
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests during 60 configuration swaps, %d refused", sent.Load(), refused.Load())
}
