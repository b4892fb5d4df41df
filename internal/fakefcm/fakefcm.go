// Package fakefcm is a fake Firebase Cloud Messaging HTTP v1 API, with the
// Google OAuth 2.0 token endpoint in front of it, for pushproxy's tests,
// benchmarks and its demo command.
//
// It speaks the real protocols over real sockets: TLS with a certificate
// signed by a certificate authority generated in memory at start (see
// [Server.CAPEM] and [Server.CertPool]), HTTP/2 negotiated with ALPN "h2"
// (HTTP/1.1 too, as Google's front ends accept it).
//
// POST /token is the JWT-bearer grant (RFC 7523) as Google runs it:
// grant_type urn:ietf:params:oauth:grant-type:jwt-bearer and an assertion
// that is an RS256 JWT whose signature verifies with the public half of a
// key registered with [Server.AddServiceAccount] (the one its header's kid
// names; without a kid, as Google's own Node.js libraries send it, any key
// of the account its iss names), whose iss is the key's service account, whose aud is the
// token endpoint (the fake's own /token URL or Google's
// https://oauth2.googleapis.com/token), whose scope includes
// firebase.messaging (or cloud-platform), whose iat is not in the future
// (beyond a minute's leeway) and whose exp is after now and at most an hour
// after iat. A refusal is 400 {"error": "invalid_grant" | "invalid_scope" |
// "unsupported_grant_type" | "invalid_request", "error_description": …}
// in Google's words. An accepted assertion is answered {"access_token",
// "expires_in", "token_type": "Bearer"}; access tokens expire after
// Options.TokenLifetime (3599 s) and can be revoked ([Server.RevokeTokens]).
//
// POST /v1/projects/{project}/messages:send is checked the way FCM checks
// it, in this order, and refused with Google's error JSON ({"error": {code,
// message, status, details: [FcmError, BadRequest, ErrorInfo]}}):
//
//  1. Authorization: Bearer <a live access token> (401 UNAUTHENTICATED, no
//     FcmError detail);
//  2. the project exists, i.e. some registered account names it (404
//     NOT_FOUND), its API is enabled (403 PERMISSION_DENIED, ErrorInfo
//     SERVICE_DISABLED; see [Server.DisableAPI]), and the token's account
//     may send for it (403 PERMISSION_DENIED, IAM_PERMISSION_DENIED);
//  3. the body is {"message": {…}, "validate_only": bool} with no other
//     field, the message has exactly one of token, topic, condition, and no
//     field FCM does not know at the top (400 INVALID_ARGUMENT with a
//     BadRequest field violation);
//  4. the token is 1 to 4096 characters of [A-Za-z0-9_:-] (400
//     INVALID_ARGUMENT, FcmError INVALID_ARGUMENT, "The registration token
//     is not a valid FCM registration token");
//  5. data (message.data and android.data) holds only string values and no
//     reserved key (from, notification, message_type, google.*, gcm.*);
//     android.priority is NORMAL or HIGH; android.ttl is "<seconds>s" of at
//     most 28 days; android.notification.notification_count is a
//     non-negative integer (400 INVALID_ARGUMENT with the field violation);
//  6. the message without its token is at most 4096 bytes of JSON (400
//     INVALID_ARGUMENT, "Message is too big");
//  7. a token bound to another project ([Server.BindToken]) is 403
//     SENDER_ID_MISMATCH.
//
// A request that passes is answered with what [Server.Script] queued for
// its registration token, else the token's standing answer
// ([Server.ScriptAlways]), else 200 {"name":
// "projects/<project>/messages/<id>"} (with validate_only, the name FCM
// gives a message it did not send: "projects/<project>/messages/fake_message_id").
// Every request and token fetch is recorded ([Server.Requests],
// [Server.TokenFetches]). Logs show tokens, access tokens and assertions as
// fingerprints only.
//
// Options.Trouble (or [Server.SetTrouble] while it runs) makes the fake's
// HTTP/2 connections misbehave as Google's front ends may (see
// [h2trouble.Trouble]): a graceful GOAWAY after every N streams, a GOAWAY
// with an error code and a reason, a TCP reset, or a GOAWAY on every new
// connection. It applies to every HTTP/2 stream, token fetches included
// (the fake serves both on one address); a stream refused that way is not
// recorded. HTTP/1.1 connections are not affected.
package fakefcm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pushproxy/pushproxy/internal/h2trouble"
	"github.com/pushproxy/pushproxy/internal/testca"
)

