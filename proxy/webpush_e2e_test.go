package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/internal/testca"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// wpHarness is the real server with a webpush section in front of a fake
// push service (HTTPS on loopback, decrypting every message and checking
// its VAPID JWT like the real services).
type wpHarness struct {
	*harness
	push *fakepush.Server
	keys []*creds.VAPIDKey // configuration order: keys[0] is primary
	name []string
}

func newWPHarness(t *testing.T, style string, nkeys int, mutate func(*proxy.Config), now ...func() time.Time) *wpHarness {
	t.Helper()
	push, err := fakepush.New(fakepush.Options{Style: style})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = push.Close() })
	w := &wpHarness{push: push}
	dir := t.TempDir()
	var cfgKeys []proxy.VAPIDKeyConfig
	for i := range nkeys {
		data, err := creds.GenerateVAPIDKeyJSON()
		if err != nil {
			t.Fatal(err)
		}
		k, err := creds.ParseVAPIDKey(data)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("2026-%02d", 11-i)
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		w.keys, w.name = append(w.keys, k), append(w.name, name)
		cfgKeys = append(cfgKeys, proxy.VAPIDKeyConfig{Name: name, File: path})
	}
	var clock func() time.Time
	if len(now) > 0 {
		clock = now[0]
	}
	w.harness = newHarness(t, harnessOpts{now: clock, mutate: func(c *proxy.Config) {
		appendCA(t, c.Upstream.CAFile, push.CAPEM())
		c.WebPush = &proxy.WebPushConfig{Subject: "mailto:ops@example.com", Keys: cfgKeys,
			AllowEndpoints: []string{"127.0.0.1"}, AllowPrivateNetworks: true}
		if mutate != nil {
			mutate(c)
		}
	}})
	for _, k := range w.keys {
		w.addSecret(k.Private.D.Text(16))
	}
	return w
}

// subscribe makes a browser subscription with key i and returns it in the
// API's to.webpush form (vapidKey: name it or not).
func (w *wpHarness) subscribe(i int, nameKey bool) (*fakepush.Subscription, map[string]any) {
	w.t.Helper()
	return w.subscribeWith(fakepush.SubscribeOptions{VAPIDKey: w.keys[i].PublicB64}, i, nameKey)
}

// subscribeWith is subscribe with the fake's options (o.VAPIDKey set: the
// key the subscription is made with; i names it when nameKey).
func (w *wpHarness) subscribeWith(o fakepush.SubscribeOptions, i int, nameKey bool) (*fakepush.Subscription, map[string]any) {
	w.t.Helper()
	sub, err := w.push.Subscribe(o)
	if err != nil {
		w.t.Fatal(err)
	}
	w.addSecret(strings.TrimPrefix(sub.Endpoint, w.push.URL()), sub.Keys.Auth)
	to := map[string]any{"endpoint": sub.Endpoint, "keys": map[string]any{"p256dh": sub.Keys.P256DH, "auth": sub.Keys.Auth}}
	if nameKey {
		to["vapid_key"] = w.name[i]
	}
	return sub, to
}

func webNote(to map[string]any) map[string]any {
	return map[string]any{"to": map[string]any{"webpush": to}, "title": "Order shipped", "body": "On its way",
		"url": "https://shop.example/orders/1", "data": map[string]any{"order": "1234"}, "ttl": 600,
		"priority": "high", "collapse_id": "order-1234"}
}

func (w *wpHarness) requestsFor(id string) []fakepush.Request {
	var out []fakepush.Request
	for _, r := range w.push.Requests() {
		if r.SubscriptionID == id {
			out = append(out, r)
		}
	}
	return out
}

