package main

// pushproxy send: one notification from the command line.
//
// It loads the configuration and credentials as the server does
// (proxy.LoadConfig, proxy.New) and sends through (*proxy.Server).Send, the
// code path of POST /v1/notifications, without opening a listener. It
// prints the normalised result or error: human-readable by default, or with
// --json exactly the JSON the API would answer. --dry-run builds, encrypts
// and signs everything and prints the upstream request instead of sending
// it: method, URL, headers, the provider token or VAPID JWT as its decoded
// header and claims only, and the payload (Web Push: the plaintext and the
// encrypted size).
//
// Nothing secret is printed: the device token appears only as a
// fingerprint (also in a dry run's URL, where the API shows it in full to
// the caller who sent it), the Web Push endpoint as its origin and a
// fingerprint, tokens and JWTs only decoded, never signed.
//
// Exit status: 0 when delivered (or built, with --dry-run), 1 on a
// normalised error or an unusable configuration, 2 on a usage error.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

const sendUsage = `Usage: pushproxy send --config FILE RECIPIENT [CONTENT] [OPTIONS]

Sends one notification through the same code path as POST /v1/notifications
and prints the normalised result or error.

RECIPIENT, exactly one of:
  --apns-token HEX [--topic T] [--credential NAME] [--environment production|development|auto]
  --subscription FILE [--vapid-key NAME]   FILE: a PushSubscription.toJSON() JSON file,
                                           optionally with "vapid_key"

Exit status: 0 delivered (or built, with --dry-run), 1 a normalised error or an unusable
configuration, 2 a usage error.

Flags:
`

// sendFlags are the command line of pushproxy send.
type sendFlags struct {
	config                             string
	apnsToken, topic, credential, env  string
	subscription, vapidKey             string
	title, subtitle, body, data, sound string
	url, image                         string
	badge                              int
	priority, collapseID, pushType, id string
	ttl                                int64
	dryRun, json                       bool
	timeout                            time.Duration
	set                                map[string]bool // flags given on the command line
	subscriptionEndpoint               string
}

