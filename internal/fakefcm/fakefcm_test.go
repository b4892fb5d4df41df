package fakefcm_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushproxy/pushproxy/internal/fakefcm"
)

const (
	email   = "push@proj-a.iam.gserviceaccount.com"
	keyID   = "0123456789abcdef0123456789abcdef01234567"
	project = "proj-a"
)

var token = "dQw4w9WgXcQ:APA91b" + strings.Repeat("Hk3_x-9QzP", 14)

var (
	keysOnce sync.Once
	keyA     *rsa.PrivateKey
	keyB     *rsa.PrivateKey
)

// keys are made once per test binary: RSA generation is slow.
func keys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if keyA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keyB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return keyA, keyB
}

func start(t *testing.T, opts fakefcm.Options) (*fakefcm.Server, *http.Client) {
	t.Helper()
	s, err := fakefcm.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a, _ := keys(t)
	s.AddServiceAccount(email, keyID, &a.PublicKey, project)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool()}, ForceAttemptHTTP2: true}}
	t.Cleanup(c.CloseIdleConnections)
	return s, c
}

// assertion signs claims the way a Google client library does, then lets
// mod change them.
func assertion(t *testing.T, s *fakefcm.Server, key *rsa.PrivateKey, mod func(h map[string]any, c jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": email, "scope": fakefcm.Scope, "aud": s.TokenURL(), "iat": now.Add(-10 * time.Second).Unix(), "exp": now.Add(-10 * time.Second).Add(time.Hour).Unix()}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = keyID
	if mod != nil {
		mod(tok.Header, c)
	}
	var signed string
	var err error
	if tok.Header["alg"] == "HS256" {
		tok.Method = jwt.SigningMethodHS256
		signed, err = tok.SignedString([]byte("secret"))
	} else {
		signed, err = tok.SignedString(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

type tokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	TokenType   string `json:"token_type"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func fetch(t *testing.T, c *http.Client, s *fakefcm.Server, form url.Values, contentType string) (int, tokenAnswer) {
	t.Helper()
	resp, err := c.Post(s.TokenURL(), contentType, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, a
}

func grant(a string) url.Values {
	return url.Values{"grant_type": {fakefcm.JWTBearerGrant}, "assertion": {a}}
}

const formType = "application/x-www-form-urlencoded"

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	s, c := start(t, fakefcm.Options{})
	a, b := keys(t)
	for _, tc := range []struct {
		name   string
		form   url.Values
		ctype  string
		status int
		err    string
	}{
		{"valid", grant(assertion(t, s, a, nil)), formType, 200, ""},
		{"google's audience", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) { c["aud"] = fakefcm.GoogleTokenURL })), formType, 200, ""},
		{"cloud-platform scope", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) { c["scope"] = "openid " + fakefcm.CloudPlatformScope })), formType, 200, ""},
		{"another key, same kid", grant(assertion(t, s, b, nil)), formType, 400, "invalid_grant"},
		{"unknown kid", grant(assertion(t, s, a, func(h map[string]any, _ jwt.MapClaims) { h["kid"] = "nope" })), formType, 400, "invalid_grant"},
		{"no kid", grant(assertion(t, s, a, func(h map[string]any, _ jwt.MapClaims) { delete(h, "kid") })), formType, 200, ""},
		{"no kid, another key", grant(assertion(t, s, b, func(h map[string]any, _ jwt.MapClaims) { delete(h, "kid") })), formType, 400, "invalid_grant"},
		{"no kid, unknown account", grant(assertion(t, s, a, func(h map[string]any, c jwt.MapClaims) { delete(h, "kid"); c["iss"] = "x@y" })), formType, 400, "invalid_grant"},
		{"HS256", grant(assertion(t, s, a, func(h map[string]any, _ jwt.MapClaims) { h["alg"] = "HS256" })), formType, 400, "invalid_grant"},
		{"other issuer", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) { c["iss"] = "other@x.iam.gserviceaccount.com" })), formType, 400, "invalid_grant"},
		{"other audience", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) { c["aud"] = "https://example.com/token" })), formType, 400, "invalid_grant"},
		{"no scope", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) { delete(c, "scope") })), formType, 400, "invalid_scope"},
		{"other scope", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) {
			c["scope"] = "https://www.googleapis.com/auth/devstorage.read_only"
		})), formType, 400, "invalid_scope"},
		{"iat in the future", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) {
			c["iat"] = time.Now().Add(5 * time.Minute).Unix()
			c["exp"] = time.Now().Add(30 * time.Minute).Unix()
		})), formType, 400, "invalid_grant"},
		{"expired", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		})), formType, 400, "invalid_grant"},
		{"longer than an hour", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) { c["exp"] = time.Now().Add(2 * time.Hour).Unix() })), formType, 400, "invalid_grant"},
		{"no exp", grant(assertion(t, s, a, func(_ map[string]any, c jwt.MapClaims) { delete(c, "exp") })), formType, 400, "invalid_grant"},
		{"other grant", url.Values{"grant_type": {"client_credentials"}, "assertion": {assertion(t, s, a, nil)}}, formType, 400, "unsupported_grant_type"},
		{"no assertion", url.Values{"grant_type": {fakefcm.JWTBearerGrant}}, formType, 400, "invalid_request"},
		{"json body", grant(assertion(t, s, a, nil)), "application/json", 400, "invalid_request"},
		{"garbage", grant("a.b.c"), formType, 400, "invalid_grant"},
	} {
		status, ans := fetch(t, c, s, tc.form, tc.ctype)
		if status != tc.status || ans.Error != tc.err {
			t.Errorf("%s: %d %q (%s), want %d %q", tc.name, status, ans.Error, ans.Description, tc.status, tc.err)
		}
		if status == 200 && (!strings.HasPrefix(ans.AccessToken, "ya29.") || ans.ExpiresIn != 3599 || ans.TokenType != "Bearer") {
			t.Errorf("%s: %+v", tc.name, ans)
		}
		if status != 200 && ans.Description == "" {
			t.Errorf("%s: no error_description", tc.name)
		}
	}
	f := s.TokenFetches()
	if len(f) != 21 || f[0].Status != 200 || f[0].Account != email || f[0].KeyID != keyID || f[0].AccessToken == "" || f[0].Claims["scope"] != fakefcm.Scope || f[0].Proto != "HTTP/2.0" {
		t.Fatalf("records: %d, first %+v", len(f), f[0])
	}
	// A removed key is refused; scripted answers come first.
	s.RemoveKey(keyID)
	if status, ans := fetch(t, c, s, grant(assertion(t, s, a, nil)), formType); status != 400 || ans.Error != "invalid_grant" {
		t.Fatalf("removed key: %d %+v", status, ans)
	}
	s.AddServiceAccount(email, keyID, &a.PublicKey)
	s.ScriptToken(fakefcm.TokenResponse{Status: 503, Body: "busy"}, fakefcm.TokenResponse{Error: "invalid_grant", Description: "Invalid JWT Signature."})
	if status, _ := fetchRaw(t, c, s, grant(assertion(t, s, a, nil))); status != 503 {
		t.Fatalf("scripted 503: %d", status)
	}
	if status, ans := fetch(t, c, s, grant(assertion(t, s, a, nil)), formType); status != 400 || ans.Error != "invalid_grant" {
		t.Fatalf("scripted invalid_grant: %d %+v", status, ans)
	}
	if status, _ := fetch(t, c, s, grant(assertion(t, s, a, nil)), formType); status != 200 {
		t.Fatalf("after the script: %d", status)
	}
}

func fetchRaw(t *testing.T, c *http.Client, s *fakefcm.Server, form url.Values) (int, string) {
	t.Helper()
	resp, err := c.PostForm(s.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func accessToken(t *testing.T, s *fakefcm.Server, c *http.Client) string {
	t.Helper()
	a, _ := keys(t)
	status, ans := fetch(t, c, s, grant(assertion(t, s, a, nil)), formType)
	if status != 200 {
		t.Fatalf("token: %d %+v", status, ans)
	}
	return ans.AccessToken
}

type fcmError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			Reason          string `json:"reason"`
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
	Name string `json:"name"`
}

// key is what a send was answered: the FcmError code, else the status
// (as translate.FCMErrorBody.Key).
func (e fcmError) key() string {
	for _, d := range e.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" {
			return d.ErrorCode
		}
	}
	return e.Error.Status
}

func send(t *testing.T, c *http.Client, s *fakefcm.Server, bearer, proj, body string) (int, fcmError, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/v1/projects/"+proj+"/messages:send", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e fcmError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, e, resp.Header
}

func msg(fields string) string {
	s := `{"message":{"token":"` + token + `"`
	if fields != "" {
		s += "," + fields
	}
	return s + "}}"
}

func TestSendValidation(t *testing.T) {
	t.Parallel()
	s, c := start(t, fakefcm.Options{})
	tok := accessToken(t, s, c)
	s.AddProject("proj-other")
	big := strings.Repeat("x", fakefcm.MaxMessage)
	for _, tc := range []struct {
		name   string
		bearer string
		proj   string
		body   string
		status int
		key    string // FcmError code or google.rpc status; "" on success
		field  string // the field violation, if any
	}{
		{"ok", tok, project, msg(`"notification":{"title":"t"},"data":{"k":"v"},"android":{"priority":"HIGH","ttl":"3600s","collapse_key":"c","notification":{"notification_count":3}}`), 200, "", ""},
		{"no access token", "", project, msg(""), 401, "UNAUTHENTICATED", ""},
		{"unknown access token", "ya29.nope", project, msg(""), 401, "UNAUTHENTICATED", ""},
		{"unknown project", tok, "proj-nope", msg(""), 404, "NOT_FOUND", ""},
		{"project of another account", tok, "proj-other", msg(""), 403, "PERMISSION_DENIED", ""},
		{"malformed token", tok, project, `{"message":{"token":"a b"}}`, 400, "INVALID_ARGUMENT", ""},
		{"two targets", tok, project, msg(`"topic":"news"`), 400, "INVALID_ARGUMENT", "message"},
		{"no target", tok, project, `{"message":{"data":{"k":"v"}}}`, 400, "INVALID_ARGUMENT", "message"},
		{"unknown top field", tok, project, `{"message":{"token":"` + token + `"},"dry":true}`, 400, "INVALID_ARGUMENT", "dry"},
		{"unknown message field", tok, project, msg(`"priority":"high"`), 400, "INVALID_ARGUMENT", "message"},
		{"number in data", tok, project, msg(`"data":{"k":12}`), 400, "INVALID_ARGUMENT", "message.data[0].value"},
		{"reserved data key", tok, project, msg(`"data":{"from":"x"}`), 400, "INVALID_ARGUMENT", "message.data"},
		{"reserved prefix", tok, project, msg(`"data":{"google.x":"x"}`), 400, "INVALID_ARGUMENT", "message.data"},
		{"android data number", tok, project, msg(`"android":{"data":{"a":true}}`), 400, "INVALID_ARGUMENT", "message.android.data[0].value"},
		{"priority lower case", tok, project, msg(`"android":{"priority":"high"}`), 400, "INVALID_ARGUMENT", "message.android.priority"},
		{"ttl without s", tok, project, msg(`"android":{"ttl":"3600"}`), 400, "INVALID_ARGUMENT", "message.android.ttl"},
		{"ttl over 28 days", tok, project, msg(`"android":{"ttl":"2419201s"}`), 400, "INVALID_ARGUMENT", "message.android.ttl"},
		{"fractional ttl", tok, project, msg(`"android":{"ttl":"3.5s"}`), 200, "", ""},
		{"negative count", tok, project, msg(`"android":{"notification":{"notification_count":-1}}`), 400, "INVALID_ARGUMENT", "message.android.notification.notification_count"},
		{"too big", tok, project, msg(`"data":{"x":"` + big + `"}`), 400, "INVALID_ARGUMENT", "message"},
		{"not JSON", tok, project, `{`, 400, "INVALID_ARGUMENT", ""},
	} {
		status, e, _ := send(t, c, s, tc.bearer, tc.proj, tc.body)
		if status != tc.status || (tc.key != "" && e.key() != tc.key) {
			t.Errorf("%s: %d %s (%s), want %d %s", tc.name, status, e.key(), e.Error.Message, tc.status, tc.key)
			continue
		}
		if tc.status == 200 && !strings.HasPrefix(e.Name, "projects/"+project+"/messages/0:") {
			t.Errorf("%s: name %q", tc.name, e.Name)
		}
		if tc.field != "" {
			found := false
			for _, d := range e.Error.Details {
				for _, v := range d.FieldViolations {
					found = found || v.Field == tc.field
				}
			}
			if !found {
				t.Errorf("%s: no field violation %q in %+v", tc.name, tc.field, e.Error.Details)
			}
		}
		if status != 200 && (e.Error.Code != status || e.Error.Message == "") {
			t.Errorf("%s: error body %+v", tc.name, e.Error)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 21 || reqs[0].Proto != "HTTP/2.0" || reqs[0].Project != project || reqs[0].Token != token ||
		reqs[0].Account != email || reqs[0].AccessToken != tok || reqs[0].Status != 200 || reqs[0].Message["notification"] == nil {
		t.Fatalf("records: %d, first %+v", len(reqs), reqs[0])
	}
	if reqs[1].Status != 401 || reqs[1].ErrorCode != "UNAUTHENTICATED" {
		t.Fatalf("second record %+v", reqs[1])
	}

	// validate_only; a disabled API; a token of another project; revoked
	// access tokens.
	status, e, _ := send(t, c, s, tok, project, `{"message":{"token":"`+token+`","data":{"k":"v"}},"validate_only":true}`)
	if status != 200 || e.Name != "projects/"+project+"/messages/"+fakefcm.ValidateOnlyName || !s.Requests()[21].ValidateOnly {
		t.Fatalf("validate_only: %d %q", status, e.Name)
	}
	s.DisableAPI(project, true)
	if status, e, _ := send(t, c, s, tok, project, msg("")); status != 403 || e.key() != "PERMISSION_DENIED" || e.Error.Details[0].Reason != "SERVICE_DISABLED" || !strings.Contains(e.Error.Message, project) {
		t.Fatalf("disabled: %d %+v", status, e.Error)
	}
	s.DisableAPI(project, false)
	s.BindToken(token, "proj-b")
	if status, e, _ := send(t, c, s, tok, project, msg("")); status != 403 || e.key() != "SENDER_ID_MISMATCH" {
		t.Fatalf("mismatch: %d %s", status, e.key())
	}
	s.BindToken(token, project)
	s.RevokeTokens()
	if status, e, _ := send(t, c, s, tok, project, msg("")); status != 401 || e.key() != "UNAUTHENTICATED" || len(e.Error.Details) != 0 {
		t.Fatalf("revoked: %d %+v", status, e.Error)
	}
}

func TestAccessTokensExpire(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, c := start(t, fakefcm.Options{Now: clock, TokenLifetime: 10 * time.Minute})
	a, _ := keys(t)
	status, ans := fetch(t, c, s, grant(assertion(t, s, a, nil)), formType)
	if status != 200 || ans.ExpiresIn != 600 {
		t.Fatalf("%d %+v", status, ans)
	}
	if status, _, _ := send(t, c, s, ans.AccessToken, project, msg(`"data":{"k":"v"}`)); status != 200 {
		t.Fatalf("fresh token: %d", status)
	}
	mu.Lock()
	now = now.Add(10 * time.Minute)
	mu.Unlock()
	if status, e, _ := send(t, c, s, ans.AccessToken, project, msg(`"data":{"k":"v"}`)); status != 401 || e.key() != "UNAUTHENTICATED" {
		t.Fatalf("expired token: %d %s", status, e.key())
	}
}

func TestScriptedAnswers(t *testing.T) {
	t.Parallel()
	s, c := start(t, fakefcm.Options{})
	tok := accessToken(t, s, c)
	for _, tc := range []struct {
		code   string
		status int
		key    string
	}{
		{fakefcm.Unregistered, 404, "UNREGISTERED"},
		{fakefcm.InvalidToken, 400, "INVALID_ARGUMENT"},
		{fakefcm.InvalidArgument, 400, "INVALID_ARGUMENT"},
		{fakefcm.SenderIDMismatch, 403, "SENDER_ID_MISMATCH"},
		{fakefcm.QuotaExceeded, 429, "QUOTA_EXCEEDED"},
		{fakefcm.Unavailable, 503, "UNAVAILABLE"},
		{fakefcm.Internal, 500, "INTERNAL"},
		{fakefcm.ThirdPartyAuthError, 401, "THIRD_PARTY_AUTH_ERROR"},
		{fakefcm.Unauthenticated, 401, "UNAUTHENTICATED"},
		{fakefcm.PermissionDenied, 403, "PERMISSION_DENIED"},
		{fakefcm.ServiceDisabled, 403, "PERMISSION_DENIED"},
		{fakefcm.ProjectNotFound, 404, "NOT_FOUND"},
		{fakefcm.UnspecifiedError, 500, "UNSPECIFIED_ERROR"},
	} {
		s.Script(token, fakefcm.Answer(tc.code))
		status, e, h := send(t, c, s, tok, project, msg(`"data":{"k":"v"}`))
		if status != tc.status || e.key() != tc.key || e.Error.Code != tc.status {
			t.Errorf("%s: %d %s, want %d %s", tc.code, status, e.key(), tc.status, tc.key)
		}
		if tc.code == fakefcm.QuotaExceeded && h.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", tc.code)
		}
	}
	// Queued answers in order, then the standing one, then success.
	s.Script(token, fakefcm.Answer(fakefcm.Unavailable), fakefcm.Response{Status: 502, Body: "<html>bad gateway</html>"})
	s.ScriptAlways(token, fakefcm.Answer(fakefcm.Internal))
	for i, want := range []int{503, 502, 500, 500} {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/v1/projects/"+project+"/messages:send", strings.NewReader(msg(`"data":{"k":"v"}`)))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("answer %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	s.ScriptAlways(token, fakefcm.Response{})
	if status, _, _ := send(t, c, s, tok, project, msg(`"data":{"k":"v"}`)); status != 200 {
		t.Fatalf("after the script: %d", status)
	}
	// A scripted answer comes after validation: a malformed message is
	// still refused for what it is.
	s.Script(token, fakefcm.Answer(fakefcm.Unregistered))
	if status, e, _ := send(t, c, s, tok, project, msg(`"data":{"k":1}`)); status != 400 || e.key() != "INVALID_ARGUMENT" {
		t.Fatalf("validation before script: %d %s", status, e.key())
	}
}

func TestLogsShowFingerprintsOnly(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var logs strings.Builder
	s, c := start(t, fakefcm.Options{Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs.WriteString(strings.TrimSpace(fmtS(f, a...)) + "\n")
	}})
	tok := accessToken(t, s, c)
	send(t, c, s, tok, project, msg(`"data":{"k":"v"}`))
	s.Script(token, fakefcm.Answer(fakefcm.Unregistered))
	send(t, c, s, tok, project, msg(`"data":{"k":"v"}`))
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	assertionText := s.TokenFetches()[0].Assertion
	for name, secret := range map[string]string{"registration token": token, "access token": tok, "assertion": assertionText} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s is in the log:\n%s", name, out)
		}
	}
	if !strings.Contains(out, fakefcm.Fingerprint(token)) || strings.Count(out, "\n") < 3 {
		t.Errorf("log:\n%s", out)
	}
}

func fmtS(f string, a ...any) string { return fmt.Sprintf(f, a...) }

func TestMaxRecords(t *testing.T) {
	t.Parallel()
	s, c := start(t, fakefcm.Options{MaxRecords: 3})
	tok := accessToken(t, s, c)
	for i := range 5 {
		send(t, c, s, tok, project, msg(`"data":{"i":"`+strconv.Itoa(i)+`"}`))
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[2].Message["data"].(map[string]any)["i"] != "4" || reqs[0].Message["data"].(map[string]any)["i"] != "2" {
		t.Fatalf("%d records", len(reqs))
	}
}
