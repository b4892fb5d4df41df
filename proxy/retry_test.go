package proxy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/internal/fakeapns"
)

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
