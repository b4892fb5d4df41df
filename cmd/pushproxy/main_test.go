package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
)

func TestVersionAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "pushproxy ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "healthcheck") {
		t.Errorf("help: %d %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown subcommand") {
		t.Errorf("unknown subcommand: %d %q", code, errb.String())
	}
}

func TestBadConfigExits1(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("listen: 127.0.0.1:0\nlisten_adress: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--config", p}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `line 2: unknown key "listen_adress"`) {
		t.Errorf("%d %q", code, errb.String())
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeProcess runs the real binary: it starts with its key file
// missing (not fatal), is alive but not ready, answers credentials_missing,
// and exits 0 on SIGTERM.
func TestServeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pushproxy")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freePort(t)
	cfg := filepath.Join(dir, "config.yaml")
	// The key file is empty at start, and nothing polls. The key is then
	// written through a hard link in another directory, which makes no
	// event in the watched one: only a SIGHUP can make the process look
	// again.
	keyDir := t.TempDir()
	staging := filepath.Join(t.TempDir(), "staging.p8")
	if err := os.WriteFile(staging, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(staging, filepath.Join(keyDir, "AuthKey_ABC123DEFG.p8")); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("listen: %s\nlog: {format: text}\nreload: {poll_interval: 0s}\napns:\n  - key_file: %s/AuthKey_ABC123DEFG.p8\n    team_id: DEF123GHIJ\n    topics: [com.example.app]\n", addr, keyDir)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(bin, "healthcheck", "--live", "--config", cfg).CombinedOutput()
		if err == nil {
			if !strings.HasPrefix(string(out), "200 ") {
				t.Fatalf("healthcheck --live: %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never became alive: %s\nlogs:\n%s", out, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, err := exec.Command(bin, "healthcheck", "--url", "http://"+addr).CombinedOutput()
	if err == nil || !strings.HasPrefix(string(out), "503 ") || !strings.Contains(string(out), "AuthKey_ABC123DEFG.p8") {
		t.Errorf("readiness with the key missing: %v %s", err, out)
	}
	// SIGHUP: the key that appeared meanwhile is loaded; the process is ready.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := creds.EncodeP8(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(staging, p8, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if out, err := exec.Command(bin, "healthcheck", "--url", "http://"+addr).CombinedOutput(); err == nil {
		t.Fatalf("ready before SIGHUP: %s", out)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		out, err := exec.Command(bin, "healthcheck", "--url", "http://"+addr).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after SIGHUP: %s\nlogs:\n%s", out, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("logs: %s", logs.String())
	}
}
