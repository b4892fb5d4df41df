package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/creds"
)

// chkRun runs "pushproxy check" through main's dispatch.
func chkRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"check"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--bogus"}, {"--config"}, {"--config", "x.yaml", "extra"}} {
		code, out, errs := chkRun(t, args...)
		if code != 2 || out != "" || !strings.Contains(errs, "pushproxy check --config FILE") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}

// TestCheckCommand: the command prints the diagnosis (internal/diagnose) in
// either form and exits 0 when fine, 1 on a problem.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := creds.EncodeP8(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "AuthKey_ABC123DEFG.p8")
	if err := os.WriteFile(keyPath, p8, 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	for path, keyID := range map[string]string{good: "", bad: "    key_id: ZZZ999ZZZZ\n"} {
		yaml := "apns:\n  - key_file: " + keyPath + "\n" + keyID + "    team_id: DEF123GHIJ\n    topics: [com.example.app]\n"
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errs := chkRun(t, "--config", good)
	if code != 0 || !strings.Contains(out, "result: ok: 0 errors, 0 warnings") || errs != "" {
		t.Errorf("good: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = chkRun(t, "--json", "--config", bad)
	var rep struct {
		Status      string
		Credentials []struct {
			Usable bool
			File   string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != 1 || rep.Status != "error" || len(rep.Credentials) != 1 || !rep.Credentials[0].Usable || rep.Credentials[0].File != keyPath {
		t.Errorf("bad: exit %d, %+v", code, rep)
	}
}
