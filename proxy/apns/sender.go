// Package apns is pushproxy's APNs sender: long-lived HTTP/2 connections
// (golang.org/x/net/http2 over TLS ≥ 1.2), one pool per team and key, the
// provider token on every request, retries inside the caller's deadline,
// and the translation of every outcome into a normalised result or error.
package apns

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// maxDrained bounds the connections one notification goes through that
// APNs refuses whole (GOAWAY naming last stream 0, as a draining load
// balancer sends): then it is answered "not delivered". After as many in
// a row the pool rests (see pool.noteDrained).
const maxDrained = 6

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
	// MaxAttempts bounds the attempts per notification that APNs answered
	// or that failed before reaching it (retries included).
	MaxAttempts int // 0 → 4
	// MaxConnsPerPool bounds the usable connections of one team and key to
	// one host; a new one is opened when all reach the server's stream
	// limit (1,000 at APNs).
	MaxConnsPerPool int // 0 → 8
	// MaxResends bounds the re-sends of a notification the server did not
	// process (streams above a GOAWAY's last stream ID, REFUSED_STREAM, or
	// never written); they are immediate, on another connection.
	MaxResends int // 0 → 100
	// OnAttempt, if set, is called after each upstream attempt with its
	// duration and the status (0 for a transport error).
	OnAttempt func(d time.Duration, status int)
	// OnGoAway, if set, is called with the reason of each GOAWAY received
	// (whether or not it failed a request).
	OnGoAway func(reason string)
	// OnRest, if set, is called when the sender starts leaving a host
	// alone that closed or refused every new connection unprocessed.
	OnRest func()
}

// Sender sends APNs requests. It is safe for concurrent use.
type Sender struct {
	opts Options

	mu         sync.RWMutex
	pools      map[poolKey]*pool
	closed     bool
	connSerial atomic.Uint64
	ctx        context.Context // ends on Close: every pool's goroutines stop
	cancel     context.CancelFunc
	skew       creds.Skew // this machine's clock against APNs's
}

// ClockSkew is this machine's clock minus APNs's, from the Date header of
// the latest answer (one-second resolution), and whether one was seen.
func (s *Sender) ClockSkew() (time.Duration, bool) { return s.skew.Get() }

// Conns counts the open APNs connections.
func (s *Sender) Conns() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, p := range s.pools {
		p.mu.RLock()
		for _, c := range p.conns {
			if !c.cc.State().Closed {
				n++
			}
		}
		p.mu.RUnlock()
	}
	return n
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
	if opts.MaxConnsPerPool == 0 {
		opts.MaxConnsPerPool = 8
	}
	if opts.MaxResends == 0 {
		opts.MaxResends = 100
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{opts: opts, pools: map[poolKey]*pool{}, ctx: ctx, cancel: cancel}
}

// Close closes every connection.
func (s *Sender) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.cancel()
	for k, p := range s.pools {
		p.close()
		delete(s.pools, k)
	}
}

