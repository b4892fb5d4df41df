package fcm_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
)

// Interop with npm packages we did not write (interop/fcm.mjs): jose
// verifies the OAuth assertion pushproxy sends (through golang.org/x/oauth2),
// and gtoken, Google's own JWT-bearer client, gets a token from the fake's
// token endpoint, so the fake is checked too. CI installs them with
// `npm ci --prefix interop`; without node_modules the tests skip.

var interopDir = filepath.Join("..", "..", "interop")

func nodeFCM(t *testing.T, cmd string, in, out any) error {
	t.Helper()
	for _, pkg := range []string{"jose", "gtoken"} {
		if _, err := os.Stat(filepath.Join(interopDir, "node_modules", pkg)); err != nil {
			t.Skipf("interop/node_modules/%s is absent: run `npm ci --prefix interop` to check pushproxy's FCM assertion with jose and the fake with gtoken", pkg)
		}
	}
	bin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the interop checks need Node.js and `npm ci --prefix interop`")
	}
	data, _ := json.Marshal(in)
	c := exec.Command(bin, "fcm.mjs", cmd)
	c.Dir = interopDir
	c.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	runErr := c.Run()
	var failed struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(stdout.Bytes(), &failed) == nil && failed.Error != "" {
		return fmt.Errorf("node fcm.mjs %s: %s", cmd, failed.Error)
	}
	if runErr != nil {
		return fmt.Errorf("node fcm.mjs %s: %v: %s", cmd, runErr, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("node fcm.mjs %s printed %q: %v", cmd, stdout.String(), err)
	}
	return nil
}

func spkiPEM(t *testing.T, pub *rsa.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestInteropJoseVerifiesOurAssertion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, project)
	if _, err := e.send(ctxT(t, 10*time.Second), build(t, `"body":"b"`)); err != nil {
		t.Fatal(err)
	}
	assertion := e.fake.TokenFetches()[0].Assertion
	in := map[string]string{"assertion": assertion, "publicKey": spkiPEM(t, &key(t).PublicKey), "issuer": email, "audience": e.fake.TokenURL()}
	var out struct {
		Header map[string]any `json:"header"`
		Claims map[string]any `json:"claims"`
	}
	if err := nodeFCM(t, "verify", in, &out); err != nil {
		t.Fatal(err)
	}
	if out.Header["alg"] != "RS256" || out.Header["kid"] != keyID || out.Claims["scope"] != creds.FCMScope {
		t.Fatalf("header %v claims %v", out.Header, out.Claims)
	}
	iat, _ := out.Claims["iat"].(float64)
	exp, _ := out.Claims["exp"].(float64)
	if exp-iat != 3600 || time.Since(time.Unix(int64(iat), 0)).Abs() > time.Minute {
		t.Fatalf("iat %v exp %v", iat, exp)
	}
	// jose refuses it for another audience or another key: the check has
	// teeth.
	in["audience"] = "https://oauth2.googleapis.com/token"
	if err := nodeFCM(t, "verify", in, &out); err == nil || !strings.Contains(err.Error(), "aud") {
		t.Fatalf("another audience: %v", err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	in["audience"], in["publicKey"] = e.fake.TokenURL(), spkiPEM(t, &other.PublicKey)
	if err := nodeFCM(t, "verify", in, &out); err == nil {
		t.Fatal("verified with another key")
	}
}

func TestInteropGtokenAgainstTheFake(t *testing.T) {
	t.Parallel()
	e := newEnv(t, project)
	var sa struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(e.sa, &sa); err != nil {
		t.Fatal(err)
	}
	in := map[string]string{"tokenURL": e.fake.TokenURL(), "ca": string(e.fake.CAPEM()), "key": sa.PrivateKey, "email": email, "scope": creds.FCMScope}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := nodeFCM(t, "gtoken", in, &out); err != nil {
		t.Fatal(err)
	}
	f := e.fake.TokenFetches()
	// gtoken names no kid and Google's audience: the fake finds the key by
	// iss, as Google does.
	if len(f) != 1 || f[0].Status != 200 || f[0].Account != email || f[0].KeyID != "" || f[0].Claims["aud"] != fakefcm.GoogleTokenURL || out.AccessToken != f[0].AccessToken ||
		out.ExpiresIn != 3599 || out.TokenType != "Bearer" {
		t.Fatalf("fetch %+v, gtoken got %+v", f, out)
	}
	// The token gtoken got sends a message.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.fake.CertPool()}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, e.sender.URL(project), strings.NewReader(`{"message":{"token":"`+regToken+`","data":{"k":"v"}}}`))
	req.Header.Set("Authorization", "Bearer "+out.AccessToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("send with gtoken's token: %d", resp.StatusCode)
	}
	// The fake refuses gtoken's assertion for a removed key, in the words
	// gtoken passes on.
	e.fake.RemoveKey(keyID)
	if err := nodeFCM(t, "gtoken", in, &out); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("removed key: %v", err)
	}
}
