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
// With a [Pacer], each request may dial a few times ([Dial] wraps the
// transport's dialer; a request on a healthy host dials once at most); the
// next dial is refused with [ErrExhausted], and the host is left alone for
// a while (100 ms, doubling up to 1 s while it keeps refusing, so a host
// that recovers is used again within a second): every request's dial to
// it is refused at once until then, and an answer from it ends that.
//
// A request dials again only when net/http re-sends it, which it does
// only for requests the server did not process (GOAWAY above the
// request's stream, REFUSED_STREAM, a connection closed before the request
// was written; and, for servers known to send it wrongly, a
// RST_STREAM(PROTOCOL_ERROR) from the peer, golang/go#47635), and a refused
// dial sends nothing: a request that fails with ErrExhausted was not
// delivered, and the caller may send it again. [Tracker.Sent] says whether
// a request that failed otherwise wrote anything in its latest attempt.
package resend

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrExhausted is the error of a request refused a new connection: it
// spent its dials on connections that processed nothing, or its host
// refuses every new connection lately and is being left alone.
var ErrExhausted = errors.New("the server closed or refused every new connection before processing a request")

// DialFunc is the shape of net/http.Transport.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

const (
	// restBase and restCeiling bound how long a refusing host is left
	// alone: restBase·2^(strikes-1), at most restCeiling.
	restBase    = 100 * time.Millisecond
	restCeiling = time.Second
	// maxHosts bounds the hosts a Pacer holds state for (hosts left alone
	// lately); beyond it the stalest is forgotten.
	maxHosts = 256
)

// Options configure a Pacer.
type Options struct {
	// Attempts bounds the dials of one request; 0 means 6.
	Attempts int
	// Logger gets a warning when a host starts being left alone; nil
	// means none.
	Logger *slog.Logger
	// Server names the upstream in that warning ("the push service").
	Server string
	// OnRest, if set, is called (without the Pacer's lock) when a host
	// starts being left alone, for a metric.
	OnRest func()
}

// Pacer holds the hosts being left alone. One Pacer serves one transport.
// It holds state only for hosts that refused a request's every dial since
// they last answered, at most maxHosts of them.
type Pacer struct {
	o   Options
	now func() time.Time

	n     atomic.Int32 // len(hosts), read without the lock on every answer
	mu    sync.Mutex
	hosts map[string]*host // by host:port
}

type host struct {
	strikes   int       // rests in a row without an answer
	restUntil time.Time // dials refused at once until then
}

// NewPacer makes a Pacer.
func NewPacer(o Options) *Pacer {
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pacer{o: o, now: time.Now, hosts: map[string]*host{}}
}

// noteAnswer forgets addr's state: it answered.
func (p *Pacer) noteAnswer(addr string) {
	if p.n.Load() == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.hosts[addr]; ok {
		delete(p.hosts, addr)
		p.n.Store(int32(len(p.hosts)))
	}
}

// resting reports whether addr is being left alone.
func (p *Pacer) resting(addr string) bool {
	if p.n.Load() == 0 {
		return false
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.hosts[addr]
	return ok && now.Before(h.restUntil)
}

// strike leaves addr alone for a while, longer each time in a row; a host
// already resting is not struck again.
func (p *Pacer) strike(addr string) {
	now := p.now()
	p.mu.Lock()
	h, ok := p.hosts[addr]
	if !ok {
		if len(p.hosts) >= maxHosts {
			p.forgetStalestLocked()
		}
		h = &host{}
		p.hosts[addr] = h
		p.n.Store(int32(len(p.hosts)))
	}
	if now.Before(h.restUntil) {
		p.mu.Unlock()
		return
	}
	h.strikes++
	rest := min(restBase<<min(h.strikes-1, 16), restCeiling)
	h.restUntil = now.Add(rest)
	strikes := h.strikes
	p.mu.Unlock()
	p.o.Logger.Warn(p.o.Server+" refuses every new connection unprocessed; leaving it alone",
		"host", addr, "for", rest, "rests_in_a_row", strikes)
	if p.o.OnRest != nil {
		p.o.OnRest()
	}
}

// forgetStalestLocked forgets the host whose rest ended longest ago.
func (p *Pacer) forgetStalestLocked() {
	var stalest string
	var at time.Time
	for a, h := range p.hosts {
		if stalest == "" || h.restUntil.Before(at) {
			stalest, at = a, h.restUntil
		}
	}
	delete(p.hosts, stalest)
}

// Tracker follows one request: the connections dialled for it, and
// whether its latest attempt wrote its request.
type Tracker struct {
	mu    sync.Mutex
	addr  string // host:port, from httptrace's GetConn
	dials int
	sent  bool // the latest attempt wrote its headers
}

// Dials is how many connections were dialled for the request.
func (t *Tracker) Dials() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dials
}

// Sent reports whether the request's latest attempt wrote its headers
// (httptrace's WroteHeaders; x/net calls it even when the write failed).
// When a request failed and Sent is false, it was not sent: net/http makes
// another attempt only after one the server did not process, and the
// latest wrote nothing.
func (t *Tracker) Sent() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}

// NotSent reports whether a request that failed with err surely sent
// nothing: it was refused a dial (ErrExhausted), its latest attempt wrote
// nothing (Sent), or x/net failed it as the first request of a connection
// that closed before its first stream ("client conn could not be
// established", unexported: matched by text, pinned by this package's
// tests; x/net returns it before writing, and Sent may still hold a
// re-sent request's earlier attempt when x/net's pool hands it a
// connection dialled for another request without calling GetConn).
func (t *Tracker) NotSent(err error) bool {
	return err != nil && (errors.Is(err, ErrExhausted) || !t.Sent() ||
		strings.Contains(err.Error(), "http2: client conn could not be established"))
}

type ctxKey struct{}

type tracked struct {
	p *Pacer
	t *Tracker
}

// Track returns a context for one request whose dials Dial counts and
// bounds, and the request's Tracker. Its httptrace hooks only take note
// (x/net's HTTP/2 pool calls GetConn holding its lock): GetConn of the
// request's host and of a new attempt, WroteHeaders of a write,
// GotFirstResponseByte of the host's answer.
func (p *Pacer) Track(ctx context.Context) (context.Context, *Tracker) {
	t := &Tracker{}
	trace := &httptrace.ClientTrace{
		GetConn: func(addr string) {
			t.mu.Lock()
			t.addr, t.sent = addr, false
			t.mu.Unlock()
		},
		WroteHeaders: func() {
			t.mu.Lock()
			t.sent = true
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
	if p.resting(addr) {
		return ErrExhausted
	}
	t.mu.Lock()
	spent := t.dials >= p.o.Attempts
	if !spent {
		t.dials++
	}
	t.mu.Unlock()
	if spent {
		p.strike(addr)
		return ErrExhausted
	}
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
