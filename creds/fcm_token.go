package creds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushproxy/pushproxy/internal/resend"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// The access tokens of one service account: fetched with x/oauth2, cached, renewed off the hot path.

// FCMTokenOptions tune an FCMTokenSource.
type FCMTokenOptions struct {
	// TokenURL replaces the file's token_uri (upstream.fcm_token_url); it
	// must be https.
	TokenURL string
	// RootCAs are the roots trusted for the token endpoint; nil means the
	// system's. Ignored when HTTPClient is set.
	RootCAs *x509.CertPool
	// HTTPClient, if set, is the client used for the token endpoint.
	HTTPClient *http.Client
	// RefreshBefore is how long before expiry a token is renewed in the
	// background; 0 means FCMRefreshBefore.
	RefreshBefore time.Duration
	// FetchTimeout bounds one token request; 0 means 30 s.
	FetchTimeout time.Duration
	// FailureCooldown is how long after a failed token request no new one
	// is made (callers without a valid cached token get the same error at
	// once), so that a deleted key or a failing endpoint under load does
	// not turn every notification into a token request. 0 means 10 s after
	// a refusal (an OAuth error such as invalid_grant) and 1 s after any
	// other failure; < 0 means none.
	FailureCooldown time.Duration
	// OnFetch, if set, is called after each token request with its error
	// (nil on success): for metrics.
	OnFetch func(err error)
	Logger  *slog.Logger
}

// FCMToken is an access token and its expiry.
type FCMToken struct {
	AccessToken string
	Expiry      time.Time
}

// FCMTokenInfo is what /readyz may show of a token source: never the key or
// the token.
type FCMTokenInfo struct {
	ProjectID      string
	ClientEmail    string
	PrivateKeyID   string
	KeyFingerprint string
	TokenURL       string
	TokenExpiry    time.Time // zero while no token was fetched
	Fetches        int64
	LastError      string // of the latest token request; "" when it succeeded
	LastErrorAt    time.Time
}

// FCMTokenSource holds the OAuth 2.0 access tokens of one service account:
// the JWT-bearer grant (RFC 7523) through golang.org/x/oauth2/jwt with scope
// FCMScope, at the file's token_uri or FCMTokenOptions.TokenURL. A token is
// reused until RefreshBefore (5 minutes) before its expiry; from then on the
// next Token call starts one background fetch and keeps answering with the
// cached token, and a timer starts that fetch too when there are no calls,
// so requests never wait for a token except the very first (or after every
// fetch failed until expiry). A failed background fetch is retried with
// back-off while the cached token lasts; after a failure no new fetch is
// made for FailureCooldown (callers get the same error). Safe for
// concurrent use; Close stops the timer and cancels any fetch in flight.
type FCMTokenSource struct {
	sa      *ServiceAccount
	cfg     *jwt.Config
	client  *http.Client
	pacer   *resend.Pacer // bounds re-dials of a token endpoint that refuses every connection
	opts    FCMTokenOptions
	ctx     context.Context // ends at Close: bounds every fetch
	cancel  context.CancelFunc
	fetches atomic.Int64
	cur     atomic.Pointer[FCMToken] // read without the lock on the hot path

	mu        sync.Mutex
	inflight  *fetchCall // the fetch in flight; nil when none
	timer     *time.Timer
	failures  int // fetches failed in a row
	closed    bool
	lastErr   string
	lastErrAt time.Time
	failErr   error     // the latest fetch's error, while in its cooldown
	retryAt   time.Time // no new fetch before this, after a failure
	wg        sync.WaitGroup
}

// fetchCall is one token request: done is closed when it ends, after err
// is set.
type fetchCall struct {
	done chan struct{}
	err  error
}

