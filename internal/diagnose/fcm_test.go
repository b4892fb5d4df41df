package diagnose

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
)

const (
	chkFCMProject = "demo-project-1234"
	chkFCMEmail   = "pushproxy@demo-project-1234.iam.gserviceaccount.com"
	chkFCMKeyID   = "4f2b9c0e1d7a6b5c3e8f9a0b1c2d3e4f5a6b7c8d"
	// chkFCMTokenURL refuses connections at once: the server the agreement
	// test starts never reaches Google.
	chkFCMTokenURL = "https://127.0.0.1:1/token"
)

// chkRSA is the service accounts' key, made once (RSA keys take a while).
var chkRSA = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// chkServiceAccount is a service-account file as the console writes it;
// edit changes its fields (a nil value removes one).
func chkServiceAccount(t *testing.T, tokenURI string, edit map[string]any) []byte {
	t.Helper()
	data, err := creds.EncodeServiceAccount(chkRSA(), chkFCMEmail, chkFCMKeyID, chkFCMProject, tokenURI)
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return data
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range edit {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, _ := json.MarshalIndent(m, "", "  ")
	return out
}

// chkFCM writes a service-account file and a configuration with one fcm
// entry naming it (project_id if not empty, more YAML after it).
func chkFCM(t *testing.T, sa []byte, projectID, more string) (cfgPath, saPath string) {
	t.Helper()
	dir := t.TempDir()
	saPath = filepath.Join(dir, "service-account.json")
	if sa != nil {
		chkWrite(t, saPath, sa, 0o600)
	}
	y := "fcm:\n  - name: android\n    service_account_file: " + saPath + "\n"
	if projectID != "" {
		y += "    project_id: " + projectID + "\n"
	}
	cfgPath = filepath.Join(dir, "config.yaml")
	chkWrite(t, cfgPath, []byte(y+more), 0o600)
	return cfgPath, saPath
}

// The files people give instead of a service-account key.
const (
	chkGoogleServices = `{
  "project_info": {"project_number": "123456789012", "project_id": "demo-project-1234", "storage_bucket": "demo-project-1234.appspot.com"},
  "client": [{"client_info": {"mobilesdk_app_id": "1:123456789012:android:0123456789abcdef", "android_client_info": {"package_name": "com.example.app"}},
    "oauth_client": [], "api_key": [{"current_key": "AIzaSyD3m0D3m0D3m0D3m0D3m0D3m0D3m0D3m0"}]}],
  "configuration_version": "1"
}
`
	chkLegacyKey      = "AAAAd3m0d3m:APA91bHd3m0Leg4cyS3rv3rK3yN0tR3alD3m0d3m0d3m0d3m0d3m0d3m0d3m0\n"
	chkAuthorizedUser = `{"account": "", "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",
  "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty", "quota_project_id": "demo-project-1234",
  "refresh_token": "1//0gd3m0r3fr3sht0k3n-d3m0d3m0d3m0", "type": "authorized_user", "universe_domain": "googleapis.com"}
`
)

func TestCheckFCMGood(t *testing.T) {
	cfg, saPath := chkFCM(t, chkServiceAccount(t, "", nil), "", "")
	rep, code := chkJSON(t, cfg)
	if code != 0 || rep.Status != LevelOK {
		t.Fatalf("exit %d:\n%s", code, chkDump(rep))
	}
	if len(rep.Credentials) != 1 {
		t.Fatalf("%d credentials:\n%s", len(rep.Credentials), chkDump(rep))
	}
	c := rep.Credentials[0]
	if c.Platform != "fcm" || c.Name != "android" || c.File != saPath || !c.Usable || c.Fingerprint == "" {
		t.Errorf("credential %+v", c)
	}
	expectFinding(t, rep, "service_account_file", LevelOK, saPath, "")
	expectFinding(t, rep, "service_account", LevelOK, chkFCMEmail+", key "+chkFCMKeyID+" (RSA 2048 bits)", "")
	expectFinding(t, rep, "project_id", LevelOK, chkFCMProject+" (from the file)", "")
	expectFinding(t, rep, "token_uri", LevelOK, creds.FCMDefaultTokenURL, "")
	expectFinding(t, rep, "config", LevelOK, "1 FCM credential", "")
	if c.Token == nil || c.Token.Header["alg"] != "RS256" || c.Token.Header["kid"] != chkFCMKeyID || c.Token.Claims["iss"] != chkFCMEmail ||
		c.Token.Claims["aud"] != creds.FCMDefaultTokenURL || c.Token.Claims["scope"] != creds.FCMScope || c.Token.Claims["iat"] == nil {
		t.Errorf("assertion: %+v", c.Token)
	}
	if fs := rep.findings("credentials"); len(fs) != 0 {
		t.Errorf("an FCM-only configuration is said to have no credential: %+v", fs)
	}

	// project_id in the configuration, the same as the file's; a test
	// token endpoint through upstream.fcm_token_url.
	cfg, saPath = chkFCM(t, chkServiceAccount(t, "", nil), chkFCMProject, "upstream:\n  fcm_token_url: https://127.0.0.1:8573/token\n")
	rep, code = chkJSON(t, cfg)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, chkDump(rep))
	}
	expectFinding(t, rep, "project_id", LevelOK, chkFCMProject+" (from the configuration", "")
	expectFinding(t, rep, "token_uri", LevelOK, "replaced by upstream.fcm_token_url https://127.0.0.1:8573/token", "")
	expectFinding(t, rep, "token", LevelOK, `"aud":"https://127.0.0.1:8573/token"`, "")

	// The human form.
	code, out := chkText(t, cfg)
	if code != 0 || !strings.Contains(out, `fcm credential "android" (`+saPath+")") || !strings.Contains(out, chkFCMEmail) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestCheckFCMTraps: each classic mistake, on a real file, named with its
