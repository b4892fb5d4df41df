// Package demo is pushproxy demo: pushproxy in front of the built-in
// fakes, for a first look.
//
// It generates throwaway keys (an APNs .p8, a VAPID key pair and a Google
// service-account key) into a temporary directory, starts internal/fakeapns
// (TLS + HTTP/2), internal/fakepush (HTTPS) and internal/fakefcm (TLS +
// HTTP/2, with its OAuth token endpoint) on loopback, starts pushproxy in
// front of them,
// prints ready-to-paste curl lines, and runs until SIGINT/SIGTERM, when it
// shuts everything down, removes the directory and exits 0.
//
// The printed text is deterministic for given addresses (fixed device
// tokens, a fixed FCM registration token, a fixed demo browser subscription
// whose keys come from constants),
// so the README can show exactly what the demo prints; demo_test.go runs
// every printed line against a running demo and checks the README.
package demo

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// Identities and recipients of the demo (nothing real).
const (
	demoTeamID  = "DEMOTEAM01"
	demoKeyID   = "DEMOKEY001"
	demoBundle  = "com.example.app"
	demoVAPID   = "demo" // name of the VAPID key in the demo configuration
	demoSubject = "mailto:demo@example.com"
	// demoToken is delivered; demoGoneToken is answered 410 Unregistered by
	// the fake APNs, every time.
	demoToken     = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e"
	demoGoneToken = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
	// demoSubID is the last path segment of the demo subscription's endpoint.
	demoSubID = "demo"
	// The demo browser's key pair and authentication secret are derived
	// from these, so that the subscription printed is the same on every
	// run. (A real browser makes random ones, and keeps them secret.)
	demoUASeed   = "pushproxy demo: user agent key"
	demoAuthSeed = "pushproxy demo: authentication secret"
	// The demo's Firebase project and its throwaway service account (the
	// fake FCM knows them; Google does not).
	demoFCMProject = "pushproxy-demo"
	demoFCMEmail   = "pushproxy@pushproxy-demo.iam.gserviceaccount.com"
	demoFCMKeyID   = "d3m0d3m0d3m0d3m0d3m0d3m0d3m0d3m0d3m0d3m0"
	// demoFCMToken is the demo Android app's registration token (made up,
	// in the shape of real ones: about 150 characters of [A-Za-z0-9_:-]).
	demoFCMToken = "dEm0AndroidAppInstance:APA91bDemoRegistrationTokenOfThePushproxyDemo_" +
		"NotARealDevice-AnyTokenOfThisShapeIsDeliveredByTheFakeFCM_0123456789abcdefghijklmnop"
	// demoTooLarge is the body length of the too-large example: over
	// APNs's 4096-byte payload limit with the rest of the payload.
	demoTooLarge = 4200
)

// Default addresses: pushproxy on its usual address, the fakes next to it.
const (
	demoDefaultListen   = "127.0.0.1:8570"
	demoDefaultAPNsPort = 8571
	demoDefaultPushPort = 8572
	demoDefaultFCMPort  = 8573
)

// Addrs are the addresses the printed lines name.
type Addrs struct {
	API  string // pushproxy's local API, host:port
	APNs string // the fake APNs, host:port
	Push string // the fake push service, host:port
	FCM  string // the fake FCM (and its token endpoint), host:port
}

// Example is one printed curl line and what it must answer.
type Example struct {
	Kind    string // what it shows: alert, background, webpush, android, gone, too_large
	Comment string // printed above the line, after "# "
	Line    string
	Status  int    // HTTP status of pushproxy's answer
	Code    string // normalised error code; "" on success
}

// demoUserAgent returns the demo subscription's key pair and
// authentication secret (deterministic; see demoUASeed).
func demoUserAgent() (*ecdh.PrivateKey, []byte) {
	seed := sha256.Sum256([]byte(demoUASeed))
	priv, err := ecdh.P256().NewPrivateKey(seed[:])
	if err != nil {
		panic(err) // a SHA-256 below the group order: fixed input, checked by the tests
	}
	auth := sha256.Sum256([]byte(demoAuthSeed))
	return priv, auth[:16]
}

// demoSubscription is the demo browser's subscription as toJSON() gives it.
func demoSubscription(push string) (endpoint string, keys fakepush.Keys) {
	priv, auth := demoUserAgent()
	return "https://" + push + "/push/" + demoSubID, fakepush.Keys{
		P256DH: base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		Auth:   base64.RawURLEncoding.EncodeToString(auth),
	}
}

