package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/translate"
)

const (
	sndTeamID = "DEF123GHIJ"
	sndKeyID  = "ABC123DEFG"
	sndBundle = "com.example.app"
	sndVAPID  = "2026-11"
)

// sndEnv is a configuration file on disk pointing at a fake APNs and a
// fake push service on loopback, as an operator's would point at Apple
// and the browsers' services.
type sndEnv struct {
	t       *testing.T
	dir     string
	config  string
	apns    *fakeapns.Server
	push    *fakepush.Server
	fcm     *fakefcm.Server // with newSndEnvFCM only
	vapid   *creds.VAPIDKey
	secrets []string // must never be printed
}

func newSndEnv(t *testing.T) *sndEnv {
	t.Helper()
	return newSndEnvWith(t, false)
}

// FCM credentials of newSndEnvFCM: two service accounts of two Firebase
// projects, the first the default.
const (
	sndFCMProject     = "snd-project-1234"
	sndFCMEmail       = "pushproxy@snd-project-1234.iam.gserviceaccount.com"
	sndFCMKeyID       = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
	sndFCMBetaProject = "snd-beta-5678"
	sndFCMBetaEmail   = "pushproxy@snd-beta-5678.iam.gserviceaccount.com"
	sndFCMBetaKeyID   = "fedcba9876543210fedcba9876543210fedcba98"
)

// newSndEnvFCM is newSndEnv with a fake FCM too, and two fcm credentials
// ("default" and "beta", each a service account of its own project) whose
// files name the fake's token endpoint.
func newSndEnvFCM(t *testing.T) *sndEnv {
	t.Helper()
	return newSndEnvWith(t, true)
}

