package diagnose

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy"
)

const (
	chkKeyID  = "ABC123DEFG"
	chkTeamID = "DEF123GHIJ"
)

func chkP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// chkPKCS8 is key as Apple ships a .p8: a PEM "PRIVATE KEY" block.
func chkPKCS8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func chkWrite(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// chkSetup writes a key file and a configuration naming it; cred is the
// YAML of the apns entry's other keys (team_id, topics …).
func chkSetup(t *testing.T, keyName string, keyData []byte, cred string) (cfgPath, keyPath string) {
	t.Helper()
	dir := t.TempDir()
	keyPath = filepath.Join(dir, keyName)
	chkWrite(t, keyPath, keyData, 0o600)
	cfgPath = filepath.Join(dir, "config.yaml")
	chkWrite(t, cfgPath, []byte("apns:\n  - name: default\n    key_file: "+keyPath+"\n"+cred), 0o600)
	return cfgPath, keyPath
}

const chkGoodCred = "    team_id: " + chkTeamID + "\n    topics: [com.example.app]\n    environment: production\n"

// chkText runs the diagnosis and renders it as pushproxy check does
// without --json; code is the command's exit status (1 when an error was
// found).
func chkText(t *testing.T, cfgPath string) (int, string) {
	t.Helper()
	rep := Run(cfgPath, Env{Now: time.Now})
	var out bytes.Buffer
	rep.Print(&out)
	return exitCode(rep), out.String()
}

func exitCode(r *Report) int {
	if r.Errors > 0 {
		return 1
	}
	return 0
}

// chkJSONEnv runs the diagnosis with env, writes it as --json does and
// decodes it back, so every test reads the report as a client would.
func chkJSONEnv(t *testing.T, cfgPath string, env Env) (Report, int, string) {
	t.Helper()
	rep := Run(cfgPath, env)
	var out bytes.Buffer
	if err := rep.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("the JSON form is not JSON: %v\n%s", err, out.String())
	}
	return back, exitCode(rep), out.String()
}

// chkJSON is chkJSONEnv with the real clock.
func chkJSON(t *testing.T, cfgPath string) (Report, int) {
	t.Helper()
	rep, code, _ := chkJSONEnv(t, cfgPath, Env{Now: time.Now})
	return rep, code
}

// findings returns the findings of one check, anywhere in the report.
func (r Report) findings(check string) []Finding {
	var out []Finding
	for _, f := range r.General {
		if f.Check == check {
			out = append(out, f)
		}
	}
	for _, c := range r.Credentials {
		for _, f := range c.Findings {
			if f.Check == check {
				out = append(out, f)
			}
		}
	}
	return out
}

// expectFinding asserts a finding of this check and level whose message
// and fix contain the given fragments.
func expectFinding(t *testing.T, r Report, check, level, inMessage, inFix string) {
	t.Helper()
	for _, f := range r.findings(check) {
		if f.Level == level && strings.Contains(f.Message, inMessage) && strings.Contains(f.Fix, inFix) {
			if level != LevelOK && f.Fix == "" {
				t.Errorf("%s finding without a fix: %+v", check, f)
			}
			return
		}
	}
	t.Errorf("no %s finding for %q with message ~%q and fix ~%q; report:\n%s", level, check, inMessage, inFix, chkDump(r))
}

func chkDump(r Report) string {
	b, _ := json.MarshalIndent(r, "", "  ")
	return string(b)
}

