package proxy_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// End-to-end tests of FCM through the real server: pushproxy on loopback
// in front of internal/fakefcm (TLS + HTTP/2, with Google's OAuth token
// endpoint that verifies the RS256 assertion), service-account files on
// disk and watched. The harness checks every error answer has a hint and,
// at cleanup, that no secret reached the logs: the service accounts'
// private keys, every access token the fake issued, every assertion
// pushproxy signed, and every registration token used.

const (
	fcmProject  = "pushproxy-test"
	fcmProject2 = "pushproxy-other"
	fcmEmail    = "push@pushproxy-test.iam.gserviceaccount.com"
	fcmEmail2   = "push@pushproxy-other.iam.gserviceaccount.com"
)

var (
	fcmKeysOnce sync.Once
	fcmKeys     [4]*rsa.PrivateKey
)

// fcmKey is one of four RSA keys made once per test binary (2048-bit keys
// are slow to make on a busy machine).
func fcmKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	fcmKeysOnce.Do(func() {
		for j := range fcmKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			fcmKeys[j] = k
		}
	})
	return fcmKeys[i]
}

// fcmKeyID is a private_key_id (40 hex digits, as Google's) for key i.
func fcmKeyID(i int) string { return fmt.Sprintf("%040x", 0xfc0+i) }

// fcmFingerprint is the fingerprint /readyz shows for key i.
func fcmFingerprint(t testing.TB, i int) string {
	t.Helper()
	data, err := creds.EncodeServiceAccount(fcmKey(t, i), fcmEmail, fcmKeyID(i), fcmProject, "")
	if err != nil {
		t.Fatal(err)
	}
	sa, err := creds.ParseServiceAccount(data, "")
	if err != nil {
		t.Fatal(err)
	}
	return sa.Fingerprint
}

// fcmHarness is the harness with a fake FCM beside the fake APNs.
type fcmHarness struct {
	*harness
	ffcm   *fakefcm.Server
	saPath string // the first credential's service-account file
}

type fcmOpts struct {
	fake    fakefcm.Options
	noFile  bool                          // the service-account file does not exist at start
	saPath  string                        // where the file is ("": in the harness's directory)
	extra   func(*proxy.Config, *fcmEnvT) // more configuration
	noToken bool                          // no upstream.fcm_token_url: the file's token_uri is the fake's
	noWait  bool                          // do not wait for the first access token
}

// fcmEnvT is what extra sees: the fake, and a way to write key files.
type fcmEnvT struct {
	t    testing.TB
	fake *fakefcm.Server
	dir  string
	h    *fcmHarness
}

// saFile writes service-account key i of account email for project to path
// (renamed over, as an editor does) and registers the key's secrets.
func (e *fcmEnvT) saFile(path string, i int, email, project string) []byte {
	e.t.Helper()
	tokenURI := "" // Google's: upstream.fcm_token_url points at the fake
	if e.h != nil && e.h.cfg.Upstream.FCMTokenURL == "" {
		tokenURI = e.fake.TokenURL()
	}
	data, err := creds.EncodeServiceAccount(fcmKey(e.t, i), email, fcmKeyID(i), project, tokenURI)
	if err != nil {
		e.t.Fatal(err)
	}
	if path != "" {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			e.t.Fatal(err)
		}
	}
	return data
}

// fcmSecrets are the strings of key i that must never be logged.
func fcmSecrets(k *rsa.PrivateKey) []string {
	der, _ := x509MarshalPKCS8(k)
	b64 := base64.StdEncoding.EncodeToString(der)
	return []string{b64[:40], b64[len(b64)/2 : len(b64)/2+40], b64[len(b64)-40:], k.D.Text(16)[:64]}
}

