package fakepush

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Decrypt is the user agent's side of RFC 8291: it decrypts an aes128gcm
// body (RFC 8188: salt ‖ rs ‖ idlen ‖ keyid ‖ records) addressed to the
// subscription whose private key is ua and whose authentication secret is
// auth, and returns the plaintext without its padding. Any number of records
// is accepted, as RFC 8188 allows; a record must end with the padding
// delimiter 0x01 (more records follow) or 0x02 (the last one).
//
// This is written apart from pushproxy's encryption on purpose, so that each
// checks the other.
func Decrypt(body []byte, ua *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("aes128gcm: the body is shorter than its header")
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if rs < 18 {
		return nil, fmt.Errorf("aes128gcm: record size %d is below 18", rs)
	}
	if len(body) < 21+idlen {
		return nil, errors.New("aes128gcm: the body is shorter than its key id")
	}
	keyid := body[21 : 21+idlen]
	if idlen != 65 {
		return nil, fmt.Errorf("aes128gcm: the key id is %d bytes; Web Push puts the 65-byte sender public key there", idlen)
	}
	as, err := ecdh.P256().NewPublicKey(keyid)
	if err != nil {
		return nil, fmt.Errorf("aes128gcm: the key id is not a P-256 point: %w", err)
	}
	secret, err := ua.ECDH(as)
	if err != nil {
		return nil, err
	}
	info := "WebPush: info\x00" + string(ua.PublicKey().Bytes()) + string(keyid)
	ikm, err := hkdf.Key(sha256.New, secret, auth, info, 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	baseNonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
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
	rest := body[21+idlen:]
	if len(rest) == 0 {
		return nil, errors.New("aes128gcm: no record")
	}
	var out []byte
	for seq := uint64(0); len(rest) > 0; seq++ {
		n := min(int(rs), len(rest))
		rec := rest[:n]
		rest = rest[n:]
		if len(rec) < 17 {
			return nil, errors.New("aes128gcm: a record is shorter than its tag and delimiter")
		}
		nonce := bytes.Clone(baseNonce)
		for i := 0; i < 8; i++ {
			nonce[11-i] ^= byte(seq >> (8 * i))
		}
		pt, err := gcm.Open(nil, nonce, rec, nil)
		if err != nil {
			return nil, fmt.Errorf("aes128gcm: record %d does not decrypt (wrong keys, or tampered): %w", seq, err)
		}
		i := len(pt) - 1
		for i >= 0 && pt[i] == 0 {
			i--
		}
		if i < 0 {
			return nil, fmt.Errorf("aes128gcm: record %d has no padding delimiter", seq)
		}
		last := len(rest) == 0
		switch {
		case pt[i] == 2 && last, pt[i] == 1 && !last:
		case pt[i] == 2:
			return nil, fmt.Errorf("aes128gcm: record %d is marked last but more follow", seq)
		default:
			return nil, fmt.Errorf("aes128gcm: record %d ends with delimiter 0x%02x", seq, pt[i])
		}
		out = append(out, pt[:i]...)
	}
	return out, nil
}

// VAPIDInfo is what a valid VAPID Authorization header says.
type VAPIDInfo struct {
	Token  string         // the JWT
	Key    string         // k, as sent
	Header map[string]any // JWT header
	Claims map[string]any // JWT claims
}

// VerifyVAPID checks an Authorization header the way push services do
// (RFC 8292): the "vapid" scheme with t= and k=; k a 65-byte uncompressed
// P-256 point in base64url; the JWT signed ES256 by that key; aud equal to
// audience (the push service's origin); exp in the future and at most 24
// hours ahead; sub present, mailto: or https:. The error says what failed.
func VerifyVAPID(authorization, audience string, now time.Time) (*VAPIDInfo, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "vapid") {
		return nil, errors.New(`missing or non-vapid Authorization header`)
	}
	info := &VAPIDInfo{}
	for _, part := range strings.Split(rest, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.TrimSpace(name) {
		case "t":
			info.Token = strings.TrimSpace(val)
		case "k":
			info.Key = strings.TrimSpace(val)
		}
	}
	if info.Token == "" || info.Key == "" {
		return nil, errors.New("the vapid Authorization header needs t= and k=")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(info.Key, "="))
	if err != nil {
		return nil, errors.New("k is not base64url")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, errors.New("k is not an uncompressed P-256 public key")
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(info.Token, claims, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil {
		return nil, fmt.Errorf("the JWT does not verify with k: %w", err)
	}
	info.Header, info.Claims = tok.Header, claims
	if aud, _ := claims["aud"].(string); aud != audience {
		return info, fmt.Errorf("aud is %q, not this push service's origin %q", aud, audience)
	}
	exp, ok := claims["exp"].(float64)
	if !ok {
		return info, errors.New("exp is missing")
	}
	switch t := time.Unix(int64(exp), 0); {
	case !t.After(now):
		return info, errors.New("the JWT has expired")
	case t.Sub(now) > 24*time.Hour:
		return info, errors.New("exp is more than 24 hours ahead")
	}
	sub, _ := claims["sub"].(string)
	if !strings.HasPrefix(sub, "mailto:") && !strings.HasPrefix(sub, "https:") {
		return info, fmt.Errorf("sub %q is not a mailto: or https: URL", sub)
	}
	return info, nil
}
