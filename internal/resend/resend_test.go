package resend_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/internal/h2trouble"
	"github.com/pushproxy/pushproxy/internal/resend"
	"github.com/pushproxy/pushproxy/internal/testca"
)

// drainServer is an HTTPS server speaking HTTP/2 that answers its first
// drain connections with SETTINGS and GOAWAY (last stream 0) and closes
// them, as a load balancer going out of service does; later connections
// are served (201).
type drainServer struct {
	srv     *httptest.Server
	conns   atomic.Int64
	served  atomic.Int64
	drain   atomic.Int64 // connections up to this number are drained
	handled atomic.Int64
}

func newDrainServer(t *testing.T, drain int64) *drainServer {
	d := &drainServer{}
	d.drain.Store(drain)
	d.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.handled.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	d.srv.TLS = &tls.Config{NextProtos: []string{"h2"}}
	d.srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){
		"h2": func(hs *http.Server, c *tls.Conn, h http.Handler) {
			if n := d.conns.Add(1); n <= d.drain.Load() {
				fr := http2.NewFramer(c, c)
				_ = fr.WriteSettings()
				_ = fr.WriteGoAway(0, http2.ErrCodeNo, []byte(`{"reason":"Shutdown"}`))
				_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
				return
			}
			d.served.Add(1)
			(&http2.Server{}).ServeConn(c, &http2.ServeConnOpts{BaseConfig: hs, Handler: h})
		},
	}
	d.srv.StartTLS()
	t.Cleanup(d.srv.Close)
	return d
}

func (d *drainServer) client(maxConns int) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(d.srv.Certificate())
	dialer := &net.Dialer{Timeout: time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext:       resend.Dial(dialer.DialContext),
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		MaxConnsPerHost:   maxConns,
	}}
}

func post(ctx context.Context, c *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("hello"))
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	return resp, err
}

// TestWithoutBudgetLoops pins the behaviour this package exists for:
// without a Pacer, net/http re-dials a draining server as fast as
// handshakes go until the deadline. If this fails, net/http changed:
// revisit the package.
func TestWithoutBudgetLoops(t *testing.T) {
	d := newDrainServer(t, 1<<40)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := post(ctx, d.client(0), d.srv.URL)
	if err == nil {
		t.Fatal("a draining server answered")
	}
	t.Logf("without a Pacer: %d connections in 300 ms, then %v", d.conns.Load(), err)
	if d.conns.Load() < 10 {
		t.Errorf("only %d connections: net/http no longer loops", d.conns.Load())
	}
}

// notSent reports whether a failed request surely sent nothing.
func notSent(err error, tr *resend.Tracker) bool { return tr.NotSent(err) }

func TestExhaustedAgainstDrainingServer(t *testing.T) {
	d := newDrainServer(t, 1<<40)
	c := d.client(8)
	p := resend.NewPacer(resend.Options{Attempts: 4})
	ctx, tr := p.Track(context.Background())
	_, err := post(ctx, c, d.srv.URL)
	if !errors.Is(err, resend.ErrExhausted) || tr.Sent() {
		t.Fatalf("error %v (sent %v), want ErrExhausted", err, tr.Sent())
	}
	if got := d.conns.Load(); got != 4 || tr.Dials() != 4 {
		t.Errorf("%d connections, %d dials counted, want 4 for a budget of 4", got, tr.Dials())
	}
	// The service recovers; once the rest (100 ms) is over, delivered (a
	// connection dialled while it drained may still fail a request, as
	// not sent).
	d.drain.Store(0)
	time.Sleep(150 * time.Millisecond)
	for try := 1; ; try++ {
		ctx, tr := p.Track(context.Background())
		resp, err := post(ctx, c, d.srv.URL)
		if err == nil && resp.StatusCode == http.StatusCreated {
			break
		}
		if !notSent(err, tr) || try == 3 {
			t.Fatalf("after recovery, try %d: %v %v", try, resp, err)
		}
	}
	if d.handled.Load() != 1 {
		t.Errorf("handled %d", d.handled.Load())
	}
}

