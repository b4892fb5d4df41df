package h2trouble_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/internal/h2trouble"
)

// A graceful GOAWAY on every connection loses nothing: every request is
// answered, each reached the handler once, and they were spread over
// several connections (the client would use one otherwise).
func TestGracefulGoAwayLosesNothing(t *testing.T) {
	const total, workers, after = 60, 6, 5
	f := newFixture(t, h2trouble.Trouble{GoAwayAfter: after})
	c := f.client(false)
	ids := make(chan string, total)
	for i := range total {
		ids <- fmt.Sprint("n", i)
	}
	close(ids)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range ids {
				got, err := post(t.Context(), c, f.url, id, true)
				if err != nil || got != "HTTP/2.0 ok "+id {
					t.Errorf("%s: %q, %v", id, got, err)
				}
			}
		})
	}
	wg.Wait()

	perID, perConn := map[string]int{}, map[int]int{}
	for _, s := range f.reached() {
		perID[s.id]++
		perConn[s.conn]++
	}
	if len(perID) != total {
		t.Errorf("%d distinct requests reached the handler, want %d", len(perID), total)
	}
	for id, n := range perID {
		if n != 1 {
			t.Errorf("%s reached the handler %d times", id, n)
		}
	}
	// Each connection is closed after `after` streams and those in flight
	// at its GOAWAY (at most one per worker): at least total/(after+workers)
	// of them. The client may dial a few more than it uses.
	if f.tr.Conns() < total/(after+workers) {
		t.Errorf("%d HTTP/2 connections for %d requests with GoAwayAfter %d", f.tr.Conns(), total, after)
	}
	for conn, n := range perConn {
		if conn == 0 || conn > f.conns.Count() || n > after+workers {
			t.Errorf("connection %d (of %d counted by the ConnState hook) carried %d streams", conn, f.conns.Count(), n)
		}
	}
}

