// Package webpush is pushproxy's Web Push sender: RFC 8291 payload
// encryption (aes128gcm, on the standard library), the RFC 8292 VAPID
// Authorization header from a keyring of VAPID keys, RFC 8030 delivery with
// TTL, Urgency and Topic, retries inside the caller's deadline, and the
// translation of every outcome into a normalised result or error.
//
// Every request goes through one shared HTTP client that follows no
// redirects, ignores proxy environment variables, speaks HTTP/2 when the
// push service offers it, bounds the requests in flight per push service
// host, and dials only through the endpoint guard: an endpoint must be https,
// without user-info, on a known push service host (KnownPushServices) or
// listed in Options.AllowEndpoints, and the address actually dialled must
// not be loopback, private, link-local, CGNAT, multicast, unspecified or
// IPv4-mapped IPv6 unless Options.AllowPrivateNetworks is set, so DNS
// rebinding cannot reach an internal service. A refused endpoint is
// destination_forbidden and no connection is opened.
//
// Keyring: a Delivery carries every configured VAPID key, the primary first.
// The subscription's own key (Delivery.Preferred, the recipient's vapid_key)
// signs first, else the primary. When the push service refuses the key or
// the header that carries it (the answer's row in translate's table has
// policy RetryOtherKey: a 401 or 403, a key-mismatch answer, or a 400 that
// names the VAPID key, the Authorization or the Crypto-Key header, such as
// Mozilla errno 109, FCM's "crypto-key header had invalid format" or Apple's
// VapidPkHashMismatch; never any other 400) and other keys are configured,
// they are tried in order (at most Options.MaxKeysTried in all);
// the answer's Result.Credential names the key that was accepted, so the
// application can store it with the subscription. When none is accepted and
// any answer said the key does not match, the error is vapid_key_mismatch
// (action resubscribe).
//
// Retries: the sender carries out each answer's retry policy
// (translate.ClassifyWebPush): RetryBackoff (5xx, 429, throttling) sends
// again after back-off with the same key, RetryOtherKey moves to the next
// key, RetryNone answers. The error's Retryable and Action are what the
// caller should do with the final answer, not what the sender did.
//
// Messages name a push service on an unlisted host (allow_endpoints) by
// its host name and the format its reply had; an endpoint's path (the
// subscriber's secret) never appears in a message, even when the service
// echoes it.
package webpush

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushproxy/pushproxy/internal/resend"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/translate"
)

// Options configure a Sender.
type Options struct {
	// RootCAs are the roots trusted for push services; nil means the
	// system's.
	RootCAs *x509.CertPool
	// AllowEndpoints are host names added to KnownPushServices: exact
	// ("push.example.net", "127.0.0.1") or "*.suffix" (any subdomain).
	AllowEndpoints []string
	// AllowPrivateNetworks lets the sender dial loopback, private and other
	// internal addresses: only for tests against a push service on loopback.
	AllowPrivateNetworks bool
	// Resolver resolves endpoint hosts; nil means net.DefaultResolver.
	Resolver Resolver
	Now      func() time.Time
	Logger   *slog.Logger
	// OnAttempt, if set, is called after each upstream attempt with its
	// duration and the status (0 for a transport error).
	OnAttempt func(d time.Duration, status int)
	// OnRest, if set, is called when the sender starts leaving a host
	// alone that closed or refused every new connection unprocessed.
	OnRest func()
	// MaxAttempts bounds the attempts per key for one notification
	// (retries of 5xx and 429 included).
	MaxAttempts int // 0 → 3
	// MaxKeysTried bounds the VAPID keys tried for one notification.
	MaxKeysTried int // 0 → 4
	// PadToBuckets pads every plaintext to 128, 256, 512, 1024, 2048 or
	// 3993 bytes, so that the message length reveals less.
	PadToBuckets bool
	// MaxPerHost bounds the requests in flight to one push service host;
	// more wait (inside their deadline).
	MaxPerHost int // 0 → 256
	// DialTimeout bounds a TCP connect.
	DialTimeout time.Duration // 0 → 10s
}

// KeyRef is one configured VAPID key: its name (webpush.keys[].name) and
// its signer. The first of a Delivery's keys is the primary.
type KeyRef struct {
	Name   string
	Signer *creds.VAPIDSigner
}

