package proxy_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/internal/fakeapns"
)

// TestDrainingUpstreamAnswersNotDelivered: an APNs host that answers every
// new connection with SETTINGS and GOAWAY (last stream 0), as a draining
// load balancer may. Once the re-sends run out, or the deadline passes
// between them, the notification is answered upstream_unavailable (or
// upstream_timeout) "not delivered" with the GOAWAY's reason, never a crash:
// single notifications and batches alike (a batch's workers once took the
// whole process down).
func TestDrainingUpstreamAnswersNotDelivered(t *testing.T) {
	h := newHarness(t, harnessOpts{fakeOpts: fakeapns.Options{DrainNew: true}})
	check := func(t *testing.T, raw string, code, status any, e map[string]any) {
		t.Helper()
		if e == nil {
			t.Fatalf("no error: %s", raw)
		}
		if e["code"] != "upstream_unavailable" && e["code"] != "upstream_timeout" {
			t.Errorf("code %v: %s", e["code"], raw)
		}
		if !strings.Contains(e["message"].(string), "not delivered") || e["retryable"] != true {
			t.Errorf("want a retryable 'not delivered' answer: %s", raw)
		}
		if up, _ := e["upstream"].(map[string]any); up == nil || up["reason"] != "Shutdown" {
			t.Errorf("the GOAWAY reason is not reported: %s", raw)
		}
		if hint, _ := e["hint"].(string); hint == "" {
			t.Errorf("no hint: %s", raw)
		}
	}
	t.Run("single, re-sends run out", func(t *testing.T) {
		start, c0 := time.Now(), h.fake.Conns()
		a := h.post("/v1/notifications", alert(h.token()), "X-Request-Timeout", "30")
		if a.Status != 503 {
			t.Fatalf("status %d: %s", a.Status, a.Raw)
		}
		e, _ := a.Body["error"].(map[string]any)
		check(t, string(a.Raw), nil, nil, e)
		// Six connections refused whole, then the answer (it was 100, one
		// per re-send, as fast as handshakes go).
		if c, d := h.fake.Conns()-c0, time.Since(start); c > 6 || d > 5*time.Second {
			t.Errorf("%d connections in %v", c, d)
		}
		// The pool now leaves the host alone (500 ms, then 1 s at a time):
		// the next notification opens at most one connection (when a rest
		// ends while it retries with back-off).
		c := h.fake.Conns()
		a = h.post("/v1/notifications", alert(h.token()))
		e, _ = a.Body["error"].(map[string]any)
		check(t, string(a.Raw), nil, nil, e)
		if h.fake.Conns() > c+1 {
			t.Errorf("a resting pool dialled %d connections", h.fake.Conns()-c)
		}
		if !strings.Contains(h.logs.String(), "not dialling it for a while") {
			t.Error("no log line says the pool rests")
		}
		if got := metricValue(t, h, `pushproxy_upstream_rests_total{platform="apns"}`); got < 1 {
			t.Errorf("rests metric %v", got)
		}
	})
	t.Run("single, deadline between re-sends", func(t *testing.T) {
		a := h.post("/v1/notifications", alert(h.token()), "X-Request-Timeout", "0.05")
		if a.Status != 503 && a.Status != 504 {
			t.Fatalf("status %d: %s", a.Status, a.Raw)
		}
		e, _ := a.Body["error"].(map[string]any)
		if e == nil || (e["code"] != "upstream_timeout" && e["code"] != "upstream_unavailable") {
			t.Fatalf("answer %s", a.Raw)
		}
	})
	t.Run("batch", func(t *testing.T) {
		var ns []any
		for range 6 {
			ns = append(ns, alert(h.token()))
		}
		a := h.post("/v1/notifications/batch", map[string]any{"notifications": ns}, "X-Request-Timeout", "30")
		if a.Status != 200 {
			t.Fatalf("status %d: %s", a.Status, a.Raw)
		}
		rs, _ := a.Body["results"].([]any)
		if len(rs) != len(ns) {
			t.Fatalf("%d results for %d entries: %s", len(rs), len(ns), a.Raw)
		}
		for _, r := range rs {
			e, _ := r.(map[string]any)["error"].(map[string]any)
			check(t, string(a.Raw), nil, nil, e)
		}
	})
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("the fake processed %d requests on connections it refused", n)
	}
	// The server is still alive and delivers once the upstream recovers
	// (within a second: the longest the pool leaves a draining host alone).
	h.fake.SetDrainNew(false)
	time.Sleep(time.Second)
	if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
		t.Fatalf("after recovery: %d %s", a.Status, a.Raw)
	}
}

