package h2trouble_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/pushproxy/pushproxy/internal/h2trouble"
)

// rawConn is an HTTP/2 client written with x/net's Framer, to see frames
// the net/http client hides and to send what it would not.
type rawConn struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	addr string
	hbuf bytes.Buffer
	enc  *hpack.Encoder

	answered map[uint32]bool // HEADERS received
	reset    map[uint32]http2.ErrCode
	goAway   *http2.GoAwayFrame
	debug    string
	eof      bool
}

func dialRaw(t *testing.T, f *fixture) *rawConn {
	t.Helper()
	addr := strings.TrimPrefix(f.url, "https://")
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: f.pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	c := &rawConn{t: t, conn: conn, fr: http2.NewFramer(conn, conn), addr: addr,
		answered: map[uint32]bool{}, reset: map[uint32]http2.ErrCode{}}
	c.enc = hpack.NewEncoder(&c.hbuf)
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c
}

// send opens stream id with a POST /<id> and its body.
func (c *rawConn) send(id uint32) {
	c.t.Helper()
	c.hbuf.Reset()
	name := fmt.Sprint("s", id)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", c.addr}, {":path", "/" + name}, {"x-id", name}} {
		_ = c.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
	if err := c.fr.WriteData(id, true, []byte("payload")); err != nil {
		c.t.Fatal(err)
	}
}

// readUntil reads frames until done says so or the connection ends.
func (c *rawConn) readUntil(done func() bool) {
	c.t.Helper()
	for !done() && !c.eof {
		fr, err := c.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				c.eof = true
				return
			}
			c.t.Fatalf("reading frames: %v", err)
		}
		switch fr := fr.(type) {
		case *http2.SettingsFrame:
			if !fr.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			c.answered[fr.StreamID] = true
		case *http2.RSTStreamFrame:
			c.reset[fr.StreamID] = fr.ErrCode
		case *http2.GoAwayFrame:
			c.goAway = fr
			c.debug = string(fr.DebugData())
		}
	}
}

// TestGoAwayWithReasonFrames shows the injected GOAWAY on the wire: its
// last stream is the stream at the limit, its code and debug data are the
// Trouble's, that stream is never answered, a stream opened above it is
// refused without reaching the handler, and the connection then closes.
func TestGoAwayWithReasonFrames(t *testing.T) {
	f := newFixture(t, h2trouble.Trouble{GoAwayAfter: 2, GoAwayReason: "Shutdown", GoAwayCode: http2.ErrCodeNo})
	c := dialRaw(t, f)
	c.send(1)
	c.readUntil(func() bool { return c.answered[1] })
	c.send(3)
	c.readUntil(func() bool { return c.goAway != nil })
	if c.goAway == nil {
		t.Fatal("connection closed without GOAWAY")
	}
	if c.goAway.LastStreamID != 3 || c.goAway.ErrCode != http2.ErrCodeNo || c.debug != `{"reason":"Shutdown"}` {
		t.Errorf("GOAWAY last %d code %v debug %q; want 3, NO_ERROR, {\"reason\":\"Shutdown\"}", c.goAway.LastStreamID, c.goAway.ErrCode, c.debug)
	}
	c.send(5) // a client that did not heed the GOAWAY
	c.readUntil(func() bool { return false })
	if code, ok := c.reset[5]; ok {
		t.Logf("stream 5 reset with %v", code)
	} else {
		t.Log("the connection closed before stream 5 was read")
	}
	if c.answered[3] || c.answered[5] {
		t.Errorf("answered: %v", c.answered)
	}
	r := f.reached()
	if len(r) != 1 || r[0].stream != 1 {
		t.Errorf("reached the handler: %+v; want stream 1 only", r)
	}
}

// TestCloseLeavesNoGoroutine closes the Server while a connection waits
// for its delayed close after a GOAWAY and its stream at the limit waits
// for the end: Close returns once they are done, and no goroutine the
// package started is left.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	f := newFixture(t, h2trouble.Trouble{GoAwayAfter: 1, GoAwayReason: "Shutdown"})
	c := f.client(false)
	errc := make(chan error, 1)
	go func() {
		_, err := post(t.Context(), c, f.url, "x", false)
		errc <- err
	}()
	f.waitLog(": GOAWAY last=1")
	f.tr.Close()
	if stacks := ours(); len(stacks) > 0 {
		t.Errorf("goroutines left right after Close:\n%s", strings.Join(stacks, "\n\n"))
	}
	if err := <-errc; err == nil {
		t.Error("the request at the limit was answered")
	}
	// Goroutines of net/http and x/net that ran our code unwind on their
	// own after Close; none may stay in it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		stacks := inOurCode()
		if len(stacks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines still in h2trouble:\n%s", strings.Join(stacks, "\n\n"))
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	// Closed: a new connection is closed at once.
	if _, err := post(t.Context(), f.client(false), f.url, "later", false); err == nil {
		t.Error("answered after Close")
	}
}

const pkgPath = "github.com/pushproxy/pushproxy/internal/h2trouble."

func goroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Split(string(buf), "\n\n")
}

// ours: goroutines this package started.
func ours() []string {
	var out []string
	for _, g := range goroutines() {
		if strings.Contains(g, "created by "+pkgPath) {
			out = append(out, g)
		}
	}
	return out
}

// inOurCode: goroutines with a frame of this package's code (not of its
// tests, which are in package h2trouble_test).
func inOurCode() []string {
	var out []string
	for _, g := range goroutines() {
		if strings.Contains(g, pkgPath) {
			out = append(out, g)
		}
	}
	return out
}
