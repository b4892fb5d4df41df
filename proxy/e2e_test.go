package proxy_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

func TestAlertDelivered(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tok := h.token()
	id := "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
	n := alert(tok)
	n["id"] = id
	n["subtitle"] = "sub"
	n["badge"] = 3
	n["sound"] = "default"
	n["data"] = map[string]any{"order": "1234"}
	n["ttl"] = 3600
	n["collapse_id"] = "order-1234"
	before := time.Now().Unix()
	a := h.post("/v1/notifications", n)
	if a.Status != 200 {
		t.Fatalf("status %d: %s", a.Status, a.Raw)
	}
	if a.Body["id"] != strings.ToLower(id) || a.Body["platform"] != "apns" || a.Body["credential"] != "default" ||
		a.Body["environment"] != "production" || a.Body["attempts"] != float64(1) {
		t.Errorf("answer %s", a.Raw)
	}
	up := a.Body["upstream"].(map[string]any)
	if up["status"] != float64(200) || up["apns_id"] != strings.ToLower(id) {
		t.Errorf("upstream %v", up)
	}
	reqs := h.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("fake saw %d requests", len(reqs))
	}
	r := reqs[0]
	if r.Status != 200 || r.Path != "/3/device/"+tok || r.Method != "POST" {
		t.Errorf("fake answered %d %s for %s %s", r.Status, r.Reason, r.Method, r.Path)
	}
	want := map[string]string{"apns-topic": bundle, "apns-push-type": "alert", "apns-priority": "10",
		"apns-id": strings.ToLower(id), "apns-collapse-id": "order-1234"}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	exp, err := strconv.ParseInt(r.Header.Get("apns-expiration"), 10, 64)
	if err != nil || exp < before+3600 || exp > time.Now().Unix()+3600 {
		t.Errorf("apns-expiration %q", r.Header.Get("apns-expiration"))
	}
	var payload map[string]any
	if err := json.Unmarshal(r.Body, &payload); err != nil {
		t.Fatal(err)
	}
	aps := payload["aps"].(map[string]any)
	alertD := aps["alert"].(map[string]any)
	if alertD["title"] != "Hello" || alertD["subtitle"] != "sub" || alertD["body"] != "World" ||
		aps["badge"] != float64(3) || aps["sound"] != "default" || payload["order"] != "1234" {
		t.Errorf("payload %s", r.Body)
	}
	if r.KeyID != keyID || r.TeamID != teamID {
		t.Errorf("token kid %s iss %s", r.KeyID, r.TeamID)
	}
}

// TestPushTypes sends every push type Apple defines through the real server
// to the fake, which checks topic suffix and priority as Apple does.
func TestPushTypes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	cases := []struct {
		pushType, topic, prio string
		extra                 map[string]any
	}{
		{"alert", bundle, "10", nil},
		{"background", bundle, "5", map[string]any{"title": "", "body": "", "data": map[string]any{"k": 1}}},
		{"voip", bundle + ".voip", "10", nil},
		{"complication", bundle + ".complication", "10", nil},
		{"fileprovider", bundle + ".pushkit.fileprovider", "5", nil},
		{"location", bundle + ".location-query", "10", nil},
		{"pushtotalk", bundle + ".voip-ptt", "10", nil},
		{"liveactivity", bundle + ".push-type.liveactivity", "10", map[string]any{"apns": map[string]any{"aps": map[string]any{
			"event": "update", "timestamp": 1763632800, "content-state": map[string]any{"eta": 5}}}}},
		{"widgets", bundle + ".push-type.widgets", "10", nil},
		{"controls", bundle + ".push-type.controls", "10", nil},
		{"mdm", "com.apple.mgmt.External.1234", "10", map[string]any{"to": nil}},
	}
	for _, c := range cases {
		t.Run(c.pushType, func(t *testing.T) {
			h.fake.Reset()
			tok := h.token()
			n := alert(tok)
			n["push_type"] = c.pushType
			if c.pushType == "mdm" {
				n["to"] = map[string]any{"apns": map[string]any{"token": tok, "topic": "com.apple.mgmt.External.1234", "credential": "default"}}
			}
			for k, v := range c.extra {
				if k == "to" {
					continue
				}
				if v == "" {
					delete(n, k)
					continue
				}
				n[k] = v
			}
			a := h.post("/v1/notifications", n)
			if a.Status != 200 {
				t.Fatalf("status %d: %s", a.Status, a.Raw)
			}
			r := h.fake.Requests()[0]
			if r.Header.Get("apns-push-type") != c.pushType || r.Header.Get("apns-topic") != c.topic || r.Header.Get("apns-priority") != c.prio {
				t.Errorf("headers push-type %q topic %q priority %q", r.Header.Get("apns-push-type"), r.Header.Get("apns-topic"), r.Header.Get("apns-priority"))
			}
		})
	}
}

