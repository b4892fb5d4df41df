package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// subcommands are every subcommand pushproxy has.
var subcommands = []string{"serve", "demo", "send", "healthcheck", "check", "bench", "vapid-keys", "version"}

// TestHelpOnEverySubcommand: -h, -help and --help print a description and
// the flags on standard output and exit 0, for every subcommand and for
// pushproxy itself.
func TestHelpOnEverySubcommand(t *testing.T) {
	for _, sub := range subcommands {
		for _, h := range []string{"-h", "-help", "--help"} {
			var out, errb bytes.Buffer
			code := run([]string{sub, h}, &out, &errb)
			text := out.String()
			if code != 0 || errb.Len() != 0 {
				t.Errorf("%s %s: exit %d, stderr %q", sub, h, code, errb.String())
			}
			if !strings.HasPrefix(text, "Usage: pushproxy ") || strings.Contains(text, "Usage of ") {
				t.Errorf("%s %s: no usage line:\n%s", sub, h, text)
			}
			// A description: a paragraph of prose after the usage line.
			if paras := strings.Split(strings.TrimSpace(text), "\n\n"); len(paras) < 2 || len(strings.Fields(paras[1])) < 8 {
				t.Errorf("%s %s: no description:\n%s", sub, h, text)
			}
			if sub != "version" && !strings.Contains(text, "\n  -") {
				t.Errorf("%s %s: no flags listed:\n%s", sub, h, text)
			}
		}
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 || !strings.Contains(out.String(), "vapid-keys [--out FILE [--force]]") {
			t.Errorf("%q: exit %d:\n%s", args, code, out.String())
		}
	}
	// A wrong flag is still a usage error, on standard error.
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--bogus"}, &out, &errb); code != 2 || out.Len() != 0 || !strings.Contains(errb.String(), "-bogus") || !strings.Contains(errb.String(), "Usage: pushproxy") {
		t.Errorf("serve --bogus: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "pushproxy "+version) || errb.Len() != 0 {
			t.Errorf("%q: exit %d, %q %q", args, code, out.String(), errb.String())
		}
	}
}

// TestNoConfigSaysWhatToDo: bare pushproxy where there is no config.yaml
// names the ways forward; an explicit --config that is missing is still
// the plain error.
func TestNoConfigSaysWhatToDo(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{{}, {"serve"}} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		msg := errb.String()
		if code != 2 || !strings.Contains(msg, "config.yaml does not exist") {
			t.Errorf("%q: exit %d: %s", args, code, msg)
		}
		for _, want := range []string{"pushproxy --config FILE", "pushproxy demo", "pushproxy --help"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%q: the message lacks %q:\n%s", args, want, msg)
			}
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--config", "elsewhere.yaml"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "elsewhere.yaml") || strings.Contains(errb.String(), "pushproxy demo") {
		t.Errorf("explicit --config: exit %d: %s", code, errb.String())
	}
}

// readyServer answers /readyz and /healthz as pushproxy does when ready.
func readyServer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			_, _ = w.Write([]byte(`{"status":"ready"}`))
		case "/healthz":
			_, _ = w.Write([]byte(`{"status":"alive"}`))
		default:
			http.NotFound(w, r)
		}
	})
}

// TestHealthcheckURLForms: --url takes a URL, a listen address without a
// scheme, or a Unix socket; anything else is answered with what to write.
func TestHealthcheckURLForms(t *testing.T) {
	srv := httptest.NewServer(readyServer())
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")

	sock := filepath.Join(t.TempDir(), "pushproxy.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	usrv := &http.Server{Handler: readyServer()}
	go func() { _ = usrv.Serve(ln) }()
	defer usrv.Close()

	for _, u := range []string{srv.URL, srv.URL + "/", hostPort, "unix://" + sock} {
		var out, errb bytes.Buffer
		if code := run([]string{"healthcheck", "--url", u}, &out, &errb); code != 0 || out.String() != "200 {\"status\":\"ready\"}\n" {
			t.Errorf("--url %s: exit %d, %q %q", u, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"healthcheck", "--live", "--url", hostPort}, &out, &errb); code != 0 || !strings.Contains(out.String(), "alive") {
		t.Errorf("--live: exit %d, %q %q", code, out.String(), errb.String())
	}
	for _, u := range []string{"ftp://127.0.0.1:8570", "unix://", "http://"} {
		var out, errb bytes.Buffer
		if code := run([]string{"healthcheck", "--url", u}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "write ") {
			t.Errorf("--url %s: exit %d, %q", u, code, errb.String())
		}
	}
}

// TestBinaryCLI runs the built binary: --version with the version set at
// link time, -h on a subcommand, bare pushproxy with no configuration, and
// healthcheck with an address without a scheme.
func TestBinaryCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "pushproxy")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runBin := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir // no config.yaml here
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}
	if code, out, _ := runBin("--version"); code != 0 || !strings.HasPrefix(out, "pushproxy v9.8.7 (go") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	if code, out, _ := runBin("serve", "--help"); code != 0 || !strings.HasPrefix(out, "Usage: pushproxy [serve]") {
		t.Errorf("serve --help: exit %d %q", code, out)
	}
	if code, _, errs := runBin(); code != 2 || !strings.Contains(errs, "pushproxy demo") {
		t.Errorf("bare: exit %d %q", code, errs)
	}
	srv := httptest.NewServer(readyServer())
	defer srv.Close()
	if code, out, errs := runBin("healthcheck", "--url", strings.TrimPrefix(srv.URL, "http://")); code != 0 || !strings.HasPrefix(out, "200 ") {
		t.Errorf("healthcheck without a scheme: exit %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.yaml")); err == nil {
		t.Error("a config.yaml appeared")
	}
}
