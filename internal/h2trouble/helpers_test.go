package h2trouble_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/internal/h2trouble"
	"github.com/pushproxy/pushproxy/internal/testca"
)

// seen is a request that reached the server's handler.
type seen struct {
	id       string // X-Id
	conn     int    // testca.Conns number
	stream   uint32
	proto    string
	answered bool
}

// fixture is an http.Server with TLS (h2 and http/1.1) whose HTTP/2
// connections go through h2trouble, and a handler that records what
// reaches it.
type fixture struct {
	t     *testing.T
	hs    *http.Server
	tr    *h2trouble.Server
	url   string
	pool  *x509.CertPool
	conns testca.Conns
	logs  chan string

	// entered receives the X-Id of each request with X-Hold set once it
	// reached the handler; such a request is answered only after release
	// is closed, and not at all if its context ends first.
	entered chan string
	release chan struct{}

	mu   sync.Mutex
	seen []*seen
}

func newFixture(t *testing.T, tb h2trouble.Trouble) *fixture {
	t.Helper()
	tlsConf, _, pool, err := testca.New("h2trouble-test", []string{"localhost"}, "h2", "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		t: t, url: "https://" + ln.Addr().String(), pool: pool,
		logs: make(chan string, 1000), entered: make(chan string, 100), release: make(chan struct{}),
	}
	f.hs = &http.Server{Handler: http.HandlerFunc(f.handle), TLSConfig: tlsConf, ErrorLog: log.New(io.Discard, "", 0)}
	f.conns.Hook(f.hs)
	f.tr = h2trouble.Install(f.hs, tb, func(format string, args ...any) {
		select {
		case f.logs <- fmt.Sprintf(format, args...):
		default:
		}
	})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = f.hs.Serve(tls.NewListener(ln, tlsConf))
	}()
	t.Cleanup(func() {
		_ = f.hs.Close()
		f.tr.Close()
		<-served
	})
	return f
}

func (f *fixture) handle(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s := &seen{id: r.Header.Get("X-Id"), conn: f.conns.Of(r), stream: h2trouble.StreamID(w, r), proto: r.Proto}
	f.mu.Lock()
	f.seen = append(f.seen, s)
	f.mu.Unlock()
	if r.Header.Get("X-Hold") != "" {
		f.entered <- s.id
		select {
		case <-f.release:
		case <-r.Context().Done():
			return // never answered
		}
	}
	f.mu.Lock()
	s.answered = true
	f.mu.Unlock()
	_, _ = io.WriteString(w, "ok "+s.id)
}

// reached returns copies of the requests that reached the handler.
func (f *fixture) reached() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]seen, len(f.seen))
	for i, s := range f.seen {
		out[i] = *s
	}
	return out
}

// client is a net/http client that negotiates HTTP/2 (or only HTTP/1.1).
func (f *fixture) client(http1Only bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool}, ForceAttemptHTTP2: !http1Only}
	if http1Only {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// post sends POST /id with a body, rewindable (GetBody set: the client may
// retry it on another connection) or not, and returns the answer's body.
func post(ctx context.Context, c *http.Client, url, id string, rewindable bool, hdr ...string) (string, error) {
	var body io.Reader = bytes.NewReader([]byte("payload " + id))
	if !rewindable {
		body = io.NopCloser(strings.NewReader("payload " + id))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/"+id, body)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Id", id)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), errors.New("status " + resp.Status)
	}
	return resp.Proto + " " + string(b), nil
}

// waitLog waits for a log line containing sub.
func (f *fixture) waitLog(sub string) string {
	f.t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case l := <-f.logs:
			if strings.Contains(l, sub) {
				return l
			}
		case <-timeout.C:
			f.t.Fatalf("no log line with %q", sub)
			return ""
		}
	}
}

// waitEntered waits until a held request has reached the handler.
func (f *fixture) waitEntered() string {
	f.t.Helper()
	select {
	case id := <-f.entered:
		return id
	case <-time.After(10 * time.Second):
		f.t.Fatal("no held request reached the handler")
		return ""
	}
}
