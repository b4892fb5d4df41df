package h2trouble

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net"
	"sync"

	"golang.org/x/net/http2"
)

// FrameWriter sits between x/net's HTTP/2 server and the TLS connection and
// follows the frame boundaries of what x/net writes, so that a fake can put
// a frame of its own (a GOAWAY with debug data, which x/net's server cannot
// send) on the wire without splitting one of x/net's: x/net may write one
// frame in several Write calls. Serve the connection with
// http2.Server.ServeConn(fw, …) and put frames in with [FrameWriter.Inject].
type FrameWriter struct {
	net.Conn
	tls *tls.Conn

	mu      sync.Mutex
	hdr     [9]byte
	hdrN    int // header bytes of the current frame seen; 9 once complete
	left    int // payload bytes of the current frame still to come
	pending []byte
	started bool // x/net has written something (its SETTINGS must come first)
	typ     http2.FrameType
	// sawGoAway: a GOAWAY of x/net's went by; wroteGoAway (set once by
	// NewFrameWriter) is closed once it is written.
	sawGoAway, closedGoAway bool
	wroteGoAway             chan struct{}
}

// NewFrameWriter wraps a server's TLS connection.
func NewFrameWriter(tc *tls.Conn) *FrameWriter {
	return &FrameWriter{Conn: tc, tls: tc, wroteGoAway: make(chan struct{})}
}

// WroteGoAway is closed once x/net has written a GOAWAY frame of its own
// (as http.Server.Shutdown makes it do, some time after Shutdown
// returns); frames put in with Inject do not count.
func (w *FrameWriter) WroteGoAway() <-chan struct{} { return w.wroteGoAway }

// ConnectionState lets x/net check the TLS version and cipher suite (and
// fill in Request.TLS).
func (w *FrameWriter) ConnectionState() tls.ConnectionState { return w.tls.ConnectionState() }

func (w *FrameWriter) atBoundary() bool { return w.started && w.hdrN == 0 && w.left == 0 }

// advance consumes the bytes of p that belong to the current frame, up to
// its end, and returns how many.
func (w *FrameWriter) advance(p []byte) int {
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
		w.typ = http2.FrameType(w.hdr[3])
		if w.left == 0 {
			w.frameDone()
			return i
		}
	}
	k := min(w.left, len(p)-i)
	w.left -= k
	if w.left == 0 {
		w.frameDone()
	}
	return i + k
}

func (w *FrameWriter) frameDone() {
	w.hdrN = 0
	if w.typ == http2.FrameGoAway {
		w.sawGoAway = true
	}
}

// noteWritten closes wroteGoAway after the bytes of x/net's GOAWAY went
// out.
func (w *FrameWriter) noteWritten() {
	if w.sawGoAway && !w.closedGoAway {
		w.closedGoAway = true
		close(w.wroteGoAway)
	}
}

// Write passes x/net's bytes on, putting a pending injected frame in at the
// first frame boundary.
func (w *FrameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		// Nothing to put in: follow the frames, write p in one piece.
		for q := p; len(q) > 0; {
			q = q[w.advance(q):]
		}
		n, err := w.Conn.Write(p)
		w.started = true
		w.noteWritten()
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
		w.noteWritten()
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

// Inject writes one whole frame at once if x/net is between frames, else
// at the end of the frame it is writing. Every frame x/net writes after
// Inject returns goes out after the injected one. The error is that of the
// write made now; a frame left pending is written with x/net's next bytes.
func (w *FrameWriter) Inject(frame []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.atBoundary() {
		_, err := w.Conn.Write(frame)
		return err
	}
	w.pending = append(w.pending, frame...)
	return nil
}

// GoAwayFrame encodes a GOAWAY frame with the given last stream ID and
// error code, and with APNs-style debug data {"reason": reason} (none when
// reason is empty).
func GoAwayFrame(lastStreamID uint32, code http2.ErrCode, reason string) []byte {
	var debug []byte
	if reason != "" {
		debug, _ = json.Marshal(struct {
			Reason string `json:"reason"`
		}{reason})
	}
	var buf bytes.Buffer
	_ = http2.NewFramer(&buf, nil).WriteGoAway(lastStreamID, code, debug)
	return buf.Bytes()
}