// TestSoakDrainThenRecover runs notifications, single and in batches, from
// several clients through a fake APNs that refuses every new connection
// with GOAWAY for a while and then recovers. The process never exits,
// every notification gets an answer within the contract, and nothing is
// lost silently: every answer is either delivered (and reached the fake
// exactly once) or a retryable "not delivered" error (and never reached it).
func TestSoakDrainThenRecover(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	h := newHarness(t, harnessOpts{fakeOpts: fakeapns.Options{DrainNew: true}})
	const clients = 8
	stop := make(chan struct{})
	var delivered, refused atomic.Int64
	var mu sync.Mutex
	// apns-id → what the answer said: delivered, not delivered, or (a
	// deadline that passed after the request was written on a healthy
	// connection, as a slow machine may see) maybe delivered.
	const (
		notDelivered = iota
		isDelivered
		maybe
	)
	sent := map[string]int{}
	record := func(id string, how int) {
		mu.Lock()
		sent[id] = how
		mu.Unlock()
		switch how {
		case isDelivered:
			delivered.Add(1)
		case notDelivered:
			refused.Add(1)
		}
	}
	judge := func(id string, r map[string]any, raw []byte) {
		if r["platform"] == "apns" && r["error"] == nil {
			record(id, isDelivered)
			return
		}
		e, _ := r["error"].(map[string]any)
		if e == nil {
			t.Errorf("answer without result or error: %s", raw)
			return
		}
		msg, _ := e["message"].(string)
		hint, _ := e["hint"].(string)
		switch {
		case e["code"] != "upstream_unavailable" && e["code"] != "upstream_timeout":
			t.Errorf("unexpected error: %s", raw)
		case strings.Contains(msg, "not delivered") && e["retryable"] == true:
			record(id, notDelivered)
		case strings.Contains(hint, "may have been delivered"):
			record(id, maybe)
		default:
			t.Errorf("unexpected error: %s", raw)
		}
	}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if (c+i)%4 == 0 {
					var ns []any
					var ids []string
					for range 5 {
						n := alert(h.token())
						id := newTestUUID()
						n["id"] = id
						ns = append(ns, n)
						ids = append(ids, id)
					}
					a := h.post("/v1/notifications/batch", map[string]any{"notifications": ns}, "X-Request-Timeout", "5")
					rs, _ := a.Body["results"].([]any)
					if a.Status != 200 || len(rs) != len(ids) {
						t.Errorf("batch answer %d: %s", a.Status, a.Raw)
						return
					}
					for k, r := range rs {
						judge(ids[k], r.(map[string]any), a.Raw)
					}
					continue
				}
				n := alert(h.token())
				id := newTestUUID()
				n["id"] = id
				a := h.post("/v1/notifications", n, "X-Request-Timeout", "5")
				judge(id, a.Body, a.Raw)
			}
		})
	}
	// Drain until notifications have met it (each one is re-sent on new
	// connections until its re-sends or its deadline run out), then recover.
	deadline := time.Now().Add(20 * time.Second)
	for refused.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	refusedWhileDraining := refused.Load()
	h.fake.SetDrainNew(false)
	deadline = time.Now().Add(10 * time.Second)
	d0 := delivered.Load()
	for delivered.Load() < d0+200 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d delivered, %d answered not delivered (%d while draining), %d connections", delivered.Load(), refused.Load(), refusedWhileDraining, h.fake.Conns())
	if refusedWhileDraining == 0 {
		t.Error("no notification met the draining upstream")
	}
	if delivered.Load() < d0+200 {
		t.Errorf("only %d delivered after recovery", delivered.Load()-d0)
	}
	processed := processedByID(h)
	mu.Lock()
	defer mu.Unlock()
	for id, how := range sent {
		switch {
		case how == isDelivered && processed[id] != 1:
			t.Errorf("delivered %s reached the fake %d times", id, processed[id])
		case how == notDelivered && processed[id] != 0:
			t.Errorf("%s answered not delivered but reached the fake %d times", id, processed[id])
		case how == maybe && processed[id] > 1:
			t.Errorf("%s answered maybe delivered but reached the fake %d times", id, processed[id])
		}
	}
	if a := h.get("/healthz"); a.Status != 200 {
		t.Errorf("healthz %d after the soak", a.Status)
	}
}
