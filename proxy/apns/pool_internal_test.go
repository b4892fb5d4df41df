package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/translate"
)

// TestRetiredPoolContextEnds: a pool retired on a key swap lets its
// in-flight stream finish, then closes its connection and ends its
// context, so nothing of it stays registered with the sender until the
// sender closes. A retired pool without connections ends it at once.
func TestRetiredPoolContextEnds(t *testing.T) {
	fake, err := fakeapns.New(fakeapns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const team, kid = "TEAMAAAAAA", "KEYAAAAAAA"
	fake.AddKey(team, kid, &k.PublicKey, "com.example.app")
	c := &creds.APNsCredential{
		Spec: creds.APNsSpec{Name: "a", KeyID: kid, TeamID: team, Topics: []string{"com.example.app"}},
		Key:  k, Tokens: creds.NewTokenSource(kid, team, k, nil, nil),
		Fingerprint: creds.PublicFingerprint(&k.PublicKey), State: creds.StateOK,
	}
	s := New(Options{ProductionURL: fake.URL(), RootCAs: fake.CertPool()})
	defer s.Close()

	var tok [32]byte
	_, _ = rand.Read(tok[:])
	n := &translate.Notification{Title: "hi", To: translate.Recipient{APNs: &translate.APNsRecipient{Token: hex.EncodeToString(tok[:])}}}
	req, e := translate.BuildAPNs(n, translate.APNsTarget{Topic: "com.example.app", Now: time.Now(), NewID: "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f"})
	if e != nil {
		t.Fatal(e)
	}
	fake.Script(req.DeviceToken, fakeapns.Response{Delay: 300 * time.Millisecond})
	done := make(chan *translate.Error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, e := s.Send(ctx, Delivery{Credential: c, Environment: Production, Request: req})
		done <- e
	}()
	var p *pool
	for deadline := time.Now().Add(5 * time.Second); p == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached APNs")
		}
		if len(fake.Requests()) == 1 {
			s.mu.RLock()
			for _, q := range s.pools {
				p = q
			}
			s.mu.RUnlock()
		}
	}
	s.Retain(nil) // the key is gone
	if p.ctx.Err() != nil {
		t.Fatal("the retired pool's context ended while a stream was in flight")
	}
	if e := <-done; e != nil {
		t.Fatalf("the in-flight notification failed: %v", e)
	}
	select {
	case <-p.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the retired pool's context did not end once its connection closed")
	}
	for deadline := time.Now().Add(5 * time.Second); fake.OpenConns() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open after the retired pool drained", fake.OpenConns())
		}
	}

	// A pool with no connection ends its context when retired.
	empty, err := s.pool(c, s.BaseURL(Production))
	if err != nil {
		t.Fatal(err)
	}
	s.Retain(nil)
	if empty.ctx.Err() == nil {
		t.Error("a retired pool without connections kept its context")
	}
}
