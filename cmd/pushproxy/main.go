// Command pushproxy is a local push-notification proxy: applications post
// one platform-neutral notification to it, and it delivers to Apple APNs
// with the right headers and provider token, answering with a normalised
// result or error. This file is flag parsing and wiring only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/pushproxy/pushproxy/proxy"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `pushproxy: a local proxy that delivers push notifications to Apple APNs and Web Push.

Usage:
  pushproxy [serve] --config FILE   run the proxy (the default subcommand)
  pushproxy demo [--listen ADDR] [--apns-port N] [--push-port N]
                                     try it: pushproxy with throwaway keys in front of a built-in fake APNs
                                     and fake Web Push service on loopback, with curl lines to paste
  pushproxy send --config FILE (--apns-token HEX [--topic T] | --subscription FILE) [--title T] [--body B]
                 [--data JSON] [--dry-run] [--json] …
                                     send one notification through the server's code path and print the
                                     normalised result; --dry-run prints the upstream request instead
  pushproxy healthcheck [--url URL | --config FILE]
                                     GET /readyz (or /healthz with --live); exit 0 when healthy
                                     (for container health checks: no shell needed)
  pushproxy check --config FILE [--json]  offline diagnosis of the configuration and credential files; exit 1 on a problem
  pushproxy bench [-n N] [-c C] [--direct | --batch K] [--url URL] [--json]  load test (default: against a built-in fake APNs)
  pushproxy vapid-keys [--out FILE [--force]]
                                     generate a VAPID key pair (web-push CLI JSON {publicKey, privateKey});
                                     an existing FILE is replaced only with --force
  pushproxy version | --version      print version and build information
  pushproxy help | --help            this text

Every subcommand takes -h (or --help) for its description and flags.
The configuration is YAML; config.example.yaml documents every option.
`

// defaultConfig is the configuration file serve reads when --config is not
// given.
const defaultConfig = "config.yaml"

const serveUsage = `Usage: pushproxy [serve] [--config FILE]

Runs the proxy: the local API on the configuration's listen address, the
credential files watched and reloaded when they change (SIGHUP reloads the
configuration and every file at once). SIGTERM or SIGINT drains in-flight
requests and exits 0.

Without --config, it reads ` + defaultConfig + ` in the current directory.
config.example.yaml documents every option; pushproxy demo runs it with
throwaway keys in front of built-in fakes, with no configuration at all.

Flags:
`

const healthcheckUsage = `Usage: pushproxy healthcheck [--live] [--url URL | --config FILE] [--timeout D]

Asks a running pushproxy for GET /readyz (or /healthz with --live) and
prints the status and body; exit 0 when it answers 200, else 1. For
container health checks in images without a shell.

The address is --url (http://HOST:PORT, HOST:PORT or unix:///PATH), else
the listen address of --config's file, else the default listen address.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			cmd, args = "help", args[1:]
		case "-version", "--version":
			cmd, args = "version", args[1:]
		default:
			if !strings.HasPrefix(args[0], "-") {
				cmd, args = args[0], args[1:]
			}
		}
	}
	switch cmd {
	case "serve":
		return serve(args, stdout, stderr)
	case "healthcheck":
		return healthcheck(args, stdout, stderr)
	case "demo":
		return demoCmd(args, stdout, stderr)
	case "send":
		return sendCmd(args, stdout, stderr)
	case "bench":
		return benchCmd(args, stdout, stderr)
	case "check":
		return runCheck(args, stdout, stderr)
	case "vapid-keys":
		return vapidKeys(args, stdout, stderr)
	case "version":
		return versionCmd(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "pushproxy: unknown subcommand %q\n\n%s", cmd, usage)
	return 2
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "Usage: pushproxy version (or pushproxy --version)\n\nPrints the version, the Go version and the VCS revision it was built from.\n", stderr)
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushproxy version: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fmt.Fprintln(stdout, versionString())
	return 0
}

func versionString() string {
	s := "pushproxy " + version
	if bi, ok := debug.ReadBuildInfo(); ok {
		s += " (" + bi.GoVersion
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				s += ", " + kv.Value
			}
		}
		s += ")"
	}
	return s
}