func send(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f sendFlags
	fs.StringVar(&f.config, "config", "", "configuration file (required)")
	fs.StringVar(&f.apnsToken, "apns-token", "", "APNs device token, hex")
	fs.StringVar(&f.topic, "topic", "", "APNs topic (bundle ID); default: the credential's first topic")
	fs.StringVar(&f.credential, "credential", "", "APNs credential name; default: the one listing the topic")
	fs.StringVar(&f.env, "environment", "", "APNs environment: production, development or auto; default: the credential's")
	fs.StringVar(&f.subscription, "subscription", "", "Web Push subscription: a PushSubscription.toJSON() JSON `file`")
	fs.StringVar(&f.vapidKey, "vapid-key", "", "name of the VAPID key the subscription was made with; default: the file's vapid_key, else the primary")
	fs.StringVar(&f.title, "title", "", "title")
	fs.StringVar(&f.subtitle, "subtitle", "", "subtitle (APNs only)")
	fs.StringVar(&f.body, "body", "", "body text")
	fs.StringVar(&f.data, "data", "", "custom data, a JSON object such as '{\"order\":\"1234\"}'")
	fs.IntVar(&f.badge, "badge", 0, "badge number")
	fs.StringVar(&f.sound, "sound", "", "sound name, such as default")
	fs.StringVar(&f.url, "url", "", "page to open")
	fs.StringVar(&f.image, "image", "", "image URL")
	fs.StringVar(&f.priority, "priority", "", "high, normal or low")
	fs.Int64Var(&f.ttl, "ttl", 0, "seconds the service may hold it (0: deliver now or drop); default: APNs none, Web Push webpush.default_ttl")
	fs.StringVar(&f.collapseID, "collapse-id", "", "collapse id: replaces a pending notification with the same id")
	fs.StringVar(&f.pushType, "push-type", "", "APNs push type (alert, background, voip …); default: derived")
	fs.StringVar(&f.id, "id", "", "your UUID for the notification (becomes apns-id)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "build, encrypt and sign everything, send nothing, and print the upstream request")
	fs.BoolVar(&f.json, "json", false, "print exactly the JSON the API would answer (the result, or {\"error\": …})")
	fs.DurationVar(&f.timeout, "timeout", 0, "deadline, retries included (default: request_timeout from the configuration)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), sendUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "pushproxy send: "+format+"\n(pushproxy send -h for help)\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	n, msg := f.notification()
	if msg != "" {
		return usageErr("%s", msg)
	}

	cfg, err := proxy.LoadConfig(f.config)
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy send: %v\n", err)
		return 1
	}
	// Only errors are logged (a credential that fails to load, …): the
	// outcome itself is printed below.
	log := newLogger(proxy.LogConfig{Format: "text", Level: "error"}, stderr)
	srv, err := proxy.New(cfg, proxy.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy send: %v\n", err)
		return 1
	}
	defer srv.Close()
	timeout := cfg.RequestTimeout
	if f.timeout > 0 {
		timeout = f.timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, e := srv.Send(ctx, n)
	if res != nil && res.Request != nil {
		hideDeviceToken(res.Request)
	}
	if f.json {
		var v any = res
		if e != nil {
			v = struct {
				Error *translate.Error `json:"error"`
			}{e}
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
	} else if e != nil {
		printSendError(stdout, e)
	} else {
		f.printResult(stdout, res)
	}
	if e != nil {
		return 1
	}
	return 0
}

// notification builds the neutral notification from the flags, or says
// what is wrong with them.
func (f *sendFlags) notification() (*translate.Notification, string) {
	if f.config == "" {
		return nil, "--config FILE is required"
	}
	switch {
	case f.set["apns-token"] && f.set["subscription"]:
		return nil, "give one recipient: --apns-token or --subscription, not both"
	case !f.set["apns-token"] && !f.set["subscription"]:
		return nil, "a recipient is required: --apns-token HEX or --subscription FILE"
	}
	if f.set["subscription"] {
		for _, name := range []string{"topic", "credential", "environment"} {
			if f.set[name] {
				return nil, "--" + name + " is for APNs (--apns-token), not --subscription"
			}
		}
	} else if f.set["vapid-key"] {
		return nil, "--vapid-key is for Web Push (--subscription), not --apns-token"
	}
	if f.timeout < 0 {
		return nil, "--timeout must be positive"
	}
	n := &translate.Notification{
		Title: f.title, Subtitle: f.subtitle, Body: f.body, Image: f.image, URL: f.url,
		Priority: f.priority, CollapseID: f.collapseID, PushType: f.pushType, ID: f.id, DryRun: f.dryRun,
	}
	if f.set["apns-token"] {
		n.To.APNs = &translate.APNsRecipient{Token: f.apnsToken, Topic: f.topic, Credential: f.credential, Environment: f.env}
	} else {
		sub, msg := readSubscription(f.subscription)
		if msg != "" {
			return nil, msg
		}
		if f.set["vapid-key"] {
			sub.VAPIDKey = f.vapidKey
		}
		n.To.WebPush = sub
		f.subscriptionEndpoint = sub.Endpoint
	}
	if f.set["data"] {
		var data map[string]json.RawMessage
		if err := json.Unmarshal([]byte(f.data), &data); err != nil || data == nil {
			return nil, "--data must be a JSON object, such as '{\"order\":\"1234\"}'"
		}
		n.Data = data
	}
	if f.set["badge"] {
		n.Badge = &f.badge
	}
	if f.set["ttl"] {
		n.TTL = &f.ttl
	}
	if f.set["sound"] {
		n.Sound, _ = json.Marshal(f.sound)
	}
	return n, ""
}

// readSubscription reads a PushSubscription.toJSON() file, optionally
// with "vapid_key". Nothing of its content is quoted in a message.
func readSubscription(path string) (*translate.WebPushRecipient, string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "--subscription: " + err.Error()
	}
	var sub translate.WebPushRecipient
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sub); err != nil {
		return nil, fmt.Sprintf("--subscription %s: not a PushSubscription.toJSON() object {\"endpoint\", \"keys\": {\"p256dh\", \"auth\"}} (%s)", path, jsonProblem(err))
	}
	if sub.Endpoint == "" || sub.Keys.P256DH == "" || sub.Keys.Auth == "" {
		return nil, fmt.Sprintf("--subscription %s: endpoint, keys.p256dh and keys.auth are required", path)
	}
	return &sub, ""
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: wrong type %s", typ.Field, typ.Value)
	case errors.Is(err, io.EOF):
		return "empty file"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// hideDeviceToken makes sure a dry run's APNs URL shows the device token
// only as its fingerprint (the server's dry run already does).
func hideDeviceToken(r *translate.DryRunRequest) {
	const marker = "/3/device/"
	if i := strings.Index(r.URL, marker); i >= 0 && !strings.HasPrefix(r.URL[i+len(marker):], "<") {
		tok := r.URL[i+len(marker):]
		r.URL = r.URL[:i+len(marker)] + "<device token " + translate.FingerprintString(strings.ToLower(tok)) + ">"
	}
}

// recipient describes the recipient by fingerprint only.
func (f *sendFlags) recipient() string {
	if f.set["apns-token"] {
		return "device token " + translate.FingerprintString(strings.ToLower(f.apnsToken)) + " (fingerprint)"
	}
	return "endpoint " + endpointOrigin(f.subscriptionEndpoint) + "/… (fingerprint " + translate.FingerprintString(f.subscriptionEndpoint) + ")"
}

// endpointOrigin is scheme://host of an endpoint, without its path (the
// secret part).
func endpointOrigin(endpoint string) string {
	scheme, rest, ok := strings.Cut(endpoint, "://")
	if !ok {
		return "(not a URL)"
	}
	host, _, _ := strings.Cut(rest, "/")
	if _, h, ok := strings.Cut(host, "@"); ok {
		host = h
	}
	return scheme + "://" + host
}

func (f *sendFlags) printResult(w io.Writer, r *translate.Result) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-12s %s\n", k, v)
		}
	}
	cred := r.Credential
	if r.Platform == translate.PlatformWebPush && cred != "" {
		cred = "VAPID key " + cred
	}
	if r.Request != nil {
		fmt.Fprintf(w, "dry run: built and signed, nothing sent (%s)\n", r.Platform)
	} else {
		up := ""
		if r.Upstream != nil {
			up = ": upstream " + strconv.Itoa(r.Upstream.Status)
		}
		fmt.Fprintf(w, "delivered (%s)%s\n", r.Platform, up)
	}
	row("id", r.ID)
	if r.Upstream != nil && r.Upstream.APNsID != "" && r.Upstream.APNsID != r.ID {
		row("apns-id", r.Upstream.APNsID)
	}
	row("recipient", f.recipient())
	row("credential", cred)
	row("environment", r.Environment)
	if r.Request == nil {
		row("attempts", strconv.Itoa(r.Attempts))
		return
	}
	printDryRunRequest(w, r.Platform, r.Request)
}