func newSndEnvWith(t *testing.T, withFCM bool) *sndEnv {
	t.Helper()
	e := &sndEnv{t: t, dir: t.TempDir()}
	var err error
	if e.apns, err = fakeapns.New(fakeapns.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.apns.Close() })
	if e.push, err = fakepush.New(fakepush.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.push.Close() })

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.apns.AddKey(sndTeamID, sndKeyID, &key.PublicKey, sndBundle)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(e.dir, "AuthKey_"+sndKeyID+".p8")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	sndWrite(t, keyPath, keyPEM)
	e.secrets = append(e.secrets, key.D.Text(16), strings.Split(string(keyPEM), "\n")[1])

	vapidJSON, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		t.Fatal(err)
	}
	if e.vapid, err = creds.ParseVAPIDKey(vapidJSON); err != nil {
		t.Fatal(err)
	}
	vapidPath := filepath.Join(e.dir, "vapid.json")
	sndWrite(t, vapidPath, vapidJSON)
	var vj struct{ PrivateKey string }
	_ = json.Unmarshal(vapidJSON, &vj)
	e.secrets = append(e.secrets, vj.PrivateKey)

	ca := append(e.apns.CAPEM(), e.push.CAPEM()...)
	fcmYAML, fcmUpstream := "", ""
	if withFCM {
		if e.fcm, err = fakefcm.New(fakefcm.Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.fcm.Close() })
		ca = append(ca, e.fcm.CAPEM()...)
		fcmYAML = "fcm:\n"
		for _, a := range []struct{ name, email, keyID, project string }{
			{"default", sndFCMEmail, sndFCMKeyID, sndFCMProject},
			{"beta", sndFCMBetaEmail, sndFCMBetaKeyID, sndFCMBetaProject},
		} {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			e.fcm.AddServiceAccount(a.email, a.keyID, &key.PublicKey, a.project)
			data, err := creds.EncodeServiceAccount(key, a.email, a.keyID, a.project, e.fcm.TokenURL())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(e.dir, a.name+"-service-account.json")
			sndWrite(t, path, data)
			der, _ := x509.MarshalPKCS8PrivateKey(key)
			b64 := base64.StdEncoding.EncodeToString(der)
			e.secrets = append(e.secrets, key.D.Text(16), b64[40:80], b64[len(b64)-40:])
			fcmYAML += fmt.Sprintf("  - {name: %s, service_account_file: %s}\n", a.name, path)
		}
		fcmUpstream = "  fcm_url: " + e.fcm.URL() + "\n"
	}
	caPath := filepath.Join(e.dir, "ca.pem")
	sndWrite(t, caPath, ca)
	e.config = filepath.Join(e.dir, "config.yaml")
	sndWrite(t, e.config, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
apns:
  - name: default
    key_file: %s
    team_id: %s
    topics: [%s]
webpush:
  subject: mailto:ops@example.com
  keys:
    - {name: %q, file: %s}
  allow_endpoints: ["127.0.0.1"]
  allow_private_networks: true
upstream:
  apns_production_url: %s
  apns_development_url: %s
  ca_file: %s
%sreload: {poll_interval: 0s}
%s`, keyPath, sndTeamID, sndBundle, sndVAPID, vapidPath, e.apns.URL(), e.apns.URL(), caPath, fcmUpstream, fcmYAML)))
	return e
}

func sndWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// token is a new random device token, a secret from now on.
func (e *sndEnv) token() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := fmt.Sprintf("%x", b)
	e.secrets = append(e.secrets, tok)
	return tok
}

// subscribe makes a browser subscription for the configured VAPID key and
// writes its toJSON() form (plus extra fields) to a file.
func (e *sndEnv) subscribe(extra map[string]any) (*fakepush.Subscription, string) {
	e.t.Helper()
	sub, err := e.push.Subscribe(fakepush.SubscribeOptions{VAPIDKey: e.vapid.PublicB64})
	if err != nil {
		e.t.Fatal(err)
	}
	e.secrets = append(e.secrets, "/push/"+sub.ID, sub.Keys.P256DH, sub.Keys.Auth)
	data, err := json.Marshal(sub) // endpoint, expirationTime, keys: as toJSON()
	if err != nil {
		e.t.Fatal(err)
	}
	if extra != nil {
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		for k, v := range extra {
			m[k] = v
		}
		data, _ = json.Marshal(m)
	}
	path := filepath.Join(e.dir, "sub-"+sub.ID+".json")
	sndWrite(e.t, path, data)
	return sub, path
}

// send runs pushproxy send with --config and checks that nothing secret
// was printed.
func (e *sndEnv) send(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"send", "--config", e.config}, args...), &out, &errb)
	all := out.String() + errb.String()
	if e.fcm != nil {
		e.fcmSecrets() // the access tokens and assertions of this run
	}
	for _, s := range e.secrets {
		if s != "" && strings.Contains(all, s) {
			e.t.Errorf("a secret (%.6s…) was printed:\n%s", s, all)
		}
	}
	for _, s := range []string{"eyJ", "PRIVATE KEY"} {
		if strings.Contains(all, s) {
			e.t.Errorf("%q was printed:\n%s", s, all)
		}
	}
	return code, out.String(), errb.String()
}

func TestSendAPNsDelivered(t *testing.T) {
	e := newSndEnv(t)
	tok := e.token()
	code, out, errs := e.send("--apns-token", tok, "--title", "Order shipped", "--body", "On its way",
		"--data", `{"order":"1234"}`, "--badge", "3", "--sound", "default", "--priority", "high", "--ttl", "600", "--collapse-id", "order-1234")
	if code != 0 || !strings.HasPrefix(out, "delivered (apns): upstream 200\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"credential   default", "environment  production", "attempts     1",
		"device token " + translate.FingerprintString(tok) + " (fingerprint)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	reqs := e.apns.Requests()
	if len(reqs) != 1 || reqs[0].Status != 200 || reqs[0].DeviceToken != tok {
		t.Fatalf("fake APNs saw %+v", reqs)
	}
	r := reqs[0]
	var p map[string]any
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	aps, _ := p["aps"].(map[string]any)
	if p["order"] != "1234" || aps == nil || aps["badge"] != 3.0 || aps["sound"] != "default" ||
		r.Header.Get("apns-priority") != "10" || r.Header.Get("apns-collapse-id") != "order-1234" || r.Header.Get("apns-expiration") == "0" {
		t.Errorf("fake APNs got %v %s", r.Header, r.Body)
	}
	if !strings.Contains(out, "id           "+r.APNsID) {
		t.Errorf("the id printed is not the apns-id sent (%s):\n%s", r.APNsID, out)
	}
}

func TestSendWebPushDelivered(t *testing.T) {
	e := newSndEnv(t)
	sub, path := e.subscribe(nil)
	code, out, errs := e.send("--subscription", path, "--title", "Hello", "--body", "From the command line", "--url", "https://shop.example/1")
	if code != 0 || !strings.HasPrefix(out, "delivered (webpush): upstream 201\n") || !strings.Contains(out, "VAPID key "+sndVAPID) {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "endpoint "+e.push.URL()+"/… (fingerprint "+translate.FingerprintString(sub.Endpoint)+")") {
		t.Errorf("recipient line:\n%s", out)
	}
	reqs := e.push.Requests()
	if len(reqs) != 1 || reqs[0].Status != 201 || reqs[0].DecryptError != "" {
		t.Fatalf("fake push service saw %+v", reqs)
	}
	var p struct {
		Notification struct{ Title, Body, Navigate string } `json:"notification"`
	}
	if err := json.Unmarshal(reqs[0].Plaintext, &p); err != nil || p.Notification.Title != "Hello" || p.Notification.Navigate != "https://shop.example/1" {
		t.Errorf("plaintext %s (%v)", reqs[0].Plaintext, err)
	}

	// vapid_key in the file, and --vapid-key overriding it.
	_, named := e.subscribe(map[string]any{"vapid_key": "1999-01"})
	if code, out, _ := e.send("--subscription", named, "--title", "x"); code != 1 || !strings.Contains(out, "failed: invalid_request") || !strings.Contains(out, "to.webpush.vapid_key") {
		t.Errorf("an unknown vapid_key in the file: exit %d\n%s", code, out)
	}
	if code, out, _ := e.send("--subscription", named, "--vapid-key", sndVAPID, "--title", "x"); code != 0 {
		t.Errorf("--vapid-key: exit %d\n%s", code, out)
	}
}

func TestSendDryRunAPNs(t *testing.T) {
	e := newSndEnv(t)
	tok := e.token()
	code, out, errs := e.send("--apns-token", tok, "--title", "Hi", "--dry-run")
	if code != 0 || !strings.HasPrefix(out, "dry run: built and signed, nothing sent (apns)\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"POST " + e.apns.URL() + "/3/device/<device token " + translate.FingerprintString(tok) + ">\n",
		"apns-push-type: alert\n", "apns-topic: " + sndBundle + "\n", "apns-priority: 10\n",
		"authorization: bearer <provider token: see token_header and token_claims>\n",
		"provider token (ES256), decoded; the signed token is never shown:",
		`"kid":"` + sndKeyID + `"`, `"iss":"` + sndTeamID + `"`, `"iat":`, "issued  ",
		"payload: ", `{"aps":{"alert":{"title":"Hi"}}}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if n := len(e.apns.Requests()); n != 0 {
		t.Errorf("the dry run sent %d requests", n)
	}

	// --json: the API's answer, the device token in the URL as a fingerprint.
	code, out, _ = e.send("--apns-token", tok, "--title", "Hi", "--dry-run", "--json")
	var res translate.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("exit %d %v: %s", code, err, out)
	}
	if res.Request == nil || res.Request.TokenClaims["iss"] != sndTeamID || res.Request.TokenHeader["kid"] != sndKeyID ||
		!strings.HasSuffix(res.Request.URL, "/3/device/<device token "+translate.FingerprintString(tok)+">") || res.Platform != "apns" {
		t.Errorf("dry run JSON %s", out)
	}
	if n := len(e.apns.Requests()); n != 0 {
		t.Errorf("the dry run sent %d requests", n)
	}
}

