// Package proxy is pushproxy's local HTTP API: it routes, decodes and
// validates requests, resolves credentials, dispatches to the platform
// senders, and writes normalised results and errors; it also serves health,
// readiness and metrics.
package proxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy/apns"
	"github.com/pushproxy/pushproxy/proxy/webpush"
	"github.com/pushproxy/pushproxy/translate"
)

// Limits of the local API.
const (
	// MaxRequestTimeout caps X-Request-Timeout.
	MaxRequestTimeout = 5 * time.Minute
	// batchWorkers bounds the entries of one batch sent at once.
	batchWorkers = 64
)

// Options are what a Server takes besides its configuration.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// RootCAs, if set, replaces the trust roots (system + upstream.ca_file)
	// for upstream connections.
	RootCAs *x509.CertPool
	// LogLevel, if set, is the level of Logger: a reload that edits
	// log.level sets it.
	LogLevel *slog.LevelVar
	// ConfigPath, if set, is the file the configuration came from: it is
	// watched and re-read (the settings that can change live are applied;
	// the others are reported as needing a restart).
	ConfigPath string
}

// Server is the local API.
type Server struct {
	cfg     atomic.Pointer[Config] // the configuration in force; replaced on reload
	boot    *Config                // the configuration the process started with
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	store   *creds.Store
	apns    *apns.Sender
	webpush *webpush.Sender
	m       *metrics
	sem     chan struct{}

	shuttingDown atomic.Bool
	handler      http.Handler

	reloadMu   sync.Mutex // serialises Reload
	watcher    *creds.Watcher
	configInfo atomic.Pointer[configStatus]
	caPEM      []byte // contents of upstream.ca_file in use
}

