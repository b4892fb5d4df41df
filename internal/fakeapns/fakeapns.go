// Package fakeapns is a fake Apple Push Notification service (APNs) provider API server for
// pushproxy's tests, benchmarks and its demo command.
//
// It speaks the real protocol over real sockets: TLS with a certificate signed by a
// certificate authority generated in memory at start (see [Server.CAPEM] and
// [Server.CertPool]), HTTP/2 negotiated with ALPN "h2", and POST /3/device/<token> requests
// carrying an ES256 provider token. It checks each request the way Apple documents it
// ("Sending notification requests to APNs", "Handling notification responses from APNs",
// "Establishing a token-based connection to APNs"), in this order, and answers with Apple's
// status and reason:
//
//  1. method POST (405 MethodNotAllowed), path /3/device/<token> (404 BadPath), token present
//     (400 MissingDeviceToken) and even-length hex of 64–200 characters (400 BadDeviceToken);
//  2. provider token: "authorization: bearer <jwt>" (403 MissingProviderToken), an ES256
//     signature by the key registered with [Server.AddKey] for its kid and iss equal to that
//     key's team (403 InvalidProviderToken), iat at most one hour old (403
//     ExpiredProviderToken) and at most 60 s in the future (403 InvalidProviderToken); a
//     connection is bound to the first key that authenticated on it (another key: 403
//     UnrelatedKeyIdInToken), and a different token of that key whose iat is less than 20
//     minutes after the previous distinct token's iat on that connection is refused (429
//     TooManyProviderTokenUpdates);
//  3. apns-push-type, "alert" when absent (400 InvalidPushType);
//  4. apns-topic: a bundle ID registered for the token's team plus the push type's suffix
//     (".voip", ".complication", ".pushkit.fileprovider", ".location-query", ".voip-ptt",
//     ".push-type.liveactivity", ".push-type.widgets", ".push-type.controls"; none for alert
//     and background; any "com.apple.mgmt." topic for mdm). A registered bundle with the
//     wrong suffix is 400 BadTopic, anything else 400 TopicDisallowed. When the header is
//     absent and the team has exactly one bundle ID, that bundle ID plus the push type's
//     suffix is used (as Apple uses a certificate's single topic); with several, 400
//     MissingTopic;
//  5. apns-priority 10, 5 or 1, and not 10 for background (400 BadPriority);
//  6. apns-expiration a non-negative integer (400 BadExpirationDate), apns-id a canonical
//     UUID (400 BadMessageId), apns-collapse-id at most 64 bytes (400 BadCollapseId), no
//     apns-* or authorization header given twice (400 DuplicateHeaders);
//  7. a body (400 PayloadEmpty) of at most 4096 bytes, 5120 for voip (413 PayloadTooLarge),
//     that is a JSON object with an "aps" dictionary (400 PayloadEmpty: Apple has no
//     separate reason for a payload without one).
//
// A request that passes is answered with what [Server.Script] queued for its device token,
// else the token's standing answer ([Server.ScriptAlways]), else the [Server.SetDefault]
// answer, else 200. Every answer carries an apns-id header (the
// request's, lower-cased, or a new UUID v4); errors carry a JSON body {"reason": …}, with
// "timestamp" (milliseconds since the epoch) for 410. Every request is recorded, rejected
// ones included ([Server.Requests]).
//
// Options.GoAwayAfter makes the fake end connections gracefully, the way APNs does from
// time to time: after that many streams on one connection it sends GOAWAY (streams already
// started complete) and closes the connection once they are done, so a client must carry
// on over a new connection without losing or repeating a notification.
//
// Not modelled: certificate-based authentication, the single stream a real APNs
// connection allows until its first request authenticates, IdleTimeout, and the sandbox vs.
// production distinction (one Server is one environment; start two for both).
//
// Device tokens and provider tokens are never logged in full: Options.Logf sees a short
// fingerprint (the first 8 hex digits of their SHA-256).
package fakeapns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/internal/h2trouble"
)

// Options configures a Server. The zero value is a server that behaves like APNs.
type Options struct {
	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS the server advertises;
	// 0 means 1000, as APNs advertises once a connection is authenticated.
	MaxConcurrentStreams uint32
	// GoAwayAfter, if > 0, makes the server begin a graceful shutdown of a connection
	// (GOAWAY with NO_ERROR; in-flight streams still complete) once that many streams have
	// arrived on it, and close the connection when they are done.
	GoAwayAfter int
	// GoAwayReason, if set, changes what GoAwayAfter does: at the Nth stream
	// the server sends its own GOAWAY whose last stream ID is that stream's,
	// with error code GoAwayCode and debug data {"reason": GoAwayReason} (as
	// APNs does), leaves that stream unanswered, and closes the connection
	// shortly after: the Nth stream fails (with the reason), later ones were
	// not processed.
	GoAwayReason string
	GoAwayCode   http2.ErrCode
	// ResetAfter, if > 0, makes the server drop a connection abruptly (TCP
	// RST, no GOAWAY) when that many streams have arrived on it: the stream
	// that reached the count and every stream still open are left unanswered,
	// as when a server or a middlebox dies mid-stream.
	ResetAfter int
	// DrainNew makes the server answer every new connection with its
	// SETTINGS and at once a GOAWAY whose last stream ID is 0 (debug data
	// {"reason": "Shutdown"}), then close it, as a draining load balancer
	// may: nothing sent on such a connection is processed. SetDrainNew
	// turns it on and off while the server runs.
	DrainNew bool
	// Now is the clock used for provider token age checks, 410 timestamps and
	// Request.Received; nil means time.Now. (Certificates use the wall clock.)
	Now func() time.Time
	// Logf, if set, receives one debug line per request and connection event. Device and
	// provider tokens appear only as fingerprints.
	Logf func(format string, args ...any)
	// Addr is the address to listen on, "127.0.0.1:PORT" (the certificate is valid for
	// 127.0.0.1, ::1 and localhost); empty means 127.0.0.1 on a free port.
	Addr string
}