func TestCheckAllGood(t *testing.T) {
	key := chkP256(t)
	cfg, keyPath := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, key), chkGoodCred)
	rep, code := chkJSON(t, cfg)
	if code != 0 || rep.Status != LevelOK || rep.Errors != 0 || rep.Warnings != 0 {
		t.Fatalf("exit %d, report:\n%s", code, chkDump(rep))
	}
	if len(rep.Credentials) != 1 {
		t.Fatalf("%d credentials", len(rep.Credentials))
	}
	c := rep.Credentials[0]
	if c.Platform != "apns" || c.Name != "default" || c.File != keyPath || c.KeyID != chkKeyID || c.TeamID != chkTeamID ||
		c.Fingerprint != creds.PublicFingerprint(&key.PublicKey) || c.Environment != "production" || len(c.Topics) != 1 {
		t.Errorf("credential: %+v", c)
	}
	if c.Token == nil || c.Token.Header["alg"] != "ES256" || c.Token.Header["kid"] != chkKeyID || c.Token.Claims["iss"] != chkTeamID || c.Token.Claims["iat"] == nil {
		t.Errorf("token: %+v", c.Token)
	}
	for _, check := range []string{"config", "clock", "key_file", "parse", "curve", "key_id", "team_id", "fingerprint", "topics", "environment", "token"} {
		if fs := rep.findings(check); len(fs) == 0 {
			t.Errorf("no %s finding", check)
		}
	}
	// The human form says the same.
	code, out := chkText(t, cfg)
	if code != 0 || !strings.Contains(out, "result: ok: 0 errors, 0 warnings") || !strings.Contains(out, c.Fingerprint) ||
		!strings.Contains(out, `"kid":"`+chkKeyID+`"`) || !strings.Contains(out, keyPath) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestCheckJSONShape: the --json output, as a client would read it.
func TestCheckJSONShape(t *testing.T) {
	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), "    key_id: ZZZ999ZZZZ\n"+chkGoodCred)
	_, code, out := chkJSONEnv(t, cfg, Env{Now: time.Now})
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["status"] != "error" || doc["errors"] != float64(1) || doc["config"] != cfg {
		t.Errorf("top level: %v", doc)
	}
	credsList, _ := doc["credentials"].([]any)
	if len(credsList) != 1 {
		t.Fatalf("credentials: %v", doc["credentials"])
	}
	c := credsList[0].(map[string]any)
	findings, _ := c["findings"].([]any)
	if c["platform"] != "apns" || c["name"] != "default" || len(findings) == 0 {
		t.Fatalf("credential: %v", c)
	}
	var sawError bool
	for _, f := range findings {
		m := f.(map[string]any)
		switch m["level"] {
		case "ok", "warn", "error":
		default:
			t.Errorf("level %v", m["level"])
		}
		if m["check"] == "" || m["message"] == "" {
			t.Errorf("finding %v", m)
		}
		if m["level"] == "error" {
			sawError = true
			if m["check"] != "key_id" || !strings.Contains(m["fix"].(string), chkKeyID) {
				t.Errorf("error finding %v", m)
			}
		}
	}
	if !sawError {
		t.Error("no error finding")
	}
	if _, ok := doc["general"].([]any); !ok {
		t.Errorf("general: %v", doc["general"])
	}
}

func TestCheckKeyIDMismatch(t *testing.T) {
	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), "    key_id: ZZZ999ZZZZ\n"+chkGoodCred)
	rep, code := chkJSON(t, cfg)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	expectFinding(t, rep, "key_id", LevelError, "does not match the file name", "key_id: "+chkKeyID)
	// The token shows the kid that would be sent.
	if tok := rep.Credentials[0].Token; tok == nil || tok.Header["kid"] != "ZZZ999ZZZZ" {
		t.Errorf("token %+v", tok)
	}
}

func TestCheckKeyIDFromConfig(t *testing.T) {
	cfg, _ := chkSetup(t, "apns-key.p8", chkPKCS8(t, chkP256(t)), "    key_id: "+chkKeyID+"\n"+chkGoodCred)
	rep, code := chkJSON(t, cfg)
	if code != 0 || rep.Warnings != 0 {
		t.Errorf("exit %d:\n%s", code, chkDump(rep))
	}
	expectFinding(t, rep, "key_id", LevelOK, "from the configuration", "")
	// No key ID anywhere.
	cfg, _ = chkSetup(t, "apns-key.p8", chkPKCS8(t, chkP256(t)), chkGoodCred)
	rep, code = chkJSON(t, cfg)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	expectFinding(t, rep, "key_id", LevelError, "no key ID", "set key_id")
}