// one-line fix; the credential is unusable and check exits 1.
func TestCheckFCMTraps(t *testing.T) {
	ecKey := chkPKCS8(t, chkP256(t))
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, project string
		data          []byte
		check         string
		inMessage     string
		inFix         string
	}{
		{"google-services.json", "", []byte(chkGoogleServices), "service_account", "google-services.json", "google-services.json belongs in the Android app"},
		{"legacy server key", "", []byte(chkLegacyKey), "service_account", "legacy FCM server key", "shut down in 2024"},
		{"authorized_user", "", []byte(chkAuthorizedUser), "service_account", "authorized_user", "gcloud login is not for a server"},
		{"no private_key", "", chkServiceAccount(t, "", map[string]any{"private_key": nil}), "private_key", "private_key is missing", "make a new key"},
		{"EC private_key", "", chkServiceAccount(t, "", map[string]any{"private_key": string(ecKey)}), "private_key", "RSA", "private_key is an RSA key"},
		{"1024-bit RSA private_key", "", chkServiceAccount(t, "", map[string]any{"private_key": string(chkPKCS8(t, smallRSA))}), "private_key", "1024-bit", "private_key is an RSA key"},
		{"private_key without line breaks", "", chkServiceAccount(t, "", map[string]any{"private_key": "-----BEGIN PRIVATE KEY----- MIIE -----END PRIVATE KEY-----"}), "private_key", "no PEM block", "line breaks"},
		{"project_id differs", "other-project-99", chkServiceAccount(t, "", nil), "project_id", `belongs to project "` + chkFCMProject + `"`, "remove fcm[0].project_id"},
		{"no project_id anywhere", "", chkServiceAccount(t, "", map[string]any{"project_id": nil}), "project_id", "project_id is missing", "set fcm[0].project_id"},
		{"token_uri not https", "", chkServiceAccount(t, "http://oauth2.googleapis.com/token", nil), "token_uri", "not https", `"token_uri": "https://oauth2.googleapis.com/token"`},
		{"bare PEM key", "", chkPKCS8(t, chkRSA()), "service_account", "bare PEM key", "whole service-account JSON"},
		{"empty file", "", []byte("\n"), "service_account", "empty", "Generate new private key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := chkFCM(t, c.data, c.project, "")
			rep, code := chkJSON(t, cfg)
			if code != 1 || len(rep.Credentials) != 1 || rep.Credentials[0].Usable {
				t.Fatalf("exit %d:\n%s", code, chkDump(rep))
			}
			expectFinding(t, rep, c.check, LevelError, c.inMessage, c.inFix)
			for _, f := range rep.Credentials[0].Findings {
				if f.Level == LevelError && strings.Contains(f.Fix, "\n") {
					t.Errorf("a fix on several lines: %q", f.Fix)
				}
			}
		})
	}

	// A missing file, and no file configured at all.
	cfg, saPath := chkFCM(t, nil, "", "")
	rep, code := chkJSON(t, cfg)
	expectFinding(t, rep, "service_account_file", LevelError, saPath, "pushproxy-fcm Secret")
	if code != 1 {
		t.Errorf("missing file: exit %d", code)
	}
}