// Response is a scripted answer (see [Server.Script] and [Server.SetDefault]).
type Response struct {
	// Status is the HTTP status to answer; 0 or 200 means success.
	Status int
	// Reason is the reason in the JSON body; when empty for an error status, Apple's usual
	// reason for that status is used (410 Unregistered, 429 TooManyRequests,
	// 500 InternalServerError, 503 ServiceUnavailable, …).
	Reason string
	// Timestamp is the 410 body's timestamp in milliseconds since the epoch; 0 means now
	// (by Options.Now) when Status is 410.
	Timestamp int64
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
	// Delay makes the server wait this long before answering, or until the request's
	// context ends (client reset, connection closed, Server closed), in which case nothing
	// is answered.
	Delay time.Duration
}

// Request records one request the server received, whether it was accepted or rejected.
type Request struct {
	Conn        uint64 // connection serial number, 1-based, in accept order
	StreamID    uint32 // HTTP/2 stream ID when it could be determined, else 0
	Method      string
	Path        string
	DeviceToken string      // from the path /3/device/<token>
	Header      http.Header // copy of the request headers
	Body        []byte
	JWT         string    // raw provider token from "authorization: bearer <jwt>"
	KeyID       string    // token header kid, even if the token was refused
	TeamID      string    // token claim iss, even if the token was refused
	IssuedAt    int64     // token claim iat
	Status      int       // status answered; 0 while pending or if the request ended unanswered
	Reason      string    // reason answered; "" on success
	APNsID      string    // apns-id answered
	Received    time.Time // arrival, by Options.Now
}

// Server is a running fake APNs server. Create it with [New]; stop it with [Server.Close].
type Server struct {
	opts     Options
	now      func() time.Time
	maxConc  uint32
	ln       net.Listener
	url      string
	caPEM    []byte
	pool     *x509.CertPool
	errorLog *log.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	tlsConf  *tls.Config

	wg sync.WaitGroup // every goroutine the server starts

	drainNew atomic.Bool // see Options.DrainNew

	mu       sync.Mutex
	closed   bool
	conns    map[*conn]struct{}
	nconns   uint64
	keys     map[string]*providerKey // by key ID
	keyOrder []string                // key IDs in registration order (stable topic order)
	scripts  map[string][]Response   // by lower-case device token
	always   map[string]Response     // standing answers, by lower-case device token
	def      *Response
	records  []*Request
	verified map[string]bool      // raw tokens whose signature already verified
	decoded  map[string]tokenInfo // authorization header → decoded token
}

type providerKey struct {
	team   string
	pub    *ecdsa.PublicKey
	topics []string
}

// conn is the state of one accepted connection.
type conn struct {
	id       uint64
	raw      net.Conn
	fw       *h2trouble.FrameWriter // the decrypted connection x/net writes frames to
	streams  atomic.Int64
	shutdown func() // starts the graceful shutdown (GOAWAY); set before serving

	mu         sync.Mutex
	kid, team  string // key and team the connection is bound to, once one authenticated
	lastJWT    string // last distinct valid token seen on this connection
	maxStream  uint32 // highest stream ID recorded
	goAwayLast uint32 // last stream ID of our own GOAWAY; 0 before one
	// expiredJWT is a token this connection refused as ExpiredProviderToken:
	// replacing it is a refresh Apple asked for, not churn.
	expiredJWT string
	lastIat    int64
}

