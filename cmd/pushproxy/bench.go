package main

// pushproxy bench: a load generator for the local API.
//
// Without --url it is self-contained: it starts a fake APNs
// (internal/fakeapns, TLS + HTTP/2 on 127.0.0.1) and an in-process pushproxy
// in front of it (a key generated into a temporary directory that is removed
// at the end), sends n notifications from c goroutines, prints a summary and
// shuts both down. With --direct it drives the fake APNs itself with a
// minimal hand-written HTTP/2 client instead (the baseline for "end to end
// vs direct"). With --url it loads a running pushproxy.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// Identities of the self-contained setup (a generated key; nothing real).
const (
	benchTeamID = "DEF123GHIJ"
	benchKeyID  = "ABC123DEFG"
	benchBundle = "com.example.app"
)

// Modes.
const (
	modeEndToEnd = "end-to-end"       // POST /v1/notifications, one notification per request
	modeBatch    = "end-to-end-batch" // POST /v1/notifications/batch, K per request
	modeDirect   = "direct"           // straight to the fake APNs, no pushproxy
)

// Targets.
const (
	targetBuiltIn  = "built-in fake APNs"
	targetExternal = "external pushproxy"
)

// benchReport is the summary; --json prints it as is.
type benchReport struct {
	Mode        string `json:"mode"`
	Target      string `json:"target"` // "built-in fake APNs" or "external pushproxy"
	N           int    `json:"n"`
	Concurrency int    `json:"concurrency"`
	Batch       int    `json:"batch,omitempty"`
	// Elapsed covers the n notifications, not the setup or the warm-up.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	Rate           float64 `json:"notifications_per_second"`
	// Latency of each notification, from sending its HTTP request to having
	// read the whole answer; in batch mode, that of the batch it was in.
	Latency struct {
		P50  float64 `json:"p50"`
		P99  float64 `json:"p99"`
		P999 float64 `json:"p999"`
		Max  float64 `json:"max"`
	} `json:"latency_ms"`
	OK       int `json:"ok"`
	Failures int `json:"failures"`
	// FailuresBy counts failures by "<HTTP status> <code or reason>" (the
	// proxy's normalised code; APNs's reason in direct mode), or
	// "transport_error" when no answer came.
	FailuresBy map[string]int `json:"failures_by"`
	// TokensSigned is the number of provider tokens pushproxy signed (from
	// /metrics): with the built-in pushproxy, since it started (warm-up
	// included); with --url, during the run. Absent when unknown and in
	// direct mode.
	TokensSigned *int `json:"provider_tokens_signed,omitempty"`
	// UpstreamConns is the number of TLS connections the fake APNs accepted
	// (self-contained mode only).
	UpstreamConns *int `json:"upstream_connections,omitempty"`
	// Token is the fingerprint (SHA-256, 8 hex) of the --token used for
	// every notification; absent when each notification had a random one.
	Token       string `json:"token_fingerprint,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

type benchFlags struct {
	n, c, batch int
	url, token  string
	topic       string
	direct      bool
	timeout     time.Duration
	json        bool
}

func bench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f benchFlags
	fs.IntVar(&f.n, "n", 20000, "number of notifications to send")
	fs.IntVar(&f.c, "c", 64, "number of requests in flight at once")
	fs.StringVar(&f.url, "url", "", "base URL of a running pushproxy (default: start a fake APNs and an in-process pushproxy)")
	fs.StringVar(&f.token, "token", "", "hex device token for every notification (default: a random one per notification)")
	fs.StringVar(&f.topic, "topic", "", "to.apns.topic (default: the credential's first topic; "+benchBundle+" in self-contained mode)")
	fs.BoolVar(&f.direct, "direct", false, "send straight to the built-in fake APNs with a minimal HTTP/2 client, without pushproxy (the baseline)")
	fs.IntVar(&f.batch, "batch", 0, "send through /v1/notifications/batch in groups of `K` (0: one notification per request)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "deadline of each HTTP request (sent as X-Request-Timeout to pushproxy too)")
	fs.BoolVar(&f.json, "json", false, "print the summary as JSON")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: pushproxy bench [flags]\n\nSends notifications through pushproxy's local API (or straight to a fake APNs with --direct)\nand prints throughput and latency percentiles. Exit 1 if any notification failed.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if msg := f.check(); msg != "" {
		fmt.Fprintf(stderr, "pushproxy bench: %s\n", msg)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := runBench(ctx, f)
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy bench: %v\n", err)
		return 1
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.print(stdout)
	}
	if rep.Failures > 0 || rep.Interrupted {
		return 1
	}
	return 0
}

func (f *benchFlags) check() string {
	switch {
	case f.n < 1:
		return "-n must be at least 1"
	case f.c < 1:
		return "-c must be at least 1"
	case f.batch < 0:
		return "--batch must be 0 or more"
	case f.timeout <= 0:
		return "--timeout must be positive"
	case f.direct && f.url != "":
		return "--direct drives the built-in fake APNs; it cannot be combined with --url"
	case f.direct && f.batch > 0:
		return "--batch goes through pushproxy; it cannot be combined with --direct"
	}
	if f.token != "" {
		if e := translate.ValidDeviceToken(f.token); e != nil {
			return "--token: " + e.Message
		}
	}
	return ""
}

// benchEnv is what one run talks to.
type benchEnv struct {
	base   string           // pushproxy's base URL ("" in direct mode)
	fake   *fakeapns.Server // nil with --url
	key    *ecdsa.PrivateKey
	bundle string
	close  func() error
}

// startSelfContained starts a fake APNs and, unless direct, an in-process
// pushproxy in front of it, as proxy/harness_test.go does. close stops both
// and removes the temporary directory.
func startSelfContained(f benchFlags) (_ *benchEnv, err error) {
	env := &benchEnv{bundle: benchBundle}
	if f.topic != "" {
		env.bundle = f.topic
	}
	var cleanups []func() error
	env.close = func() error {
		var errs []error
		for _, c := range slices.Backward(cleanups) {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = env.close()
		}
	}()

	fake, err := fakeapns.New(fakeapns.Options{})
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, fake.Close)
	env.fake = fake
	if env.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	fake.AddKey(benchTeamID, benchKeyID, &env.key.PublicKey, env.bundle)
	if f.direct {
		return env, nil
	}

	dir, err := os.MkdirTemp("", "pushproxy-bench-")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() error { return os.RemoveAll(dir) })
	p8, err := creds.EncodeP8(env.key)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, "AuthKey_"+benchKeyID+".p8")
	if err := os.WriteFile(keyPath, p8, 0o600); err != nil {
		return nil, err
	}
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, fake.CAPEM(), 0o600); err != nil {
		return nil, err
	}

	cfg := proxy.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.RequestTimeout = f.timeout
	// Room for every request the generator can have in flight, so that the
	// run measures throughput, not the overloaded answer: in batch mode each
	// of the c requests sends up to 64 entries at once.
	inFlight := f.c
	if f.batch > 0 {
		inFlight = f.c * min(f.batch, 64)
	}
	cfg.MaxInFlight = max(cfg.MaxInFlight, inFlight)
	cfg.MaxBatch = max(cfg.MaxBatch, f.batch)
	cfg.APNs = []proxy.APNsConfig{{Name: "default", KeyFile: keyPath, TeamID: benchTeamID, Topics: []string{env.bundle}, Environment: "production"}}
	cfg.Upstream.APNsProductionURL = fake.URL()
	cfg.Upstream.APNsDevelopmentURL = fake.URL()
	cfg.Upstream.CAFile = caPath
	cfg.Reload.PollInterval = 0
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	srv, err := proxy.New(&cfg, proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	ln, err := proxy.Listen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	env.base = "http://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	cleanups = append(cleanups, func() error {
		cancel()
		return <-done
	})
	return env, nil
}

// plan is how one run sends: units of work (one notification each, or one
// batch), numbered 0…units-1, covering notifications 0…n-1 in order.
type plan struct {
	units int
	// first and size give the notifications of a unit.
	first, size func(u int) int
	// send sends a unit and returns, per notification in it, "" on success
	// or the failure key.
	send func(ctx context.Context, u int) []string
	// warm sends one notification outside the run (it opens the
	// connections) and returns its failure key.
	warm func(ctx context.Context) string
	// close releases the client's connections.
	close func()
}

func runBench(ctx context.Context, f benchFlags) (*benchReport, error) {
	rep := &benchReport{N: f.n, Concurrency: f.c, FailuresBy: map[string]int{}}
	var env *benchEnv
	if f.url == "" {
		var err error
		if env, err = startSelfContained(f); err != nil {
			return nil, fmt.Errorf("starting the built-in fake APNs and pushproxy: %w", err)
		}
		rep.Target = targetBuiltIn
	} else {
		env = &benchEnv{base: strings.TrimRight(f.url, "/"), bundle: f.topic, close: func() error { return nil }}
		rep.Target = targetExternal
	}
	err := runBenchOn(ctx, f, env, rep)
	if cerr := env.close(); cerr != nil && err == nil {
		err = fmt.Errorf("shutting down: %w", cerr)
	}
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// makePlan prepares the requests before the clock starts: device tokens
// (tokens[0] is the warm-up's) and request bodies.
func makePlan(f benchFlags, env *benchEnv) (*plan, error) {
	tokens := make([]string, f.n+1)
	for i := range tokens {
		if f.token != "" {
			tokens[i] = strings.ToLower(f.token)
			continue
		}
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		tokens[i] = hex.EncodeToString(raw[:])
	}
	one := func(u int) int { return 1 }
	same := func(u int) int { return u }
	if f.direct {
		d, err := newDirectClient(env.fake, env.key, env.bundle, f.timeout)
		if err != nil {
			return nil, err
		}
		return &plan{
			units: f.n, first: same, size: one,
			send:  func(ctx context.Context, u int) []string { return []string{d.send(ctx, tokens[u+1])} },
			warm:  func(ctx context.Context) string { return d.send(ctx, tokens[0]) },
			close: d.tr.CloseIdleConnections,
		}, nil
	}
	pc := newProxyClient(env.base, f.c, f.timeout)
	bodies := make([][]byte, len(tokens))
	for i, tok := range tokens {
		bodies[i] = mustJSON(benchNotification(tok, f.topic))
	}
	p := &plan{
		units: f.n, first: same, size: one,
		send:  func(ctx context.Context, u int) []string { return []string{pc.sendOne(ctx, bodies[u+1])} },
		warm:  func(ctx context.Context) string { return pc.sendOne(ctx, bodies[0]) },
		close: pc.client.CloseIdleConnections,
	}
	if f.batch > 0 {
		k := f.batch
		p.units = (f.n + k - 1) / k
		p.first = func(u int) int { return u * k }
		p.size = func(u int) int { return min(k, f.n-u*k) }
		batches := make([][]byte, p.units)
		for u := range batches {
			entries := make([]json.RawMessage, 0, p.size(u))
			for _, b := range bodies[1+p.first(u) : 1+p.first(u)+p.size(u)] {
				entries = append(entries, b)
			}
			batches[u] = mustJSON(map[string]any{"notifications": entries})
		}
		p.send = func(ctx context.Context, u int) []string { return pc.sendBatch(ctx, batches[u], p.size(u)) }
	}
	return p, nil
}

func runBenchOn(ctx context.Context, f benchFlags, env *benchEnv, rep *benchReport) error {
	switch {
	case f.direct:
		rep.Mode = modeDirect
	case f.batch > 0:
		rep.Mode, rep.Batch = modeBatch, f.batch
	default:
		rep.Mode = modeEndToEnd
	}
	if f.token != "" {
		rep.Token = translate.FingerprintString(strings.ToLower(f.token))
	}
	p, err := makePlan(f, env)
	if err != nil {
		return err
	}
	defer p.close()
	if k := p.warm(ctx); k != "" {
		return fmt.Errorf("the warm-up notification failed: %s", k)
	}
	// Provider tokens signed: with the built-in pushproxy, all it ever
	// signed (the warm-up included); with --url, those of the run.
	signedBefore, haveSigned := 0, env.base != "" && !f.direct
	if haveSigned && env.fake == nil {
		signedBefore, haveSigned = tokensSigned(ctx, env.base)
	}

	latencies := make([]time.Duration, f.n)
	keys := make([]string, f.n)
	finished := make([]bool, f.n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range min(f.c, p.units) {
		wg.Go(func() {
			for ctx.Err() == nil {
				u := int(next.Add(1) - 1)
				if u >= p.units {
					return
				}
				t0 := time.Now()
				res := p.send(ctx, u)
				lat := time.Since(t0)
				for j := range p.size(u) {
					i := p.first(u) + j
					latencies[i], keys[i], finished[i] = lat, res[j], true
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	done := latencies[:0]
	for i, ok := range finished {
		if !ok {
			rep.Interrupted = true
			continue
		}
		done = append(done, latencies[i])
		if keys[i] != "" {
			rep.FailuresBy[keys[i]]++
			rep.Failures++
		} else {
			rep.OK++
		}
	}
	rep.ElapsedSeconds = elapsed.Seconds()
	if elapsed > 0 {
		rep.Rate = float64(len(done)) / elapsed.Seconds()
	}
	slices.Sort(done)
	rep.Latency.P50 = ms(percentile(done, 0.50))
	rep.Latency.P99 = ms(percentile(done, 0.99))
	rep.Latency.P999 = ms(percentile(done, 0.999))
	if len(done) > 0 {
		rep.Latency.Max = ms(done[len(done)-1])
	}
	if haveSigned {
		if after, ok := tokensSigned(context.Background(), env.base); ok {
			n := after - signedBefore
			rep.TokensSigned = &n
		}
	}
	if env.fake != nil {
		n := env.fake.Conns()
		rep.UpstreamConns = &n
	}
	return nil
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func benchNotification(tok, topic string) map[string]any {
	to := map[string]any{"token": tok}
	if topic != "" {
		to["topic"] = topic
	}
	return map[string]any{"to": map[string]any{"apns": to}, "title": "Hello", "body": "World"}
}

// proxyClient posts to pushproxy's local API.
type proxyClient struct {
	base    string
	client  *http.Client
	timeout string
}

func newProxyClient(base string, c int, timeout time.Duration) *proxyClient {
	tr := &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	return &proxyClient{
		base:    base,
		client:  &http.Client{Transport: tr, Timeout: timeout},
		timeout: strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64),
	}
}

func (p *proxyClient) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Timeout", p.timeout)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// errorKey is "<status> <code>" of a normalised error answer.
func errorKey(status int, body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Error.Code == "" {
		e.Error.Code = "no_error_code"
	}
	return strconv.Itoa(status) + " " + e.Error.Code
}

func (p *proxyClient) sendOne(ctx context.Context, body []byte) string {
	status, data, err := p.post(ctx, "/v1/notifications", body)
	switch {
	case err != nil:
		return "transport_error"
	case status != http.StatusOK:
		return errorKey(status, data)
	}
	return ""
}

func (p *proxyClient) sendBatch(ctx context.Context, body []byte, n int) []string {
	out := make([]string, n)
	status, data, err := p.post(ctx, "/v1/notifications/batch", body)
	var fail string
	switch {
	case err != nil:
		fail = "transport_error"
	case status != http.StatusOK:
		fail = errorKey(status, data)
	}
	var b struct {
		Results []struct {
			Upstream *struct {
				Status int `json:"status"`
			} `json:"upstream"`
			Error *struct {
				Code     string `json:"code"`
				Upstream *struct {
					Status int `json:"status"`
				} `json:"upstream"`
			} `json:"error"`
		} `json:"results"`
	}
	if fail == "" {
		if err := json.Unmarshal(data, &b); err != nil || len(b.Results) != n {
			fail = "200 malformed_batch_answer"
		}
	}
	for i := range out {
		switch {
		case fail != "":
			out[i] = fail
		case b.Results[i].Error != nil:
			out[i] = "batch " + b.Results[i].Error.Code
		case b.Results[i].Upstream == nil || b.Results[i].Upstream.Status != http.StatusOK:
			out[i] = "batch no_upstream_status"
		}
	}
	return out
}

// tokensSigned reads pushproxy_tokens_signed_total{kind="apns"} from /metrics.
func tokensSigned(ctx context.Context, base string) (int, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `pushproxy_tokens_signed_total{kind="apns"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, false
		}
		return int(v), true
	}
	return 0, true // no sample yet: nothing signed
}

