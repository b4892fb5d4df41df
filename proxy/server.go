// Package proxy is pushproxy's local HTTP API: it routes, decodes and
// validates requests, resolves credentials, dispatches to the platform
// senders, and writes normalised results and errors; it also serves health,
// readiness and metrics.
//
// The package is split by job: server.go builds the Service (the
// dispatcher: the state a request sees and the senders) and the Server
// around it; dispatch.go, webpush.go and fcm.go resolve the platform and
// credential and send; http.go is the HTTP layer (routes, handlers) and
// prologue.go the prologue shared by every notification route (auth,
// deadline, byte budget, body, slots); reload.go re-reads configuration
// and credentials into one new state; lifecycle.go listens, serves and
// shuts down; ready.go and metrics.go answer probes and scrapes.
package proxy

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy/apns"
	"github.com/pushproxy/pushproxy/proxy/fcm"
	"github.com/pushproxy/pushproxy/proxy/webpush"
	"github.com/pushproxy/pushproxy/translate"
)

// Limits of the local API.
const (
	// MaxRequestTimeout caps X-Request-Timeout.
	MaxRequestTimeout = 5 * time.Minute
	// MinRequestTimeout is the shortest X-Request-Timeout accepted: less
	// leaves no time to send anything, and is a caller's mistake.
	MinRequestTimeout = time.Millisecond
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

// state is what one request sees, whole: the configuration in force and
// the credentials it names. A reload builds and validates a new state
// completely and publishes it with one pointer swap, so no request ever
// sees the new configuration with the old credentials or the reverse.
type state struct {
	cfg   *Config
	creds *creds.Snapshot
}

// Service is the dispatcher: it holds the state (configuration and
// credentials, swapped whole on reload) and the platform senders, resolves
// each notification's platform and credential from one state, sends it,
// and accounts for it (metrics, one log line per failure). The HTTP
// server wraps one; the send command uses one alone (NewService).
type Service struct {
	st      atomic.Pointer[state] // replaced whole on reload
	boot    *Config               // the configuration the process started with
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	store   *creds.Store
	apns    *apns.Sender
	webpush *webpush.Sender
	fcm     *fcm.Sender
	m       *metrics
	caPEM   []byte // contents of upstream.ca_file in use

	// testHook, set only by this package's tests, runs before each send
	// (to make a request path panic).
	testHook atomic.Pointer[func(*translate.Notification)]
}

// Server is the local API: a Service behind HTTP, with the in-flight
// limits, the file watcher and the lifecycle.
type Server struct {
	*Service
	sem   chan struct{} // notification slots (max_in_flight)
	bytes *byteBudget   // request bytes in memory (max_body_bytes_in_flight)

	shuttingDown atomic.Bool
	handler      http.Handler

	reloadMu   sync.Mutex // serialises Reload
	watcher    *creds.Watcher
	configInfo atomic.Pointer[configStatus]
}

// configStatus is what /readyz says about the configuration file.
type configStatus struct {
	File            string     `json:"file,omitempty"`
	LoadedAt        *time.Time `json:"loaded_at,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	LastErrorAt     *time.Time `json:"last_error_at,omitempty"`
	RestartRequired []string   `json:"restart_required,omitempty"`
}

// state is the configuration and credentials in force: load it once per
// request and use only what it holds.
func (s *Service) state() *state { return s.st.Load() }

// NewService builds the dispatcher: it loads the credential files once (a
// missing or invalid file is not fatal: that credential answers
// credentials_missing until a reload finds it good) and makes the senders.
// Each FCM service account's first access token is fetched in the
// background right away, so a Service must be closed with Close (which
// stops those fetches and their renewals).
func NewService(cfg *Config, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{boot: cfg, opts: opts, log: opts.Logger, now: opts.Now, m: newMetrics()}
	roots := opts.RootCAs
	if roots == nil && cfg.Upstream.CAFile != "" {
		pem, pool, err := loadCAFile(cfg.Upstream.CAFile)
		if err != nil {
			return nil, err
		}
		roots, s.caPEM = pool, pem
	}
	fcmSender, err := fcm.New(fcm.Options{URL: cfg.Upstream.FCMURL, RootCAs: roots, Now: opts.Now, Logger: opts.Logger,
		OnAttempt: func(d time.Duration, status int) {
			s.m.upstream.WithLabelValues(translate.PlatformFCM).Observe(d.Seconds())
			s.m.retries.WithLabelValues(translate.PlatformFCM, outcomeClass(status)).Inc()
		},
		OnRest: func() { s.m.rests.WithLabelValues(translate.PlatformFCM).Inc() }})
	if err != nil {
		return nil, err
	}
	s.fcm = fcmSender
	s.store = creds.NewStore(cfg.CredSpec(), creds.Options{
		Now: opts.Now, Logger: opts.Logger, RootCAs: roots,
		OnSign:   func(kind string) { s.m.tokensSigned.WithLabelValues(kind).Inc() },
		OnReload: func(result string) { s.m.reloads.WithLabelValues(result).Inc() },
	})
	s.st.Store(&state{cfg: cfg, creds: s.store.Snapshot()})
	s.apns = apns.New(apns.Options{
		ProductionURL: cfg.Upstream.APNsProductionURL, DevelopmentURL: cfg.Upstream.APNsDevelopmentURL,
		RootCAs: roots, Now: opts.Now, Logger: opts.Logger,
		MaxConnsPerPool: cfg.Upstream.APNsMaxConnections, IdleConnTimeout: cfg.Upstream.APNsIdleTimeout,
		ReadIdleTimeout: cfg.Upstream.APNsPingInterval, PingTimeout: cfg.Upstream.APNsPingTimeout,
		OnAttempt: func(d time.Duration, status int) {
			s.m.upstream.WithLabelValues(translate.PlatformAPNs).Observe(d.Seconds())
			s.m.retries.WithLabelValues(translate.PlatformAPNs, outcomeClass(status)).Inc()
		},
		OnGoAway: func(reason string) { s.m.goaways.WithLabelValues(boundedReason(reason)).Inc() },
		OnRest:   func() { s.m.rests.WithLabelValues(translate.PlatformAPNs).Inc() },
	})
	wopts := webpush.Options{RootCAs: roots, Now: opts.Now, Logger: opts.Logger,
		OnAttempt: func(d time.Duration, status int) {
			s.m.upstream.WithLabelValues(translate.PlatformWebPush).Observe(d.Seconds())
			s.m.retries.WithLabelValues(translate.PlatformWebPush, outcomeClass(status)).Inc()
		},
		OnRest: func() { s.m.rests.WithLabelValues(translate.PlatformWebPush).Inc() }}
	if w := cfg.WebPush; w != nil {
		wopts.AllowEndpoints, wopts.AllowPrivateNetworks, wopts.PadToBuckets = w.AllowEndpoints, w.AllowPrivateNetworks, w.PadToBuckets
	}
	s.webpush = webpush.New(wopts)
	s.m.registerRuntime(func() *creds.Snapshot { return s.state().creds }, s.apns.Conns, s.apns.ClockSkew, s.webpush.ClockSkew, s.fcm.ClockSkew)
	return s, nil
}

// New builds a server around a new Service (see NewService): a server
// that is not run with Serve must be closed with Close.
func New(cfg *Config, opts Options) (*Server, error) {
	svc, err := NewService(cfg, opts)
	if err != nil {
		return nil, err
	}
	s := &Server{Service: svc, sem: make(chan struct{}, cfg.MaxInFlight), bytes: newByteBudget(cfg.MaxBodyBytesInFlight)}
	st := &configStatus{File: svc.opts.ConfigPath}
	if svc.opts.ConfigPath != "" {
		st.LoadedAt = timePtr(svc.now())
	}
	s.configInfo.Store(st)
	s.m.registerBudget(func() float64 { return float64(s.bytes.inUse()) })
	s.handler = s.routes()
	s.watcher = creds.NewWatcher(s.watchPaths(cfg), cfg.Reload.Debounce, cfg.Reload.PollInterval, s.Reload, svc.log)
	return s, nil
}

// Store returns the credential store.
func (s *Service) Store() *creds.Store { return s.store }

// TriggerReload asks for a reload on the watcher's goroutine (SIGHUP).
func (s *Server) TriggerReload(reason string) { s.watcher.Trigger(reason) }

// Handler returns the HTTP handler of the local API.
func (s *Server) Handler() http.Handler { return s.handler }

// Close closes the upstream connections of a service (or of a server that
// was not run with Serve: Serve closes them itself when it returns), and
// stops the FCM access-token renewals.
func (s *Service) Close() {
	s.apns.Close()
	s.webpush.Close()
	s.fcm.Close()
	s.store.Close()
}

// Send delivers one notification through the same path as POST
// /v1/notifications (without the HTTP layer and its limits): for the send
// command.
func (s *Service) Send(ctx context.Context, n *translate.Notification) (*translate.Result, *translate.Error) {
	return s.send(ctx, s.state(), n)
}
