package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/proxy"
)

// TestMetricsAfterMixedRun scrapes /metrics after a run it caused and finds
// its counts.
func TestMetricsAfterMixedRun(t *testing.T) {
	h := newHarness(t, harnessOpts{fakeOpts: fakeapns.Options{GoAwayAfter: 3, GoAwayReason: "Shutdown"}})
	gone := h.token()
	h.fake.Script(gone, fakeapns.Response{Status: 410, Reason: "Unregistered"})
	h.post("/v1/notifications", alert(gone))
	h.post("/v1/notifications", `{"to":{"apns":{"token":"00"}},"title":"x"}`)
	h.post("/v1/notifications", `{"bogus":1}`)
	ok := 0
	for range 2 {
		if a := h.post("/v1/notifications", alert(h.token())); a.Status == 200 {
			ok++
		}
	}
	m := h.get("/metrics")
	text := string(m.Raw)
	for series, want := range map[string]float64{
		`pushproxy_notifications_total{code="recipient_gone",platform="apns"}`:     1,
		`pushproxy_notifications_total{code="invalid_recipient",platform="apns"}`:  1,
		`pushproxy_notifications_total{code="invalid_request",platform="unknown"}`: 1,
		`pushproxy_notifications_total{code="ok",platform="apns"}`:                 float64(ok),
		`pushproxy_tokens_signed_total{kind="apns"}`:                               1,
		`pushproxy_in_flight`:                                0,
		`pushproxy_credential_reloads_total{result="error"}`: 0,
	} {
		if got := metricValue(t, h, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, want := range []string{
		`pushproxy_upstream_duration_seconds_count{platform="apns"}`,
		`pushproxy_apns_goaway_total{reason="Shutdown"} 1`,
		`pushproxy_credential_info{fingerprint="`,
		`pushproxy_apns_connections `,
		`pushproxy_clock_skew_seconds{upstream="apns"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, gone) {
		t.Error("a device token is a label value")
	}
}

// TestClockSkew: a clock two hours behind makes APNs refuse the provider
// token as expired, even the fresh one; the error's hint, /readyz and the
// metric say the clock is off.
func TestClockSkew(t *testing.T) {
	behind := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	h := newHarness(t, harnessOpts{now: behind})
	a := h.post("/v1/notifications", alert(h.token()))
	if a.code() != "credentials_rejected" || !strings.Contains(a.errField("hint").(string), "clock is -1h59m5") && !strings.Contains(a.errField("hint").(string), "clock is -2h0m") {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	r := h.get("/readyz")
	ap := r.Body["platforms"].(map[string]any)["apns"].(map[string]any)
	skew, _ := ap["clock_skew_seconds"].(float64)
	if r.Status != 200 || r.Body["status"] != "degraded" || skew < -7201 || skew > -7199 || !strings.Contains(ap["reason"].(string), "clock") {
		t.Errorf("readyz %d %s", r.Status, r.Raw)
	}
	if got := metricValue(t, h, `pushproxy_clock_skew_seconds{upstream="apns"}`); got < -7201 || got > -7199 {
		t.Errorf("skew metric %v", got)
	}
}

// TestUnixSocket serves the API on a Unix socket.
func TestUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) { c.Listen = "unix://" + sock }})
	if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if a := h.get("/readyz"); a.Status != 200 {
		t.Fatalf("readyz over the socket: %d", a.Status)
	}
}

// TestShutdown: on shutdown /readyz fails at once, in-flight notifications
// complete, new ones are refused, and Serve returns nil.
func TestShutdown(t *testing.T) {
	fake, err := fakeapns.New(fakeapns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	h := newHarness(t, harnessOpts{}) // for keys and config
	cfg := *h.cfg
	cfg.Listen = "127.0.0.1:0"
	cfg.Upstream.APNsProductionURL = h.fake.URL()
	srv, err := proxy.New(&cfg, proxy.Options{Logger: slog.New(slog.NewJSONHandler(h.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := proxy.Listen(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	slow := h.token()
	h.fake.Script(slow, fakeapns.Response{Delay: 800 * time.Millisecond})
	var wg sync.WaitGroup
	var inflight int
	wg.Go(func() {
		body, _ := json.Marshal(alert(slow))
		resp, err := http.Post(url+"/v1/notifications", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Errorf("in-flight request: %v", err)
			return
		}
		resp.Body.Close()
		inflight = resp.StatusCode
	})
	waitFor(t, "the slow request to reach APNs", func() bool {
		for _, r := range h.fake.Requests() {
			if r.DeviceToken == slow {
				return true
			}
		}
		return false
	})
	if resp, err := http.Get(url + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz before: %v", err)
	} else {
		resp.Body.Close()
	}
	cancel()
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	waitFor(t, "new connections to be refused after the shutdown began", func() bool {
		resp, err := fresh.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	wg.Wait()
	if inflight != 200 {
		t.Errorf("the in-flight notification did not complete: %d", inflight)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