func newFCMHarness(t *testing.T, o fcmOpts) *fcmHarness {
	t.Helper()
	fake, err := fakefcm.New(o.fake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	fake.AddServiceAccount(fcmEmail, fcmKeyID(0), &fcmKey(t, 0).PublicKey, fcmProject)
	env := &fcmEnvT{t: t, fake: fake, dir: t.TempDir()}
	saPath := o.saPath
	if saPath == "" {
		saPath = filepath.Join(env.dir, "service-account.json")
	}
	if !o.noFile {
		tokenURI := ""
		if o.noToken {
			tokenURI = fake.TokenURL()
		}
		data, err := creds.EncodeServiceAccount(fcmKey(t, 0), fcmEmail, fcmKeyID(0), fcmProject, tokenURI)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(saPath, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fh := &fcmHarness{ffcm: fake, saPath: saPath}
	fh.harness = newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
		// One CA file trusted for every upstream: the fake APNs's and the
		// fake FCM's roots.
		apnsCA, err := os.ReadFile(c.Upstream.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		both := filepath.Join(env.dir, "upstream-ca.pem")
		if err := os.WriteFile(both, append(apnsCA, fake.CAPEM()...), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Upstream.CAFile = both
		c.Upstream.FCMURL = fake.URL()
		if !o.noToken {
			c.Upstream.FCMTokenURL = fake.TokenURL()
		}
		c.FCM = []proxy.FCMConfig{{ServiceAccountFile: saPath}}
		if o.extra != nil {
			o.extra(c, env)
		}
	}})
	env.h = fh
	if !o.noFile && !o.noWait {
		// The token is fetched right after the file loads, off the request
		// path: wait for it so that tests count their own fetches.
		waitFor(t, "the first access token", func() bool { return len(fake.TokenFetches()) > 0 })
	}
	for i := range fcmKeys {
		fh.addSecret(fcmSecrets(fcmKey(t, i))...)
	}
	// Registered last, so it runs first: the access tokens and assertions
	// of the whole test are secrets the log check looks for.
	t.Cleanup(func() {
		for _, f := range fake.TokenFetches() {
			fh.addSecret(f.AccessToken, f.Assertion)
			if parts := strings.Split(f.Assertion, "."); len(parts) == 3 {
				fh.addSecret(parts[2][:min(40, len(parts[2]))])
			}
		}
		for _, r := range fake.Requests() {
			fh.addSecret(r.Token, r.AccessToken)
		}
	})
	return fh
}

// regToken makes a registration token shaped like FCM's (about 160
// characters of [A-Za-z0-9_:-]), registered as a secret.
func (h *fcmHarness) regToken() string {
	var b [120]byte
	_, _ = rand.Read(b[:])
	s := base64.RawURLEncoding.EncodeToString(b[:])
	tok := s[:22] + ":APA91b" + s[22:]
	h.addSecret(tok)
	return tok
}

// fcmAlert is a notification to an FCM registration token.
func fcmAlert(tok string, extra map[string]any) map[string]any {
	n := map[string]any{"to": map[string]any{"fcm": map[string]any{"token": tok}}, "title": "Hello", "body": "World"}
	for k, v := range extra {
		n[k] = v
	}
	return n
}

// lastRequest is the fake FCM's latest send request.
func (h *fcmHarness) lastRequest() fakefcm.Request {
	h.t.Helper()
	reqs := h.ffcm.Requests()
	if len(reqs) == 0 {
		h.t.Fatal("the fake FCM received nothing")
	}
	return reqs[len(reqs)-1]
}

// fcmReady is /readyz's fcm platform.
func (h *fcmHarness) fcmReady() map[string]any {
	a := h.get("/readyz")
	p, _ := a.Body["platforms"].(map[string]any)["fcm"].(map[string]any)
	if p == nil {
		h.t.Fatalf("no fcm platform in /readyz: %s", a.Raw)
	}
	return p
}

// fcmCred is /readyz's fcm credential i.
func (h *fcmHarness) fcmCred(i int) map[string]any {
	cs, _ := h.fcmReady()["credentials"].([]any)
	if len(cs) <= i {
		h.t.Fatalf("no fcm credential %d in /readyz", i)
	}
	return cs[i].(map[string]any)
}

func (h *fcmHarness) waitFCM(t *testing.T, what string, cond func(c map[string]any) bool) {
	t.Helper()
	waitFor(t, what, func() bool { return cond(h.fcmCred(0)) })
}

func TestFCMDeliveryAndMapping(t *testing.T) {
	h := newFCMHarness(t, fcmOpts{})
	tok := h.regToken()
	a := h.post("/v1/notifications", map[string]any{
		"to":    map[string]any{"fcm": map[string]any{"token": tok}},
		"title": "Order shipped", "body": "On its way", "image": "https://example.com/i.png", "url": "https://example.com/o/1",
		"data":     map[string]any{"order": "1234", "n": 12, "deep": map[string]any{"a": []int{1, 2}}},
		"priority": "high", "ttl": 3600, "collapse_id": "order-1234", "sound": "default", "badge": 3,
		"id":  "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D",
		"fcm": map[string]any{"android": map[string]any{"notification": map[string]any{"channel_id": "orders"}, "collapse_key": nil}},
	})
	if a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	up, _ := a.Body["upstream"].(map[string]any)
	if a.Body["id"] != "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" || a.Body["platform"] != "fcm" || a.Body["credential"] != "default" ||
		a.Body["attempts"] != float64(1) || up["status"] != float64(200) || !strings.HasPrefix(fmt.Sprint(up["message_id"]), "projects/"+fcmProject+"/messages/") {
		t.Fatalf("answer %s", a.Raw)
	}
	r := h.lastRequest()
	if r.Status != 200 || r.Project != fcmProject || r.Token != tok || r.ValidateOnly || r.Account != fcmEmail || r.Proto != "HTTP/2.0" {
		t.Fatalf("request %+v", r)
	}
	msg := r.Message
	got, _ := json.Marshal(map[string]any{"notification": msg["notification"], "data": msg["data"], "android": msg["android"]})
	want := `{"android":{"notification":{"channel_id":"orders","notification_count":3,"sound":"default"},"priority":"HIGH","ttl":"3600s"},` +
		`"data":{"deep":"{\"a\":[1,2]}","n":"12","order":"1234","url":"https://example.com/o/1"},` +
		`"notification":{"body":"On its way","image":"https://example.com/i.png","title":"Order shipped"}}`
	if string(got) != want {
		t.Fatalf("message\n got %s\nwant %s", got, want)
	}

	// normal and low are NORMAL; ttl 0 is "0s"; no id: a new UUID; the
	// collapse key kept when not removed.
	for _, p := range []string{"normal", "low"} {
		a := h.post("/v1/notifications", fcmAlert(h.regToken(), map[string]any{"priority": p, "ttl": 0, "collapse_id": "c1"}))
		if a.Status != 200 || !translate.IsUUID(fmt.Sprint(a.Body["id"])) {
			t.Fatalf("%s: %d %s", p, a.Status, a.Raw)
		}
		android, _ := h.lastRequest().Message["android"].(map[string]any)
		if android["priority"] != "NORMAL" || android["ttl"] != "0s" || android["collapse_key"] != "c1" {
			t.Fatalf("%s: android %v", p, android)
		}
	}

	// One token fetch for all of them, counted as kind fcm.
	if n := len(h.ffcm.TokenFetches()); n != 1 {
		t.Fatalf("%d token fetches", n)
	}
	if v := metricValue(t, h.harness, `pushproxy_tokens_signed_total{kind="fcm"}`); v != 1 {
		t.Fatalf("tokens signed (fcm) %v", v)
	}
	if v := metricValue(t, h.harness, `pushproxy_notifications_total{code="ok",platform="fcm"}`); v != 3 {
		t.Fatalf("notifications ok %v", v)
	}
	if v := metricValue(t, h.harness, `pushproxy_upstream_duration_seconds_count{platform="fcm"}`); v != 3 {
		t.Fatalf("upstream attempts %v", v)
	}
	if v := metricValue(t, h.harness, `pushproxy_upstream_attempts_total{outcome="2xx",platform="fcm"}`); v != 3 {
		t.Fatalf("attempts %v", v)
	}
	fp := fcmFingerprint(t, 0)
	if v := metricValue(t, h.harness, `pushproxy_credential_info{fingerprint="`+fp+`",name="default",platform="fcm"}`); v != 1 {
		t.Fatalf("credential info %v (fingerprint %s)", v, fp)
	}

	// Readiness: the account, never the key or the token.
	ready := h.get("/readyz")
	if ready.Status != 200 || ready.Body["status"] != "ready" {
		t.Fatalf("readyz %d %s", ready.Status, ready.Raw)
	}
	p := h.fcmReady()
	c := h.fcmCred(0)
	exp, _ := time.Parse(time.RFC3339, fmt.Sprint(c["token_expiry"]))
	if p["status"] != "ok" || c["state"] != "ok" || c["client_email"] != fcmEmail || c["private_key_id"] != fcmKeyID(0) ||
		c["project_id"] != fcmProject || c["fingerprint"] != fp || c["file"] != h.saPath || time.Until(exp) < 50*time.Minute {
		t.Fatalf("readyz fcm %v", p)
	}
	if strings.Contains(string(ready.Raw), "ya29.") || strings.Contains(string(ready.Raw), "PRIVATE") {
		t.Fatalf("readyz shows a secret: %s", ready.Raw)
	}
}

// fcmRow is how each row of translate.FCMReasons is provoked at the fake.
func fcmRowAnswer(row translate.FCMReason) (fakefcm.Response, bool) {
	switch {
	case row.Key == translate.FCMInvalidArgument && row.Contains != "":
		return fakefcm.Answer(fakefcm.InvalidToken), true
	case row.Key == translate.FCMInvalidArgument:
		return fakefcm.Answer(fakefcm.InvalidArgument), true
	case row.Key == translate.FCMUnregistered:
		return fakefcm.Answer(fakefcm.Unregistered), true
	case row.Key == translate.FCMSenderIDMismatch:
		return fakefcm.Answer(fakefcm.SenderIDMismatch), true
	case row.Key == translate.FCMQuotaExceeded:
		return fakefcm.Answer(fakefcm.QuotaExceeded), true
	case row.Key == translate.FCMUnavailable:
		return fakefcm.Answer(fakefcm.Unavailable), true
	case row.Key == translate.FCMInternal:
		return fakefcm.Answer(fakefcm.Internal), true
	case row.Key == translate.FCMThirdPartyAuthError:
		return fakefcm.Answer(fakefcm.ThirdPartyAuthError), true
	case row.Key == translate.FCMAPNsAuthError:
		return fakefcm.Response{Status: 401, RPCStatus: "UNAUTHENTICATED", ErrorCode: translate.FCMAPNsAuthError, Message: "Auth error from APNS"}, true
	case row.Key == translate.FCMUnauthenticated:
		return fakefcm.Answer(fakefcm.Unauthenticated), true
	case row.Key == translate.FCMPermissionDenied && row.Contains != "":
		return fakefcm.Answer(fakefcm.ServiceDisabled), true
	case row.Key == translate.FCMPermissionDenied:
		return fakefcm.Answer(fakefcm.PermissionDenied), true
	case row.Key == translate.FCMNotFound:
		return fakefcm.Answer(fakefcm.ProjectNotFound), true
	}
	return fakefcm.Response{}, false
}

// checkRow holds an error answer to a row of the table.
func checkRow(t *testing.T, a answer, row translate.FCMReason) {
	t.Helper()
	e, _ := a.Body["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error: %d %s", a.Status, a.Raw)
	}
	up, _ := e["upstream"].(map[string]any)
	hint, _ := e["hint"].(string)
	if a.Status != row.Code.HTTPStatus() || e["code"] != string(row.Code) || e["retryable"] != row.Retryable ||
		e["action"] != string(row.Action) || e["platform"] != "fcm" ||
		!(strings.Contains(hint, row.Hint) || (row.Code == translate.CodeInvalidRequest && strings.HasPrefix(hint, "fix fcm.android.notification.color"))) ||
		up == nil || up["status"] != float64(row.Status) || up["reason"] != row.Key {
		t.Fatalf("row %d %s: answer %d %s", row.Status, row.Key, a.Status, a.Raw)
	}
}

// Every row of FCM's error table, provoked at the fake and answered
// through the server: status, code, retryable, action, hint, upstream.
func TestFCMErrorRows(t *testing.T) {
	h := newFCMHarness(t, fcmOpts{})
	for _, row := range translate.FCMReasons {
		t.Run(row.Key+"/"+row.Contains, func(t *testing.T) {
			resp, ok := fcmRowAnswer(row)
			if !ok {
				t.Fatalf("row %d %s %q is not provoked by this test: add it", row.Status, row.Key, row.Contains)
			}
			tok := h.regToken()
			h.ffcm.ScriptAlways(tok, resp)
			before := len(h.ffcm.Requests())
			fetchesBefore := len(h.ffcm.TokenFetches())
			// A deadline shorter than FCM's Retry-After: answered at once.
			a := h.post("/v1/notifications", fcmAlert(tok, nil), "X-Request-Timeout", "0.8")
			checkRow(t, a, row)
			sent := len(h.ffcm.Requests()) - before
			fetched := len(h.ffcm.TokenFetches()) - fetchesBefore
			switch row.Policy {
			case translate.RetryFreshToken:
				// One fresh token, one more try, then the answer.
				if sent != 2 || fetched != 1 || !strings.Contains(fmt.Sprint(a.errField("message")), "(after 2 attempts)") {
					t.Fatalf("%d sends, %d token fetches: %s", sent, fetched, a.Raw)
				}
			case translate.RetryBackoff:
				if resp.RetryAfter != "" {
					if sent != 1 || a.errField("retry_after") != float64(1) {
						t.Fatalf("%d sends: %s", sent, a.Raw)
					}
				} else if sent != 3 || !strings.Contains(fmt.Sprint(a.errField("message")), "(after 3 attempts)") {
					t.Fatalf("%d sends (want 3 attempts): %s", sent, a.Raw)
				}
			default:
				if sent != 1 || fetched != 0 {
					t.Fatalf("%d sends, %d fetches: %s", sent, fetched, a.Raw)
				}
			}
			if row.Code == translate.CodeInvalidRecipient && a.errField("field") != "to.fcm.token" {
				t.Fatalf("field: %s", a.Raw)
			}
			if row.Key == translate.FCMSenderIDMismatch && !strings.Contains(fmt.Sprint(a.errField("hint")), fcmProject) {
				t.Fatalf("the hint does not name the project in use: %s", a.Raw)
			}
			if strings.Contains(string(a.Raw), tok) {
				t.Fatalf("the answer shows the registration token: %s", a.Raw)
			}
			h.ffcm.ScriptAlways(tok, fakefcm.Response{})
		})
	}
	// A retried answer that recovers: delivered, attempts counted.
	t.Run("recovers", func(t *testing.T) {
		tok := h.regToken()
		h.ffcm.Script(tok, fakefcm.Answer(fakefcm.Unavailable), fakefcm.Answer(fakefcm.Internal))
		a := h.post("/v1/notifications", fcmAlert(tok, nil))
		if a.Status != 200 || a.Body["attempts"] != float64(3) {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	})
	// An answer without a row: a code from its status.
	t.Run("unknown code", func(t *testing.T) {
		tok := h.regToken()
		h.ffcm.ScriptAlways(tok, fakefcm.Answer(fakefcm.UnspecifiedError))
		a := h.post("/v1/notifications", fcmAlert(tok, nil))
		if a.Status != 503 || a.code() != "upstream_unavailable" || a.errField("retryable") != true {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	})
	// Found before sending: a malformed token, a reserved data key, a
	// message over 4096 bytes.
	t.Run("refused before sending", func(t *testing.T) {
		before := len(h.ffcm.Requests())
		for _, c := range []struct {
			n     map[string]any
			code  string
			field string
		}{
			{fcmAlert("not a token!", nil), "invalid_recipient", "to.fcm.token"},
			{fcmAlert(h.regToken(), map[string]any{"data": map[string]any{"google.x": "1"}}), "invalid_request", ""},
			{fcmAlert(h.regToken(), map[string]any{"body": strings.Repeat("x", 4100)}), "payload_too_large", ""},
		} {
			a := h.post("/v1/notifications", c.n)
			if a.code() != c.code || (c.field != "" && a.errField("field") != c.field) {
				t.Fatalf("%d %s", a.Status, a.Raw)
			}
		}
		if n := len(h.ffcm.Requests()) - before; n != 0 {
			t.Fatalf("%d requests sent", n)
		}
	})
	// A real mismatch: a token the fake bound to another project.
	t.Run("sender id mismatch (bound token)", func(t *testing.T) {
		tok := h.regToken()
		h.ffcm.BindToken(tok, fcmProject2)
		a := h.post("/v1/notifications", fcmAlert(tok, nil))
		if a.Status != 400 || a.code() != "topic_mismatch" || !strings.Contains(fmt.Sprint(a.errField("hint")), fcmProject) {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	})
	// The API disabled for the project, at the fake.
	t.Run("api disabled", func(t *testing.T) {
		h.ffcm.DisableAPI(fcmProject, true)
		defer h.ffcm.DisableAPI(fcmProject, false)
		a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil))
		if a.Status != 502 || a.code() != "credentials_rejected" || !strings.Contains(fmt.Sprint(a.errField("hint")), "enable the Firebase Cloud Messaging API") {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	})
	if v := metricValue(t, h.harness, `pushproxy_notifications_total{code="recipient_gone",platform="fcm"}`); v != 1 {
		t.Fatalf("recipient_gone counted %v", v)
	}
	if !strings.Contains(h.logs.String(), `"platform":"fcm","code":"recipient_gone"`) {
		t.Fatalf("no failure line for fcm")
	}
}

// The token endpoint's rows: an access token refused (revoked), then the
// token endpoint refusing the assertion, each on a credential of its own
// (a refusal starts a cooldown for its service account).
func TestFCMTokenEndpointRows(t *testing.T) {
	rows := translate.FCMTokenReasons
	h := newFCMHarness(t, fcmOpts{extra: func(c *proxy.Config, e *fcmEnvT) {
		for i := range rows {
			p := filepath.Join(e.dir, fmt.Sprintf("sa-%d.json", i))
			e.saFile(p, 0, fcmEmail, fcmProject)
			c.FCM = append(c.FCM, proxy.FCMConfig{Name: fmt.Sprintf("row%d", i), ServiceAccountFile: p})
		}
	}})
	// Each credential warms its token at load: wait for all of them.
	waitFor(t, "tokens", func() bool { return len(h.ffcm.TokenFetches()) == len(rows)+1 })
	h.ffcm.RevokeTokens()
	for i, row := range rows {
		t.Run(row.Key, func(t *testing.T) {
			h.ffcm.ScriptToken(fakefcm.TokenResponse{Status: row.Status, Error: row.Key, Description: "scripted " + row.Key})
			n := fcmAlert(h.regToken(), nil)
			n["to"].(map[string]any)["fcm"].(map[string]any)["credential"] = fmt.Sprintf("row%d", i)
			a := h.post("/v1/notifications", n)
			checkRow(t, a, row)
			if !strings.Contains(fmt.Sprint(a.errField("message")), fcmEmail) {
				t.Fatalf("the message does not name the service account: %s", a.Raw)
			}
		})
	}
	// /readyz shows the last token error of each, and says FCM is degraded
	// (still 200: the other credentials work).
	c := h.fcmCred(1)
	if !strings.Contains(fmt.Sprint(c["token_error"]), "invalid_grant") || c["state"] != "ok" {
		t.Fatalf("readyz %v", c)
	}
	ready := h.get("/readyz")
	if p := h.fcmReady(); ready.Status != 200 || p["status"] != "degraded" || !strings.Contains(fmt.Sprint(p["reason"]), "invalid_grant") {
		t.Fatalf("readyz %d %s", ready.Status, ready.Raw)
	}
	// The default credential refreshes and sends: one bad service account
	// costs the others nothing.
	if a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil)); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
}

// Many notifications, one token fetch; a token near its expiry is renewed
// in the background while notifications keep flowing, and they then use
// the new one; a token FCM refuses is fetched again once.
func TestFCMTokenReuseRenewalAndRefresh(t *testing.T) {
	t.Run("reuse", func(t *testing.T) {
		h := newFCMHarness(t, fcmOpts{})
		if a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil)); a.Status != 200 {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					if a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil)); a.Status != 200 {
						t.Errorf("%d %s", a.Status, a.Raw)
						return
					}
				}
			})
		}
		wg.Wait()
		if n := len(h.ffcm.TokenFetches()); n != 1 {
			t.Fatalf("%d token fetches for 200 notifications", n)
		}
		conns := h.ffcm.Conns()
		// One connection for the token endpoint (the same fake server), one
		// HTTP/2 connection for all the messages.
		if conns != 2 {
			t.Fatalf("%d connections to the fake FCM, want 2", conns)
		}
	})
	t.Run("renewal", func(t *testing.T) {
		// Tokens live 5 minutes and a second: each is renewed (5 minutes
		// before its expiry) about a second after it was fetched.
		h := newFCMHarness(t, fcmOpts{fake: fakefcm.Options{TokenLifetime: 5*time.Minute + time.Second}})
		start := time.Now()
		var slow time.Duration
		for time.Since(start) < 3*time.Second {
			t0 := time.Now()
			if a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil)); a.Status != 200 {
				t.Fatalf("%d %s", a.Status, a.Raw)
			}
			slow = max(slow, time.Since(t0))
			time.Sleep(20 * time.Millisecond)
		}
		fetches := h.ffcm.TokenFetches()
		if len(fetches) < 2 {
			t.Fatalf("%d token fetches in 3 s", len(fetches))
		}
		last := h.lastRequest().AccessToken
		if last != fetches[len(fetches)-1].AccessToken && last != fetches[len(fetches)-2].AccessToken {
			t.Fatalf("the latest notification did not use a renewed token")
		}
		if last == fetches[0].AccessToken {
			t.Fatalf("still the first token")
		}
		t.Logf("%d fetches; slowest notification %s", len(fetches), slow)
	})
	t.Run("refresh once", func(t *testing.T) {
		h := newFCMHarness(t, fcmOpts{})
		if a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil)); a.Status != 200 {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		h.ffcm.RevokeTokens()
		a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil))
		if a.Status != 200 || a.Body["attempts"] != float64(2) {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		reqs, fetches := h.ffcm.Requests(), h.ffcm.TokenFetches()
		if len(fetches) != 2 || len(reqs) != 3 || reqs[1].Status != 401 || reqs[2].AccessToken != fetches[1].AccessToken {
			t.Fatalf("%d fetches, %d requests", len(fetches), len(reqs))
		}
		// The key deleted at Google as well: the fresh token is refused,
		// and the answer says so (invalid_grant, fix_credentials).
		h.ffcm.RemoveKey(fcmKeyID(0))
		h.ffcm.RevokeTokens()
		a = h.post("/v1/notifications", fcmAlert(h.regToken(), nil))
		if a.Status != 502 || a.code() != "credentials_rejected" || a.errField("action") != "fix_credentials" ||
			a.errField("upstream").(map[string]any)["reason"] != "invalid_grant" {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	})
}