// Examples are the notification lines printed for the given addresses. A
// new platform adds its line here, its fake in Start, and the line to the
// README's Try it section (TestDemoLinesAreInREADME checks it).
func Examples(a Addrs) []Example {
	post := func(body string) string {
		return "curl -s " + a.API + "/v1/notifications -H 'Content-Type: application/json' -d '" + body + "'"
	}
	apnsTo := func(tok string) string { return `{"to": {"apns": {"token": "` + tok + `"}}` }
	endpoint, keys := demoSubscription(a.Push)
	// The too-large body is made by the shell (printf pads 0 with zeros to
	// the width), so that the line stays short enough to read and paste.
	big := "curl -s " + a.API + "/v1/notifications -H 'Content-Type: application/json' -d \"$(printf '" +
		apnsTo(demoToken) + `, "title": "Too big", "body": "%0` + strconv.Itoa(demoTooLarge) + `d"}' 0)"`
	return []Example{
		{
			Kind:    "alert",
			Comment: `1. An alert, delivered: 200 {"id": …, "platform": "apns", "upstream": {"status": 200, …}, …}`,
			Line:    post(apnsTo(demoToken) + `, "title": "Hello", "body": "Delivered through pushproxy", "badge": 1}`),
			Status:  200,
		},
		{
			Kind:    "background",
			Comment: `2. A background push (data only): sent with content-available: 1 and priority 5; 200`,
			Line:    post(apnsTo(demoToken) + `, "data": {"order": "1234"}}`),
			Status:  200,
		},
		{
			Kind:    "webpush",
			Comment: `3. Web Push to the demo browser subscription, encrypted and VAPID-signed: 200, upstream 201`,
			Line: post(`{"to": {"webpush": {"endpoint": "` + endpoint + `", "keys": {"p256dh": "` + keys.P256DH + `", "auth": "` + keys.Auth +
				`"}}}, "title": "Hello", "body": "Encrypted for one browser", "url": "https://example.com/"}`),
			Status: 200,
		},
		{
			Kind:    "android",
			Comment: `4. An Android notification through FCM, with the demo service account's OAuth access token: 200, upstream message_id projects/` + demoFCMProject + `/messages/…`,
			Line:    post(`{"to": {"fcm": {"token": "` + demoFCMToken + `"}}, "title": "Hello", "body": "Delivered to an Android app", "data": {"order": "1234"}}`),
			Status:  200,
		},
		{
			Kind:    "gone",
			Comment: `5. A device token APNs reports as unregistered: 410 recipient_gone, action remove_recipient`,
			Line:    post(apnsTo(demoGoneToken) + `, "title": "Hello", "body": "Nobody is listening"}`),
			Status:  410, Code: string(translate.CodeRecipientGone),
		},
		{
			Kind:    "too_large",
			Comment: `6. A payload over APNs's 4096-byte limit: 413 payload_too_large, refused before sending`,
			Line:    big,
			Status:  413, Code: string(translate.CodePayloadTooLarge),
		},
	}
}

// LookLines are the printed GET lines: readiness and metrics.
func LookLines(a Addrs) []string {
	return []string{
		"curl -s " + a.API + "/readyz",
		"curl -s " + a.API + "/metrics | grep '^pushproxy_notifications_total'",
	}
}

// Print writes the demo's text: what runs, the lines, what to look at.
func Print(w io.Writer, a Addrs) {
	fmt.Fprintf(w, `pushproxy demo: pushproxy with throwaway keys in front of a fake APNs, a fake
Web Push service and a fake FCM, all on loopback; nothing leaves this machine.

  pushproxy (the local API)  http://%s
  fake APNs                  https://%s  (TLS + HTTP/2; checks provider tokens, topics, sizes)
  fake Web Push service      https://%s  (decrypts each message, checks its VAPID JWT)
  fake FCM                   https://%s  (TLS + HTTP/2; OAuth token endpoint, checks messages)
  keys                       a new APNs key (team %s, key %s, topic %s), VAPID key
                             and service account (project %s),
                             in a temporary directory removed on exit

Paste these into another terminal:

`, a.API, a.APNs, a.Push, a.FCM, demoTeamID, demoKeyID, demoBundle, demoFCMProject)
	for _, ex := range Examples(a) {
		fmt.Fprintf(w, "# %s\n%s\n", ex.Comment, ex.Line)
	}
	look := LookLines(a)
	fmt.Fprintf(w, `
# What pushproxy loaded (credentials, fingerprints), and what it counted:
%s
%s

Logs go to standard error. Ctrl-C stops the demo and deletes the keys.
`, look[0], look[1])
}