func TestSendDryRunWebPush(t *testing.T) {
	e := newSndEnv(t)
	_, path := e.subscribe(nil)
	code, out, errs := e.send("--subscription", path, "--title", "Hi", "--body", "There", "--ttl", "60", "--dry-run")
	if code != 0 || !strings.HasPrefix(out, "dry run: built and signed, nothing sent (webpush)\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"POST " + e.push.URL() + "/…\n", "Content-Encoding: aes128gcm\n", "TTL: 60\n",
		"Authorization: vapid t=<JWT of key " + sndVAPID + ": see token_header and token_claims>, k=" + e.vapid.PublicB64,
		"VAPID JWT (ES256), decoded; the signed token is never shown:",
		`"aud":"` + e.push.URL() + `"`, `"sub":"mailto:ops@example.com"`, "expires ",
		"bytes, encrypted (aes128gcm); the plaintext:", `"title":"Hi"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if n := len(e.push.Requests()); n != 0 {
		t.Errorf("the dry run sent %d requests", n)
	}
}

func TestSendError(t *testing.T) {
	e := newSndEnv(t)
	tok := e.token()
	e.apns.ScriptAlways(tok, &fakeapns.Response{Status: 410, Reason: "Unregistered", Timestamp: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).UnixMilli()})
	code, out, errs := e.send("--apns-token", tok, "--title", "Hi")
	if code != 1 || !strings.HasPrefix(out, "failed: recipient_gone (the API would answer HTTP 410)\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"message    the device token is no longer registered", "hint       delete this token",
		"action     remove_recipient (not retryable)", "platform   apns", "upstream   410 Unregistered, since 2026-11-20T10:00:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// --json: exactly {"error": …}.
	code, out, _ = e.send("--apns-token", tok, "--title", "Hi", "--json")
	var body struct {
		Error *translate.Error `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || code != 1 || body.Error == nil || body.Error.Code != translate.CodeRecipientGone ||
		body.Error.Upstream == nil || body.Error.Upstream.Reason != "Unregistered" || body.Error.Action != translate.ActionRemoveRecipient {
		t.Errorf("exit %d %v: %s", code, err, out)
	}
	// An error pushproxy finds itself: a malformed token (never printed).
	code, out, _ = e.send("--apns-token", "abc123", "--title", "Hi")
	if code != 1 || !strings.Contains(out, "failed: invalid_recipient") || !strings.Contains(out, "field      to.apns.token") || strings.Contains(out, "abc123") {
		t.Errorf("bad token: exit %d\n%s", code, out)
	}
	// Too large, checked before sending.
	before := len(e.apns.Requests())
	code, out, _ = e.send("--apns-token", e.token(), "--body", strings.Repeat("x", 5000))
	if code != 1 || !strings.Contains(out, "failed: payload_too_large (the API would answer HTTP 413)") || len(e.apns.Requests()) != before {
		t.Errorf("too large: exit %d\n%s", code, out)
	}
}

func TestSendTimeout(t *testing.T) {
	e := newSndEnv(t)
	tok := e.token()
	e.apns.Script(tok, fakeapns.Response{Delay: 5 * time.Second})
	start := time.Now()
	code, out, _ := e.send("--apns-token", tok, "--title", "Hi", "--timeout", "300ms")
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("took %v with --timeout 300ms", el)
	}
	if code != 1 || !strings.Contains(out, "failed: upstream_timeout") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

func TestSendJSONResult(t *testing.T) {
	e := newSndEnv(t)
	id := "0b7e7f3c-54d5-4a8e-9f3a-1c2d3e4f5a6b"
	code, out, errs := e.send("--apns-token", e.token(), "--data", `{"k":"v"}`, "--id", id, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	var res translate.Result
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil || res.ID != id || res.Platform != "apns" || res.Upstream == nil || res.Upstream.Status != 200 ||
		res.Credential != "default" || res.Attempts != 1 || res.Request != nil {
		t.Errorf("%v: %s", err, out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want one compact JSON line, as the API answers: %q", out)
	}
	if r := e.apns.Requests(); len(r) != 1 || r[0].Header.Get("apns-push-type") != "background" || r[0].Header.Get("apns-id") != id {
		t.Errorf("fake APNs saw %+v", r)
	}
}

func TestSendUsage(t *testing.T) {
	e := newSndEnv(t)
	_, subPath := e.subscribe(nil)
	bad := filepath.Join(e.dir, "bad.json")
	sndWrite(t, bad, []byte(`{"endpoint": "https://127.0.0.1/push/x", "keys": {"p256dh": "a", "auth": "b"}, "extra": 1}`))
	notJSON := filepath.Join(e.dir, "not.json")
	sndWrite(t, notJSON, []byte(`endpoint=https://127.0.0.1/push/secret`))
	tok := e.token()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "a recipient is required"},
		{[]string{"--title", "x"}, "a recipient is required"},
		{[]string{"--apns-token", tok, "--subscription", subPath}, "give one recipient, not --apns-token and --subscription"},
		{[]string{"--apns-token", tok, "--fcm-token", sndFCMToken(1)}, "give one recipient, not --apns-token and --fcm-token"},
		{[]string{"--fcm-token", sndFCMToken(1), "--topic", "com.x"}, "--topic is for APNs (--apns-token), not --fcm-token"},
		{[]string{"--fcm-token", sndFCMToken(1), "--vapid-key", "k"}, "--vapid-key is for Web Push"},
		{[]string{"--apns-token", tok, "--fcm-credential", "beta"}, "--fcm-credential is for FCM (--fcm-token), not --apns-token"},
		{[]string{"--subscription", subPath, "--fcm-credential", "beta"}, "--fcm-credential is for FCM"},
		{[]string{"--subscription", subPath, "--topic", "com.x"}, "--topic is for APNs"},
		{[]string{"--subscription", subPath, "--environment", "production"}, "--environment is for APNs"},
		{[]string{"--apns-token", tok, "--vapid-key", "k"}, "--vapid-key is for Web Push"},
		{[]string{"--apns-token", tok, "--data", "[1]"}, "--data must be a JSON object"},
		{[]string{"--apns-token", tok, "--data", "{"}, "--data must be a JSON object"},
		{[]string{"--apns-token", tok, "extra"}, "unexpected argument"},
		{[]string{"--apns-token", tok, "--nope"}, "flag provided but not defined"},
		{[]string{"--apns-token", tok, "--ttl", "soon"}, "invalid value"},
		{[]string{"--apns-token", tok, "--timeout", "-1s"}, "--timeout must be positive"},
		{[]string{"--subscription", filepath.Join(e.dir, "missing.json")}, "--subscription"},
		{[]string{"--subscription", bad}, "extra"},
		{[]string{"--subscription", notJSON}, "malformed JSON"},
	} {
		code, out, errs := e.send(c.args...)
		if code != 2 || !strings.Contains(errs, c.want) || out != "" {
			t.Errorf("%q: exit %d, stderr %q (want %q), stdout %q", c.args, code, errs, c.want, out)
		}
	}
	if strings.Contains(fmt.Sprint(e.apns.Requests(), e.push.Requests()), "Status") {
		t.Error("a usage error sent something")
	}
	// Without --config.
	var out, errb bytes.Buffer
	if code := run([]string{"send", "--apns-token", tok}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--config FILE is required") {
		t.Errorf("no --config: %d %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"send", "-h"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--subscription FILE") {
		t.Errorf("-h: %d %s", code, out.String())
	}
	// An unusable configuration is not a usage error.
	errb.Reset()
	if code := run([]string{"send", "--config", filepath.Join(e.dir, "nope.yaml"), "--apns-token", tok}, &out, &errb); code != 1 {
		t.Errorf("missing config: %d %s", code, errb.String())
	}
}

// sndFCMToken is a made-up FCM registration token in the shape of real
// ones (about 160 characters of [A-Za-z0-9_:-]), different for each i.
func sndFCMToken(i int) string {
	var b [96]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("snd%d-instance:APA91b%s", i, base64.RawURLEncoding.EncodeToString(b[:]))
}

// fcmToken is a new registration token, a secret from now on.
func (e *sndEnv) fcmToken() string {
	tok := sndFCMToken(len(e.secrets))
	e.secrets = append(e.secrets, tok)
	return tok
}

// fcmSecrets adds the access tokens and assertions the fake FCM issued and
// received so far to the secrets that must never be printed (send does).
func (e *sndEnv) fcmSecrets() {
	for _, f := range e.fcm.TokenFetches() {
		e.secrets = append(e.secrets, f.AccessToken, f.Assertion)
	}
}

func TestSendFCMDelivered(t *testing.T) {
	e := newSndEnvFCM(t)
	tok := e.fcmToken()
	code, out, errs := e.send("--fcm-token", tok, "--title", "Order shipped", "--body", "On its way",
		"--data", `{"order":"1234"}`, "--badge", "3", "--sound", "default", "--priority", "high", "--ttl", "600", "--collapse-id", "order-1234")
	if code != 0 || !strings.HasPrefix(out, "delivered (fcm): upstream 200\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	reqs := e.fcm.Requests()
	if len(reqs) != 1 || reqs[0].Status != 200 || reqs[0].Token != tok || reqs[0].Project != sndFCMProject || reqs[0].Account != sndFCMEmail {
		t.Fatalf("fake FCM saw %+v", reqs)
	}
	for _, want := range []string{"credential   default", "attempts     1", "message-id   " + reqs[0].Name,
		"registration token " + translate.FingerprintString(tok) + " (fingerprint)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	m := reqs[0].Message
	note, _ := m["notification"].(map[string]any)
	data, _ := m["data"].(map[string]any)
	android, _ := m["android"].(map[string]any)
	anote, _ := android["notification"].(map[string]any)
	if note["title"] != "Order shipped" || note["body"] != "On its way" || data["order"] != "1234" || android["priority"] != "HIGH" ||
		android["ttl"] != "600s" || android["collapse_key"] != "order-1234" || anote["sound"] != "default" || fmt.Sprint(anote["notification_count"]) != "3" {
		t.Errorf("fake FCM got %s (%v)", reqs[0].Body, m)
	}
	// One access token per service account (the server warms both).
	n := 0
	for _, f := range e.fcm.TokenFetches() {
		if f.Account == sndFCMEmail {
			n++
			if f.KeyID != sndFCMKeyID || f.Status != 200 {
				t.Errorf("token fetch %s %d", f.KeyID, f.Status)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d token fetches for %s, want 1", n, sndFCMEmail)
	}

	// --fcm-credential: the other service account, for its own project.
	code, out, errs = e.send("--fcm-token", tok, "--fcm-credential", "beta", "--title", "Hi", "--json")
	var res translate.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Platform != "fcm" || res.Credential != "beta" ||
		res.Upstream == nil || !strings.HasPrefix(res.Upstream.MessageID, "projects/"+sndFCMBetaProject+"/messages/") {
		t.Fatalf("exit %d %v\n%s%s", code, err, out, errs)
	}
	if r := e.fcm.Requests(); len(r) != 2 || r[1].Project != sndFCMBetaProject || r[1].Account != sndFCMBetaEmail {
		t.Errorf("fake FCM saw %+v", r)
	}
	// An unknown credential name: the API's answer, naming the field.
	code, out, _ = e.send("--fcm-token", tok, "--fcm-credential", "gamma", "--title", "Hi")
	if code != 1 || !strings.Contains(out, "failed: invalid_request") || !strings.Contains(out, "field      to.fcm.credential") {
		t.Errorf("unknown credential: exit %d\n%s", code, out)
	}
}

func TestSendFCMError(t *testing.T) {
	e := newSndEnvFCM(t)
	tok := e.fcmToken()
	e.fcm.ScriptAlways(tok, fakefcm.Answer(fakefcm.Unregistered))
	code, out, errs := e.send("--fcm-token", tok, "--title", "Hi")
	if code != 1 || !strings.HasPrefix(out, "failed: recipient_gone (the API would answer HTTP 410)\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"action     remove_recipient (not retryable)", "platform   fcm", "upstream   404"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A malformed token, refused before sending (and never printed).
	before := len(e.fcm.Requests())
	code, out, _ = e.send("--fcm-token", "not a token", "--title", "Hi")
	if code != 1 || !strings.Contains(out, "failed: invalid_recipient") || !strings.Contains(out, "field      to.fcm.token") ||
		strings.Contains(out, "not a token") || len(e.fcm.Requests()) != before {
		t.Errorf("bad token: exit %d\n%s", code, out)
	}
	// A reserved data key, refused before sending.
	code, out, _ = e.send("--fcm-token", tok, "--data", `{"google.x":"1"}`)
	if code != 1 || !strings.Contains(out, "failed: invalid_request") || len(e.fcm.Requests()) != before {
		t.Errorf("reserved key: exit %d\n%s", code, out)
	}
}

func TestSendDryRunFCM(t *testing.T) {
	e := newSndEnvFCM(t)
	tok := e.fcmToken()
	code, out, errs := e.send("--fcm-token", tok, "--title", "Hi", "--body", "There", "--dry-run")
	if code != 0 || !strings.HasPrefix(out, "dry run: built and signed, nothing sent (fcm)\n") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"POST " + e.fcm.URL() + "/v1/projects/" + sndFCMProject + "/messages:send\n",
		"Authorization: Bearer <access token ", " of " + sndFCMEmail + ", expires ",
		`"token":"<registration token ` + translate.FingerprintString(tok) + `>"`, `"title":"Hi"`, "body: ", "bytes; the registration token is shown as its fingerprint:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if n := len(e.fcm.Requests()); n != 0 {
		t.Errorf("the dry run sent %d messages", n)
	}
}