// A Kubernetes Secret swap of the service account under load: every
// notification is delivered, and within a second of each swap the new key
// gets the tokens (the old one is deleted at Google right after).
func TestFCMServiceAccountSwapUnderLoad(t *testing.T) {
	vol := newK8sVolume(t)
	saPath := filepath.Join(vol.dir, "service-account.json")
	var env *fcmEnvT
	h := newFCMHarness(t, fcmOpts{noFile: true, saPath: saPath, fake: fakefcm.Options{MaxRecords: 20000},
		extra: func(c *proxy.Config, e *fcmEnvT) { env = e }}) // the default 200 ms debounce
	write := func(i int) {
		h.ffcm.AddServiceAccount(fcmEmail, fcmKeyID(i), &fcmKey(t, i).PublicKey, fcmProject)
		vol.write(map[string][]byte{"service-account.json": env.saFile("", i, fcmEmail, fcmProject)})
	}
	write(0)
	h.waitFCM(t, "the first key", func(c map[string]any) bool { return c["state"] == "ok" && c["private_key_id"] == fcmKeyID(0) })

	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil))
				sent.Add(1)
				if a.Status != 200 {
					failed.Add(1)
					t.Errorf("failed during a swap: %d %s", a.Status, a.Raw)
				}
			}
		})
	}
	for i := 1; i <= 2; i++ {
		time.Sleep(200 * time.Millisecond)
		swapped := time.Now()
		write(i)
		// Within a second, the new key is in force and gets the tokens.
		for {
			fetches := h.ffcm.TokenFetches()
			last := fetches[len(fetches)-1]
			if c := h.fcmCred(0); c["private_key_id"] == fcmKeyID(i) && last.KeyID == fcmKeyID(i) && last.Status == 200 {
				break
			}
			if time.Since(swapped) > time.Second {
				t.Fatalf("swap %d: the new key was not in use within a second", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("swap %d in use after %s", i, time.Since(swapped).Round(time.Millisecond))
		h.ffcm.RemoveKey(fcmKeyID(i - 1)) // deleted in the console
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || sent.Load() < 50 {
		t.Fatalf("%d of %d notifications failed", failed.Load(), sent.Load())
	}
	// The last notification carried a token of the newest key.
	reqs := h.ffcm.Requests()
	lastTok := reqs[len(reqs)-1].AccessToken
	for _, f := range h.ffcm.TokenFetches() {
		if f.AccessToken == lastTok && f.KeyID != fcmKeyID(2) {
			t.Fatalf("the last notification used a token of key %s", f.KeyID)
		}
	}
	if v := metricValue(t, h.harness, `pushproxy_tokens_signed_total{kind="fcm"}`); v != 3 {
		t.Fatalf("%v token fetches for 3 keys", v)
	}
	t.Logf("%d notifications across 2 swaps", sent.Load())
}

// A corrupt or deleted file keeps the last good key (readyz degraded, still
// sending); fixed, it is ok again. A file that never loaded answers
// credentials_missing, with the file's problem in the hint.
func TestFCMBadFiles(t *testing.T) {
	t.Run("corrupt and deleted keep the last good", func(t *testing.T) {
		h := newFCMHarness(t, fcmOpts{extra: func(c *proxy.Config, _ *fcmEnvT) { c.Reload.Debounce = 20 * time.Millisecond }})
		h.waitFCM(t, "ok", func(c map[string]any) bool { return c["state"] == "ok" })
		good, err := os.ReadFile(h.saPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []struct {
			name  string
			apply func()
			err   string
		}{
			{"truncated", func() { _ = os.WriteFile(h.saPath, good[:len(good)/2], 0o600) }, "malformed"},
			{"google-services.json", func() {
				_ = os.WriteFile(h.saPath, []byte(`{"project_info":{"project_id":"x"},"client":[]}`), 0o600)
			}, "google-services.json"},
			{"deleted", func() { _ = os.Remove(h.saPath) }, "no such file"},
		} {
			bad.apply()
			h.waitFCM(t, bad.name+" degraded", func(c map[string]any) bool {
				return c["state"] == "degraded" && strings.Contains(fmt.Sprint(c["last_error"]), bad.err)
			})
			ready := h.get("/readyz")
			p := h.fcmReady()
			if ready.Status != 200 || ready.Body["status"] != "degraded" || p["status"] != "degraded" || h.fcmCred(0)["private_key_id"] != fcmKeyID(0) {
				t.Fatalf("%s: readyz %d %s", bad.name, ready.Status, ready.Raw)
			}
			if a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil)); a.Status != 200 {
				t.Fatalf("%s: %d %s", bad.name, a.Status, a.Raw)
			}
		}
		if err := os.WriteFile(h.saPath, good, 0o600); err != nil {
			t.Fatal(err)
		}
		h.waitFCM(t, "ok again", func(c map[string]any) bool { return c["state"] == "ok" && c["last_error"] == nil })
		if n := len(h.ffcm.TokenFetches()); n != 1 {
			t.Fatalf("%d token fetches: the same key back should keep its token", n)
		}
		if !strings.Contains(h.logs.String(), "FCM service account failed to load; keeping the last good key") {
			t.Fatalf("no log line for the bad file")
		}
	})
	t.Run("never loaded", func(t *testing.T) {
		h := newFCMHarness(t, fcmOpts{noFile: true, extra: func(c *proxy.Config, _ *fcmEnvT) { c.Reload.Debounce = 20 * time.Millisecond }})
		a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil))
		if a.Status != 503 || a.code() != "credentials_missing" || a.errField("platform") != "fcm" ||
			!strings.Contains(fmt.Sprint(a.errField("hint")), h.saPath) {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		ready := h.get("/readyz")
		if ready.Status != 200 || ready.Body["status"] != "degraded" || h.fcmReady()["status"] != "unavailable" || h.fcmCred(0)["state"] != "missing" {
			t.Fatalf("readyz %d %s", ready.Status, ready.Raw)
		}
		// A legacy server key: refused, with the reason.
		if err := os.WriteFile(h.saPath, []byte("AAAAxyz:APA91bHk3"), 0o600); err != nil {
			t.Fatal(err)
		}
		h.waitFCM(t, "legacy key refused", func(c map[string]any) bool { return strings.Contains(fmt.Sprint(c["last_error"]), "legacy") })
		// The file appears: sends.
		env := &fcmEnvT{t: t, fake: h.ffcm, h: h}
		env.saFile(h.saPath, 0, fcmEmail, fcmProject)
		h.waitFCM(t, "loaded", func(c map[string]any) bool { return c["state"] == "ok" })
		if a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil)); a.Status != 200 {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		h := newHarness(t, harnessOpts{})
		a := h.post("/v1/notifications", fcmAlert("dQw4w9WgXcQ:APA91bHk3_x-9QzPHk3_x-9QzPHk3_x-9QzP", nil))
		if a.Status != 503 || a.code() != "credentials_missing" || a.errField("platform") != "fcm" {
			t.Fatalf("%d %s", a.Status, a.Raw)
		}
		if p := h.get("/readyz").Body["platforms"].(map[string]any)["fcm"].(map[string]any); p["status"] != "not_configured" {
			t.Fatalf("readyz fcm %v", p)
		}
	})
	t.Run("only fcm, never loaded: not ready", func(t *testing.T) {
		h := newFCMHarness(t, fcmOpts{noFile: true, extra: func(c *proxy.Config, _ *fcmEnvT) { c.APNs = nil }})
		if ready := h.get("/readyz"); ready.Status != 503 || ready.Body["status"] != "unavailable" {
			t.Fatalf("readyz %d %s", ready.Status, ready.Raw)
		}
	})
}