func TestWebPushDelivered(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil)
	sub, to := w.subscribe(0, false)
	a := w.post("/v1/notifications", webNote(to))
	if a.Status != 200 || a.Body["platform"] != "webpush" || a.Body["credential"] != w.name[0] {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	reqs := w.requestsFor(sub.ID)
	if len(reqs) != 1 || reqs[0].Plaintext == nil || !reqs[0].KeyMatches {
		t.Fatalf("fake saw %+v", reqs)
	}
	r := reqs[0]
	var p struct {
		WebPush      int `json:"web_push"`
		Notification struct {
			Title, Body, Navigate string
			Data                  map[string]any
		} `json:"notification"`
	}
	if err := json.Unmarshal(r.Plaintext, &p); err != nil {
		t.Fatalf("plaintext %s: %v", r.Plaintext, err)
	}
	if p.WebPush != 8030 || p.Notification.Title != "Order shipped" || p.Notification.Navigate != "https://shop.example/orders/1" {
		t.Errorf("plaintext %s", r.Plaintext)
	}
	if r.Header.Get("TTL") != "600" || r.Header.Get("Urgency") != "high" || r.Header.Get("Topic") != "order-1234" ||
		r.Header.Get("Content-Encoding") != "aes128gcm" {
		t.Errorf("headers %v", r.Header)
	}
	if aud := r.Claims["aud"]; aud != w.push.URL() {
		t.Errorf("aud %v, want the origin %s", aud, w.push.URL())
	}
	if len(r.Body) != 86+len(r.Plaintext)+1+16 {
		t.Errorf("body %d bytes for %d of plaintext: padding is not minimal", len(r.Body), len(r.Plaintext))
	}
	// Public keys: primary for new subscribers.
	k := w.get("/v1/webpush/vapid-public-key")
	if k.Status != 200 || k.Body["public_key"] != w.keys[0].PublicB64 {
		t.Errorf("vapid-public-key %d %s", k.Status, k.Raw)
	}
	if got := metricValue(t, w.harness, `pushproxy_notifications_total{code="ok",platform="webpush"}`); got != 1 {
		t.Errorf("metric %v", got)
	}
}

// TestWebPushKeyRotation: a subscription made with the old key is still
// delivered (via the second key), with and without vapid_key, and the
// answer names the key that worked; with no matching key, resubscribe.
func TestWebPushKeyRotation(t *testing.T) {
	for _, style := range []string{fakepush.StyleMozilla, fakepush.StyleFCM, fakepush.StyleApple} {
		t.Run(style, func(t *testing.T) {
			w := newWPHarness(t, style, 2, nil)
			for _, named := range []bool{false, true} {
				sub, to := w.subscribe(1, named)
				a := w.post("/v1/notifications", webNote(to))
				if a.Status != 200 || a.Body["credential"] != w.name[1] {
					t.Fatalf("named=%v: %d %s", named, a.Status, a.Raw)
				}
				reqs := w.requestsFor(sub.ID)
				if named && len(reqs) != 1 {
					t.Errorf("with vapid_key the right key should be used first: %d requests", len(reqs))
				}
				if !named && (len(reqs) != 2 || reqs[0].KeyMatches || !reqs[1].KeyMatches) {
					t.Errorf("without vapid_key: want the primary refused then the old key accepted, got %d requests", len(reqs))
				}
			}
			// A subscription made with a key pushproxy no longer has.
			other, err := creds.GenerateVAPIDKeyJSON()
			if err != nil {
				t.Fatal(err)
			}
			ok, _ := creds.ParseVAPIDKey(other)
			sub, err := w.push.Subscribe(fakepush.SubscribeOptions{VAPIDKey: ok.PublicB64})
			if err != nil {
				t.Fatal(err)
			}
			to := map[string]any{"endpoint": sub.Endpoint, "keys": map[string]any{"p256dh": sub.Keys.P256DH, "auth": sub.Keys.Auth}}
			a := w.post("/v1/notifications", webNote(to))
			if a.code() != "vapid_key_mismatch" || a.errField("action") != "resubscribe" || a.Status != 502 {
				t.Fatalf("%d %s", a.Status, a.Raw)
			}
		})
	}
}

// statusFor picks an HTTP status for a table row that does not fix one.
func statusFor(row translate.WebPushReason) int {
	if row.Status != 0 {
		return row.Status
	}
	switch row.Code {
	case translate.CodeRecipientGone:
		return 410
	case translate.CodePayloadTooLarge:
		return 413
	case translate.CodeRateLimited:
		return 429
	case translate.CodeCredentialsRejected, translate.CodeVAPIDKeyMismatch:
		return 403
	case translate.CodeUpstreamUnavailable:
		return 503
	}
	return 400
}

