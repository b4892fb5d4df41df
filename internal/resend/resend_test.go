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

	"github.com/pushproxy/pushproxy/internal/resend"
)

// drainServer is an HTTPS server speaking HTTP/2 that answers its first
// drain connections with SETTINGS and GOAWAY (last stream 0) and closes
// them, as a load balancer going out of service does; later connections
// are served (201).
type drainServer struct {
	srv     *httptest.Server
	conns   atomic.Int64
	served  atomic.Int64
	drain   int64
	handled atomic.Int64
}

func newDrainServer(t *testing.T, drain int64) *drainServer {
	d := &drainServer{drain: drain}
	d.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.handled.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	d.srv.TLS = &tls.Config{NextProtos: []string{"h2"}}
	d.srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){
		"h2": func(hs *http.Server, c *tls.Conn, h http.Handler) {
			if n := d.conns.Add(1); n <= d.drain {
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

// TestWithoutBudgetLoops shows the problem: without a Budget, net/http
// re-dials a draining server as fast as handshakes go until the deadline.
func TestWithoutBudgetLoops(t *testing.T) {
	d := newDrainServer(t, 1<<40)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := post(ctx, d.client(0), d.srv.URL)
	if err == nil {
		t.Fatal("a draining server answered")
	}
	t.Logf("without a budget: %d connections in 300 ms, then %v", d.conns.Load(), err)
	if d.conns.Load() < 20 {
		t.Skipf("only %d connections: net/http no longer loops; the budget may be unneeded", d.conns.Load())
	}
}

func TestExhaustedAgainstDrainingServer(t *testing.T) {
	d := newDrainServer(t, 1<<40)
	c := d.client(8)
	ctx, tr := resend.Budget{Attempts: 4}.Track(context.Background())
	start := time.Now()
	_, err := post(ctx, c, d.srv.URL)
	if !errors.Is(err, resend.ErrExhausted) {
		t.Fatalf("error %v, want ErrExhausted", err)
	}
	if got := d.conns.Load(); got > 4 {
		t.Errorf("%d connections for a budget of 4 attempts", got)
	}
	if tr.Attempts() != 5 {
		t.Errorf("%d attempts counted, want 4 and the refused one", tr.Attempts())
	}
	if d.handled.Load() != 0 {
		t.Error("the handler ran")
	}
	// Re-send 1 at once, then waits of 12.5-25 and 25-50 ms.
	if el := time.Since(start); el < 37*time.Millisecond || el > 2*time.Second {
		t.Errorf("took %v", el)
	}
}

func TestDeliveredAfterDrainedConnections(t *testing.T) {
	d := newDrainServer(t, 2)
	ctx, tr := resend.Budget{}.Track(context.Background())
	resp, err := post(ctx, d.client(8), d.srv.URL)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("%v %v", resp, err)
	}
	if tr.Attempts() != 3 || d.handled.Load() != 1 {
		t.Errorf("attempts %d, handled %d; want 3 and 1", tr.Attempts(), d.handled.Load())
	}
}

func TestHealthyServerOneAttempt(t *testing.T) {
	d := newDrainServer(t, 0)
	c := d.client(8)
	var wg sync.WaitGroup
	var trackers []*resend.Tracker
	var mu sync.Mutex
	for range 50 {
		wg.Go(func() {
			ctx, tr := resend.Budget{}.Track(context.Background())
			mu.Lock()
			trackers = append(trackers, tr)
			mu.Unlock()
			if resp, err := post(ctx, c, d.srv.URL); err != nil || resp.StatusCode != http.StatusCreated {
				t.Errorf("%v %v", resp, err)
			}
		})
	}
	wg.Wait()
	resent := 0
	for _, tr := range trackers {
		if tr.Attempts() > 2 {
			t.Errorf("a request on a healthy server took %d attempts", tr.Attempts())
		}
		resent += tr.Attempts() - 1
	}
	t.Logf("cold start, 50 requests at once: %d re-sent by net/http, %d connections", resent, d.conns.Load())
	if d.conns.Load() > 8 {
		t.Errorf("%d connections with MaxConnsPerHost 8", d.conns.Load())
	}
	if d.handled.Load() != 50 {
		t.Errorf("handled %d", d.handled.Load())
	}
}

func TestDeadlineEndsTheWait(t *testing.T) {
	d := newDrainServer(t, 1<<40)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	ctx, _ = resend.Budget{Attempts: 10, Base: time.Second, Ceiling: 10 * time.Second}.Track(ctx)
	start := time.Now()
	_, err := post(ctx, d.client(8), d.srv.URL)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("a 30 ms deadline returned after %v", el)
	}
}
