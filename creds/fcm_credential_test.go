package creds_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
)

func TestLoadFCMCredential(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sa.json")
	spec := creds.FCMSpec{Name: "default", ServiceAccountFile: path}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	opts := creds.FCMTokenOptions{TokenURL: "https://127.0.0.1:9/token"}
	closeAll := func(cs ...*creds.FCMCredential) {
		for _, c := range cs {
			if c != nil && c.Tokens != nil {
				c.Tokens.Close()
			}
		}
	}

	// No file yet: missing.
	c0, err := creds.LoadFCMCredential(spec, nil, opts, now)
	if err == nil || c0.Usable() || c0.State != creds.StateMissing || c0.Tokens != nil || !strings.Contains(c0.LastError, "sa.json") {
		t.Fatalf("%+v %v", c0, err)
	}
	// A good file.
	if err := os.WriteFile(path, saJSON(t, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	c1, err := creds.LoadFCMCredential(spec, c0, opts, now)
	if err != nil || !c1.Usable() || c1.State != creds.StateOK || c1.ProjectID() != saProject || !c1.LoadedAt.Equal(now) {
		t.Fatalf("%+v %v", c1, err)
	}
	defer closeAll(c1)
	// The same file again: the same token source (and cached token).
	c2, err := creds.LoadFCMCredential(spec, c1, opts, now.Add(time.Minute))
	if err != nil || c2.Tokens != c1.Tokens || !c2.LoadedAt.Equal(now) {
		t.Fatalf("same file: new source %v, %v", c2.Tokens != c1.Tokens, err)
	}
	// A corrupt file: the last good account is kept, degraded.
	if err := os.WriteFile(path, []byte(`{"type":"service_acc`), 0o600); err != nil {
		t.Fatal(err)
	}
	c3, err := creds.LoadFCMCredential(spec, c2, opts, now.Add(2*time.Minute))
	if err == nil || c3.State != creds.StateDegraded || c3.Tokens != c1.Tokens || !c3.Usable() || c3.LastError == "" {
		t.Fatalf("corrupt: %+v %v", c3, err)
	}
	// A new key of the same account: a new source (the Store closes the old
	// one once a snapshot without it is published: TestStoreFCM).
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := creds.EncodeServiceAccount(k2, saEmail, "ffffffffffffffffffffffffffffffffffffffff", saProject, "")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c4, err := creds.LoadFCMCredential(spec, c3, opts, now.Add(3*time.Minute))
	if err != nil || c4.Tokens == nil || c4.Tokens == c1.Tokens || c4.Fingerprint == c1.Fingerprint || c4.Account.PrivateKeyID != "ffffffffffffffffffffffffffffffffffffffff" ||
		!c4.LoadedAt.Equal(now.Add(3*time.Minute)) {
		t.Fatalf("new key: %+v %v", c4, err)
	}
	defer closeAll(c4)
	// Other trusted roots: a new source too.
	pool := x509.NewCertPool()
	opts2 := opts
	opts2.RootCAs = pool
	c5, err := creds.LoadFCMCredential(spec, c4, opts2, now)
	if err != nil || c5.Tokens == nil || c5.Tokens == c4.Tokens {
		t.Fatalf("new roots: %v", err)
	}
	defer closeAll(c5)
	// A configured project that is not the file's: refused, the last good
	// kept.
	spec.ProjectID = "proj-b"
	c6, err := creds.LoadFCMCredential(spec, c5, opts2, now)
	if err == nil || c6.State != creds.StateDegraded || c6.Tokens != c5.Tokens || !strings.Contains(err.Error(), "proj-b") {
		t.Fatalf("project mismatch: %+v %v", c6, err)
	}
}

// TestNewFCMCredential: on a service account already parsed (what
// pushproxy check passes, having read the file itself), the credential and
// the error LoadFCMCredential would give, without reading the file.
func TestNewFCMCredential(t *testing.T) {
	t.Parallel()
	spec := creds.FCMSpec{Name: "default", ServiceAccountFile: filepath.Join(t.TempDir(), "never-read.json")}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	opts := creds.FCMTokenOptions{TokenURL: "https://127.0.0.1:9/token"}
	sa, err := creds.ParseServiceAccount(saJSON(t, ""), "")
	if err != nil {
		t.Fatal(err)
	}
	c1, err := creds.NewFCMCredential(spec, sa, nil, opts, now)
	if err != nil || !c1.Usable() || c1.State != creds.StateOK || c1.Account != sa || c1.Fingerprint != sa.Fingerprint ||
		c1.Tokens.TokenURL() != opts.TokenURL || !c1.LoadedAt.Equal(now) {
		t.Fatalf("%+v %v", c1, err)
	}
	defer c1.Tokens.Close()
	// The same account parsed again: the same token source and loaded-at.
	again, err := creds.ParseServiceAccount(saJSON(t, ""), "")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := creds.NewFCMCredential(spec, again, c1, opts, now.Add(time.Minute))
	if err != nil || c2.Tokens != c1.Tokens || !c2.LoadedAt.Equal(now) {
		t.Fatalf("same account: new source %v, %v", c2.Tokens != c1.Tokens, err)
	}
	// No token source can be made (upstream.fcm_token_url not https): the
	// error, and the last good account kept, or none.
	bad := creds.FCMTokenOptions{TokenURL: "http://127.0.0.1:9/token"}
	c3, err := creds.NewFCMCredential(spec, sa, c2, bad, now)
	if err == nil || !strings.Contains(err.Error(), "not https") || c3.State != creds.StateDegraded || c3.Tokens != c1.Tokens || c3.LastError != err.Error() {
		t.Fatalf("bad token URL over a good credential: %+v %v", c3, err)
	}
	c4, err := creds.NewFCMCredential(spec, sa, nil, bad, now)
	if err == nil || c4.Usable() || c4.State != creds.StateMissing {
		t.Fatalf("bad token URL: %+v %v", c4, err)
	}
	if c5, err := creds.NewFCMCredential(spec, nil, nil, opts, now); err == nil || c5.Usable() || c5.State != creds.StateMissing {
		t.Fatalf("no account: %+v %v", c5, err)
	}
}
