package webpush_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/proxy/webpush"
	"github.com/pushproxy/pushproxy/translate"
)

const (
	primaryName = "2026-11"
	oldName     = "2026-08"
	subject     = "mailto:ops@example.com"
)

// env is a fake push service on loopback and a sender allowed to reach it,
// with a keyring of two VAPID keys (primary first).
type env struct {
	t       *testing.T
	fake    *fakepush.Server
	sender  *webpush.Sender
	keys    []webpush.KeyRef
	primary *creds.VAPIDKey
	old     *creds.VAPIDKey
	signs   map[string]*atomic.Int64
	now     func() time.Time
}

func newKey(t testing.TB) *creds.VAPIDKey {
	t.Helper()
	j, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		t.Fatal(err)
	}
	k, err := creds.ParseVAPIDKey(j)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newEnv(t *testing.T, style string, mod func(o *webpush.Options)) *env {
	t.Helper()
	fake, err := fakepush.New(fakepush.Options{Style: style})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	e := &env{t: t, fake: fake, primary: newKey(t), old: newKey(t), signs: map[string]*atomic.Int64{}, now: time.Now}
	for _, k := range []struct {
		name string
		key  *creds.VAPIDKey
	}{{primaryName, e.primary}, {oldName, e.old}} {
		c := &atomic.Int64{}
		e.signs[k.name] = c
		e.keys = append(e.keys, webpush.KeyRef{Name: k.name, Signer: creds.NewVAPIDSigner(k.key, subject, nil, func() { c.Add(1) })})
	}
	o := webpush.Options{RootCAs: fake.CertPool(), AllowEndpoints: []string{"127.0.0.1"}, AllowPrivateNetworks: true}
	if mod != nil {
		mod(&o)
	}
	e.sender = webpush.New(o)
	t.Cleanup(e.sender.Close)
	return e
}

