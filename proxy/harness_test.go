package proxy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/proxy"
)

const (
	teamID = "DEF123GHIJ"
	keyID  = "ABC123DEFG"
	bundle = "com.example.app"
)

// syncBuffer collects the proxy's log output of one test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is a real pushproxy server on loopback in front of a real fake
// APNs (TLS + HTTP/2) on loopback.
type harness struct {
	t          testing.TB
	fake       *fakeapns.Server
	srv        *proxy.Server
	url        string
	logs       *syncBuffer
	dir        string
	keyPath    string
	key        *ecdsa.PrivateKey
	cfg        *proxy.Config
	configPath string
	now        func() time.Time
	level      *slog.LevelVar
	client     *http.Client // nil: http.DefaultClient
	// stop ends Serve as SIGTERM does and returns what it returned; the
	// cleanup calls it if the test did not.
	stop func() error
	// secrets must never appear in the logs: checked at cleanup.
	secretsMu sync.Mutex
	secrets   []string
}

func genKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeKey(t testing.TB, path string, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	data, err := creds.EncodeP8(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

type harnessOpts struct {
	noKeyFile  bool
	configPath string // passed to the server as Options.ConfigPath
	now        func() time.Time
	level      *slog.LevelVar // passed as Options.LogLevel
	fakeOpts   fakeapns.Options
	mutate     func(*proxy.Config)
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}, dir: t.TempDir()}
	fake, err := fakeapns.New(o.fakeOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	h.fake = fake
	h.key = genKey(t)
	fake.AddKey(teamID, keyID, &h.key.PublicKey, bundle, "com.example.other")
	h.keyPath = filepath.Join(h.dir, "AuthKey_"+keyID+".p8")
	if !o.noKeyFile {
		h.addSecretKey(writeKey(t, h.keyPath, h.key))
	}
	caPath := filepath.Join(h.dir, "ca.pem")
	if err := os.WriteFile(caPath, fake.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := proxy.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.Log.Level = "debug"
	cfg.APNs = []proxy.APNsConfig{{Name: "default", KeyFile: h.keyPath, TeamID: teamID, Topics: []string{bundle}, Environment: "production"}}
	cfg.Upstream.APNsProductionURL = fake.URL()
	cfg.Upstream.APNsDevelopmentURL = fake.URL()
	cfg.Upstream.CAFile = caPath
	cfg.Reload.PollInterval = 0
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.cfg = &cfg
	h.configPath = o.configPath
	h.now = o.now
	h.level = o.level
	h.start()
	return h
}

func (h *harness) start() {
	t := h.t
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := proxy.New(h.cfg, proxy.Options{Logger: log, ConfigPath: h.configPath, Now: h.now, LogLevel: h.level})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	ln, err := proxy.Listen(h.cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + ln.Addr().String()
	if ln.Addr().Network() == "unix" {
		sock := ln.Addr().String()
		h.url = "http://pushproxy"
		h.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	// An answer means Serve is running, so its file watches are in place.
	if a := h.get("/healthz"); a.Status != 200 {
		t.Fatalf("healthz %d", a.Status)
	}
	var once sync.Once
	var serveErr error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			serveErr = <-done
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
		h.checkLogs()
	})
}

func (h *harness) addSecretKey(pemData []byte) {
	block, _ := pem.Decode(pemData)
	b64 := base64.StdEncoding.EncodeToString(block.Bytes)
	h.addSecret(b64[:40], b64[len(b64)-40:])
	h.addSecret(h.key.D.Text(16))
}

func (h *harness) addSecret(s ...string) {
	h.secretsMu.Lock()
	defer h.secretsMu.Unlock()
	h.secrets = append(h.secrets, s...)
}

// checkLogs asserts that nothing secret reached the proxy's log: no key
// material, no provider token (JWT), no full device token.
func (h *harness) checkLogs() {
	logs := h.logs.String()
	if strings.Contains(logs, "eyJ") {
		h.t.Errorf("a JWT appears in the logs")
	}
	if strings.Contains(logs, "PRIVATE KEY") {
		h.t.Errorf("key material appears in the logs")
	}
	// Long secrets made of hex digits (device tokens, private scalars) are
	// looked up among the hex runs of the log, the others searched for;
	// a search per token would be quadratic in a long run.
	lower := strings.ToLower(logs)
	runs := map[string]bool{}
	for _, m := range hexRun.FindAllString(lower, -1) {
		runs[m] = true
	}
	hexLeak := func(sec string) bool {
		for run := range runs {
			if strings.Contains(run, sec) {
				return true
			}
		}
		return false
	}
	h.secretsMu.Lock()
	defer h.secretsMu.Unlock()
	for _, sec := range h.secrets {
		sec = strings.ToLower(sec)
		switch {
		case sec == "":
		case len(sec) >= 32 && hexRun.MatchString(sec) && len(hexRun.FindString(sec)) == len(sec):
			if len(runs) > 0 && hexLeak(sec) {
				h.t.Errorf("a secret (%.6s…) appears in the logs", sec)
			}
		case strings.Contains(lower, sec):
			h.t.Errorf("a secret (%.6s…) appears in the logs", sec)
		}
	}
	for _, r := range h.fake.Requests() {
		if tok := strings.ToLower(r.DeviceToken); tok != "" && len(runs) > 0 && hexLeak(tok) {
			h.t.Errorf("a device token appears in the logs")
			break
		}
	}
}

// hexRun finds runs of 32 or more hex digits (tokens, keys).
var hexRun = regexp.MustCompile(`[0-9a-f]{32,}`)

// token makes a random 32-byte device token (registered as a secret).
func (h *harness) token() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	h.addSecret(tok)
	return tok
}

type answer struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (a answer) errField(name string) any {
	e, _ := a.Body["error"].(map[string]any)
	if e == nil {
		return nil
	}
	return e[name]
}

func (a answer) code() string {
	s, _ := a.errField("code").(string)
	return s
}

func (h *harness) post(path string, body any, headers ...string) answer {
	h.t.Helper()
	var data []byte
	switch b := body.(type) {
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		var err error
		if data, err = json.Marshal(b); err != nil {
			h.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(http.MethodPost, h.url+path, bytes.NewReader(data))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return h.do(req)
}

func (h *harness) get(path string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) answer {
	h.t.Helper()
	client := h.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	a := answer{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.Body); err != nil {
			h.t.Fatalf("answer is not JSON: %v: %s", err, raw)
		}
	}
	checkHints(h.t, a)
	return a
}

// checkHints holds every answer of every test to the error contract:
// each error object, alone or in a batch's results, has a non-empty hint.
func checkHints(t testing.TB, a answer) {
	t.Helper()
	check := func(v any) {
		e, _ := v.(map[string]any)["error"].(map[string]any)
		if e == nil {
			return
		}
		if h, _ := e["hint"].(string); strings.TrimSpace(h) == "" {
			t.Errorf("an error without a hint: %s", a.Raw)
		}
	}
	if a.Body == nil {
		return
	}
	check(map[string]any(a.Body))
	if rs, ok := a.Body["results"].([]any); ok {
		for _, r := range rs {
			if m, ok := r.(map[string]any); ok {
				check(m)
			}
		}
	}
}

// alert is a minimal alert notification to tok.
func alert(tok string) map[string]any {
	return map[string]any{"to": map[string]any{"apns": map[string]any{"token": tok}}, "title": "Hello", "body": "World"}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