// TestCheckFCMNoSecretsInOutput: neither form shows the private key, nor
// the secrets of the files given by mistake.
func TestCheckFCMNoSecretsInOutput(t *testing.T) {
	der, err := x509.MarshalPKCS8PrivateKey(chkRSA())
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(der)
	secrets := []string{b64[:24], b64[len(b64)/2 : len(b64)/2+24], b64[len(b64)-24:], chkRSA().D.Text(16)[:24],
		"d-FL95Q19q7MQmFpd7hHD0Ty", "1//0gd3m0r3fr3sht0k3n", "AIzaSyD3m0", "APA91bHd3m0Leg4cy", "eyJ"}
	for name, data := range map[string][]byte{
		"good": chkServiceAccount(t, "", nil), "google-services.json": []byte(chkGoogleServices),
		"legacy": []byte(chkLegacyKey), "authorized_user": []byte(chkAuthorizedUser),
		"http token_uri": chkServiceAccount(t, "http://127.0.0.1/token", nil),
	} {
		cfg, _ := chkFCM(t, data, "", "")
		for _, asJSON := range []bool{false, true} {
			rep := Run(cfg, Env{Now: time.Now})
			var out bytes.Buffer
			if asJSON {
				_ = rep.WriteJSON(&out)
			} else {
				rep.Print(&out)
			}
			for _, s := range secrets {
				if strings.Contains(out.String(), s) {
					t.Errorf("%s (json %v): %q appears in the output:\n%s", name, asJSON, s, out.String())
				}
			}
		}
	}
}

// TestCheckAgreesWithServerFCM holds pushproxy check and the server
// (proxy.LoadConfig, proxy.New, /readyz) to the same verdict on FCM
// service-account files: usable or not, and the same file.
func TestCheckAgreesWithServerFCM(t *testing.T) {
	ecKey := chkPKCS8(t, chkP256(t))
	for _, l := range []struct {
		name    string
		data    []byte
		project string
		usable  bool
	}{
		{"service account", chkServiceAccount(t, chkFCMTokenURL, nil), "", true},
		{"service account, project_id configured", chkServiceAccount(t, chkFCMTokenURL, nil), chkFCMProject, true},
		{"PKCS#1 RSA key", chkServiceAccount(t, chkFCMTokenURL, map[string]any{"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(chkRSA())}))}), "", true},
		{"google-services.json", []byte(chkGoogleServices), "", false},
		{"legacy server key", []byte(chkLegacyKey), "", false},
		{"authorized_user", []byte(chkAuthorizedUser), "", false},
		{"no private_key", chkServiceAccount(t, chkFCMTokenURL, map[string]any{"private_key": nil}), "", false},
		{"EC private_key", chkServiceAccount(t, chkFCMTokenURL, map[string]any{"private_key": string(ecKey)}), "", false},
		{"project_id differs", chkServiceAccount(t, chkFCMTokenURL, nil), "other-project-99", false},
		{"token_uri not https", chkServiceAccount(t, "http://127.0.0.1:1/token", nil), "", false},
		{"missing file", nil, "", false},
	} {
		t.Run(l.name, func(t *testing.T) {
			cfgPath, saPath := chkFCM(t, l.data, l.project, "")
			srvUsable, srvFile, status := serverViewOf(t, cfgPath, "fcm")
			rep, code := chkJSON(t, cfgPath)
			if len(rep.Credentials) != 1 {
				t.Fatalf("%d credentials in the diagnosis:\n%s", len(rep.Credentials), chkDump(rep))
			}
			c := rep.Credentials[0]
			if srvUsable != c.Usable || srvUsable != l.usable {
				t.Errorf("server usable %v, check usable %v, want %v:\n%s", srvUsable, c.Usable, l.usable, chkDump(rep))
			}
			if srvFile != c.File || c.File != saPath {
				t.Errorf("server names %s, check names %s, want %s", srvFile, c.File, saPath)
			}
			if (status == http.StatusOK) != l.usable {
				t.Errorf("/readyz %d with usable %v", status, l.usable)
			}
			if (code == 0) != l.usable {
				t.Errorf("check exit %d with usable %v:\n%s", code, l.usable, chkDump(rep))
			}
		})
	}
}
