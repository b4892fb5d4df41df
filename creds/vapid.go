package creds

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// VAPID JWT timing (DESIGN.md "Configuration and credentials").
const (
	// VAPIDTokenLifetime is how far ahead a VAPID JWT's exp is set. Push
	// services refuse more than 24 hours.
	VAPIDTokenLifetime = 12 * time.Hour
	// VAPIDTokenRenewBefore: a cached JWT with less than this left is
	// replaced, so one JWT serves a (key, audience) for 11 hours, and Apple
	// (no new JWT more than once an hour) never sees churn.
	VAPIDTokenRenewBefore = time.Hour
	// vapidCacheMax bounds the audiences cached per key (push service
	// origins are few: FCM, Mozilla, Apple, WNS's regional hosts).
	vapidCacheMax = 256
)

// ErrNotVAPID is wrapped by every ParseVAPIDKey failure.
var ErrNotVAPID = errors.New("not a VAPID key pair")

// VAPIDKey is a validated VAPID key pair (RFC 8292): an ECDSA P-256 key
// whose public half subscribers use as applicationServerKey.
type VAPIDKey struct {
	Private *ecdsa.PrivateKey
	// Public is the 65-byte uncompressed P-256 point.
	Public []byte
	// PublicB64 is Public in unpadded base64url: the k= of the
	// Authorization header and the browser's applicationServerKey.
	PublicB64 string
	// Fingerprint is the first 8 hex digits of the SHA-256 of Public:
	// safe to log and show.
	Fingerprint string
	// Warnings are what was accepted but should be fixed (check shows
	// them): a key written in padded or standard base64, for instance.
	Warnings []string
}

// vapidJSON is the web-push CLI's format (web-push generate-vapid-keys
// --json).
type vapidJSON struct {
	PublicKey  string `json:"publicKey"`
	PrivateKey string `json:"privateKey"`
}

// ParseVAPIDKey parses a VAPID key pair: the web-push CLI's JSON
// {"publicKey","privateKey"} (unpadded base64url; padded or standard base64
// is accepted with a warning), or a PEM EC P-256 private key (PKCS#8
// "PRIVATE KEY" or SEC1 "EC PRIVATE KEY"). The public key must be a 65-byte
// uncompressed P-256 point that belongs to the private key; the errors name
// the usual mistakes (keys swapped, a public key alone, another curve).
func ParseVAPIDKey(data []byte) (*VAPIDKey, error) {
	s := bytes.TrimSpace(data)
	switch {
	case len(s) == 0:
		return nil, fmt.Errorf("%w: the file is empty", ErrNotVAPID)
	case s[0] == '{':
		return parseVAPIDJSON(s)
	case bytes.Contains(s, []byte("-----BEGIN")):
		return parseVAPIDPEM(s)
	}
	return nil, fmt.Errorf("%w: expected the web-push JSON {\"publicKey\": …, \"privateKey\": …} or a PEM EC private key", ErrNotVAPID)
}

func parseVAPIDJSON(s []byte) (*VAPIDKey, error) {
	var j vapidJSON
	dec := json.NewDecoder(bytes.NewReader(s))
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("%w: the JSON is malformed: %v", ErrNotVAPID, err)
	}
	if j.PublicKey == "" || j.PrivateKey == "" {
		return nil, fmt.Errorf("%w: the JSON needs both \"publicKey\" and \"privateKey\" (as web-push generate-vapid-keys --json writes them)", ErrNotVAPID)
	}
	var warnings []string
	pub, w, err := decodeVAPIDB64(j.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: publicKey %v", ErrNotVAPID, err)
	}
	if w != "" {
		warnings = append(warnings, "publicKey is written in "+w+"; browsers and the web-push tools use unpadded base64url ("+base64.RawURLEncoding.EncodeToString(pub)+")")
	}
	priv, w, err := decodeVAPIDB64(j.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: privateKey %v", ErrNotVAPID, err)
	}
	if w != "" {
		warnings = append(warnings, "privateKey is written in "+w+"; the web-push tools use unpadded base64url")
	}
	if len(priv) == 65 && priv[0] == 4 && len(pub) <= 32 {
		return nil, fmt.Errorf("%w: publicKey and privateKey are swapped (privateKey holds a 65-byte public point)", ErrNotVAPID)
	}
	if len(priv) > 32 || len(priv) < 16 {
		return nil, fmt.Errorf("%w: privateKey decodes to %d bytes; a P-256 private key is 32", ErrNotVAPID, len(priv))
	}
	if len(priv) < 32 {
		// Some generators drop leading zero bytes.
		priv = append(make([]byte, 32-len(priv)), priv...)
	}
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), priv)
	if err != nil {
		return nil, fmt.Errorf("%w: privateKey is not a valid P-256 private key: %v", ErrNotVAPID, err)
	}
	k, err := newVAPIDKey(key, pub)
	if err != nil {
		return nil, err
	}
	k.Warnings = warnings
	return k, nil
}

