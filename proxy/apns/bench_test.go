// Benchmarks of pushproxy's APNs sender against two other clients, all
// sending to the same fake APNs (internal/fakeapns: real TLS + HTTP/2 on
// loopback, 1000 concurrent streams advertised, every request checked and
// its provider token verified as Apple does).
//
//   - BenchmarkSender: proxy/apns.Sender used directly, with the payload
//     built once like the other two clients' (per op only the device token
//     and a fresh apns-id change). It reports "signatures", the number of
//     provider tokens signed during the whole benchmark (1: the token is
//     signed once and reused).
//   - BenchmarkSenderTranslated: the same with translate.BuildAPNs per op,
//     the way the proxy uses it.
//   - BenchmarkHandwritten: the smallest correct client, an
//     x/net/http2.Transport and one pre-signed ES256 JWT; the payload bytes
//     are built once. The floor any APNs client can reach here.
//   - BenchmarkApns2: github.com/sideshow/apns2 (token client), the usual
//     Go APNs library, with its payload passed as pre-built bytes.
//   - BenchmarkBuildAPNs: translate.BuildAPNs alone, for allocations per op.
//
// The three clients send the same alert payload
// ({"aps":{"alert":{"title":"Hello","body":"World"}}}) to random 64-hex
// device tokens (drawn from a pre-generated pool, outside the timer) from
// benchSenders goroutines at once (b.SetParallelism + b.RunParallel), after
// one warm-up request that opens the connection. Any non-200 answer fails
// the benchmark, so none can win by failing fast. Each benchmark also
// reports "conns": the TLS connections the fake accepted.
//
// The fake runs in the same process, so ns/op, B/op and allocs/op include
// the fake's own work for each request (TLS, HTTP/2 server, recording the
// request, parsing the JWT), which is the same for the three clients: compare
// differences, not only ratios, of allocs/op.
//
// Run them (the machine is noisy: several counts, all in one sitting):
//
//	go test -run='^$' -bench=. -benchtime=20000x -count=3 ./proxy/apns/
//
// Throughput is 1e9 / (ns/op) notifications per second; the ratios are
// Sender/Handwritten = ns/op(Handwritten) / ns/op(Sender) and
// Sender/apns2 = ns/op(Apns2) / ns/op(Sender) (higher is better for the
// Sender). benchstat (golang.org/x/perf/cmd/benchstat) summarises the
// counts. Add -cpuprofile or -memprofile with -bench=Sender to see where the
// sender spends.
package apns_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/proxy/apns"
	"github.com/pushproxy/pushproxy/translate"
)

// benchSenders is the number of goroutines sending at once in each client
// benchmark.
const benchSenders = 64

const (
	benchTeam    = "DEF123GHIJ"
	benchKeyID   = "ABC123DEFG"
	benchTopic   = "com.example.app"
	benchPayload = `{"aps":{"alert":{"title":"Hello","body":"World"}}}`
	// benchTokens is the size of the pool of random device tokens.
	benchTokens = 4096
)

// benchEnv is one fake APNs with one registered key, and a pool of device
// tokens, for one benchmark run.
type benchEnv struct {
	fake   *fakeapns.Server
	key    *ecdsa.PrivateKey
	tokens []string
	next   atomic.Uint64

	failures atomic.Int64
	mu       sync.Mutex
	first    string // the first failure
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	fake, err := fakeapns.New(fakeapns.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = fake.Close() })
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	fake.AddKey(benchTeam, benchKeyID, &key.PublicKey, benchTopic)
	e := &benchEnv{fake: fake, key: key, tokens: make([]string, benchTokens)}
	for i := range e.tokens {
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		e.tokens[i] = hex.EncodeToString(raw[:])
	}
	return e
}

// token returns the next device token of the pool.
func (e *benchEnv) token() string {
	return e.tokens[(e.next.Add(1)-1)%benchTokens]
}

