package creds_test

import (
	"context"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/internal/h2trouble"
)

// TestFCMTokenDrainingEndpoint: a token endpoint that drains every new
// connection (SETTINGS, GOAWAY last stream 0) gets a bounded number of
// connections and the fetch fails at once, instead of net/http re-dialling
// it as fast as handshakes go until FetchTimeout.
func TestFCMTokenDrainingEndpoint(t *testing.T) {
	t.Parallel()
	f := fcmFake(t, fakefcm.Options{Trouble: h2trouble.Trouble{DrainNew: true}})
	src := newSource(t, f, creds.FCMTokenOptions{FetchTimeout: 2 * time.Second})
	start := time.Now()
	_, err := src.Token(context.Background())
	d := time.Since(start)
	t.Logf("draining token endpoint: %v after %v, %d connections", err, d, f.Conns())
	if err == nil {
		t.Fatal("a token from a draining endpoint")
	}
	if f.Conns() > 6 || d > time.Second {
		t.Errorf("%d connections in %v; want at most 6, at once", f.Conns(), d)
	}
	if n := len(f.TokenFetches()); n != 0 {
		t.Errorf("%d token requests reached the endpoint", n)
	}
}