// configStatus is what /readyz says about the configuration file.
type configStatus struct {
	File            string     `json:"file,omitempty"`
	LoadedAt        *time.Time `json:"loaded_at,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	LastErrorAt     *time.Time `json:"last_error_at,omitempty"`
	RestartRequired []string   `json:"restart_required,omitempty"`
}

// conf is the configuration in force.
func (s *Server) conf() *Config { return s.cfg.Load() }

// New builds a server: it loads the credential files once (a missing or
// invalid file is not fatal: that credential answers credentials_missing
// until a reload finds it good).
func New(cfg *Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{boot: cfg, opts: opts, log: opts.Logger, now: opts.Now, m: newMetrics(), sem: make(chan struct{}, cfg.MaxInFlight)}
	s.cfg.Store(cfg)
	st := &configStatus{File: opts.ConfigPath}
	if opts.ConfigPath != "" {
		st.LoadedAt = timePtr(opts.Now())
	}
	s.configInfo.Store(st)
	roots := opts.RootCAs
	if roots == nil && cfg.Upstream.CAFile != "" {
		pem, pool, err := loadCAFile(cfg.Upstream.CAFile)
		if err != nil {
			return nil, err
		}
		roots, s.caPEM = pool, pem
	}
	s.store = creds.NewStore(cfg.CredSpec(), creds.Options{
		Now: opts.Now, Logger: opts.Logger,
		OnSign:   func(kind string) { s.m.tokensSigned.WithLabelValues(kind).Inc() },
		OnReload: func(result string) { s.m.reloads.WithLabelValues(result).Inc() },
	})
	s.apns = apns.New(apns.Options{
		ProductionURL: cfg.Upstream.APNsProductionURL, DevelopmentURL: cfg.Upstream.APNsDevelopmentURL,
		RootCAs: roots, Now: opts.Now, Logger: opts.Logger,
		MaxConnsPerPool: cfg.Upstream.APNsMaxConnections, IdleConnTimeout: cfg.Upstream.APNsIdleTimeout,
		ReadIdleTimeout: cfg.Upstream.APNsPingInterval, PingTimeout: cfg.Upstream.APNsPingTimeout,
		OnAttempt: func(d time.Duration, status int, reason string) {
			s.m.upstream.WithLabelValues(translate.PlatformAPNs).Observe(d.Seconds())
			s.m.retries.WithLabelValues(translate.PlatformAPNs, outcomeClass(status)).Inc()
		},
		OnGoAway: func(reason string) { s.m.goaways.WithLabelValues(boundedReason(reason)).Inc() },
	})
	wopts := webpush.Options{RootCAs: roots, Now: opts.Now, Logger: opts.Logger,
		OnAttempt: func(d time.Duration, status int) {
			s.m.upstream.WithLabelValues(translate.PlatformWebPush).Observe(d.Seconds())
			s.m.retries.WithLabelValues(translate.PlatformWebPush, outcomeClass(status)).Inc()
		}}
	if w := cfg.WebPush; w != nil {
		wopts.AllowEndpoints, wopts.AllowPrivateNetworks, wopts.PadToBuckets = w.AllowEndpoints, w.AllowPrivateNetworks, w.PadToBuckets
	}
	s.webpush = webpush.New(wopts)
	s.m.registerRuntime(s.store.Snapshot, s.apns.Conns, s.apns.ClockSkew, s.webpush.ClockSkew)
	s.handler = s.routes()
	s.watcher = creds.NewWatcher(s.watchPaths(cfg), cfg.Reload.Debounce, cfg.Reload.PollInterval, s.Reload, opts.Logger)
	return s, nil
}

// loadCAFile reads extra trusted roots, added to the system's.
func loadCAFile(path string) ([]byte, *x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("upstream.ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("upstream.ca_file %s: no PEM certificate found", path)
	}
	return pem, pool, nil
}

// watchPaths are the files whose directories are watched.
func (s *Server) watchPaths(cfg *Config) []string {
	paths := s.store.Paths()
	if cfg.Upstream.CAFile != "" {
		paths = append(paths, cfg.Upstream.CAFile)
	}
	if s.opts.ConfigPath != "" {
		paths = append(paths, s.opts.ConfigPath)
	}
	return paths
}

// Reload re-reads the configuration file (if any) and every credential
// file; it is called on file events (debounced), periodically and on
// SIGHUP. Nothing that fails to parse or validate replaces what works.
func (s *Server) Reload(reason string) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cfg, publish := s.conf(), func() {}
	if s.opts.ConfigPath != "" {
		cfg, publish = s.reloadConfig()
	}
	s.reloadCA(cfg)
	if s.store.Reload() {
		s.apns.Retain(s.store.Snapshot().APNs)
	}
	// The new configuration and its status are published only once the
	// credentials it names are loaded: a request never sees one without
	// the other.
	publish()
	s.watcher.SetPaths(s.watchPaths(cfg))
	s.log.Debug("reload done", "reason", reason)
}

// reloadConfig reads the configuration file and prepares a change:
// credentials, topics, limits and timeouts apply live; listen address,
// max_in_flight, upstream hosts, log format and shutdown_grace need a
// restart and are reported so. It hands the credential store the new file
// set and returns the configuration to use and the function that publishes
// it (and its status), to be called once the credentials are reloaded.
func (s *Server) reloadConfig() (*Config, func()) {
	cur := s.conf()
	st := *s.configInfo.Load()
	next, err := LoadConfig(s.opts.ConfigPath)
	if err != nil {
		if st.LastError != err.Error() {
			s.log.Error("configuration reload failed; keeping the configuration in force", "file", s.opts.ConfigPath, "error", err.Error())
			s.m.reloads.WithLabelValues("error").Inc()
		}
		st.LastError, st.LastErrorAt = err.Error(), timePtr(s.now())
		return cur, func() { s.configInfo.Store(&st) }
	}
	st.LastError, st.LastErrorAt = "", nil
	if sameConfig(cur, next) {
		return cur, func() { s.configInfo.Store(&st) }
	}
	restart := restartRequired(s.boot, next)
	if len(restart) > 0 {
		s.log.Warn("configuration changed settings that apply only after a restart; they keep their old values", "settings", strings.Join(restart, ", "))
	}
	// Settings that cannot change live keep the values the process runs with.
	next.Listen, next.MaxInFlight, next.ShutdownGrace = s.boot.Listen, s.boot.MaxInFlight, s.boot.ShutdownGrace
	next.Log.Format = s.boot.Log.Format
	next.Upstream.APNsProductionURL, next.Upstream.APNsDevelopmentURL = s.boot.Upstream.APNsProductionURL, s.boot.Upstream.APNsDevelopmentURL
	next.Upstream.APNsMaxConnections, next.Upstream.APNsIdleTimeout = s.boot.Upstream.APNsMaxConnections, s.boot.Upstream.APNsIdleTimeout
	next.Upstream.APNsPingInterval, next.Upstream.APNsPingTimeout = s.boot.Upstream.APNsPingInterval, s.boot.Upstream.APNsPingTimeout
	next.Reload = s.boot.Reload
	s.store.SetSpec(next.CredSpec())
	st.LoadedAt, st.RestartRequired = timePtr(s.now()), restart
	return next, func() {
		if s.opts.LogLevel != nil {
			_ = s.opts.LogLevel.UnmarshalText([]byte(next.Log.Level))
		}
		s.cfg.Store(next)
		s.configInfo.Store(&st)
		s.m.reloads.WithLabelValues("ok").Inc()
		s.log.Info("configuration reloaded", "file", s.opts.ConfigPath, "apns_credentials", len(next.APNs))
	}
}

func sameConfig(a, b *Config) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// restartRequired names the settings of next that differ from the ones
// the process started with and cannot change while it runs.
func restartRequired(boot, next *Config) []string {
	var out []string
	diff := func(name string, changed bool) {
		if changed {
			out = append(out, name)
		}
	}
	diff("listen", boot.Listen != next.Listen)
	diff("max_in_flight", boot.MaxInFlight != next.MaxInFlight)
	diff("shutdown_grace", boot.ShutdownGrace != next.ShutdownGrace)
	diff("log.format", boot.Log.Format != next.Log.Format)
	diff("upstream.apns_production_url", boot.Upstream.APNsProductionURL != next.Upstream.APNsProductionURL)
	diff("upstream.apns_development_url", boot.Upstream.APNsDevelopmentURL != next.Upstream.APNsDevelopmentURL)
	diff("upstream.apns_max_connections", boot.Upstream.APNsMaxConnections != next.Upstream.APNsMaxConnections)
	diff("upstream.apns_idle_timeout", boot.Upstream.APNsIdleTimeout != next.Upstream.APNsIdleTimeout)
	diff("upstream.apns_ping_interval", boot.Upstream.APNsPingInterval != next.Upstream.APNsPingInterval)
	diff("upstream.apns_ping_timeout", boot.Upstream.APNsPingTimeout != next.Upstream.APNsPingTimeout)
	diff("reload", boot.Reload != next.Reload)
	bw, nw := boot.WebPush, next.WebPush
	diff("webpush.allow_endpoints, webpush.allow_private_networks, webpush.pad_to_buckets",
		(bw == nil) != (nw == nil) || (bw != nil && nw != nil && (!slices.Equal(bw.AllowEndpoints, nw.AllowEndpoints) ||
			bw.AllowPrivateNetworks != nw.AllowPrivateNetworks || bw.PadToBuckets != nw.PadToBuckets)))
	return out
}

// reloadCA re-reads upstream.ca_file; a changed, valid file is trusted for
// new connections (existing ones drain); a bad one keeps the old roots.
func (s *Server) reloadCA(cfg *Config) {
	if s.opts.RootCAs != nil || cfg.Upstream.CAFile == "" {
		return
	}
	pem, pool, err := loadCAFile(cfg.Upstream.CAFile)
	if err != nil {
		s.log.Error("upstream.ca_file failed to load; keeping the roots in use", "file", cfg.Upstream.CAFile, "error", err.Error())
		return
	}
	if string(pem) == string(s.caPEM) {
		return
	}
	s.caPEM = pem
	s.apns.SetRootCAs(pool)
	s.webpush.SetRootCAs(pool)
	s.log.Info("upstream.ca_file reloaded", "file", cfg.Upstream.CAFile)
}

// Store returns the credential store.
func (s *Server) Store() *creds.Store { return s.store }

// TriggerReload asks for a reload on the watcher's goroutine (SIGHUP).
func (s *Server) TriggerReload(reason string) { s.watcher.Trigger(reason) }

// Handler returns the HTTP handler of the local API.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen opens the configured address: host:port, or unix:///path.
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		_ = os.Remove(path) // a stale socket from a previous run
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// Serve answers on ln until ctx ends, then fails /readyz at once, stops
// accepting, lets in-flight notifications finish within shutdown_grace,
// and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	s.watcher.Open() // watching before the first request is answered
	wg.Go(func() { s.watcher.Run(bg) })
	defer func() {
		stopBG()
		wg.Wait()
		s.apns.Close()
		s.webpush.Close()
	}()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("pushproxy listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	s.shuttingDown.Store(true)
	s.log.Info("shutting down", "grace", s.boot.ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.boot.ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	if err != nil {
		_ = hs.Close()
		return fmt.Errorf("shutdown grace of %s ran out with requests in flight: %w", s.boot.ShutdownGrace, err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/notifications", s.authed(s.handleSend))
	mux.HandleFunc("/v1/notifications/batch", s.authed(s.handleBatch))
	mux.HandleFunc("/v1/webpush/vapid-public-key", s.authed(s.handleVAPIDPublicKey))
	mux.HandleFunc("/healthz", s.handleHealth)
	mux.HandleFunc("/readyz", s.handleReady)
	mux.Handle("/metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e := translate.NewError(translate.CodeInvalidRequest, "no route "+r.Method+" "+r.URL.Path, "the API is POST /v1/notifications, POST /v1/notifications/batch, GET /v1/webpush/vapid-public-key, GET /healthz, GET /readyz, GET /metrics")
		writeJSON(w, http.StatusNotFound, errorBody{e})
	})
	return mux
}

type errorBody struct {
	Error *translate.Error `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *translate.Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status(), errorBody{e})
}

