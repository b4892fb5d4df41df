package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pushproxy/pushproxy/translate"
)

// RFC 8291 message encryption ("aes128gcm", RFC 8188), written on the
// standard library (DESIGN.md explains why not webpush-go). One record of
// record size 4096, the padding delimiter 0x02, and by default no padding
// beyond it: a 200-byte plaintext is a 303-byte body.

// ErrPayloadTooLarge is returned by Encrypt for a plaintext that does not fit
// one record (translate.WebPushMaxPlaintext bytes).
var ErrPayloadTooLarge = errors.New("the plaintext does not fit one 4096-byte aes128gcm record")

// padBuckets are the plaintext-plus-padding sizes that EncryptOptions'
// PadToBuckets rounds up to, so that a message's length tells little about
// its content. The last is the one-record maximum.
var padBuckets = []int{128, 256, 512, 1024, 2048, translate.WebPushMaxPlaintext}

// EncryptOptions change Encrypt for tests and for padding.
type EncryptOptions struct {
	// Salt is the 16-byte salt; nil draws a random one. Only tests set it
	// (RFC 8291 Appendix A).
	Salt []byte
	// Ephemeral is the application server's one-time ECDH key; nil makes a
	// new one. Only tests set it.
	Ephemeral *ecdh.PrivateKey
	// PadToBuckets pads the plaintext up to the next of 128, 256, 512,
	// 1024, 2048 or 3993 bytes.
	PadToBuckets bool
}

// PaddedLen is the size plaintext plus padding takes for a plaintext of n
// bytes.
func PaddedLen(n int, buckets bool) int {
	if !buckets {
		return n
	}
	for _, b := range padBuckets {
		if n <= b {
			return b
		}
	}
	return n
}

// EncryptedLen is the body size Encrypt produces for a plaintext of n bytes.
func EncryptedLen(n int, buckets bool) int {
	return translate.WebPushHeaderSize + PaddedLen(n, buckets) + 1 + 16
}

// Encrypt encrypts plaintext for the user agent whose public key is p256dh
// (65-byte uncompressed P-256) and whose authentication secret is auth (16
// bytes), as RFC 8291 §3.4 says, and returns the aes128gcm body: salt ‖ rs ‖
// idlen ‖ keyid (the ephemeral public key) ‖ one encrypted record.
func Encrypt(plaintext, p256dh, auth []byte, o EncryptOptions) ([]byte, error) {
	if len(plaintext) > translate.WebPushMaxPlaintext {
		return nil, ErrPayloadTooLarge
	}
	if len(auth) != 16 {
		return nil, fmt.Errorf("the authentication secret is %d bytes, not 16", len(auth))
	}
	ua, err := ecdh.P256().NewPublicKey(p256dh)
	if err != nil {
		return nil, fmt.Errorf("the subscription's p256dh key: %w", err)
	}
	eph := o.Ephemeral
	if eph == nil {
		if eph, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
	}
	secret, err := eph.ECDH(ua)
	if err != nil {
		return nil, err
	}
	asPub := eph.PublicKey().Bytes()

	// IKM = HKDF(auth, ecdh_secret, "WebPush: info" ‖ 0x00 ‖ ua_public ‖ as_public, 32)
	info := make([]byte, 0, 14+65+65)
	info = append(append(append(info, "WebPush: info\x00"...), p256dh...), asPub...)
	ikm, err := hkdf.Key(sha256.New, secret, auth, string(info), 32)
	if err != nil {
		return nil, err
	}

	n := PaddedLen(len(plaintext), o.PadToBuckets) + 1 // plaintext, padding, delimiter
	out := make([]byte, translate.WebPushHeaderSize+n, translate.WebPushHeaderSize+n+16)
	salt := out[:16]
	if o.Salt != nil {
		if len(o.Salt) != 16 {
			return nil, fmt.Errorf("the salt is %d bytes, not 16", len(o.Salt))
		}
		copy(salt, o.Salt)
	} else {
		_, _ = rand.Read(salt)
	}
	binary.BigEndian.PutUint32(out[16:20], translate.WebPushRecordSize)
	out[20] = byte(len(asPub))
	copy(out[21:], asPub)

	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	rec := out[translate.WebPushHeaderSize:]
	copy(rec, plaintext)
	rec[len(plaintext)] = 2 // the last (only) record's delimiter; zeros follow
	// One record: its sequence number is 0, so the nonce is used as is.
	return gcm.Seal(out[:translate.WebPushHeaderSize], nonce, rec, nil), nil
}
