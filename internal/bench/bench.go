// Package bench is the load generator behind pushproxy bench: it sends
// notifications through pushproxy's local API and measures throughput and
// latency.
//
// Without a URL it is self-contained: it starts a fake APNs
// (internal/fakeapns, TLS + HTTP/2 on 127.0.0.1) and an in-process pushproxy
// in front of it (a key generated into a temporary directory that is removed
// at the end), sends n notifications from c goroutines, prints a summary and
// shuts both down. With --direct it drives the fake APNs itself with a
// minimal hand-written HTTP/2 client instead (the baseline for "end to end
// vs direct"). With a URL it loads a running pushproxy.
package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/translate"
)

// Identities of the self-contained setup (a generated key; nothing real).
const (
	benchTeamID = "DEF123GHIJ"
	benchKeyID  = "ABC123DEFG"
	benchBundle = "com.example.app"
)

// Modes of a run (Report.Mode).
const (
	ModeEndToEnd = "end-to-end"       // POST /v1/notifications, one notification per request
	ModeBatch    = "end-to-end-batch" // POST /v1/notifications/batch, K per request
	ModeDirect   = "direct"           // straight to the fake APNs, no pushproxy
)

// What a run loads (Report.Target).
const (
	TargetBuiltIn = "built-in fake APNs"
	// TargetBuiltInFCM: --fcm, the self-contained setup with a fake FCM.
	TargetBuiltInFCM = "built-in fake FCM"
	TargetExternal   = "external pushproxy"
	// TargetExternalFake: --direct --fake, a fake APNs in its own process.
	TargetExternalFake = "external fake APNs"
)

// Options are one run's parameters (the flags of pushproxy bench).
type Options struct {
	N       int    // notifications to send
	C       int    // requests in flight at once
	Batch   int    // notifications per /v1/notifications/batch request; 0: one per request
	URL     string // base URL of a running pushproxy; "": the self-contained setup
	Token   string // hex device token of every notification; "": a random one each
	Topic   string // to.apns.topic; "": the credential's first (com.example.app when self-contained)
	Direct  bool   // drive the built-in fake APNs directly, without pushproxy
	Timeout time.Duration

	// Fake is the URL of a fake APNs running as a process of its own
	// (internal/fakeapns/cmd/fakeapns), driven directly by the x/net/http2
	// client (with Direct): the baseline of a separate-process run. CAFile
	// is its CA, KeyFile the .p8 it trusts, KeyID and TeamID its identity
	// (default ABC123DEFG, DEF123GHIJ).
	Fake, CAFile, KeyFile, KeyID, TeamID string
	// Watches are processes whose CPU the run measures (--cpu NAME=PID),
	// besides the load client's own; MaxOtherLoad is the CPU (in cores)
	// the rest of the machine may use before the run is flagged.
	Watches      []Watch
	MaxOtherLoad float64

	// WebPush is a file holding a Web Push subscription ({endpoint, keys},
	// as internal/fakepush/cmd/fakepush writes it): with URL, every
	// notification goes to it instead of to APNs.
	WebPush string
	// FCM, in the self-contained setup, sends every notification to
	// Android through a fake FCM (internal/fakefcm) instead of to APNs.
	FCM bool
	// Send, when set, is the baseline sender of a direct run (what Target
	// names; index i of n): for clients that pushproxy's binary does not
	// link, such as webpush-go (internal/bench/cmd/webpushgo). It returns
	// "" on success or the failure key.
	Send   func(ctx context.Context, i int) string
	Target string
}