// authed checks the bearer token when auth_token_file is set (constant-time
// compare). Health, readiness and metrics stay open for probes.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.conf().AuthTokenFile != "" {
			want := s.store.Snapshot().AuthToken
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || len(want) == 0 || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
				e := translate.NewError(translate.CodeUnauthorized, "missing or wrong bearer token", "send Authorization: Bearer <contents of auth_token_file>")
				w.Header().Set("WWW-Authenticate", `Bearer realm="pushproxy"`)
				writeError(w, e)
				return
			}
		}
		h(w, r)
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// requestContext applies X-Request-Timeout (decimal seconds) or the
// configured default.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc, *translate.Error) {
	d := s.conf().RequestTimeout
	if v := r.Header.Get("X-Request-Timeout"); v != "" {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f <= 0 || f != f {
			return nil, nil, translate.Invalid("X-Request-Timeout", "must be a positive number of seconds, such as 2.5")
		}
		d = time.Duration(f * float64(time.Second))
		if d > MaxRequestTimeout || f > MaxRequestTimeout.Seconds() {
			d = MaxRequestTimeout
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *translate.Error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, translate.Invalid("", "method %s not allowed; use POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, translate.Invalid("Content-Type", "must be application/json, not %q", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, translate.NewError(translate.CodePayloadTooLarge, fmt.Sprintf("the request body is over %d bytes", limit), "send smaller requests, or split a batch")
		}
		return nil, translate.Invalid("", "reading the request body: %v", err)
	}
	return body, nil
}

