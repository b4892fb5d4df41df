// Package send is the engine of pushproxy send: it builds one neutral
// notification from command-line values (an APNs device token, a
// PushSubscription.toJSON() file for Web Push, or an FCM registration token)
// and writes the outcome of sending it for people: the
// normalised result or error, or a dry run's upstream request with its
// token decoded.
//
// Nothing secret is printed: the device token appears only as a
// fingerprint (also in a dry run's URL, where the API shows it in full to
// the caller who sent it), the Web Push endpoint as its origin and a
// fingerprint, the FCM registration token and access token as fingerprints
// (the server's dry run shows them so), provider tokens and JWTs only
// decoded, never signed.
package send

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushproxy/pushproxy/translate"
)

// Options are the values of pushproxy send's flags that make the
// notification.
type Options struct {
	APNsToken, Topic, Credential, Environment string
	Subscription, VAPIDKey                    string // a PushSubscription.toJSON() file; the VAPID key's name
	FCMToken, FCMCredential                   string // an FCM registration token; the FCM credential's name
	Title, Subtitle, Body, Data, Sound        string // Data: a JSON object; Sound: a sound name
	URL, Image                                string
	Badge                                     int
	Priority, CollapseID, PushType, ID        string
	TTL                                       int64
	DryRun                                    bool
	// Set holds the names of the flags given on the command line: a value
	// counts only when given (a badge of 0, a TTL of 0 …).
	Set map[string]bool

	subscriptionEndpoint string // read from the subscription file, for PrintResult
}

// Notification builds the neutral notification from the options, or says
// what is wrong with them (naming the flags of pushproxy send).
func (f *Options) Notification() (*translate.Notification, error) {
	var given []string
	for _, r := range []string{"apns-token", "subscription", "fcm-token"} {
		if f.Set[r] {
			given = append(given, "--"+r)
		}
	}
	switch {
	case len(given) > 1:
		return nil, errors.New("give one recipient, not " + strings.Join(given, " and ") + ": --apns-token, --subscription or --fcm-token")
	case len(given) == 0:
		return nil, errors.New("a recipient is required: --apns-token HEX, --subscription FILE or --fcm-token TOKEN")
	}
	// Each platform's own flags, refused with another recipient.
	for _, p := range []struct {
		recipient, platform string
		flags               []string
	}{
		{"apns-token", "APNs", []string{"topic", "credential", "environment"}},
		{"subscription", "Web Push", []string{"vapid-key"}},
		{"fcm-token", "FCM", []string{"fcm-credential"}},
	} {
		if f.Set[p.recipient] {
			continue
		}
		for _, name := range p.flags {
			if f.Set[name] {
				return nil, errors.New("--" + name + " is for " + p.platform + " (--" + p.recipient + "), not " + given[0])
			}
		}
	}
	n := &translate.Notification{
		Title: f.Title, Subtitle: f.Subtitle, Body: f.Body, Image: f.Image, URL: f.URL,
		Priority: f.Priority, CollapseID: f.CollapseID, PushType: f.PushType, ID: f.ID, DryRun: f.DryRun,
	}
	switch {
	case f.Set["apns-token"]:
		n.To.APNs = &translate.APNsRecipient{Token: f.APNsToken, Topic: f.Topic, Credential: f.Credential, Environment: f.Environment}
	case f.Set["fcm-token"]:
		n.To.FCM = &translate.FCMRecipient{Token: f.FCMToken, Credential: f.FCMCredential}
	default:
		sub, msg := readSubscription(f.Subscription)
		if msg != "" {
			return nil, errors.New(msg)
		}
		if f.Set["vapid-key"] {
			sub.VAPIDKey = f.VAPIDKey
		}
		n.To.WebPush = sub
		f.subscriptionEndpoint = sub.Endpoint
	}
	if f.Set["data"] {
		var data map[string]json.RawMessage
		if err := json.Unmarshal([]byte(f.Data), &data); err != nil || data == nil {
			return nil, errors.New("--data must be a JSON object, such as '{\"order\":\"1234\"}'")
		}
		n.Data = data
	}
	if f.Set["badge"] {
		n.Badge = &f.Badge
	}
	if f.Set["ttl"] {
		n.TTL = &f.TTL
	}
	if f.Set["sound"] {
		n.Sound, _ = json.Marshal(f.Sound)
	}
	return n, nil
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

// HideDeviceToken makes sure a dry run's APNs URL shows the device token
// only as its fingerprint (the server's dry run already does).
func HideDeviceToken(r *translate.DryRunRequest) {
	const marker = "/3/device/"
	if i := strings.Index(r.URL, marker); i >= 0 && !strings.HasPrefix(r.URL[i+len(marker):], "<") {
		tok := r.URL[i+len(marker):]
		r.URL = r.URL[:i+len(marker)] + "<device token " + translate.FingerprintString(strings.ToLower(tok)) + ">"
	}
}

// recipient describes the recipient by fingerprint only.
func (f *Options) recipient() string {
	if f.Set["apns-token"] {
		return "device token " + translate.FingerprintString(strings.ToLower(f.APNsToken)) + " (fingerprint)"
	}
	if f.Set["fcm-token"] {
		return "registration token " + translate.FingerprintString(f.FCMToken) + " (fingerprint)"
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

// PrintResult writes a result (a delivery, or a dry run's request) for
// people; the recipient appears only as a fingerprint.
func (f *Options) PrintResult(w io.Writer, r *translate.Result) {
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
	if r.Upstream != nil {
		row("message-id", r.Upstream.MessageID)
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
	} else if platform == translate.PlatformFCM {
		fmt.Fprintf(w, "\nbody: %d bytes; the registration token is shown as its fingerprint:\n", q.PayloadSize)
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

// PrintError writes a normalised error for people.
func PrintError(w io.Writer, e *translate.Error) {
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
