package apns

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushproxy/pushproxy/internal/batchconn"
	"golang.org/x/net/http2"
)

// errPoolClosed is returned once the sender is closed.
var errPoolClosed = errors.New("apns: sender closed")

// Why x/net/http2 and not Go 1.26's http.Transport.NewClientConn /
// http.ClientConn (evaluated for issue 11; x/net v0.62 deprecates its
// Transport, ClientConn and GoAwayError in their favour). The pool needs
// four things from the HTTP/2 client, and the standard library gives two:
//   - One connection per key, reserved streams, state for pruning:
//     http.ClientConn has Reserve, Release, Available, InFlight and
//     SetStateHook: enough.
//   - PING health checks: http.HTTP2Config has them: enough.
//   - APNs's GOAWAY reason ({"reason": "Shutdown"} in the debug data): the
//     standard library's HTTP/2 keeps its GoAwayError type unexported, and
//     the frames cannot be sniffed below it either: NewClientConn dials
//     TLS itself, and a custom DialTLSContext must return a *tls.Conn for
//     h2 to be negotiated, so no wrapper can see the decrypted frames.
//     With x/net the pool dials, wraps the TLS connection (goAwaySniffer)
//     and hands it to ClientConn.
//   - Which failed streams the server surely did not process (above a
//     GOAWAY's last stream ID, or refused before being written), to re-send
//     them at once: neither library exports that error; x/net's message
//     strings are matched (isUnprocessed in sender.go), and the GOAWAY
//     tests pin them to the library version in go.mod, so an upgrade that
//     changes them fails the tests instead of losing notifications. The
//     standard library's equivalents are unexported too, and its ClientConn
//     (unlike its Transport) does not retry them itself.
//
// So the pool keeps x/net until the standard library exposes the GOAWAY
// frame's debug data or a typed "not processed" error. (Checked against
// Go 1.26.8's net/http: clientconn.go dials through Transport.dialConn,
// which looks for a *tls.Conn to read the negotiated protocol; h2_bundle.go
// keeps http2GoAwayError unexported.)
//
// pool is the set of HTTP/2 connections of one team and key to one APNs
// host. It opens a connection when every usable one has reached the
// server's stream limit (up to maxConns usable connections), one dial at a
// time, each with a fresh DNS look-up; connections that received a GOAWAY
// drain and leave the pool; dead ones are detected by x/net's PING health
// check and idle ones are closed by its idle timer.
type pool struct {
	addr     string // host:port
	host     string // TLS server name
	t        *http2.Transport
	tlsConf  *tls.Config
	dialer   *net.Dialer
	dialTO   time.Duration
	maxConns int
	log      *slog.Logger
	onGoAway func(reason string)
	onRest   func()          // Options.OnRest
	ctx      context.Context // ends when the pool is closed, or retired and drained
	cancel   context.CancelFunc
	serial   *atomic.Uint64

	mu      sync.RWMutex
	conns   []*pconn
	dialing *dialCall
	changed chan struct{} // closed and replaced when a stream slot may have freed
	closed  bool
	waiters atomic.Int64  // callers waiting on changed
	gets    atomic.Uint64 // every 256th get takes the slow path, which prunes
	// drained counts the connections in a row that APNs refused whole
	// (GOAWAY naming last stream 0) with no answer since; from the
	// maxDrained-th, the pool rests: no dial before restUntil (unix ns),
	// and callers needing one are refused at once (errDraining).
	drained   atomic.Int32
	restUntil atomic.Int64
	lastDrain atomic.Pointer[goAwayInfo] // the latest such GOAWAY
}

// errDraining: the pool is resting after APNs refused every recent
// connection whole; nothing was sent.
var errDraining = errors.New("APNs refused every recent connection whole (GOAWAY, last stream 0)")

// noteDrained counts a connection APNs refused whole and, from the
// maxDrained-th in a row, rests the pool for 500 ms, then 1 s each time:
// a host that drains every connection (a load balancer going out of
// service) is not re-dialled as fast as handshakes go, and a host that
// recovers is used again within a second.
func (p *pool) noteDrained(g goAwayInfo) {
	p.lastDrain.Store(&g)
	if n := p.drained.Add(1); n >= maxDrained {
		rest := min(500*time.Millisecond<<min(n-maxDrained, 16), time.Second)
		p.restUntil.Store(time.Now().Add(rest).UnixNano())
		p.log.Warn("APNs refuses every new connection whole (GOAWAY, last stream 0); not dialling it for a while",
			"host", p.host, "for", rest, "connections_in_a_row", n, "reason", g.Reason)
		if p.onRest != nil {
			p.onRest()
		}
	}
}

// answered notes an answer from APNs: the pool dials at once again.
func (p *pool) answered() {
	// Both checked: a noteDrained racing with the previous answer may have
	// set a rest after that answer cleared the count.
	if p.drained.Load() != 0 || p.restUntil.Load() != 0 {
		p.drained.Store(0)
		p.restUntil.Store(0)
	}
}

