package h2trouble

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// conn is one HTTP/2 connection served by a Server; it is the handler x/net
// calls for each of its streams.
type conn struct {
	s        *Server
	id       int
	tc       *tls.Conn
	fw       *FrameWriter
	next     http.Handler  // net/http's handler for the connection
	shutdown func()        // starts the graceful shutdown (GOAWAY)
	done     chan struct{} // closed when the connection is no longer served

	mu         sync.Mutex
	streams    int    // streams that reached ServeHTTP
	maxStream  uint32 // highest stream ID let through
	goingAway  bool   // a GOAWAY was started (graceful or injected)
	injected   bool   // our own GOAWAY was injected; goAwayLast is its last stream
	goAwayLast uint32
	reset      bool
}

// ServeHTTP counts the stream and applies the trouble before handing the
// stream to net/http's handler (and so to the server's).
func (c *conn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := c.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		panic(http.ErrAbortHandler) // reset the stream; never answer by accident
	}
	t := s.t
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	sid := StreamID(w, r)
	c.mu.Lock()
	if c.injected && (sid == 0 || sid > c.goAwayLast) {
		// Above our own GOAWAY's last stream: not processed. The client
		// has the GOAWAY before this stream's reset (see FrameWriter).
		last := c.goAwayLast
		c.mu.Unlock()
		s.logf("h2trouble: conn %d: stream %d refused above GOAWAY last=%d", c.id, sid, last)
		panic(http.ErrAbortHandler)
	}
	c.streams++
	n := c.streams
	c.maxStream = max(c.maxStream, sid)
	graceful, injectNow := false, false
	if t.GoAwayAfter > 0 && n >= t.GoAwayAfter && !c.goingAway {
		c.goingAway = true
		if t.GoAwayReason != "" {
			injectNow = true
			c.injected, c.goAwayLast = true, c.maxStream
			// Injected with c.mu held: a stream refused above is reset
			// only after the GOAWAY is on the wire (or pending before
			// anything else x/net writes).
			s.logf("h2trouble: conn %d: GOAWAY last=%d code=%v reason=%s after %d streams",
				c.id, c.goAwayLast, t.GoAwayCode, t.GoAwayReason, n)
			if err := c.fw.Inject(GoAwayFrame(c.goAwayLast, t.GoAwayCode, t.GoAwayReason)); err != nil {
				s.logf("h2trouble: conn %d: writing GOAWAY: %v", c.id, err)
			}
		} else {
			graceful = true
		}
	}
	reset := !injectNow && t.ResetAfter > 0 && n >= t.ResetAfter && !c.reset
	c.reset = c.reset || reset
	c.mu.Unlock()

	if injectNow {
		c.closeLater()
		// Unanswered: the stream fails when the connection closes, with
		// the GOAWAY's debug data.
		<-r.Context().Done()
		panic(http.ErrAbortHandler)
	}
	if graceful {
		s.logf("h2trouble: conn %d: graceful GOAWAY after %d streams", c.id, n)
		c.shutdown()
		// Shutdown only asks x/net's serve loop for the GOAWAY; until it
		// is written, new streams are still accepted. Wait for it, so
		// that a connection carries GoAwayAfter streams plus those
		// already sent, however the goroutines are scheduled.
		select {
		case <-c.fw.WroteGoAway():
		case <-r.Context().Done():
		}
	}
	if reset {
		s.logf("h2trouble: conn %d: reset after %d streams", c.id, n)
		c.resetNow()
		panic(http.ErrAbortHandler)
	}
	c.next.ServeHTTP(w, r)
}

// closeLater closes the connection closeAfterGoAway from now, or at once
// when the Server closes.
func (c *conn) closeLater() {
	s := c.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.tc.NetConn().Close()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(closeAfterGoAway)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.ctx.Done():
		case <-c.done:
			return
		}
		// The TCP connection, not the TLS one: tls.Conn.Close would
		// first write close_notify, which waits for x/net's writes.
		_ = c.tc.NetConn().Close()
	}()
}

// resetNow closes the TCP connection so that the peer gets a RST.
func (c *conn) resetNow() {
	raw := c.tc.NetConn()
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close sends RST, not FIN
	}
	_ = raw.Close()
}
