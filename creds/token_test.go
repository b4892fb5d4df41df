package creds_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushproxy/pushproxy/creds"
)

func TestTokenTiming(t *testing.T) {
	if creds.TokenBucket != 50*time.Minute {
		t.Errorf("TokenBucket = %v, want 50m (inside Apple's 20–60 minute window)", creds.TokenBucket)
	}
	if creds.TokenMinRefresh != 20*time.Minute {
		t.Errorf("TokenMinRefresh = %v, want 20m", creds.TokenMinRefresh)
	}
}

// fp shows a token in failure messages without the token itself.
func fp(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:4])
}

// verify checks tok with jwt/v5's standard ES256 against pub and returns
// its header and claims.
func verify(t *testing.T, tok string, pub *ecdsa.PublicKey) (map[string]any, jwt.MapClaims) {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		if tk.Method != jwt.SigningMethodES256 {
			t.Errorf("parsed with %v, want jwt.SigningMethodES256", tk.Method)
		}
		return pub, nil
	}, jwt.WithValidMethods([]string{"ES256"}))
	if err != nil {
		t.Fatalf("token %s does not verify with ES256: %v", fp(tok), err)
	}
	return parsed.Header, claims
}

func iatOf(t *testing.T, tok string) int64 {
	t.Helper()
	_, claims, err := creds.DecodeToken(tok)
	if err != nil {
		t.Fatalf("DecodeToken: %v", err)
	}
	f, ok := claims["iat"].(float64)
	if !ok {
		t.Fatalf("iat = %#v", claims["iat"])
	}
	return int64(f)
}

func TestTokenShapeAndSignature(t *testing.T) {
	key := newP256(t)
	b := bucketAligned()
	clk := newClock(b.Add(17*time.Minute + 3*time.Second))
	ts := creds.NewTokenSource(testKeyID, testTeamID, key, clk.Now, nil)
	if ts.KeyID() != testKeyID || ts.TeamID() != testTeamID {
		t.Errorf("KeyID/TeamID = %q/%q", ts.KeyID(), ts.TeamID())
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}

	header, claims := verify(t, tok, &key.PublicKey)
	if header["alg"] != "ES256" || header["kid"] != testKeyID {
		t.Errorf("header = %v, want alg ES256 and kid %s", header, testKeyID)
	}
	if claims["iss"] != testTeamID {
		t.Errorf("iss = %v, want %s", claims["iss"], testTeamID)
	}
	if got := iatOf(t, tok); got != b.Unix() {
		t.Errorf("iat = %d, want the bucket start %d", got, b.Unix())
	}
	if got := iatOf(t, tok); got%int64(creds.TokenBucket/time.Second) != 0 {
		t.Errorf("iat %d is not aligned to the bucket", got)
	}
	// Apple wants exactly iss and iat; nothing that expires or changes per request.
	for k := range claims {
		if k != "iss" && k != "iat" {
			t.Errorf("unexpected claim %q", k)
		}
	}

	// The raw header and claims: compact JSON, fixed key order.
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	rawHeader, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var hm map[string]any
	if err := json.Unmarshal(rawHeader, &hm); err != nil {
		t.Fatal(err)
	}
	if hm["alg"] != "ES256" || hm["kid"] != testKeyID {
		t.Errorf("raw header %s", rawHeader)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Errorf("signature is %d bytes (%v), want 64 (r‖s)", len(sig), err)
	}

	// A different key does not verify it.
	other := newP256(t)
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &other.PublicKey, nil }); err == nil {
		t.Errorf("token verifies with another key")
	}
}

func TestTokenDeterministic(t *testing.T) {
	key := newP256(t)
	b := bucketAligned()
	c1 := newClock(b.Add(time.Minute))
	c2 := newClock(b.Add(49*time.Minute + 59*time.Second))
	t1, err := creds.NewTokenSource(testKeyID, testTeamID, key, c1.Now, nil).Token()
	if err != nil {
		t.Fatal(err)
	}
	t2, err := creds.NewTokenSource(testKeyID, testTeamID, key, c2.Now, nil).Token()
	if err != nil {
		t.Fatal(err)
	}
	if t1 != t2 {
		t.Errorf("two token sources, same key and bucket: %s != %s", fp(t1), fp(t2))
	}

	// Another bucket, key, key ID or team gives another token.
	c3 := newClock(b.Add(creds.TokenBucket))
	for name, ts := range map[string]*creds.TokenSource{
		"next bucket": creds.NewTokenSource(testKeyID, testTeamID, key, c3.Now, nil),
		"other key":   creds.NewTokenSource(testKeyID, testTeamID, newP256(t), c1.Now, nil),
		"other kid":   creds.NewTokenSource("ZZZ123DEFG", testTeamID, key, c1.Now, nil),
		"other team":  creds.NewTokenSource(testKeyID, "ZZZ123GHIJ", key, c1.Now, nil),
	} {
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		if tok == t1 {
			t.Errorf("%s: same token", name)
		}
	}
}

