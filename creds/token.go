package creds

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Provider-token timing (DESIGN.md "Configuration and credentials").
const (
	// TokenBucket is the width of the time bucket the iat of an APNs
	// provider token is aligned to. Every process holding the same key signs
	// the byte-identical token for the whole bucket, so a fleet of sidecars
	// looks to Apple like one provider, and the token changes once per
	// bucket: it is reused until it is (at most) 50 minutes old, inside
	// Apple's 20–60 minute refresh window.
	TokenBucket = 50 * time.Minute
	// TokenMinRefresh is the shortest time between two tokens this process
	// introduces on its own (after ExpiredProviderToken). Apple answers
	// TooManyProviderTokenUpdates below it.
	TokenMinRefresh = 20 * time.Minute
)

// ES256Deterministic is ES256 with RFC 6979 deterministic signatures
// (ecdsa.PrivateKey.Sign with a nil random source, Go ≥ 1.24): the same key,
// header and claims always give the same token bytes. jwt/v5's own ES256
// draws from crypto/rand. Verification is jwt's ES256.
var ES256Deterministic jwt.SigningMethod = es256Deterministic{}

type es256Deterministic struct{}

func (es256Deterministic) Alg() string { return "ES256" }

func (es256Deterministic) Verify(signingString string, sig []byte, key any) error {
	return jwt.SigningMethodES256.Verify(signingString, sig, key)
}

func (es256Deterministic) Sign(signingString string, key any) ([]byte, error) {
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("ES256: key is %T, want *ecdsa.PrivateKey", key)
	}
	digest := sha256.Sum256([]byte(signingString))
	der, err := priv.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("ES256 sign: %w", err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return nil, fmt.Errorf("ES256 sign: decoding signature: %w", err)
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}

// TokenSource signs and caches the APNs provider token of one key. It is
// safe for concurrent use.
type TokenSource struct {
	keyID, teamID string
	key           *ecdsa.PrivateKey
	now           func() time.Time
	onSign        func()

	// fast is the bucket token while no forced token is in use: read
	// without the lock by every request.
	fast atomic.Pointer[fastToken]

	mu         sync.Mutex
	bucketIAT  int64
	bucketTok  string
	bucketAuth string // "bearer " + bucketTok
	forcedIAT  int64
	forcedTok  string
	lastForced time.Time
}

// NewTokenSource makes the token source of one key. now is the clock (nil:
// time.Now); onSign, if set, is called once per signature made.
func NewTokenSource(keyID, teamID string, key *ecdsa.PrivateKey, now func() time.Time, onSign func()) *TokenSource {
	if now == nil {
		now = time.Now
	}
	return &TokenSource{keyID: keyID, teamID: teamID, key: key, now: now, onSign: onSign}
}

// KeyID returns the kid the tokens carry.
func (ts *TokenSource) KeyID() string { return ts.keyID }

// TeamID returns the iss the tokens carry.
func (ts *TokenSource) TeamID() string { return ts.teamID }

// Token returns the provider token to use now.
func (ts *TokenSource) Token() (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.currentLocked(ts.now())
}

type fastToken struct {
	tok, auth string
	until     int64 // unix seconds: the bucket's end
}

// TokenAndHeader returns the token to use now and its authorization header
// value ("bearer <token>"), cached with the token.
func (ts *TokenSource) TokenAndHeader() (token, header string, err error) {
	now := ts.now()
	if f := ts.fast.Load(); f != nil && now.Unix() < f.until {
		return f.tok, f.auth, nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	tok, err := ts.currentLocked(now)
	if err != nil {
		return "", "", err
	}
	if tok == ts.bucketTok {
		if ts.forcedTok == "" {
			ts.fast.Store(&fastToken{tok: tok, auth: ts.bucketAuth, until: ts.bucketIAT + int64(TokenBucket/time.Second)})
		}
		return tok, ts.bucketAuth, nil
	}
	return tok, "bearer " + tok, nil
}

func bucketStart(t time.Time) int64 {
	s := t.Unix()
	b := int64(TokenBucket / time.Second)
	return s - ((s%b)+b)%b
}

func (ts *TokenSource) currentLocked(now time.Time) (string, error) {
	b := bucketStart(now)
	// A token forced by ExpiredProviderToken stays in use while the bucket
	// that was refused lasts, and at least TokenMinRefresh, so this process
	// never introduces two tokens within 20 minutes.
	if ts.forcedTok != "" {
		if b <= ts.forcedIAT || now.Unix()-ts.forcedIAT < int64(TokenMinRefresh/time.Second) {
			return ts.forcedTok, nil
		}
		ts.forcedTok, ts.forcedIAT = "", 0
	}
	if ts.bucketTok != "" && ts.bucketIAT == b {
		return ts.bucketTok, nil
	}
	tok, err := ts.sign(b)
	if err != nil {
		return "", err
	}
	ts.bucketIAT, ts.bucketTok, ts.bucketAuth = b, tok, "bearer "+tok
	return tok, nil
}

// ErrRefreshTooSoon means a fresh token was already made less than
// TokenMinRefresh ago and was refused too: the cause is not the token's age
// (look at the clock or the key).
var ErrRefreshTooSoon = errors.New("a fresh provider token was already signed less than 20 minutes ago")

// Refresh is called when APNs answered ExpiredProviderToken to the token
// rejected. It returns the token to retry with: a new one whose iat is now
// (not the bucket: the bucket's token was refused), or the current token if
// another request already refreshed it. It refuses with ErrRefreshTooSoon
// when this process made a fresh token less than TokenMinRefresh ago.
func (ts *TokenSource) Refresh(rejected string) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.now()
	cur, err := ts.currentLocked(now)
	if err != nil {
		return "", err
	}
	if cur != rejected {
		return cur, nil
	}
	if !ts.lastForced.IsZero() && now.Sub(ts.lastForced) < TokenMinRefresh {
		return "", ErrRefreshTooSoon
	}
	tok, err := ts.sign(now.Unix())
	if err != nil {
		return "", err
	}
	ts.forcedTok, ts.forcedIAT, ts.lastForced = tok, now.Unix(), now
	ts.fast.Store(nil)
	return tok, nil
}

func (ts *TokenSource) sign(iat int64) (string, error) {
	t := jwt.NewWithClaims(ES256Deterministic, jwt.MapClaims{"iss": ts.teamID, "iat": iat})
	t.Header["kid"] = ts.keyID
	s, err := t.SignedString(ts.key)
	if err != nil {
		return "", fmt.Errorf("signing provider token for key %s: %w", ts.keyID, err)
	}
	if ts.onSign != nil {
		ts.onSign()
	}
	return s, nil
}

// DecodeToken returns the header and claims of a JWT without verifying it,
// for showing a token (dry runs, diagnosis) without its signature.
func DecodeToken(tok string) (header, claims map[string]any, err error) {
	mc := jwt.MapClaims{}
	t, _, err := jwt.NewParser().ParseUnverified(tok, mc)
	if err != nil {
		return nil, nil, fmt.Errorf("decoding token: %w", err)
	}
	return t.Header, mc, nil
}