// answerFor builds the service's own answer for a row.
func answerFor(row translate.WebPushReason) fakepush.Response {
	st := statusFor(row)
	switch row.Service {
	case translate.ServiceMozilla:
		errno, _ := strconv.Atoi(strings.TrimPrefix(row.Reason, "errno "))
		msg := "Request failed"
		if row.Contains != "" {
			phrase, _, _ := strings.Cut(row.Contains, "|")
			msg = "VAPID public key " + phrase
		}
		return fakepush.Response{Status: st, Body: fmt.Sprintf(`{"code": %d, "errno": %d, "error": "Error", "message": %q}`, st, errno, msg)}
	case translate.ServiceApple:
		return fakepush.Response{Status: st, Body: fmt.Sprintf(`{"reason":%q}`, row.Reason)}
	case translate.ServiceWNS:
		h := http.Header{}
		switch {
		case row.Reason == "channelthrottled":
			h.Set("X-WNS-Status", "channelThrottled")
		case row.Contains != "":
			phrase, _, _ := strings.Cut(row.Contains, "|")
			h.Set("X-WNS-Error-Description", "invalid "+phrase+" header")
		default:
			h.Set("X-WNS-Error-Description", "error")
		}
		return fakepush.Response{Status: st, Header: h, Body: " "}
	}
	body := "<HTML><HEAD><TITLE>Error</TITLE></HEAD><BODY>error</BODY></HTML>"
	if row.Contains != "" {
		phrase, _, _ := strings.Cut(row.Contains, "|")
		body = "the key " + phrase + " the one used to create the subscription: " + phrase
	}
	return fakepush.Response{Status: st, Body: body}
}

// TestWebPushEveryErrorRow: every row of translate's Web Push table,
// answered in its service's own form by the fake, comes back through the
// real server with the row's code.
func TestWebPushEveryErrorRow(t *testing.T) {
	styles := map[string]string{translate.ServiceMozilla: fakepush.StyleMozilla, translate.ServiceFCM: fakepush.StyleFCM,
		translate.ServiceApple: fakepush.StyleApple, translate.ServiceWNS: fakepush.StyleWNS}
	ws := map[string]*wpHarness{}
	for svc, style := range styles {
		ws[svc] = newWPHarness(t, style, 1, nil)
	}
	for i, row := range translate.WebPushReasons {
		t.Run(fmt.Sprintf("%d-%s-%d-%s", i, row.Service, row.Status, strings.ReplaceAll(row.Reason, " ", "")), func(t *testing.T) {
			w := ws[row.Service]
			if w == nil {
				t.Skipf("no fake style for %s", row.Service)
			}
			sub, to := w.subscribe(0, false)
			r := answerFor(row)
			if row.Code == translate.CodeRateLimited {
				r.Header = cloneHeader(r.Header)
				r.Header.Set("Retry-After", "30")
			}
			w.push.Script(sub.ID, r, r, r, r)
			a := w.post("/v1/notifications", webNote(to), "X-Request-Timeout", "3")
			if a.code() != string(row.Code) || a.Status != row.Code.HTTPStatus() {
				t.Fatalf("got %d %s, want %s: %s", a.Status, a.code(), row.Code, a.Raw)
			}
			if a.errField("platform") != "webpush" || a.errField("hint") == "" {
				t.Errorf("%s", a.Raw)
			}
			if strings.Contains(string(a.Raw), sub.Endpoint) {
				t.Error("the endpoint appears in the answer")
			}
		})
	}
}

func cloneHeader(h http.Header) http.Header {
	if h == nil {
		return http.Header{}
	}
	return h.Clone()
}

// TestWebPushGuard: endpoints that are not https, not a known push service
// (look-alikes included), or that carry user-info are refused as
// destination_forbidden, and no connection is opened.
func TestWebPushGuard(t *testing.T) {
	push, err := fakepush.New(fakepush.Options{Style: fakepush.StyleMozilla})
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	// The default guard: known push services only, no private networks.
	w := newWPHarness(t, fakepush.StyleMozilla, 1, func(c *proxy.Config) {
		c.WebPush.AllowEndpoints, c.WebPush.AllowPrivateNetworks = nil, false
	})
	sub, to := w.subscribe(0, false)
	_ = sub
	keys := to["keys"]
	port := push.Port()
	for _, ep := range []string{
		w.push.URL() + "/push/x",                                // loopback, not a push service
		"http://fcm.googleapis.com/fcm/send/x",                  // not https
		"https://x.push.apple.com.evil.example/x",               // look-alike suffix
		"https://evil.example/x.push.apple.com",                 // host in the path
		"https://user:pw@fcm.googleapis.com/fcm/send/x",         // user-info
		"https://[::ffff:127.0.0.1]:" + port + "/push/x",        // IPv4-mapped loopback
		"https://10.0.0.1/push/x",                               // private
		"https://169.254.169.254/latest/meta-data",              // link-local metadata
		"https://pushfcm.googleapis.com.attacker.example/fcm/x", // look-alike
		"https://updates.push.services.mozilla.com@127.0.0.1/x", // user-info trick
		"https://100.64.0.1/push/x",                             // CGNAT
	} {
		a := w.post("/v1/notifications", webNote(map[string]any{"endpoint": ep, "keys": keys}))
		if a.code() != "destination_forbidden" && a.code() != "invalid_recipient" {
			t.Errorf("%s: %d %s", ep, a.Status, a.Raw)
		}
	}
	if n := w.push.Conns(); n != 0 {
		t.Errorf("%d connections opened to refused endpoints", n)
	}
	if n := push.Conns(); n != 0 {
		t.Errorf("%d connections opened to refused endpoints", n)
	}
}

