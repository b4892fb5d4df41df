package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/pushproxy/pushproxy/internal/demo"
	"github.com/pushproxy/pushproxy/proxy"
)

const demoUsage = `Usage: pushproxy demo [flags]

Runs pushproxy with throwaway keys in front of a built-in fake APNs, fake
Web Push service and fake FCM on loopback (internal/demo), and prints curl
lines to try it; nothing leaves this machine. Runs until Ctrl-C, then deletes the keys and
exits 0.

Flags:
`

// demoCmd is the demo subcommand: flags, then internal/demo until SIGINT
// or SIGTERM.
func demoCmd(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return runDemo(ctx, args, stdout, stderr)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", demoUsage, stderr)
	o := demo.DefaultOptions()
	fs.StringVar(&o.Listen, "listen", o.Listen, "address of pushproxy's local API (IPv4 loopback; port 0: any free port)")
	fs.IntVar(&o.APNsPort, "apns-port", o.APNsPort, "port of the fake APNs on 127.0.0.1 (0: any free port)")
	fs.IntVar(&o.PushPort, "push-port", o.PushPort, "port of the fake Web Push service on 127.0.0.1 (0: any free port)")
	fs.IntVar(&o.FCMPort, "fcm-port", o.FCMPort, "port of the fake FCM (and its OAuth token endpoint) on 127.0.0.1 (0: any free port)")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "pushproxy's log level: debug, info, warn or error")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if err := o.Check(); err != nil {
		fmt.Fprintf(stderr, "pushproxy demo: %v\n", err)
		return 2
	}
	log := newLogger(proxy.LogConfig{Format: "text", Level: o.LogLevel}, stderr)
	if err := demo.Run(ctx, o, stdout, log, nil); err != nil {
		fmt.Fprintf(stderr, "pushproxy demo: %v\n", err)
		return 1
	}
	fmt.Fprintln(stderr, "pushproxy demo: stopped; the throwaway keys are deleted")
	return 0
}