func (s *Server) acquire() bool {
	select {
	case s.sem <- struct{}{}:
		s.m.inFlight.Inc()
		return true
	default:
		return false
	}
}

func (s *Server) release() {
	<-s.sem
	s.m.inFlight.Dec()
}

func overloaded() *translate.Error {
	e := translate.NewError(translate.CodeOverloaded, "pushproxy is at its max_in_flight limit", "retry after a moment; raise max_in_flight or run more replicas if this persists")
	e.RetryAfter = 1
	return e
}

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown.Load() {
		writeError(w, shuttingDown())
		return
	}
	if !s.acquire() {
		s.m.notifications.WithLabelValues("unknown", string(translate.CodeOverloaded)).Inc()
		writeError(w, overloaded())
		return
	}
	defer s.release()
	body, e := s.readBody(w, r, s.conf().MaxBodyBytes)
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel, e := s.requestContext(r)
	if e != nil {
		writeError(w, e)
		return
	}
	defer cancel()
	n, e := translate.DecodeNotification(body)
	if e != nil {
		s.account("unknown", nil, "", e)
		writeError(w, e)
		return
	}
	res, e := s.send(ctx, n)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func shuttingDown() *translate.Error {
	e := translate.NewError(translate.CodeOverloaded, "pushproxy is shutting down", "send to another replica, or retry once it has restarted")
	e.RetryAfter = 1
	return e
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	if s.shuttingDown.Load() {
		writeError(w, shuttingDown())
		return
	}
	cfg := s.conf()
	body, e := s.readBody(w, r, cfg.MaxBodyBytes*int64(min(cfg.MaxBatch, 16)))
	if e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel, e := s.requestContext(r)
	if e != nil {
		writeError(w, e)
		return
	}
	defer cancel()
	entries, e := translate.DecodeBatch(body)
	if e != nil {
		writeError(w, e)
		return
	}
	if len(entries) > cfg.MaxBatch {
		writeError(w, translate.Invalid("notifications", "has %d entries; the limit (max_batch) is %d", len(entries), cfg.MaxBatch))
		return
	}
	results := make([]any, len(entries))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(batchWorkers, len(entries)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(entries) {
					return
				}
				results[i] = s.batchEntry(ctx, i, entries[i])
			}
		})
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

