package fakepush

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	webpushgo "github.com/SherClockHolmes/webpush-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/pushproxy/pushproxy/creds"
)

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 8291 Appendix A, decrypted by the fake's user agent code.
const (
	rfcUAPriv = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcAuth   = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcBody   = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
	rfcVAPID  = "vapid t=eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA, k=BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs"
)

func TestDecryptRFC8291AppendixA(t *testing.T) {
	ua, err := ecdh.P256().NewPrivateKey(b64(t, rfcUAPriv))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := Decrypt(b64(t, rfcBody), ua, b64(t, rfcAuth))
	if err != nil || string(pt) != "When I grow up, I want to be a watermelon" {
		t.Fatalf("%q %v", pt, err)
	}
	bad := b64(t, rfcBody)
	bad[len(bad)-1] ^= 1
	if _, err := Decrypt(bad, ua, b64(t, rfcAuth)); err == nil {
		t.Fatal("tampered body decrypted")
	}
}

func TestVerifyVAPIDRFC8292Example(t *testing.T) {
	before := time.Unix(1453523768-3600, 0)
	info, err := VerifyVAPID(rfcVAPID, "https://push.example.net", before)
	if err != nil {
		t.Fatal(err)
	}
	if info.Claims["sub"] != "mailto:push@example.com" || info.Header["alg"] != "ES256" {
		t.Fatalf("%+v", info)
	}
	for name, c := range map[string]struct {
		h, aud string
		now    time.Time
		want   string
	}{
		"expired":       {rfcVAPID, "https://push.example.net", time.Unix(1453523768, 0), "expired"},
		"too far":       {rfcVAPID, "https://push.example.net", time.Unix(1453523768-25*3600, 0), "24 hours"},
		"wrong aud":     {rfcVAPID, "https://push.example.net:8443", before, "aud"},
		"bearer":        {"Bearer x", "https://push.example.net", before, "vapid"},
		"no k":          {strings.Split(rfcVAPID, ",")[0], "https://push.example.net", before, "t= and k="},
		"other k":       {strings.Split(rfcVAPID, "k=")[0] + "k=BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8", "https://push.example.net", before, "does not verify"},
		"k not a point": {strings.Split(rfcVAPID, "k=")[0] + "k=AAAA", "https://push.example.net", before, "not an uncompressed"},
		"bad signature": {strings.Replace(rfcVAPID, "i3CYb7", "i3CYb8", 1), "https://push.example.net", before, "does not verify"},
	} {
		_, err := VerifyVAPID(c.h, c.aud, c.now)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (want %q)", name, err, c.want)
		}
	}
}

type fixture struct {
	t      *testing.T
	s      *Server
	client *http.Client
	key    *creds.VAPIDKey
	signer *creds.VAPIDSigner

	answerBody string // of the last post
}

func newFixture(t *testing.T, style string) *fixture {
	t.Helper()
	return newFixtureOpts(t, Options{Style: style})
}

func newFixtureOpts(t *testing.T, opts Options) *fixture {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	kj, _ := creds.GenerateVAPIDKeyJSON()
	key, err := creds.ParseVAPIDKey(kj)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool()}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &fixture{t: t, s: s, client: &http.Client{Transport: tr}, key: key,
		signer: creds.NewVAPIDSigner(key, "mailto:ops@example.com", nil, nil)}
}

// post sends a body with a valid VAPID header, TTL and Content-Encoding,
// changed by hdr ("" deletes a header), and returns the answer with its body
// read into answerBody.
func (f *fixture) post(sub *Subscription, body []byte, hdr map[string]string) *http.Response {
	f.t.Helper()
	req, _ := http.NewRequest("POST", sub.Endpoint, bytes.NewReader(body))
	auth, err := f.signer.Authorization(sub.Endpoint)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("TTL", "60")
	req.Header.Set("Content-Encoding", "aes128gcm")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	f.answerBody = string(b)
	return resp
}