// resting reports whether the pool refuses to dial now.
func (p *pool) resting() bool {
	u := p.restUntil.Load()
	return u != 0 && time.Now().UnixNano() < u
}

type dialCall struct {
	done chan struct{}
	err  error
}

// pconn is one connection of a pool.
type pconn struct {
	id uint64
	cc *http2.ClientConn
	// goAway holds the last GOAWAY the server sent on this connection.
	goAway atomic.Pointer[goAwayInfo]
}

type goAwayInfo struct {
	LastStreamID uint32
	ErrCode      http2.ErrCode
	Reason       string // from the debug data {"reason": …}, else ""
}

func newPool(s *Sender, addr, host string, maxConns int) *pool {
	ctx, cancel := context.WithCancel(s.ctx)
	return &pool{
		addr: addr, host: host, maxConns: maxConns,
		t: &http2.Transport{
			ReadIdleTimeout: s.opts.ReadIdleTimeout,
			PingTimeout:     s.opts.PingTimeout,
			IdleConnTimeout: s.opts.IdleConnTimeout,
			// 1 byte: no header enters HPACK's dynamic table. Every
			// request carries a new :path (the device token), apns-id
			// and often apns-expiration; indexed, each evicted older
			// entries, and x/net's eviction (two map deletes per entry,
			// hashing the ~200-byte JWT, on a freshly started goroutine
			// whose stack then grows) cost ~5 % of pushproxy's CPU per
			// notification. The price is ~150 bytes more per request
			// (authorization and topic sent as Huffman literals).
			MaxEncoderHeaderTableSize: 1,
			// APNs answers no body worth compressing: no accept-encoding
			// header on every request, no gzip reader on every answer.
			DisableCompression: true,
		},
		tlsConf: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.opts.RootCAs, NextProtos: []string{http2.NextProtoTLS}, ServerName: host},
		dialer:  &net.Dialer{Timeout: s.opts.DialTimeout, KeepAlive: 30 * time.Second},
		dialTO:  s.opts.DialTimeout, log: s.opts.Logger, onGoAway: s.opts.OnGoAway, onRest: s.opts.OnRest,
		ctx: ctx, cancel: cancel, serial: &s.connSerial,
		changed: make(chan struct{}),
	}
}

// get returns a connection with a stream reserved for the caller's next
// RoundTrip.
func (p *pool) get(ctx context.Context) (*pconn, error) {
	// Fast path: a connection with a free stream, without the bookkeeping
	// (ReserveNewRequest refuses closed, closing and full connections).
	p.mu.RLock()
	if !p.closed && p.gets.Add(1)%256 != 0 {
		for _, c := range p.conns {
			if c.cc.ReserveNewRequest() {
				p.mu.RUnlock()
				return c, nil
			}
		}
	}
	p.mu.RUnlock()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errPoolClosed
		}
		var found *pconn
		usable := 0
		live := p.conns[:0]
		for _, c := range p.conns {
			st := c.cc.State()
			if st.Closed {
				continue
			}
			if st.Closing {
				// GOAWAY received, or marked not to reuse: let it drain.
				if st.StreamsActive == 0 && st.StreamsReserved == 0 && st.StreamsPending == 0 {
					_ = c.cc.Close()
					continue
				}
				live = append(live, c)
				continue
			}
			usable++ // it may be at the server's stream limit, but it counts
			live = append(live, c)
			if found == nil && c.cc.ReserveNewRequest() {
				found = c
			}
		}
		clear(p.conns[len(live):])
		p.conns = live
		if found != nil {
			p.mu.Unlock()
			return found, nil
		}
		call := p.dialing
		if call == nil && usable < p.maxConns && p.resting() {
			p.mu.Unlock()
			return nil, errDraining
		}
		if call == nil && usable < p.maxConns {
			call = &dialCall{done: make(chan struct{})}
			p.dialing = call
			go p.dial(call)
		}
		changed := p.changed
		if call == nil {
			p.waiters.Add(1)
		}
		p.mu.Unlock()
		if call == nil {
			// Every connection is at the server's limit and the pool is at
			// its cap: wait for a stream to finish (re-checking now and
			// then: a stream that ended just before this caller registered
			// as a waiter woke nobody).
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				p.waiters.Add(-1)
				return nil, ctx.Err()
			case <-changed:
			case <-t.C:
			}
			t.Stop()
			p.waiters.Add(-1)
			continue
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-call.done:
			if call.err != nil {
				return nil, call.err
			}
		}
	}
}

// release wakes callers waiting for a stream slot, if any.
func (p *pool) release() {
	if p.waiters.Load() == 0 {
		return
	}
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *pool) dial(call *dialCall) {
	ctx, cancel := context.WithTimeout(p.ctx, p.dialTO)
	defer cancel()
	c, err := p.connect(ctx)
	p.mu.Lock()
	switch {
	case p.closed:
		// Retired or closed while dialing (which may have cancelled the
		// dial): the connection is not wanted.
		if err == nil {
			_ = c.cc.Close()
		}
		err = errPoolClosed
	case err == nil:
		p.conns = append(p.conns, c)
	}
	call.err = err
	p.dialing = nil
	p.mu.Unlock()
	close(call.done)
}

