package diagnose

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/pushproxy/pushproxy/proxy"
)

// keyLayout is a key directory as an operator might leave it: setup writes
// the files under dir and returns key_file and the rest of the credential's
// YAML.
type keyLayout struct {
	name  string
	setup func(t *testing.T, dir string) (keyFile, cred string)
	// usable: the server loads the credential (and the diagnosis says so).
	usable bool
	// file is the file both name, relative to dir ("" → key_file itself).
	file string
	// exit is pushproxy check's exit status: a usable credential can still
	// be an error that only APNs would find (a key ID that is not the one
	// in the file name).
	exit int
}

// serverView is what the server makes of a configuration: whether /readyz
// calls the one APNs credential usable, and the file it names.
func serverView(t *testing.T, cfgPath string) (usable bool, file string, status int) {
	t.Helper()
	return serverViewOf(t, cfgPath, "apns")
}

// serverViewOf is serverView for the one credential of a platform.
func serverViewOf(t *testing.T, cfgPath, platform string) (usable bool, file string, status int) {
	t.Helper()
	cfg, err := proxy.LoadConfig(cfgPath)
	if err != nil {
		t.Fatalf("the server refuses the configuration: %v", err)
	}
	srv, err := proxy.New(cfg, proxy.Options{})
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	defer srv.Close()
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body struct {
		Platforms map[string]struct {
			Credentials []struct {
				State string `json:"state"`
				File  string `json:"file"`
			} `json:"credentials"`
		} `json:"platforms"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("/readyz: %v: %s", err, rec.Body.String())
	}
	cs := body.Platforms[platform].Credentials
	if len(cs) != 1 {
		t.Fatalf("/readyz lists %d %s credentials: %s", len(cs), platform, rec.Body.String())
	}
	return cs[0].State != "missing", cs[0].File, rec.Code
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	chkWrite(t, path, data, 0o600)
}

// TestCheckAgreesWithServer runs key-file layouts through pushproxy
// check's diagnosis and through the server (proxy.LoadConfig, proxy.New,
// /readyz) and holds them to the same answer: usable or not, and the same
// file. Both resolve key_file with creds.ResolveKeyFile and load with
// creds.LoadAPNsKeyFile; this test keeps it that way.
func TestCheckAgreesWithServer(t *testing.T) {
	p256 := chkPKCS8(t, chkP256(t))
	const team = "    team_id: " + chkTeamID + "\n    topics: [com.example.app]\n"
	good := "AuthKey_" + chkKeyID + ".p8"
	one := func(name string, data []byte) func(t *testing.T, dir string) (string, string) {
		return func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, name), data)
			return filepath.Join(dir, name), team
		}
	}
	sec1 := func() []byte {
		der, err := x509.MarshalECPrivateKey(chkP256(t))
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	p384Key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384 := chkPKCS8(t, p384Key)
	cert, certDER := chkCert(t)

	for _, l := range []keyLayout{
		{name: "plain file", setup: one(good, p256), usable: true, file: good},
		{name: "SEC1 EC key on P-256", setup: one(good, sec1), usable: true, file: good},
		{name: "other file name, key_id set", setup: func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, "apns.p8"), p256)
			return filepath.Join(dir, "apns.p8"), "    key_id: " + chkKeyID + "\n" + team
		}, usable: true, file: "apns.p8"},
		{name: "pattern in the file name, one match", setup: func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, good), p256)
			write(t, filepath.Join(dir, "README"), []byte("not a key"))
			return filepath.Join(dir, "AuthKey_*.p8"), team
		}, usable: true, file: good},
		{name: "pattern in the file name, no match", setup: func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, "apns.p8"), p256)
			return filepath.Join(dir, "AuthKey_*.p8"), team
		}, exit: 1},
		{name: "pattern in the file name, two matches", setup: func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, good), p256)
			write(t, filepath.Join(dir, "AuthKey_ZZZ999ZZZZ.p8"), p256)
			return filepath.Join(dir, "AuthKey_*.p8"), team
		}, exit: 1},
		{name: "pattern in a directory part, one match", setup: func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, "keys-2026", good), p256)
			return filepath.Join(dir, "keys-*", good), team
		}, usable: true, file: filepath.Join("keys-2026", good)},
		{name: "pattern in a directory part, two matches", setup: func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, "keys-a", good), p256)
			write(t, filepath.Join(dir, "keys-b", good), p256)
			return filepath.Join(dir, "keys-?", good), team
		}, exit: 1},
		{name: "pattern matching a dangling symlink and one file", setup: func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, good), p256)
			if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "AuthKey_OLD000KEY0.p8")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "AuthKey_*.p8"), team
		}, usable: true, file: good},
		{name: "pattern matching a directory and one file", setup: func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, good), p256)
			if err := os.Mkdir(filepath.Join(dir, "AuthKey_DIR0000000.p8"), 0o700); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, "AuthKey_*.p8"), team
		}, usable: true, file: good},
		{name: "key ID in the file name too short", setup: one("AuthKey_ABC123.p8", p256), file: "AuthKey_ABC123.p8", exit: 1},
		{name: "key ID in the file name in lower case", setup: one("AuthKey_abc123defg.p8", p256), file: "AuthKey_abc123defg.p8", exit: 1},
		{name: "key_id not the one in the file name", setup: func(t *testing.T, dir string) (string, string) {
			write(t, filepath.Join(dir, good), p256)
			return filepath.Join(dir, good), "    key_id: ZZZ999ZZZZ\n" + team
		}, usable: true, file: good, exit: 1},
		{name: "PKCS#1 RSA key instead of PKCS#8 EC", setup: one(good, pkcs1), file: good, exit: 1},
		{name: "P-384 key", setup: one(good, p384), file: good, exit: 1},
		{name: "certificate instead of the key", setup: one(good, cert), file: good, exit: 1},
		{name: "binary DER certificate", setup: one(good, certDER), file: good, exit: 1},
		{name: "empty file", setup: one(good, nil), file: good, exit: 1},
		{name: "missing file", setup: func(t *testing.T, dir string) (string, string) {
			return filepath.Join(dir, good), team
		}, file: good, exit: 1},
	} {
		t.Run(l.name, func(t *testing.T) {
			dir := t.TempDir()
			keyFile, cred := l.setup(t, dir)
			cfgPath := filepath.Join(t.TempDir(), "config.yaml")
			chkWrite(t, cfgPath, []byte("apns:\n  - name: default\n    key_file: "+keyFile+"\n"+cred), 0o600)

			srvUsable, srvFile, status := serverView(t, cfgPath)
			rep, code := chkJSON(t, cfgPath)
			if len(rep.Credentials) != 1 {
				t.Fatalf("%d credentials in the diagnosis:\n%s", len(rep.Credentials), chkDump(rep))
			}
			c := rep.Credentials[0]
			want := keyFile
			if l.file != "" {
				want = filepath.Join(dir, l.file)
			}
			if srvUsable != c.Usable {
				t.Errorf("server usable %v, check usable %v:\n%s", srvUsable, c.Usable, chkDump(rep))
			}
			if srvUsable != l.usable {
				t.Errorf("server usable %v, want %v", srvUsable, l.usable)
			}
			if srvFile != c.File || c.File != want {
				t.Errorf("server names %s, check names %s, want %s", srvFile, c.File, want)
			}
			if (status == http.StatusOK) != l.usable {
				t.Errorf("/readyz %d with usable %v", status, l.usable)
			}
			if code != l.exit {
				t.Errorf("check exit %d, want %d:\n%s", code, l.exit, chkDump(rep))
			}
		})
	}
}
