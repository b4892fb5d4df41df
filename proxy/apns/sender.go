// Package apns is pushproxy's APNs sender: long-lived HTTP/2 connections
// (golang.org/x/net/http2 over TLS ≥ 1.2), one pool per team and key, the
// provider token on every request, retries inside the caller's deadline,
// and the translation of every outcome into a normalised result or error.
package apns

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/translate"
)

// Environments.
const (
	Production  = "production"
	Development = "development"
	Auto        = "auto"
)

// Default hosts.
const (
	DefaultProductionURL  = "https://api.push.apple.com"
	DefaultDevelopmentURL = "https://api.sandbox.push.apple.com"
)

// Options configure a Sender.
type Options struct {
	ProductionURL  string         // "" → DefaultProductionURL
	DevelopmentURL string         // "" → DefaultDevelopmentURL
	RootCAs        *x509.CertPool // nil → the system's roots
	Now            func() time.Time
	Logger         *slog.Logger
	// ReadIdleTimeout: a connection with no frames read for this long is
	// health-checked with a PING; PingTimeout: no PONG by then closes it.
	ReadIdleTimeout time.Duration // 0 → 30s
	PingTimeout     time.Duration // 0 → 10s
	IdleConnTimeout time.Duration // 0 → 5m: idle connections are closed after this
	DialTimeout     time.Duration // 0 → 10s
	// MaxAttempts bounds the attempts per notification (retries included).
	MaxAttempts int // 0 → 4
	// OnAttempt, if set, is called after each upstream attempt with its
	// duration and the status (0 for a transport error).
	OnAttempt func(d time.Duration, status int, reason string)
	// OnGoAway, if set, is called with the reason of each GOAWAY that failed a request.
	OnGoAway func(reason string)
}

// Sender sends APNs requests. It is safe for concurrent use.
type Sender struct {
	opts Options

	mu     sync.Mutex
	pools  map[string]*http2.Transport
	closed bool
}

// New makes a Sender.
func New(opts Options) *Sender {
	if opts.ProductionURL == "" {
		opts.ProductionURL = DefaultProductionURL
	}
	if opts.DevelopmentURL == "" {
		opts.DevelopmentURL = DefaultDevelopmentURL
	}
	opts.ProductionURL = strings.TrimRight(opts.ProductionURL, "/")
	opts.DevelopmentURL = strings.TrimRight(opts.DevelopmentURL, "/")
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReadIdleTimeout == 0 {
		opts.ReadIdleTimeout = 30 * time.Second
	}
	if opts.PingTimeout == 0 {
		opts.PingTimeout = 10 * time.Second
	}
	if opts.IdleConnTimeout == 0 {
		opts.IdleConnTimeout = 5 * time.Minute
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 4
	}
	return &Sender{opts: opts, pools: map[string]*http2.Transport{}}
}

// Close closes every connection.
func (s *Sender) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for k, t := range s.pools {
		t.CloseIdleConnections()
		delete(s.pools, k)
	}
}

// BaseURL is the APNs host for an environment.
func (s *Sender) BaseURL(env string) string {
	if env == Development {
		return s.opts.DevelopmentURL
	}
	return s.opts.ProductionURL
}

// pool returns the connection pool of one team and key: never two teams or
// two keys on one connection (Apple: UnrelatedKeyIdInToken).
func (s *Sender) pool(c *creds.APNsCredential) *http2.Transport {
	k := c.Spec.TeamID + "/" + c.Spec.KeyID + "/" + c.Fingerprint
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.pools[k]; t != nil {
		return t
	}
	dialer := &net.Dialer{Timeout: s.opts.DialTimeout, KeepAlive: 30 * time.Second}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.opts.RootCAs, NextProtos: []string{"h2"}}
	t := &http2.Transport{
		TLSClientConfig: tlsConf,
		// A fresh DNS look-up for every new connection (Apple's advice):
		// the dialer resolves the name each time it is called.
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			td := &tls.Dialer{NetDialer: dialer, Config: cfg}
			return td.DialContext(ctx, network, addr)
		},
		ReadIdleTimeout: s.opts.ReadIdleTimeout,
		PingTimeout:     s.opts.PingTimeout,
		IdleConnTimeout: s.opts.IdleConnTimeout,
	}
	if !s.closed {
		s.pools[k] = t
	}
	return t
}

