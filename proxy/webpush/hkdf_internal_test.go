package webpush

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// hkdf32 gives what crypto/hkdf gives, key reuse or not.
func TestHKDF32MatchesCryptoHKDF(t *testing.T) {
	var k hkdf32
	for i := range 200 {
		salt, ikm, info := make([]byte, i%40), make([]byte, 1+i%70), make([]byte, i%150)
		_, _ = rand.Read(salt)
		_, _ = rand.Read(ikm)
		_, _ = rand.Read(info)
		prk := k.extract(salt, ikm)
		want, _ := hkdf.Extract(sha256.New, ikm, salt)
		if !bytes.Equal(prk, want) {
			t.Fatalf("extract %d", i)
		}
		for _, in := range [][]byte{info, []byte("Content-Encoding: nonce\x00"), info} {
			got := k.expand(prk, in)
			want, _ := hkdf.Expand(sha256.New, prk, string(in), 32)
			if !bytes.Equal(got, want) {
				t.Fatalf("expand %d", i)
			}
		}
	}
}