// decodeVAPIDB64 decodes base64url or base64, padded or not, and says
// which non-canonical form it was in ("" for unpadded base64url).
func decodeVAPIDB64(s string) ([]byte, string, error) {
	if strings.ContainsAny(s, " \t\r\n") {
		return nil, "", errors.New("contains white space")
	}
	t := strings.TrimRight(s, "=")
	std := strings.ContainsAny(t, "+/")
	if std && strings.ContainsAny(t, "-_") {
		return nil, "", errors.New("mixes the base64 and base64url alphabets")
	}
	enc, form := base64.RawURLEncoding, ""
	if std {
		enc, form = base64.RawStdEncoding, "standard base64"
	}
	if t != s {
		if form == "" {
			form = "padded base64url"
		} else {
			form = "padded standard base64"
		}
	}
	b, err := enc.DecodeString(t)
	if err != nil {
		return nil, "", errors.New("is not valid base64url")
	}
	return b, form, nil
}

func parseVAPIDPEM(s []byte) (*VAPIDKey, error) {
	var key *ecdsa.PrivateKey
	var pubOnly bool
	rest := s
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "EC PARAMETERS":
			continue
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotVAPID, err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%w: the key is a %T; VAPID needs an ECDSA P-256 key", ErrNotVAPID, k)
			}
			key = ek
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotVAPID, err)
			}
			key = k
		case "PUBLIC KEY":
			pubOnly = true
			continue
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w: the key is encrypted; give pushproxy the unencrypted key", ErrNotVAPID)
		case "RSA PRIVATE KEY":
			return nil, fmt.Errorf("%w: the file is an RSA key; VAPID needs an ECDSA P-256 key", ErrNotVAPID)
		default:
			return nil, fmt.Errorf("%w: unexpected PEM block %q (expected PRIVATE KEY or EC PRIVATE KEY)", ErrNotVAPID, block.Type)
		}
		if key != nil {
			break
		}
	}
	if key == nil {
		if pubOnly {
			return nil, fmt.Errorf("%w: the file holds only a public key; pushproxy needs the private key to sign", ErrNotVAPID)
		}
		return nil, fmt.Errorf("%w: the PEM block is truncated or damaged", ErrNotVAPID)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the key is on curve %s; VAPID needs P-256", ErrNotVAPID, key.Curve.Params().Name)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotVAPID, err)
	}
	return newVAPIDKey(key, pub)
}

func newVAPIDKey(key *ecdsa.PrivateKey, pub []byte) (*VAPIDKey, error) {
	if len(pub) != 65 || pub[0] != 4 {
		return nil, fmt.Errorf("%w: publicKey decodes to %d bytes; it must be a 65-byte uncompressed P-256 point (starting 0x04)", ErrNotVAPID, len(pub))
	}
	if _, err := ecdh.P256().NewPublicKey(pub); err != nil {
		return nil, fmt.Errorf("%w: publicKey is not a point on P-256", ErrNotVAPID)
	}
	derived, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotVAPID, err)
	}
	if !bytes.Equal(derived, pub) {
		return nil, fmt.Errorf("%w: publicKey does not belong to privateKey (the pair was mixed up with another; its public key is %s)", ErrNotVAPID, base64.RawURLEncoding.EncodeToString(derived))
	}
	sum := sha256.Sum256(pub)
	return &VAPIDKey{
		Private:     key,
		Public:      bytes.Clone(pub),
		PublicB64:   base64.RawURLEncoding.EncodeToString(pub),
		Fingerprint: hex.EncodeToString(sum[:4]),
	}, nil
}

// GenerateVAPIDKeyJSON makes a new key pair in the web-push CLI's JSON
// format ({"publicKey","privateKey"}, unpadded base64url), followed by a
// newline.
func GenerateVAPIDKeyJSON() ([]byte, error) {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(vapidJSON{
		PublicKey:  base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()),
		PrivateKey: base64.RawURLEncoding.EncodeToString(k.Bytes()),
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// ValidateSubject checks webpush.subject, the VAPID JWT's sub: a mailto:
// address or an https: URL where the push service can reach the operator.
// Apple refuses (BadJwtToken) anything else, spaces and angle brackets,
// localhost, and "mailto:mailto:…". The error says what is wrong with the
// value, without naming the setting or repeating the value: the caller
// does, once (webpush.subject "ops@example.com": needs the mailto: scheme …).
func ValidateSubject(s string) error {
	if s == "" {
		return errors.New("is empty; set it to mailto:you@example.com or an https:// URL where push services can reach you")
	}
	if strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\r\n<>") {
		return errors.New("must not contain spaces or angle brackets (Apple refuses it)")
	}
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "mailto:"):
		addr := s[len("mailto:"):]
		if strings.HasPrefix(strings.ToLower(addr), "mailto:") {
			return fmt.Errorf("says mailto: twice; write mailto:%s", addr[len("mailto:"):])
		}
		a, err := mail.ParseAddress(addr)
		if err != nil || a.Address != addr || a.Name != "" {
			return errors.New("is not a mailto: with one plain e-mail address")
		}
		at := strings.LastIndexByte(addr, '@')
		return subjectHost(addr[at+1:])
	case strings.HasPrefix(lower, "https:"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.Opaque != "" {
			return errors.New("is not an absolute https:// URL")
		}
		if u.User != nil {
			return errors.New("must not carry a user name or password")
		}
		return subjectHost(u.Hostname())
	case strings.Contains(s, "@") && !strings.Contains(s, ":"):
		return fmt.Errorf("needs the mailto: scheme: mailto:%s", s)
	}
	return errors.New("must start with mailto: or https:")
}

