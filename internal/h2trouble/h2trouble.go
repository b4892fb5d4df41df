// Package h2trouble makes the HTTP/2 connections of a test fake misbehave
// the way push services, and the load balancers in front of them, do: a
// graceful GOAWAY after some streams, a GOAWAY with an error code and
// APNs-style debug data, a TCP reset in the middle of the streams, or a
// GOAWAY on every new connection before anything is served. It is for
// pushproxy's test fakes only (internal/fakepush and internal/fakefcm serve
// through it; internal/fakeapns, which has its own accept loop, uses its
// [FrameWriter], [GoAwayFrame] and [StreamID]); nothing in production
// imports it.
//
// [Install] takes over the "h2" entry of an http.Server's TLSNextProto:
// net/http still accepts the connections, runs ConnState and ConnContext,
// completes the TLS handshake and serves HTTP/1.1 (a client that offers
// only http/1.1, or no ALPN at all, is served as before, untroubled); each
// connection that negotiates h2 is handed to this package, which serves it
// with golang.org/x/net/http2 on an http.Server and http2.Server of its own
// (so that a graceful GOAWAY can be sent on exactly that connection),
// through a [FrameWriter] (so that a GOAWAY x/net cannot send can be put
// between its frames), and with a handler that counts the connection's
// streams and applies the [Trouble] before calling the server's own
// handler.
package h2trouble

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Trouble says how HTTP/2 connections misbehave. The zero value is no
// trouble. Counts are per connection, of the streams that reach the
// handler; what happens at a count happens once per connection.
type Trouble struct {
	// GoAwayAfter, if > 0, makes the server begin a graceful shutdown of a
	// connection (GOAWAY with NO_ERROR; in-flight streams still complete)
	// once that many streams have arrived on it, and close the connection
	// when they are done. The Nth stream reaches the handler only once the
	// GOAWAY is written, so a client that sends one request at a time
	// sends the next over a new connection. Streams that arrive once the
	// shutdown has begun are ignored by x/net (a client sends them again
	// elsewhere); those that arrived before it are processed.
	GoAwayAfter int
	// GoAwayReason, if set, changes what GoAwayAfter does: at the Nth
	// stream the server sends its own GOAWAY whose last stream ID is that
	// stream's (or a higher one that already reached the handler), with
	// error code GoAwayCode and debug data {"reason": GoAwayReason} (as
	// APNs does), leaves that stream unanswered (it never reaches the
	// server's handler), and closes the connection about 50 ms later: the
	// Nth stream fails with an error carrying the reason, later ones are
	// refused without reaching the handler (not processed).
	GoAwayReason string
	// GoAwayCode is the error code of that GOAWAY; the zero value is
	// NO_ERROR.
	GoAwayCode http2.ErrCode
	// ResetAfter, if > 0, makes the server drop a connection abruptly
	// (TCP RST, no GOAWAY) when that many streams have arrived on it: the
	// stream that reached the count (which never reaches the handler) and
	// every stream still open are left unanswered, as when a server or a
	// middlebox dies mid-stream.
	ResetAfter int
	// DrainNew makes the server answer every new connection with its
	// SETTINGS and at once a GOAWAY whose last stream ID is 0 (debug data
	// {"reason": "Shutdown"}), then close it, as a draining load balancer
	// may: nothing sent on such a connection reaches the handler.
	DrainNew bool
}

// closeAfterGoAway is how long a connection stays open after an injected
// GOAWAY: time for the client to read it.
const closeAfterGoAway = 50 * time.Millisecond

// drainRead is how long a drained connection is read before it is closed,
// so that what the client sent is on the wire before the close (a close
// with unread data would be a reset).
const drainRead = 200 * time.Millisecond

// Server applies a Trouble to the HTTP/2 connections of one http.Server.
// Create it with [Install]; change the trouble with [Server.Set]; stop it
// with [Server.Close].
type Server struct {
	logf   func(string, ...any)
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts every goroutine this package starts and every call into it
	// from net/http and x/net that may wait (connections, handlers).
	wg sync.WaitGroup

	mu     sync.Mutex
	t      Trouble
	closed bool
	conns  map[*conn]struct{}
	nconns int
}