// TestWebPushDryRunAndTooLarge: dry runs build everything and send
// nothing; a plaintext over the one-record limit never leaves.
func TestWebPushDryRunAndTooLarge(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleFCM, 1, nil)
	_, to := w.subscribe(0, false)
	n := webNote(to)
	n["dry_run"] = true
	a := w.post("/v1/notifications", n)
	if a.Status != 200 || a.Body["request"] == nil || strings.Contains(string(a.Raw), "eyJ") {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	n = webNote(to)
	n["body"] = strings.Repeat("x", 4000)
	if a := w.post("/v1/notifications", n); a.code() != "payload_too_large" {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if len(w.push.Requests()) != 0 {
		t.Error("a dry run or an oversized message reached the push service")
	}
}

// TestWebPushVAPIDReuse: one VAPID signature per (key, audience) across
// many notifications.
func TestWebPushVAPIDReuse(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil)
	for range 10 {
		_, to := w.subscribe(0, false)
		if a := w.post("/v1/notifications", webNote(to)); a.Status != 200 {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	}
	if got := metricValue(t, w.harness, `pushproxy_tokens_signed_total{kind="vapid"}`); got != 1 {
		t.Errorf("%v VAPID JWTs signed for one key and one audience", got)
	}
}

// TestWebPushClockSkew: the push service's Date header shows this clock is
// off; /readyz and the metric say so.
func TestWebPushClockSkew(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil, func() time.Time { return time.Now().Add(-2 * time.Hour) })
	_, to := w.subscribe(0, false)
	if a := w.post("/v1/notifications", webNote(to)); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	r := w.get("/readyz")
	wp := r.Body["platforms"].(map[string]any)["webpush"].(map[string]any)
	skew, _ := wp["clock_skew_seconds"].(float64)
	if wp["status"] != "degraded" || skew > -7199 || skew < -7201 || !strings.Contains(fmt.Sprint(wp["reason"]), "clock") {
		t.Errorf("readyz %s", r.Raw)
	}
	if got := metricValue(t, w.harness, `pushproxy_clock_skew_seconds{upstream="webpush"}`); got > -7199 || got < -7201 {
		t.Errorf("metric %v", got)
	}
}

// TestWebPushCAFileReload: the Web Push sender trusts a swapped-in
// upstream.ca_file too: with an unrelated CA the push service's
// certificate is refused; after the swap it is delivered.
func TestWebPushCAFileReload(t *testing.T) {
	_, wrongCA, _, err := testca.New("unrelated", []string{"localhost"}, "h2")
	if err != nil {
		t.Fatal(err)
	}
	var good []byte
	w := newWPHarness(t, fakepush.StyleMozilla, 1, func(c *proxy.Config) {
		if good, err = os.ReadFile(c.Upstream.CAFile); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.Upstream.CAFile, wrongCA, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	_, to := w.subscribe(0, false)
	if a := w.post("/v1/notifications", webNote(to), "X-Request-Timeout", "2"); a.Status == 200 {
		t.Fatalf("delivered with an unrelated CA: %s", a.Raw)
	}
	tmp := w.cfg.Upstream.CAFile + ".new"
	if err := os.WriteFile(tmp, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, w.cfg.Upstream.CAFile); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the swapped CA to be trusted", func() bool {
		return w.post("/v1/notifications", webNote(to), "X-Request-Timeout", "2").Status == 200
	})
}

