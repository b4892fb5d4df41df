package batchconn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpPair is a connected loopback TCP pair: writes on a reach b.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-acc
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// Writers that take turns under one lock (as x/net's do under its write
// lock) reach the peer whole and in the order they wrote, while the
// writer goroutine gathers them into fewer system calls.
func TestBatchWriterKeepsOrder(t *testing.T) {
	a, b := tcpPair(t)
	w := New(a)
	const writers, each = 8, 2000
	var mu sync.Mutex
	var order []uint32
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			rec := make([]byte, 64)
			for i := range each {
				mu.Lock()
				id := uint32(g*each + i)
				binary.BigEndian.PutUint32(rec, id)
				for k := 4; k < len(rec); k++ {
					rec[k] = byte(id)
				}
				if _, err := w.Write(rec); err != nil {
					mu.Unlock()
					t.Error(err)
					return
				}
				order = append(order, id)
				mu.Unlock()
			}
		})
	}
	got := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(b)
		got <- data
	}()
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := <-got
	if len(data) != writers*each*64 {
		t.Fatalf("peer got %d bytes, want %d", len(data), writers*each*64)
	}
	for i, id := range order {
		rec := data[i*64 : (i+1)*64]
		if binary.BigEndian.Uint32(rec) != id || !bytes.Equal(rec[4:], bytes.Repeat([]byte{byte(id)}, 60)) {
			t.Fatalf("record %d: got id %d, want %d (or its bytes are torn)", i, binary.BigEndian.Uint32(rec), id)
		}
	}
}

// Close returns at once; what is queued still goes out before the
// connection closes (a GOAWAY written just before a close is sent) and the
// goroutine stops; Writes after Close fail.
func TestBatchWriterCloseFlushes(t *testing.T) {
	a, b := tcpPair(t)
	w := New(a)
	want := bytes.Repeat([]byte("frame"), 40000)
	if _, err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(b)
		got <- data
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if data := <-got; !bytes.Equal(data, want) {
		t.Fatalf("peer got %d bytes, want %d", len(data), len(want))
	}
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("writer goroutine still running after Close")
	}
	if _, err := w.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// A peer that stops reading fills the socket, then the queue: Writes wait
// (bounded memory) instead of queueing without end, and Close still
// returns promptly and releases them.
func TestBatchWriterStalledPeer(t *testing.T) {
	a, _ := tcpPair(t) // the peer never reads
	w := New(a)
	chunk := make([]byte, 64<<10)
	blocked := make(chan error, 1)
	go func() {
		for {
			if _, err := w.Write(chunk); err != nil {
				blocked <- err
				return
			}
		}
	}()
	// Wait until the queue is full and the writer is stuck on the socket.
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.pending)
		w.mu.Unlock()
		if n > maxPending-len(chunk) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue never filled (%d bytes)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-blocked:
		t.Fatalf("Write returned %v instead of waiting for room", err)
	case <-time.After(100 * time.Millisecond):
	}
	w.mu.Lock()
	if len(w.pending) > maxPending {
		t.Errorf("queue grew to %d bytes, bound %d", len(w.pending), maxPending)
	}
	w.mu.Unlock()
	start := time.Now()
	_ = w.Close()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("Close took %v with a stalled peer; it must not block its caller", d)
	}
	select {
	case <-w.done:
	case <-time.After(3 * time.Second):
		t.Fatal("the writer, stuck on a peer that does not read, did not end after Close")
	}
	select {
	case err := <-blocked:
		if err == nil {
			t.Fatal("blocked Write returned no error")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a Write waiting for room was not released by Close")
	}
}

// A failed socket write is kept: the writer closes the connection (so
// requests whose frames were lost fail as a lost connection) and every
// later Write returns the error without queueing.
func TestBatchWriterWriteErrorSticks(t *testing.T) {
	a, b := tcpPair(t)
	w := New(a)
	_ = b.(*net.TCPConn).SetLinger(0)
	_ = b.Close() // the peer resets the connection
	chunk := make([]byte, 32<<10)
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = w.Write(chunk) // queued until the writer meets the reset
		time.Sleep(time.Millisecond)
	}
	if err == nil || errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after the peer reset: %v, want the socket's error", err)
	}
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("writer goroutine did not stop after a write error")
	}
	_ = a.SetReadDeadline(time.Now().Add(2 * time.Second)) // a still-open connection fails by timeout, not a hang
	if _, rerr := a.Read(make([]byte, 1)); !errors.Is(rerr, net.ErrClosed) {
		t.Fatalf("Read on the connection after a write error: %v, want it closed by the writer", rerr)
	}
	if _, err2 := w.Write([]byte("next")); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("Write after that: %v, want the same error %v", err2, err)
	}
	_ = w.Close()
}

// gate is a connection whose writes wait until released, counting them.
type gate struct {
	net.Conn
	open   chan struct{}
	mu     sync.Mutex
	writes [][]byte
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	g.writes = append(g.writes, append([]byte(nil), p...))
	g.mu.Unlock()
	return len(p), nil
}

func (g *gate) Close() error                     { return nil }
func (g *gate) SetWriteDeadline(time.Time) error { return nil }

// What is written while the socket is busy goes out in one system call.
func TestBatchWriterGathers(t *testing.T) {
	g := &gate{open: make(chan struct{})}
	w := New(g)
	if _, err := w.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	// The writer is now inside the first write; queue 99 frames behind it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		n := len(w.pending)
		w.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer never took the first frame")
		}
		time.Sleep(time.Millisecond)
	}
	var want []byte
	for i := range 99 {
		rec := []byte{byte(i), byte(i), byte(i)}
		want = append(want, rec...)
		if _, err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	close(g.open)
	_ = w.Close()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
		t.Fatal("writer did not end")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.writes) != 2 || string(g.writes[0]) != "first" || !bytes.Equal(g.writes[1], want) {
		t.Fatalf("%d writes (want 2: the first frame, then the 99 queued behind it in one)", len(g.writes))
	}
}
