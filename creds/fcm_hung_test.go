package creds_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
)

// A token endpoint that takes the request and never answers is cut off by
// FetchTimeout, and Close ends a request still waiting: x/oauth2/jwt posts
// without a context, so both depend on the client pushproxy hands it.
func TestFCMTokenHungEndpoint(t *testing.T) {
	t.Parallel()
	f := fcmFake(t, fakefcm.Options{})
	f.ScriptToken(fakefcm.TokenResponse{Delay: time.Minute})
	src := newSource(t, f, creds.FCMTokenOptions{FetchTimeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := src.Token(context.Background()) // no deadline of its own
	if d := time.Since(start); err == nil || d > 5*time.Second {
		t.Fatalf("Token answered %v after %v; want an error within FetchTimeout (300 ms)", err, d)
	}
	var te *creds.FCMTokenError
	if !errors.As(err, &te) || te.Status != 0 {
		t.Fatalf("error %#v, want a transport-level token error", err)
	}

	// Close while a request is outstanding.
	f.ScriptToken(fakefcm.TokenResponse{Delay: time.Minute})
	slow := newSource(t, f, creds.FCMTokenOptions{})
	slow.Prefetch()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.TokenFetches()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	start = time.Now()
	slow.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close waited %v for a token request the endpoint never answers", d)
	}
}
