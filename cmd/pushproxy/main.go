// Command pushproxy is a local push-notification proxy: applications post
// one platform-neutral notification to it, and it delivers to Apple APNs or
// a Web Push service with the right headers and credentials, answering with
// a normalised result or error.
//
// This command is flag parsing and wiring only, a file per subcommand: the
// server is package proxy, the diagnosis of check internal/diagnose, the
// load generator of bench internal/bench, the demo internal/demo, and
// send's notification and output internal/send. Every subcommand answers
// -h/--help with its description on standard output (exit 0); a usage
// error exits 2.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

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
  pushproxy healthcheck [--live] [--url URL | --config FILE]
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