func TestES256Deterministic(t *testing.T) {
	key := newP256(t)
	m := creds.ES256Deterministic
	if m.Alg() != "ES256" {
		t.Errorf("Alg() = %q", m.Alg())
	}
	s1, err := m.Sign("header.claims", key)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := m.Sign("header.claims", key)
	if err != nil {
		t.Fatal(err)
	}
	if string(s1) != string(s2) || len(s1) != 64 {
		t.Errorf("signatures differ or are not 64 bytes: %d, %d", len(s1), len(s2))
	}
	if err := jwt.SigningMethodES256.Verify("header.claims", s1, &key.PublicKey); err != nil {
		t.Errorf("jwt ES256 does not verify it: %v", err)
	}
	if err := m.Verify("header.claims", s1, &key.PublicKey); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := m.Verify("header.claimz", s1, &key.PublicKey); err == nil {
		t.Errorf("Verify accepted a signature over other bytes")
	}
	if _, err := m.Sign("x", "not a key"); err == nil {
		t.Errorf("Sign accepted a string as key")
	}
}

func TestTokenReuseAndBuckets(t *testing.T) {
	key := newP256(t)
	b := bucketAligned()
	clk := newClock(b.Add(time.Second))
	var signs counter
	ts := creds.NewTokenSource(testKeyID, testTeamID, key, clk.Now, signs.Inc)

	first, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if signs.N() != 1 {
		t.Fatalf("signs = %d after the first token", signs.N())
	}
	// Reused within the bucket, whatever the time inside it.
	for _, d := range []time.Duration{time.Second, 10 * time.Minute, 30 * time.Minute, 49*time.Minute + 59*time.Second} {
		clk.Set(b.Add(d))
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		if tok != first {
			t.Errorf("at bucket+%v: a new token within the bucket", d)
		}
	}
	if signs.N() != 1 {
		t.Errorf("signs = %d within one bucket, want 1", signs.N())
	}

	// Concurrent callers within the bucket share the token.
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if tok, err := ts.Token(); err != nil || tok != first {
				t.Errorf("concurrent Token: %v / different token", err)
			}
		})
	}
	wg.Wait()
	if signs.N() != 1 {
		t.Errorf("signs = %d after concurrent calls, want 1", signs.N())
	}

	// The next bucket: a new token, iat at its start.
	clk.Set(b.Add(creds.TokenBucket))
	next, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if next == first {
		t.Errorf("same token in the next bucket")
	}
	if got := iatOf(t, next); got != b.Add(creds.TokenBucket).Unix() {
		t.Errorf("iat = %d, want %d", got, b.Add(creds.TokenBucket).Unix())
	}
	if signs.N() != 2 {
		t.Errorf("signs = %d, want 2", signs.N())
	}
	verify(t, next, &key.PublicKey)
}