// fail records a failed request (safe from RunParallel's goroutines, which
// may not call b.Fatal).
func (e *benchEnv) fail(format string, args ...any) {
	if e.failures.Add(1) == 1 {
		e.mu.Lock()
		e.first = fmt.Sprintf(format, args...)
		e.mu.Unlock()
	}
}

// run warms up with one request (outside the timer), then runs send from
// benchSenders goroutines b.N times in all, and fails the benchmark on any
// failed request.
func (e *benchEnv) run(b *testing.B, send func(ctx context.Context)) {
	b.Helper()
	ctx := context.Background()
	send(ctx)
	e.check(b)
	b.ReportAllocs()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism(max(1, (benchSenders+procs-1)/procs))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			send(ctx)
		}
	})
	b.StopTimer()
	e.check(b)
	b.ReportMetric(float64(e.fake.Conns()), "conns")
}

func (e *benchEnv) check(b *testing.B) {
	b.Helper()
	if n := e.failures.Load(); n > 0 {
		e.mu.Lock()
		defer e.mu.Unlock()
		b.Fatalf("%d requests failed; the first: %s", n, e.first)
	}
}

// newUUID returns a random (version 4) UUID, as the proxy makes for each
// notification without a caller id.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return translate.UUIDv4(b)
}

// alertNotification is the neutral form of benchPayload.
func alertNotification(tok string) *translate.Notification {
	return &translate.Notification{
		To:    translate.Recipient{APNs: &translate.APNsRecipient{Token: tok}},
		Title: "Hello", Body: "World",
	}
}

// BenchmarkSender drives proxy/apns.Sender directly, the payload built
// once as for the other clients.
func BenchmarkSender(b *testing.B) { benchSender(b, false) }

// BenchmarkSenderTranslated translates the notification per op (fresh
// apns-id) and sends it: the proxy's own path minus the local API.
func BenchmarkSenderTranslated(b *testing.B) { benchSender(b, true) }

func benchSender(b *testing.B, translated bool) {
	e := newBenchEnv(b)
	var signs atomic.Int64
	cred := &creds.APNsCredential{
		Spec:        creds.APNsSpec{Name: "default", KeyFile: "AuthKey_" + benchKeyID + ".p8", KeyID: benchKeyID, TeamID: benchTeam, Topics: []string{benchTopic}, Environment: apns.Production},
		Key:         e.key,
		Tokens:      creds.NewTokenSource(benchKeyID, benchTeam, e.key, nil, func() { signs.Add(1) }),
		Fingerprint: creds.PublicFingerprint(&e.key.PublicKey),
		LoadedAt:    time.Now(),
		State:       creds.StateOK,
	}
	s := apns.New(apns.Options{ProductionURL: e.fake.URL(), DevelopmentURL: e.fake.URL(), RootCAs: e.fake.CertPool()})
	defer s.Close()
	tmpl, terr := translate.BuildAPNs(alertNotification(e.token()), translate.APNsTarget{Topic: benchTopic, Now: time.Now(), NewID: newUUID()})
	if terr != nil {
		b.Fatal(terr)
	}
	e.run(b, func(ctx context.Context) {
		var req *translate.APNsRequest
		if translated {
			req, terr = translate.BuildAPNs(alertNotification(e.token()), translate.APNsTarget{Topic: benchTopic, Now: time.Now(), NewID: newUUID()})
			if terr != nil {
				e.fail("BuildAPNs: %s: %s", terr.Code, terr.Message)
				return
			}
		} else {
			r := *tmpl
			r.DeviceToken, r.ID = e.token(), newUUID()
			req = &r
		}
		res, terr := s.Send(ctx, apns.Delivery{Credential: cred, Environment: apns.Production, Request: req})
		switch {
		case terr != nil:
			e.fail("Send: %s: %s", terr.Code, terr.Message)
		case res.Upstream == nil || res.Upstream.Status != http.StatusOK || res.Attempts != 1:
			e.fail("Send: unexpected result %+v", res)
		}
	})
	b.ReportMetric(float64(signs.Load()), "signatures")
	if n := signs.Load(); n != 1 {
		b.Errorf("%d provider tokens signed during the run, want 1", n)
	}
}

