// Package resend paces and bounds the re-sends net/http's Transport makes
// on its own, for the Web Push and FCM senders.
//
// net/http sends a request again, by itself and at once, when the server
// did not process it: a GOAWAY that came before the request took its
// connection or whose last stream is below the request's, REFUSED_STREAM,
// a connection closed before anything was written. Each time it takes
// another connection, dialling a new one if none is idle. Against a
// server that drains every new connection (SETTINGS, then GOAWAY with last
// stream 0, as a load balancer going out of service may do) that is a
// loop of TLS handshakes until the request's deadline: measured here, one
// request made 2,326 connections in 3 s and then failed with "context
// deadline exceeded", which said nothing of whether it was delivered.
//
// A [Budget] gives each request a few connection attempts, waits with
// back-off before each re-send after the first (httptrace's GetConn marks every attempt,
// the first and net/http's re-sends), and when the attempts are spent
// refuses the next dial ([Budget.Dial] wraps the transport's dialer), so
// the request fails with [ErrExhausted]. Every attempt before that one
// was re-sent by net/http, which it only does for requests the server
// did not process, and the refused dial sent nothing: such a request was
// not delivered, and the caller may send it again.
package resend

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http/httptrace"
	"sync"
	"time"
)

// ErrExhausted is the error of a request whose connection attempts were
// all spent on connections that processed nothing.
var ErrExhausted = errors.New("the server closed or refused every connection before processing the request")

// DialFunc is the shape of net/http.Transport.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Budget is how many connection attempts a request gets and how long it
// waits before each re-send.
type Budget struct {
	// Attempts bounds the connection attempts of one request, the first
	// included; 0 means 5.
	Attempts int
	// Base and Ceiling shape the wait before re-send n+1 (the first
	// re-send goes at once): a random duration between half and all of
	// min(Base·2^(n-1), Ceiling). Zero means 25 ms and 1 s.
	Base, Ceiling time.Duration
}

func (b Budget) attempts() int {
	if b.Attempts <= 0 {
		return 5
	}
	return b.Attempts
}

func (b Budget) wait(resend int) time.Duration {
	base, ceiling := b.Base, b.Ceiling
	if base <= 0 {
		base = 25 * time.Millisecond
	}
	if ceiling <= 0 {
		ceiling = time.Second
	}
	c := min(base<<min(resend-1, 16), ceiling)
	return c/2 + rand.N(c/2+1)
}

// Tracker counts one request's connection attempts.
type Tracker struct {
	mu        sync.Mutex
	attempts  int
	exhausted bool
}

// Attempts is how many connections the request asked for: 1, plus one
// per re-send net/http made.
func (t *Tracker) Attempts() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attempts
}

// NotProcessed is, when err is ErrExhausted, how many connections in a
// row refused the request unprocessed (the attempts before the refused
// dial); else 0.
func (t *Tracker) NotProcessed(err error) int {
	if !errors.Is(err, ErrExhausted) {
		return 0
	}
	return t.Attempts() - 1
}

type ctxKey struct{}

// Track returns a context for one request that counts and paces its
// connection attempts, and the request's Tracker. The wait before a
// re-send ends early when ctx ends.
func (b Budget) Track(ctx context.Context) (context.Context, *Tracker) {
	t := &Tracker{}
	max := b.attempts()
	trace := &httptrace.ClientTrace{GetConn: func(string) {
		t.mu.Lock()
		t.attempts++
		n := t.attempts
		if n > max {
			t.exhausted = true
		}
		t.mu.Unlock()
		if n <= 2 || n > max && n <= 2*max {
			// The first attempt and the first re-send go at once: at a cold
			// start net/http dials for every waiting request, keeps one
			// HTTP/2 connection and sends the others' requests again, so
			// one re-send is routine. One past the budget fails at once in
			// the dial (a cached connection may still take it, and if that
			// fails too, later ones wait again).
			return
		}
		timer := time.NewTimer(b.wait(n - 2))
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
	}}
	ctx = httptrace.WithClientTrace(ctx, trace)
	return context.WithValue(ctx, ctxKey{}, t), t
}

// Dial wraps a transport's dialer: a request whose Tracker is exhausted
// gets ErrExhausted instead of a new connection. Requests without a
// Tracker dial as usual.
func Dial(next DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if t, ok := ctx.Value(ctxKey{}).(*Tracker); ok {
			t.mu.Lock()
			ex := t.exhausted
			t.mu.Unlock()
			if ex {
				return nil, ErrExhausted
			}
		}
		return next(ctx, network, addr)
	}
}
