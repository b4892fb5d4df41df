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
	"os"
	"os/signal"
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
  pushproxy version                  print version and build information
  pushproxy help                     this text

The configuration is YAML; config.example.yaml documents every option.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		cmd, args = "help", args[1:]
	} else if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "healthcheck":
		return healthcheck(args, stdout, stderr)
	case "demo":
		return demo(args, stdout, stderr)
	case "send":
		return send(args, stdout, stderr)
	case "bench":
		return bench(args, stdout, stderr)
	case "check":
		return runCheck(args, stdout, stderr)
	case "vapid-keys":
		return vapidKeys(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "pushproxy: unknown subcommand %q\n\n%s", cmd, usage)
	return 2
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

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "config.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
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

// healthcheck asks a running pushproxy for /readyz (or /healthz), for
// container health checks in images without a shell.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "base URL of the proxy (default: from --config's listen)")
	configPath := fs.String("config", "", "configuration file to read the listen address from")
	live := fs.Bool("live", false, "check /healthz (alive) instead of /readyz (ready)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait")
	if err := fs.Parse(args); err != nil {
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
	client := &http.Client{Timeout: *timeout}
	base := *url
	if base == "" {
		if path, ok := strings.CutPrefix(listen, "unix://"); ok {
			client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			}}
			base = "http://pushproxy"
		} else {
			base = "http://" + listen
		}
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