func TestBackgroundDerivedAndNeverPriority10(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tok := h.token()
	n := map[string]any{"to": map[string]any{"apns": map[string]any{"token": tok}}, "data": map[string]any{"sync": true}, "priority": "high"}
	a := h.post("/v1/notifications", n)
	if a.Status != 200 {
		t.Fatalf("status %d: %s", a.Status, a.Raw)
	}
	r := h.fake.Requests()[0]
	if r.Header.Get("apns-push-type") != "background" || r.Header.Get("apns-priority") != "5" {
		t.Errorf("push type %q priority %q", r.Header.Get("apns-push-type"), r.Header.Get("apns-priority"))
	}
	var p struct {
		APS  map[string]any `json:"aps"`
		Sync bool           `json:"sync"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil || p.APS["content-available"] != float64(1) || !p.Sync {
		t.Errorf("payload %s", r.Body)
	}
}

// TestTokenReusedAndRefreshed: one signature for many requests; on
// ExpiredProviderToken a fresh token (iat = now) and one retry.
func TestTokenReusedAndRefreshed(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for range 5 {
		if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
			t.Fatalf("status %d: %s", a.Status, a.Raw)
		}
	}
	reqs := h.fake.Requests()
	first := reqs[0].JWT
	for _, r := range reqs {
		if r.JWT != first {
			t.Fatalf("token re-signed between requests")
		}
		if r.Conn != reqs[0].Conn {
			t.Errorf("request on connection %d, want the long-lived %d", r.Conn, reqs[0].Conn)
		}
	}
	bucket := int64(creds.TokenBucket / time.Second)
	if reqs[0].IssuedAt%bucket != 0 {
		t.Errorf("iat %d is not aligned to the %v bucket", reqs[0].IssuedAt, creds.TokenBucket)
	}
	if got := metricValue(t, h, `pushproxy_tokens_signed_total{kind="apns"}`); got != 1 {
		t.Errorf("tokens signed = %v, want 1", got)
	}

	tok := h.token()
	h.fake.Script(tok, fakeapns.Response{Status: 403, Reason: "ExpiredProviderToken"})
	a := h.post("/v1/notifications", alert(tok))
	if a.Status != 200 || a.Body["attempts"] != float64(2) {
		t.Fatalf("after ExpiredProviderToken: status %d: %s", a.Status, a.Raw)
	}
	reqs = h.fake.Requests()
	last := reqs[len(reqs)-1]
	if last.JWT == first {
		t.Fatal("retry used the refused token")
	}
	if d := time.Now().Unix() - last.IssuedAt; d < 0 || d > 5 {
		t.Errorf("refreshed token iat is %d s old, want now", d)
	}
	// The fresh token stays in use: no churn.
	if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
		t.Fatalf("status %d: %s", a.Status, a.Raw)
	}
	reqs = h.fake.Requests()
	if reqs[len(reqs)-1].JWT != last.JWT {
		t.Error("token changed again after the refresh")
	}
	// Refused again within 20 minutes: no second refresh, credentials_rejected.
	tok = h.token()
	h.fake.Script(tok, fakeapns.Response{Status: 403, Reason: "ExpiredProviderToken"})
	a = h.post("/v1/notifications", alert(tok))
	if a.Status != 502 || a.code() != "credentials_rejected" || !strings.Contains(a.errField("hint").(string), "clock") {
		t.Fatalf("second ExpiredProviderToken: %d %s", a.Status, a.Raw)
	}
}

// TestTwoServersSameToken: two pushproxy instances holding the same key
// send the byte-identical provider token.
func TestTwoServersSameToken(t *testing.T) {
	h1 := newHarness(t, harnessOpts{})
	cfg := *h1.cfg
	h2 := &harness{t: t, logs: &syncBuffer{}, fake: h1.fake, cfg: &cfg, key: h1.key}
	h2.start()
	if a := h1.post("/v1/notifications", alert(h1.token())); a.Status != 200 {
		t.Fatal(a.Status)
	}
	if a := h2.post("/v1/notifications", alert(h1.token())); a.Status != 200 {
		t.Fatal(a.Status)
	}
	reqs := h1.fake.Requests()
	if len(reqs) != 2 || reqs[0].JWT != reqs[1].JWT || reqs[0].JWT == "" {
		t.Fatal("the two servers sent different tokens")
	}
}

// appleReasons is Apple's documented table with the normalised outcome
// expected for each, written independently of translate's table.
var appleReasons = []struct {
	status    int
	reason    string
	code      string
	ourStatus int
	retried   bool
}{
	{400, "BadCollapseId", "invalid_request", 400, false},
	{400, "BadDeviceToken", "invalid_recipient", 400, false},
	{400, "BadExpirationDate", "invalid_request", 400, false},
	{400, "BadMessageId", "invalid_request", 400, false},
	{400, "BadPriority", "invalid_request", 400, false},
	{400, "BadTopic", "topic_mismatch", 400, false},
	{400, "DeviceTokenNotForTopic", "topic_mismatch", 400, false},
	{400, "DuplicateHeaders", "invalid_request", 400, false},
	{400, "IdleTimeout", "upstream_unavailable", 503, true},
	{400, "InvalidPushType", "invalid_request", 400, false},
	{400, "MissingDeviceToken", "invalid_recipient", 400, false},
	{400, "MissingTopic", "topic_mismatch", 400, false},
	{400, "PayloadEmpty", "invalid_request", 400, false},
	{400, "TopicDisallowed", "topic_mismatch", 400, false},
	{403, "BadCertificate", "credentials_rejected", 502, false},
	{403, "BadCertificateEnvironment", "credentials_rejected", 502, false},
	{403, "ExpiredProviderToken", "credentials_rejected", 502, false},
	{403, "Forbidden", "credentials_rejected", 502, false},
	{403, "InvalidProviderToken", "credentials_rejected", 502, false},
	{403, "MissingProviderToken", "credentials_rejected", 502, false},
	{403, "UnrelatedKeyIdInToken", "credentials_rejected", 502, false},
	{403, "BadEnvironmentKeyIdInToken", "environment_mismatch", 400, false},
	{404, "BadPath", "invalid_request", 400, false},
	{405, "MethodNotAllowed", "invalid_request", 400, false},
	{410, "ExpiredToken", "recipient_gone", 410, false},
	{410, "Unregistered", "recipient_gone", 410, false},
	{413, "PayloadTooLarge", "payload_too_large", 413, false},
	{429, "TooManyProviderTokenUpdates", "rate_limited", 429, false},
	{429, "TooManyRequests", "rate_limited", 429, true},
	{500, "InternalServerError", "upstream_unavailable", 503, true},
	{503, "ServiceUnavailable", "upstream_unavailable", 503, true},
	{503, "Shutdown", "upstream_unavailable", 503, true},
}

// TestEveryAppleReason scripts the fake to answer each documented reason
// and checks the normalised answer through the real server.
func TestEveryAppleReason(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if len(appleReasons) != len(translate.APNsReasons) {
		t.Fatalf("the test covers %d reasons, translate has %d", len(appleReasons), len(translate.APNsReasons))
	}
	for _, c := range appleReasons {
		t.Run(c.reason, func(t *testing.T) {
			tok := h.token()
			r := fakeapns.Response{Status: c.status, Reason: c.reason}
			if c.status == 410 {
				r.Timestamp = 1763632800000
			}
			// Enough for every attempt (and ExpiredProviderToken's refresh).
			h.fake.Script(tok, r, r, r, r, r)
			a := h.post("/v1/notifications", alert(tok), "X-Request-Timeout", "3")
			if a.Status != c.ourStatus || a.code() != c.code {
				t.Fatalf("got %d %s, want %d %s: %s", a.Status, a.code(), c.ourStatus, c.code, a.Raw)
			}
			up, _ := a.errField("upstream").(map[string]any)
			if up == nil || up["reason"] != c.reason || up["status"] != float64(c.status) {
				t.Errorf("upstream %v", up)
			}
			if hint, _ := a.errField("hint").(string); hint == "" {
				t.Error("no hint")
			}
			if a.errField("platform") != "apns" || a.errField("action") == "" {
				t.Errorf("platform/action missing: %s", a.Raw)
			}
			if c.status == 410 {
				if up["timestamp"] != float64(1763632800000) || !strings.Contains(a.errField("hint").(string), "2025-11-20T10:00:00Z") {
					t.Errorf("410 timestamp not passed on: %s", a.Raw)
				}
			}
			sent := 0
			for _, q := range h.fake.Requests() {
				if q.DeviceToken == tok {
					sent++
				}
			}
			switch {
			case c.retried && sent < 2:
				t.Errorf("a retryable reason was sent %d times", sent)
			case c.reason == "UnrelatedKeyIdInToken":
				// retried once, on a new connection
				var conns []uint64
				for _, q := range h.fake.Requests() {
					if q.DeviceToken == tok {
						conns = append(conns, q.Conn)
					}
				}
				if len(conns) != 2 || conns[0] == conns[1] {
					t.Errorf("sent on connections %v, want twice on two", conns)
				}
			case c.reason == "ExpiredProviderToken":
				// one refresh, then refused: at most 2.
				if sent > 2 {
					t.Errorf("sent %d times", sent)
				}
			case !c.retried && sent != 1:
				t.Errorf("a final reason was sent %d times", sent)
			}
			if strings.Contains(string(a.Raw), tok) {
				t.Error("the device token appears in the answer")
			}
		})
	}
}

// TestRefusedBeforeSending: what pushproxy can see is wrong never reaches APNs.
func TestRefusedBeforeSending(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tok := h.token()
	big := strings.Repeat("x", 4100)
	cases := []struct {
		name, body, code, field string
		status                  int
	}{
		{"unknown field", `{"to":{"apns":{"token":"` + tok + `"}},"titel":"x"}`, "invalid_request", "titel", 400},
		{"nested unknown field", `{"to":{"apns":{"token":"` + tok + `","topik":"x"}},"title":"x"}`, "invalid_request", "topik", 400},
		{"wrong type", `{"to":{"apns":{"token":"` + tok + `"}},"badge":"3"}`, "invalid_request", "badge", 400},
		{"no recipient", `{"title":"x"}`, "invalid_request", "to", 400},
		{"two recipients", `{"to":{"apns":{"token":"` + tok + `"},"webpush":{"endpoint":"https://x","keys":{"p256dh":"a","auth":"b"}}},"title":"x"}`, "invalid_request", "to", 400},
		{"bad token", `{"to":{"apns":{"token":"xyz"}},"title":"x"}`, "invalid_recipient", "to.apns.token", 400},
		{"bad id", `{"to":{"apns":{"token":"` + tok + `"}},"title":"x","id":"42"}`, "invalid_request", "id", 400},
		{"long collapse id", `{"to":{"apns":{"token":"` + tok + `"}},"title":"x","collapse_id":"` + strings.Repeat("c", 65) + `"}`, "invalid_request", "collapse_id", 400},
		{"bad priority", `{"to":{"apns":{"token":"` + tok + `"}},"title":"x","priority":"urgent"}`, "invalid_request", "priority", 400},
		{"bad push type", `{"to":{"apns":{"token":"` + tok + `"}},"title":"x","push_type":"banner"}`, "invalid_request", "push_type", 400},
		{"empty", `{"to":{"apns":{"token":"` + tok + `"}}}`, "invalid_request", "", 400},
		{"too large", `{"to":{"apns":{"token":"` + tok + `"}},"title":"x","body":"` + big + `"}`, "payload_too_large", "", 413},
		{"unknown credential", `{"to":{"apns":{"token":"` + tok + `","credential":"nope"}},"title":"x"}`, "invalid_request", "to.apns.credential", 400},
		{"bad environment", `{"to":{"apns":{"token":"` + tok + `","environment":"staging"}},"title":"x"}`, "invalid_request", "to.apns.environment", 400},
		{"unknown topic", `{"to":{"apns":{"token":"` + tok + `","topic":"org.unknown.app"}},"title":"x"}`, "topic_mismatch", "to.apns.topic", 400},
		{"not json", `{"to":`, "invalid_request", "", 400},
		{"trailing data", `{"to":{"apns":{"token":"` + tok + `"}},"title":"x"} {}`, "invalid_request", "", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h.post("/v1/notifications", c.body)
			if a.Status != c.status || a.code() != c.code {
				t.Fatalf("got %d %s, want %d %s: %s", a.Status, a.code(), c.status, c.code, a.Raw)
			}
			if c.field != "" && a.errField("field") != c.field {
				t.Errorf("field %v, want %s: %s", a.errField("field"), c.field, a.Raw)
			}
		})
	}
	if n := len(h.fake.Requests()); n != 0 {
		t.Errorf("%d refused notifications reached APNs", n)
	}
	if got := h.post("/v1/notifications", strings.Repeat(" ", 2<<20)); got.Status != 413 || got.code() != "payload_too_large" {
		t.Errorf("oversized body: %d %s", got.Status, got.Raw)
	}
	if got := h.post("/v1/notifications", alert(tok), "X-Request-Timeout", "soon"); got.Status != 400 || got.errField("field") != "X-Request-Timeout" {
		t.Errorf("bad X-Request-Timeout: %d %s", got.Status, got.Raw)
	}
}

func TestDryRun(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	n := alert(h.token())
	n["dry_run"] = true
	a := h.post("/v1/notifications", n)
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	req := a.Body["request"].(map[string]any)
	claims := req["token_claims"].(map[string]any)
	if claims["iss"] != teamID || req["token_header"].(map[string]any)["kid"] != keyID {
		t.Errorf("dry run %s", a.Raw)
	}
	if strings.Contains(string(a.Raw), "eyJ") {
		t.Error("the dry run shows the signed token")
	}
	if len(h.fake.Requests()) != 0 {
		t.Error("dry run sent the notification")
	}
}

func TestRequestTimeout(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tok := h.token()
	h.fake.Script(tok, fakeapns.Response{Delay: 3 * time.Second})
	start := time.Now()
	a := h.post("/v1/notifications", alert(tok), "X-Request-Timeout", "0.3")
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("answered after %v", el)
	}
	if a.Status != 504 || a.code() != "upstream_timeout" {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if !strings.Contains(a.errField("hint").(string), "may have been delivered") {
		t.Errorf("hint does not say it may have been delivered: %s", a.Raw)
	}
}

func TestBatch(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	gone := h.token()
	h.fake.Script(gone, fakeapns.Response{Status: 410, Reason: "Unregistered"})
	var entries []any
	for i := range 20 {
		switch i {
		case 3:
			entries = append(entries, alert("nothex"))
		case 7:
			entries = append(entries, map[string]any{"to": map[string]any{"apns": map[string]any{"token": h.token()}}, "bogus": 1})
		case 11:
			entries = append(entries, alert(gone))
		default:
			entries = append(entries, alert(h.token()))
		}
	}
	a := h.post("/v1/notifications/batch", map[string]any{"notifications": entries})
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	results := a.Body["results"].([]any)
	if len(results) != 20 {
		t.Fatalf("%d results", len(results))
	}
	for i, r := range results {
		m := r.(map[string]any)
		e, _ := m["error"].(map[string]any)
		switch i {
		case 3:
			if e == nil || e["code"] != "invalid_recipient" {
				t.Errorf("entry 3: %v", m)
			}
		case 7:
			if e == nil || e["code"] != "invalid_request" || e["field"] != "notifications[7].bogus" {
				t.Errorf("entry 7: %v", m)
			}
		case 11:
			if e == nil || e["code"] != "recipient_gone" {
				t.Errorf("entry 11: %v", m)
			}
		default:
			if e != nil || m["platform"] != "apns" {
				t.Errorf("entry %d: %v", i, m)
			}
		}
	}
	if got := len(h.fake.Requests()); got != 18 {
		t.Errorf("fake saw %d requests, want 18", got)
	}
	big := make([]any, h.cfg.MaxBatch+1)
	for i := range big {
		big[i] = alert("00")
	}
	if a := h.post("/v1/notifications/batch", map[string]any{"notifications": big}); a.Status != 400 || a.errField("field") != "notifications" {
		t.Errorf("oversized batch: %d %.200s", a.Status, a.Raw)
	}
}

// TestMissingKeyAtStart: a missing credential file is not fatal; the
// platform answers credentials_missing and /readyz names the file, until
// the file is there.
func TestMissingKeyAtStart(t *testing.T) {
	h := newHarness(t, harnessOpts{noKeyFile: true})
	a := h.get("/readyz")
	if a.Status != 503 || !strings.Contains(string(a.Raw), h.keyPath) {
		t.Fatalf("readyz %d %s", a.Status, a.Raw)
	}
	if a := h.get("/healthz"); a.Status != 200 {
		t.Errorf("healthz %d", a.Status)
	}
	tok := h.token()
	a = h.post("/v1/notifications", alert(tok))
	if a.Status != 503 || a.code() != "credentials_missing" || !strings.Contains(a.errField("hint").(string), h.keyPath) {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	h.addSecretKey(writeKey(t, h.keyPath, h.key))
	h.srv.Reload("test")
	if a := h.get("/readyz"); a.Status != 200 || a.Body["status"] != "ready" {
		t.Fatalf("readyz after the file appeared: %d %s", a.Status, a.Raw)
	}
	if a := h.post("/v1/notifications", alert(tok)); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
}

// TestBadFileKeepsGoodKey: a broken file never replaces a good key;
// /readyz says degraded and stays 200.
func TestBadFileKeepsGoodKey(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if err := os.WriteFile(h.keyPath, []byte("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.srv.Reload("test")
	a := h.get("/readyz")
	if a.Status != 200 || a.Body["status"] != "degraded" || !strings.Contains(string(a.Raw), "truncated") {
		t.Fatalf("readyz %d %s", a.Status, a.Raw)
	}
	if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if got := metricValue(t, h, `pushproxy_credential_reloads_total{result="error"}`); got != 1 {
		t.Errorf("reload errors = %v", got)
	}
}

func TestSeveralCredentials(t *testing.T) {
	var otherPath string
	other := genKey(t)
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
		otherPath = c.APNs[0].KeyFile[:strings.LastIndex(c.APNs[0].KeyFile, "/")] + "/other.p8"
		c.APNs = append(c.APNs, proxy.APNsConfig{Name: "second", KeyFile: otherPath, KeyID: "ZZZ987YYYX",
			TeamID: "TEAM2TEAM2", Topics: []string{"com.second.app"}, Environment: "production"})
	}})
	writeKey(t, otherPath, other)
	h.addSecret(other.D.Text(16))
	h.srv.Reload("test")
	h.fake.AddKey("TEAM2TEAM2", "ZZZ987YYYX", &other.PublicKey, "com.second.app")
	n := alert(h.token())
	n["to"].(map[string]any)["apns"].(map[string]any)["topic"] = "com.second.app"
	a := h.post("/v1/notifications", n)
	if a.Status != 200 || a.Body["credential"] != "second" {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 || a.Body["credential"] != "default" {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	reqs := h.fake.Requests()
	if reqs[0].TeamID != "TEAM2TEAM2" || reqs[1].TeamID != teamID {
		t.Errorf("teams %s %s", reqs[0].TeamID, reqs[1].TeamID)
	}
	if reqs[0].Conn == reqs[1].Conn {
		t.Error("two teams shared one connection")
	}
}

func TestAuthToken(t *testing.T) {
	var tokPath string
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
		tokPath = c.Upstream.CAFile + ".token"
		c.AuthTokenFile = tokPath
	}})
	if err := os.WriteFile(tokPath, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.addSecret("s3cret-token")
	h.srv.Reload("test")
	tok := h.token()
	if a := h.post("/v1/notifications", alert(tok)); a.Status != 401 || a.code() != "unauthorized" {
		t.Errorf("no token: %d %s", a.Status, a.Raw)
	}
	if a := h.post("/v1/notifications", alert(tok), "Authorization", "Bearer wrong"); a.Status != 401 {
		t.Errorf("wrong token: %d", a.Status)
	}
	if a := h.post("/v1/notifications", alert(tok), "Authorization", "Bearer s3cret-token"); a.Status != 200 {
		t.Errorf("right token: %d %s", a.Status, a.Raw)
	}
	if a := h.get("/healthz"); a.Status != 200 {
		t.Errorf("healthz needs no token: %d", a.Status)
	}
}

func TestOverloaded(t *testing.T) {
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) { c.MaxInFlight = 1 }})
	slow := h.token()
	h.fake.Script(slow, fakeapns.Response{Delay: 700 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Go(func() {
		if a := h.post("/v1/notifications", alert(slow)); a.Status != 200 {
			t.Errorf("slow one: %d", a.Status)
		}
	})
	waitFor(t, "the slow request to reach the fake", func() bool { return len(h.fake.Requests()) == 1 })
	a := h.post("/v1/notifications", alert(h.token()))
	if a.Status != 503 || a.code() != "overloaded" || a.Header.Get("Retry-After") == "" {
		t.Errorf("%d %s", a.Status, a.Raw)
	}
	wg.Wait()
}

func TestRoutes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if a := h.get("/nope"); a.Status != 404 || a.code() != "not_found" || a.errField("hint") == "" {
		t.Errorf("unknown route: %d %s", a.Status, a.Raw)
	}
	for path, allow := range map[string]string{"/v1/notifications": "POST", "/v1/notifications/batch": "POST",
		"/healthz": "GET, HEAD", "/readyz": "GET, HEAD", "/metrics": "GET, HEAD", "/v1/webpush/vapid-public-key": "GET, HEAD"} {
		method := "GET"
		if allow != "POST" {
			method = "DELETE"
		}
		req, _ := http.NewRequest(method, h.url+path, nil)
		a := h.do(req)
		if a.Status != 405 || a.code() != "method_not_allowed" || a.Header.Get("Allow") != allow || a.errField("hint") == "" {
			t.Errorf("%s %s: %d Allow %q %s", method, path, a.Status, a.Header.Get("Allow"), a.Raw)
		}
	}
	if a := h.get("/metrics"); a.Status != 200 || !strings.Contains(string(a.Raw), "pushproxy_in_flight") {
		t.Errorf("metrics: %d", a.Status)
	}
	a := h.get("/readyz")
	if a.Status != 200 || a.Body["status"] != "ready" {
		t.Fatalf("readyz %d %s", a.Status, a.Raw)
	}
	c := a.Body["platforms"].(map[string]any)["apns"].(map[string]any)["credentials"].([]any)[0].(map[string]any)
	if c["fingerprint"] != creds.PublicFingerprint(&h.key.PublicKey) || c["key_id"] != keyID || c["state"] != "ok" {
		t.Errorf("readyz credential %v", c)
	}
}

// metricValue reads one series from /metrics.
func metricValue(t *testing.T, h *harness, series string) float64 {
	t.Helper()
	a := h.get("/metrics")
	for _, line := range strings.Split(string(a.Raw), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}
