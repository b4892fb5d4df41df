package creds_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
)

const (
	saEmail   = "push@proj-a.iam.gserviceaccount.com"
	saKeyID   = "5f2b8c0e4d1a9b7c3e6f0a2d4b8c1e9f7a3d5b0c"
	saProject = "proj-a"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// saKey is one 2048-bit RSA key per test binary (generation is slow).
func saKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

func saJSON(t testing.TB, tokenURI string) []byte {
	t.Helper()
	b, err := creds.EncodeServiceAccount(saKey(t), saEmail, saKeyID, saProject, tokenURI)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editJSON changes fields of a service-account file (nil deletes).
func editJSON(t testing.TB, data []byte, fields map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, _ := json.Marshal(m)
	return out
}

func TestParseServiceAccount(t *testing.T) {
	t.Parallel()
	sa, err := creds.ParseServiceAccount(saJSON(t, ""), "")
	if err != nil {
		t.Fatal(err)
	}
	if sa.ProjectID != saProject || sa.ClientEmail != saEmail || sa.PrivateKeyID != saKeyID || sa.TokenURI != "https://oauth2.googleapis.com/token" ||
		!sa.Key.Equal(saKey(t)) || len(sa.Fingerprint) != 8 {
		t.Fatalf("%+v", sa)
	}
	if s := sa.String(); strings.Contains(s, "PRIVATE") || !strings.Contains(s, saEmail) || !strings.Contains(s, sa.Fingerprint) {
		t.Fatalf("String() = %q", s)
	}
	// The same project configured is fine; PKCS#1 keys are accepted.
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey(t))})
	sa2, err := creds.ParseServiceAccount(editJSON(t, saJSON(t, ""), map[string]any{"private_key": string(pkcs1)}), saProject)
	if err != nil || sa2.Fingerprint != sa.Fingerprint {
		t.Fatalf("PKCS#1: %v", err)
	}
	// No token_uri: Google's.
	sa3, err := creds.ParseServiceAccount(editJSON(t, saJSON(t, ""), map[string]any{"token_uri": nil}), "")
	if err != nil || sa3.TokenURI != creds.FCMDefaultTokenURL {
		t.Fatalf("no token_uri: %v %q", err, sa3.TokenURI)
	}
	// No project_id in the file: the configured one.
	sa4, err := creds.ParseServiceAccount(editJSON(t, saJSON(t, ""), map[string]any{"project_id": nil}), "proj-x")
	if err != nil || sa4.ProjectID != "proj-x" {
		t.Fatalf("configured project: %v", err)
	}
}