// Delivery is one notification to one subscription.
type Delivery struct {
	Subscription *translate.Subscription
	Message      *translate.WebPushMessage
	// Keys are every configured VAPID key, primary first.
	Keys []KeyRef
	// Preferred names the key the subscription was made with (the
	// recipient's vapid_key); "" means the primary.
	Preferred string
}

// Sender sends Web Push messages. It is safe for concurrent use.
type Sender struct {
	opts   Options
	guard  *guard
	client atomic.Pointer[http.Client] // replaced when the trusted roots change
	// pacer paces and bounds new connections for net/http's own re-sends
	// of a request the server did not process (see internal/resend).
	pacer *resend.Pacer

	mu    sync.Mutex
	hosts map[string]*hostSlots // in-flight slots per host in use

	skew creds.Skew // this machine's clock against the push services'
}

// ClockSkew is this machine's clock minus the latest push service's, from
// its Date header (one-second resolution), and whether one was seen.
func (s *Sender) ClockSkew() (time.Duration, bool) { return s.skew.Get() }

// New makes a Sender.
func New(opts Options) *Sender {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 3
	}
	if opts.MaxKeysTried <= 0 {
		opts.MaxKeysTried = 4
	}
	if opts.MaxPerHost <= 0 {
		opts.MaxPerHost = 256
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	g := newGuard(opts.AllowEndpoints, opts.AllowPrivateNetworks, opts.Resolver, opts.DialTimeout)
	s := &Sender{opts: opts, guard: g, hosts: map[string]*hostSlots{},
		pacer: resend.NewPacer(resend.Options{Logger: opts.Logger, Server: "push service", OnRest: opts.OnRest})}
	s.client.Store(s.newClient(opts.RootCAs))
	return s
}

// maxConnsPerHost bounds the connections to one push service host.
const maxConnsPerHost = 16