// Retain closes, gracefully, the connection pools of credentials that are
// no longer in use (a key or team changed on reload): in-flight streams
// finish, then the connections close. Apple binds a connection to the
// first key used on it, so a new key always gets new connections.
func (s *Sender) Retain(active []*creds.APNsCredential) {
	keep := map[string]bool{}
	for _, c := range active {
		if c.Usable() {
			keep[c.Spec.TeamID+"/"+c.Spec.KeyID+"/"+c.Fingerprint+"/"] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, p := range s.pools {
		if !keep[k.team+"/"+k.kid+"/"+k.fp+"/"] {
			delete(s.pools, k)
			p.retire(s.opts.Logger)
		}
	}
}

// SetRootCAs changes the roots trusted for new connections (the CA file
// changed); existing connections drain and close.
func (s *Sender) SetRootCAs(roots *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.RootCAs = roots
	for k, p := range s.pools {
		delete(s.pools, k)
		p.retire(s.opts.Logger)
	}
}

// BaseURL is the APNs host for an environment.
func (s *Sender) BaseURL(env string) string {
	if env == Development {
		return s.opts.DevelopmentURL
	}
	return s.opts.ProductionURL
}

// pool returns the connection pool of one team and key to one host: never
// two teams or two keys on one connection (Apple: UnrelatedKeyIdInToken).
func (s *Sender) pool(c *creds.APNsCredential, base string) (*pool, error) {
	k := poolKey{c.Spec.TeamID, c.Spec.KeyID, c.Fingerprint, base}
	s.mu.RLock()
	p, closed := s.pools[k], s.closed
	s.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	if closed {
		return nil, errPoolClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errPoolClosed
	}
	if p := s.pools[k]; p != nil {
		return p, nil
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("APNs URL %q is not https://host[:port]", base)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	p = newPool(s, addr, u.Hostname(), s.opts.MaxConnsPerPool)
	s.pools[k] = p
	return p, nil
}

// Unusable is the error of a credential without a usable key (missing or
// invalid file), or nil when it can sign.
func Unusable(c *creds.APNsCredential) *translate.Error {
	if c.Usable() {
		return nil
	}
	return translate.NewError(translate.CodeCredentialsMissing, "APNs credential "+strconv.Quote(c.Spec.Name)+" has no usable key",
		"fix "+c.Spec.KeyFile+": "+c.LastError+"; /readyz shows the state")
}

// FirstEnvironment is the host a notification is sent to first: auto and
// the empty environment start on production.
func FirstEnvironment(env string) string {
	if env == Development {
		return Development
	}
	return Production
}

// poolKey names a pool: one team, one key, one host.
type poolKey struct{ team, kid, fp, base string }

// Delivery is one notification to send.
type Delivery struct {
	Credential  *creds.APNsCredential
	Environment string // production | development | auto
	Request     *translate.APNsRequest
}

// Send delivers one notification and returns the normalised result or
// error. For each APNs answer it carries out the retry policy of the
// answer's row in translate's table (translate.ClassifyAPNs): back-off, a new
// connection, a fresh provider token, the other host; all inside ctx's
// deadline and Options.MaxAttempts. The error's Retryable and Action are
// the row's, for the caller: they say what the caller should do with the
// final answer, not what Send did.
//
// What the server surely did not process (a stream above a GOAWAY's last
// stream ID, REFUSED_STREAM, or a request never written) is re-sent at
// once on another connection with the same apns-id. What it may have
// processed (the connection died after the request was written) is never
// re-sent: the answer says it may have been delivered.
func (s *Sender) Send(ctx context.Context, d Delivery) (*translate.Result, *translate.Error) {
	c := d.Credential
	if e := Unusable(c); e != nil {
		return nil, e
	}
	auto, env := d.Environment == Auto, FirstEnvironment(d.Environment)
	token, auth, err := c.Tokens.TokenAndHeader()
	if err != nil {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "cannot sign an APNs provider token", err.Error())
	}
	refreshed, switched, newConnRetried := false, false, false
	attempts, tries, resends, drained := 0, 0, 0, 0
	var lastConn *pconn // the connection of the latest attempt (for a GOAWAY's reason)
	var last *translate.Error
	for {
		p, err := s.pool(c, s.BaseURL(env))
		if err != nil {
			return nil, translate.NewError(translate.CodeUpstreamUnavailable, err.Error(), "check upstream.apns_*_url")
		}
		out := s.roundTrip(ctx, p, d.Request, auth)
		// attempts counts what APNs may have processed: not the re-sends of
		// what it surely did not.
		if out.wrote && !out.unprocessed {
			attempts++
		}
		if out.err != nil && !out.wrote && resends > 0 && ctx.Err() != nil {
			// The deadline passed while the next re-send waited for a
			// connection: every attempt so far was refused unprocessed.
			out.err, out.unprocessed = nil, true
			out.conn = lastConn
		}
		if out.conn != nil {
			lastConn = out.conn
		}
		if out.unprocessed {
			if out.conn != nil && refusedAll(out.conn) {
				drained++
			}
			if ctx.Err() == nil && resends < s.opts.MaxResends && drained < maxDrained && !out.drainedHost {
				resends++
				continue
			}
			// Re-sends ran out, the deadline passed between them, or APNs
			// drains every connection: the notification surely was not
			// delivered.
			var g *goAwayInfo
			connections := resends + 1
			if out.conn != nil {
				g = out.conn.goAway.Load()
			} else if out.drainedHost {
				// Refused by the resting pool: only the connections this
				// notification met before (perhaps none) were tried.
				g, connections = p.lastDrain.Load(), drained
			}
			out.err = s.notSent(ctx, g, connections)
		}
		tries++
		if out.err == nil && out.reply == nil {
			// Every outcome carries a reply or an error; never dereference
			// a missing reply, whatever path produced it.
			out.err = translate.NewError(translate.CodeUpstreamUnavailable, "APNs gave no answer and no error (not delivered)", "retry; report this to pushproxy's maintainers if it repeats")
		}
		// policy is what this sender does next; last.Retryable and
		// last.Action stay what the caller is told if this is the answer.
		var policy translate.RetryPolicy
		if out.err != nil {
			last = out.err
			policy = translate.APNsTransportPolicy(last)
		} else if out.reply.Status == http.StatusOK {
			id := out.reply.APNsID
			if id == "" {
				id = d.Request.ID
			}
			return &translate.Result{
				ID: d.Request.ID, Platform: translate.PlatformAPNs,
				Upstream:   &translate.Upstream{Status: out.reply.Status, APNsID: id},
				Credential: c.Spec.Name, Environment: env, Attempts: attempts,
			}, nil
		} else {
			last, policy = translate.ClassifyAPNs(*out.reply, s.opts.Now())
			reason := last.Upstream.Reason
			switch policy {
			case translate.RetryFreshToken:
				policy = translate.RetryNone
				if !refreshed {
					refreshed = true
					nt, rerr := c.Tokens.Refresh(token)
					if rerr == nil {
						token, auth = nt, "bearer "+nt
						continue
					}
					last.Hint += " (" + rerr.Error() + ")"
				}
			case translate.RetryNewConn:
				// The connection is closing or bound to something else:
				// never reuse it; the back-off below retries on another.
				out.conn.cc.SetDoNotReuse()
			case translate.RetryNewConnOnce:
				out.conn.cc.SetDoNotReuse()
				policy = translate.RetryNone
				if !newConnRetried {
					newConnRetried = true
					continue
				}
			case translate.RetryOtherHost:
				policy = translate.RetryNone
				if auto && !switched {
					switched = true
					env = other(env)
					continue
				}
			}
			if reason == translate.APNsTooManyProviderTokenUpdates {
				s.opts.Logger.Error("APNs answered TooManyProviderTokenUpdates: another process is signing tokens for this key with a different iat",
					"credential", c.Spec.Name, "key_id", c.Spec.KeyID)
			}
			translate.APNsAfterOtherHost(last, switched, env)
		}
		last.Platform = translate.PlatformAPNs
		if last.Code == translate.CodeCredentialsRejected {
			last.Hint += s.skew.Hint("APNs")
		}
		if !policy.BacksOff() || tries >= s.opts.MaxAttempts {
			return nil, translate.WithAttempts(last, attempts)
		}
		wait := backoff(tries, last.RetryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, translate.WithAttempts(last, attempts)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, translate.WithAttempts(last, attempts)
		case <-t.C:
		}
	}
}

func other(env string) string {
	if env == Development {
		return Production
	}
	return Development
}

// backoff is exponential with jitter from 50 ms, capped at 2 s, or the
// server's Retry-After.
func backoff(attempt, retryAfter int) time.Duration {
	return translate.Backoff(attempt, retryAfter, 50*time.Millisecond, 2*time.Second, rand.N[time.Duration])
}

// Preview builds the request that Send would make, for dry runs: URL,
// headers and payload, the provider token shown only decoded.
func (s *Sender) Preview(d Delivery) (*translate.DryRunRequest, *translate.Error) {
	c := d.Credential
	if e := Unusable(c); e != nil {
		return nil, e
	}
	env := FirstEnvironment(d.Environment)
	token, err := c.Tokens.Token()
	if err != nil {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "cannot sign an APNs provider token", err.Error())
	}
	h, claims, err := creds.DecodeToken(token)
	if err != nil {
		return nil, translate.NewError(translate.CodeCredentialsMissing, "cannot decode the provider token", err.Error())
	}
	headers := map[string]string{"authorization": "bearer <provider token: see token_header and token_claims>"}
	d.Request.EachHeader(func(name, value string) { headers[name] = value })
	return &translate.DryRunRequest{
		// The device token is shown as its fingerprint, like everywhere else.
		Method: http.MethodPost, URL: s.BaseURL(env) + "/3/device/<device token " + translate.FingerprintString(d.Request.DeviceToken) + ">",
		Headers: headers, TokenHeader: h, TokenClaims: claims,
		Payload: json.RawMessage(d.Request.Payload), PayloadSize: len(d.Request.Payload),
	}, nil
}
