package creds_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	const kid2 = "00000000000000000000000000000000000000b2"
	data := newAccountKey(t, f, kid2)
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

// TestStoreReloadNotHeldUpByTokenSource: a reload that retires a token
// source whose token request hangs (a retired source's fetch in flight is
// not cancelled but let finish, up to FetchTimeout, so that its waiters get
// its token) is not held up by it, nor are the store's readers or the next
// reload; the retired source refuses new fetches as soon as the reload
// returns, and Store.Close cancels its request (the request carries the
// fetch's context) and waits for it to end, leaving no goroutine behind.
func TestStoreReloadNotHeldUpByTokenSource(t *testing.T) {
	f := fcmFake(t, fakefcm.Options{})
	dir := t.TempDir()
	path := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(path, saJSON(t, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	// The first token request, the warm-up of the first key's source,
	// stalls for a minute (longer than FetchTimeout, 30 s), or until it is
	// cancelled or the fake closes.
	f.ScriptToken(fakefcm.TokenResponse{Delay: time.Minute})
	var ended atomic.Int64 // token requests that ended (OnSign "fcm" follows each)
	st := creds.NewStore(creds.Spec{FCM: []creds.FCMSpec{{Name: "default", ServiceAccountFile: path}}, FCMTokenURL: f.TokenURL()},
		creds.Options{RootCAs: f.CertPool(), OnSign: func(string) { ended.Add(1) }})
	// On failure, end the stalled request first, in case Store.Close does
	// not: it waits for it.
	t.Cleanup(func() { _ = f.Close(); st.Close() })
	old := st.Snapshot().FCM[0].Tokens
	waitUntil(t, "the warm-up token request", func() bool { return len(f.TokenFetches()) == 1 })

	// A new key of the account: the reload retires the source whose
	// request hangs.
	const kid2 = "00000000000000000000000000000000000000c3"
	data := newAccountKey(t, f, kid2)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	// A reader calls the store throughout; inCall is when its call in
	// progress started (0: none).
	var inCall, worst atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			inCall.Store(start.UnixNano())
			_ = st.Snapshot()
			_ = st.Paths()
			inCall.Store(0)
			if d := int64(time.Since(start)); d > worst.Load() {
				worst.Store(d)
			}
			time.Sleep(time.Millisecond)
		}
	})
	reloaded := make(chan bool, 1)
	go func() { reloaded <- st.Reload() }()
	select {
	case changed := <-reloaded:
		if !changed {
			t.Error("a new key reported no change")
		}
	case <-time.After(2 * time.Second):
		stuck := time.Duration(0)
		if at := inCall.Load(); at != 0 {
			stuck = time.Since(time.Unix(0, at))
		}
		close(stop) // the reader may be stuck: not waited for
		t.Fatalf("Reload still running after 2 s, held up by the retired token source's request; a reader's call has waited %v", stuck)
	}
	close(stop)
	wg.Wait()
	if d := time.Duration(worst.Load()); d > time.Second {
		t.Errorf("a reader waited %v during the reload", d)
	}
	cur := st.Snapshot().FCM[0]
	if cur.Tokens == old || cur.Account.PrivateKeyID != kid2 || cur.State != creds.StateOK {
		t.Fatalf("after the reload: %+v", cur)
	}
	// A caller of the retired source joins its hanging request (bounded by
	// the caller's deadline) and starts no other; the new key's source gets
	// its token while the old request still hangs.
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := old.Token(short)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller of the retired source while its request hangs: %v, want its own deadline", err)
	}
	waitUntil(t, "the new key's token", func() bool { return cur.Tokens.Info().TokenExpiry.After(time.Now()) })
	// The next reload and the readers do not wait for it either.
	start := time.Now()
	st.Reload()
	st.SetSpec(creds.Spec{FCM: []creds.FCMSpec{{Name: "default", ServiceAccountFile: path}}, FCMTokenURL: f.TokenURL()})
	_ = st.Paths()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a reload and a reader took %v while a retired source's request hangs", d)
	}

	// The retired source's request still hangs: nothing cancelled it.
	if n, e := len(f.TokenFetches()), ended.Load(); n != 2 || e != 1 {
		t.Fatalf("%d token requests made, %d ended; want the retired source's still running", n, e)
	}
	// Store.Close cancels it and returns once it has ended, without the
	// endpoint answering.
	closed := make(chan struct{})
	go func() { st.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Store.Close did not cancel the retired source's hanging token request")
	}
	if n, e := len(f.TokenFetches()), ended.Load(); n != 2 || e != int64(n) {
		t.Fatalf("%d token requests made, %d ended when Store.Close returned", n, e)
	}
}

