package apns_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/proxy/apns"
	"github.com/pushproxy/pushproxy/translate"
)

func healthCred(t *testing.T, fake *fakeapns.Server, team, kid string) *creds.APNsCredential {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fake.AddKey(team, kid, &k.PublicKey, "com.example.app")
	return &creds.APNsCredential{
		Spec: creds.APNsSpec{Name: kid, KeyID: kid, TeamID: team, Topics: []string{"com.example.app"}},
		Key:  k, Tokens: creds.NewTokenSource(kid, team, k, nil, nil),
		Fingerprint: creds.PublicFingerprint(&k.PublicKey), State: creds.StateOK,
	}
}

func healthReq(t *testing.T) *translate.APNsRequest {
	t.Helper()
	var b [32]byte
	_, _ = rand.Read(b[:])
	n := &translate.Notification{Title: "hi", To: translate.Recipient{APNs: &translate.APNsRecipient{Token: hex.EncodeToString(b[:])}}}
	var id [16]byte
	_, _ = rand.Read(id[:])
	h := hex.EncodeToString(id[:])
	r, e := translate.BuildAPNs(n, translate.APNsTarget{Topic: "com.example.app", Now: time.Now(), NewID: h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-8" + h[17:20] + "-" + h[20:]})
	if e != nil {
		t.Fatal(e)
	}
	return r
}

func healthSend(t *testing.T, s *apns.Sender, c *creds.APNsCredential, timeout time.Duration) *translate.Error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, e := s.Send(ctx, apns.Delivery{Credential: c, Environment: apns.Production, Request: healthReq(t)})
	return e
}

// TestIdleConnectionsClose: an idle connection is closed after the
// configured time; the next notification opens a new one.
func TestIdleConnectionsClose(t *testing.T) {
	fake, err := fakeapns.New(fakeapns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	c := healthCred(t, fake, "TEAMAAAAAA", "KEYAAAAAAA")
	s := apns.New(apns.Options{ProductionURL: fake.URL(), RootCAs: fake.CertPool(), IdleConnTimeout: 150 * time.Millisecond})
	defer s.Close()
	for range 3 {
		if e := healthSend(t, s, c, 5*time.Second); e != nil {
			t.Fatal(e)
		}
	}
	if n := fake.Conns(); n != 1 {
		t.Fatalf("%d connections for three sends, want one long-lived", n)
	}
	waitUntil(t, "the idle connection to close", func() bool { return s.Conns() == 0 })
	if e := healthSend(t, s, c, 5*time.Second); e != nil {
		t.Fatal(e)
	}
	if n := fake.Conns(); n != 2 {
		t.Fatalf("%d connections: the idle one was not closed", n)
	}
}

// relay forwards TCP between the sender and the fake; freeze() makes the
// connections open so far silently drop everything (a dead peer behind a
// NAT), while new connections work.
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*relayConn
	wg     sync.WaitGroup
}

type relayConn struct {
	a, b   net.Conn
	frozen atomic.Bool
}

func newRelay(t *testing.T, target string) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target}
	r.wg.Go(func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			rc := &relayConn{a: a, b: b}
			r.mu.Lock()
			r.conns = append(r.conns, rc)
			r.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 && !rc.frozen.Load() {
						if _, werr := dst.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						_ = dst.Close()
						return
					}
				}
			}
			r.wg.Go(func() { pipe(b, a) })
			r.wg.Go(func() { pipe(a, b) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.a.Close()
			c.b.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.frozen.Store(true)
	}
}

// TestDeadConnectionReplaced: a connection whose peer went silent is
// detected by PING and replaced; the next notification is delivered on a
// new connection instead of hanging.
func TestDeadConnectionReplaced(t *testing.T) {
	fake, err := fakeapns.New(fakeapns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	r := newRelay(t, fake.URL()[len("https://"):])
	c := healthCred(t, fake, "TEAMAAAAAA", "KEYAAAAAAA")
	s := apns.New(apns.Options{ProductionURL: "https://" + r.ln.Addr().String(), RootCAs: fake.CertPool(),
		ReadIdleTimeout: 100 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	defer s.Close()
	if e := healthSend(t, s, c, 5*time.Second); e != nil {
		t.Fatal(e)
	}
	r.freeze()
	waitUntil(t, "the dead connection to be closed (idle → PING → no PONG)", func() bool { return s.Conns() == 0 })
	start := time.Now()
	if e := healthSend(t, s, c, 3*time.Second); e != nil {
		t.Fatalf("after the connection died: %v", e)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v: the dead connection was used", el)
	}
	if n := fake.Conns(); n != 2 {
		t.Errorf("%d connections, want the dead one replaced", n)
	}
}

// TestPoolGrowsAtStreamLimit: when every connection carries the server's
// stream limit, the pool opens another, up to its cap; nothing fails.
func TestPoolGrowsAtStreamLimit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		maxConns      int
		wantMin, want int
	}{{"grows", 8, 3, 8}, {"capped", 2, 2, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			fake, err := fakeapns.New(fakeapns.Options{MaxConcurrentStreams: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer fake.Close()
			fake.SetDefault(&fakeapns.Response{Delay: 150 * time.Millisecond})
			c := healthCred(t, fake, "TEAMAAAAAA", "KEYAAAAAAA")
			s := apns.New(apns.Options{ProductionURL: fake.URL(), RootCAs: fake.CertPool(), MaxConnsPerPool: tc.maxConns})
			defer s.Close()
			// Let the first connection learn the server's limit.
			if e := healthSend(t, s, c, 5*time.Second); e != nil {
				t.Fatal(e)
			}
			var wg sync.WaitGroup
			for range 6 {
				wg.Go(func() {
					if e := healthSend(t, s, c, 5*time.Second); e != nil {
						t.Error(e)
					}
				})
			}
			wg.Wait()
			if n := fake.Conns(); n < tc.wantMin || n > tc.want {
				t.Errorf("%d connections, want %d to %d", n, tc.wantMin, tc.want)
			}
		})
	}
}

// TestOneKeyPerConnection: two keys of one team never share a connection.
func TestOneKeyPerConnection(t *testing.T) {
	fake, err := fakeapns.New(fakeapns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	c1 := healthCred(t, fake, "TEAMAAAAAA", "KEYAAAAAAA")
	c2 := healthCred(t, fake, "TEAMAAAAAA", "KEYBBBBBBB")
	s := apns.New(apns.Options{ProductionURL: fake.URL(), RootCAs: fake.CertPool()})
	defer s.Close()
	for range 2 {
		for _, c := range []*creds.APNsCredential{c1, c2} {
			if e := healthSend(t, s, c, 5*time.Second); e != nil {
				t.Fatal(e)
			}
		}
	}
	byKey := map[string]map[uint64]bool{}
	for _, r := range fake.Requests() {
		if byKey[r.KeyID] == nil {
			byKey[r.KeyID] = map[uint64]bool{}
		}
		byKey[r.KeyID][r.Conn] = true
	}
	for conn := range byKey["KEYAAAAAAA"] {
		if byKey["KEYBBBBBBB"][conn] {
			t.Fatal("two keys shared a connection")
		}
	}
}

// waitUntil polls cond until it holds, failing after 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