func TestTokenRefresh(t *testing.T) {
	key := newP256(t)
	b := bucketAligned()
	// Start 10 s before the end of a bucket, so that the forced token
	// crosses a bucket boundary.
	clk := newClock(b.Add(creds.TokenBucket - 10*time.Second))
	var signs counter
	ts := creds.NewTokenSource(testKeyID, testTeamID, key, clk.Now, signs.Inc)

	bucketTok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	if iatOf(t, bucketTok) != b.Unix() {
		t.Fatalf("bucket token iat %d", iatOf(t, bucketTok))
	}

	// APNs refused the bucket token: a new token with iat = now.
	refreshedAt := clk.Now()
	fresh, err := ts.Refresh(bucketTok)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if fresh == bucketTok {
		t.Fatalf("Refresh returned the rejected token")
	}
	if got := iatOf(t, fresh); got != refreshedAt.Unix() {
		t.Errorf("refreshed iat = %d, want now %d (not the bucket)", got, refreshedAt.Unix())
	}
	verify(t, fresh, &key.PublicKey)
	if signs.N() != 2 {
		t.Errorf("signs = %d after Refresh, want 2", signs.N())
	}

	// A request that still holds the old token and is refused too gets the
	// fresh one, without a new signature.
	again, err := ts.Refresh(bucketTok)
	if err != nil || again != fresh {
		t.Errorf("Refresh(stale) = %s, %v; want the fresh token", fp(again), err)
	}
	if signs.N() != 2 {
		t.Errorf("Refresh(stale) signed: signs = %d", signs.N())
	}

	// The fresh token stays in use across the bucket boundary for at least
	// TokenMinRefresh.
	for _, d := range []time.Duration{0, 10 * time.Second, time.Minute, creds.TokenMinRefresh - time.Second} {
		clk.Set(refreshedAt.Add(d))
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		if tok != fresh {
			t.Errorf("at refresh+%v: token changed (iat %d) before TokenMinRefresh", d, iatOf(t, tok))
		}
	}

	// The fresh token is refused as well, within 20 minutes: the cause is not
	// the token's age.
	clk.Set(refreshedAt.Add(creds.TokenMinRefresh - time.Second))
	if tok, err := ts.Refresh(fresh); !errors.Is(err, creds.ErrRefreshTooSoon) {
		t.Errorf("second Refresh within 20 minutes = %s, %v; want ErrRefreshTooSoon", fp(tok), err)
	}
	if signs.N() != 2 {
		t.Errorf("refused Refresh signed: signs = %d", signs.N())
	}

	// After TokenMinRefresh, back to the bucket's token.
	clk.Set(refreshedAt.Add(creds.TokenMinRefresh))
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	wantIAT := b.Add(creds.TokenBucket).Unix()
	if got := iatOf(t, tok); got != wantIAT {
		t.Errorf("after TokenMinRefresh iat = %d, want the bucket start %d", got, wantIAT)
	}
	// It is the token every other process signs for this bucket.
	other, err := creds.NewTokenSource(testKeyID, testTeamID, key, clk.Now, nil).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok != other {
		t.Errorf("back to bucket tokens, but not the shared one")
	}
	if signs.N() != 3 {
		t.Errorf("signs = %d, want 3", signs.N())
	}

	// Once 20 minutes have passed since the last refresh, a refusal may
	// refresh again.
	again, err = ts.Refresh(tok)
	if err != nil {
		t.Fatalf("Refresh after 20 minutes: %v", err)
	}
	if iatOf(t, again) != clk.Now().Unix() || again == tok {
		t.Errorf("second refresh: iat %d", iatOf(t, again))
	}
	if signs.N() != 4 {
		t.Errorf("signs = %d, want 4", signs.N())
	}
}

func TestTokenRefreshEarlyInBucket(t *testing.T) {
	// Refreshed early in a bucket: the fresh token stays until that bucket
	// ends (older than TokenMinRefresh by then), then the next bucket's.
	key := newP256(t)
	b := bucketAligned()
	clk := newClock(b.Add(time.Minute))
	ts := creds.NewTokenSource(testKeyID, testTeamID, key, clk.Now, nil)
	tok, _ := ts.Token()
	fresh, err := ts.Refresh(tok)
	if err != nil {
		t.Fatal(err)
	}
	clk.Set(b.Add(creds.TokenBucket - time.Second))
	if cur, _ := ts.Token(); cur != fresh {
		t.Errorf("fresh token replaced inside its bucket")
	}
	clk.Set(b.Add(creds.TokenBucket))
	cur, _ := ts.Token()
	if cur == fresh || iatOf(t, cur) != b.Add(creds.TokenBucket).Unix() {
		t.Errorf("next bucket: iat %d", iatOf(t, cur))
	}
}

func TestDecodeToken(t *testing.T) {
	key := newP256(t)
	clk := newClock(bucketAligned())
	tok, err := creds.NewTokenSource(testKeyID, testTeamID, key, clk.Now, nil).Token()
	if err != nil {
		t.Fatal(err)
	}
	h, c, err := creds.DecodeToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if h["kid"] != testKeyID || c["iss"] != testTeamID {
		t.Errorf("header %v claims %v", h, c)
	}
	for _, bad := range []string{"", "a.b", "not a token", "x.y.z"} {
		if _, _, err := creds.DecodeToken(bad); err == nil {
			t.Errorf("DecodeToken(%q) succeeded", bad)
		}
	}
}