func newLogger(cfg proxy.LogConfig, w io.Writer) *slog.Logger {
	log, _ := newLoggerLevel(cfg, w)
	return log
}

// newLoggerLevel is newLogger with its level variable, which the server
// changes when log.level is edited in the configuration file.
func newLoggerLevel(cfg proxy.LogConfig, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), level
	}
	return slog.New(slog.NewJSONHandler(w, opts)), level
}

func serve(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", serveUsage, stderr)
	configPath := fs.String("config", defaultConfig, "configuration `file`")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushproxy: unexpected argument %q (pushproxy --help lists the subcommands)\n", fs.Arg(0))
		return 2
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	if _, err := os.Stat(*configPath); !explicit && errors.Is(err, os.ErrNotExist) {
		fmt.Fprint(stderr, noConfigMessage())
		return 2
	}
	cfg, err := proxy.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy: %v\n", err)
		return 1
	}
	log, level := newLoggerLevel(cfg.Log, stderr)
	srv, err := proxy.New(cfg, proxy.Options{Logger: log, LogLevel: level, ConfigPath: *configPath})
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 1
	}
	ln, err := proxy.Listen(cfg.Listen)
	if err != nil {
		log.Error("cannot listen", "error", err.Error())
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the configuration and credentials")
				srv.TriggerReload("SIGHUP")
			}
		}
	}()
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("stopped with an error", "error", err.Error())
		return 1
	}
	log.Info("stopped")
	return 0
}

// noConfigMessage is what bare pushproxy says when there is no
// configuration file where it looks by default.
func noConfigMessage() string {
	where := defaultConfig
	if wd, err := os.Getwd(); err == nil {
		where = filepath.Join(wd, defaultConfig)
	}
	return "pushproxy: no configuration file: " + where + " does not exist.\n" +
		"  pushproxy --config FILE   run the proxy with FILE (config.example.yaml documents every option)\n" +
		"  pushproxy demo            try it now: throwaway keys, built-in fake APNs and Web Push, curl lines to paste\n" +
		"  pushproxy --help          every subcommand\n"
}

// healthcheck asks a running pushproxy for /readyz (or /healthz), for
// container health checks in images without a shell.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("healthcheck", healthcheckUsage, stderr)
	rawURL := fs.String("url", "", "base `URL` of the proxy: http://HOST:PORT, HOST:PORT or unix:///PATH (default: from --config's listen)")
	configPath := fs.String("config", "", "configuration file to read the listen address from")
	live := fs.Bool("live", false, "check /healthz (alive) instead of /readyz (ready)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushproxy healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	listen := proxy.Defaults().Listen
	if *configPath != "" {
		cfg, err := proxy.LoadConfig(*configPath)
		if err != nil {
			fmt.Fprintf(stderr, "pushproxy healthcheck: %v\n", err)
			return 1
		}
		listen = cfg.Listen
	}
	if *rawURL != "" {
		listen = *rawURL
	}
	base, socket, err := healthcheckBase(listen)
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy healthcheck: %v\n", err)
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	if socket != "" {
		client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}}
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	resp, err := client.Get(strings.TrimRight(base, "/") + path)
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy healthcheck: %v\n", errors.Unwrap(err))
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	fmt.Fprintf(stdout, "%d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// healthcheckBase turns an address into the base URL to ask: an http(s)
// URL as it is, HOST:PORT (a listen address) as http://HOST:PORT, and
// unix:///PATH as a Unix socket (socket is then its path). Anything else
// is answered with what to write.
func healthcheckBase(addr string) (base, socket string, err error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		if path == "" {
			return "", "", fmt.Errorf("--url %q: write unix:///path/to/pushproxy.sock", addr)
		}
		return "http://pushproxy", path, nil
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("--url %q is not an address of pushproxy: write http://127.0.0.1:8570 (or 127.0.0.1:8570, or unix:///path/to/pushproxy.sock)", strings.TrimPrefix(addr, "http://"))
	}
	return strings.TrimRight(u.String(), "/"), "", nil
}
