// Package resend bounds the re-sends net/http's Transport makes on its
// own, for the Web Push and FCM senders.
//
// net/http sends a request again, by itself and at once, when the server
// did not process it: a GOAWAY that came before the request took its
// connection or whose last stream is below the request's, REFUSED_STREAM,
// a connection closed before anything was written. Each time it takes
// another connection, dialling a new one if none is open. Against a
// server that drains every new connection (SETTINGS, then GOAWAY with last
// stream 0, as a load balancer going out of service may do) that is a
// loop of TLS handshakes until the request's deadline: measured here, one
// request made 2,326 connections in 3 s and then failed with "context
// deadline exceeded", which said nothing of whether it was delivered.
//
// A [Pacer] watches, per host, whether it answers. While a host has
// answered nothing for a second, each request may dial it a few times
// ([Dial] wraps the transport's dialer); the next dial is refused with
// [ErrExhausted], and the host is left alone for a while (100 ms, doubling
// up to 1 s while it keeps refusing, so a host that recovers is used again
// within a second): every request's dial to it is refused at once until
// then. A host that answers is dialled freely.
//
// A request dials again only when net/http re-sends it, which it does
// only for requests the server did not process, and a refused dial sends
// nothing: a request that fails with ErrExhausted was not delivered, and
// the caller may send it again.
package resend

import (
	"context"
	"errors"
	"net"
	"net/http/httptrace"
	"sync"
	"time"
)

// ErrExhausted is the error of a request refused a new connection to a
// host that closed or refused, unprocessed, every recent one.
var ErrExhausted = errors.New("the server closed or refused every new connection before processing a request")

// DialFunc is the shape of net/http.Transport.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

const (
	// recentlyAnswered is how long an answer from a host exempts its new
	// connections from counting.
	recentlyAnswered = time.Second
	// restBase and restCeiling bound how long a refusing host is left
	// alone: restBase·2^(strikes-1), at most restCeiling.
	restBase    = 100 * time.Millisecond
	restCeiling = time.Second
	// maxHosts is how many hosts a Pacer remembers before it forgets
	// those not heard from for a minute.
	maxHosts = 256
)

// Pacer holds, per host, when it last answered and whether it is being
// left alone. One Pacer serves one transport; its memory is bounded.
type Pacer struct {
	attempts int
	now      func() time.Time

	mu    sync.Mutex
	hosts map[string]*host // by host:port
}

type host struct {
	answered  time.Time // last response
	touched   time.Time // last use, for forgetting
	strikes   int       // requests that spent their dials in a row
	restUntil time.Time // dials refused at once until then
}

// NewPacer makes a Pacer that lets each request dial a host that answers
// nothing at most attempts times (0 means 6).
func NewPacer(attempts int) *Pacer {
	if attempts <= 0 {
		attempts = 6
	}
	return &Pacer{attempts: attempts, now: time.Now, hosts: map[string]*host{}}
}

// hostLocked returns the state of addr, making it if need be.
func (p *Pacer) hostLocked(addr string, now time.Time) *host {
	h, ok := p.hosts[addr]
	if !ok {
		if len(p.hosts) >= maxHosts {
			for a, o := range p.hosts {
				if now.Sub(o.touched) > time.Minute {
					delete(p.hosts, a)
				}
			}
		}
		h = &host{}
		p.hosts[addr] = h
	}
	h.touched = now
	return h
}

func (p *Pacer) noteAnswer(addr string) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.hostLocked(addr, now)
	h.answered, h.strikes, h.restUntil = now, 0, time.Time{}
}

// Tracker counts the connections dialled for one request while its host
// answered nothing.
type Tracker struct {
	mu    sync.Mutex
	addr  string // host:port, from httptrace's GetConn
	dials int
}

// Dials is how many connections were dialled for the request while its
// host answered nothing.
func (t *Tracker) Dials() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dials
}

type ctxKey struct{}

type tracked struct {
	p *Pacer
	t *Tracker
}

// Track returns a context for one request whose dials Dial counts and
// bounds, and the request's Tracker. Its httptrace hooks only take note
// (x/net's HTTP/2 pool calls GetConn holding its lock): GetConn of the
// request's host, GotFirstResponseByte of the host's answer.
func (p *Pacer) Track(ctx context.Context) (context.Context, *Tracker) {
	t := &Tracker{}
	trace := &httptrace.ClientTrace{
		GetConn: func(addr string) {
			t.mu.Lock()
			t.addr = addr
			t.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			t.mu.Lock()
			addr := t.addr
			t.mu.Unlock()
			p.noteAnswer(addr)
		},
	}
	ctx = httptrace.WithClientTrace(ctx, trace)
	return context.WithValue(ctx, ctxKey{}, tracked{p, t}), t
}

// admit decides a dial of addr for t: nil, or ErrExhausted.
func (p *Pacer) admit(t *Tracker, addr string) error {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.hostLocked(addr, now)
	if now.Sub(h.answered) < recentlyAnswered {
		return nil
	}
	if now.Before(h.restUntil) {
		return ErrExhausted
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dials >= p.attempts {
		h.strikes++
		h.restUntil = now.Add(min(restBase<<min(h.strikes-1, 16), restCeiling))
		return ErrExhausted
	}
	t.dials++
	return nil
}

// Dial wraps a transport's dialer for requests made with a context from
// Pacer.Track (others dial as usual): a dial the Pacer refuses fails with
// ErrExhausted and opens no connection.
func Dial(next DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if tr, ok := ctx.Value(ctxKey{}).(tracked); ok {
			if err := tr.p.admit(tr.t, addr); err != nil {
				return nil, err
			}
		}
		return next(ctx, network, addr)
	}
}