// Check says what is wrong with the options, if anything (the error names
// the flag).
func (f Options) Check() error {
	switch {
	case f.N < 1:
		return errors.New("-n must be at least 1")
	case f.C < 1:
		return errors.New("-c must be at least 1")
	case f.Batch < 0:
		return errors.New("--batch must be 0 or more")
	case f.Timeout <= 0:
		return errors.New("--timeout must be positive")
	case f.Direct && f.URL != "":
		return errors.New("--direct drives the built-in fake APNs; it cannot be combined with --url")
	case f.Direct && f.Batch > 0:
		return errors.New("--batch goes through pushproxy; it cannot be combined with --direct")
	case f.Fake != "" && !f.Direct:
		return errors.New("--fake is the baseline's upstream; it goes with --direct")
	case f.Fake != "" && (f.CAFile == "" || f.KeyFile == ""):
		return errors.New("--fake needs --ca and --key")
	case f.WebPush != "" && f.URL == "":
		return errors.New("--webpush sends through a running pushproxy; it needs --url")
	case f.FCM && (f.URL != "" || f.Direct || f.WebPush != ""):
		return errors.New("--fcm runs the self-contained setup with a fake FCM; it cannot be combined with --url, --direct or --webpush")
	}
	if f.Token != "" {
		if e := translate.ValidDeviceToken(f.Token); e != nil {
			return errors.New("--token: " + e.Message)
		}
	}
	return nil
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

// Run sends o.N notifications as o says and reports on them; it stops
// early (Report.Interrupted) when ctx ends. The self-contained setup is
// shut down and its temporary directory removed before it returns.
func Run(ctx context.Context, f Options) (*Report, error) {
	rep := &Report{N: f.N, Concurrency: f.C, FailuresBy: map[string]int{}}
	var env *runEnv
	switch {
	case f.Send != nil:
		env = &runEnv{close: func() error { return nil }}
		rep.Target = f.Target
	case f.Fake != "":
		var err error
		if env, err = externalFake(f); err != nil {
			return nil, err
		}
		rep.Target = TargetExternalFake
	case f.URL == "":
		var err error
		if env, err = startSelfContained(f); err != nil {
			return nil, fmt.Errorf("starting the built-in fake APNs and pushproxy: %w", err)
		}
		rep.Target = TargetBuiltIn
		if f.FCM {
			rep.Target = TargetBuiltInFCM
		}
	default:
		env = &runEnv{base: strings.TrimRight(f.URL, "/"), bundle: f.Topic, close: func() error { return nil }}
		rep.Target = TargetExternal
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
func makePlan(f Options, env *runEnv) (*plan, error) {
	tokens := make([]string, f.N+1)
	for i := range tokens {
		if f.Token != "" {
			tokens[i] = strings.ToLower(f.Token)
			continue
		}
		var raw [32]byte
		_, _ = rand.Read(raw[:])
		tokens[i] = hex.EncodeToString(raw[:])
	}
	one := func(u int) int { return 1 }
	same := func(u int) int { return u }
	if f.Send != nil {
		return &plan{
			units: f.N, first: same, size: one,
			send:  func(ctx context.Context, u int) []string { return []string{f.Send(ctx, u+1)} },
			warm:  func(ctx context.Context) string { return f.Send(ctx, 0) },
			close: func() {},
		}, nil
	}
	if f.Direct {
		d, err := newDirectClient(env, f.Timeout)
		if err != nil {
			return nil, err
		}
		return &plan{
			units: f.N, first: same, size: one,
			send:  func(ctx context.Context, u int) []string { return []string{d.send(ctx, tokens[u+1])} },
			warm:  func(ctx context.Context) string { return d.send(ctx, tokens[0]) },
			close: d.tr.CloseIdleConnections,
		}, nil
	}
	pc := newProxyClient(env.base, f.C, f.Timeout)
	bodies := make([][]byte, len(tokens))
	var sub json.RawMessage
	if f.WebPush != "" {
		b, err := os.ReadFile(f.WebPush)
		if err != nil {
			return nil, fmt.Errorf("--webpush: %w", err)
		}
		if !json.Valid(b) {
			return nil, fmt.Errorf("--webpush: %s is not JSON", f.WebPush)
		}
		sub = b
	}
	for i, tok := range tokens {
		if f.FCM {
			// An FCM registration token: opaque, [A-Za-z0-9_:-], ~160 characters.
			bodies[i] = mustJSON(map[string]any{"to": map[string]any{"fcm": map[string]any{"token": "bench:" + tok + tok[:40] + tok}}, "title": "Hello", "body": "World"})
			continue
		}
		if sub != nil {
			bodies[i] = mustJSON(map[string]any{"to": map[string]any{"webpush": sub}, "title": "Hello", "body": "World"})
			continue
		}
		bodies[i] = mustJSON(benchNotification(tok, f.Topic))
	}
	p := &plan{
		units: f.N, first: same, size: one,
		send:  func(ctx context.Context, u int) []string { return []string{pc.sendOne(ctx, bodies[u+1])} },
		warm:  func(ctx context.Context) string { return pc.sendOne(ctx, bodies[0]) },
		close: pc.client.CloseIdleConnections,
	}
	if f.Batch > 0 {
		k := f.Batch
		p.units = (f.N + k - 1) / k
		p.first = func(u int) int { return u * k }
		p.size = func(u int) int { return min(k, f.N-u*k) }
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

func runBenchOn(ctx context.Context, f Options, env *runEnv, rep *Report) error {
	switch {
	case f.Direct || f.Send != nil:
		rep.Mode = ModeDirect
	case f.Batch > 0:
		rep.Mode, rep.Batch = ModeBatch, f.Batch
	default:
		rep.Mode = ModeEndToEnd
	}
	if f.Token != "" {
		rep.Token = translate.FingerprintString(strings.ToLower(f.Token))
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
	signedBefore, haveSigned := 0, env.base != "" && !f.Direct
	if haveSigned && env.fake == nil {
		signedBefore, haveSigned = tokensSigned(ctx, env.base, "apns")
	}

	var cpuBefore cpuSnapshot
	if len(f.Watches) > 0 {
		if cpuBefore, err = snapshotCPU(f.Watches); err != nil {
			return err
		}
	}
	latencies := make([]time.Duration, f.N)
	keys := make([]string, f.N)
	finished := make([]bool, f.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range min(f.C, p.units) {
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
	var cpuAfter cpuSnapshot
	if len(f.Watches) > 0 {
		if cpuAfter, err = snapshotCPU(f.Watches); err != nil {
			return err
		}
	}

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
		kind := "apns"
		if f.FCM {
			kind = "fcm" // access tokens fetched
		}
		if after, ok := tokensSigned(context.Background(), env.base, kind); ok {
			n := after - signedBefore
			rep.TokensSigned = &n
		}
	}
	if len(f.Watches) > 0 {
		var m Machine
		rep.CPU, m = cpuReport(f.Watches, cpuBefore, cpuAfter, len(done), elapsed.Seconds(), f.MaxOtherLoad)
		rep.Machine = &m
	}
	if env.fake != nil && !f.FCM {
		n := env.fake.Conns()
		rep.UpstreamConns = &n
	}
	return nil
}

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

// externalFake is the environment of --direct --fake: a fake APNs in a
// process of its own, its CA and the key it trusts read from files.
func externalFake(f Options) (*runEnv, error) {
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca: no PEM certificate in %s", f.CAFile)
	}
	p8, err := os.ReadFile(f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	key, err := creds.ParseP8(p8)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	env := &runEnv{
		key: key, bundle: cmp.Or(f.Topic, benchBundle), close: func() error { return nil },
		fakeURL: strings.TrimRight(f.Fake, "/"), fakeRoots: roots,
		keyID: cmp.Or(f.KeyID, benchKeyID), teamID: cmp.Or(f.TeamID, benchTeamID),
	}
	return env, nil
}