func printDryRunRequest(w io.Writer, platform string, q *translate.DryRunRequest) {
	fmt.Fprintf(w, "\n%s %s\n", q.Method, q.URL)
	for _, k := range slices.Sorted(maps.Keys(q.Headers)) {
		fmt.Fprintf(w, "%s: %s\n", k, q.Headers[k])
	}
	what := "provider token (ES256)"
	if platform == translate.PlatformWebPush {
		what = "VAPID JWT (ES256)"
	}
	if q.TokenHeader != nil || q.TokenClaims != nil {
		fmt.Fprintf(w, "\n%s, decoded; the signed token is never shown:\n", what)
		fmt.Fprintf(w, "  header  %s\n", compactJSON(q.TokenHeader))
		fmt.Fprintf(w, "  claims  %s\n", compactJSON(q.TokenClaims))
		for _, c := range []struct{ claim, label string }{{"iat", "issued"}, {"exp", "expires"}} {
			if t, ok := claimTime(q.TokenClaims[c.claim]); ok {
				fmt.Fprintf(w, "  %-7s %s (%s)\n", c.label, t.UTC().Format(time.RFC3339), c.claim)
			}
		}
	}
	if platform == translate.PlatformWebPush {
		fmt.Fprintf(w, "\nbody: %d bytes, encrypted (aes128gcm); the plaintext:\n", q.PayloadSize)
		var s string
		if json.Unmarshal(q.Payload, &s) == nil {
			fmt.Fprintln(w, s) // a payload that is not JSON, shown as its text
			return
		}
	} else {
		fmt.Fprintf(w, "\npayload: %d bytes\n", q.PayloadSize)
	}
	fmt.Fprintln(w, string(q.Payload))
}

func compactJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "?"
	}
	return strings.TrimSpace(b.String())
}

// claimTime reads a NumericDate claim as decoded by the JWT library.
func claimTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case float64:
		return time.Unix(int64(x), 0), true
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return time.Unix(n, 0), true
		}
	case int64:
		return time.Unix(x, 0), true
	}
	return time.Time{}, false
}

func printSendError(w io.Writer, e *translate.Error) {
	fmt.Fprintf(w, "failed: %s (the API would answer HTTP %d)\n", e.Code, e.Status())
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-10s %s\n", k, v)
		}
	}
	row("message", e.Message)
	row("hint", e.Hint)
	row("field", e.Field)
	retry := "not retryable"
	if e.Retryable {
		retry = "retryable"
		if e.RetryAfter > 0 {
			retry += ", after " + strconv.Itoa(e.RetryAfter) + "s"
		}
	}
	row("action", string(e.Action)+" ("+retry+")")
	row("platform", e.Platform)
	if u := e.Upstream; u != nil {
		s := ""
		if u.Status != 0 {
			s = strconv.Itoa(u.Status)
		}
		if u.Reason != "" {
			s = strings.TrimSpace(s + " " + u.Reason)
		}
		if u.Timestamp != 0 {
			s += ", since " + time.UnixMilli(u.Timestamp).UTC().Format(time.RFC3339)
		}
		if u.APNsID != "" {
			s += ", apns-id " + u.APNsID
		}
		row("upstream", s)
	}
}