// TestStoreRetireLetsFetchFinish: a reload that retires a token source
// while a caller waits for that source's first token (a notification that
// loaded the previous snapshot) does not cancel the fetch: the caller gets
// the token, the reload returns without waiting for the fetch, the retired
// source refuses new fetches, and Store.Close leaves nothing running.
func TestStoreRetireLetsFetchFinish(t *testing.T) {
	f := fcmFake(t, fakefcm.Options{})
	dir := t.TempDir()
	path := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(path, saJSON(t, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	const delay = 700 * time.Millisecond
	f.ScriptToken(fakefcm.TokenResponse{Delay: delay}) // the first token request answers slowly
	var ended atomic.Int64                             // token fetches that ended (OnSign "fcm" follows each)
	var logs syncBuffer
	// No warm-up: the waiter's own Token call starts the first fetch, so
	// once the request reaches the endpoint the waiter is waiting for it.
	st := creds.NewStore(creds.Spec{FCM: []creds.FCMSpec{{Name: "default", ServiceAccountFile: path}}, FCMTokenURL: f.TokenURL()},
		creds.Options{RootCAs: f.CertPool(), NoFCMWarm: true, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			OnSign: func(string) { ended.Add(1) }})
	t.Cleanup(st.Close)
	old := st.Snapshot().FCM[0].Tokens

	type result struct {
		tok creds.FCMToken
		err error
	}
	got := make(chan result, 1)
	go func() {
		tok, err := old.Token(context.Background())
		got <- result{tok, err}
	}()
	waitUntil(t, "the first token request", func() bool { return len(f.TokenFetches()) == 1 })

	// A new key of the account: the reload retires the source whose fetch
	// is in flight.
	const kid2 = "00000000000000000000000000000000000000e5"
	data := newAccountKey(t, f, kid2)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !st.Reload() {
		t.Fatal("a new key reported no change")
	}
	took := time.Since(start)
	select {
	case r := <-got:
		t.Fatalf("the reload returned after %v, once the retired source's fetch had ended (token %v, error %v): it waited for the fetch", took, r.tok.AccessToken != "", r.err)
	default:
	}
	if cur := st.Snapshot().FCM[0]; cur.Tokens == old || cur.Account.PrivateKeyID != kid2 {
		t.Fatalf("after the reload: %+v", cur)
	}
	// A caller that reaches the retired source now, while its fetch runs
	// (it loaded the snapshot before the swap), joins that fetch: no
	// refusal, no second request.
	late := make(chan result, 1)
	go func() {
		tok, err := old.Token(context.Background())
		late <- result{tok, err}
	}()

	// The waiter gets the fetch's token.
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("the caller waiting on the retired source's fetch got %v; want its token", r.err)
		}
		if r.tok.AccessToken == "" || !r.tok.Expiry.After(time.Now()) {
			t.Fatalf("the caller got %+v", r.tok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the caller waiting on the retired source's fetch got no answer")
	}
	select {
	case r := <-late:
		if r.err != nil || r.tok.AccessToken == "" {
			t.Fatalf("a caller that reached the retired source during its fetch got %v; want the fetch's token", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a caller that reached the retired source during its fetch got no answer")
	}
	if strings.Contains(logs.String(), "FCM access token request failed") {
		t.Fatalf("a token request failed: %s", logs.String())
	}
	if fs := f.TokenFetches(); len(fs) != 1 || fs[0].Status != 200 {
		t.Fatalf("token requests %+v; want one, answered 200", fs)
	}

	st.Close()
	if n, e := len(f.TokenFetches()), ended.Load(); e != int64(n) {
		t.Fatalf("Store.Close returned with %d of %d token requests still running", int64(n)-e, n)
	}
	if err := refreshClosed(old); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("the retired source after Store.Close: %v", err)
	}
}

// TestStoreFCMConcurrentReloads: reloads racing with key swaps publish
// whole credentials (a token source always of the account it is published
// with), the last reload publishes what it read, every token source
// retired on the way is closed and the one in force is not, and Store.Close
// leaves no token request running.
func TestStoreFCMConcurrentReloads(t *testing.T) {
	f := fcmFake(t, fakefcm.Options{})
	const kid2 = "00000000000000000000000000000000000000d4"
	second := newAccountKey(t, f, kid2)
	files := [][]byte{saJSON(t, ""), second}
	dir := t.TempDir()
	path := filepath.Join(dir, "sa.json")
	// write puts a key file in place whole (beside, then renamed over).
	write := func(tmp string, data []byte) {
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Error(err)
		}
	}
	write(path+".tmp", files[0])
	var ended atomic.Int64 // token requests that ended
	st := creds.NewStore(creds.Spec{FCM: []creds.FCMSpec{{Name: "default", ServiceAccountFile: path}}, FCMTokenURL: f.TokenURL()},
		creds.Options{RootCAs: f.CertPool(), OnSign: func(string) { ended.Add(1) }})
	t.Cleanup(st.Close)

	var mu sync.Mutex
	seen := map[*creds.FCMTokenSource]bool{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 12 {
				write(fmt.Sprintf("%s.%d.tmp", path, g), files[(g+i)%2])
				st.Reload()
				c := st.Snapshot().FCM[0]
				if !c.Usable() || c.State != creds.StateOK {
					t.Errorf("credential %+v during reloads", c)
					return
				}
				if a := c.Tokens.Account(); a.PrivateKeyID != c.Account.PrivateKeyID || a.Fingerprint != c.Fingerprint {
					t.Errorf("published with the token source of key %s, the account of key %s", a.PrivateKeyID, c.Account.PrivateKeyID)
					return
				}
				mu.Lock()
				seen[c.Tokens] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	write(path+".tmp", files[1])
	st.Reload()
	final := st.Snapshot().FCM[0]
	if st.Reload() || st.Snapshot().FCM[0] != final {
		t.Error("a reload with no file changed published a change")
	}
	if final.Account.PrivateKeyID != kid2 {
		t.Fatalf("the last reload published key %s, want %s", final.Account.PrivateKeyID, kid2)
	}
	if len(seen) < 2 {
		t.Fatalf("%d token sources seen: the keys were not swapped", len(seen))
	}
	for src := range seen {
		if src == final.Tokens {
			continue
		}
		if err := refreshClosed(src); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Fatalf("a retired source (key %s): %v", src.Account().PrivateKeyID, err)
		}
	}
	if err := refreshClosed(final.Tokens); err != nil {
		t.Fatalf("the source in force: %v", err)
	}
	st.Close()
	// Every request that reached the endpoint has ended; fetches that
	// Close cancelled before they reached it end too, without a request,
	// so more may have ended than were made.
	if n, e := len(f.TokenFetches()), ended.Load(); e < int64(n) {
		t.Fatalf("%d token requests made, %d ended when Store.Close returned", n, e)
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

// newAccountKey makes another key of the test service account, known to the
// fake's token endpoint under kid, and returns its key file.
func newAccountKey(t *testing.T, f *fakefcm.Server, kid string) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.AddServiceAccount(saEmail, kid, &k.PublicKey, saProject)
	data, err := creds.EncodeServiceAccount(k, saEmail, kid, saProject, "")
	if err != nil {
		t.Fatal(err)
	}
	return data
}