// A GOAWAY with a reason: the stream at the limit fails with an error that
// carries the debug data and never reaches the handler; streams below the
// GOAWAY's last stream are answered; no stream above it reaches the
// handler on that connection (the client sends them again elsewhere).
func TestGoAwayWithReason(t *testing.T) {
	f := newFixture(t, h2trouble.Trouble{GoAwayAfter: 3, GoAwayReason: "Overloaded", GoAwayCode: http2.ErrCodeEnhanceYourCalm})
	c := f.client(false)
	for _, id := range []string{"a", "b"} {
		if _, err := post(t.Context(), c, f.url, id, true); err != nil {
			t.Fatal(err)
		}
	}
	// Three at once: whichever reaches the fake first is the third stream.
	ids := []string{"c", "d", "e"}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { _, errs[i] = post(t.Context(), c, f.url, id, true) })
	}
	wg.Wait()
	line := f.waitLog(": GOAWAY last=")
	var last uint32
	if _, err := fmt.Sscanf(line[strings.Index(line, "last="):], "last=%d", &last); err != nil {
		t.Fatalf("%q: %v", line, err)
	}

	var failed string
	for i, err := range errs {
		if err == nil {
			continue
		}
		if failed != "" {
			t.Errorf("%s failed too: %v", ids[i], err)
		}
		failed = ids[i]
		msg := err.Error()
		for _, want := range []string{"GOAWAY", fmt.Sprintf("LastStreamID=%d", last), "ENHANCE_YOUR_CALM", `\"reason\":\"Overloaded\"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not say %s", ids[i], msg, want)
			}
		}
	}
	if failed == "" {
		t.Fatal("no request failed")
	}
	for _, s := range f.reached() {
		switch {
		case s.id == failed:
			t.Errorf("%s reached the handler: %+v", failed, s)
		case s.conn == 1 && (s.stream == 0 || s.stream > last):
			t.Errorf("stream %d above the GOAWAY's last stream %d reached the handler: %+v", s.stream, last, s)
		case !s.answered:
			t.Errorf("not answered: %+v", s)
		}
	}
	if n := len(f.reached()); n != 4 { // a, b and the two that did not fail
		t.Errorf("%d requests reached the handler, want 4: %+v", n, f.reached())
	}
	// Every connection gets its GOAWAY at its third stream, until the
	// trouble is switched off.
	f.tr.Set(h2trouble.Trouble{})
	for _, id := range []string{"f", "g", "h"} {
		if _, err := post(t.Context(), c, f.url, id, true); err != nil {
			t.Error(err)
		}
	}
	if f.tr.Conns() < 2 {
		t.Errorf("%d connections", f.tr.Conns())
	}
}

// A reset: the request in flight fails, its handler never answers, and
// so does the stream that reached the count, which never reaches the
// handler; the client sees a TCP reset.
func TestResetAfter(t *testing.T) {
	f := newFixture(t, h2trouble.Trouble{ResetAfter: 2})
	c := f.client(false)
	held := make(chan error, 1)
	go func() {
		_, err := post(t.Context(), c, f.url, "held", true, "X-Hold", "1")
		held <- err
	}()
	f.waitEntered()
	_, errB := post(t.Context(), c, f.url, "second", false)
	errA := <-held
	// The client sees the reset as ECONNRESET or, when a write reported
	// it first (Linux reports a reset once), as an unexpected EOF; never
	// as a GOAWAY.
	for name, err := range map[string]error{"held": errA, "second": errB} {
		switch {
		case err == nil:
			t.Errorf("%s: no error", name)
		case strings.Contains(err.Error(), "GOAWAY"):
			t.Errorf("%s: %v", name, err)
		default:
			t.Logf("%s: %v (ECONNRESET: %v)", name, err, errors.Is(err, syscall.ECONNRESET))
		}
	}
	f.waitLog("reset after 2 streams")
	r := f.reached()
	if len(r) != 1 || r[0].id != "held" || r[0].answered {
		t.Errorf("reached the handler: %+v; want only the held one, unanswered", r)
	}
}

// DrainNew: every new connection gets a GOAWAY before anything is served,
// so a request fails and nothing reaches the handler; switched off with
// Set, requests succeed.
func TestDrainNewThenSet(t *testing.T) {
	f := newFixture(t, h2trouble.Trouble{DrainNew: true})
	c := f.client(false)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	got, err := post(ctx, c, f.url, "drained", false)
	t.Logf("drained after %v: %q, %v", time.Since(start), got, err)
	if err == nil {
		t.Fatalf("drained request answered %q", got)
	}
	if r := f.reached(); len(r) != 0 {
		t.Errorf("reached the handler: %+v", r)
	}
	if f.tr.Conns() < 1 {
		t.Errorf("%d connections", f.tr.Conns())
	}
	f.waitLog("refused at once with GOAWAY last=0")

	f.tr.Set(h2trouble.Trouble{})
	if got, err := post(t.Context(), c, f.url, "after", false); err != nil || got != "HTTP/2.0 ok after" {
		t.Errorf("after Set: %q, %v", got, err)
	}
}

// A client that offers only http/1.1 is served HTTP/1.1 by the
// http.Server, untroubled; an HTTP/2 client on the same server is drained.
func TestHTTP1StillServed(t *testing.T) {
	f := newFixture(t, h2trouble.Trouble{DrainNew: true})
	for i := range 3 {
		got, err := post(t.Context(), f.client(true), f.url, fmt.Sprint("h1-", i), false)
		if err != nil || got != fmt.Sprintf("HTTP/1.1 ok h1-%d", i) {
			t.Errorf("HTTP/1.1: %q, %v", got, err)
		}
	}
	if n := f.tr.Conns(); n != 0 {
		t.Errorf("%d connections went through h2trouble", n)
	}
	if _, err := post(t.Context(), f.client(false), f.url, "h2", false); err == nil {
		t.Error("HTTP/2 request answered despite DrainNew")
	}
	r := f.reached()
	if len(r) != 3 || r[0].proto != "HTTP/1.1" || r[0].conn == 0 {
		t.Errorf("reached the handler: %+v", r)
	}
}