// Delivery is one notification to send.
type Delivery struct {
	Credential  *creds.APNsCredential
	Environment string // production | development | auto
	Request     *translate.APNsRequest
}

// Send delivers one notification, retrying what may be retried inside
// ctx's deadline, and returns the normalised result or error.
func (s *Sender) Send(ctx context.Context, d Delivery) (*translate.Result, *translate.Error) {
	c := d.Credential
	if !c.Usable() {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "APNs credential "+c.Spec.Name+" has no usable key", "check "+c.Spec.KeyFile+": "+c.LastError)
	}
	env := d.Environment
	auto := env == Auto
	if auto || env == "" {
		env = Production
	}
	token, err := c.Tokens.Token()
	if err != nil {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "cannot sign an APNs provider token", err.Error())
	}
	tr := s.pool(c)
	refreshed, switched := false, false
	var last *translate.Error
	for attempt := 1; ; attempt++ {
		reply, terr := s.roundTrip(ctx, tr, env, d.Request, token)
		if terr != nil {
			last = terr
		} else if reply.Status == http.StatusOK {
			id := reply.APNsID
			if id == "" {
				id = d.Request.ID
			}
			return &translate.Result{
				ID: d.Request.ID, Platform: translate.PlatformAPNs,
				Upstream:   &translate.Upstream{Status: reply.Status, APNsID: id},
				Credential: c.Spec.Name, Environment: env, Attempts: attempt,
			}, nil
		} else {
			last = translate.FromAPNs(*reply, s.opts.Now())
			switch last.Upstream.Reason {
			case "ExpiredProviderToken":
				if !refreshed {
					refreshed = true
					if nt, rerr := c.Tokens.Refresh(token); rerr == nil {
						token = nt
						continue
					} else {
						last.Hint += " (" + rerr.Error() + ")"
					}
				}
			case "BadDeviceToken":
				if auto && !switched {
					switched = true
					env = other(env)
					continue
				}
				if switched {
					last.Hint = "the token was refused by both the production and the sandbox host: it is not a valid token for this app; delete it"
				}
			case "TooManyProviderTokenUpdates":
				s.opts.Logger.Error("APNs answered TooManyProviderTokenUpdates: another process is signing tokens for this key with a different iat",
					"credential", c.Spec.Name, "key_id", c.Spec.KeyID)
			}
		}
		last.Platform = translate.PlatformAPNs
		if !retryHere(last) || attempt >= s.opts.MaxAttempts {
			return nil, finish(last, attempt)
		}
		wait := backoff(attempt, last.RetryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, finish(last, attempt)
		}
		select {
		case <-ctx.Done():
			return nil, finish(last, attempt)
		case <-time.After(wait):
		}
	}
}

// retryHere says whether the sender itself retries an error: what is
// retryable, except TooManyProviderTokenUpdates (the connection stays
// unusable for a while; an immediate retry only prolongs it).
func retryHere(e *translate.Error) bool {
	if e.Upstream != nil && e.Upstream.Reason == "TooManyProviderTokenUpdates" {
		return false
	}
	return e.Retryable
}

func finish(e *translate.Error, attempts int) *translate.Error {
	if attempts > 1 {
		e.Message += fmt.Sprintf(" (after %d attempts)", attempts)
	}
	return e
}

func other(env string) string {
	if env == Development {
		return Production
	}
	return Development
}

// backoff is exponential with full jitter from 50 ms, capped at 2 s, or
// the server's Retry-After.
func backoff(attempt, retryAfter int) time.Duration {
	if retryAfter > 0 {
		return time.Duration(retryAfter) * time.Second
	}
	ceil := 50 * time.Millisecond << min(attempt-1, 6)
	ceil = min(ceil, 2*time.Second)
	return ceil/2 + rand.N(ceil/2+1)
}

