package webpush_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/proxy/webpush"
	"github.com/pushproxy/pushproxy/translate"
)

// Interop with npm packages we did not write (interop/interop.mjs): http_ece
// decrypts our bodies, jose verifies our VAPID JWTs, web-push's keys load
// into pushproxy and its requests are decrypted by the fake. CI installs
// them with `npm ci --prefix interop`; without node_modules the tests skip.

var interopDir = filepath.Join("..", "..", "interop")

func node(t *testing.T, cmd string, in, out any) error {
	t.Helper()
	if _, err := os.Stat(filepath.Join(interopDir, "node_modules", "http_ece")); err != nil {
		t.Skip("interop/node_modules is absent: run `npm ci --prefix interop` to check pushproxy against http_ece, jose and web-push")
	}
	bin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the interop checks need Node.js and `npm ci --prefix interop`")
	}
	data, _ := json.Marshal(in)
	c := exec.Command(bin, "interop.mjs", cmd)
	c.Dir = interopDir
	c.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("node interop.mjs %s: %v: %s", cmd, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("node interop.mjs %s printed %q: %v", cmd, stdout.String(), err)
	}
	return nil
}

var b64u = base64.RawURLEncoding

func TestInteropHTTPECEDecryptsOurBodies(t *testing.T) {
	t.Parallel()
	ua, auth := newUA(t)
	for _, c := range []struct {
		n       int
		buckets bool
	}{{0, false}, {41, false}, {200, true}, {1500, false}, {translate.WebPushMaxPlaintext, false}, {translate.WebPushMaxPlaintext, true}} {
		pt := bytes.Repeat([]byte("é!"), c.n/2+1)[:c.n]
		body, err := webpush.Encrypt(pt, ua.PublicKey().Bytes(), auth, webpush.EncryptOptions{PadToBuckets: c.buckets})
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ Plaintext string }
		if err := node(t, "decrypt", map[string]string{"body": b64u.EncodeToString(body), "uaPrivate": b64u.EncodeToString(ua.Bytes()), "auth": b64u.EncodeToString(auth)}, &out); err != nil {
			t.Fatal(err)
		}
		if got, _ := b64u.DecodeString(out.Plaintext); !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes (buckets %v): http_ece got %d bytes", c.n, c.buckets, len(got))
		}
	}
	// And a tampered body is refused by http_ece too.
	body, _ := webpush.Encrypt([]byte("x"), ua.PublicKey().Bytes(), auth, webpush.EncryptOptions{})
	body[len(body)-1] ^= 1
	var out struct{ Plaintext string }
	if err := node(t, "decrypt", map[string]string{"body": b64u.EncodeToString(body), "uaPrivate": b64u.EncodeToString(ua.Bytes()), "auth": b64u.EncodeToString(auth)}, &out); err == nil {
		t.Fatal("http_ece decrypted a tampered body")
	}
}

func TestInteropJoseVerifiesOurVAPID(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	now := time.Now()
	s := creds.NewVAPIDSigner(k, subject, func() time.Time { return now }, nil)
	for _, endpoint := range []string{"https://fcm.googleapis.com/fcm/send/abc", "https://127.0.0.1:8443/push/x", "https://web.push.apple.com:443/QGk"} {
		h, err := s.Authorization(endpoint)
		if err != nil {
			t.Fatal(err)
		}
		aud, _ := creds.Audience(endpoint)
		var out struct {
			Header map[string]any
			Claims map[string]any
		}
		if err := node(t, "verify", map[string]any{"authorization": h, "audience": aud, "now": now.Unix()}, &out); err != nil {
			t.Fatal(err)
		}
		if out.Claims["aud"] != aud || out.Claims["sub"] != subject || out.Claims["exp"] != float64(now.Add(12*time.Hour).Unix()) || out.Header["alg"] != "ES256" {
			t.Fatalf("%s: jose saw %+v", endpoint, out)
		}
		// jose refuses it for another audience.
		if err := node(t, "verify", map[string]any{"authorization": h, "audience": aud + ":1", "now": now.Unix()}, &out); err == nil {
			t.Fatalf("%s: jose accepted another audience", endpoint)
		}
	}
}