// New starts a fake APNs server listening on Options.Addr, by default 127.0.0.1 on a free
// port.
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
		return nil, fmt.Errorf("fakeapns: listen: %w", err)
	}
	s := &Server{
		opts:     opts,
		now:      opts.Now,
		maxConc:  opts.MaxConcurrentStreams,
		ln:       ln,
		url:      "https://" + ln.Addr().String(),
		caPEM:    caPEM,
		pool:     pool,
		conns:    make(map[*conn]struct{}),
		keys:     make(map[string]*providerKey),
		scripts:  make(map[string][]Response),
		always:   make(map[string]Response),
		verified: make(map[string]bool),
		decoded:  make(map[string]tokenInfo),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxConc == 0 {
		s.maxConc = 1000
	}
	s.drainNew.Store(opts.DrainNew)
	s.errorLog = log.New(logWriter{s}, "", 0)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tlsConf = tlsConf
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// URL is the server's base URL, "https://127.0.0.1:PORT".
func (s *Server) URL() string { return s.url }

// CAPEM is the PEM encoding of the certificate authority that signed the server's
// certificate; clients add it to their RootCAs.
func (s *Server) CAPEM() []byte { return bytes.Clone(s.caPEM) }

// CertPool is a pool holding only the server's certificate authority.
func (s *Server) CertPool() *x509.CertPool { return s.pool.Clone() }

// Close stops the listener, closes every connection and waits until every goroutine the
// server started has returned. Requests waiting on a Delay end unanswered.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	s.cancel()
	err := s.ln.Close()
	for _, c := range conns {
		c.raw.Close()
	}
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// AddKey registers a provider key: tokens signed by pub whose header kid is keyID and whose
// claim iss is teamID are accepted. topics are bundle IDs the team may push to (apns-topic
// base values; push-type suffixes such as ".voip" are added per push type). The topics of
// all keys of one team are pooled. Adding a key ID again replaces it.
func (s *Server) AddKey(teamID, keyID string, pub *ecdsa.PublicKey, topics ...string) {
	s.mu.Lock()
	clear(s.verified)
	defer s.mu.Unlock()
	if _, ok := s.keys[keyID]; !ok {
		s.keyOrder = append(s.keyOrder, keyID)
	}
	s.keys[keyID] = &providerKey{team: teamID, pub: pub, topics: append([]string(nil), topics...)}
}

// RemoveKey unregisters a key: later tokens with this kid are refused with 403
// InvalidProviderToken, on existing connections too.
func (s *Server) RemoveKey(keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.verified)
	delete(s.keys, keyID)
	for i, k := range s.keyOrder {
		if k == keyID {
			s.keyOrder = append(s.keyOrder[:i], s.keyOrder[i+1:]...)
			break
		}
	}
}

// Conns is the number of connections accepted so far.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.nconns)
}

// OpenConns is the number of connections open now.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// logWriter routes the HTTP/2 server's own error log to Options.Logf (or nowhere).
type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.logf("fakeapns: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		raw, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
				return
			}
			s.logf("fakeapns: accept: %v", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			raw.Close()
			return
		}
		s.nconns++
		c := &conn{id: s.nconns, raw: raw}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
}

// serveConn completes the TLS handshake and serves HTTP/2 on one connection until it ends.
// Each connection gets its own http.Server and http2.Server so that GoAwayAfter can shut
// down exactly that connection gracefully (http.Server.Shutdown runs the GOAWAY hook that
// http2.ConfigureServer registers for the connections of that http2.Server only).
func (s *Server) serveConn(c *conn) {
	defer func() {
		c.raw.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	tc := tls.Server(c.raw, s.tlsConf)
	hctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		s.logf("fakeapns: conn %d: TLS handshake: %v", c.id, err)
		return
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		s.logf("fakeapns: conn %d: ALPN negotiated %q, APNs requires h2", c.id, p)
		return
	}
	if s.drainNew.Load() {
		s.refuseConn(c, tc)
		return
	}
	hs := &http.Server{ErrorLog: s.errorLog}
	h2s := &http2.Server{MaxConcurrentStreams: s.maxConc}
	if err := http2.ConfigureServer(hs, h2s); err != nil {
		s.logf("fakeapns: conn %d: configure HTTP/2: %v", c.id, err)
		return
	}
	c.shutdown = func() {
		s.logf("fakeapns: conn %d: GOAWAY after %d streams", c.id, s.opts.GoAwayAfter)
		// Returns at once: hs serves no connection itself; the hook sends GOAWAY.
		_ = hs.Shutdown(s.ctx)
	}
	s.logf("fakeapns: conn %d: open from %s", c.id, c.raw.RemoteAddr())
	c.fw = h2trouble.NewFrameWriter(tc)
	h2s.ServeConn(c.fw, &http2.ServeConnOpts{
		Context:    s.ctx,
		BaseConfig: hs,
		Handler:    http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.handle(c, w, r) }),
	})
	s.logf("fakeapns: conn %d: closed after %d streams", c.id, c.streams.Load())
}

// SetDrainNew turns Options.DrainNew on or off for connections accepted
// from now on.
func (s *Server) SetDrainNew(on bool) { s.drainNew.Store(on) }

// refuseConn sends SETTINGS and GOAWAY (last stream 0, reason Shutdown)
// on a new connection, reads what the client sends for a moment (so that
// its requests are on the wire before the close), and closes it.
func (s *Server) refuseConn(c *conn, tc *tls.Conn) {
	fr := http2.NewFramer(tc, nil)
	_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: s.maxConc})
	_ = fr.WriteGoAway(0, http2.ErrCodeNo, []byte(`{"reason":"Shutdown"}`))
	s.logf("fakeapns: conn %d: refused at once with GOAWAY last=0", c.id)
	_ = tc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, _ = io.Copy(io.Discard, tc)
}

// fingerprint shows a secret as the first 8 hex digits of its SHA-256.
func fingerprint(v string) string {
	if v == "" {
		return "-"
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:4])
}
