package fcm_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/proxy/fcm"
)

// A service-account key swapped under load, the way the credential store
// does it (creds.LoadFCMCredential, publish, close the token source the
// published credential no longer holds): no notification fails, and the new key is in use at once.
func TestKeySwapUnderLoad(t *testing.T) {
	t.Parallel()
	f, err := fakefcm.New(fakefcm.Options{MaxRecords: 10000})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sender, err := fcm.New(fcm.Options{URL: f.URL(), RootCAs: f.CertPool()})
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "sa.json")
	spec := creds.FCMSpec{Name: "default", ServiceAccountFile: path}
	opts := creds.FCMTokenOptions{RootCAs: f.CertPool()}

	keys := []*rsa.PrivateKey{key(t)}
	for range 2 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	kid := func(i int) string { return fmt.Sprintf("%040x", i+1) } // private_key_id: 40 hex digits
	write := func(i int) {
		f.AddServiceAccount(email, kid(i), &keys[i].PublicKey, project)
		data, err := creds.EncodeServiceAccount(keys[i], email, kid(i), project, f.TokenURL())
		if err != nil {
			t.Fatal(err)
		}
		// Written beside and renamed over, as an editor or the kubelet does.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(0)
	var cur atomic.Pointer[creds.FCMCredential]
	c, err := creds.LoadFCMCredential(spec, nil, opts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cur.Store(c)

	r := build(t, `"body":"b"`)
	ctx, cancel := context.WithCancel(context.Background())
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c := cur.Load()
				rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, e := sender.Send(rctx, fcm.Delivery{Request: r, Credential: c.Spec.Name, Tokens: c.Tokens})
				rcancel()
				sent.Add(1)
				if e != nil {
					failed.Add(1)
					t.Errorf("failed during a swap: %v", e)
				}
			}
		})
	}
	for i := 1; i < len(keys); i++ {
		time.Sleep(150 * time.Millisecond)
		write(i)
		prev := cur.Load()
		next, err := creds.LoadFCMCredential(spec, prev, opts, time.Now())
		if err != nil || next.Tokens == prev.Tokens {
			t.Fatalf("swap %d: %v", i, err)
		}
		cur.Store(next)
		prev.Tokens.Close()
		// The old key is deleted at Google: only the new one can get tokens.
		f.RemoveKey(kid(i - 1))
		// Within a second, notifications go out with a token of the new key.
		deadline := time.Now().Add(time.Second)
		for {
			fetches := f.TokenFetches()
			last := fetches[len(fetches)-1]
			if last.KeyID == kid(i) && last.Status == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("swap %d: the new key was not used within a second", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	wg.Wait()
	cur.Load().Tokens.Close()
	if failed.Load() != 0 || sent.Load() < 50 {
		t.Fatalf("%d of %d notifications failed", failed.Load(), sent.Load())
	}
	// The last requests carried an access token issued to the newest key.
	reqs := f.Requests()
	lastTok := reqs[len(reqs)-1].AccessToken
	var issuedTo string
	for _, fe := range f.TokenFetches() {
		if fe.AccessToken == lastTok {
			issuedTo = fe.KeyID
		}
	}
	if issuedTo != kid(len(keys)-1) {
		t.Fatalf("last notification used a token of key %q", issuedTo)
	}
}