func (s *Server) batchEntry(ctx context.Context, i int, raw json.RawMessage) any {
	if !s.acquire() {
		s.m.notifications.WithLabelValues("unknown", string(translate.CodeOverloaded)).Inc()
		return errorBody{overloaded()}
	}
	defer s.release()
	n, e := translate.DecodeNotification(raw)
	if e != nil {
		if e.Field != "" {
			e.Field = fmt.Sprintf("notifications[%d].%s", i, e.Field)
		}
		s.account("unknown", nil, "", e)
		return errorBody{e}
	}
	res, e := s.send(ctx, n)
	if e != nil {
		return errorBody{e}
	}
	return res
}

// Close closes the upstream connections of a server that was not run with
// Serve (Serve closes them itself when it returns).
func (s *Server) Close() {
	s.apns.Close()
	s.webpush.Close()
}

// Send delivers one notification through the same path as POST
// /v1/notifications (without the in-flight limit): for the send command.
func (s *Server) Send(ctx context.Context, n *translate.Notification) (*translate.Result, *translate.Error) {
	return s.send(ctx, n)
}

// send resolves the platform and credential and delivers one notification.
func (s *Server) send(ctx context.Context, n *translate.Notification) (*translate.Result, *translate.Error) {
	platform, e := n.Platform()
	if e != nil {
		s.account("unknown", n, "", e)
		return nil, e
	}
	var (
		res  *translate.Result
		cred string
	)
	switch platform {
	case translate.PlatformAPNs:
		var c *creds.APNsCredential
		res, c, e = s.sendAPNs(ctx, n)
		if c != nil {
			cred = c.Spec.Name
		}
	default:
		res, cred, e = s.sendWebPush(ctx, n)
	}
	if e != nil {
		e.Platform = platform
		if ctx.Err() != nil && e.Code == translate.CodeUpstreamUnavailable {
			e.Code, e.Retryable = translate.CodeUpstreamTimeout, true
		}
	}
	s.account(platform, n, cred, e)
	return res, e
}