// newClient is the shared HTTP client for a set of trusted roots: the
// guard's dialer, no proxy from the environment, no redirects.
func (s *Sender) newClient(roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil, // never a proxy from the environment
		DialContext:           resend.Dial(s.guard.dialContext),
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   32,
		// At most 16 connections to a push service host: HTTP/2
		// multiplexes, and without a bound a cold start dials one
		// connection per waiting notification (300 at once made 365) and
		// keeps one. A push service on HTTP/1.1 gets 16 at a time.
		MaxConnsPerHost: maxConnsPerHost,
		// A connection silent for 30 s is PINGed and dropped if no answer
		// comes in 15 s, as for FCM: a dead one is not reused.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
	return &http.Client{
		Transport: tr,
		// A push service never redirects; following one would let an
		// endpoint send pushproxy anywhere.
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

// CheckEndpoint runs the endpoint guard's URL checks (not the DNS ones):
// nil, or destination_forbidden.
func (s *Sender) CheckEndpoint(endpoint string) *translate.Error {
	if _, fe := s.guard.check(endpoint); fe != nil {
		return forbidden(fe)
	}
	return nil
}

func forbidden(fe *ForbiddenError) *translate.Error {
	e := translate.NewError(translate.CodeDestinationForbidden, "pushproxy refuses this Web Push endpoint: "+fe.Reason,
		"a subscription's endpoint must be an https URL on a push service (FCM, Mozilla, Apple, WNS) or on a host listed in webpush.allow_endpoints; private addresses need webpush.allow_private_networks")
	e.Platform = translate.PlatformWebPush
	e.Field = "to.webpush.endpoint"
	return e
}

// keyOrder is the order keys are tried in: the preferred key, then the
// others in configuration order, at most MaxKeysTried.
func (s *Sender) keyOrder(d Delivery) []KeyRef {
	out := make([]KeyRef, 0, len(d.Keys))
	if d.Preferred != "" {
		for _, k := range d.Keys {
			if k.Name == d.Preferred {
				out = append(out, k)
			}
		}
	}
	for _, k := range d.Keys {
		if len(out) == 0 || k.Name != out[0].Name {
			out = append(out, k)
		}
	}
	if len(out) > s.opts.MaxKeysTried {
		out = out[:s.opts.MaxKeysTried]
	}
	return out
}

// firstUsable is the first key that can sign (checkDelivery makes sure
// there is one).
func firstUsable(keys []KeyRef) KeyRef {
	for _, k := range keys {
		if k.Signer != nil {
			return k
		}
	}
	return KeyRef{}
}

func (s *Sender) checkDelivery(d Delivery) *translate.Error {
	if d.Subscription == nil || d.Message == nil {
		return translate.Invalid("to.webpush", "a Web Push delivery needs a subscription and a message")
	}
	usable := 0
	for _, k := range d.Keys {
		if k.Signer != nil {
			usable++
		}
	}
	if usable == 0 {
		e := translate.NewError(translate.CodeCredentialsMissing, "no VAPID key is configured or loaded", "set webpush.keys to the key files (web-push JSON or PEM) and webpush.subject; see /readyz")
		e.Platform = translate.PlatformWebPush
		return e
	}
	return nil
}

// Send delivers one message, carrying out each answer's retry policy
// inside ctx's deadline: 5xx and 429 answers again after back-off
// (honouring Retry-After), a refused key or Authorization header with the
// other VAPID keys; and returns the normalised result or error.
func (s *Sender) Send(ctx context.Context, d Delivery) (*translate.Result, *translate.Error) {
	if e := s.checkDelivery(d); e != nil {
		return nil, e
	}
	u, fe := s.guard.check(d.Subscription.Endpoint)
	if fe != nil {
		return nil, forbidden(fe)
	}
	keys := s.keyOrder(d)
	body, err := Encrypt(d.Message.Plaintext, d.Subscription.P256DH, d.Subscription.Auth, EncryptOptions{PadToBuckets: s.opts.PadToBuckets})
	if err != nil {
		return nil, encryptError(err)
	}
	attempts := 0
	var first *translate.Error
	mismatch := false
	for i, k := range keys {
		if k.Signer == nil {
			continue
		}
		auth, err := k.Signer.Authorization(d.Subscription.Endpoint)
		if err != nil {
			e := translate.NewError(translate.CodeCredentialsMissing, "cannot sign a VAPID JWT with key "+k.Name, err.Error())
			e.Platform = translate.PlatformWebPush
			return nil, e
		}
		status, e, policy := s.deliver(ctx, u, d, body, auth, &attempts)
		if e == nil {
			if i > 0 {
				s.opts.Logger.Info("web push delivered with another VAPID key than the first tried",
					"endpoint", translate.FingerprintString(d.Subscription.Endpoint), "key", k.Name, "tried", i+1)
			}
			return &translate.Result{
				ID: d.Message.ID, Platform: translate.PlatformWebPush,
				Upstream: &translate.Upstream{Status: status}, Credential: k.Name, Attempts: attempts,
			}, nil
		}
		if first == nil {
			first = e
		}
		if policy != translate.RetryOtherKey {
			return nil, translate.WithAttempts(e, attempts)
		}
		mismatch = mismatch || e.Code == translate.CodeVAPIDKeyMismatch
		s.opts.Logger.Debug("web push refused the VAPID key", "key", k.Name, "status", status,
			"endpoint", translate.FingerprintString(d.Subscription.Endpoint))
	}
	if len(keys) > 1 && mismatch {
		e := *first
		e.Code, e.Action, e.Retryable = translate.CodeVAPIDKeyMismatch, translate.ActionResubscribe, false
		names := make([]string, 0, len(keys))
		for _, k := range keys {
			names = append(names, k.Name)
		}
		e.Message = fmt.Sprintf("the push service refused every VAPID key tried (%s): the subscription was created with another key", strings.Join(names, ", "))
		e.Hint = "have the browser subscribe again with the key from GET /v1/webpush/vapid-public-key, or add the key it was made with to webpush.keys"
		return nil, translate.WithAttempts(&e, attempts)
	}
	return nil, translate.WithAttempts(first, attempts)
}

func encryptError(err error) *translate.Error {
	if errors.Is(err, ErrPayloadTooLarge) {
		e := translate.NewError(translate.CodePayloadTooLarge, "the Web Push payload does not fit one encrypted 4096-byte message", "keep the plaintext at 3993 bytes or less (less with padding)")
		e.Platform = translate.PlatformWebPush
		return e
	}
	return translate.InvalidRecipient("to.webpush.keys", "cannot encrypt for this subscription: %v", err)
}

// hostSlots are the in-flight slots of one push service host, and how many
// callers hold or wait for one: the entry goes when none does, so the map
// stays as small as the hosts in use (endpoints on ever-new subdomains of
// an allowed suffix do not make it grow).
type hostSlots struct {
	ch    chan struct{}
	users int
}

// slot takes one in-flight slot for host, waiting inside ctx; the function
// it returns gives the slot back.
func (s *Sender) slot(ctx context.Context, host string) (func(), error) {
	s.mu.Lock()
	hs := s.hosts[host]
	if hs == nil {
		hs = &hostSlots{ch: make(chan struct{}, s.opts.MaxPerHost)}
		s.hosts[host] = hs
	}
	hs.users++
	s.mu.Unlock()
	leave := func() {
		s.mu.Lock()
		hs.users--
		if hs.users == 0 {
			delete(s.hosts, host)
		}
		s.mu.Unlock()
	}
	select {
	case hs.ch <- struct{}{}:
		return func() { <-hs.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// hostsInUse counts the hosts with slots held or awaited (for tests).
func (s *Sender) hostsInUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hosts)
}

// deliver sends the body with one Authorization header, retrying with
// back-off what the answer's policy says to. It returns the status of the
// last answer, its error and its policy (RetryOtherKey: Send tries the
// next key).
func (s *Sender) deliver(ctx context.Context, u *url.URL, d Delivery, body []byte, auth string, attempts *int) (int, *translate.Error, translate.RetryPolicy) {
	service := translate.WebPushService(u.Host)
	for try := 1; ; try++ {
		status, e, policy := s.post(ctx, u, d.Message, body, auth, service)
		if translate.ReachedUpstream(status, e) {
			*attempts++
		}
		if e == nil {
			return status, nil, translate.RetryNone
		}
		if !policy.BacksOff() || try >= s.opts.MaxAttempts {
			return status, e, policy
		}
		wait := backoff(try, e.RetryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return status, e, translate.RetryNone
		}
		s.opts.Logger.Debug("web push retry", "status", status, "wait", wait, "endpoint", translate.FingerprintString(d.Subscription.Endpoint))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return status, e, translate.RetryNone
		case <-t.C:
		}
	}
}

// backoff is exponential with jitter from 100 ms, capped at 5 s, or the
// server's Retry-After.
func backoff(attempt, retryAfter int) time.Duration {
	return translate.Backoff(attempt, retryAfter, 100*time.Millisecond, 5*time.Second, rand.N[time.Duration])
}

// Preview builds what Send would send, for dry runs: the endpoint's origin
// only (its path identifies the subscriber: the header ":endpoint" shows a
// fingerprint instead), the headers with the VAPID JWT decoded into
// token_header and token_claims, the plaintext, and the encrypted size.
func (s *Sender) Preview(d Delivery) (*translate.DryRunRequest, *translate.Error) {
	if e := s.checkDelivery(d); e != nil {
		return nil, e
	}
	u, fe := s.guard.check(d.Subscription.Endpoint)
	if fe != nil {
		return nil, forbidden(fe)
	}
	body, err := Encrypt(d.Message.Plaintext, d.Subscription.P256DH, d.Subscription.Auth, EncryptOptions{PadToBuckets: s.opts.PadToBuckets})
	if err != nil {
		return nil, encryptError(err)
	}
	key := firstUsable(s.keyOrder(d))
	auth, err := key.Signer.Authorization(d.Subscription.Endpoint)
	if err != nil {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "cannot sign a VAPID JWT with key "+key.Name, err.Error())
	}
	tok, k, err := creds.ParseVAPIDAuthorization(auth)
	if err != nil {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "cannot read the VAPID header", err.Error())
	}
	th, tc, err := creds.DecodeToken(tok)
	if err != nil {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "cannot decode the VAPID JWT", err.Error())
	}
	headers := map[string]string{
		"Authorization": "vapid t=<JWT of key " + key.Name + ": see token_header and token_claims>, k=" + k,
		":endpoint":     "path hidden; endpoint fingerprint " + translate.FingerprintString(d.Subscription.Endpoint),
	}
	for _, kv := range Headers(d.Message, len(body)) {
		headers[kv[0]] = kv[1]
	}
	payload := json.RawMessage(d.Message.Plaintext)
	if !json.Valid(payload) {
		payload, _ = json.Marshal(string(d.Message.Plaintext))
	}
	return &translate.DryRunRequest{
		Method: http.MethodPost, URL: u.Scheme + "://" + u.Host + "/…",
		Headers: headers, TokenHeader: th, TokenClaims: tc,
		Payload: payload, PayloadSize: len(body),
	}, nil
}
