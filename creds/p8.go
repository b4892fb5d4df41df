package creds

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	// ErrNotP8 is wrapped by every ParseP8 failure.
	ErrNotP8 = errors.New("not an APNs .p8 key")
	idRe     = regexp.MustCompile(`^[A-Z0-9]{10}$`)
	fileIDRe = regexp.MustCompile(`^AuthKey_([A-Za-z0-9]+)\.p8$`)
)

// ParseP8 parses an APNs authentication key: a PEM "PRIVATE KEY" block
// holding a PKCS#8 ECDSA P-256 key (a SEC1 "EC PRIVATE KEY" is accepted
// too). The errors name the usual mistakes: a .p12 or certificate instead
// of the key, an RSA key, another curve, a truncated file.
func ParseP8(data []byte) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block != nil && block.Type == "EC PARAMETERS" {
		// openssl ecparam -genkey writes the curve before the SEC1 key.
		if next, _ := pem.Decode(rest); next != nil {
			block = next
		}
	}
	if block == nil {
		s := strings.TrimSpace(string(data))
		switch {
		case len(s) == 0:
			return nil, fmt.Errorf("%w: the file is empty", ErrNotP8)
		case strings.Contains(s, "-----BEGIN"):
			return nil, fmt.Errorf("%w: the PEM block is truncated or damaged (no matching END line or bad base64)", ErrNotP8)
		case len(data) > 1 && data[0] == 0x30 && data[1] >= 0x81 && data[1] <= 0x84:
			// A DER SEQUENCE with a long-form length; not text that starts with "0".
			return nil, fmt.Errorf("%w: the file is binary DER, probably a .p12 certificate bundle; APNs token auth needs the AuthKey_<KEYID>.p8 downloaded from Certificates, Identifiers & Profiles > Keys", ErrNotP8)
		}
		return nil, fmt.Errorf("%w: no PEM block found (expected -----BEGIN PRIVATE KEY-----)", ErrNotP8)
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "CERTIFICATE":
		return nil, fmt.Errorf("%w: the file is a certificate; APNs token auth needs the AuthKey_<KEYID>.p8 private key", ErrNotP8)
	case "RSA PRIVATE KEY":
		return nil, fmt.Errorf("%w: the file is an RSA key; APNs needs an ECDSA P-256 key (ES256)", ErrNotP8)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: the key is encrypted; Apple's .p8 files are not, use the file as downloaded", ErrNotP8)
	default:
		return nil, fmt.Errorf("%w: unexpected PEM block %q (expected PRIVATE KEY)", ErrNotP8, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotP8, err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: the key is on curve %s; APNs needs P-256 (ES256)", ErrNotP8, k.Curve.Params().Name)
		}
		return k, nil
	case *rsa.PrivateKey:
		return nil, fmt.Errorf("%w: the file is an RSA key; APNs needs an ECDSA P-256 key (ES256)", ErrNotP8)
	}
	return nil, fmt.Errorf("%w: the key is a %T; APNs needs an ECDSA P-256 key (ES256)", ErrNotP8, key)
}

// EncodeP8 writes a key the way Apple's .p8 files are: PKCS#8 in a PEM
// "PRIVATE KEY" block (for the demo, the load command and tests, which make
// throwaway keys).
func EncodeP8(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// KeyIDFromFileName returns the key ID in Apple's file name
// AuthKey_<KEYID>.p8, or "".
func KeyIDFromFileName(path string) string {
	m := fileIDRe.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return ""
	}
	return m[1]
}

// ValidID checks a 10-character Apple key ID or team ID.
func ValidID(what, id string) error {
	if idRe.MatchString(id) {
		return nil
	}
	t := strings.TrimSpace(id)
	switch {
	case id == "":
		return fmt.Errorf("%s is empty; it is the 10-character ID shown in the Apple developer account", what)
	case t != id:
		return fmt.Errorf("%s %q has surrounding spaces", what, id)
	case strings.ToUpper(id) != id && idRe.MatchString(strings.ToUpper(id)):
		return fmt.Errorf("%s %q must be upper case (%s)", what, id, strings.ToUpper(id))
	}
	return fmt.Errorf("%s %q must be 10 upper-case letters or digits (it has %d characters)", what, id, len(id))
}

// PublicFingerprint is the first 8 hex digits of the SHA-256 of a key's
// public half (PKIX DER): safe to log, stable across files.
func PublicFingerprint(pub *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:4])
}