// TestWebPushKeyRefused400: a subscription made with the second VAPID key,
// sent without vapid_key, whose push service refuses the primary key with a
// 400 that names the key or the header carrying it (rather than a 401 or
// 403), is delivered with the second key; a 400 about anything else is
// answered at once, without trying other keys; and when no configured key
// is the subscription's, the caller is told to resubscribe.
func TestWebPushKeyRefused400(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 2, nil)
	for _, c := range []struct {
		name, style string
		refusal     fakepush.Response
	}{
		{"mozilla errno 109", fakepush.StyleMozilla, fakepush.Response{Status: 400,
			Body: `{"code": 400, "errno": 109, "error": "Bad Request", "message": "VAPID public key mismatch"}`}},
		{"mozilla errno 110 Crypto-Key", fakepush.StyleMozilla, fakepush.Response{Status: 400,
			Body: `{"code": 400, "errno": 110, "error": "Bad Request", "message": "Missing p256ecdsa in Crypto-Key header"}`}},
		{"fcm Crypto-Key text", fakepush.StyleFCM, fakepush.Response{Status: 400,
			Body: "crypto-key header had invalid format. crypto-key header should have the following format: p256ecdsa=base64(publicApplicationServerKey)\n"}},
		{"fcm key does not correspond", fakepush.StyleFCM, fakepush.Response{Status: 400,
			Body: "the key in the authorization header does not correspond to the sender ID used to subscribe this user.\n"}},
		{"apple BadJwtToken", fakepush.StyleApple, fakepush.Response{Status: 400, Body: `{"reason":"BadJwtToken"}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			refusal := c.refusal
			sub, to := w.subscribeWith(fakepush.SubscribeOptions{VAPIDKey: w.keys[1].PublicB64, Style: c.style, KeyMismatch: &refusal}, 1, false)
			a := w.post("/v1/notifications", webNote(to))
			if a.Status != 200 || a.Body["credential"] != w.name[1] {
				t.Fatalf("%d %s", a.Status, a.Raw)
			}
			reqs := w.requestsFor(sub.ID)
			if len(reqs) != 2 || reqs[0].KeyMatches || reqs[0].Status != 400 || !reqs[1].KeyMatches || reqs[1].Plaintext == nil {
				t.Errorf("want the primary refused with a 400, then the second key delivered; got %d requests", len(reqs))
			}
		})
	}
	t.Run("a 400 about something else tries no other key", func(t *testing.T) {
		sub, to := w.subscribe(1, false)
		w.push.Script(sub.ID, fakepush.Response{Status: 400, Body: `{"code": 400, "errno": 110, "error": "Bad Request", "message": "Invalid aes128gcm Crypto-Key header"}`})
		n := webNote(to)
		n["to"].(map[string]any)["webpush"].(map[string]any)["vapid_key"] = w.name[1]
		a := w.post("/v1/notifications", n)
		if a.code() != "invalid_request" || a.errField("retryable") != false {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		if reqs := w.requestsFor(sub.ID); len(reqs) != 1 {
			t.Errorf("%d requests: another key was tried for a 400 that is not about the key", len(reqs))
		}
	})
	t.Run("no key is the subscription's", func(t *testing.T) {
		stranger, err := creds.GenerateVAPIDKeyJSON()
		if err != nil {
			t.Fatal(err)
		}
		k, err := creds.ParseVAPIDKey(stranger)
		if err != nil {
			t.Fatal(err)
		}
		refusal := fakepush.Response{Status: 400, Body: `{"code": 400, "errno": 109, "error": "Bad Request", "message": "VAPID public key mismatch"}`}
		sub, to := w.subscribeWith(fakepush.SubscribeOptions{VAPIDKey: k.PublicB64, KeyMismatch: &refusal}, 0, false)
		a := w.post("/v1/notifications", webNote(to))
		if a.Status != 502 || a.code() != "vapid_key_mismatch" || a.errField("action") != "resubscribe" || a.errField("retryable") != false {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		if reqs := w.requestsFor(sub.ID); len(reqs) != 2 {
			t.Errorf("%d requests, want one per configured key", len(reqs))
		}
	})
}

// TestWebPushPrivateHostNamed: an error from a push service on a host of
// allow_endpoints names that host and the format its reply had, not a
// service it is not; the endpoint's path never appears, even when the
// service echoes it.
func TestWebPushPrivateHostNamed(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil)
	// The fake's endpoints are on 127.0.0.1, a host of allow_endpoints.
	sub, to := w.subscribe(0, false)
	w.push.Script(sub.ID, fakepush.Response{Status: 410, Body: `{"code": 410, "errno": 106, "error": "Gone", "message": "No such subscription"}`})
	a := w.post("/v1/notifications", webNote(to))
	msg, _ := a.errField("message").(string)
	if a.code() != "recipient_gone" || !strings.HasPrefix(msg, "127.0.0.1 answered HTTP 410 (in Mozilla autopush's format): ") || strings.Contains(msg, "Mozilla autopush says") {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}

	// A service that quotes the endpoint back.
	sub, to = w.subscribe(0, false)
	path := strings.TrimPrefix(sub.Endpoint, w.push.URL())
	w.push.Script(sub.ID, fakepush.Response{Status: 400, Body: "no route for " + sub.Endpoint + " (subscription " + sub.ID + ")\n"})
	a = w.post("/v1/notifications", webNote(to))
	msg, _ = a.errField("message").(string)
	if a.code() != "invalid_recipient" || !strings.HasPrefix(msg, "127.0.0.1 answered HTTP 400") || strings.Contains(msg, "FCM") {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if strings.Contains(string(a.Raw), path) || strings.Contains(string(a.Raw), sub.ID) {
		t.Errorf("the endpoint's path appears in the answer: %s", a.Raw)
	}
}

// TestWebPushInvalidRecipientActions: invalid_recipient tells the caller
// to delete the subscription only when the push service says the
// subscription itself is bad; a 400 it does not explain asks the caller to
// check what it sent. The README's error table says the same.
func TestWebPushInvalidRecipientActions(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleApple, 1, nil)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for line := range strings.SplitSeq(string(readme), "\n") {
		if strings.HasPrefix(line, "| `invalid_recipient` |") {
			row = line
		}
	}
	for _, c := range []struct {
		name   string
		answer fakepush.Response
		action string
	}{
		{"the service says the subscription is bad", fakepush.Response{Status: 400, Body: `{"reason":"BadDeviceToken"}`}, "remove_recipient"},
		{"an unexplained 400", fakepush.Response{Status: 400, Body: "Bad Request\n"}, "fix_request"},
	} {
		sub, to := w.subscribe(0, false)
		w.push.Script(sub.ID, c.answer)
		a := w.post("/v1/notifications", webNote(to))
		if a.code() != "invalid_recipient" || a.errField("action") != c.action || a.errField("retryable") != false {
			t.Errorf("%s: %d %s", c.name, a.Status, a.Raw)
		}
		if !strings.Contains(row, "`"+c.action+"`") {
			t.Errorf("%s: the README's invalid_recipient row does not give %s: %q", c.name, c.action, row)
		}
	}
}

// TestWebPushRetryPolicies: what pushproxy retries (requests counted at
// the fake) and what the caller is told are two things: a 503 is retried
// with back-off and then answered retryable; a 429 whose Retry-After is
// beyond the deadline is not retried but answered retryable with
// retry_after; a gone subscription is neither.
func TestWebPushRetryPolicies(t *testing.T) {
	w := newWPHarness(t, fakepush.StyleMozilla, 1, nil)
	for _, c := range []struct {
		name      string
		answer    fakepush.Response
		timeout   string
		sent      int
		code      string
		retryable bool
	}{
		{"503 backoff", fakepush.Response{Status: 503}, "5", 3, "upstream_unavailable", true},
		{"429 beyond the deadline", fakepush.Response{Status: 429, Body: `{"code": 429, "errno": 201, "error": "Too Many Requests", "message": "slow down"}`, Header: http.Header{"Retry-After": {"30"}}}, "2", 1, "rate_limited", true},
		{"410 none", fakepush.Response{Status: 410}, "5", 1, "recipient_gone", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub, to := w.subscribe(0, false)
			w.push.Script(sub.ID, c.answer, c.answer, c.answer, c.answer)
			a := w.post("/v1/notifications", webNote(to), "X-Request-Timeout", c.timeout)
			if a.code() != c.code || a.errField("retryable") != c.retryable {
				t.Fatalf("%d %s", a.Status, a.Raw)
			}
			if n := len(w.requestsFor(sub.ID)); n != c.sent {
				t.Errorf("%d requests at the fake, want %d", n, c.sent)
			}
		})
	}
}