// handwritten is the smallest correct APNs client: one x/net/http2
// Transport and one provider token signed up front.
type handwritten struct {
	tr   *http2.Transport
	base string
	jwt  string
}

func newHandwritten(b *testing.B, e *benchEnv) *handwritten {
	b.Helper()
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": benchTeam, "iat": time.Now().Unix()})
	t.Header["kid"] = benchKeyID
	signed, err := t.SignedString(e.key)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: e.fake.CertPool(), MinVersion: tls.VersionTLS12}}
	b.Cleanup(tr.CloseIdleConnections)
	return &handwritten{tr: tr, base: e.fake.URL(), jwt: "bearer " + signed}
}

func (h *handwritten) send(ctx context.Context, tok string, payload []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+"/3/device/"+tok, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("authorization", h.jwt)
	req.Header.Set("apns-topic", benchTopic)
	req.Header.Set("apns-push-type", "alert")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("content-type", "application/json")
	resp, err := h.tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// BenchmarkHandwritten is the floor: a hand-written client on
// x/net/http2.Transport with a pre-signed token and pre-built payload.
func BenchmarkHandwritten(b *testing.B) {
	e := newBenchEnv(b)
	h := newHandwritten(b, e)
	payload := []byte(benchPayload)
	e.run(b, func(ctx context.Context) {
		status, err := h.send(ctx, e.token(), payload)
		switch {
		case err != nil:
			e.fail("%v", err)
		case status != http.StatusOK:
			e.fail("status %d", status)
		}
	})
}

// BenchmarkApns2 drives github.com/sideshow/apns2's token client. Its
// NewTokenClient builds an http.Client around an *http2.Transport with its
// own DialTLS (which dials with the tls.Config the transport passes it);
// only that transport's TLSClientConfig is replaced, to trust the fake's
// certificate authority.
func BenchmarkApns2(b *testing.B) {
	e := newBenchEnv(b)
	tok := &token.Token{AuthKey: e.key, KeyID: benchKeyID, TeamID: benchTeam}
	client := apns2.NewTokenClient(tok)
	tr, ok := client.HTTPClient.Transport.(*http2.Transport)
	if !ok {
		b.Fatalf("apns2's transport is %T, want *http2.Transport", client.HTTPClient.Transport)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: e.fake.CertPool(), MinVersion: tls.VersionTLS12}
	b.Cleanup(client.CloseIdleConnections)
	client.Host = e.fake.URL()
	payload := []byte(benchPayload)
	e.run(b, func(ctx context.Context) {
		res, err := client.PushWithContext(ctx, &apns2.Notification{DeviceToken: e.token(), Topic: benchTopic, Payload: payload})
		switch {
		case err != nil:
			e.fail("%v", err)
		case res.StatusCode != http.StatusOK:
			e.fail("status %d %s", res.StatusCode, res.Reason)
		}
	})
}

// BenchmarkBuildAPNs is the translation alone (one goroutine): neutral
// notification → APNs request, with a fresh apns-id, as BenchmarkSender
// does per op.
func BenchmarkBuildAPNs(b *testing.B) {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	b.ReportAllocs()
	for b.Loop() {
		req, terr := translate.BuildAPNs(alertNotification(tok), translate.APNsTarget{Topic: benchTopic, Now: time.Now(), NewID: newUUID()})
		if terr != nil {
			b.Fatalf("%s: %s", terr.Code, terr.Message)
		}
		if len(req.Payload) != len(benchPayload) {
			b.Fatalf("payload %s, want the size of %s", req.Payload, benchPayload)
		}
	}
}
