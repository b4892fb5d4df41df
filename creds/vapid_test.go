package creds_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushproxy/pushproxy/creds"
)

// The RFC 8291 Appendix A application server key pair.
const (
	vapidPriv = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	vapidPub  = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
)

func vapidJSON(pub, priv string) []byte {
	b, _ := json.Marshal(map[string]string{"publicKey": pub, "privateKey": priv})
	return b
}

func reencode(s string, enc *base64.Encoding) string {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return enc.EncodeToString(b)
}

func TestParseVAPIDKeyJSON(t *testing.T) {
	k, err := creds.ParseVAPIDKey(vapidJSON(vapidPub, vapidPriv))
	if err != nil {
		t.Fatal(err)
	}
	if k.PublicB64 != vapidPub || len(k.Public) != 65 || len(k.Warnings) != 0 || len(k.Fingerprint) != 8 {
		t.Fatalf("key %+v", k)
	}
	if k.Private.Curve != elliptic.P256() {
		t.Fatal("curve")
	}
}

func TestParseVAPIDKeyNonCanonicalBase64Warns(t *testing.T) {
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		k, err := creds.ParseVAPIDKey(vapidJSON(reencode(vapidPub, enc), reencode(vapidPriv, enc)))
		if err != nil {
			t.Fatal(err)
		}
		if k.PublicB64 != vapidPub || len(k.Warnings) != 2 || !strings.Contains(k.Warnings[0], vapidPub) {
			t.Fatalf("warnings %q", k.Warnings)
		}
	}
}

func TestParseVAPIDKeyPEM(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	sec1, _ := x509.MarshalECPrivateKey(key)
	want, _ := key.PublicKey.Bytes()
	for name, data := range map[string][]byte{
		"pkcs8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		"sec1":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"sec1 with parameters": append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...),
	} {
		k, err := creds.ParseVAPIDKey(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if k.PublicB64 != base64.RawURLEncoding.EncodeToString(want) {
			t.Fatalf("%s: public key %s", name, k.PublicB64)
		}
	}
}

func TestParseVAPIDKeyRefusals(t *testing.T) {
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherPub, _ := other.PublicKey.Bytes()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	pubDER, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":         {[]byte("  \n"), "empty"},
		"garbage":       {[]byte("hello"), "expected"},
		"bad JSON":      {[]byte(`{"publicKey":`), "malformed"},
		"no private":    {[]byte(`{"publicKey":"` + vapidPub + `"}`), "both"},
		"swapped":       {vapidJSON(vapidPriv, vapidPub), "swapped"},
		"mismatched":    {vapidJSON(base64.RawURLEncoding.EncodeToString(otherPub), vapidPriv), "does not belong"},
		"short public":  {vapidJSON(vapidPub[:40], vapidPriv), "65-byte"},
		"bad base64":    {vapidJSON("!!!", vapidPriv), "base64"},
		"mixed base64":  {vapidJSON("+"+vapidPub[1:]+"_", vapidPriv), "mixes"},
		"zero private":  {vapidJSON(vapidPub, base64.RawURLEncoding.EncodeToString(make([]byte, 32))), "not a valid"},
		"long private":  {vapidJSON(vapidPub, base64.RawURLEncoding.EncodeToString(make([]byte, 48))), "32"},
		"P-384":         {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384der}), "P-384"},
		"public only":   {pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), "only a public key"},
		"truncated PEM": {[]byte("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n"), "truncated"},
		"certificate":   {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "unexpected PEM block"},
	}
	for name, c := range cases {
		k, err := creds.ParseVAPIDKey(c.data)
		if err == nil {
			t.Fatalf("%s: accepted %+v", name, k)
		}
		if !errors.Is(err, creds.ErrNotVAPID) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v (want %q)", name, err, c.want)
		}
	}
}

