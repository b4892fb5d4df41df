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
// this a Write waits for the writer, as a blocking socket write would.
const maxPending = 1 << 20

// closeFlush is how long Close lets queued frames (a GOAWAY, the last
// requests) reach the socket before closing it under them.
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
	select {
	case w.wake <- struct{}{}:
	default: // the writer is already due to look
	}
	return len(p), nil
}

// run writes what is pending until Close or a write error. Every Write
// appends before it signals, so after taking a signal the writer sees at
// least that Write's bytes.
func (w *Conn) run() {
	defer close(w.done)
	var spare []byte
	for range w.wake {
		for {
			w.mu.Lock()
			batch := w.pending
			w.pending = spare[:0]
			stop := w.err != nil
			w.mu.Unlock()
			if len(batch) == 0 {
				spare = batch
				if stop {
					return
				}
				break
			}
			_, err := w.Conn.Write(batch)
			w.mu.Lock()
			if err != nil && w.err == nil {
				w.err = err
			}
			w.room.Broadcast()
			w.mu.Unlock()
			if err != nil {
				_ = w.Conn.Close()
				return
			}
			if cap(batch) > maxPending { // a burst: don't keep its buffer
				batch = nil
			}
			spare = batch
		}
	}
}

// Close lets what is queued reach the socket (for at most closeFlush),
// then closes the connection; Writes from then on fail.
func (w *Conn) Close() error {
	w.mu.Lock()
	if w.err == nil {
		w.err = net.ErrClosed
	}
	w.room.Broadcast()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	t := time.NewTimer(closeFlush)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	}
	err := w.Conn.Close() // unblocks a write stuck on a peer that stopped reading
	<-w.done
	return err
}