func TestCheckTeamIDLowerCase(t *testing.T) {
	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), "    team_id: def123ghij\n    topics: [com.example.app]\n")
	rep, code := chkJSON(t, cfg)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	expectFinding(t, rep, "team_id", LevelError, "upper case", "team_id: "+chkTeamID)
	expectFinding(t, rep, "config", LevelError, "refused", "")
	if n := len(rep.findings("team_id")); n != 1 {
		t.Errorf("%d team_id findings: reported twice?\n%s", n, chkDump(rep))
	}
	// The rest of the credential is still checked.
	if rep.Credentials[0].Fingerprint == "" {
		t.Error("no fingerprint for a config with a bad team ID")
	}
}

func TestCheckTeamIDSpaces(t *testing.T) {
	for _, id := range []string{`" DEF123GHIJ "`, `"DEF 123GHIJ"`} {
		cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), "    team_id: "+id+"\n    topics: [com.example.app]\n")
		rep, code := chkJSON(t, cfg)
		if code != 1 {
			t.Errorf("%s: exit %d", id, code)
		}
		expectFinding(t, rep, "team_id", LevelError, "team_id", "team_id: "+chkTeamID+" ")
	}
}

// chkCert is a push certificate, as PEM and as DER: what people give
// instead of the .p8.
func chkCert(t *testing.T) (certPEM, der []byte) {
	t.Helper()
	key := chkP256(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Apple Push Services: com.example.app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), der
}

func TestCheckCertificateInsteadOfKey(t *testing.T) {
	certPEM, der := chkCert(t)

	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", certPEM, chkGoodCred)
	rep, code := chkJSON(t, cfg)
	if code != 1 {
		t.Errorf("PEM certificate: exit %d", code)
	}
	expectFinding(t, rep, "parse", LevelError, "certificate", "AuthKey_<KEYID>.p8")

	// A .p12 / DER file given instead of the key.
	cfg, _ = chkSetup(t, "apns.p12", der, "    key_id: "+chkKeyID+"\n"+chkGoodCred)
	rep, code = chkJSON(t, cfg)
	if code != 1 {
		t.Errorf(".p12: exit %d", code)
	}
	expectFinding(t, rep, "parse", LevelError, "apns.p12 is not a .p8 key", "does not use")
	// DER bytes under the right name.
	cfg, _ = chkSetup(t, "AuthKey_"+chkKeyID+".p8", der, chkGoodCred)
	rep, code = chkJSON(t, cfg)
	if code != 1 {
		t.Errorf("DER: exit %d", code)
	}
	expectFinding(t, rep, "parse", LevelError, "binary DER", "AuthKey_<KEYID>.p8")
	if rep.Credentials[0].Token != nil {
		t.Error("a token was signed without a key")
	}
}

func TestCheckRSAKey(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	for name, data := range map[string][]byte{"PKCS#8": chkPKCS8(t, key), "PKCS#1": pkcs1} {
		cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", data, chkGoodCred)
		rep, code := chkJSON(t, cfg)
		if code != 1 {
			t.Errorf("%s: exit %d", name, code)
		}
		expectFinding(t, rep, "key_type", LevelError, "RSA", "Apple Push Notifications service")
	}
}

func TestCheckP384Key(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, key), chkGoodCred)
	rep, code := chkJSON(t, cfg)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	expectFinding(t, rep, "curve", LevelError, "P-384", "AuthKey_<KEYID>.p8")
}

func TestCheckDevelopmentEnvironment(t *testing.T) {
	key := chkPKCS8(t, chkP256(t))
	// A release-looking topic that only a development credential lists: warn.
	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", key, "    team_id: "+chkTeamID+"\n    topics: [com.example.app]\n    environment: development\n")
	rep, code := chkJSON(t, cfg)
	if code != 0 || rep.Status != LevelWarn {
		t.Errorf("exit %d, status %s", code, rep.Status)
	}
	expectFinding(t, rep, "environment", LevelWarn, "com.example.app", "environment: production")

	// A development bundle ID: fine.
	cfg, _ = chkSetup(t, "AuthKey_"+chkKeyID+".p8", key, "    team_id: "+chkTeamID+"\n    topics: [com.example.app.dev]\n    environment: development\n")
	rep, _ = chkJSON(t, cfg)
	expectFinding(t, rep, "environment", LevelOK, "development builds", "")
	if rep.Warnings != 0 {
		t.Errorf("warnings:\n%s", chkDump(rep))
	}

	// A production credential lists the same topic: fine.
	cfg, keyPath := chkSetup(t, "AuthKey_"+chkKeyID+".p8", key, "    team_id: "+chkTeamID+"\n    topics: [com.example.app]\n    environment: development\n")
	extra := "  - name: prod\n    key_file: " + keyPath + "\n    team_id: " + chkTeamID + "\n    topics: [com.example.app]\n    environment: production\n"
	data, _ := os.ReadFile(cfg)
	chkWrite(t, cfg, append(data, extra...), 0o600)
	rep, code = chkJSON(t, cfg)
	if code != 0 || rep.Warnings != 0 || len(rep.Credentials) != 2 {
		t.Errorf("exit %d:\n%s", code, chkDump(rep))
	}
}

