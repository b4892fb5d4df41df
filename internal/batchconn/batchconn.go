// Package batchconn wraps a connection so that the writes of many
// goroutines share system calls: Write queues, one goroutine per
// connection writes what gathered. pushproxy's HTTP/2 clients use it under
// x/net/http2, which flushes after every frame group of every request.
package batchconn

import (
	"net"
	"sync"
	"time"
)

// Conn lets the frames of many requests share one TLS record and one
// write(2). x/net writes every frame under its connection's write lock and
// flushes twice per request (after HEADERS, after DATA): two TLS records and
// two system calls per notification, each costing more on loopback than the
// rest of the request's encoding. Conn's Write copies the bytes into
// a pending buffer and returns; one goroutine per connection writes
// everything gathered while its previous write was in progress. Under load
// one write carries the frames of many requests; alone, a request pays one
// goroutine hand-off.
//
// A write error is kept: later Writes return it (their frames were never
// queued, so x/net reports those requests as not sent) and the connection is
// closed, so requests whose frames were queued but lost fail as a lost
// connection, which pushproxy answers "may have been delivered" — the same
// as when a kernel buffer was accepted and the peer then vanished.
type Conn struct {
	net.Conn // reads, addresses, deadlines pass through

	mu      sync.Mutex
	room    sync.Cond // Writes wait here while pending is full
	pending []byte
	err     error // sticky: the first write error, or net.ErrClosed after Close
	wake    chan struct{}
	done    chan struct{}
}

// maxPending bounds the bytes queued ahead of the socket. HEADERS are not
// flow-controlled, so a burst of 1,000 streams can queue about 500 KB; beyond
// this a Write waits for the writer, as a blocking socket write would. With
// the batch being written, at most twice this is held.
const maxPending = 1 << 20

// keepBuffer is the largest buffer kept for the next batch; a burst's larger
// buffers are dropped, so an idle connection holds little.
const keepBuffer = 64 << 10

// closeFlush is how long, after Close, queued frames (a GOAWAY, the last
// requests) may take to reach the socket before it is closed under them.
const closeFlush = 250 * time.Millisecond

// New starts c's writer goroutine; it ends with Close or a write error.
func New(c net.Conn) *Conn {
	w := &Conn{Conn: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.room.L = &w.mu
	go w.run()
	return w
}

// Write queues p for the connection's writer goroutine.
func (w *Conn) Write(p []byte) (int, error) {
	w.mu.Lock()
	for w.err == nil && len(w.pending) > 0 && len(w.pending)+len(p) > maxPending {
		w.room.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	w.pending = append(w.pending, p...)
	w.mu.Unlock()
	w.kick()
	return len(p), nil
}

func (w *Conn) kick() {
	select {
	case w.wake <- struct{}{}:
	default: // the writer is already due to look
	}
}

// run writes what is pending until Close or a write error, then closes the
// connection. Every Write appends before it signals, so after taking a
// signal the writer sees at least that Write's bytes.
func (w *Conn) run() {
	defer close(w.done)
	var spare []byte
	for range w.wake {
		for {
			w.mu.Lock()
			batch := w.pending
			w.pending = spare[:0]
			closing := w.err != nil
			if len(batch) > 0 {
				w.room.Broadcast() // the queue is empty again
			}
			w.mu.Unlock()
			if len(batch) == 0 {
				spare = batch
				if closing {
					_ = w.Conn.Close() // flushed: a graceful close (TLS close_notify)
					return
				}
				break
			}
			if _, err := w.Conn.Write(batch); err != nil {
				w.mu.Lock()
				if w.err == nil {
					w.err = err
				}
				w.room.Broadcast()
				w.mu.Unlock()
				w.forceClose()
				return
			}
			if cap(batch) > keepBuffer {
				batch = nil
			}
			spare = batch
		}
	}
}

// forceClose closes the connection without writing to it again: under a
// TLS connection, the TCP connection (a close_notify would wait on a peer
// that is not reading).
func (w *Conn) forceClose() {
	if nc, ok := w.Conn.(interface{ NetConn() net.Conn }); ok {
		_ = nc.NetConn().Close()
	}
	_ = w.Conn.Close()
}

// Close makes later Writes fail and returns at once; the writer goroutine
// sends what is queued and then closes the connection, or, when that takes
// longer than closeFlush (a peer that stopped reading), closes it under the
// unsent bytes. It never blocks its caller: x/net closes connections while
// holding its locks and while finishing a request.
func (w *Conn) Close() error {
	w.mu.Lock()
	if w.err == nil {
		w.err = net.ErrClosed
	}
	w.room.Broadcast()
	w.mu.Unlock()
	_ = w.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
	w.kick()
	return nil
}