// connect dials one connection: the name is resolved again for every
// connection (Apple's advice), TLS ≥ 1.2 with ALPN h2.
func (p *pool) connect(ctx context.Context) (*pconn, error) {
	raw, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("dialing APNs: %w", err)
	}
	c := &pconn{id: p.serial.Add(1)}
	on := func(g goAwayInfo) {
		c.goAway.Store(&g)
		if g.LastStreamID == 0 {
			p.noteDrained(g)
		}
		reason := g.Reason
		if reason == "" {
			reason = "GOAWAY " + g.ErrCode.String()
		}
		p.log.Info("APNs sent GOAWAY", "conn", c.id, "reason", reason, "last_stream_id", g.LastStreamID)
		if p.onGoAway != nil {
			p.onGoAway(reason)
		}
	}
	tc := tls.Client(raw, p.tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, fmt.Errorf("TLS handshake with APNs: %w", err)
	}
	if proto := tc.ConnectionState().NegotiatedProtocol; proto != http2.NextProtoTLS {
		_ = raw.Close()
		return nil, fmt.Errorf("APNs host did not negotiate HTTP/2 (ALPN %q)", proto)
	}
	bc := batchconn.New(tc)
	cc, err := p.t.NewClientConn(&goAwaySniffer{Conn: bc, tls: tc, on: on})
	if err != nil {
		_ = bc.Close() // ends its writer goroutine, then closes tc
		return nil, fmt.Errorf("starting HTTP/2 with APNs: %w", err)
	}
	c.cc = cc
	return c, nil
}

// retire stops handing out connections and shuts each down gracefully:
// streams in flight finish (bounded by a minute, or until the sender
// closes), then it closes. Once every connection is closed the pool's
// context ends, so nothing of a retired pool outlives its connections (a
// dial still in progress is abandoned then).
func (p *pool) retire(log *slog.Logger) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if len(conns) == 0 {
		p.cancel()
		return
	}
	go func() {
		defer p.cancel()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
				defer cancel()
				if err := c.cc.Shutdown(ctx); err != nil {
					_ = c.cc.Close()
				}
				log.Debug("retired APNs connection closed", "conn", c.id)
			})
		}
		wg.Wait()
	}()
}

// close closes every connection.
func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.cancel()
	for _, c := range p.conns {
		_ = c.cc.Close()
	}
	p.conns = nil
	close(p.changed)
	p.changed = make(chan struct{})
}

// goAwaySniffer watches the HTTP/2 frames a server sends (it wraps the
// decrypted connection) for GOAWAY, whose debug data carries APNs's
// {"reason": …}: x/net keeps it to itself unless a processed stream then
// fails.
type goAwaySniffer struct {
	net.Conn
	tls *tls.Conn
	on  func(goAwayInfo)

	hdr     [9]byte
	hdrN    int
	left    int    // payload bytes of the current frame still to read
	keep    bool   // the current frame is a GOAWAY
	payload []byte // GOAWAY payload so far (bounded)
}

const maxGoAwayPayload = 8 + 1024

// ConnectionState lets x/net see the TLS state through the wrapper.
func (s *goAwaySniffer) ConnectionState() tls.ConnectionState { return s.tls.ConnectionState() }

func (s *goAwaySniffer) Read(b []byte) (int, error) {
	n, err := s.Conn.Read(b)
	s.scan(b[:n])
	return n, err
}

func (s *goAwaySniffer) scan(b []byte) {
	for len(b) > 0 {
		if s.left == 0 && s.hdrN < 9 {
			k := copy(s.hdr[s.hdrN:], b)
			s.hdrN += k
			b = b[k:]
			if s.hdrN < 9 {
				return
			}
			s.left = int(s.hdr[0])<<16 | int(s.hdr[1])<<8 | int(s.hdr[2])
			s.keep = http2.FrameType(s.hdr[3]) == http2.FrameGoAway
			s.payload = s.payload[:0]
			if s.left == 0 {
				s.hdrN = 0
				continue
			}
		}
		k := min(s.left, len(b))
		if s.keep && len(s.payload) < maxGoAwayPayload {
			s.payload = append(s.payload, b[:min(k, maxGoAwayPayload-len(s.payload))]...)
		}
		s.left -= k
		b = b[k:]
		if s.left == 0 {
			s.hdrN = 0
			if s.keep && len(s.payload) >= 8 {
				g := goAwayInfo{
					LastStreamID: binary.BigEndian.Uint32(s.payload[:4]) & (1<<31 - 1),
					ErrCode:      http2.ErrCode(binary.BigEndian.Uint32(s.payload[4:8])),
				}
				var body struct {
					Reason string `json:"reason"`
				}
				if json.Unmarshal(s.payload[8:], &body) == nil {
					g.Reason = body.Reason
				}
				s.on(g)
			}
			s.keep = false
		}
	}
}
