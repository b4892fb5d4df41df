package proxy_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/proxy"
)

// notificationsTotals reads every pushproxy_notifications_total series from
// /metrics.
func notificationsTotals(t *testing.T, h *harness) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(string(h.get("/metrics").Raw), "\n") {
		if !strings.HasPrefix(line, "pushproxy_notifications_total{") {
			continue
		}
		series, v, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("metrics line %q", line)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[series] = f
	}
	return out
}

// TestBatchRefusalCounted: a batch refused as a whole (a malformed envelope,
// more entries than max_batch) is counted once in
// pushproxy_notifications_total, with platform "unknown" and its code, as
// a refused single notification is; no other series moves and nothing is
// sent.
func TestBatchRefusalCounted(t *testing.T) {
	const maxBatch = 3
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) { c.MaxBatch = maxBatch }})
	over := make([]any, maxBatch+1)
	for i := range over {
		over[i] = alert(h.token())
	}
	const series = `pushproxy_notifications_total{code="invalid_request",platform="unknown"}`
	for _, tc := range []struct {
		name  string
		body  any
		field string // the error's field, "" for none
	}{
		{"malformed json", `{"notifications":[{"to":`, ""},
		{"unknown field", `{"notifications":[],"bogus":1}`, "bogus"},
		{"no notifications", `{}`, "notifications"},
		{"null notifications", `{"notifications":null}`, "notifications"},
		{"over max_batch", map[string]any{"notifications": over}, "notifications"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := notificationsTotals(t, h)
			a := h.post("/v1/notifications/batch", tc.body)
			if a.Status != 400 || a.code() != "invalid_request" {
				t.Fatalf("%d %.300s", a.Status, a.Raw)
			}
			if f, _ := a.errField("field").(string); f != tc.field {
				t.Errorf("field %q, want %q", f, tc.field)
			}
			after := notificationsTotals(t, h)
			if d := after[series] - before[series]; d != 1 {
				t.Errorf("%s moved by %v, want 1", series, d)
			}
			for s, v := range after {
				if s != series && v != before[s] {
					t.Errorf("%s moved from %v to %v", s, before[s], v)
				}
			}
		})
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("APNs saw %d requests for refused batches", n)
	}
}