// directClient is the minimal hand-written APNs client (x/net/http2 and
// one provider token signed up front), as BenchmarkHandwritten in
// proxy/apns uses.
type directClient struct {
	tr      *http2.Transport
	base    string
	bundle  string
	jwt     string
	timeout time.Duration
}

var directPayload = []byte(`{"aps":{"alert":{"title":"Hello","body":"World"}}}`)

func newDirectClient(fake *fakeapns.Server, key *ecdsa.PrivateKey, bundle string, timeout time.Duration) (*directClient, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": benchTeamID, "iat": time.Now().Unix()})
	t.Header["kid"] = benchKeyID
	signed, err := t.SignedString(key)
	if err != nil {
		return nil, err
	}
	return &directClient{
		tr:     &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: fake.CertPool(), MinVersion: tls.VersionTLS12}},
		base:   fake.URL(),
		bundle: bundle, jwt: "bearer " + signed, timeout: timeout,
	}, nil
}

func (d *directClient) send(ctx context.Context, tok string) string {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/3/device/"+tok, bytes.NewReader(directPayload))
	if err != nil {
		return "transport_error"
	}
	req.Header.Set("authorization", d.jwt)
	req.Header.Set("apns-topic", d.bundle)
	req.Header.Set("apns-push-type", "alert")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("content-type", "application/json")
	resp, err := d.tr.RoundTrip(req)
	if err != nil {
		return "transport_error"
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "transport_error"
	}
	if resp.StatusCode != http.StatusOK {
		reason, _ := translate.ParseAPNsBody(body)
		return strconv.Itoa(resp.StatusCode) + " " + reason
	}
	return ""
}