// TestManyAgainstDrainingServer: 16 requests at once against a server
// that drains every connection all fail as not sent, opening a bounded
// number of connections (they take a few seconds: x/net's own HTTP/2 layer
// waits 1 s, then 2 s, before re-sending a request on another open
// connection).
func TestManyAgainstDrainingServer(t *testing.T) {
	d := newDrainServer(t, 1<<40)
	c := d.client(16)
	p := resend.NewPacer(resend.Options{})
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ctx, tr := p.Track(ctx)
			if _, err := post(ctx, c, d.srv.URL); !notSent(err, tr) {
				t.Errorf("error %v, sent %v", err, tr.Sent())
			}
		})
	}
	wg.Wait()
	t.Logf("16 requests at once: %d connections in %v", d.conns.Load(), time.Since(start))
	if d.conns.Load() > 16*6 || d.handled.Load() != 0 {
		t.Errorf("%d connections, %d handled", d.conns.Load(), d.handled.Load())
	}
}

func TestDeliveredAfterDrainedConnections(t *testing.T) {
	d := newDrainServer(t, 2)
	ctx, tr := resend.NewPacer(resend.Options{}).Track(context.Background())
	resp, err := post(ctx, d.client(8), d.srv.URL)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("%v %v", resp, err)
	}
	if tr.Dials() != 3 || d.handled.Load() != 1 {
		t.Errorf("dials %d, handled %d; want 3 and 1", tr.Dials(), d.handled.Load())
	}
}

func TestHealthyServerOneAttempt(t *testing.T) {
	d := newDrainServer(t, 0)
	c := d.client(8)
	var wg sync.WaitGroup
	var trackers []*resend.Tracker
	var mu sync.Mutex
	p := resend.NewPacer(resend.Options{})
	for range 50 {
		wg.Go(func() {
			ctx, tr := p.Track(context.Background())
			mu.Lock()
			trackers = append(trackers, tr)
			mu.Unlock()
			if resp, err := post(ctx, c, d.srv.URL); err != nil || resp.StatusCode != http.StatusCreated {
				t.Errorf("%v %v", resp, err)
			}
		})
	}
	wg.Wait()
	dials := 0
	for _, tr := range trackers {
		if tr.Dials() > 1 {
			t.Errorf("a request on a healthy server dialled %d times", tr.Dials())
		}
		dials += tr.Dials()
	}
	t.Logf("cold start, 50 requests at once: %d dials, %d connections", dials, d.conns.Load())
	if d.conns.Load() > 8 {
		t.Errorf("%d connections with MaxConnsPerHost 8", d.conns.Load())
	}
	if d.handled.Load() != 50 {
		t.Errorf("handled %d", d.handled.Load())
	}
}

// TestGracefulGoAwayUnderLoad: with a Pacer on every request, a server
// that sends a graceful GOAWAY after every 5 streams of a connection loses
// nothing. (A first version waited in the GetConn hook, which x/net's
// HTTP/2 pool calls holding its lock and a stream reserved on the
// connection: a quarter of the requests failed "force closed".)
func TestGracefulGoAwayUnderLoad(t *testing.T) {
	tlsConf, _, roots, err := testca.New("resend-test", []string{"localhost"}, "h2")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	hs := &http.Server{TLSConfig: tlsConf, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	})}
	tr := h2trouble.Install(hs, h2trouble.Trouble{GoAwayAfter: 5}, nil)
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = hs.Close(); tr.Close() })
	dialer := &net.Dialer{Timeout: time.Second}
	c := &http.Client{Transport: &http.Transport{
		DialContext:       resend.Dial(dialer.DialContext),
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		MaxConnsPerHost:   16,
	}}
	var wg sync.WaitGroup
	var failed atomic.Int64
	pacer := resend.NewPacer(resend.Options{})
	for range 40 {
		wg.Go(func() {
			ctx, _ := pacer.Track(context.Background())
			if resp, err := post(ctx, c, "https://"+ln.Addr().String()); err != nil || resp.StatusCode != http.StatusCreated {
				failed.Add(1)
				t.Log(err)
			}
		})
	}
	wg.Wait()
	t.Logf("40 requests over %d connections", tr.Conns())
	if failed.Load() != 0 || handled.Load() != 40 || tr.Conns() < 4 {
		t.Errorf("%d failed, %d handled, %d connections", failed.Load(), handled.Load(), tr.Conns())
	}
}