// Install makes hs serve its HTTP/2 connections through the returned
// Server with trouble t. Call it before hs.Serve or hs.ServeTLS; it sets
// hs.TLSNextProto["h2"] (replacing any) and registers a shutdown hook, so
// that hs.Shutdown sends a graceful GOAWAY on these connections as
// net/http's own HTTP/2 does. The TLS configuration must offer "h2" in
// NextProtos (ServeTLS adds it; a listener made with tls.NewListener must
// have it already). logf, if not nil, receives one line per trouble
// applied and per connection refused.
//
// HTTP/1.1 connections are served by hs as before and see no trouble.
// hs.ReadTimeout, WriteTimeout, IdleTimeout, MaxHeaderBytes, ErrorLog,
// HTTP2 and ConnState apply to the HTTP/2 connections as they would
// without Install; ConnContext and BaseContext too (the handler sees their
// context).
func Install(hs *http.Server, t Trouble, logf func(string, ...any)) *Server {
	s := &Server{logf: logf, t: t, conns: map[*conn]struct{}{}}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if hs.TLSNextProto == nil {
		hs.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	hs.TLSNextProto[http2.NextProtoTLS] = s.serveConn
	hs.RegisterOnShutdown(s.shutdownAll)
	return s
}

// Set changes the trouble for connections and streams from now on: a
// connection already open that has had at least GoAwayAfter (ResetAfter)
// streams gets its GOAWAY (reset) at its next stream; DrainNew applies to
// connections accepted from now on.
func (s *Server) Set(t Trouble) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t = t
}

// Conns is the number of HTTP/2 connections handed to the Server so far,
// drained ones included.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconns
}

// Close closes every HTTP/2 connection the Server serves, stops the
// goroutines it started and waits until every call into it has returned:
// the connections' serve loops and the handlers running on them, so the
// handler given to the http.Server must return once its request's context
// ends (it ends when the connection closes). Later connections are closed
// at once and later streams reset. Close does not close the http.Server;
// call it after (or before) hs.Close.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.cancel()
	for _, c := range conns {
		_ = c.tc.NetConn().Close()
	}
	s.wg.Wait()
}

// shutdownAll starts a graceful shutdown of every connection: hs.Shutdown
// runs it.
func (s *Server) shutdownAll() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
}

// serveConn is hs.TLSNextProto["h2"]: it serves one HTTP/2 connection
// until it ends (net/http closes tc when it returns). h is the handler
// net/http passes: it completes each request and calls hs.Handler, and
// carries the connection's base context (ConnContext's) through a method
// net/http keeps for x/net.
func (s *Server) serveConn(main *http.Server, tc *tls.Conn, h http.Handler) {
	ctx := context.Background()
	if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
		ctx = bc.BaseContext()
	}

	// A server of its own per connection: its Shutdown runs the GOAWAY
	// hook http2.ConfigureServer registers for the connections of that
	// http2.Server only, that is this one.
	hs := &http.Server{
		ReadTimeout:    main.ReadTimeout,
		WriteTimeout:   main.WriteTimeout,
		IdleTimeout:    main.IdleTimeout,
		MaxHeaderBytes: main.MaxHeaderBytes,
		ErrorLog:       main.ErrorLog,
		HTTP2:          main.HTTP2,
	}
	if cs := main.ConnState; cs != nil {
		// x/net reports the connection it serves, the FrameWriter; the
		// hook knows the TLS connection.
		hs.ConnState = func(_ net.Conn, st http.ConnState) { cs(tc, st) }
	}
	h2s := &http2.Server{}
	if err := http2.ConfigureServer(hs, h2s); err != nil {
		s.logf("h2trouble: configure HTTP/2: %v", err)
		return
	}
	c := &conn{s: s, tc: tc, fw: NewFrameWriter(tc), next: h, done: make(chan struct{})}
	c.shutdown = func() { _ = hs.Shutdown(context.Background()) } // returns at once: hs has no listener
	t, ok := s.add(c)
	if !ok {
		return
	}
	defer s.remove(c)
	if t.DrainNew {
		s.drain(c)
		return
	}
	h2s.ServeConn(c.fw, &http2.ServeConnOpts{Context: ctx, BaseConfig: hs, Handler: c})
}

// add registers a connection and returns the trouble in effect, or false
// once the Server is closed.
func (s *Server) add(c *conn) (Trouble, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Trouble{}, false
	}
	s.nconns++
	c.id = s.nconns
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return s.t, true
}

func (s *Server) remove(c *conn) {
	close(c.done)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// drain sends SETTINGS and GOAWAY (last stream 0, reason Shutdown) on a new
// connection, reads what the client sends for a moment, and returns (net/http
// then closes the connection).
func (s *Server) drain(c *conn) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	_ = fr.WriteSettings()
	buf.Write(GoAwayFrame(0, http2.ErrCodeNo, "Shutdown"))
	s.logf("h2trouble: conn %d: refused at once with GOAWAY last=0", c.id)
	if _, err := c.tc.Write(buf.Bytes()); err != nil {
		s.logf("h2trouble: conn %d: writing GOAWAY: %v", c.id, err)
		return
	}
	_ = c.tc.SetReadDeadline(time.Now().Add(drainRead))
	_, _ = io.Copy(io.Discard, c.tc)
}
