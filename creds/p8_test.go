package creds_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
)

func TestParseP8(t *testing.T) {
	dir := t.TempDir()
	p256 := newP256(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "Apple Push Services: com.example.app"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}}, &p256.PublicKey, p256)
	if err != nil {
		t.Fatal(err)
	}
	valid := pkcs8PEM(t, p256)
	p384SEC1, err := x509.MarshalECPrivateKey(p384)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})

	tests := []struct {
		name    string
		data    []byte
		wantErr string // substring of the error; "" → success with p256
	}{
		{"pkcs8 P-256", valid, ""},
		{"pkcs8 P-256 CRLF and surrounding text", append([]byte("Bag Attributes\r\n"), bytes.ReplaceAll(valid, []byte("\n"), []byte("\r\n"))...), ""},
		{"sec1 P-256", sec1PEM(t, p256), ""},
		{"openssl ecparam -genkey output", append(append([]byte{}, ecParams...), sec1PEM(t, p256)...), ""},
		{"pkcs8 P-384", pkcs8PEM(t, p384), "P-256"},
		{"sec1 P-384", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p384SEC1}), "P-256"},
		{"pkcs8 RSA", pkcs8PEM(t, rsaKey), "RSA"},
		{"pkcs1 RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), "RSA"},
		{"ed25519", pkcs8PEM(t, edKey), "P-256"},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), "certificate"},
		{"DER like a .p12", certDER, ".p12"},
		{"DER pkcs8", mustPKCS8DER(t, p256), ".p12"},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "encrypted"},
		{"public key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}), "PUBLIC KEY"},
		{"only EC PARAMETERS", ecParams, "EC PARAMETERS"},
		{"truncated PEM", valid[:len(valid)/2], "truncated"},
		{"PEM without END line", bytes.TrimSuffix(valid, []byte("-----END PRIVATE KEY-----\n")), "truncated"},
		{"PEM with damaged body", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not DER at all")}), "not an APNs .p8 key"},
		{"empty file", nil, "empty"},
		{"whitespace only", []byte(" \n\t\n"), "empty"},
		{"garbage", []byte("hello, this is not a key\n"), "no PEM block"},
		{"garbage starting with 0", []byte("0xdeadbeef\n"), "no PEM block"},
		{"binary garbage", []byte{0xff, 0x00, 0x13, 0x37}, "no PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, "AuthKey_"+testKeyID+".p8", tc.data)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			key, err := creds.ParseP8(data)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseP8: %v", err)
				}
				if !key.Equal(p256) {
					t.Fatalf("parsed a different key")
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseP8 accepted it")
			}
			if key != nil {
				t.Errorf("key returned with an error")
			}
			if !errors.Is(err, creds.ErrNotP8) {
				t.Errorf("error %q does not wrap ErrNotP8", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

func mustPKCS8DER(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseP8ErrorsDoNotLeakKeyMaterial(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	data := pkcs8PEM(t, p384)
	_, err = creds.ParseP8(data)
	if err == nil {
		t.Fatal("P-384 accepted")
	}
	body := strings.Join(strings.Split(strings.TrimSpace(string(data)), "\n")[1:3], "")
	if strings.Contains(err.Error(), body[:20]) {
		t.Errorf("error contains key material")
	}
}

func TestKeyIDFromFileName(t *testing.T) {
	for path, want := range map[string]string{
		"/secrets/apns/AuthKey_ABC123DEFG.p8": "ABC123DEFG",
		"AuthKey_ABC123DEFG.p8":               "ABC123DEFG",
		"/x/AuthKey_abc123defg.p8":            "abc123defg", // returned as is; ValidID says what is wrong
		"/x/AuthKey_ABC123DEFG.p8.bak":        "",
		"/x/AuthKey_ABC123DEFG.pem":           "",
		"/x/authkey_ABC123DEFG.p8":            "",
		"/x/AuthKey_.p8":                      "",
		"/x/AuthKey_ABC-123.p8":               "",
		"/x/AuthKey_ABC123DEFG (1).p8":        "",
		"/AuthKey_ABC123DEFG.p8/key.p8":       "",
		"":                                    "",
	} {
		if got := creds.KeyIDFromFileName(path); got != want {
			t.Errorf("KeyIDFromFileName(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want string // regexp the error must match; "" → valid
	}{
		{"ABC123DEFG", ""},
		{"0123456789", ""},
		{"ZZZZZZZZZZ", ""},
		{"abc123defg", `key_id "abc123defg" must be upper case \(ABC123DEFG\)`},
		{"Abc123defG", `must be upper case`},
		{" ABC123DEFG", `surrounding spaces`},
		{"ABC123DEFG\n", `surrounding spaces`},
		{"ABC 23DEFG", `must be 10 upper-case letters or digits \(it has 10 characters\)`},
		{"ABC123DEF", `it has 9 characters`},
		{"ABC123DEFGH", `it has 11 characters`},
		{"abc", `it has 3 characters`},
		{"ABC123DEF-", `must be 10 upper-case letters or digits`},
		{"", `key_id is empty`},
	} {
		err := creds.ValidID("key_id", tc.id)
		if tc.want == "" {
			if err != nil {
				t.Errorf("ValidID(%q) = %v, want nil", tc.id, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidID(%q) accepted it", tc.id)
			continue
		}
		if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
			t.Errorf("ValidID(%q) = %q, want it to match %q", tc.id, err, tc.want)
		}
	}
	if err := creds.ValidID("team_id", "x"); err == nil || !strings.HasPrefix(err.Error(), "team_id ") {
		t.Errorf("ValidID does not name what it checks: %v", err)
	}
}

func TestPublicFingerprint(t *testing.T) {
	a, b := newP256(t), newP256(t)
	fa := creds.PublicFingerprint(&a.PublicKey)
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(fa) {
		t.Fatalf("fingerprint %q is not 8 hex digits", fa)
	}
	// Stable across encodings of the same key.
	k1, err := creds.ParseP8(pkcs8PEM(t, a))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := creds.ParseP8(sec1PEM(t, a))
	if err != nil {
		t.Fatal(err)
	}
	if creds.PublicFingerprint(&k1.PublicKey) != fa || creds.PublicFingerprint(&k2.PublicKey) != fa {
		t.Errorf("fingerprint differs between encodings of one key")
	}
	if creds.PublicFingerprint(&b.PublicKey) == fa {
		t.Errorf("two keys share fingerprint %s", fa)
	}
}