func (s *Server) sendAPNs(ctx context.Context, n *translate.Notification) (*translate.Result, *creds.APNsCredential, *translate.Error) {
	to := n.To.APNs
	snap := s.store.Snapshot()
	var cred *creds.APNsCredential
	if to.Credential != "" {
		cred = snap.APNsByName(to.Credential)
		if cred == nil {
			return nil, nil, translate.Invalid("to.apns.credential", "no APNs credential named %q (configured: %s)", to.Credential, strings.Join(snap.Names(), ", "))
		}
	} else {
		cred = snap.APNsForTopic(to.Topic)
		if cred == nil {
			if len(snap.APNs) == 0 {
				return nil, nil, translate.NewError(translate.CodeCredentialsMissing, "no APNs credential is configured", "add an apns entry with key_file, team_id and topics to the configuration")
			}
			e := translate.NewError(translate.CodeCredentialsMissing, "no APNs credential lists topic "+strconv.Quote(to.Topic), "add the bundle ID to the topics of the credential whose team owns the app, or name the credential in to.apns.credential")
			return nil, nil, e
		}
	}
	if !cred.Usable() {
		e := translate.NewError(translate.CodeCredentialsMissing, "APNs credential "+strconv.Quote(cred.Spec.Name)+" has no usable key",
			"fix "+cred.Spec.KeyFile+": "+cred.LastError+"; /readyz shows the state")
		return nil, cred, e
	}
	topic := to.Topic
	if topic == "" && len(cred.Spec.Topics) > 0 {
		topic = cred.Spec.Topics[0]
	}
	env := cred.Spec.Environment
	switch to.Environment {
	case "":
	case apns.Production, apns.Development, apns.Auto:
		env = to.Environment
	default:
		return nil, cred, translate.Invalid("to.apns.environment", "must be production, development or auto, not %q", to.Environment)
	}
	req, e := translate.BuildAPNs(n, translate.APNsTarget{Topic: topic, Now: s.now(), NewID: newUUID()})
	if e != nil {
		return nil, cred, e
	}
	d := apns.Delivery{Credential: cred, Environment: env, Request: req}
	if n.DryRun {
		preview, e := s.apns.Preview(d)
		if e != nil {
			return nil, cred, e
		}
		env := env
		if env == apns.Auto {
			env = apns.Production
		}
		return &translate.Result{ID: req.ID, Platform: translate.PlatformAPNs, Credential: cred.Spec.Name, Environment: env, Request: preview}, cred, nil
	}
	res, e := s.apns.Send(ctx, d)
	return res, cred, e
}

// account counts a notification and logs a failure: code, upstream status
// and reason, credential name, and only a fingerprint of the recipient.
func (s *Server) account(platform string, n *translate.Notification, cred string, e *translate.Error) {
	code := "ok"
	if e != nil {
		code = string(e.Code)
	}
	s.m.notifications.WithLabelValues(platform, code).Inc()
	if e == nil {
		return
	}
	attrs := []any{"platform", platform, "code", code, "message", e.Message}
	if e.Upstream != nil {
		attrs = append(attrs, "upstream_status", e.Upstream.Status, "upstream_reason", e.Upstream.Reason)
	}
	if cred != "" {
		attrs = append(attrs, "credential", cred)
	}
	if n != nil {
		if n.To.APNs != nil && n.To.APNs.Token != "" {
			attrs = append(attrs, "recipient", translate.FingerprintString(strings.ToLower(n.To.APNs.Token)))
		} else if n.To.WebPush != nil && n.To.WebPush.Endpoint != "" {
			attrs = append(attrs, "recipient", translate.FingerprintString(n.To.WebPush.Endpoint))
		}
		if n.ID != "" {
			attrs = append(attrs, "id", n.ID)
		}
	}
	s.log.Warn("notification failed", attrs...)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return translate.UUIDv4(b)
}