// Two Firebase projects, two service accounts: to.fcm.credential picks one,
// the first is the default, an unknown name is the caller's mistake.
func TestFCMSeveralCredentials(t *testing.T) {
	h := newFCMHarness(t, fcmOpts{extra: func(c *proxy.Config, e *fcmEnvT) {
		e.fake.AddServiceAccount(fcmEmail2, fcmKeyID(1), &fcmKey(t, 1).PublicKey, fcmProject2)
		p := filepath.Join(e.dir, "other.json")
		e.saFile(p, 1, fcmEmail2, fcmProject2)
		c.FCM[0].Name = "main"
		c.FCM = append(c.FCM, proxy.FCMConfig{Name: "other", ServiceAccountFile: p, ProjectID: fcmProject2})
	}})
	to := func(cred string) map[string]any {
		n := fcmAlert(h.regToken(), nil)
		if cred != "" {
			n["to"].(map[string]any)["fcm"].(map[string]any)["credential"] = cred
		}
		return n
	}
	for _, c := range []struct{ cred, name, project, account string }{
		{"", "main", fcmProject, fcmEmail},
		{"main", "main", fcmProject, fcmEmail},
		{"other", "other", fcmProject2, fcmEmail2},
	} {
		a := h.post("/v1/notifications", to(c.cred))
		r := h.lastRequest()
		if a.Status != 200 || a.Body["credential"] != c.name || r.Project != c.project || r.Account != c.account {
			t.Fatalf("%q: %d %s → %s as %s", c.cred, a.Status, a.Raw, r.Project, r.Account)
		}
	}
	a := h.post("/v1/notifications", to("nope"))
	if a.Status != 400 || a.code() != "invalid_request" || a.errField("field") != "to.fcm.credential" ||
		!strings.Contains(fmt.Sprint(a.errField("message")), "main, other") {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if n := len(h.fcmReady()["credentials"].([]any)); n != 2 {
		t.Fatalf("%d credentials in readyz", n)
	}
	// A batch mixing both, and APNs.
	b := h.post("/v1/notifications/batch", map[string]any{"notifications": []any{to("main"), to("other"), alert(h.token())}})
	rs, _ := b.Body["results"].([]any)
	if b.Status != 200 || len(rs) != 3 {
		t.Fatalf("%d %s", b.Status, b.Raw)
	}
	for i, want := range []string{"fcm", "fcm", "apns"} {
		if r := rs[i].(map[string]any); r["platform"] != want || r["error"] != nil {
			t.Fatalf("result %d: %v", i, r)
		}
	}
}

// validate_only asks the fake FCM to check without delivering; dry_run
// sends nothing and shows the request with the tokens as fingerprints.
func TestFCMValidateOnlyAndDryRun(t *testing.T) {
	h := newFCMHarness(t, fcmOpts{})
	tok := h.regToken()
	a := h.post("/v1/notifications", fcmAlert(tok, map[string]any{"fcm": map[string]any{"validate_only": true}}))
	up, _ := a.Body["upstream"].(map[string]any)
	if a.Status != 200 || up["message_id"] != "projects/"+fcmProject+"/messages/"+fakefcm.ValidateOnlyName || !h.lastRequest().ValidateOnly {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	// validate_only of a bad message: FCM's refusal.
	a = h.post("/v1/notifications", fcmAlert(tok, map[string]any{"fcm": map[string]any{"validate_only": true,
		"android": map[string]any{"priority": "URGENT"}}}))
	if a.Status != 400 || a.code() != "invalid_request" {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}

	before := len(h.ffcm.Requests())
	a = h.post("/v1/notifications", fcmAlert(tok, map[string]any{"dry_run": true, "data": map[string]any{"k": "v"}}))
	if a.Status != 200 || a.Body["platform"] != "fcm" || a.Body["credential"] != "default" {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	if n := len(h.ffcm.Requests()) - before; n != 0 {
		t.Fatalf("dry run sent %d requests", n)
	}
	req, _ := a.Body["request"].(map[string]any)
	headers, _ := req["headers"].(map[string]any)
	payload, _ := json.Marshal(req["payload"])
	if req["method"] != "POST" || req["url"] != h.ffcm.URL()+"/v1/projects/"+fcmProject+"/messages:send" ||
		!strings.HasPrefix(fmt.Sprint(headers["Authorization"]), "Bearer <access token ") ||
		!strings.Contains(string(payload), translate.FingerprintString(tok)) || !strings.Contains(string(payload), `"k":"v"`) {
		t.Fatalf("dry run %s", a.Raw)
	}
	if strings.Contains(string(a.Raw), tok) || strings.Contains(string(a.Raw), "ya29.") {
		t.Fatalf("the dry run shows a secret: %s", a.Raw)
	}
}

// x509MarshalPKCS8 is x509.MarshalPKCS8PrivateKey through the PEM the
// service-account file carries, so the secret strings are those of the
// file.
func x509MarshalPKCS8(k *rsa.PrivateKey) ([]byte, error) {
	data, err := creds.EncodeServiceAccount(k, "x@y", "k", "p", "")
	if err != nil {
		return nil, err
	}
	var f struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	block, _ := pem.Decode([]byte(f.PrivateKey))
	if block == nil {
		return nil, fmt.Errorf("no PEM")
	}
	return block.Bytes, nil
}

// upstream.ca_file covers FCM and its token endpoint: with only the fake
// APNs's root, FCM is unreachable (and says so); with the fake FCM's root
// added to the watched file, notifications go out, without a restart.
func TestFCMCAFileReload(t *testing.T) {
	var caFile string
	var good []byte
	h := newFCMHarness(t, fcmOpts{noWait: true, extra: func(c *proxy.Config, e *fcmEnvT) {
		c.Reload.Debounce = 20 * time.Millisecond
		caFile = c.Upstream.CAFile
		var err error
		if good, err = os.ReadFile(caFile); err != nil {
			t.Fatal(err)
		}
		// The fake APNs's root only.
		if err := os.WriteFile(caFile, bytes.TrimSuffix(good, e.fake.CAPEM()), 0o600); err != nil {
			t.Fatal(err)
		}
	}})
	a := h.post("/v1/notifications", fcmAlert(h.regToken(), nil), "X-Request-Timeout", "3")
	if a.Status != 503 || a.code() != "upstream_unavailable" || a.errField("platform") != "fcm" {
		t.Fatalf("with an untrusted FCM: %d %s", a.Status, a.Raw)
	}
	if len(h.ffcm.TokenFetches()) != 0 {
		t.Fatal("a token was fetched over an untrusted connection")
	}
	if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
		t.Fatalf("APNs: %d %s", a.Status, a.Raw)
	}
	tmp := caFile + ".new"
	if err := os.WriteFile(tmp, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, caFile); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "FCM trusted", func() bool {
		return h.post("/v1/notifications", fcmAlert(h.regToken(), nil), "X-Request-Timeout", "3").Status == 200
	})
	if !strings.Contains(h.logs.String(), "upstream.ca_file reloaded") {
		t.Fatal("no log line for the CA reload")
	}
}

// FCM added, changed and removed in a watched configuration file: the
// credentials apply live, upstream.fcm_url is reported as needing a
// restart (and keeps its value), and a removed credential's token source
// stops.
func TestFCMConfigReload(t *testing.T) {
	fake, err := fakefcm.New(fakefcm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	fake.AddServiceAccount(fcmEmail, fcmKeyID(0), &fcmKey(t, 0).PublicKey, fcmProject)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	saPath := filepath.Join(dir, "sa.json")
	// The file's token_uri is the fake's (no upstream.fcm_token_url).
	data, err := creds.EncodeServiceAccount(fcmKey(t, 0), fcmEmail, fcmKeyID(0), fcmProject, fake.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(saPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var h *harness
	write := func(fcmURL, fcmSection string) {
		y := fmt.Sprintf(`listen: 127.0.0.1:0
upstream:
  apns_production_url: %s
  apns_development_url: %s
  fcm_url: %s
  ca_file: %s
reload: {poll_interval: 0s, debounce: 20ms}
apns:
  - {name: default, key_file: %s, team_id: %s, topics: [%s]}
`, h.fake.URL(), h.fake.URL(), fcmURL, h.cfg.Upstream.CAFile, h.keyPath, teamID, bundle) + fcmSection
		if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h = newHarness(t, harnessOpts{configPath: cfgPath, mutate: func(c *proxy.Config) {
		apnsCA, err := os.ReadFile(c.Upstream.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		both := filepath.Join(dir, "upstream-ca.pem")
		if err := os.WriteFile(both, append(apnsCA, fake.CAPEM()...), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Upstream.CAFile = both
		c.Upstream.FCMURL = fake.URL()
		c.Reload.Debounce = 20 * time.Millisecond
	}})
	h.addSecret(fcmSecrets(fcmKey(t, 0))...)
	t.Cleanup(func() {
		for _, f := range fake.TokenFetches() {
			h.addSecret(f.AccessToken, f.Assertion)
		}
	})
	tok := func() string {
		var b [120]byte
		_, _ = rand.Read(b[:])
		s := base64.RawURLEncoding.EncodeToString(b[:])
		h.addSecret(s)
		return s
	}
	if a := h.post("/v1/notifications", fcmAlert(tok(), nil)); a.code() != "credentials_missing" {
		t.Fatalf("before: %d %s", a.Status, a.Raw)
	}
	// Added: live.
	write(fake.URL(), "fcm:\n  - {service_account_file: "+saPath+"}\n")
	waitFor(t, "fcm configured", func() bool { return h.post("/v1/notifications", fcmAlert(tok(), nil)).Status == 200 })
	// upstream.fcm_url changed: restart required, the old one stays.
	write("https://fcm.example.com", "fcm:\n  - {service_account_file: "+saPath+"}\n")
	waitFor(t, "restart_required", func() bool {
		c, _ := h.get("/readyz").Body["config"].(map[string]any)
		return c != nil && strings.Contains(fmt.Sprint(c["restart_required"]), "upstream.fcm_url")
	})
	if a := h.post("/v1/notifications", fcmAlert(tok(), nil)); a.Status != 200 {
		t.Fatalf("after an fcm_url change: %d %s", a.Status, a.Raw)
	}
	if n := len(fake.TokenFetches()); n != 1 {
		t.Fatalf("%d token fetches: a configuration change that leaves the credential alone keeps its token", n)
	}
	// Renamed: a credential of its own (its own token source; the old
	// one's is closed).
	write(fake.URL(), "fcm:\n  - {name: android, service_account_file: "+saPath+"}\n")
	n := fcmAlert(tok(), nil)
	n["to"].(map[string]any)["fcm"].(map[string]any)["credential"] = "android"
	waitFor(t, "the renamed credential", func() bool { return h.post("/v1/notifications", n).Status == 200 })
	if n := len(fake.TokenFetches()); n != 2 {
		t.Fatalf("%d token fetches after the rename", n)
	}
	// Removed: FCM is off again.
	write(fake.URL(), "")
	waitFor(t, "fcm removed", func() bool {
		return h.post("/v1/notifications", fcmAlert(tok(), nil)).code() == "credentials_missing"
	})
	if p := h.get("/readyz").Body["platforms"].(map[string]any)["fcm"].(map[string]any); p["status"] != "not_configured" {
		t.Fatalf("readyz fcm after it was removed: %v", p)
	}
}
