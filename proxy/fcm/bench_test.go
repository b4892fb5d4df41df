package fcm_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/internal/fakefcm"
)

// The sender against a bare HTTP/2 client, both to the same fake FCM over
// loopback TLS: what pushproxy's sender adds per notification (token
// lookup, request building, answer parsing), and the token fetches per run
// (the bar: 1). Compare with
//
//	go test -run '^$' -bench . -benchmem ./proxy/fcm/
//
// The end-to-end ratio through the local API belongs to the server's
// benchmark.

func BenchmarkSender(b *testing.B) {
	e := newBenchEnv(b)
	r := build(b, `"title":"Order shipped","body":"On its way","data":{"order":"1234"},"priority":"high","ttl":3600`)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.send(ctx, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(len(e.fake.TokenFetches())), "token-fetches")
}

func BenchmarkDirectHTTP2(b *testing.B) {
	e := newBenchEnv(b)
	r := build(b, `"title":"Order shipped","body":"On its way","data":{"order":"1234"},"priority":"high","ttl":3600`)
	tok, err := e.tokens.Token(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.fake.CertPool()}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	url := e.sender.URL(project)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(r.Body)))
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			req.Header.Set("Content-Type", "application/json; charset=UTF-8")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// newBenchEnv is newEnv for a benchmark: the fake keeps only the latest
// requests, and the first token is fetched before the clock starts.
func newBenchEnv(b *testing.B) *env {
	b.Helper()
	e := newEnvOpts(b, project, fakefcm.Options{MaxRecords: 1000})
	if _, err := e.tokens.Token(context.Background()); err != nil {
		b.Fatal(err)
	}
	return e
}