// NewFCMTokenSource makes the token source of a parsed service account. It
// fetches nothing until the first Token, Refresh or Prefetch call.
func NewFCMTokenSource(sa *ServiceAccount, opts FCMTokenOptions) (*FCMTokenSource, error) {
	if sa == nil || sa.Key == nil {
		return nil, errors.New("FCM token source: no service account")
	}
	tokenURL := sa.TokenURI
	if opts.TokenURL != "" {
		if err := checkTokenURL("upstream.fcm_token_url", opts.TokenURL); err != nil {
			return nil, err
		}
		tokenURL = opts.TokenURL
	}
	if opts.RefreshBefore <= 0 {
		opts.RefreshBefore = FCMRefreshBefore
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	client := opts.HTTPClient
	pacer := resend.NewPacer(resend.Options{Logger: opts.Logger, Server: "FCM token endpoint"})
	if client == nil {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		client = &http.Client{
			Transport: &http.Transport{
				Proxy: nil,
				// A token endpoint that drains every connection would
				// otherwise be re-dialled by net/http as fast as
				// handshakes go until FetchTimeout (see internal/resend).
				DialContext:         resend.Dial(dialer.DialContext),
				TLSClientConfig:     &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
				ForceAttemptHTTP2:   true,
				TLSHandshakeTimeout: 10 * time.Second,
				IdleConnTimeout:     90 * time.Second,
			},
			// The token endpoint never redirects; following one would send
			// the assertion elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &FCMTokenSource{
		sa: sa,
		cfg: &jwt.Config{
			Email: sa.ClientEmail, PrivateKey: sa.keyPEM, PrivateKeyID: sa.PrivateKeyID,
			Scopes: []string{FCMScope}, TokenURL: tokenURL,
		},
		client: client, pacer: pacer, opts: opts, ctx: ctx, cancel: cancel,
	}, nil
}

// Account is the service account the source signs for.
func (s *FCMTokenSource) Account() *ServiceAccount { return s.sa }

// TokenURL is the token endpoint the source asks.
func (s *FCMTokenSource) TokenURL() string { return s.cfg.TokenURL }

// Info is what readiness may show.
func (s *FCMTokenSource) Info() FCMTokenInfo {
	in := FCMTokenInfo{
		ProjectID: s.sa.ProjectID, ClientEmail: s.sa.ClientEmail, PrivateKeyID: s.sa.PrivateKeyID,
		KeyFingerprint: s.sa.Fingerprint, TokenURL: s.cfg.TokenURL, Fetches: s.fetches.Load(),
	}
	if t := s.cur.Load(); t != nil {
		in.TokenExpiry = t.Expiry
	}
	s.mu.Lock()
	in.LastError, in.LastErrorAt = s.lastErr, s.lastErrAt
	s.mu.Unlock()
	return in
}

// Token returns a valid access token: the cached one while it is valid
// (starting a background renewal once it is within RefreshBefore of
// expiry), else the result of a fetch, waited for inside ctx (concurrent
// callers share one fetch).
func (s *FCMTokenSource) Token(ctx context.Context) (FCMToken, error) {
	now := time.Now()
	if t := s.cur.Load(); t != nil && now.Before(t.Expiry) {
		if t.Expiry.Sub(now) <= s.opts.RefreshBefore {
			s.mu.Lock()
			if s.inflight == nil && !now.Before(s.retryAt) {
				s.startFetchLocked()
			}
			s.mu.Unlock()
		}
		return *t, nil
	}
	return s.wait(ctx, "")
}

// Prefetch starts fetching a token in the background when none is cached
// and none is being fetched (and no failure's cooldown runs), without
// waiting: the credential store calls it when a service account loads, so
// that the first notification finds a token. Close stops the fetch.
func (s *FCMTokenSource) Prefetch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.cur.Load(); t != nil && time.Now().Before(t.Expiry) {
		return
	}
	if s.closed || s.inflight != nil || time.Now().Before(s.retryAt) {
		return
	}
	s.startFetchLocked()
}

// Refresh returns a token other than refused (FCM answered 401 to it): a
// newer one if another caller already renewed it, else a new fetch waited
// for inside ctx.
func (s *FCMTokenSource) Refresh(ctx context.Context, refused string) (FCMToken, error) {
	return s.wait(ctx, refused)
}

// wait fetches (or joins the fetch in flight) until there is a valid token
// that is not refused, inside ctx.
func (s *FCMTokenSource) wait(ctx context.Context, refused string) (FCMToken, error) {
	for range 2 {
		s.mu.Lock()
		if t := s.cur.Load(); t != nil && time.Now().Before(t.Expiry) && t.AccessToken != refused && refused != "" {
			s.mu.Unlock()
			return *t, nil
		}
		if refused == "" {
			if t := s.cur.Load(); t != nil && time.Now().Before(t.Expiry) {
				s.mu.Unlock()
				return *t, nil
			}
		}
		// A retired source starts no fetch, but a caller that reaches it
		// while its last fetch runs (it loaded the snapshot before a key
		// swap) waits for that fetch like the callers before it.
		if s.closed && s.inflight == nil {
			s.mu.Unlock()
			return FCMToken{}, errors.New("FCM token source is closed (its service account was replaced or removed)")
		}
		if s.inflight == nil && s.failErr != nil && time.Now().Before(s.retryAt) {
			err := s.failErr
			s.mu.Unlock()
			return FCMToken{}, err
		}
		call := s.startFetchLocked()
		s.mu.Unlock()
		select {
		case <-call.done:
		case <-ctx.Done():
			return FCMToken{}, fmt.Errorf("waiting for an FCM access token: %w", ctx.Err())
		}
		if call.err != nil {
			return FCMToken{}, call.err
		}
		if t := s.cur.Load(); t != nil && time.Now().Before(t.Expiry) && t.AccessToken != refused {
			return *t, nil
		}
	}
	return FCMToken{}, errors.New("the token endpoint answered the refused access token again")
}

// startFetchLocked starts a fetch unless one is in flight, and returns
// it. s.mu is held.
func (s *FCMTokenSource) startFetchLocked() *fetchCall {
	if s.inflight != nil {
		return s.inflight
	}
	call := &fetchCall{done: make(chan struct{})}
	if s.closed {
		call.err = errors.New("FCM token source is closed")
		close(call.done)
		return call
	}
	s.inflight = call
	s.wg.Add(1)
	go s.fetch(call)
	return call
}

// fetch asks the token endpoint for a token, publishes it and schedules the
// next renewal.
func (s *FCMTokenSource) fetch(call *fetchCall) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.FetchTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, withContext(ctx, s.client, s.pacer))
	s.fetches.Add(1)
	tok, err := s.cfg.TokenSource(ctx).Token()
	if err == nil && (tok.AccessToken == "" || tok.Expiry.IsZero()) {
		err = errors.New("the token endpoint answered without an access token or expires_in")
	}
	err = tokenError(err)
	if s.opts.OnFetch != nil {
		s.opts.OnFetch(err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = nil
	call.err = err
	defer close(call.done)
	if err != nil {
		s.lastErr, s.lastErrAt = err.Error(), time.Now()
		s.failures++
		s.failErr, s.retryAt = err, s.lastErrAt.Add(s.cooldown(err))
		s.opts.Logger.Warn("FCM access token request failed", "client_email", s.sa.ClientEmail,
			"private_key_id", s.sa.PrivateKeyID, "key", s.sa.Fingerprint, "error", err.Error(), "failures", s.failures)
		// While the cached token lasts, try again with back-off.
		if t := s.cur.Load(); t != nil && !s.closed {
			wait := min(time.Duration(5<<min(s.failures-1, 5))*time.Second, time.Minute)
			if left := time.Until(t.Expiry); left > 0 {
				s.scheduleLocked(min(wait, left/2))
			}
		}
		return
	}
	s.failures, s.lastErr, s.lastErrAt, s.failErr, s.retryAt = 0, "", time.Time{}, nil, time.Time{}
	s.cur.Store(&FCMToken{AccessToken: tok.AccessToken, Expiry: tok.Expiry})
	s.opts.Logger.Debug("FCM access token fetched", "client_email", s.sa.ClientEmail, "key", s.sa.Fingerprint,
		"expiry", tok.Expiry.UTC().Format(time.RFC3339))
	if !s.closed {
		s.scheduleLocked(time.Until(tok.Expiry) - s.opts.RefreshBefore)
	}
}

// cooldown is how long no new fetch is made after one failed with err.
func (s *FCMTokenSource) cooldown(err error) time.Duration {
	switch c := s.opts.FailureCooldown; {
	case c < 0:
		return 0
	case c > 0:
		return c
	}
	var te *FCMTokenError
	if errors.As(err, &te) && te.Code != "" && te.Status >= 400 && te.Status < 500 {
		return 10 * time.Second
	}
	return time.Second
}

// scheduleLocked arms the renewal timer to start a background fetch after
// d. s.mu is held.
func (s *FCMTokenSource) scheduleLocked(d time.Duration) {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(max(d, 0), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.closed {
			s.startFetchLocked()
		}
	})
}