func TestCheckKeyFileMode(t *testing.T) {
	cfg, keyPath := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), chkGoodCred)
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, code := chkJSON(t, cfg)
	if code != 0 || rep.Warnings != 1 || rep.Status != LevelWarn {
		t.Errorf("exit %d:\n%s", code, chkDump(rep))
	}
	expectFinding(t, rep, "file_mode", LevelWarn, "0644", "chmod 600")
	// The human form prints the warning too.
	_, out := chkText(t, cfg)
	if !strings.Contains(out, "WARN") || !strings.Contains(out, "fix: chmod 600") {
		t.Errorf("%s", out)
	}
}

func TestCheckMissingKeyFile(t *testing.T) {
	cfg, keyPath := chkSetup(t, "AuthKey_"+chkKeyID+".p8", nil, chkGoodCred)
	os.Remove(keyPath)
	rep, code := chkJSON(t, cfg)
	if code != 1 {
		t.Errorf("exit %d", code)
	}
	expectFinding(t, rep, "key_file", LevelError, "no such file", "Secret")
}

func TestCheckKeyFilePattern(t *testing.T) {
	cfg, keyPath := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), chkGoodCred)
	data, _ := os.ReadFile(cfg)
	pattern := filepath.Join(filepath.Dir(keyPath), "AuthKey_*.p8")
	chkWrite(t, cfg, bytes.Replace(data, []byte(keyPath), []byte(pattern), 1), 0o600)
	if _, err := proxy.LoadConfig(cfg); err != nil {
		t.Skipf("this configuration does not take key_file patterns: %v", err)
	}
	rep, code := chkJSON(t, cfg)
	if code != 0 || rep.Credentials[0].KeyID != chkKeyID {
		t.Errorf("exit %d:\n%s", code, chkDump(rep))
	}
	expectFinding(t, rep, "key_file", LevelOK, "matches "+keyPath, "")
	expectFinding(t, rep, "key_id", LevelOK, "from the file name AuthKey_"+chkKeyID+".p8", "")
	chkWrite(t, filepath.Join(filepath.Dir(keyPath), "AuthKey_ZZZ999ZZZZ.p8"), chkPKCS8(t, chkP256(t)), 0o600)
	rep, code = chkJSON(t, cfg)
	if code != 1 {
		t.Errorf("two matches: exit %d", code)
	}
	expectFinding(t, rep, "key_file", LevelError, "matches 2 files", "exactly one")
}

func TestCheckClock(t *testing.T) {
	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), chkGoodCred)
	for _, tc := range []struct {
		name       string
		now, built time.Time
		want       string
	}{
		{"before this version", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, "before the date this version was written"},
		{"before the build", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), "build (commit) date"},
		{"absurd", time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, "absurd"},
	} {
		rep, code, _ := chkJSONEnv(t, cfg, Env{Now: func() time.Time { return tc.now }, Built: tc.built})
		if code != 1 {
			t.Errorf("%s: exit %d", tc.name, code)
		}
		expectFinding(t, rep, "clock", LevelError, tc.want, "NTP")
	}
	// A sane clock says honestly what it cannot see.
	rep, _ := chkJSON(t, cfg)
	expectFinding(t, rep, "clock", LevelOK, "only gross errors are detectable", "")
}

