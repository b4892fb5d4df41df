// Package fakepush is a fake Web Push service (RFC 8030) for pushproxy's
// tests, benchmarks and its demo command.
//
// It speaks the real protocol over real sockets: HTTPS (HTTP/2 or HTTP/1.1)
// on 127.0.0.1 with a certificate signed by a certificate authority
// generated in memory at start (see [Server.CertPool]). It plays the user
// agents too: [Server.Subscribe] makes a subscription the way a browser
// does (a new P-256 key pair and a 16-byte authentication secret, bound to
// the VAPID public key given as applicationServerKey) and returns its
// PushSubscription.toJSON() form, with an endpoint
// https://127.0.0.1:PORT/push/<id> (or another host name, for a test whose
// resolver points that name at the fake).
//
// Each POST /push/<id> is checked the way the real services check it, in
// this order, and refused in the style of the subscription's service
// (Mozilla autopush JSON errno, FCM text, Apple JSON reason, WNS X-WNS-*
// headers; see Style):
//
//  1. the subscription exists (404) and is not unsubscribed (410);
//  2. TTL is present and a non-negative integer (400), Topic if present is
//     at most 32 base64url characters (400), Urgency if present is
//     very-low, low, normal or high (400);
//  3. Authorization is "vapid t=<jwt>, k=<key>" whose JWT verifies with k
//     (ES256), aud is the origin the request was sent to, exp is in the
//     future and at most 24 hours ahead, sub is mailto: or https: (401 or
//     403: Mozilla 401 errno 109, FCM 403, Apple 403 BadJwtToken, WNS 401);
//  4. k is the key the subscription was made with (Mozilla 401 errno 109
//     "VAPID public key mismatch", FCM 403 "… do not correspond …", Apple 403
//     VapidPkHashMismatch, WNS 403; or SubscribeOptions.KeyMismatch);
//  5. Content-Encoding is aes128gcm (400) and the body is 1 to 4096 bytes
//     (400, 413).
//
// A request that passes is decrypted with the subscription's private key
// (see [Decrypt]); like a real service the fake accepts a body it cannot
// decrypt (only the browser could tell), but it records the failure. Then it
// answers what [Server.Script] queued for the subscription, else 201 Created
// with a Location header. Every request is recorded ([Server.Requests]).
// Endpoints and keys are logged only as fingerprints.
//
// Options.Trouble (or [Server.SetTrouble] while it runs) makes the fake's
// HTTP/2 connections misbehave as a push service or its load balancer may
// (see [h2trouble.Trouble]): a graceful GOAWAY after every N streams, a
// GOAWAY with an error code and a reason, a TCP reset, or a GOAWAY on every
// new connection. A stream refused that way never reaches the checks above
// and is not recorded; HTTP/1.1 connections are not affected.
package fakepush

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pushproxy/pushproxy/internal/h2trouble"
	"github.com/pushproxy/pushproxy/internal/testca"
)

// Service styles: how the fake words its refusals.
const (
	StyleMozilla = "mozilla"
	StyleFCM     = "fcm"
	StyleApple   = "apple"
	StyleWNS     = "wns"
)

// ServiceHosts are the host names the fake's certificate is valid for,
// besides 127.0.0.1 and ::1.
var ServiceHosts = []string{
	"localhost", "fcm.googleapis.com", "updates.push.services.mozilla.com",
	"web.push.apple.com", "wns2-par02p.notify.windows.com",
}

// Options configures a Server. The zero value answers like Mozilla autopush.
type Options struct {
	// Style is the default service style of new subscriptions.
	Style string
	// Now is the clock used to check VAPID exp; nil means time.Now.
	Now func() time.Time
	// Logf, if set, receives one line per request.
	Logf func(format string, args ...any)
	// Addr is the address to listen on, "127.0.0.1:PORT" (the certificate
	// is valid for 127.0.0.1, ::1 and ServiceHosts); empty means 127.0.0.1 on
	// a free port.
	Addr string
	// Trouble makes HTTP/2 connections misbehave (GOAWAY, reset, drain;
	// see h2trouble.Trouble); the zero value is none. Streams it refuses
	// are not recorded. Server.SetTrouble changes it while the server runs.
	Trouble h2trouble.Trouble
}

