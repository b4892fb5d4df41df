package proxy_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/internal/h2trouble"
)

// The Web Push and FCM senders against a service that misbehaves the ways
// HTTP/2 allows: every connection drained at once, GOAWAY every few
// streams, GOAWAY naming a last stream, TCP resets. Every notification is
// answered delivered (and reached the service once), "not delivered"
// (and never reached it), or "may have been delivered" (and reached it
// at most once); connections stay bounded.

// outcome checks one answer against how many times its notification
// reached the fake and says which it was: "delivered", "not" or "maybe"
// (upstream_unavailable after the request may have been sent, or
// upstream_timeout: under heavy churn net/http's HTTP/2 layer waits 1 s,
// 2 s, 4 s before re-sending a request on another connection, and the
// deadline may pass meanwhile).
func outcome(t *testing.T, a answer, reached int) string {
	t.Helper()
	switch {
	case a.Status == 200:
		if reached != 1 {
			t.Errorf("delivered, but reached the service %d times", reached)
		}
		return "delivered"
	case (a.code() == "upstream_unavailable" || a.code() == "upstream_timeout") && a.errField("retryable") == true && strings.Contains(a.errField("message").(string), "not delivered"):
		if reached != 0 {
			t.Errorf("answered not delivered, but reached the service %d times: %s", reached, a.Raw)
		}
		return "not"
	case a.code() == "upstream_timeout" && strings.Contains(a.errField("hint").(string), "may have been delivered"),
		a.code() == "upstream_unavailable" && a.errField("retryable") == false && strings.Contains(a.errField("hint").(string), "may have been delivered"):
		if reached > 1 {
			t.Errorf("may have been delivered, but reached the service %d times", reached)
		}
		if testing.Verbose() {
			t.Logf("maybe (reached %d): %s", reached, a.errField("message"))
		}
		return "maybe"
	}
	t.Errorf("answer outside the contract: %d %s", a.Status, a.Raw)
	return "?"
}

// wpOutcome is outcome for a Web Push notification to sub.
func wpOutcome(t *testing.T, w *wpHarness, a answer, sub *fakepush.Subscription) string {
	t.Helper()
	return outcome(t, a, len(w.requestsFor(sub.ID)))
}

// atOnce posts the notifications concurrently and returns the answers in
// their order.
func atOnce(h *harness, notes []map[string]any) []answer {
	answers := make([]answer, len(notes))
	var wg sync.WaitGroup
	for i, n := range notes {
		wg.Go(func() { answers[i] = h.post("/v1/notifications", n) })
	}
	wg.Wait()
	return answers
}

// wpFlood sends one notification to each of n new subscriptions at once
// and counts the outcomes.
func wpFlood(t *testing.T, w *wpHarness, n int) map[string]int {
	t.Helper()
	subs := make([]*fakepush.Subscription, n)
	notes := make([]map[string]any, n)
	for i := range n {
		var to map[string]any
		subs[i], to = w.subscribe(0, false)
		notes[i] = webNote(to)
	}
	out := map[string]int{}
	for i, a := range atOnce(w.harness, notes) {
		out[wpOutcome(t, w, a, subs[i])]++
	}
	return out
}

func TestWebPushDrainingService(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil)
	w.push.SetTrouble(h2trouble.Trouble{DrainNew: true})
	sub, to := w.subscribe(0, false)
	a := w.post("/v1/notifications", webNote(to))
	// Not delivered, retryable: mostly "draining every connection", or
	// "failed before the notification was sent" when the last attempt met
	// a connection drained before its first stream.
	if wpOutcome(t, w, a, sub) != "not" {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	// 3 attempts of the sender, each with 6 connections at most.
	if c := w.push.Conns(); c > 18 {
		t.Errorf("one notification made %d connections", c)
	}
	// Many at once: none reaches the service, each answer is in the
	// contract. Some are "may have been delivered": when the service
	// closes a connection while requests are being written to it, x/net
	// fails the connection's other streams too ("force closed") without
	// saying whether they were processed, and pushproxy cannot tell.
	before := w.push.Conns()
	got := wpFlood(t, w, 20)
	t.Logf("draining: 20 notifications at once: %v, %d connections", got, w.push.Conns()-before)
	if got["delivered"] != 0 || got["?"] != 0 || got["not"] == 0 {
		t.Errorf("outcomes %v, want not delivered (or may have been)", got)
	}
	if n := len(w.push.Requests()); n != 0 {
		t.Errorf("%d requests reached a draining service", n)
	}
	if c := w.push.Conns() - before; c > 20*18 {
		t.Errorf("%d connections for 20 notifications", c)
	}
	if !strings.Contains(w.logs.String(), "push service refuses every new connection unprocessed; leaving it alone") {
		t.Error("no log line says the push service is being left alone")
	}
	if got := metricValue(t, w.harness, `pushproxy_upstream_rests_total{platform="webpush"}`); got < 1 {
		t.Errorf("rests metric %v", got)
	}
	// The service recovers: pushproxy, which left it alone for at most a
	// second, delivers again.
	w.push.SetTrouble(h2trouble.Trouble{})
	time.Sleep(time.Second)
	if got := wpFlood(t, w, 20); got["delivered"] != 20 {
		t.Errorf("after recovery: %v", got)
	}
}