func TestCheckConfigErrors(t *testing.T) {
	dir := t.TempDir()
	// Missing file.
	rep, code := chkJSON(t, filepath.Join(dir, "nope.yaml"))
	if code != 1 {
		t.Errorf("missing config: exit %d", code)
	}
	expectFinding(t, rep, "config", LevelError, "no such file", "path")
	// A misspelt key: named with its line; the credential is still checked.
	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), chkGoodCred+"    topcis: [x]\n")
	rep, code = chkJSON(t, cfg)
	if code != 1 {
		t.Errorf("misspelt key: exit %d", code)
	}
	expectFinding(t, rep, "config", LevelError, `unknown key "topcis"`, "config.example.yaml")
	// Broken YAML.
	p := filepath.Join(dir, "broken.yaml")
	chkWrite(t, p, []byte("apns: [\n"), 0o600)
	rep, code = chkJSON(t, p)
	if code != 1 || len(rep.Credentials) != 0 {
		t.Errorf("broken YAML: exit %d:\n%s", code, chkDump(rep))
	}
	// No credential at all.
	p = filepath.Join(dir, "empty.yaml")
	chkWrite(t, p, []byte("listen: 127.0.0.1:8570\n"), 0o600)
	rep, code = chkJSON(t, p)
	if code != 1 {
		t.Errorf("no credential: exit %d", code)
	}
	expectFinding(t, rep, "credentials", LevelError, "no credential", "apns")
	// The auth token file and CA file are checked, their contents never shown.
	cfg, _ = chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), chkGoodCred)
	tokPath := filepath.Join(dir, "api.token")
	chkWrite(t, tokPath, []byte("very-secret-bearer\n"), 0o600)
	data, _ := os.ReadFile(cfg)
	chkWrite(t, cfg, append([]byte("auth_token_file: "+tokPath+"\nupstream:\n  ca_file: "+filepath.Join(dir, "none.pem")+"\n"), data...), 0o600)
	code, out := chkText(t, cfg)
	if code != 1 || strings.Contains(out, "very-secret-bearer") || !strings.Contains(out, "a token of 18 characters (not shown)") || !strings.Contains(out, "ca_file") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestCheckWebPushExtensionPoint: a Web Push section reaches the platform
// checks (VAPID checks plug in there).
func TestCheckWebPushExtensionPoint(t *testing.T) {
	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), chkGoodCred)
	data, _ := os.ReadFile(cfg)
	chkWrite(t, cfg, append(data, "webpush:\n  subject: mailto:ops@example.com\n  keys:\n    - {name: k1, file: /nonexistent/vapid.json}\n"...), 0o600)
	rep, _ := chkJSON(t, cfg)
	var saw bool
	for _, c := range rep.Credentials {
		if c.Platform == "webpush" && c.Name == "k1" && len(c.Findings) > 0 {
			saw = true
		}
	}
	if !saw {
		t.Errorf("no webpush credential report:\n%s", chkDump(rep))
	}
}

// TestCheckNoSecretsInOutput: neither form ever shows key material, the
// provider token or its signature, whatever the outcome.
func TestCheckNoSecretsInOutput(t *testing.T) {
	key := chkP256(t)
	keyPEM := chkPKCS8(t, key)
	now := time.Now()
	tok, err := creds.NewTokenSource(chkKeyID, chkTeamID, key, func() time.Time { return now }, nil).Token()
	if err != nil {
		t.Fatal(err)
	}
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	block, _ := pem.Decode(keyPEM)
	b64 := base64.StdEncoding.EncodeToString(block.Bytes)
	secrets := map[string]string{
		"the token": tok, "the signature": sig, "a JWT segment": "eyJ", "a PEM header": "PRIVATE KEY",
		"the key's DER (start)": b64[:24], "the key's DER (end)": b64[len(b64)-24:],
		"the private scalar (hex)": key.D.Text(16), "the private scalar (decimal)": key.D.String(),
		"the signature, standard base64": strings.NewReplacer("-", "+", "_", "/").Replace(sig),
	}
	for name, cred := range map[string]string{
		"good":      chkGoodCred,
		"wrong kid": "    key_id: ZZZ999ZZZZ\n" + chkGoodCred,
		"bad team":  "    team_id: def123ghij\n    topics: [com.example.app]\n",
		"dev":       "    team_id: " + chkTeamID + "\n    topics: [com.example.app]\n    environment: development\n",
	} {
		cfg, keyPath := chkSetup(t, "AuthKey_"+chkKeyID+".p8", keyPEM, cred)
		os.Chmod(keyPath, 0o644)
		for _, asJSON := range []bool{false, true} {
			rep := Run(cfg, Env{Now: func() time.Time { return now }})
			var out bytes.Buffer
			if asJSON {
				if err := rep.WriteJSON(&out); err != nil {
					t.Fatal(err)
				}
			} else {
				rep.Print(&out)
			}
			all := out.String()
			if !strings.Contains(all, "fingerprint") {
				t.Errorf("%s: no output?\n%s", name, all)
			}
			for what, s := range secrets {
				if strings.Contains(all, s) {
					t.Errorf("%s (json %v): %s appears in the output", name, asJSON, what)
				}
			}
		}
	}
}

