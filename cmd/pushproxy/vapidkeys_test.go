package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/creds"
)

// runVAPIDKeys runs "pushproxy vapid-keys args…".
func runVAPIDKeys(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"vapid-keys"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// onlyFile fails unless dir holds exactly the one file name (no temporary
// file left behind).
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only %s", names, name)
	}
}

func TestVAPIDKeysStdout(t *testing.T) {
	code, out, errs := runVAPIDKeys(t)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := creds.ParseVAPIDKey([]byte(out)); err != nil {
		t.Errorf("standard output is not a key pair: %v\n%s", err, out)
	}
	if strings.HasSuffix(out, "\n\n") {
		t.Errorf("output ends with a blank line: %q", out)
	}
}

func TestVAPIDKeysWritesNewFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vapid.json")
	code, out, errs := runVAPIDKeys(t, "--out", p)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	k, err := creds.ParseVAPIDKey(data)
	if err != nil {
		t.Fatalf("the file is not a key pair: %v", err)
	}
	if !strings.Contains(out, k.PublicB64) {
		t.Errorf("output %q does not show the public key", out)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	onlyFile(t, dir, "vapid.json")
}

// TestVAPIDKeysRefusesToOverwrite: the key every subscription depends on
// is not replaced by accident; --force replaces it, whole, with mode 0600.
func TestVAPIDKeysRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vapid.json")
	old, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, old, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runVAPIDKeys(t, "--out", p)
	if code != 1 || out != "" {
		t.Errorf("exit %d, output %q; want 1 and nothing", code, out)
	}
	for _, want := range []string{p + " already exists", "--force", "vapid_key_mismatch", "webpush.keys"} {
		if !strings.Contains(errs, want) {
			t.Errorf("message %q does not say %q", errs, want)
		}
	}
	if data, _ := os.ReadFile(p); !bytes.Equal(data, old) {
		t.Error("the existing key file was changed")
	}
	onlyFile(t, dir, "vapid.json")

	code, out, errs = runVAPIDKeys(t, "--out", p, "--force")
	if code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errs)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	k, err := creds.ParseVAPIDKey(data)
	if err != nil || bytes.Equal(data, old) {
		t.Fatalf("--force did not write a new key pair (%v)", err)
	}
	if !strings.Contains(out, k.PublicB64) {
		t.Errorf("output %q does not show the new public key", out)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after --force %v (%v), want 0600", st.Mode().Perm(), err)
	}
	onlyFile(t, dir, "vapid.json")
}

func TestVAPIDKeysUsageErrors(t *testing.T) {
	if code, _, errs := runVAPIDKeys(t, "--force"); code != 2 || !strings.Contains(errs, "--out") {
		t.Errorf("--force alone: exit %d %q", code, errs)
	}
	if code, _, errs := runVAPIDKeys(t, "vapid.json"); code != 2 || !strings.Contains(errs, "--out") {
		t.Errorf("a bare file name: exit %d %q", code, errs)
	}
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "vapid.json")
	if code, _, errs := runVAPIDKeys(t, "--out", missing); code != 1 || !strings.Contains(errs, "writing "+missing) {
		t.Errorf("missing directory: exit %d %q", code, errs)
	}
}

// TestWriteFileAtomicNoClobber: without replace, a file that exists when
// the temporary file is moved into place (it appeared after the first
// check) is left alone.
func TestWriteFileAtomicNoClobber(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k.json")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(p, []byte("new"), false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("error %v, want fs.ErrExist", err)
	}
	if data, _ := os.ReadFile(p); string(data) != "old" {
		t.Errorf("the file now holds %q", data)
	}
	onlyFile(t, dir, "k.json")
}