// Close stops the renewal timer, cancels any fetch in flight (its waiters
// get the cancellation) and waits for it to end; Token and Refresh fail
// afterwards unless a valid token is cached.
func (s *FCMTokenSource) Close() {
	s.stop()
	s.wg.Wait()
}

// retire closes the source to new fetches without ending the one in flight:
// from its return no fetch starts (Token, Refresh and Prefetch start none,
// the renewal timer is stopped and fires no more), but a fetch in flight
// runs on, bounded by FetchTimeout (the request carries its context, see
// withContext), and the callers waiting for it get its result. The
// credential store retires the token sources a reload replaces: the
// notifications that hold the previous snapshot and wait for a token get it
// instead of a cancellation. drain waits for that fetch; stop or Close
// cancels it.
func (s *FCMTokenSource) retire() {
	s.mu.Lock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
}

// drain waits for the fetch in flight, if any, once the source is retired
// (or stopped): none starts afterwards.
func (s *FCMTokenSource) drain() { s.wg.Wait() }

// stop is Close without the wait: retire, and the fetch in flight, if any,
// is cancelled, its request with it (the request carries the fetch's
// context, see withContext), so that it ends at once; Close waits for it.
func (s *FCMTokenSource) stop() {
	s.retire()
	s.cancel()
}