// chkWebPush writes a good APNs setup plus a webpush section with one VAPID
// key file of the given content and subject.
func chkWebPush(t *testing.T, subject string, vapid []byte) string {
	t.Helper()
	cfg, _ := chkSetup(t, "AuthKey_"+chkKeyID+".p8", chkPKCS8(t, chkP256(t)), chkGoodCred)
	vp := filepath.Join(filepath.Dir(cfg), "vapid.json")
	chkWrite(t, vp, vapid, 0o600)
	data, _ := os.ReadFile(cfg)
	chkWrite(t, cfg, append(data, fmt.Sprintf("webpush:\n  subject: %q\n  keys:\n    - {name: k1, file: %s}\n", subject, vp)...), 0o600)
	return cfg
}

func chkVAPID(t *testing.T) (pub, priv string) {
	t.Helper()
	data, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ PublicKey, PrivateKey string }
	if err := json.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	return k.PublicKey, k.PrivateKey
}

// TestCheckVAPID: the VAPID traps, each on a real file with its fix.
func TestCheckVAPID(t *testing.T) {
	pub, priv := chkVAPID(t)
	good := fmt.Sprintf(`{"publicKey":%q,"privateKey":%q}`, pub, priv)

	rep, code := chkJSON(t, chkWebPush(t, "mailto:ops@example.com", []byte(good)))
	expectFinding(t, rep, "vapid_key", LevelOK, pub, "")
	expectFinding(t, rep, "token", LevelOK, `"aud":"https://fcm.googleapis.com"`, "")
	if code != 0 {
		t.Errorf("good VAPID key: exit %d\n%s", code, chkDump(rep))
	}

	// Swapped public and private values.
	rep, code = chkJSON(t, chkWebPush(t, "mailto:ops@example.com", []byte(fmt.Sprintf(`{"publicKey":%q,"privateKey":%q}`, priv, pub))))
	expectFinding(t, rep, "vapid_key", LevelError, "swapped", "vapid-keys")
	if code != 1 {
		t.Errorf("swapped keys: exit %d", code)
	}

	// Standard base64 with padding: accepted, warned.
	std := func(s string) string {
		b, _ := base64.RawURLEncoding.DecodeString(s)
		return base64.StdEncoding.EncodeToString(b)
	}
	rep, _ = chkJSON(t, chkWebPush(t, "mailto:ops@example.com", []byte(fmt.Sprintf(`{"publicKey":%q,"privateKey":%q}`, std(pub), std(priv)))))
	expectFinding(t, rep, "vapid_key", LevelWarn, "", "unpadded base64url")

	// Subjects Apple refuses.
	for _, subject := range []string{"mailto:mailto:ops@example.com", "mailto:ops@localhost", "https://localhost/contact"} {
		rep, code = chkJSON(t, chkWebPush(t, subject, []byte(good)))
		expectFinding(t, rep, "subject", LevelError, subject, "mailto:")
		if code != 1 {
			t.Errorf("subject %s: exit %d", subject, code)
		}
	}
}