// Google's names for its token endpoint: an assertion may name either as
// its aud.
const (
	GoogleTokenURL   = "https://oauth2.googleapis.com/token"
	GoogleTokenURLV4 = "https://www.googleapis.com/oauth2/v4/token"
	// JWTBearerGrant is RFC 7523's grant_type.
	JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// Scope is FCM's OAuth scope; CloudPlatformScope is accepted too.
	Scope              = "https://www.googleapis.com/auth/firebase.messaging"
	CloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform"
	// MaxMessage is FCM's limit on a message's JSON without the token.
	MaxMessage = 4096
	// ValidateOnlyName is the message id of a validate_only answer.
	ValidateOnlyName = "fake_message_id"
)

// Options configures a Server. The zero value behaves like FCM.
type Options struct {
	// Now is the clock the token endpoint checks iat/exp with and access
	// tokens expire by; nil means time.Now. (Certificates use the wall
	// clock.)
	Now func() time.Time
	// TokenLifetime is the expires_in of access tokens; 0 means 3599 s,
	// as Google answers.
	TokenLifetime time.Duration
	// Logf, if set, receives one line per request. Secrets appear only as
	// fingerprints.
	Logf func(format string, args ...any)
	// Addr is the address to listen on; empty means 127.0.0.1 on a free
	// port.
	Addr string
	// MaxRecords, if > 0, bounds the send requests kept for Requests: the
	// oldest are dropped (for benchmarks and the demo). 0 keeps them all.
	MaxRecords int
	// Trouble makes HTTP/2 connections misbehave (GOAWAY, reset, drain;
	// see h2trouble.Trouble), for sends and token fetches alike; the zero
	// value is none. Streams it refuses are not recorded.
	// Server.SetTrouble changes it while the server runs.
	Trouble h2trouble.Trouble
}

// Response is a scripted answer to a send. A zero Status is 200. An
// error's body is Google's JSON made from Status, RPCStatus, ErrorCode
// (the FcmError detail; none when empty), Message, FieldViolations and
// InfoReason, unless Body is set, which is sent verbatim.
type Response struct {
	Status          int
	RPCStatus       string // error.status ("NOT_FOUND"); "" → the usual one for Status
	ErrorCode       string // FcmError errorCode; "" → no FcmError detail
	Message         string
	FieldViolations []FieldViolation
	InfoReason      string // a google.rpc.ErrorInfo detail's reason, if set
	Body            string
	RetryAfter      string
	// Delay makes the fake wait this long (or until the request is
	// abandoned) before answering.
	Delay time.Duration
}

// FieldViolation is one entry of a google.rpc.BadRequest detail.
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// TokenResponse is a scripted answer of the token endpoint (see
// ScriptToken): an OAuth error, or an HTTP status with a body; one with
// only a Delay answers as usual after the delay.
type TokenResponse struct {
	Status      int    // 0 → 400 when Error is set
	Error       string // "invalid_grant" …
	Description string
	Body        string // verbatim, if set
	Delay       time.Duration
}

// Request records one send request, accepted or refused.
type Request struct {
	Conn         int
	Proto        string
	Method, Path string
	Project      string
	Header       http.Header
	Body         []byte
	Message      map[string]any // the decoded message, nil if the body was not JSON
	Token        string         // message.token
	ValidateOnly bool
	AccessToken  string // the bearer token sent
	Account      string // the service account the access token was issued to
	Status       int
	ErrorCode    string // FcmError errorCode or google.rpc status answered; "" on success
	Reason       string // the fake's words for a refusal
	Name         string // the message name answered
	Received     time.Time
}

// TokenFetch records one request to the token endpoint.
type TokenFetch struct {
	Proto       string
	Assertion   string
	Header      map[string]any // the JWT header
	Claims      map[string]any // the JWT claims
	Account     string         // iss
	KeyID       string
	Status      int
	Error       string // OAuth error answered, "" on success
	Description string
	AccessToken string
	Received    time.Time
}

type account struct {
	email    string
	keys     map[string]*rsa.PublicKey // by private_key_id
	projects map[string]bool
}

type accessToken struct {
	account string
	expiry  time.Time
}

// Server is a running fake FCM.
type Server struct {
	opts  Options
	now   func() time.Time
	ln    net.Listener
	url   string
	caPEM []byte
	pool  *x509.CertPool
	hs    *http.Server
	conns testca.Conns // numbers the accepted connections
	h2    *h2trouble.Server

	mu           sync.Mutex
	accounts     map[string]*account // by email
	keyOwner     map[string]string   // private_key_id → email
	disabled     map[string]bool     // projects whose API is disabled
	bound        map[string]string   // registration token → project
	tokens       map[string]accessToken
	scripts      map[string][]Response
	always       map[string]Response
	tokenScripts []TokenResponse
	records      []*Request
	fetches      []*TokenFetch
	nmsg         int
}

