package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/pushproxy/pushproxy/internal/send"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

const sendUsage = `Usage: pushproxy send --config FILE RECIPIENT [CONTENT] [OPTIONS]

Sends one notification through the same code path as POST /v1/notifications
and prints the normalised result or error; --dry-run builds, encrypts and
signs everything and prints the upstream request instead (the token decoded,
never signed; for FCM an access token is fetched, shown as its fingerprint).
Secrets appear only as fingerprints.

RECIPIENT, exactly one of:
  --apns-token HEX [--topic T] [--credential NAME] [--environment production|development|auto]
  --subscription FILE [--vapid-key NAME]   FILE: a PushSubscription.toJSON() JSON file,
                                           optionally with "vapid_key"
  --fcm-token TOKEN [--fcm-credential NAME]   an Android app's FCM registration token

Exit status: 0 delivered (or built, with --dry-run), 1 a normalised error or an unusable
configuration, 2 a usage error.

Flags:
`

// sendCmd is the send subcommand: flags, the server's code path without a
// listener (proxy.New, Server.Send), and internal/send to build the
// notification and print the outcome.
func sendCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("send", sendUsage, stderr)
	var f send.Options
	config := fs.String("config", "", "configuration file (required)")
	fs.StringVar(&f.APNsToken, "apns-token", "", "APNs device token, hex")
	fs.StringVar(&f.Topic, "topic", "", "APNs topic (bundle ID); default: the credential's first topic")
	fs.StringVar(&f.Credential, "credential", "", "APNs credential name; default: the one listing the topic")
	fs.StringVar(&f.Environment, "environment", "", "APNs environment: production, development or auto; default: the credential's")
	fs.StringVar(&f.Subscription, "subscription", "", "Web Push subscription: a PushSubscription.toJSON() JSON `file`")
	fs.StringVar(&f.VAPIDKey, "vapid-key", "", "name of the VAPID key the subscription was made with; default: the file's vapid_key, else the primary")
	fs.StringVar(&f.FCMToken, "fcm-token", "", "FCM registration token of an Android (or other Firebase) app instance")
	fs.StringVar(&f.FCMCredential, "fcm-credential", "", "FCM credential (service account) name; default: the first fcm entry")
	fs.StringVar(&f.Title, "title", "", "title")
	fs.StringVar(&f.Subtitle, "subtitle", "", "subtitle (APNs only)")
	fs.StringVar(&f.Body, "body", "", "body text")
	fs.StringVar(&f.Data, "data", "", "custom data, a JSON object such as '{\"order\":\"1234\"}'")
	fs.IntVar(&f.Badge, "badge", 0, "badge number")
	fs.StringVar(&f.Sound, "sound", "", "sound name, such as default")
	fs.StringVar(&f.URL, "url", "", "page to open")
	fs.StringVar(&f.Image, "image", "", "image URL")
	fs.StringVar(&f.Priority, "priority", "", "high, normal or low")
	fs.Int64Var(&f.TTL, "ttl", 0, "seconds the service may hold it (0: deliver now or drop); default: APNs none, Web Push webpush.default_ttl, FCM none (FCM keeps it 4 weeks)")
	fs.StringVar(&f.CollapseID, "collapse-id", "", "collapse id: replaces a pending notification with the same id")
	fs.StringVar(&f.PushType, "push-type", "", "APNs push type (alert, background, voip …); default: derived")
	fs.StringVar(&f.ID, "id", "", "your UUID for the notification (becomes apns-id)")
	fs.BoolVar(&f.DryRun, "dry-run", false, "build, encrypt and sign everything, send nothing, and print the upstream request")
	asJSON := fs.Bool("json", false, "print exactly the JSON the API would answer (the result, or {\"error\": …})")
	timeoutFlag := fs.Duration("timeout", 0, "deadline, retries included (default: request_timeout from the configuration)")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	f.Set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.Set[fl.Name] = true })
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "pushproxy send: "+format+"\n(pushproxy send -h for help)\n", a...)
		return 2
	}
	if *config == "" {
		return usageErr("--config FILE is required")
	}
	n, err := f.Notification()
	if err != nil {
		return usageErr("%v", err)
	}
	if *timeoutFlag < 0 {
		return usageErr("--timeout must be positive")
	}

	cfg, err := proxy.LoadConfig(*config)
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy send: %v\n", err)
		return 1
	}
	// Only errors are logged (a credential that fails to load, …): the
	// outcome itself is printed below.
	log := newLogger(proxy.LogConfig{Format: "text", Level: "error"}, stderr)
	// The dispatcher alone: the same path as the server's, without HTTP.
	srv, err := proxy.NewService(cfg, proxy.Options{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy send: %v\n", err)
		return 1
	}
	defer srv.Close()
	timeout := cfg.RequestTimeout
	if *timeoutFlag > 0 {
		timeout = *timeoutFlag
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, e := srv.Send(ctx, n)
	if res != nil && res.Request != nil {
		send.HideDeviceToken(res.Request)
	}
	if *asJSON {
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
		send.PrintError(stdout, e)
	} else {
		f.PrintResult(stdout, res)
	}
	if e != nil {
		return 1
	}
	return 0
}