func TestGenerateVAPIDKeyJSONRoundTrips(t *testing.T) {
	data, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		t.Fatal(err)
	}
	var j map[string]string
	if err := json.Unmarshal(data, &j); err != nil || len(j) != 2 {
		t.Fatalf("%s: %v", data, err)
	}
	if strings.ContainsAny(j["publicKey"]+j["privateKey"], "=+/") || len(j["publicKey"]) != 87 || len(j["privateKey"]) != 43 {
		t.Fatalf("not unpadded base64url: %s", data)
	}
	k, err := creds.ParseVAPIDKey(data)
	if err != nil || k.PublicB64 != j["publicKey"] || len(k.Warnings) != 0 {
		t.Fatalf("%v %+v", err, k)
	}
}

func TestValidateSubject(t *testing.T) {
	good := []string{"mailto:ops@example.com", "mailto:push+alerts@sub.example.org", "https://example.com", "https://example.com/contact", "MAILTO:ops@example.com"}
	for _, s := range good {
		if err := creds.ValidateSubject(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := map[string]string{
		"":                              "empty",
		"mailto:mailto:ops@example.com": "twice",
		"mailto: ops@example.com":       "spaces",
		"mailto:<ops@example.com>":      "angle",
		"ops@example.com":               "needs the mailto: scheme",
		"http://example.com":            "must start with",
		"mailto:ops@localhost":          "local host",
		"https://localhost:8443":        "local host",
		"https://printer.local":         "local host",
		"https://127.0.0.1":             "loopback",
		"mailto:ops":                    "plain e-mail",
		"mailto:ops@intranet":           "without a domain",
		"https://user:pw@example.com":   "user name",
		"https:example.com":             "absolute",
		" mailto:ops@example.com":       "spaces",
	}
	for s, want := range bad {
		err := creds.ValidateSubject(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v (want %q)", s, err, want)
			continue
		}
		// The caller names the setting and the value, once.
		msg := creds.SubjectError(s, err).Error()
		if n := strings.Count(msg, "webpush.subject"); n != 1 {
			t.Errorf("%q: %q names the setting %d times", s, msg, n)
		}
		if s != "" && strings.Count(msg, strconv.Quote(s)) != 1 {
			t.Errorf("%q: %q does not quote the value once", s, msg)
		}
	}
}

func TestAudience(t *testing.T) {
	cases := map[string]string{
		"https://fcm.googleapis.com/fcm/send/abc":         "https://fcm.googleapis.com",
		"https://FCM.googleapis.com:443/fcm/send/abc?x=1": "https://fcm.googleapis.com",
		"https://127.0.0.1:8443/push/1":                   "https://127.0.0.1:8443",
		"https://[::1]:8443/push/1":                       "https://[::1]:8443",
		"https://web.push.apple.com/":                     "https://web.push.apple.com",
		"http://push.example.net:80/x":                    "http://push.example.net",
	}
	for in, want := range cases {
		got, err := creds.Audience(in)
		if err != nil || got != want {
			t.Errorf("%s: got %q %v want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/x", "ftp://x/y", "https:///x"} {
		if got, err := creds.Audience(in); err == nil {
			t.Errorf("%q: accepted as %q", in, got)
		}
	}
}

func vapidKey(t *testing.T) *creds.VAPIDKey {
	t.Helper()
	k, err := creds.ParseVAPIDKey(vapidJSON(vapidPub, vapidPriv))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVAPIDSignerHeaderShapeAndClaims(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	k := vapidKey(t)
	s := creds.NewVAPIDSigner(k, "mailto:ops@example.com", func() time.Time { return now }, nil)
	h, err := s.Authorization("https://updates.push.services.mozilla.com/wpush/v2/gAAAA?x=y")
	if err != nil {
		t.Fatal(err)
	}
	tok, key, err := creds.ParseVAPIDAuthorization(h)
	if err != nil || key != vapidPub || !strings.HasPrefix(h, "vapid t=") || !strings.HasSuffix(h, ", k="+vapidPub) {
		t.Fatalf("header %q: %v", h, err)
	}
	claims := jwt.MapClaims{}
	parsed, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return now })).
		ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return &k.Private.PublicKey, nil })
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["typ"] != "JWT" || parsed.Header["alg"] != "ES256" || len(parsed.Header) != 2 {
		t.Fatalf("header %v", parsed.Header)
	}
	if claims["aud"] != "https://updates.push.services.mozilla.com" || claims["sub"] != "mailto:ops@example.com" ||
		claims["exp"] != float64(now.Add(12*time.Hour).Unix()) || len(claims) != 3 {
		t.Fatalf("claims %v", claims)
	}
}

