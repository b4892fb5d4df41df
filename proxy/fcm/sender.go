// Package fcm is pushproxy's FCM HTTP v1 sender (Android): it posts a
// translated message ({"message": {…}}, see translate.BuildFCM) to
// {fcm_url}/v1/projects/{project}/messages:send with the service account's
// OAuth 2.0 access token (creds.FCMTokenSource), over one shared HTTP/2
// client whose connections are reused, and turns every outcome into a
// normalised result or error.
//
// Retries: the sender carries out each answer's retry policy
// (translate.ClassifyFCM): RetryBackoff (429 QUOTA_EXCEEDED, 500 INTERNAL,
// 503 UNAVAILABLE, other 5xx) sends again after exponential back-off with
// jitter, or after Retry-After when FCM gives one, while attempts remain and
// the caller's deadline allows; RetryFreshToken (HTTP 401 without an
// FcmError detail: the access token was refused) fetches one new token and
// sends once more; RetryNone answers. A failure to connect is retried like
// RetryBackoff; a failure after the request may have been sent is answered
// (the caller decides whether to send again). The error's Retryable and
// Action are what the caller should do with the final answer, not what the
// sender did.
//
// Secrets: the registration token, the access token and the service
// account's key never appear in a log line, a message or a dry run; the
// tokens are shown as fingerprints (the first 8 hex digits of their
// SHA-256). Each failed notification is logged once, at its final answer,
// at debug level (the server logs failures at warn).
package fcm

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
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pushproxy/pushproxy/internal/resend"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/translate"
)

// DefaultURL is FCM's API origin (upstream.fcm_url's default).
const DefaultURL = "https://fcm.googleapis.com"

// Options configure a Sender.
type Options struct {
	// URL is the FCM API origin (upstream.fcm_url); "" means DefaultURL. It
	// must be https with no path.
	URL string
	// RootCAs are the roots trusted for FCM; nil means the system's.
	RootCAs *x509.CertPool
	Now     func() time.Time
	Logger  *slog.Logger
	// OnAttempt, if set, is called after each upstream attempt with its
	// duration and the status (0 for a transport error).
	OnAttempt func(d time.Duration, status int)
	// OnRest, if set, is called when the sender starts leaving a host
	// alone that closed or refused every new connection unprocessed.
	OnRest func()
	// MaxAttempts bounds the attempts for one notification (back-off
	// retries included; the one retry with a fresh token is extra).
	MaxAttempts int // 0 → 3
	// DialTimeout bounds a TCP connect.
	DialTimeout time.Duration // 0 → 10s
}

// Delivery is one translated notification and the credential to send it
// with.
type Delivery struct {
	Request *translate.FCMRequest
	// Credential is the FCM credential's name (fcm[].name), for the answer.
	Credential string
	// Tokens is the credential's token source; its service account names
	// the project.
	Tokens *creds.FCMTokenSource
	// DryRun: build and fetch the access token, send nothing; the Result
	// carries the request (see Preview).
	DryRun bool
}

// Sender sends FCM messages. It is safe for concurrent use.
type Sender struct {
	opts   Options
	base   string
	client atomic.Pointer[http.Client] // replaced when the trusted roots change
	skew   creds.Skew                  // this machine's clock against FCM's
	// pacer paces and bounds new connections for net/http's own re-sends
	// of a request the server did not process (see internal/resend).
	pacer *resend.Pacer
}