// SubjectError is the error of an invalid webpush.subject, naming the
// setting and the value once.
func SubjectError(subject string, err error) error {
	if subject == "" {
		return fmt.Errorf("webpush.subject %w", err)
	}
	return fmt.Errorf("webpush.subject %q %w", subject, err)
}

// subjectHost refuses hosts a push service cannot reach.
func subjectHost(h string) error {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" {
		return errors.New("has no host")
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".local") {
		return errors.New("names a local host (localhost, *.local) that push services cannot reach; Apple refuses it")
	}
	if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
		if ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() {
			return errors.New("names a private or loopback address that push services cannot reach")
		}
		return nil
	}
	if !strings.Contains(h, ".") {
		return errors.New("names a host without a domain (a push service could not reach it)")
	}
	return nil
}

// Audience returns the VAPID aud of an endpoint: its origin, scheme and
// host (lower case), and the port only when it is not the scheme's default;
// never a path or a trailing slash.
func Audience(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", errors.New("the endpoint is not an absolute http(s) URL")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return scheme + "://" + host, nil
	}
	return scheme + "://" + host + ":" + port, nil
}

// VAPIDSigner signs and caches the VAPID JWTs of one key: one JWT per
// audience, exp VAPIDTokenLifetime ahead, replaced when less than
// VAPIDTokenRenewBefore is left. It is safe for concurrent use.
type VAPIDSigner struct {
	key     *VAPIDKey
	subject string
	now     func() time.Time
	onSign  func()

	mu    sync.Mutex
	cache map[string]vapidEntry // by audience
}

type vapidEntry struct {
	header string // "vapid t=…, k=…"
	exp    time.Time
}

// NewVAPIDSigner makes the signer of one key. subject is webpush.subject
// (validate it with ValidateSubject first); now is the clock (nil:
// time.Now); onSign, if set, is called once per signature made.
func NewVAPIDSigner(key *VAPIDKey, subject string, now func() time.Time, onSign func()) *VAPIDSigner {
	if now == nil {
		now = time.Now
	}
	return &VAPIDSigner{key: key, subject: subject, now: now, onSign: onSign, cache: make(map[string]vapidEntry)}
}

// Key returns the signer's key.
func (s *VAPIDSigner) Key() *VAPIDKey { return s.key }

// Subject returns the sub the JWTs carry.
func (s *VAPIDSigner) Subject() string { return s.subject }

// Authorization returns the Authorization header value for a request to
// endpoint: "vapid t=<jwt>, k=<public key>" (RFC 8292 §3), from the cache
// when the audience's JWT has more than VAPIDTokenRenewBefore left.
func (s *VAPIDSigner) Authorization(endpoint string) (string, error) {
	aud, err := Audience(endpoint)
	if err != nil {
		return "", err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.cache[aud]; ok && e.exp.Sub(now) > VAPIDTokenRenewBefore {
		return e.header, nil
	}
	exp := now.Add(VAPIDTokenLifetime).Truncate(time.Second)
	t := jwt.NewWithClaims(ES256Deterministic, jwt.MapClaims{"aud": aud, "exp": exp.Unix(), "sub": s.subject})
	tok, err := t.SignedString(s.key.Private)
	if err != nil {
		return "", fmt.Errorf("signing the VAPID JWT of key %s: %w", s.key.Fingerprint, err)
	}
	if s.onSign != nil {
		s.onSign()
	}
	if len(s.cache) >= vapidCacheMax {
		for a, e := range s.cache {
			if e.exp.Sub(now) <= VAPIDTokenRenewBefore {
				delete(s.cache, a)
			}
		}
		if len(s.cache) >= vapidCacheMax {
			clear(s.cache)
		}
	}
	h := "vapid t=" + tok + ", k=" + s.key.PublicB64
	s.cache[aud] = vapidEntry{header: h, exp: exp}
	return h, nil
}

// ParseVAPIDAuthorization splits "vapid t=<jwt>, k=<key>" into its JWT and
// its key (the order of t and k and the spaces do not matter).
func ParseVAPIDAuthorization(h string) (token, key string, err error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "vapid") {
		return "", "", errors.New(`the authorization scheme is not "vapid"`)
	}
	for _, part := range strings.Split(rest, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", "", fmt.Errorf("malformed parameter %q", part)
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "t":
			token = strings.TrimSpace(val)
		case "k":
			key = strings.TrimSpace(val)
		}
	}
	if token == "" || key == "" {
		return "", "", errors.New("t= or k= is missing")
	}
	return token, key, nil
}