// Keys made by web-push load into pushproxy; a request web-push builds for
// a fake subscription is accepted and decrypted by the fake; and pushproxy,
// signing with the web-push key, delivers to the same subscription.
func TestInteropWebPush(t *testing.T) {
	t.Parallel()
	var keys struct{ PublicKey, PrivateKey string }
	if err := node(t, "keys", map[string]any{}, &keys); err != nil {
		t.Fatal(err)
	}
	kj, _ := json.Marshal(map[string]string{"publicKey": keys.PublicKey, "privateKey": keys.PrivateKey})
	key, err := creds.ParseVAPIDKey(kj)
	if err != nil {
		t.Fatalf("pushproxy refuses web-push's keys: %v", err)
	}
	if len(key.Warnings) != 0 || key.PublicB64 != keys.PublicKey {
		t.Fatalf("warnings %q", key.Warnings)
	}

	fake, err := fakepush.New(fakepush.Options{Style: fakepush.StyleFCM})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	sub, _ := fake.Subscribe(fakepush.SubscribeOptions{VAPIDKey: keys.PublicKey})
	payload := []byte(`{"web_push":8030,"notification":{"title":"from web-push"}}`)
	var req struct {
		Method  string
		Headers map[string]any
		Body    string
	}
	if err := node(t, "request", map[string]any{
		"subscription": map[string]any{"endpoint": sub.Endpoint, "keys": map[string]string{"p256dh": sub.Keys.P256DH, "auth": sub.Keys.Auth}},
		"payload":      b64u.EncodeToString(payload),
		"vapid":        map[string]string{"subject": subject, "publicKey": keys.PublicKey, "privateKey": keys.PrivateKey},
		"TTL":          60, "topic": "t1", "urgency": "low",
	}, &req); err != nil {
		t.Fatal(err)
	}
	body, _ := b64u.DecodeString(req.Body)
	hreq, _ := http.NewRequest(req.Method, sub.Endpoint, bytes.NewReader(body))
	for k, v := range req.Headers {
		if k != "Content-Length" {
			hreq.Header.Set(k, fmt.Sprint(v))
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: fake.CertPool()}}}
	resp, err := client.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("web-push's request: %d %s", resp.StatusCode, answer)
	}
	r := fake.Requests()[0]
	if !bytes.Equal(r.Plaintext, payload) || !r.KeyMatches || r.Header.Get("Topic") != "t1" || r.Header.Get("Urgency") != "low" {
		t.Fatalf("recorded %+v", r)
	}

	// pushproxy with the web-push key.
	s := webpush.New(webpush.Options{RootCAs: fake.CertPool(), AllowEndpoints: []string{"127.0.0.1"}, AllowPrivateNetworks: true})
	defer s.Close()
	tsub, terr := translate.ValidateSubscription(&translate.WebPushRecipient{Endpoint: sub.Endpoint, Keys: translate.WebPushKeys{P256DH: sub.Keys.P256DH, Auth: sub.Keys.Auth}})
	if terr != nil {
		t.Fatal(terr)
	}
	m, _ := translate.BuildWebPush(&translate.Notification{Title: "from pushproxy"}, translate.WebPushTarget{DefaultTTL: 60})
	res, serr := s.Send(ctxFor(t, 5*time.Second), webpush.Delivery{Subscription: tsub, Message: m, Keys: []webpush.KeyRef{{Name: "web-push", Signer: creds.NewVAPIDSigner(key, subject, nil, nil)}}})
	if serr != nil || res.Credential != "web-push" {
		t.Fatalf("%+v %v", res, serr)
	}
	if got := fake.Requests()[1].Plaintext; !bytes.Equal(got, m.Plaintext) {
		t.Fatalf("plaintext %q", got)
	}
}