func (r *benchReport) print(w io.Writer) {
	via := map[string]string{
		modeEndToEnd: "POST /v1/notifications → pushproxy → APNs",
		modeBatch:    "POST /v1/notifications/batch → pushproxy → APNs",
		modeDirect:   "hand-written HTTP/2 client → APNs, no pushproxy",
	}[r.Mode]
	fmt.Fprintf(w, "pushproxy bench: %s (%s; %s)\n", r.Mode, via, r.Target)
	batch := ""
	if r.Batch > 0 {
		batch = fmt.Sprintf(", %d per batch", r.Batch)
	}
	fmt.Fprintf(w, "  notifications  %d, concurrency %d%s\n", r.N, r.Concurrency, batch)
	if r.Token != "" {
		fmt.Fprintf(w, "  device token   %s (fingerprint), the same for every notification\n", r.Token)
	}
	fmt.Fprintf(w, "  elapsed        %.3fs\n", r.ElapsedSeconds)
	fmt.Fprintf(w, "  throughput     %.0f notifications/s\n", r.Rate)
	fmt.Fprintf(w, "  latency        p50 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms\n", r.Latency.P50, r.Latency.P99, r.Latency.P999, r.Latency.Max)
	if r.TokensSigned != nil {
		scope := "during the run"
		if r.Target == targetBuiltIn {
			scope = "since pushproxy started"
		}
		fmt.Fprintf(w, "  tokens signed  %d provider token(s) %s\n", *r.TokensSigned, scope)
	}
	if r.UpstreamConns != nil {
		fmt.Fprintf(w, "  APNs conns     %d TLS connection(s) to the fake APNs\n", *r.UpstreamConns)
	}
	fmt.Fprintf(w, "  ok             %d\n", r.OK)
	fmt.Fprintf(w, "  failures       %d\n", r.Failures)
	for _, k := range slices.Sorted(maps.Keys(r.FailuresBy)) {
		fmt.Fprintf(w, "    %-40s %d\n", k, r.FailuresBy[k])
	}
	if r.Interrupted {
		fmt.Fprintf(w, "  interrupted before the end\n")
	}
}