func TestVAPIDSignerCachesPerAudienceAndRenews(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_900_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var signs atomic.Int64
	s := creds.NewVAPIDSigner(vapidKey(t), "mailto:ops@example.com", clock, func() { signs.Add(1) })

	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, err := s.Authorization("https://fcm.googleapis.com/fcm/send/" + string(rune('a'+j))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := signs.Load(); n != 1 {
		t.Fatalf("%d signatures for one audience", n)
	}
	first, _ := s.Authorization("https://fcm.googleapis.com/x")
	if _, err := s.Authorization("https://web.push.apple.com/x"); err != nil || signs.Load() != 2 {
		t.Fatalf("a second audience: %d signatures", signs.Load())
	}
	advance(10*time.Hour + 59*time.Minute) // 1 h 1 min left: reused
	if h, _ := s.Authorization("https://fcm.googleapis.com/y"); h != first || signs.Load() != 2 {
		t.Fatalf("renewed too early (%d signatures)", signs.Load())
	}
	advance(2 * time.Minute) // 59 min left: renewed
	h, _ := s.Authorization("https://fcm.googleapis.com/y")
	if h == first || signs.Load() != 3 {
		t.Fatalf("not renewed near exp (%d signatures)", signs.Load())
	}
	tok, _, _ := creds.ParseVAPIDAuthorization(h)
	_, claims, _ := creds.DecodeToken(tok)
	if claims["exp"] != float64(clock().Add(12*time.Hour).Unix()) {
		t.Fatalf("renewed exp %v", claims["exp"])
	}
}

func TestVAPIDSignerCacheIsBounded(t *testing.T) {
	var signs atomic.Int64
	s := creds.NewVAPIDSigner(vapidKey(t), "mailto:ops@example.com", nil, func() { signs.Add(1) })
	for i := 0; i < 600; i++ {
		if _, err := s.Authorization("https://h" + strings.Repeat("x", i%7) + ".example:" + itoa(1000+i) + "/"); err != nil {
			t.Fatal(err)
		}
	}
	if signs.Load() != 600 {
		t.Fatalf("%d signatures", signs.Load())
	}
	if _, err := s.Authorization("ftp://x/"); err == nil {
		t.Fatal("ftp endpoint signed")
	}
}

func itoa(i int) string {
	b := []byte{}
	for i > 0 {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
	}
	return string(b)
}

// RFC 8292 §2.4: the example's Authorization header has the shape the
// signer produces, and its JWT verifies with its k.
func TestRFC8292Example(t *testing.T) {
	const h = "vapid t=eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA, k=BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs"
	tok, k, err := creds.ParseVAPIDAuthorization(h)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(k)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(func() time.Time { return time.Unix(1453523768-3600, 0) })).
		ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil {
		t.Fatal(err)
	}
	if claims["aud"] != "https://push.example.net" || claims["sub"] != "mailto:push@example.com" {
		t.Fatalf("claims %v", claims)
	}
	// The same claims signed by our signer give a header of the same shape.
	aud, _ := creds.Audience("https://push.example.net/push/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV")
	if aud != claims["aud"] {
		t.Fatalf("audience %q", aud)
	}
}

func TestParseVAPIDAuthorization(t *testing.T) {
	for _, h := range []string{"vapid t=a.b.c, k=K", "vapid k=K,t=a.b.c", "VAPID  t=a.b.c ,  k=K"} {
		tok, k, err := creds.ParseVAPIDAuthorization(h)
		if err != nil || tok != "a.b.c" || k != "K" {
			t.Fatalf("%q: %q %q %v", h, tok, k, err)
		}
	}
	for _, h := range []string{"", "bearer x", "vapid t=a.b.c", "vapid k=K", "vapid t"} {
		if _, _, err := creds.ParseVAPIDAuthorization(h); err == nil {
			t.Fatalf("%q accepted", h)
		}
	}
}