func (e *env) subscribe(key *creds.VAPIDKey) *fakepush.Subscription {
	e.t.Helper()
	s, err := e.fake.Subscribe(fakepush.SubscribeOptions{VAPIDKey: key.PublicB64})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// delivery builds a Delivery the way the proxy will: the subscription's
// JSON through translate.ValidateSubscription, the notification through
// translate.BuildWebPush.
func (e *env) delivery(s *fakepush.Subscription, n *translate.Notification) webpush.Delivery {
	e.t.Helper()
	r := &translate.WebPushRecipient{Endpoint: s.Endpoint, Keys: translate.WebPushKeys{P256DH: s.Keys.P256DH, Auth: s.Keys.Auth}}
	sub, err := translate.ValidateSubscription(r)
	if err != nil {
		e.t.Fatal(err)
	}
	if n == nil {
		n = &translate.Notification{Title: "Order shipped", Body: "On its way", URL: "https://shop.example/o/1", CollapseID: "order-1", Priority: "high"}
	}
	n.To.WebPush = r
	m, err := translate.BuildWebPush(n, translate.WebPushTarget{DefaultTTL: 3600, NewID: "0f0e0d0c-0b0a-4909-8807-060504030201"})
	if err != nil {
		e.t.Fatal(err)
	}
	return webpush.Delivery{Subscription: sub, Message: m, Keys: e.keys}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSendDeliversAndTheFakeDecrypts(t *testing.T) {
	e := newEnv(t, fakepush.StyleMozilla, nil)
	s := e.subscribe(e.primary)
	d := e.delivery(s, nil)
	res, err := e.sender.Send(ctxFor(t, 5*time.Second), d)
	if err != nil {
		t.Fatal(err)
	}
	if res.Credential != primaryName || res.Attempts != 1 || res.Upstream.Status != 201 || res.Platform != "webpush" || res.ID != d.Message.ID {
		t.Fatalf("result %+v", res)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if string(r.Plaintext) != string(d.Message.Plaintext) || r.DecryptError != "" {
		t.Fatalf("plaintext %q (%s)", r.Plaintext, r.DecryptError)
	}
	want := map[string]string{"Ttl": "3600", "Urgency": "high", "Topic": "order-1", "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream"}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if r.Claims["aud"] != e.fake.URL() || r.Claims["sub"] != subject || !r.KeyMatches || r.Proto != "HTTP/2.0" {
		t.Fatalf("claims %v key matches %v proto %s", r.Claims, r.KeyMatches, r.Proto)
	}
	if len(r.Body) != webpush.EncryptedLen(len(d.Message.Plaintext), false) {
		t.Fatalf("body %d bytes for %d of plaintext", len(r.Body), len(d.Message.Plaintext))
	}
	var msg map[string]any
	if json.Unmarshal(r.Plaintext, &msg) != nil || msg["web_push"] != float64(8030) {
		t.Fatalf("plaintext %s", r.Plaintext)
	}
}

func TestSendIgnoresProxyEnvironment(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("https_proxy", "http://127.0.0.1:1")
	e := newEnv(t, fakepush.StyleFCM, nil)
	if _, err := e.sender.Send(ctxFor(t, 5*time.Second), e.delivery(e.subscribe(e.primary), nil)); err != nil {
		t.Fatal(err)
	}
}

// Key rotation: a subscription made with the old key, sent without
// vapid_key: the primary is refused as a mismatch, the old key is tried and
// accepted, and the answer names it. In every service's style.
func TestRotationFallsBackToTheOldKey(t *testing.T) {
	for _, style := range []string{fakepush.StyleMozilla, fakepush.StyleFCM, fakepush.StyleApple, fakepush.StyleWNS} {
		e := newEnv(t, style, nil)
		s := e.subscribe(e.old)
		res, err := e.sender.Send(ctxFor(t, 5*time.Second), e.delivery(s, nil))
		if err != nil {
			t.Fatalf("%s: %v", style, err)
		}
		if res.Credential != oldName || res.Attempts != 2 {
			t.Fatalf("%s: result %+v", style, res)
		}
		reqs := e.fake.Requests()
		if len(reqs) != 2 || reqs[0].KeyMatches || !reqs[1].KeyMatches || string(reqs[1].Plaintext) == "" {
			t.Fatalf("%s: requests %+v", style, reqs)
		}
	}
}

func TestRotationWithVAPIDKeyNamed(t *testing.T) {
	e := newEnv(t, fakepush.StyleApple, nil)
	s := e.subscribe(e.old)
	d := e.delivery(s, nil)
	d.Preferred = oldName
	res, err := e.sender.Send(ctxFor(t, 5*time.Second), d)
	if err != nil || res.Credential != oldName || res.Attempts != 1 || len(e.fake.Requests()) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	// A vapid_key that is stale (the subscription moved to the primary) is
	// corrected the same way.
	s2 := e.subscribe(e.primary)
	d = e.delivery(s2, nil)
	d.Preferred = oldName
	res, err = e.sender.Send(ctxFor(t, 5*time.Second), d)
	if err != nil || res.Credential != primaryName || res.Attempts != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	// An unknown vapid_key: the keyring order applies.
	d.Preferred = "no-such-key"
	if res, err = e.sender.Send(ctxFor(t, 5*time.Second), d); err != nil || res.Credential != primaryName {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestRotationNoKeyWorks(t *testing.T) {
	for _, style := range []string{fakepush.StyleMozilla, fakepush.StyleFCM, fakepush.StyleApple, fakepush.StyleWNS} {
		e := newEnv(t, style, nil)
		s := e.subscribe(newKey(t))
		_, err := e.sender.Send(ctxFor(t, 5*time.Second), e.delivery(s, nil))
		if err == nil {
			t.Fatalf("%s: delivered", style)
		}
		if err.Code != translate.CodeVAPIDKeyMismatch || err.Action != translate.ActionResubscribe || err.Retryable ||
			!strings.Contains(err.Message, primaryName) || !strings.Contains(err.Message, oldName) || err.Upstream == nil {
			t.Fatalf("%s: %+v", style, err)
		}
		if n := len(e.fake.Requests()); n != 2 {
			t.Fatalf("%s: %d requests", style, n)
		}
	}
}

func TestSingleKeyMismatch(t *testing.T) {
	e := newEnv(t, fakepush.StyleFCM, nil)
	s := e.subscribe(newKey(t))
	d := e.delivery(s, nil)
	d.Keys = d.Keys[:1]
	_, err := e.sender.Send(ctxFor(t, 5*time.Second), d)
	if err == nil || err.Code != translate.CodeVAPIDKeyMismatch || err.Upstream.Status != 403 {
		t.Fatalf("%+v", err)
	}
}

// One VAPID signature per (key, audience) across many sends, concurrent
// ones included.
func TestOneSignaturePerKeyAndAudience(t *testing.T) {
	e := newEnv(t, fakepush.StyleMozilla, nil)
	subs := []*fakepush.Subscription{e.subscribe(e.primary), e.subscribe(e.primary), e.subscribe(e.old)}
	var wg sync.WaitGroup
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.sender.Send(ctxFor(t, 10*time.Second), e.delivery(subs[i%3], nil)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p, o := e.signs[primaryName].Load(), e.signs[oldName].Load(); p != 1 || o != 1 {
		t.Fatalf("signatures: primary %d, old %d", p, o)
	}
}

// 5xx and 429 are retried with back-off inside the deadline; 4xx never.
func TestRetries(t *testing.T) {
	var attempts []int
	var mu sync.Mutex
	e := newEnv(t, fakepush.StyleMozilla, func(o *webpush.Options) {
		o.OnAttempt = func(_ time.Duration, status int) { mu.Lock(); attempts = append(attempts, status); mu.Unlock() }
	})
	s := e.subscribe(e.primary)
	e.fake.Script(s.ID, fakepush.Response{Status: 503}, fakepush.Response{Status: 500})
	res, err := e.sender.Send(ctxFor(t, 10*time.Second), e.delivery(s, nil))
	if err != nil || res.Attempts != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	if len(attempts) != 3 || attempts[0] != 503 || attempts[2] != 201 {
		t.Fatalf("attempts %v", attempts)
	}

	// Exhausted: upstream_unavailable after MaxAttempts.
	e.fake.Script(s.ID, fakepush.Response{Status: 503}, fakepush.Response{Status: 503}, fakepush.Response{Status: 503})
	_, err = e.sender.Send(ctxFor(t, 10*time.Second), e.delivery(s, nil))
	if err == nil || err.Code != translate.CodeUpstreamUnavailable || !strings.Contains(err.Message, "after 3 attempts") {
		t.Fatalf("%+v", err)
	}

	// Never a 4xx.
	for _, status := range []int{400, 404, 410, 413} {
		e.fake.Reset()
		e.fake.Script(s.ID, fakepush.Response{Status: status})
		_, err := e.sender.Send(ctxFor(t, 10*time.Second), e.delivery(s, nil))
		if err == nil || len(e.fake.Requests()) != 1 {
			t.Fatalf("%d: %v, %d requests", status, err, len(e.fake.Requests()))
		}
	}
}

func TestRetryAfterIsHonouredOrReturned(t *testing.T) {
	e := newEnv(t, fakepush.StyleApple, nil)
	s := e.subscribe(e.primary)
	// Retry-After: 1 fits the deadline: waited for, then delivered.
	e.fake.Script(s.ID, fakepush.Response{Status: 429})
	start := time.Now()
	res, err := e.sender.Send(ctxFor(t, 10*time.Second), e.delivery(s, nil))
	if err != nil || res.Attempts != 2 || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("%+v %v after %v", res, err, time.Since(start))
	}
	// It does not fit: rate_limited at once, retry_after passed on.
	e.fake.Script(s.ID, fakepush.Response{Status: 429, Header: http.Header{"Retry-After": {"30"}}, Body: `{"reason":"TooManyRequests"}`})
	start = time.Now()
	_, err = e.sender.Send(ctxFor(t, 2*time.Second), e.delivery(s, nil))
	if err == nil || err.Code != translate.CodeRateLimited || err.RetryAfter != 30 || time.Since(start) > time.Second {
		t.Fatalf("%+v after %v", err, time.Since(start))
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, fakepush.StyleMozilla, nil)
	s := e.subscribe(e.primary)
	e.fake.Script(s.ID, fakepush.Response{Delay: time.Hour})
	_, err := e.sender.Send(ctxFor(t, 300*time.Millisecond), e.delivery(s, nil))
	if err == nil || err.Code != translate.CodeUpstreamTimeout {
		t.Fatalf("%+v", err)
	}
}

// Each service's answers, end to end through the fake, normalised.
func TestServiceAnswersEndToEnd(t *testing.T) {
	cases := map[int]translate.Code{404: "recipient_gone", 410: "recipient_gone", 413: "payload_too_large", 401: "credentials_rejected", 400: "invalid_request"}
	for _, style := range []string{fakepush.StyleMozilla, fakepush.StyleFCM, fakepush.StyleApple, fakepush.StyleWNS} {
		e := newEnv(t, style, nil)
		s := e.subscribe(e.primary)
		for status, want := range cases {
			if style == fakepush.StyleFCM && status == 400 {
				want = translate.CodeInvalidRecipient // FCM's "invalid request" text: by status
			}
			if style == fakepush.StyleApple && status == 404 {
				status = 410
			}
			e.fake.Script(s.ID, fakepush.Response{Status: status})
			d := e.delivery(s, nil)
			d.Keys = d.Keys[:1]
			_, err := e.sender.Send(ctxFor(t, 5*time.Second), d)
			if err == nil || err.Code != want || err.Platform != "webpush" || err.Upstream == nil || err.Upstream.Status == 0 {
				t.Errorf("%s %d: %+v, want %s", style, status, err, want)
			}
		}
		// Unsubscribed: gone.
		e.fake.Unsubscribe(s.ID)
		_, err := e.sender.Send(ctxFor(t, 5*time.Second), e.delivery(s, nil))
		if err == nil || err.Code != translate.CodeRecipientGone || err.Action != translate.ActionRemoveRecipient {
			t.Errorf("%s gone: %+v", style, err)
		}
	}
}

func TestPayloadTooLargeBeforeSending(t *testing.T) {
	e := newEnv(t, fakepush.StyleMozilla, nil)
	s := e.subscribe(e.primary)
	d := e.delivery(s, nil)
	d.Message.Plaintext = make([]byte, translate.WebPushMaxPlaintext+1)
	_, err := e.sender.Send(ctxFor(t, 5*time.Second), d)
	if err == nil || err.Code != translate.CodePayloadTooLarge || e.fake.Conns() != 0 {
		t.Fatalf("%+v, %d connections", err, e.fake.Conns())
	}
	// The largest that fits, padded to buckets, is delivered.
	e2 := newEnv(t, fakepush.StyleMozilla, func(o *webpush.Options) { o.PadToBuckets = true })
	s2 := e2.subscribe(e2.primary)
	d2 := e2.delivery(s2, nil)
	d2.Message.Plaintext = make([]byte, translate.WebPushMaxPlaintext)
	if _, err := e2.sender.Send(ctxFor(t, 5*time.Second), d2); err != nil {
		t.Fatal(err)
	}
	d2 = e2.delivery(s2, nil)
	if _, err := e2.sender.Send(ctxFor(t, 5*time.Second), d2); err != nil {
		t.Fatal(err)
	}
	if r := e2.fake.Requests()[1]; len(r.Body) != webpush.EncryptedLen(len(d2.Message.Plaintext), true) || len(r.Body) != 86+256+17 || string(r.Plaintext) != string(d2.Message.Plaintext) {
		t.Fatalf("padded body %d bytes", len(r.Body))
	}
}

func TestDryRunSendsNothing(t *testing.T) {
	e := newEnv(t, fakepush.StyleMozilla, nil)
	s := e.subscribe(e.primary)
	d := e.delivery(s, nil)
	p, err := e.sender.Preview(d)
	if err != nil {
		t.Fatal(err)
	}
	if e.fake.Conns() != 0 || p == nil {
		t.Fatalf("%+v, %d connections", p, e.fake.Conns())
	}
	if p.URL != e.fake.URL()+"/…" || strings.Contains(p.URL, s.ID) || strings.Contains(p.Headers[":endpoint"], s.ID) {
		t.Fatalf("the endpoint path leaks: %q %q", p.URL, p.Headers[":endpoint"])
	}
	if p.TokenClaims["aud"] != e.fake.URL() || p.TokenHeader["alg"] != "ES256" || !strings.Contains(p.Headers["Authorization"], "k="+e.primary.PublicB64) {
		t.Fatalf("%+v", p)
	}
	if strings.Count(p.Headers["Authorization"], ".") > 0 {
		t.Fatalf("the JWT is shown: %q", p.Headers["Authorization"])
	}
	if p.Headers["TTL"] != "3600" || p.Headers["Content-Encoding"] != "aes128gcm" || p.PayloadSize != webpush.EncryptedLen(len(d.Message.Plaintext), false) {
		t.Fatalf("%+v", p.Headers)
	}
	if string(p.Payload) != string(d.Message.Plaintext) {
		t.Fatalf("payload %s", p.Payload)
	}
}

func TestNoKeys(t *testing.T) {
	e := newEnv(t, fakepush.StyleMozilla, nil)
	d := e.delivery(e.subscribe(e.primary), nil)
	d.Keys = nil
	if _, err := e.sender.Send(ctxFor(t, time.Second), d); err == nil || err.Code != translate.CodeCredentialsMissing {
		t.Fatalf("%+v", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	e := newEnv(t, fakepush.StyleMozilla, nil)
	s := e.subscribe(e.primary)
	other := e.subscribe(e.primary)
	e.fake.Script(s.ID, fakepush.Response{Status: 307, Header: http.Header{"Location": {other.Endpoint}}})
	d := e.delivery(s, nil)
	d.Keys = d.Keys[:1]
	_, err := e.sender.Send(ctxFor(t, 5*time.Second), d)
	if err == nil || err.Upstream == nil || err.Upstream.Status != 307 || err.Code != translate.CodeInvalidRecipient {
		t.Fatalf("%+v", err)
	}
	if reqs := e.fake.Requests(); len(reqs) != 1 || reqs[0].SubscriptionID != s.ID {
		t.Fatalf("redirect followed: %d requests", len(reqs))
	}
}

// Requests in flight to one push service host are bounded: past the bound
// a request waits, inside its deadline, without reaching the service.
func TestPerHostConcurrencyIsBounded(t *testing.T) {
	e := newEnv(t, fakepush.StyleMozilla, func(o *webpush.Options) { o.MaxPerHost = 1 })
	s := e.subscribe(e.primary)
	e.fake.Script(s.ID, fakepush.Response{Delay: 500 * time.Millisecond})
	done := make(chan *translate.Error, 1)
	go func() {
		_, err := e.sender.Send(ctxFor(t, 5*time.Second), e.delivery(s, nil))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	_, err := e.sender.Send(ctxFor(t, 100*time.Millisecond), e.delivery(s, nil))
	if err == nil || err.Code != translate.CodeUpstreamTimeout || err.MaybeDelivered || !strings.Contains(err.Message, "not delivered") {
		t.Fatalf("second send: %+v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Requests()); n != 1 {
		t.Fatalf("%d requests reached the service", n)
	}
}