// Options say where the demo listens.
type Options struct {
	Listen   string // pushproxy's local API: an IPv4 loopback host:port (port 0: any free port)
	APNsPort int    // the fake APNs's port on 127.0.0.1 (0: any free port)
	PushPort int    // the fake Web Push service's port on 127.0.0.1 (0: any free port)
	FCMPort  int    // the fake FCM's port on 127.0.0.1 (0: any free port)
	LogLevel string // pushproxy's log level: debug, info, warn or error
}

// DefaultOptions are the addresses the README shows: pushproxy on its
// usual address, the fakes next to it.
func DefaultOptions() Options {
	return Options{Listen: demoDefaultListen, APNsPort: demoDefaultAPNsPort, PushPort: demoDefaultPushPort, FCMPort: demoDefaultFCMPort, LogLevel: "info"}
}

// Check says what is wrong with the options, if anything (the error names
// the flag of pushproxy demo).
func (f Options) Check() error {
	host, port, err := net.SplitHostPort(f.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port, such as %s", f.Listen, demoDefaultListen)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.Is4() || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: the demo listens on an IPv4 loopback address only (127.x.x.x), such as %s", f.Listen, demoDefaultListen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--listen %q: bad port", f.Listen)
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"--apns-port", f.APNsPort}, {"--push-port", f.PushPort}, {"--fcm-port", f.FCMPort}} {
		if p.v < 0 || p.v > 65535 {
			return fmt.Errorf("%s %d: want a port number (0: any free port)", p.name, p.v)
		}
	}
	switch f.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", f.LogLevel)
	}
	return nil
}

// Run starts the demo, prints its text on stdout, calls ready (if set; for
// tests) and runs until ctx ends; then it stops everything and removes the
// keys. pushproxy logs to log.
func Run(ctx context.Context, o Options, stdout io.Writer, log *slog.Logger, ready func(*Env)) error {
	env, err := Start(o, log)
	if err != nil {
		return err
	}
	Print(stdout, env.addrs)
	if ready != nil {
		ready(env)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-env.done:
		env.done = nil
	}
	return errors.Join(serveErr, env.Close())
}

// Env is a running demo.
type Env struct {
	addrs Addrs
	dir   string // the throwaway keys; removed by close
	apns  *fakeapns.Server
	push  *fakepush.Server
	fcm   *fakefcm.Server
	sub   *fakepush.Subscription
	// done delivers Serve's result; close stops it.
	done     chan error
	cleanups []func() error
}

// Close stops pushproxy, then the fakes, and removes the keys, in the
// reverse order of starting.
func (e *Env) Close() error {
	var errs []error
	for _, c := range slices.Backward(e.cleanups) {
		errs = append(errs, c())
	}
	e.cleanups = nil
	return errors.Join(errs...)
}

// inUse turns "address already in use" into a hint naming the flag.
func inUse(err error, addr, flagName string) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s is in use (another pushproxy or demo?); choose another with %s", addr, flagName)
	}
	return err
}