// SubscribeOptions configure one subscription.
type SubscribeOptions struct {
	// VAPIDKey is the applicationServerKey, base64url (required).
	VAPIDKey string
	// Style overrides Options.Style for this subscription.
	Style string
	// Host is the endpoint's host name instead of 127.0.0.1 (one of
	// ServiceHosts, for a client whose resolver sends it to the fake).
	Host string
	// ID, if set, is the subscription's ID (the endpoint's last path
	// segment: letters, digits, '-' and '_') instead of a random one; it
	// must not be in use.
	ID string
	// PrivateKey and AuthSecret (16 bytes), if set, are the user agent's
	// key pair and authentication secret instead of new random ones: for a
	// subscription that must be the same on every run (pushproxy demo).
	PrivateKey *ecdh.PrivateKey
	AuthSecret []byte
	// KeyMismatch, if set, is how the service answers a request signed
	// with another VAPID key than the subscription's, instead of the
	// style's usual answer (Mozilla 401 errno 109, FCM 403, Apple 403
	// VapidPkHashMismatch, WNS 403): for services, versions or gateways
	// that answer it otherwise, such as with a 400 (a zero Status is 400;
	// Delay is ignored).
	KeyMismatch *Response
}

// Keys are a subscription's keys as toJSON() gives them.
type Keys struct {
	P256DH string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// Subscription is what a browser would hold: its JSON form plus the secret
// halves.
type Subscription struct {
	ID             string `json:"-"`
	Endpoint       string `json:"endpoint"`
	ExpirationTime *int64 `json:"expirationTime"`
	Keys           Keys   `json:"keys"`
	// PrivateKey and AuthSecret decrypt its messages.
	PrivateKey *ecdh.PrivateKey `json:"-"`
	AuthSecret []byte           `json:"-"`
	// VAPIDKey is the applicationServerKey it was made with.
	VAPIDKey string `json:"-"`
	Style    string `json:"-"`
	// KeyMismatch is SubscribeOptions.KeyMismatch.
	KeyMismatch *Response `json:"-"`
}

// Response is a scripted answer. A zero Status is 201. An empty Body (and
// no Header) on an error status gets the style's usual body for it.
type Response struct {
	Status int
	Body   string
	Header http.Header
	// Delay makes the fake wait this long (or until the request is
	// abandoned) before answering.
	Delay time.Duration
}

// Request records one request.
type Request struct {
	Conn           int // connection serial number, 1-based
	Proto          string
	Method, Path   string
	SubscriptionID string
	Header         http.Header
	Body           []byte
	Plaintext      []byte // decrypted; nil when it could not be
	DecryptError   string
	JWT            string
	JWTHeader      map[string]any
	Claims         map[string]any
	VAPIDKey       string // k as sent
	KeyMatches     bool   // k is the subscription's applicationServerKey
	Status         int
	Reason         string // why it was refused (the fake's words), "" on success
	Received       time.Time
}

// Server is a running fake push service.
type Server struct {
	opts  Options
	now   func() time.Time
	ln    net.Listener
	url   string
	port  string
	caPEM []byte
	pool  *x509.CertPool
	hs    *http.Server
	conns testca.Conns // numbers the accepted connections
	h2    *h2trouble.Server

	mu      sync.Mutex
	subs    map[string]*Subscription
	gone    map[string]bool
	scripts map[string][]Response
	records []*Request
	nmsg    int
}

// New starts a fake push service on Options.Addr, by default 127.0.0.1 on a
// free port.
func New(opts Options) (*Server, error) {
	tlsConf, caPEM, pool, err := newTLS()
	if err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakepush: listen: %w", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s := &Server{
		opts: opts, now: opts.Now, ln: ln, url: "https://" + ln.Addr().String(), port: port,
		caPEM: caPEM, pool: pool,
		subs: map[string]*Subscription{}, gone: map[string]bool{}, scripts: map[string][]Response{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.opts.Style == "" {
		s.opts.Style = StyleMozilla
	}
	s.hs = &http.Server{
		Handler:           http.HandlerFunc(s.handle),
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.conns.Hook(s.hs)
	s.h2 = h2trouble.Install(s.hs, opts.Trouble, s.logf)
	go func() { _ = s.hs.Serve(tls.NewListener(ln, tlsConf)) }()
	return s, nil
}

// SetTrouble changes Options.Trouble for connections and streams from now
// on (see h2trouble.Server.Set); the zero value ends it.
func (s *Server) SetTrouble(t h2trouble.Trouble) { s.h2.Set(t) }

// URL is "https://127.0.0.1:PORT".
func (s *Server) URL() string { return s.url }

// Port is the port the fake listens on.
func (s *Server) Port() string { return s.port }

// CAPEM is the PEM of the certificate authority that signed the fake's
// certificate.
func (s *Server) CAPEM() []byte { return bytes.Clone(s.caPEM) }

// CertPool holds only that certificate authority.
func (s *Server) CertPool() *x509.CertPool { return s.pool.Clone() }

// Close stops the server and closes every connection.
func (s *Server) Close() error {
	err := s.hs.Close()
	s.h2.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Conns is the number of connections accepted so far.
func (s *Server) Conns() int { return s.conns.Count() }

// Subscribe makes a subscription as a browser does for the given
// applicationServerKey.
func (s *Server) Subscribe(o SubscribeOptions) (*Subscription, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(o.VAPIDKey, "="))
	if err != nil || len(raw) != 65 {
		return nil, errors.New("fakepush: the applicationServerKey must be a 65-byte P-256 point in base64url")
	}
	priv := o.PrivateKey
	if priv == nil {
		if priv, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
	} else if priv.Curve() != ecdh.P256() {
		return nil, errors.New("fakepush: the subscription's private key must be on P-256")
	}
	auth := bytes.Clone(o.AuthSecret)
	if auth == nil {
		auth = make([]byte, 16)
		_, _ = rand.Read(auth)
	} else if len(auth) != 16 {
		return nil, errors.New("fakepush: the authentication secret must be 16 bytes")
	}
	id := o.ID
	if id == "" {
		idb := make([]byte, 18)
		_, _ = rand.Read(idb)
		id = base64.RawURLEncoding.EncodeToString(idb)
	} else if !validID(id) {
		return nil, fmt.Errorf("fakepush: subscription ID %q: use letters, digits, '-' and '_'", id)
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	style := o.Style
	if style == "" {
		style = s.opts.Style
	}
	sub := &Subscription{
		ID: id, Endpoint: "https://" + net.JoinHostPort(host, s.port) + "/push/" + id,
		Keys: Keys{
			P256DH: base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
			Auth:   base64.RawURLEncoding.EncodeToString(auth),
		},
		PrivateKey: priv, AuthSecret: auth, VAPIDKey: base64.RawURLEncoding.EncodeToString(raw), Style: style,
		KeyMismatch: o.KeyMismatch,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[id]; ok {
		return nil, fmt.Errorf("fakepush: subscription ID %q is in use", id)
	}
	s.subs[id] = sub
	return sub, nil
}

// validID: a non-empty run of base64url characters.
func validID(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Unsubscribe makes later messages to the subscription answer 410 (the
// style's "gone").
func (s *Server) Unsubscribe(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone[id] = true
}

// Script queues answers for one subscription; each valid request consumes
// the next.
func (s *Server) Script(id string, rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[id] = append(s.scripts[id], rs...)
}

// Requests returns a copy of every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.records))
	for i, r := range s.records {
		out[i] = *r
		out[i].Header = r.Header.Clone()
	}
	return out
}

// Reset forgets the recorded requests and scripted answers.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = nil
	s.scripts = map[string][]Response{}
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

func fingerprint(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:4])
}
