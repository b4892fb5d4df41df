package creds_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
)

// The Store with FCM service accounts: loaded and watched like the other
// credentials, the token source kept while the account stays the same and
// warmed off the request path, a swapped or removed account's source
// closed once unpublished, a bad file keeping the last good account, and
// a fetch counted as kind "fcm".
func TestStoreFCM(t *testing.T) {
	f := fcmFake(t, fakefcm.Options{})
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	if err := os.WriteFile(a, saJSON(t, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int64
	var logs syncBuffer
	var reloads recorder
	spec := creds.Spec{FCM: []creds.FCMSpec{{Name: "default", ServiceAccountFile: a}, {Name: "other", ServiceAccountFile: b}}, FCMTokenURL: f.TokenURL()}
	st := creds.NewStore(spec, creds.Options{
		RootCAs: f.CertPool(), Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnReload: reloads.OnReload,
		OnSign: func(kind string) {
			if kind != "fcm" {
				t.Errorf("kind %q", kind)
			}
			fetches.Add(1)
		},
	})
	defer st.Close()
	if !slices.Equal(st.Paths(), []string{a, b}) {
		t.Fatalf("paths %v", st.Paths())
	}
	snap := st.Snapshot()
	def, other := snap.FCMByName("default"), snap.FCMByName("other")
	if !def.Usable() || def.State != creds.StateOK || other.Usable() || other.State != creds.StateMissing || snap.FCMByName("x") != nil ||
		!slices.Equal(snap.FCMNames(), []string{"default", "other"}) {
		t.Fatalf("default %+v other %+v", def, other)
	}
	// The first token is fetched right after the load, without a request.
	waitUntil(t, "the warm-up fetch", func() bool { return def.Tokens.Info().TokenExpiry.After(time.Now()) })
	if fetches.Load() != 1 || len(f.TokenFetches()) != 1 {
		t.Fatalf("%d fetches", fetches.Load())
	}

	// Nothing changed: the same snapshot, the same source.
	if st.Reload() || st.Snapshot().FCM[0].Tokens != def.Tokens {
		t.Fatal("a reload without change replaced something")
	}
	// A corrupt file: the last good account, degraded; its source kept.
	if err := os.WriteFile(a, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	st.Reload()
	if c := st.Snapshot().FCM[0]; c.State != creds.StateDegraded || c.Tokens != def.Tokens || !strings.Contains(c.LastError, "malformed") {
		t.Fatalf("%+v", c)
	}
	if !strings.Contains(logs.String(), "keeping the last good key") {
		t.Fatalf("logs: %s", logs.String())
	}
	// A new key of the same account: a new source, the old one closed.
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const kid2 = "00000000000000000000000000000000000000b2"
	f.AddServiceAccount(saEmail, kid2, &k2.PublicKey, saProject)
	data, err := creds.EncodeServiceAccount(k2, saEmail, kid2, saProject, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if !st.Reload() {
		t.Fatal("a new key is a change")
	}
	swapped := st.Snapshot().FCM[0]
	if swapped.Tokens == def.Tokens || swapped.Account.PrivateKeyID != kid2 || swapped.State != creds.StateOK {
		t.Fatalf("%+v", swapped)
	}
	waitUntil(t, "the new key's token", func() bool { return swapped.Tokens.Info().TokenExpiry.After(time.Now()) })
	// The old source is closed: it renews nothing (its cached token still
	// answers the requests that hold the old snapshot).
	if err := refreshClosed(def.Tokens); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("old source after the swap: %v", err)
	}

	// New roots: a new source (the token endpoint's trust changed).
	st.SetRootCAs(f.CertPool())
	st.Reload()
	if st.Snapshot().FCM[0].Tokens != swapped.Tokens {
		t.Fatal("equal roots replaced the source")
	}

	// The credential leaves the configuration: its source is closed.
	st.SetSpec(creds.Spec{FCM: []creds.FCMSpec{{Name: "other", ServiceAccountFile: b}}, FCMTokenURL: f.TokenURL()})
	if !st.Reload() {
		t.Fatal("removing a credential is a change")
	}
	if err := refreshClosed(swapped.Tokens); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("removed credential's source: %v", err)
	}
	if n := len(st.Snapshot().FCM); n != 1 {
		t.Fatalf("%d fcm credentials", n)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") || strings.Contains(logs.String(), "ya29.") {
		t.Fatalf("a secret in the logs: %s", logs.String())
	}
}

// refreshClosed asks src for a token other than its cached one: a closed
// source cannot fetch one.
func refreshClosed(src *creds.FCMTokenSource) error {
	tok, err := src.Token(context.Background())
	if err != nil {
		return err
	}
	_, err = src.Refresh(context.Background(), tok.AccessToken)
	return err
}

// waitUntil polls cond for up to 5 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