// Start generates the throwaway keys and starts the fakes and pushproxy
// (logging to log) in front of them; Close stops them.
func Start(f Options, log *slog.Logger) (_ *Env, err error) {
	env := &Env{}
	defer func() {
		if err != nil {
			_ = env.Close()
		}
	}()
	dir, err := os.MkdirTemp("", "pushproxy-demo-")
	if err != nil {
		return nil, err
	}
	env.dir = dir
	env.cleanups = append(env.cleanups, func() error { return os.RemoveAll(dir) })

	// The throwaway keys.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p8, err := creds.EncodeP8(key)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, "AuthKey_"+demoKeyID+".p8")
	if err := os.WriteFile(keyPath, p8, 0o600); err != nil {
		return nil, err
	}
	vapidJSON, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		return nil, err
	}
	vapid, err := creds.ParseVAPIDKey(vapidJSON)
	if err != nil {
		return nil, err
	}
	vapidPath := filepath.Join(dir, "vapid.json")
	if err := os.WriteFile(vapidPath, vapidJSON, 0o600); err != nil {
		return nil, err
	}

	// The fakes, on loopback.
	apnsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(f.APNsPort))
	fa, err := fakeapns.New(fakeapns.Options{Addr: apnsAddr})
	if err != nil {
		return nil, inUse(err, apnsAddr, "--apns-port")
	}
	env.apns = fa
	env.cleanups = append(env.cleanups, fa.Close)
	fa.AddKey(demoTeamID, demoKeyID, &key.PublicKey, demoBundle)
	fa.ScriptAlways(demoGoneToken, &fakeapns.Response{Status: 410, Reason: "Unregistered"})

	pushAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(f.PushPort))
	fp, err := fakepush.New(fakepush.Options{Addr: pushAddr})
	if err != nil {
		return nil, inUse(err, pushAddr, "--push-port")
	}
	env.push = fp
	env.cleanups = append(env.cleanups, fp.Close)
	uaKey, auth := demoUserAgent()
	if env.sub, err = fp.Subscribe(fakepush.SubscribeOptions{VAPIDKey: vapid.PublicB64, ID: demoSubID, PrivateKey: uaKey, AuthSecret: auth}); err != nil {
		return nil, err
	}
	// The fake FCM, and a throwaway service account it knows, whose file
	// names the fake's token endpoint as its token_uri.
	fcmAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(f.FCMPort))
	ff, err := fakefcm.New(fakefcm.Options{Addr: fcmAddr, MaxRecords: 1000})
	if err != nil {
		return nil, inUse(err, fcmAddr, "--fcm-port")
	}
	env.fcm = ff
	env.cleanups = append(env.cleanups, ff.Close)
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ff.AddServiceAccount(demoFCMEmail, demoFCMKeyID, &saKey.PublicKey, demoFCMProject)
	saJSON, err := creds.EncodeServiceAccount(saKey, demoFCMEmail, demoFCMKeyID, demoFCMProject, ff.TokenURL())
	if err != nil {
		return nil, err
	}
	saPath := filepath.Join(dir, "service-account.json")
	if err := os.WriteFile(saPath, saJSON, 0o600); err != nil {
		return nil, err
	}

	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, slices.Concat(fa.CAPEM(), fp.CAPEM(), ff.CAPEM()), 0o600); err != nil {
		return nil, err
	}

	// pushproxy in front of them.
	cfg := proxy.Defaults()
	cfg.Listen = f.Listen
	cfg.Log = proxy.LogConfig{Format: "text", Level: f.LogLevel}
	cfg.ShutdownGrace = 5 * time.Second
	cfg.APNs = []proxy.APNsConfig{{Name: "default", KeyFile: keyPath, TeamID: demoTeamID, Topics: []string{demoBundle}, Environment: "production"}}
	cfg.WebPush = &proxy.WebPushConfig{
		Subject: demoSubject, Keys: []proxy.VAPIDKeyConfig{{Name: demoVAPID, File: vapidPath}},
		// The fake push service is on loopback: allowed here, never by default.
		AllowEndpoints: []string{"127.0.0.1"}, AllowPrivateNetworks: true,
	}
	cfg.FCM = []proxy.FCMConfig{{Name: "default", ServiceAccountFile: saPath}}
	cfg.Upstream.FCMURL = ff.URL()
	cfg.Upstream.APNsProductionURL = fa.URL()
	cfg.Upstream.APNsDevelopmentURL = fa.URL()
	cfg.Upstream.CAFile = caPath
	cfg.Reload.PollInterval = 0
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	srv, err := proxy.New(&cfg, proxy.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	ln, err := proxy.Listen(cfg.Listen)
	if err != nil {
		// Stops what New started (an FCM access token being fetched)
		// before the fakes close; Serve does it once it runs.
		srv.Close()
		return nil, inUse(err, cfg.Listen, "--listen")
	}
	ctx, cancel := context.WithCancel(context.Background())
	env.done = make(chan error, 1)
	go func() { env.done <- srv.Serve(ctx, ln) }()
	env.cleanups = append(env.cleanups, func() error {
		cancel()
		if env.done == nil { // Serve already returned
			return nil
		}
		return <-env.done
	})
	env.addrs = Addrs{
		API:  ln.Addr().String(),
		APNs: strings.TrimPrefix(fa.URL(), "https://"),
		Push: strings.TrimPrefix(fp.URL(), "https://"),
		FCM:  strings.TrimPrefix(ff.URL(), "https://"),
	}
	return env, nil
}