// New makes a Sender.
func New(opts Options) (*Sender, error) {
	if opts.URL == "" {
		opts.URL = DefaultURL
	}
	u, err := url.Parse(opts.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("upstream.fcm_url %q must be an https origin without path, such as %s", opts.URL, DefaultURL)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	s := &Sender{opts: opts, base: "https://" + u.Host,
		pacer: resend.NewPacer(resend.Options{Logger: opts.Logger, Server: "FCM", OnRest: opts.OnRest})}
	s.client.Store(s.newClient(opts.RootCAs))
	return s, nil
}

// newClient is the shared client: HTTP/2 when FCM offers it (it does),
// connections kept and reused, no proxy from the environment, no
// redirects.
func (s *Sender) newClient(roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           resend.Dial((&net.Dialer{Timeout: s.opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext),
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		// HTTP/2 multiplexes; without a bound a cold start dials one
		// connection per waiting notification and keeps one.
		MaxConnsPerHost: 16,
		HTTP2:           &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// SetRootCAs changes the roots trusted for new connections (the CA file
// changed); idle connections of the old client close, busy ones finish.
func (s *Sender) SetRootCAs(roots *x509.CertPool) {
	old := s.client.Swap(s.newClient(roots))
	old.CloseIdleConnections()
}

// Close closes idle connections.
func (s *Sender) Close() { s.client.Load().CloseIdleConnections() }

// ClockSkew is this machine's clock minus FCM's, from its Date header, and
// whether one was seen.
func (s *Sender) ClockSkew() (time.Duration, bool) { return s.skew.Get() }

// URL is where a message for project is posted.
func (s *Sender) URL(project string) string {
	return s.base + "/v1/projects/" + url.PathEscape(project) + "/messages:send"
}

func (s *Sender) check(d Delivery) *translate.Error {
	if d.Request == nil {
		return translate.Invalid("to.fcm", "an FCM delivery needs a translated message")
	}
	if d.Tokens == nil {
		e := translate.NewError(translate.CodeCredentialsMissing, "no FCM service account is configured or loaded",
			"set fcm[].service_account_file to the service-account key of the Firebase project; see /readyz")
		e.Platform = translate.PlatformFCM
		return e
	}
	return nil
}

// Send delivers one message, carrying out each answer's retry policy inside
// ctx's deadline, and returns the normalised result or error.
func (s *Sender) Send(ctx context.Context, d Delivery) (*translate.Result, *translate.Error) {
	if e := s.check(d); e != nil {
		return nil, e
	}
	if d.DryRun {
		p, e := s.Preview(ctx, d)
		if e != nil {
			return nil, e
		}
		return &translate.Result{ID: d.Request.ID, Platform: translate.PlatformFCM, Credential: d.Credential, Request: p}, nil
	}
	sa := d.Tokens.Account()
	attempts, refreshed := 0, false
	var tok creds.FCMToken
	for try := 1; ; try++ {
		var (
			name   string
			status int
			e      *translate.Error
			policy translate.RetryPolicy
		)
		if tok.AccessToken == "" {
			var err error
			tok, err = d.Tokens.Token(ctx)
			if err != nil {
				// Not retried here: the token source answers the same
				// error until its failure cooldown ends, and renews on its
				// own; the caller is told whether to retry.
				e, _ = s.tokenError(ctx, err, d.Tokens)
				return nil, s.fail(d, e, attempts)
			}
		}
		if e == nil {
			name, status, e, policy = s.post(ctx, d, sa.ProjectID, tok.AccessToken)
			if translate.ReachedUpstream(status, e) {
				attempts++
			}
			if e == nil {
				return &translate.Result{
					ID: d.Request.ID, Platform: translate.PlatformFCM, Credential: d.Credential, Attempts: attempts,
					Upstream: &translate.Upstream{Status: status, MessageID: name},
				}, nil
			}
		}
		switch {
		case policy == translate.RetryFreshToken && !refreshed:
			refreshed = true
			s.opts.Logger.Debug("FCM refused the access token; fetching a new one", "credential", d.Credential,
				"access_token", translate.FingerprintString(tok.AccessToken))
			fresh, err := d.Tokens.Refresh(ctx, tok.AccessToken)
			if err != nil {
				e, _ = s.tokenError(ctx, err, d.Tokens)
				return nil, s.fail(d, e, attempts)
			}
			tok = fresh
			try-- // the retry with a fresh token is not a back-off attempt
			continue
		case policy.BacksOff() && try < s.opts.MaxAttempts:
			wait := backoff(try, e.RetryAfter)
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				return nil, s.fail(d, e, attempts)
			}
			s.opts.Logger.Debug("FCM retry", "credential", d.Credential, "status", status, "code", e.Code, "wait", wait,
				"token", translate.FingerprintString(d.Request.Token))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, s.fail(d, e, attempts)
			case <-t.C:
			}
		default:
			return nil, s.fail(d, e, attempts)
		}
	}
}

// fail logs a failed notification once, with fingerprints only, and
// returns its error. The line is at debug level: the server logs every
// failed notification at warn level already (one line per failure, with
// the code and the recipient's fingerprint); this one adds what only the
// sender knows (project, attempts).
func (s *Sender) fail(d Delivery, e *translate.Error, attempts int) *translate.Error {
	translate.WithAttempts(e, attempts)
	args := []any{"credential", d.Credential, "project", d.Tokens.Account().ProjectID,
		"token", translate.FingerprintString(d.Request.Token), "code", e.Code, "attempts", attempts}
	if e.Upstream != nil {
		args = append(args, "status", e.Upstream.Status, "reason", e.Upstream.Reason)
	}
	s.opts.Logger.Debug("FCM notification failed: "+e.Message, args...)
	return e
}

// backoff is exponential with jitter from 100 ms, capped at 5 s, or FCM's
// Retry-After (translate.Backoff, as every sender).
func backoff(attempt, retryAfter int) time.Duration {
	return translate.Backoff(attempt, retryAfter, 100*time.Millisecond, 5*time.Second, rand.N[time.Duration])
}

// post makes one attempt: FCM's message name and status on success, else
// the normalised error and its retry policy.
func (s *Sender) post(ctx context.Context, d Delivery, project, accessToken string) (string, int, *translate.Error, translate.RetryPolicy) {
	rctx, tracker := s.pacer.Track(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.URL(project), bytes.NewReader(d.Request.Body))
	if err != nil {
		e := translate.NewError(translate.CodeCredentialsMissing, "cannot make a request for project "+project, err.Error())
		e.Platform = translate.PlatformFCM
		return "", 0, e, translate.RetryNone
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	start := time.Now()
	resp, err := s.client.Load().Do(req)
	if err != nil {
		if s.opts.OnAttempt != nil {
			s.opts.OnAttempt(time.Since(start), 0)
		}
		e := s.transportError(ctx, err, tracker)
		return "", 0, e, translate.HTTPTransportPolicy(e)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	_ = resp.Body.Close()
	s.skew.Note(resp.Header.Get("Date"), s.opts.Now())
	if s.opts.OnAttempt != nil {
		s.opts.OnAttempt(time.Since(start), resp.StatusCode)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var ok struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(body, &ok) != nil || ok.Name == "" {
			e := translate.NewError(translate.CodeUpstreamUnavailable,
				fmt.Sprintf("FCM answered HTTP %d without a message name", resp.StatusCode),
				"check upstream.fcm_url points at FCM (or a gateway that passes its answers through); the message may have been delivered")
			e.Platform, e.MaybeDelivered, e.Retryable = translate.PlatformFCM, true, false
			e.Upstream = &translate.Upstream{Status: resp.StatusCode}
			return "", resp.StatusCode, e, translate.RetryNone
		}
		return ok.Name, resp.StatusCode, nil, translate.RetryNone
	}
	e, policy := translate.ClassifyFCM(translate.FCMReply{
		Status: resp.StatusCode, Header: resp.Header, Body: body, Project: project, Token: d.Request.Token,
	}, s.opts.Now())
	if e.Code == translate.CodeCredentialsRejected {
		e.Hint += s.skew.Hint("FCM")
	}
	return "", resp.StatusCode, e, policy
}

// tokenError normalises a failed access-token fetch.
func (s *Sender) tokenError(ctx context.Context, err error, src *creds.FCMTokenSource) (*translate.Error, translate.RetryPolicy) {
	sa := src.Account()
	if ctx.Err() != nil {
		e := translate.NewError(translate.CodeUpstreamTimeout, "no FCM access token within the deadline (the token endpoint did not answer in time)",
			"retry later; check network access to the token endpoint ("+hostOf(src.TokenURL())+") if it persists")
		e.Platform = translate.PlatformFCM
		return e, translate.RetryNone
	}
	reply := translate.FCMTokenReply{Transport: scrubURLs(err.Error()), ClientEmail: sa.ClientEmail}
	var te *creds.FCMTokenError
	if errors.As(err, &te) {
		reply.Status, reply.ErrorCode, reply.Description, reply.RetryAfter = te.Status, te.Code, te.Description, te.RetryAfter
		if te.Status == 0 && te.Err != nil {
			reply.Transport = scrubURLs(te.Err.Error())
		}
	}
	e, policy := translate.ClassifyFCMToken(reply, s.opts.Now())
	if e.Code == translate.CodeCredentialsRejected {
		e.Hint += s.skew.Hint("FCM")
	}
	return e, policy
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

// scrubURLs shortens URLs in an error message to their host: a URL may
// carry a query string.
func scrubURLs(msg string) string {
	var out []string
	for _, w := range strings.Fields(msg) {
		trimmed := strings.Trim(w, `"':,`)
		if u, err := url.Parse(trimmed); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			w = strings.Replace(w, trimmed, u.Scheme+"://"+u.Host, 1)
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// transportError normalises a failure without an answer (see
// translate.FromHTTPTransport).
func (s *Sender) transportError(ctx context.Context, err error, tr *resend.Tracker) *translate.Error {
	return translate.FromHTTPTransport(translate.HTTPTransport{
		Platform: translate.PlatformFCM, Server: "FCM", Reach: hostOf(s.base),
		Refused:     errors.Is(err, resend.ErrExhausted),
		Connections: tr.Dials(),
		Deadline:    ctx.Err() != nil,
		NotSent:     tr.NotSent(err),
		Detail:      scrubURLs(err.Error()),
	})
}

// Preview builds what Send would send, for dry runs: the URL, the headers
// with the access token shown as its fingerprint (fetching one if none is
// cached, so that a dry run proves the service account works), and the
// body with the registration token shown as its fingerprint.
func (s *Sender) Preview(ctx context.Context, d Delivery) (*translate.DryRunRequest, *translate.Error) {
	if e := s.check(d); e != nil {
		return nil, e
	}
	sa := d.Tokens.Account()
	tok, err := d.Tokens.Token(ctx)
	if err != nil {
		e, _ := s.tokenError(ctx, err, d.Tokens)
		return nil, e
	}
	shown := bytes.Replace(d.Request.Body, []byte(`"token":"`+d.Request.Token+`"`),
		[]byte(`"token":"<registration token `+translate.FingerprintString(d.Request.Token)+`>"`), 1)
	return &translate.DryRunRequest{
		Method: http.MethodPost, URL: s.URL(sa.ProjectID),
		Headers: map[string]string{
			"Authorization": "Bearer <access token " + translate.FingerprintString(tok.AccessToken) + " of " + sa.ClientEmail +
				", expires " + tok.Expiry.UTC().Format(time.RFC3339) + ">",
			"Content-Type": "application/json; charset=UTF-8",
		},
		Payload: json.RawMessage(shown), PayloadSize: len(d.Request.Body),
	}, nil
}