// roundTrip makes one attempt. A transport failure is returned as a
// normalised error: retryable when the request surely did not reach APNs,
// not retryable (and saying it may have been delivered) otherwise.
func (s *Sender) roundTrip(ctx context.Context, tr *http2.Transport, env string, r *translate.APNsRequest, token string) (*translate.APNsReply, *translate.Error) {
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, s.BaseURL(env)+r.Path(), bytes.NewReader(r.Payload))
	if err != nil {
		return nil, translate.NewError(translate.CodeInvalidRequest, "cannot build the APNs request", err.Error())
	}
	for _, h := range r.Headers() {
		req.Header.Set(h[0], h[1])
	}
	req.Header.Set("authorization", "bearer "+token)
	req.Header.Set("content-type", "application/json")
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		if s.opts.OnAttempt != nil {
			s.opts.OnAttempt(time.Since(start), 0, "")
		}
		return nil, s.transportError(ctx, err, wrote.Load())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil && resp.StatusCode != http.StatusOK {
		return nil, s.transportError(ctx, err, true)
	}
	reply := &translate.APNsReply{
		Status: resp.StatusCode, APNsID: resp.Header.Get("apns-id"), Body: body,
		RetryAfter: resp.Header.Get("retry-after"),
	}
	if s.opts.OnAttempt != nil {
		reason, _ := translate.ParseAPNsBody(body)
		s.opts.OnAttempt(time.Since(start), resp.StatusCode, reason)
	}
	return reply, nil
}

func (s *Sender) transportError(ctx context.Context, err error, wrote bool) *translate.Error {
	var ga http2.GoAwayError
	reason := ""
	if errors.As(err, &ga) {
		var b struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal([]byte(ga.DebugData), &b)
		reason = b.Reason
		if reason == "" {
			reason = "GOAWAY " + ga.ErrCode.String()
		}
		if s.opts.OnGoAway != nil {
			s.opts.OnGoAway(reason)
		}
		s.opts.Logger.Warn("APNs sent GOAWAY", "reason", reason, "last_stream_id", ga.LastStreamID)
	}
	if ctx.Err() != nil {
		e := translate.NewError(translate.CodeUpstreamTimeout, "APNs did not answer within the deadline", "raise X-Request-Timeout or request_timeout if APNs is slow from here")
		if wrote {
			e.Hint = "the request reached APNs before the deadline, so it may have been delivered; raise X-Request-Timeout if this repeats"
		}
		return e
	}
	e := translate.NewError(translate.CodeUpstreamUnavailable, "the connection to APNs failed: "+scrub(err.Error()), "check network access to the APNs host and upstream.ca_file")
	if reason != "" {
		e.Upstream = &translate.Upstream{Reason: reason}
	}
	if wrote {
		// APNs may have processed it: re-sending could deliver it twice.
		e.Retryable = false
		e.Hint = "the connection failed after the request was sent, so it may have been delivered; the caller decides whether to send it again"
	}
	return e
}

// scrub removes the request URL (which holds the device token) from a
// transport error message.
func scrub(msg string) string {
	if i := strings.Index(msg, "/3/device/"); i >= 0 {
		j := i + len("/3/device/")
		k := j
		for k < len(msg) && msg[k] != '"' && msg[k] != ' ' && msg[k] != ':' {
			k++
		}
		msg = msg[:j] + "…" + msg[k:]
	}
	return msg
}

// Preview builds the request that Send would make, for dry runs: URL,
// headers and payload, the provider token shown only decoded.
func (s *Sender) Preview(d Delivery) (*translate.DryRunRequest, *translate.Error) {
	c := d.Credential
	if !c.Usable() {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "APNs credential "+c.Spec.Name+" has no usable key", "check "+c.Spec.KeyFile)
	}
	env := d.Environment
	if env == Auto || env == "" {
		env = Production
	}
	token, err := c.Tokens.Token()
	if err != nil {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "cannot sign an APNs provider token", err.Error())
	}
	h, claims, err := creds.DecodeToken(token)
	if err != nil {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "cannot decode the provider token", err.Error())
	}
	headers := map[string]string{"authorization": "bearer <provider token: see token_header and token_claims>"}
	for _, kv := range d.Request.Headers() {
		headers[kv[0]] = kv[1]
	}
	return &translate.DryRunRequest{
		Method: http.MethodPost, URL: s.BaseURL(env) + "/3/device/" + d.Request.DeviceToken,
		Headers: headers, TokenHeader: h, TokenClaims: claims,
		Payload: json.RawMessage(d.Request.Payload), PayloadSize: len(d.Request.Payload),
	}, nil
}