// New starts a fake FCM on Options.Addr, by default 127.0.0.1 on a free
// port.
func New(opts Options) (*Server, error) {
	tlsConf, caPEM, pool, err := testca.New("fakefcm", []string{"localhost", "fcm.googleapis.com", "oauth2.googleapis.com"}, "h2", "http/1.1")
	if err != nil {
		return nil, fmt.Errorf("fakefcm: certificates: %w", err)
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakefcm: listen: %w", err)
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = 3599 * time.Second
	}
	s := &Server{
		opts: opts, now: opts.Now, ln: ln, url: "https://" + ln.Addr().String(), caPEM: caPEM, pool: pool,
		accounts: map[string]*account{}, keyOwner: map[string]string{}, disabled: map[string]bool{},
		bound: map[string]string{}, tokens: map[string]accessToken{}, scripts: map[string][]Response{},
		always: map[string]Response{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", s.handleToken)
	mux.HandleFunc("/v1/projects/", s.handleSend)
	s.hs = &http.Server{
		Handler:           mux,
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

// URL is "https://127.0.0.1:PORT": pushproxy's upstream.fcm_url.
func (s *Server) URL() string { return s.url }

// TokenURL is the token endpoint, URL()+"/token": upstream.fcm_token_url,
// or a service-account file's token_uri.
func (s *Server) TokenURL() string { return s.url + "/token" }

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

// AddServiceAccount registers a service-account key: assertions signed by
// the key (header kid keyID, iss email) are accepted, and the account may
// send for the given projects (which then exist). Calling it again for the
// same account adds a key (a rotation: both keys work until one is
// removed).
func (s *Server) AddServiceAccount(email, keyID string, pub *rsa.PublicKey, projects ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[email]
	if a == nil {
		a = &account{email: email, keys: map[string]*rsa.PublicKey{}, projects: map[string]bool{}}
		s.accounts[email] = a
	}
	a.keys[keyID] = pub
	s.keyOwner[keyID] = email
	for _, p := range projects {
		a.projects[p] = true
	}
}

// RemoveKey deletes a key, as the console does: its assertions are then
// refused invalid_grant (access tokens already issued keep working until
// they expire, as Google's do).
func (s *Server) RemoveKey(keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[s.keyOwner[keyID]]; a != nil {
		delete(a.keys, keyID)
	}
	delete(s.keyOwner, keyID)
}

// AddProject makes a project exist without any account allowed to send
// for it (so sends are 403 PERMISSION_DENIED rather than 404).
func (s *Server) AddProject(project string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[""]
	if a == nil {
		a = &account{keys: map[string]*rsa.PublicKey{}, projects: map[string]bool{}}
		s.accounts[""] = a
	}
	a.projects[project] = true
}

// DisableAPI makes sends for a project 403 PERMISSION_DENIED
// (SERVICE_DISABLED), as when the FCM API is not enabled.
func (s *Server) DisableAPI(project string, disabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.disabled[project] = disabled
}

// BindToken says which project a registration token was issued for:
// sends for any other project are 403 SENDER_ID_MISMATCH.
func (s *Server) BindToken(token, project string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bound[token] = project
}

// RevokeTokens makes every access token issued so far invalid (sends with
// one are 401 UNAUTHENTICATED), as when Google revokes them.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]accessToken{}
}

// Script queues answers for a registration token; each send that passes
// validation consumes the next.
func (s *Server) Script(token string, rs ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[token] = append(s.scripts[token], rs...)
}

// ScriptAlways sets the answer for every send to a token once its queue
// is empty; a zero Response removes it.
func (s *Server) ScriptAlways(token string, r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Status == 0 && r.Body == "" && r.Delay == 0 {
		delete(s.always, token)
		return
	}
	s.always[token] = r
}

// ScriptToken queues answers of the token endpoint; each token request
// consumes the next (before the assertion is checked).
func (s *Server) ScriptToken(rs ...TokenResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenScripts = append(s.tokenScripts, rs...)
}

// Requests returns a copy of every send request so far, in order.
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

// TokenFetches returns a copy of every token request so far, in order.
func (s *Server) TokenFetches() []TokenFetch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenFetch, len(s.fetches))
	for i, f := range s.fetches {
		out[i] = *f
	}
	return out
}

// Reset forgets recorded requests, token fetches and scripted answers.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records, s.fetches, s.tokenScripts = nil, nil, nil
	s.scripts, s.always = map[string][]Response{}, map[string]Response{}
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Fingerprint is how the fake shows a secret: the first 8 hex digits of
// its SHA-256.
func Fingerprint(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:4])
}

func (s *Server) connOf(r *http.Request) int { return s.conns.Of(r) }

func newSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
