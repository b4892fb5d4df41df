package fcm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/proxy/fcm"
	"github.com/pushproxy/pushproxy/translate"
)

const (
	email   = "push@proj-a.iam.gserviceaccount.com"
	keyID   = "5f2b8c0e4d1a9b7c3e6f0a2d4b8c1e9f7a3d5b0c"
	project = "proj-a"
)

var regToken = "dQw4w9WgXcQ:APA91b" + strings.Repeat("Hk3_x-9QzP", 14)

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func key(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a fake FCM, a token source for the test service account and a
// sender, all through real sockets; logs go to one buffer.
type env struct {
	fake     *fakefcm.Server
	tokens   *creds.FCMTokenSource
	sender   *fcm.Sender
	logs     *syncBuffer
	attempts atomic.Int64
	sa       []byte // the service-account file
}

func newEnv(t testing.TB, saProject string) *env {
	return newEnvOpts(t, saProject, fakefcm.Options{})
}

func newEnvOpts(t testing.TB, saProject string, opts fakefcm.Options) *env {
	t.Helper()
	f, err := fakefcm.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	f.AddServiceAccount(email, keyID, &key(t).PublicKey, project)
	e := &env{fake: f, logs: &syncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.sa, err = creds.EncodeServiceAccount(key(t), email, keyID, saProject, f.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	acct, err := creds.ParseServiceAccount(e.sa, "")
	if err != nil {
		t.Fatal(err)
	}
	e.tokens, err = creds.NewFCMTokenSource(acct, creds.FCMTokenOptions{RootCAs: f.CertPool(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.tokens.Close)
	e.sender, err = fcm.New(fcm.Options{URL: f.URL(), RootCAs: f.CertPool(), Logger: logger,
		OnAttempt: func(time.Duration, int) { e.attempts.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.sender.Close)
	return e
}

// build decodes and translates a notification to regToken (or the token
// given in fields' to).
func build(t testing.TB, fields string) *translate.FCMRequest {
	t.Helper()
	body := `{"to":{"fcm":{"token":"` + regToken + `"}},` + fields + `}`
	n, derr := translate.DecodeNotification([]byte(body))
	if derr != nil {
		t.Fatal(derr)
	}
	r, e := translate.BuildFCM(n, translate.FCMTarget{NewID: "5b9c7d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"})
	if e != nil {
		t.Fatal(e)
	}
	return r
}

func (e *env) send(ctx context.Context, r *translate.FCMRequest) (*translate.Result, *translate.Error) {
	return e.sender.Send(ctx, fcm.Delivery{Request: r, Credential: "default", Tokens: e.tokens})
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestDeliveryAndMapping(t *testing.T) {
	t.Parallel()
	e := newEnv(t, project)
	r := build(t, `"title":"Order shipped","body":"On its way","image":"https://example.com/i.png","url":"https://example.com/o/1",
		"data":{"order":"1234","n":12},"priority":"high","ttl":3600,"collapse_id":"order-1234","sound":"default","badge":3,
		"id":"A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D","fcm":{"android":{"notification":{"channel_id":"orders"}}}`)
	res, err := e.send(ctxT(t, 10*time.Second), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" || res.Platform != "fcm" || res.Credential != "default" || res.Attempts != 1 ||
		res.Upstream == nil || res.Upstream.Status != 200 || !strings.HasPrefix(res.Upstream.MessageID, "projects/proj-a/messages/0:") {
		t.Fatalf("%+v %+v", res, res.Upstream)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	q := reqs[0]
	if q.Proto != "HTTP/2.0" || q.Project != project || q.Account != email || q.Token != regToken || q.Status != 200 || q.ValidateOnly ||
		q.Header.Get("Content-Type") != "application/json; charset=UTF-8" || q.AccessToken != e.fake.TokenFetches()[0].AccessToken {
		t.Fatalf("%+v", q)
	}
	got, _ := json.Marshal(q.Message)
	want := `{"android":{"collapse_key":"order-1234","notification":{"channel_id":"orders","notification_count":3,"sound":"default"},"priority":"HIGH","ttl":"3600s"},` +
		`"data":{"n":"12","order":"1234","url":"https://example.com/o/1"},` +
		`"notification":{"body":"On its way","image":"https://example.com/i.png","title":"Order shipped"},"token":"` + regToken + `"}`
	if string(got) != want {
		t.Fatalf("FCM received\n%s\nwant\n%s", got, want)
	}
	if e.attempts.Load() != 1 {
		t.Fatalf("OnAttempt called %d times", e.attempts.Load())
	}
}

// One token fetch and one connection for many notifications.
func TestTokenAndConnectionReuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, project)
	ctx := ctxT(t, 30*time.Second)
	r := build(t, `"body":"b"`)
	if _, err := e.send(ctx, r); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if _, err := e.send(ctx, r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(e.fake.TokenFetches()); n != 1 {
		t.Fatalf("%d token fetches for 101 notifications, want 1", n)
	}
	// Two connections: the token source's to the token endpoint, and the
	// sender's one HTTP/2 connection that carried every notification.
	if c := e.fake.Conns(); c != 2 {
		t.Fatalf("%d connections, want 2", c)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 101 {
		t.Fatalf("%d requests", len(reqs))
	}
	for _, q := range reqs {
		if q.Conn != reqs[0].Conn || q.Proto != "HTTP/2.0" {
			t.Fatalf("notifications on connections %d and %d (%s)", reqs[0].Conn, q.Conn, q.Proto)
		}
	}
}

func TestErrorRows(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		script   []string // fakefcm answers queued for the token
		always   string   // standing answer
		code     translate.Code
		retry    bool
		action   translate.Action
		requests int    // sends FCM saw
		fetches  int    // token fetches
		has      string // a phrase of the message or hint
	}{
		{"unregistered", []string{fakefcm.Unregistered}, "", translate.CodeRecipientGone, false, translate.ActionRemoveRecipient, 1, 1, "no longer registered"},
		{"invalid token", []string{fakefcm.InvalidToken}, "", translate.CodeInvalidRecipient, false, translate.ActionRemoveRecipient, 1, 1, "not a valid FCM registration token"},
		{"invalid argument", []string{fakefcm.InvalidArgument}, "", translate.CodeInvalidRequest, false, translate.ActionFixRequest, 1, 1, "message.android.notification.color"},
		{"sender id mismatch", []string{fakefcm.SenderIDMismatch}, "", translate.CodeTopicMismatch, false, translate.ActionFixRequest, 1, 1, `"proj-a"`},
		{"quota exceeded then ok", []string{fakefcm.QuotaExceeded}, "", "", false, "", 2, 1, ""},
		{"unavailable throughout", nil, fakefcm.Unavailable, translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, 3, 1, "after 3 attempts"},
		{"internal then ok", []string{fakefcm.Internal}, "", "", false, "", 2, 1, ""},
		{"unspecified throughout", nil, fakefcm.UnspecifiedError, translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, 3, 1, "HTTP 500"},
		{"third party auth", []string{fakefcm.ThirdPartyAuthError}, "", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, 1, 1, "Firebase console"},
		{"access token refused twice", nil, fakefcm.Unauthenticated, translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, 2, 2, "freshly fetched"},
		{"access token refused once", []string{fakefcm.Unauthenticated}, "", "", false, "", 2, 2, ""},
		{"permission denied", []string{fakefcm.PermissionDenied}, "", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, 1, 1, "Firebase Cloud Messaging API Admin"},
		{"api disabled", []string{fakefcm.ServiceDisabled}, "", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, 1, 1, "enable the Firebase Cloud Messaging API"},
		{"unknown project", []string{fakefcm.ProjectNotFound}, "", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, 1, 1, "project_id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, project)
			for _, s := range c.script {
				e.fake.Script(regToken, fakefcm.Answer(s))
			}
			if c.always != "" {
				e.fake.ScriptAlways(regToken, fakefcm.Answer(c.always))
			}
			res, err := e.send(ctxT(t, 20*time.Second), build(t, `"body":"b"`))
			if n := len(e.fake.Requests()); n != c.requests {
				t.Errorf("FCM saw %d sends, want %d", n, c.requests)
			}
			if n := len(e.fake.TokenFetches()); n != c.fetches {
				t.Errorf("%d token fetches, want %d", n, c.fetches)
			}
			if c.code == "" {
				if err != nil || res.Attempts != c.requests {
					t.Fatalf("%v %+v", err, res)
				}
				return
			}
			if err == nil {
				t.Fatalf("delivered: %+v", res)
			}
			if err.Code != c.code || err.Retryable != c.retry || err.Action != c.action || err.Platform != "fcm" || err.Hint == "" {
				t.Fatalf("%s retryable %v action %s: %s / %s", err.Code, err.Retryable, err.Action, err.Message, err.Hint)
			}
			if !strings.Contains(err.Message+" "+err.Hint, c.has) {
				t.Fatalf("%q not in %q / %q", c.has, err.Message, err.Hint)
			}
			if strings.Contains(e.logs.String(), regToken) {
				t.Fatal("the registration token is logged")
			}
			if n := strings.Count(e.logs.String(), `"FCM notification failed`); n != 1 {
				t.Fatalf("%d failure log lines, want 1:\n%s", n, e.logs.String())
			}
		})
	}
}

// The real fake's refusals, not scripted ones: an unknown project, a
// project the account may not send for, a token of another project, and a
// service-account key the token endpoint refuses.
func TestRefusalsFromTheFake(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t, 20*time.Second)
	// The credential names a project FCM does not know.
	e := newEnv(t, "proj-nope")
	_, err := e.send(ctx, build(t, `"body":"b"`))
	if err == nil || err.Code != translate.CodeCredentialsRejected || !strings.Contains(err.Message, `"proj-nope"`) || err.Upstream.Status != 404 {
		t.Fatalf("unknown project: %+v", err)
	}
	// A project that exists, but not for this account.
	e = newEnv(t, "proj-b")
	e.fake.AddProject("proj-b")
	if _, err = e.send(ctx, build(t, `"body":"b"`)); err == nil || err.Code != translate.CodeCredentialsRejected || err.Upstream.Status != 403 {
		t.Fatalf("no permission: %+v", err)
	}
	// A token of another project.
	e = newEnv(t, project)
	e.fake.BindToken(regToken, "proj-b")
	if _, err = e.send(ctx, build(t, `"body":"b"`)); err == nil || err.Code != translate.CodeTopicMismatch || !strings.Contains(err.Hint, `"proj-a"`) {
		t.Fatalf("sender id mismatch: %+v", err)
	}
	// The key was deleted: invalid_grant, and nothing is sent.
	e = newEnv(t, project)
	e.fake.RemoveKey(keyID)
	_, err = e.send(ctx, build(t, `"body":"b"`))
	if err == nil || err.Code != translate.CodeCredentialsRejected || err.Upstream.Reason != "invalid_grant" || !strings.Contains(err.Hint, "deleted or disabled") ||
		!strings.Contains(err.Message, email) || len(e.fake.Requests()) != 0 {
		t.Fatalf("removed key: %+v", err)
	}
	// The token endpoint down: upstream_unavailable, retryable for the
	// caller; the sender does not retry a token failure (the token source
	// would answer the same error until its cooldown ends), so the
	// endpoint is asked once.
	e = newEnv(t, project)
	e.fake.ScriptToken(fakefcm.TokenResponse{Status: 503, Body: "busy"}, fakefcm.TokenResponse{Status: 503, Body: "busy"}, fakefcm.TokenResponse{Status: 503, Body: "busy"})
	_, err = e.send(ctx, build(t, `"body":"b"`))
	if err == nil || err.Code != translate.CodeUpstreamUnavailable || !err.Retryable || err.Upstream.Status != 503 || len(e.fake.TokenFetches()) != 1 || len(e.fake.Requests()) != 0 {
		t.Fatalf("token endpoint down: %+v, %d fetches", err, len(e.fake.TokenFetches()))
	}
}

// After the fake revokes every access token, the next notification is
// refused once, a fresh token is fetched, and it is delivered.
func TestRefreshOnceAfter401(t *testing.T) {
	t.Parallel()
	e := newEnv(t, project)
	ctx := ctxT(t, 20*time.Second)
	r := build(t, `"body":"b"`)
	if _, err := e.send(ctx, r); err != nil {
		t.Fatal(err)
	}
	e.fake.RevokeTokens()
	res, err := e.send(ctx, r)
	if err != nil || res.Attempts != 2 {
		t.Fatalf("%v %+v", err, res)
	}
	reqs := e.fake.Requests()
	if len(reqs) != 3 || reqs[1].Status != 401 || reqs[2].Status != 200 || reqs[1].AccessToken == reqs[2].AccessToken {
		t.Fatalf("requests %d", len(reqs))
	}
	if n := len(e.fake.TokenFetches()); n != 2 {
		t.Fatalf("%d token fetches, want 2", n)
	}
	// And the new token is the one used from then on.
	if _, err := e.send(ctx, r); err != nil || len(e.fake.TokenFetches()) != 2 {
		t.Fatalf("%v", err)
	}
}

func TestValidateOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, project)
	res, err := e.send(ctxT(t, 10*time.Second), build(t, `"body":"b","fcm":{"validate_only":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Upstream.MessageID != "projects/proj-a/messages/"+fakefcm.ValidateOnlyName {
		t.Fatalf("%+v", res.Upstream)
	}
	if reqs := e.fake.Requests(); len(reqs) != 1 || !reqs[0].ValidateOnly {
		t.Fatalf("%+v", reqs)
	}
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, project)
	r := build(t, `"title":"t","body":"b","data":{"k":"v"}`)
	res, err := e.sender.Send(ctxT(t, 10*time.Second), fcm.Delivery{Request: r, Credential: "default", Tokens: e.tokens, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.fake.Requests()) != 0 {
		t.Fatal("a dry run sent something")
	}
	p := res.Request
	if p == nil || res.Upstream != nil || res.Credential != "default" || p.Method != "POST" || p.URL != e.fake.URL()+"/v1/projects/proj-a/messages:send" || p.PayloadSize != len(r.Body) {
		t.Fatalf("%+v %+v", res, p)
	}
	access := e.fake.TokenFetches()[0].AccessToken
	shown, _ := json.Marshal(p)
	if bytes.Contains(shown, []byte(access)) || bytes.Contains(shown, []byte(regToken)) {
		t.Fatalf("a dry run shows a secret: %s", shown)
	}
	if !strings.Contains(p.Headers["Authorization"], translate.FingerprintString(access)) || !strings.Contains(string(p.Payload), translate.FingerprintString(regToken)) {
		t.Fatalf("no fingerprints: %s", shown)
	}
	if !json.Valid(p.Payload) || !strings.Contains(string(p.Payload), `"notification":{"body":"b","title":"t"}`) {
		t.Fatalf("payload %s", p.Payload)
	}
}

func TestDeadlineAndTransport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, project)
	r := build(t, `"body":"b"`)
	if _, err := e.send(ctxT(t, 10*time.Second), r); err != nil {
		t.Fatal(err)
	}
	// FCM slower than the caller's deadline.
	e.fake.Script(regToken, fakefcm.Response{Delay: 3 * time.Second})
	start := time.Now()
	_, err := e.send(ctxT(t, 300*time.Millisecond), r)
	if err == nil || err.Code != translate.CodeUpstreamTimeout || !err.MaybeDelivered || time.Since(start) > 2*time.Second {
		t.Fatalf("%+v after %v", err, time.Since(start))
	}
	// Retry-After beyond the deadline: answered at once with retry_after.
	e.fake.ScriptAlways(regToken, fakefcm.Response{Status: 429, RPCStatus: "RESOURCE_EXHAUSTED", ErrorCode: "QUOTA_EXCEEDED", Message: "quota", RetryAfter: "30"})
	start = time.Now()
	_, err = e.send(ctxT(t, 2*time.Second), r)
	if err == nil || err.Code != translate.CodeRateLimited || err.RetryAfter != 30 || time.Since(start) > time.Second {
		t.Fatalf("%+v after %v", err, time.Since(start))
	}
	e.fake.ScriptAlways(regToken, fakefcm.Response{})
	// FCM gone: connection refused is retried, then upstream_unavailable.
	_ = e.fake.Close()
	e.sender.Close()
	_, err = e.send(ctxT(t, 10*time.Second), r)
	if err == nil || err.Code != translate.CodeUpstreamUnavailable || !err.Retryable || err.MaybeDelivered || strings.Contains(err.Message, "/v1/") {
		t.Fatalf("%+v", err)
	}
}

// Nothing secret in any log line: not the registration token, the access
// token, the assertion, or the key.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, project)
	ctx := ctxT(t, 20*time.Second)
	r := build(t, `"body":"b"`)
	e.fake.Script(regToken, fakefcm.Answer(fakefcm.Internal), fakefcm.Answer(fakefcm.Unauthenticated), fakefcm.Answer(fakefcm.Unregistered))
	for range 3 {
		_, _ = e.send(ctx, r)
	}
	e.fake.ScriptToken(fakefcm.TokenResponse{Error: "invalid_grant", Description: "Invalid JWT Signature."})
	fetches := e.fake.TokenFetches()
	_, _ = e.tokens.Refresh(ctx, fetches[len(fetches)-1].AccessToken)
	out := e.logs.String()
	var keyPEM struct {
		PrivateKey string `json:"private_key"`
	}
	_ = json.Unmarshal(e.sa, &keyPEM)
	keyBody := strings.Split(keyPEM.PrivateKey, "\n")[5]
	secrets := map[string]string{"registration token": regToken, "private key": keyBody}
	for i, f := range e.fake.TokenFetches() {
		secrets["assertion "+string(rune('0'+i))] = f.Assertion
		if f.AccessToken != "" {
			secrets["access token "+string(rune('0'+i))] = f.AccessToken
		}
	}
	for name, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the %s is logged", name)
		}
	}
	if !strings.Contains(out, translate.FingerprintString(regToken)) || !strings.Contains(out, "invalid_grant") {
		t.Fatalf("log:\n%s", out)
	}
}

func TestNewRefusesBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://fcm.googleapis.com", "https://fcm.googleapis.com/v1", "fcm.googleapis.com", "https://u:p@fcm.googleapis.com"} {
		if _, err := fcm.New(fcm.Options{URL: u}); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	s, err := fcm.New(fcm.Options{})
	if err != nil || s.URL("p") != "https://fcm.googleapis.com/v1/projects/p/messages:send" {
		t.Fatalf("%v", err)
	}
	if _, e := s.Send(context.Background(), fcm.Delivery{Request: &translate.FCMRequest{}}); e == nil || e.Code != translate.CodeCredentialsMissing {
		t.Fatalf("%v", e)
	}
}