// webpush-go, a sender we did not write, delivers to the fake, which
// decrypts its message and verifies its VAPID JWT.
func TestWebpushGoSendsToFake(t *testing.T) {
	f := newFixture(t, StyleMozilla)
	kj, _ := creds.GenerateVAPIDKeyJSON()
	var j struct{ PublicKey, PrivateKey string }
	_ = json.Unmarshal(kj, &j)
	sub, err := f.s.Subscribe(SubscribeOptions{VAPIDKey: j.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(`{"web_push":8030,"notification":{"title":"hi from webpush-go"}}`)
	resp, err := webpushgo.SendNotification(msg, &webpushgo.Subscription{
		Endpoint: sub.Endpoint, Keys: webpushgo.Keys{Auth: sub.Keys.Auth, P256dh: sub.Keys.P256DH},
	}, &webpushgo.Options{
		HTTPClient: f.client, Subscriber: "ops@example.com", TTL: 60, Topic: "t1", Urgency: webpushgo.UrgencyHigh,
		VAPIDPublicKey: j.PublicKey, VAPIDPrivateKey: j.PrivateKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("Location") == "" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	reqs := f.s.Requests()
	if len(reqs) != 1 || !bytes.Equal(reqs[0].Plaintext, msg) || reqs[0].DecryptError != "" {
		t.Fatalf("%+v", reqs)
	}
	r := reqs[0]
	if r.Claims["sub"] != "mailto:ops@example.com" || !r.KeyMatches || r.Header.Get("Topic") != "t1" || r.Header.Get("Urgency") != "high" {
		t.Fatalf("recorded %+v", r)
	}
	// webpush-go pads every message to 4096 bytes (DESIGN.md).
	if len(r.Body) != 4096 {
		t.Logf("webpush-go body: %d bytes", len(r.Body))
	}
}

func TestFakeRefusesLikeEachService(t *testing.T) {
	type want struct {
		status int
		text   string
	}
	cases := []struct {
		name string
		hdr  map[string]string
		sub  func(f *fixture) *Subscription
		body []byte
		w    map[string]want
	}{
		{"no TTL", map[string]string{"TTL": ""}, nil, nil, map[string]want{
			StyleMozilla: {400, `"errno": 111`}, StyleFCM: {400, "InvalidTtlParameter"}, StyleApple: {400, "BadTtl"}, StyleWNS: {400, ""}}},
		{"bad TTL", map[string]string{"TTL": "-1"}, nil, nil, map[string]want{
			StyleMozilla: {400, `"errno": 112`}, StyleFCM: {400, "InvalidTtlParameter"}, StyleApple: {400, "BadTtl"}, StyleWNS: {400, ""}}},
		{"bad topic", map[string]string{"Topic": "a b"}, nil, nil, map[string]want{
			StyleMozilla: {400, `"errno": 113`}, StyleFCM: {400, ""}, StyleApple: {400, "BadWebPushTopic"}, StyleWNS: {400, ""}}},
		{"bad urgency", map[string]string{"Urgency": "urgent"}, nil, nil, map[string]want{
			StyleMozilla: {400, ""}, StyleFCM: {400, ""}, StyleApple: {400, "BadUrgency"}, StyleWNS: {400, ""}}},
		{"no authorization", map[string]string{"Authorization": ""}, nil, nil, map[string]want{
			StyleMozilla: {401, `"errno": 109`}, StyleFCM: {403, "invalid JWT"}, StyleApple: {403, "BadJwtToken"}, StyleWNS: {401, ""}}},
		{"key mismatch", nil, func(f *fixture) *Subscription {
			kj, _ := creds.GenerateVAPIDKeyJSON()
			k, _ := creds.ParseVAPIDKey(kj)
			sub, _ := f.s.Subscribe(SubscribeOptions{VAPIDKey: k.PublicB64})
			return sub
		}, nil, map[string]want{
			StyleMozilla: {401, "VAPID public key mismatch"}, StyleFCM: {403, "do not correspond"}, StyleApple: {403, "VapidPkHashMismatch"}, StyleWNS: {403, ""}}},
		{"wrong encoding", map[string]string{"Content-Encoding": "aesgcm"}, nil, nil, map[string]want{
			StyleMozilla: {400, `"errno": 110`}, StyleFCM: {400, ""}, StyleApple: {400, ""}, StyleWNS: {400, ""}}},
		{"too large", nil, nil, make([]byte, 4097), map[string]want{
			StyleMozilla: {413, `"errno": 104`}, StyleFCM: {413, ""}, StyleApple: {413, "PayloadTooLarge"}, StyleWNS: {413, ""}}},
		{"unknown subscription", nil, func(f *fixture) *Subscription {
			return &Subscription{Endpoint: f.s.URL() + "/push/nope"}
		}, nil, map[string]want{
			StyleMozilla: {404, `"errno": 102`}, StyleFCM: {404, "valid push subscription"}, StyleApple: {410, "Unregistered"}, StyleWNS: {404, ""}}},
	}
	for _, style := range []string{StyleMozilla, StyleFCM, StyleApple, StyleWNS} {
		f := newFixture(t, style)
		for _, c := range cases {
			sub, _ := f.s.Subscribe(SubscribeOptions{VAPIDKey: f.key.PublicB64})
			if c.sub != nil {
				sub = c.sub(f)
			}
			body := c.body
			if body == nil {
				body = []byte("x")
			}
			f.s.Reset()
			resp := f.post(sub, body, c.hdr)
			w := c.w[style]
			reqs := f.s.Requests()
			if resp.StatusCode != w.status || len(reqs) != 1 || reqs[0].Status != w.status || reqs[0].Reason == "" {
				t.Errorf("%s %s: status %d, recorded %+v", style, c.name, resp.StatusCode, reqs)
				continue
			}
			if !strings.Contains(f.answerBody, w.text) {
				t.Errorf("%s %s: answer %q lacks %q", style, c.name, f.answerBody, w.text)
			}
			if style == StyleWNS && resp.Header.Get("X-WNS-Status") == "" {
				t.Errorf("%s %s: no X-WNS-Status", style, c.name)
			}
		}
	}
}

// The answer bodies carry the style's words.
func TestFakeAnswerBodies(t *testing.T) {
	f := newFixture(t, StyleFCM)
	other, _ := creds.ParseVAPIDKey(mustGen())
	sub, _ := f.s.Subscribe(SubscribeOptions{VAPIDKey: other.PublicB64, Style: StyleFCM})
	req, _ := http.NewRequest("POST", sub.Endpoint, strings.NewReader("x"))
	auth, _ := f.signer.Authorization(sub.Endpoint)
	req.Header.Set("Authorization", auth)
	req.Header.Set("TTL", "0")
	req.Header.Set("Content-Encoding", "aes128gcm")
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "do not correspond to the credentials used to create the subscriptions") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func mustGen() []byte {
	b, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		panic(err)
	}
	return b
}

func TestFakeScriptsAndUnsubscribes(t *testing.T) {
	f := newFixture(t, StyleApple)
	sub, _ := f.s.Subscribe(SubscribeOptions{VAPIDKey: f.key.PublicB64})
	f.s.Script(sub.ID, Response{Status: 429}, Response{Status: 500, Body: "boom"}, Response{Status: 201})
	for _, want := range []int{429, 500, 201, 201} {
		if resp := f.post(sub, []byte("x"), nil); resp.StatusCode != want {
			t.Fatalf("got %d want %d", resp.StatusCode, want)
		}
	}
	f.s.Unsubscribe(sub.ID)
	if resp := f.post(sub, []byte("x"), nil); resp.StatusCode != 410 {
		t.Fatalf("unsubscribed: %d", resp.StatusCode)
	}
	// A body that does not decrypt is accepted, as real services do, and
	// recorded as such.
	sub2, _ := f.s.Subscribe(SubscribeOptions{VAPIDKey: f.key.PublicB64})
	f.s.Reset()
	if resp := f.post(sub2, []byte("not encrypted"), nil); resp.StatusCode != 201 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if r := f.s.Requests()[0]; r.DecryptError == "" || r.Plaintext != nil {
		t.Fatalf("%+v", r)
	}
}

func TestFakeDelayEndsWithTheRequest(t *testing.T) {
	f := newFixture(t, StyleMozilla)
	sub, _ := f.s.Subscribe(SubscribeOptions{VAPIDKey: f.key.PublicB64})
	f.s.Script(sub.ID, Response{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", sub.Endpoint, strings.NewReader("x"))
	auth, _ := f.signer.Authorization(sub.Endpoint)
	req.Header.Set("Authorization", auth)
	req.Header.Set("TTL", "0")
	req.Header.Set("Content-Encoding", "aes128gcm")
	start := time.Now()
	if _, err := f.client.Do(req); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

// The JWT the fake recorded is the one the client sent, and its claims are
// the signer's.
func TestFakeRecordsVAPID(t *testing.T) {
	f := newFixture(t, StyleMozilla)
	sub, _ := f.s.Subscribe(SubscribeOptions{VAPIDKey: f.key.PublicB64})
	f.post(sub, []byte("x"), nil)
	r := f.s.Requests()[0]
	if r.VAPIDKey != f.key.PublicB64 || !r.KeyMatches || r.Claims["aud"] != f.s.URL() {
		t.Fatalf("%+v", r)
	}
	if _, err := jwt.NewParser().Parse(r.JWT, func(*jwt.Token) (any, error) { return &f.key.Private.PublicKey, nil }); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecrypt: any body, never a panic; a success always has a plaintext
// no longer than the body.
func FuzzDecrypt(f *testing.F) {
	ua, _ := ecdh.P256().NewPrivateKey(b64(f, rfcUAPriv))
	auth := b64(f, rfcAuth)
	body := b64(f, rfcBody)
	f.Add(body)
	f.Add(body[:86])
	f.Add(body[:21])
	f.Add([]byte{})
	short := bytes.Clone(body)
	short[19] = 17 // record size below the minimum
	f.Add(short)
	multi := bytes.Clone(body)
	multi[18], multi[19] = 0, 20 // records of 20 bytes
	f.Add(multi)
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := Decrypt(b, ua, auth)
		if err == nil && len(pt) > len(b) {
			t.Fatalf("plaintext %d bytes from a %d-byte body", len(pt), len(b))
		}
	})
}