func TestParseServiceAccountTraps(t *testing.T) {
	t.Parallel()
	good := saJSON(t, "")
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
	sec1, _ := x509.MarshalECPrivateKey(ec)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER, _ := x509.MarshalPKCS8PrivateKey(small)
	googleServices := `{"project_info":{"project_number":"123","project_id":"proj-a","storage_bucket":"proj-a.appspot.com"},
		"client":[{"client_info":{"mobilesdk_app_id":"1:123:android:abc","android_client_info":{"package_name":"com.example.app"}},
		"api_key":[{"current_key":"AIzaSyXXXX"}]}],"configuration_version":"1"}`
	for _, c := range []struct {
		name    string
		data    string
		project string
		want    string // a phrase of the error
	}{
		{"empty", "", "", "empty"},
		{"google-services.json", googleServices, "", "google-services.json"},
		{"legacy server key", "AAAAbc123XyZ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx", "", "legacy FCM server key"},
		{"legacy server key in quotes", `"AAAAbc123XyZ:APA91bHun4MxP5egoKMwt2KZFBaFUH"`, "", "legacy FCM server key"},
		{"authorized_user", `{"type":"authorized_user","client_id":"x.apps.googleusercontent.com","client_secret":"s","refresh_token":"1//r"}`, "", "authorized_user"},
		{"external_account", `{"type":"external_account","audience":"//iam.googleapis.com/x"}`, "", `"external_account"`},
		{"no type", `{"client_email":"a@b","private_key":"x"}`, "", `no "type"`},
		{"bare PEM", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})), "", "bare PEM"},
		{"not JSON", "hello", "", "not JSON"},
		{"malformed JSON", `{"type":`, "", "malformed"},
		{"no private_key", string(editJSON(t, good, map[string]any{"private_key": nil})), "", "private_key is missing"},
		{"EC private_key", string(editJSON(t, good, map[string]any{"private_key": ecPEM})), "", "RSA"},
		{"SEC1 private_key", string(editJSON(t, good, map[string]any{"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))})), "", "EC key"},
		{"small RSA", string(editJSON(t, good, map[string]any{"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: smallDER}))})), "", "1024-bit"},
		{"mangled private_key", string(editJSON(t, good, map[string]any{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----"})), "", "no PEM block"},
		{"no client_email", string(editJSON(t, good, map[string]any{"client_email": nil})), "", "client_email"},
		{"no private_key_id", string(editJSON(t, good, map[string]any{"private_key_id": nil})), "", "private_key_id"},
		{"http token_uri", string(editJSON(t, good, map[string]any{"token_uri": "http://oauth2.googleapis.com/token"})), "", "not https"},
		{"token_uri not a URL", string(editJSON(t, good, map[string]any{"token_uri": "oauth2"})), "", "not a URL"},
		{"project mismatch", string(good), "proj-b", `service account belongs to project "proj-a"`},
		{"no project anywhere", string(editJSON(t, good, map[string]any{"project_id": nil})), "", "project_id is missing"},
	} {
		sa, err := creds.ParseServiceAccount([]byte(c.data), c.project)
		if err == nil || sa != nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if strings.Contains(err.Error(), "MII") {
			t.Errorf("%s: the key is in the error: %v", c.name, err)
		}
		if c.name != "project mismatch" && !errors.Is(err, creds.ErrNotServiceAccount) {
			t.Errorf("%s: not ErrNotServiceAccount: %v", c.name, err)
		}
	}
}

func TestLoadServiceAccount(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(path, saJSON(t, ""), 0o600); err != nil {
		t.Fatal(err)
	}
	sa, err := creds.LoadServiceAccount(creds.FCMSpec{Name: "default", ServiceAccountFile: path})
	if err != nil || sa.ClientEmail != saEmail {
		t.Fatalf("%v", err)
	}
	if _, err := creds.LoadServiceAccount(creds.FCMSpec{ServiceAccountFile: filepath.Join(dir, "nope.json")}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := creds.LoadServiceAccount(creds.FCMSpec{ServiceAccountFile: path, ProjectID: "other"}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("mismatch should name the file: %v", err)
	}
}

// fcmFake starts a fake FCM that knows the test service account.
func fcmFake(t *testing.T, opts fakefcm.Options) *fakefcm.Server {
	t.Helper()
	f, err := fakefcm.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	f.AddServiceAccount(saEmail, saKeyID, &saKey(t).PublicKey, saProject)
	return f
}

func newSource(t *testing.T, f *fakefcm.Server, opts creds.FCMTokenOptions) *creds.FCMTokenSource {
	t.Helper()
	opts.RootCAs = f.CertPool()
	src := parsedSource(t, saJSON(t, f.TokenURL()), opts)
	t.Cleanup(src.Close)
	return src
}

// parsedSource makes a token source the way the Store does: the file
// parsed (ParseServiceAccount, as LoadServiceAccount does), then
// NewFCMTokenSource.
func parsedSource(t *testing.T, data []byte, opts creds.FCMTokenOptions) *creds.FCMTokenSource {
	t.Helper()
	sa, err := creds.ParseServiceAccount(data, "")
	if err != nil {
		t.Fatal(err)
	}
	src, err := creds.NewFCMTokenSource(sa, opts)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestFCMTokenSourceReusesOneToken(t *testing.T) {
	t.Parallel()
	f := fcmFake(t, fakefcm.Options{})
	var fetched counter
	src := newSource(t, f, creds.FCMTokenOptions{OnFetch: func(err error) {
		if err == nil {
			fetched.Inc()
		}
	}})
	ctx := context.Background()
	if in := src.Info(); !in.TokenExpiry.IsZero() || in.Fetches != 0 || len(f.TokenFetches()) != 0 {
		t.Fatalf("fetched before use: %+v, %d token requests", in, len(f.TokenFetches()))
	}
	var wg sync.WaitGroup
	toks := make([]string, 50)
	for i := range toks {
		wg.Go(func() {
			tok, err := src.Token(ctx)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok.AccessToken
		})
	}
	wg.Wait()
	for i := range 200 {
		tok, err := src.Token(ctx)
		if err != nil || tok.AccessToken != toks[0] {
			t.Fatalf("call %d: %v, another token", i, err)
		}
	}
	for _, tok := range toks {
		if tok != toks[0] || !strings.HasPrefix(tok, "ya29.") {
			t.Fatalf("concurrent first calls got different tokens")
		}
	}
	in := src.Info()
	if n := len(f.TokenFetches()); n != 1 || in.Fetches != 1 || fetched.N() != 1 {
		t.Fatalf("token fetches: fake %d, source %d, OnFetch %d; want 1", n, in.Fetches, fetched.N())
	}
	if in.ClientEmail != saEmail || in.PrivateKeyID != saKeyID || in.ProjectID != saProject || in.TokenURL != f.TokenURL() ||
		time.Until(in.TokenExpiry) < 59*time.Minute || in.LastError != "" {
		t.Fatalf("info %+v", in)
	}
	// The assertion the fake saw: RS256, the key's kid, iss, scope, aud.
	fe := f.TokenFetches()[0]
	if fe.Header["alg"] != "RS256" || fe.KeyID != saKeyID || fe.Account != saEmail || fe.Claims["scope"] != creds.FCMScope || fe.Claims["aud"] != f.TokenURL() {
		t.Fatalf("assertion %+v %+v", fe.Header, fe.Claims)
	}
	// Nothing secret in Info.
	b, _ := json.Marshal(in)
	if bytes.Contains(b, []byte(toks[0])) || bytes.Contains(b, []byte("PRIVATE")) {
		t.Fatalf("info shows a secret: %s", b)
	}
}

// Within RefreshBefore of expiry the cached token keeps being answered at
// once while one background fetch renews it.
func TestFCMTokenSourceRenewsOffTheHotPath(t *testing.T) {
	t.Parallel()
	// Tokens live 302 s, renewed 300 s before expiry: one is "due" 2 s
	// after it is fetched.
	f := fcmFake(t, fakefcm.Options{TokenLifetime: 302 * time.Second})
	src := newSource(t, f, creds.FCMTokenOptions{})
	ctx := context.Background()
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The timer renews it after ~2 s, slowly (the fake takes 1.5 s).
	f.ScriptToken(fakefcm.TokenResponse{Delay: 1500 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for len(f.TokenFetches()) < 2 && time.Now().Before(deadline) {
		start := time.Now()
		tok, err := src.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("Token waited %v for a renewal", d)
		}
		if tok.AccessToken != first.AccessToken {
			t.Fatal("a new token before the fetch started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// While the slow fetch runs, callers still get the old token at once.
	for range 20 {
		start := time.Now()
		tok, err := src.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("Token waited %v during a renewal", d)
		}
		if tok.AccessToken != first.AccessToken && len(f.TokenFetches()) < 2 {
			t.Fatal("token changed without a fetch")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for time.Now().Before(deadline) {
		if tok, _ := src.Token(ctx); tok.AccessToken != first.AccessToken {
			if n := len(f.TokenFetches()); n < 2 {
				t.Fatalf("renewed with %d fetches", n)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the token was never renewed")
}

func TestFCMTokenSourceRefreshAfter401(t *testing.T) {
	t.Parallel()
	f := fcmFake(t, fakefcm.Options{})
	src := newSource(t, f, creds.FCMTokenOptions{})
	ctx := context.Background()
	old, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Many requests refused with the same token share one fetch.
	var wg sync.WaitGroup
	got := make([]string, 20)
	for i := range got {
		wg.Go(func() {
			tok, err := src.Refresh(ctx, old.AccessToken)
			if err != nil {
				t.Error(err)
			}
			got[i] = tok.AccessToken
		})
	}
	wg.Wait()
	for _, g := range got {
		if g == old.AccessToken || g != got[0] {
			t.Fatalf("refresh gave the refused or differing tokens")
		}
	}
	if n := len(f.TokenFetches()); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	if tok, _ := src.Token(ctx); tok.AccessToken != got[0] {
		t.Fatal("Token does not give the refreshed token")
	}
}

func TestFCMTokenSourceErrors(t *testing.T) {
	t.Parallel()
	f := fcmFake(t, fakefcm.Options{})
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	src := newSource(t, f, creds.FCMTokenOptions{Logger: logger, FailureCooldown: -1})
	ctx := context.Background()

	// invalid_grant: an FCMTokenError with the OAuth code.
	f.ScriptToken(fakefcm.TokenResponse{Error: "invalid_grant", Description: "Invalid JWT Signature."})
	_, err := src.Token(ctx)
	var te *creds.FCMTokenError
	if !errors.As(err, &te) || te.Status != 400 || te.Code != "invalid_grant" || te.Description != "Invalid JWT Signature." {
		t.Fatalf("%#v", err)
	}
	if in := src.Info(); !strings.Contains(in.LastError, "invalid_grant") || in.LastErrorAt.IsZero() {
		t.Fatalf("info %+v", in)
	}
	// A 503 with a body that is not OAuth's.
	f.ScriptToken(fakefcm.TokenResponse{Status: 503, Body: "<html>busy</html>"})
	if _, err := src.Token(ctx); !errors.As(err, &te) || te.Status != 503 || te.Code != "" {
		t.Fatalf("%#v", err)
	}
	// Then a token; the error is cleared.
	tok, err := src.Token(ctx)
	if err != nil || src.Info().LastError != "" {
		t.Fatalf("%v %+v", err, src.Info())
	}
	// The token endpoint failing while the cached token is valid costs
	// nothing.
	f.ScriptToken(fakefcm.TokenResponse{Status: 503, Body: "busy"})
	n := len(f.TokenFetches())
	for range 10 {
		if t2, err := src.Token(ctx); err != nil || t2 != tok {
			t.Fatalf("%v", err)
		}
	}
	if len(f.TokenFetches()) != n {
		t.Fatal("a valid cached token was fetched again")
	}
	// A caller's deadline bounds its wait for a slow token endpoint.
	src2 := newSource(t, f, creds.FCMTokenOptions{})
	f.Reset()
	f.ScriptToken(fakefcm.TokenResponse{Delay: 2 * time.Second})
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := src2.Token(short); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
	// An unreachable token endpoint: Status 0.
	dead := parsedSource(t, saJSON(t, "https://127.0.0.1:1/token"), creds.FCMTokenOptions{FetchTimeout: 2 * time.Second})
	defer dead.Close()
	if _, err := dead.Token(ctx); !errors.As(err, &te) || te.Status != 0 {
		t.Fatalf("%#v", err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if strings.Contains(out, tok.AccessToken) || strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, "eyJ") {
		t.Fatalf("a secret is logged:\n%s", out)
	}
	if !strings.Contains(out, saEmail) || !strings.Contains(out, "invalid_grant") {
		t.Fatalf("log:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestFCMTokenSourceClose(t *testing.T) {
	t.Parallel()
	f := fcmFake(t, fakefcm.Options{TokenLifetime: 301 * time.Second})
	src := newSource(t, f, creds.FCMTokenOptions{})
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	time.Sleep(1500 * time.Millisecond) // past when the renewal timer would fire
	if n := len(f.TokenFetches()); n != 1 {
		t.Fatalf("%d fetches after Close", n)
	}
	// The cached token is still answered until it expires; a refresh is
	// refused.
	if got, err := src.Token(context.Background()); err != nil || got != tok {
		t.Fatalf("%v", err)
	}
	if _, err := src.Refresh(context.Background(), tok.AccessToken); err == nil {
		t.Fatal("refresh after Close")
	}
}

func TestFCMTokenSourceOptions(t *testing.T) {
	t.Parallel()
	sa, err := creds.ParseServiceAccount(saJSON(t, ""), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := creds.NewFCMTokenSource(sa, creds.FCMTokenOptions{TokenURL: "http://127.0.0.1/token"}); err == nil || !strings.Contains(err.Error(), "not https") {
		t.Fatalf("http override: %v", err)
	}
	src, err := creds.NewFCMTokenSource(sa, creds.FCMTokenOptions{TokenURL: "https://127.0.0.1:9/token"})
	if err != nil || src.TokenURL() != "https://127.0.0.1:9/token" || src.Account() != sa {
		t.Fatalf("%v", err)
	}
	src.Close()
	if _, err := creds.NewFCMTokenSource(nil, creds.FCMTokenOptions{}); err == nil {
		t.Fatal("nil account")
	}
}

// After a failed token request, callers get its error at once for the
// cooldown instead of one token request each.
func TestFCMTokenSourceFailureCooldown(t *testing.T) {
	t.Parallel()
	f := fcmFake(t, fakefcm.Options{})
	src := newSource(t, f, creds.FCMTokenOptions{})
	ctx := context.Background()
	f.ScriptToken(fakefcm.TokenResponse{Error: "invalid_grant", Description: "Invalid JWT Signature."})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			var te *creds.FCMTokenError
			if _, err := src.Token(ctx); !errors.As(err, &te) || te.Code != "invalid_grant" {
				t.Errorf("%v", err)
			}
		})
	}
	wg.Wait()
	if n := len(f.TokenFetches()); n != 1 {
		t.Fatalf("%d token requests for 50 callers during the cooldown, want 1", n)
	}
	// A short cooldown ends, and the next caller asks again.
	src2 := newSource(t, f, creds.FCMTokenOptions{FailureCooldown: 200 * time.Millisecond})
	f.Reset()
	f.ScriptToken(fakefcm.TokenResponse{Status: 503, Body: "busy"})
	if _, err := src2.Token(ctx); err == nil {
		t.Fatal("no error")
	}
	if _, err := src2.Token(ctx); err == nil || len(f.TokenFetches()) != 1 {
		t.Fatalf("during the cooldown: %v, %d requests", err, len(f.TokenFetches()))
	}
	time.Sleep(250 * time.Millisecond)
	if _, err := src2.Token(ctx); err != nil || len(f.TokenFetches()) != 2 {
		t.Fatalf("after the cooldown: %v, %d requests", err, len(f.TokenFetches()))
	}
}

// TestServiceAccountNeverPrintsItsKey: fmt, log/slog (JSON) and
// encoding/json show the account, never the private key.
func TestServiceAccountNeverPrintsItsKey(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	data, err := creds.EncodeServiceAccount(key, "a@p.iam.gserviceaccount.com", "kid1", "p", "https://oauth2.googleapis.com/token")
	if err != nil {
		t.Fatal(err)
	}
	sa, err := creds.ParseServiceAccount(data, "")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "account", sa)
	j, _ := json.Marshal(sa)
	secret := key.D.Text(16)[:24]
	for name, out := range map[string]string{"fmt": fmt.Sprint(sa), "slog": buf.String(), "json": string(j)} {
		if !strings.Contains(out, "a@p.iam.gserviceaccount.com") || strings.Contains(out, "PRIVATE KEY") || strings.Contains(strings.ToLower(out), secret) || strings.Contains(out, `"D"`) {
			t.Errorf("%s shows %q", name, out)
		}
	}
}
