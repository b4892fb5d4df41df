package webpush_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	webpushgo "github.com/SherClockHolmes/webpush-go"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy/webpush"
)

// The measurements, per message, no network: pushproxy's Web Push
// path (encrypt + cached VAPID header) against the bare standard-library
// floor (one ephemeral P-256 key, one ECDH, HKDF, AES-GCM) and against
// webpush-go; body bytes for a 200-byte plaintext; VAPID signatures per
// (key, audience) per run. Compare with
//
//	go test -run '^$' -bench . -benchmem ./proxy/webpush/

const benchEndpoint = "https://fcm.googleapis.com/fcm/send/bench:APA91b"

func benchUA(b *testing.B) (*ecdh.PrivateKey, []byte) {
	ua, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return ua, auth
}

// BenchmarkPushproxyPath is what Send does per message before the request:
// Encrypt and the (cached) Authorization header.
func BenchmarkPushproxyPath(b *testing.B) {
	ua, auth := benchUA(b)
	p256dh := ua.PublicKey().Bytes()
	pt := []byte(strings.Repeat("x", 200))
	var signs atomic.Int64
	signer := creds.NewVAPIDSigner(newKey(b), subject, nil, func() { signs.Add(1) })
	var size int
	b.ReportAllocs()
	for b.Loop() {
		body, err := webpush.Encrypt(pt, p256dh, auth, webpush.EncryptOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := signer.Authorization(benchEndpoint); err != nil {
			b.Fatal(err)
		}
		size = len(body)
	}
	b.ReportMetric(float64(size), "body-bytes")
	b.ReportMetric(float64(signs.Load()), "vapid-signatures")
}

// BenchmarkStdlibFloor is the least any RFC 8291 sender must do per
// message.
func BenchmarkStdlibFloor(b *testing.B) {
	ua, auth := benchUA(b)
	pub := ua.PublicKey()
	pt := make([]byte, 201)
	b.ReportAllocs()
	for b.Loop() {
		eph, _ := ecdh.P256().GenerateKey(rand.Reader)
		secret, _ := eph.ECDH(pub)
		ikm, _ := hkdf.Key(sha256.New, secret, auth, "WebPush: info", 32)
		prk, _ := hkdf.Extract(sha256.New, ikm, auth)
		cek, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
		nonce, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
		blk, _ := aes.NewCipher(cek)
		gcm, _ := cipher.NewGCM(blk)
		_ = gcm.Seal(nil, nonce, pt, nil)
	}
}

// discard is an HTTP client that records the body size and answers 201.
type discard struct{ size int }

func (d *discard) Do(r *http.Request) (*http.Response, error) {
	n, _ := io.Copy(io.Discard, r.Body)
	d.size = int(n)
	return &http.Response{StatusCode: 201, Body: http.NoBody, Header: http.Header{}}, nil
}

// BenchmarkWebpushGo is webpush-go v1.4.0 doing the same, its HTTP client
// replaced by one that only reads the body.
func BenchmarkWebpushGo(b *testing.B) {
	ua, auth := benchUA(b)
	kj, _ := creds.GenerateVAPIDKeyJSON()
	var k struct{ PublicKey, PrivateKey string }
	_ = json.Unmarshal(kj, &k)
	sub := &webpushgo.Subscription{Endpoint: benchEndpoint, Keys: webpushgo.Keys{
		P256dh: b64u.EncodeToString(ua.PublicKey().Bytes()), Auth: b64u.EncodeToString(auth)}}
	pt := []byte(strings.Repeat("x", 200))
	client := &discard{}
	opts := &webpushgo.Options{HTTPClient: client, Subscriber: "ops@example.com", TTL: 60, VAPIDPublicKey: k.PublicKey, VAPIDPrivateKey: k.PrivateKey}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := webpushgo.SendNotification(pt, sub, opts)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	b.ReportMetric(float64(client.size), "body-bytes")
	b.ReportMetric(float64(b.N), "vapid-signatures")
}
