package fakeapns

import (
	"crypto/tls"
	"net"
	"sync"
)

// frameWriter sits between x/net's HTTP/2 server and the TLS connection and
// follows the frame boundaries of what x/net writes, so that the fake can
// put a frame of its own (a GOAWAY with APNs's debug data, which x/net's
// server cannot send) on the wire without splitting one of x/net's: x/net
// may write one frame in several Write calls.
type frameWriter struct {
	net.Conn
	tls *tls.Conn

	mu      sync.Mutex
	hdr     [9]byte
	hdrN    int // header bytes of the current frame seen; 9 once complete
	left    int // payload bytes of the current frame still to come
	pending []byte
	started bool // x/net has written something (its SETTINGS must come first)
}

// ConnectionState lets x/net check the TLS version and cipher suite.
func (w *frameWriter) ConnectionState() tls.ConnectionState { return w.tls.ConnectionState() }

func (w *frameWriter) atBoundary() bool { return w.started && w.hdrN == 0 && w.left == 0 }

// advance consumes the bytes of p that belong to the current frame, up to
// its end, and returns how many.
func (w *frameWriter) advance(p []byte) int {
	i := 0
	if w.left == 0 {
		k := min(9-w.hdrN, len(p))
		copy(w.hdr[w.hdrN:], p[:k])
		w.hdrN += k
		i = k
		if w.hdrN < 9 {
			return i
		}
		w.left = int(w.hdr[0])<<16 | int(w.hdr[1])<<8 | int(w.hdr[2])
		if w.left == 0 {
			w.hdrN = 0
			return i
		}
	}
	k := min(w.left, len(p)-i)
	w.left -= k
	if w.left == 0 {
		w.hdrN = 0
	}
	return i + k
}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		// Nothing to put in: follow the frames, write p in one piece.
		for q := p; len(q) > 0; {
			q = q[w.advance(q):]
		}
		n, err := w.Conn.Write(p)
		w.started = true
		return n, err
	}
	written := 0
	for len(p) > 0 {
		if w.pending != nil && w.atBoundary() {
			if _, err := w.Conn.Write(w.pending); err != nil {
				return written, err
			}
			w.pending = nil
		}
		n := w.advance(p)
		if _, err := w.Conn.Write(p[:n]); err != nil {
			return written, err
		}
		w.started = true
		written += n
		p = p[n:]
	}
	if w.pending != nil && w.atBoundary() {
		_, err := w.Conn.Write(w.pending)
		w.pending = nil
		return written, err
	}
	return written, nil
}

// inject writes one whole frame at the next frame boundary.
func (w *frameWriter) inject(frame []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.atBoundary() {
		_, _ = w.Conn.Write(frame)
		return
	}
	w.pending = append(w.pending, frame...)
}