func TestWebPushGoAwayEveryFewStreams(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil)
	w.push.SetTrouble(h2trouble.Trouble{GoAwayAfter: 10})
	got := wpFlood(t, w, 60)
	t.Logf("graceful GOAWAY after every 10 streams: %v over %d connections", got, w.push.Conns())
	// Nothing is lost; under the race detector's slowness a few may meet
	// the deadline while net/http waits to re-send them.
	if got["delivered"] < 50 || got["not"]+got["?"] > 0 {
		t.Errorf("outcomes %v, want (nearly) all delivered", got)
	}
	// x/net's server sends its GOAWAY after the 10th stream, while more
	// may arrive: fewer than 6 connections, but several.
	if w.push.Conns() < 3 {
		t.Errorf("only %d connections: the GOAWAYs did not happen", w.push.Conns())
	}
}

func TestWebPushGoAwayNamingLastStream(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil)
	w.push.SetTrouble(h2trouble.Trouble{GoAwayAfter: 10, GoAwayReason: "Shutdown"})
	got := wpFlood(t, w, 60)
	t.Logf("GOAWAY naming the 10th stream as last: %v over %d connections", got, w.push.Conns())
	if got["delivered"] == 0 || got["?"] > 0 {
		t.Errorf("outcomes %v", got)
	}
}

func TestWebPushResetNeverResends(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil)
	w.push.SetTrouble(h2trouble.Trouble{ResetAfter: 10})
	got := wpFlood(t, w, 100)
	t.Logf("TCP reset at the 10th stream: %v over %d connections", got, w.push.Conns())
	if got["maybe"] == 0 || got["?"] > 0 {
		t.Errorf("outcomes %v, want some 'may have been delivered' and nothing else unexpected", got)
	}
}

func TestFCMDrainingService(t *testing.T) {
	h := newFCMHarness(t, fcmOpts{})
	h.ffcm.SetTrouble(h2trouble.Trouble{DrainNew: true})
	tok := h.regToken()
	a := h.post("/v1/notifications", fcmAlert(tok, nil))
	if a.code() != "upstream_unavailable" || a.errField("retryable") != true || !strings.Contains(a.errField("message").(string), "not delivered") {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if n := len(h.ffcm.Requests()); n != 0 {
		t.Errorf("%d requests reached FCM", n)
	}
	if got := metricValue(t, h.harness, `pushproxy_upstream_rests_total{platform="fcm"}`); got < 1 {
		t.Errorf("rests metric %v", got)
	}
	h.ffcm.SetTrouble(h2trouble.Trouble{})
	time.Sleep(time.Second) // the longest pushproxy leaves a refusing host alone
	if a := h.post("/v1/notifications", fcmAlert(tok, nil)); a.Status != 200 {
		t.Errorf("after recovery: %d %s", a.Status, a.Raw)
	}
}

// fcmFlood sends one notification to each of n new registration tokens at
// once and counts the outcomes.
func fcmFlood(t *testing.T, h *fcmHarness, n int) map[string]int {
	t.Helper()
	toks := make([]string, n)
	notes := make([]map[string]any, n)
	for i := range n {
		toks[i] = h.regToken()
		notes[i] = fcmAlert(toks[i], nil)
	}
	answers := atOnce(h.harness, notes)
	reached := map[string]int{}
	for _, r := range h.ffcm.Requests() {
		reached[r.Token]++
	}
	out := map[string]int{}
	for i, a := range answers {
		out[outcome(t, a, reached[toks[i]])]++
	}
	return out
}

func TestFCMGoAwayEveryFewStreams(t *testing.T) {
	h := newFCMHarness(t, fcmOpts{})
	h.ffcm.SetTrouble(h2trouble.Trouble{GoAwayAfter: 10})
	got := fcmFlood(t, h, 60)
	t.Logf("graceful GOAWAY after every 10 streams: %v over %d connections", got, h.ffcm.Conns())
	if got["delivered"] < 50 || got["not"]+got["?"] > 0 {
		t.Errorf("outcomes %v, want (nearly) all delivered", got)
	}
}

func TestFCMResetNeverResends(t *testing.T) {
	h := newFCMHarness(t, fcmOpts{})
	h.ffcm.SetTrouble(h2trouble.Trouble{ResetAfter: 10})
	got := fcmFlood(t, h, 60)
	t.Logf("TCP reset at the 10th stream: %v over %d connections", got, h.ffcm.Conns())
	if got["maybe"] == 0 || got["?"] > 0 {
		t.Errorf("outcomes %v, want some 'may have been delivered' and nothing outside the contract", got)
	}
}

// TestColdStartConnections: 100 notifications at once to a push service
// and to FCM that pushproxy has no connection to yet open at most 16
// connections to each (net/http alone dials one per waiting request and
// keeps one: 300 at once opened 365).
func TestColdStartConnections(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil)
	if got := wpFlood(t, w, 100); got["delivered"] != 100 {
		t.Errorf("Web Push: %v", got)
	}
	h := newFCMHarness(t, fcmOpts{})
	before := h.ffcm.Conns() // the token endpoint's
	if got := fcmFlood(t, h, 100); got["delivered"] != 100 {
		t.Errorf("FCM: %v", got)
	}
	t.Logf("connections: Web Push %d, FCM %d", w.push.Conns(), h.ffcm.Conns()-before)
	if w.push.Conns() > 16 || h.ffcm.Conns()-before > 16 {
		t.Errorf("Web Push %d, FCM %d connections for 100 at once; want at most 16 each", w.push.Conns(), h.ffcm.Conns()-before)
	}
}
