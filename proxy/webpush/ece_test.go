package webpush_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/proxy/webpush"
	"github.com/pushproxy/pushproxy/translate"
)

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 8291 Appendix A, every value as the RFC prints it.
var rfc8291 = struct {
	plaintext, asPriv, asPub, uaPriv, uaPub, auth, salt, body string
}{
	plaintext: "When I grow up, I want to be a watermelon",
	asPriv:    "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",
	asPub:     "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8",
	uaPriv:    "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94",
	uaPub:     "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
	auth:      "BTBZMqHH6r4Tts7J_aSIgg",
	salt:      "DGv6ra1nlYgDCS1FRnbzlw",
	body:      "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
}

func TestEncryptReproducesRFC8291AppendixA(t *testing.T) {
	as, err := ecdh.P256().NewPrivateKey(unb64(t, rfc8291.asPriv))
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(as.PublicKey().Bytes()); got != rfc8291.asPub {
		t.Fatalf("as_public %s", got)
	}
	body, err := webpush.Encrypt([]byte(rfc8291.plaintext), unb64(t, rfc8291.uaPub), unb64(t, rfc8291.auth),
		webpush.EncryptOptions{Salt: unb64(t, rfc8291.salt), Ephemeral: as})
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(body); got != rfc8291.body {
		t.Fatalf("body\n got %s\nwant %s", got, rfc8291.body)
	}
}

func newUA(t testing.TB) (*ecdh.PrivateKey, []byte) {
	ua, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return ua, auth
}

func TestEncryptRoundTripsThroughTheFake(t *testing.T) {
	ua, auth := newUA(t)
	for _, n := range []int{0, 1, 200, 1000, translate.WebPushMaxPlaintext} {
		for _, buckets := range []bool{false, true} {
			pt := bytes.Repeat([]byte{'x'}, n)
			body, err := webpush.Encrypt(pt, ua.PublicKey().Bytes(), auth, webpush.EncryptOptions{PadToBuckets: buckets})
			if err != nil {
				t.Fatal(err)
			}
			if len(body) != webpush.EncryptedLen(n, buckets) || len(body) > translate.WebPushMaxBody {
				t.Fatalf("%d bytes (buckets %v): body %d", n, buckets, len(body))
			}
			got, err := fakepush.Decrypt(body, ua, auth)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%d bytes (buckets %v): %v", n, buckets, err)
			}
		}
	}
}

func TestEncryptSizes(t *testing.T) {
	ua, auth := newUA(t)
	// The floor: a 200-byte plaintext is 303 bytes on the wire
	// (86 header + 200 + 1 delimiter + 16 tag); webpush-go sends 4096.
	body, _ := webpush.Encrypt(make([]byte, 200), ua.PublicKey().Bytes(), auth, webpush.EncryptOptions{})
	if len(body) != 303 {
		t.Fatalf("200-byte plaintext: %d-byte body", len(body))
	}
	for n, want := range map[int]int{0: 128, 128: 128, 129: 256, 200: 256, 2049: 3993, 3993: 3993} {
		if got := webpush.PaddedLen(n, true); got != want {
			t.Errorf("PaddedLen(%d) = %d, want %d", n, got, want)
		}
	}
	if _, err := webpush.Encrypt(make([]byte, 3994), ua.PublicKey().Bytes(), auth, webpush.EncryptOptions{}); !errors.Is(err, webpush.ErrPayloadTooLarge) {
		t.Fatalf("3994 bytes: %v", err)
	}
	if _, err := webpush.Encrypt([]byte("x"), ua.PublicKey().Bytes(), auth[:12], webpush.EncryptOptions{}); err == nil {
		t.Fatal("12-byte auth accepted")
	}
	if _, err := webpush.Encrypt([]byte("x"), make([]byte, 65), auth, webpush.EncryptOptions{}); err == nil {
		t.Fatal("invalid p256dh accepted")
	}
	if _, err := webpush.Encrypt([]byte("x"), ua.PublicKey().Bytes(), auth, webpush.EncryptOptions{Salt: []byte{1}}); err == nil {
		t.Fatal("1-byte salt accepted")
	}
	// Two encryptions of one message differ (fresh salt and key).
	a, _ := webpush.Encrypt([]byte("x"), ua.PublicKey().Bytes(), auth, webpush.EncryptOptions{})
	b, _ := webpush.Encrypt([]byte("x"), ua.PublicKey().Bytes(), auth, webpush.EncryptOptions{})
	if bytes.Equal(a, b) || bytes.Equal(a[:16], b[:16]) || bytes.Equal(a[21:86], b[21:86]) {
		t.Fatal("salt or ephemeral key reused")
	}
}

// FuzzEncryptDecrypt: every plaintext that fits round-trips through the
// fake's independent decoder, padded or not; one that does not fit is
// refused before anything is built.
func FuzzEncryptDecrypt(f *testing.F) {
	ua, auth := newUA(f)
	for _, s := range []string{"", "x", rfc8291.plaintext, string(make([]byte, 3993)), string(make([]byte, 3994))} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, pt []byte, buckets bool) {
		body, err := webpush.Encrypt(pt, ua.PublicKey().Bytes(), auth, webpush.EncryptOptions{PadToBuckets: buckets})
		if len(pt) > translate.WebPushMaxPlaintext {
			if !errors.Is(err, webpush.ErrPayloadTooLarge) {
				t.Fatalf("%d bytes: %v", len(pt), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := fakepush.Decrypt(body, ua, auth)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("round trip of %d bytes: %v", len(pt), err)
		}
	})
}
