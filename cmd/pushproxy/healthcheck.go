package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pushproxy/pushproxy/proxy"
)

const healthcheckUsage = `Usage: pushproxy healthcheck [--live] [--url URL | --config FILE] [--timeout D]

Asks a running pushproxy for GET /readyz (or /healthz with --live) and
prints the status and body; exit 0 when it answers 200, else 1. For
container health checks in images without a shell.

The address is --url (http://HOST:PORT, HOST:PORT or unix:///PATH), else
the listen address of --config's file, else the default listen address.

Flags:
`

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
