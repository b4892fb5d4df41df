package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/pushproxy/pushproxy/internal/bench"
)

const benchUsage = `Usage: pushproxy bench [flags]

Sends notifications through pushproxy's local API (or straight to a fake APNs
with --direct) and prints throughput and latency percentiles. Without --url it
is self-contained: a fake APNs and an in-process pushproxy on loopback, with a
throwaway key (internal/bench). Exit 1 if any notification failed, 2 on a
usage error.

With --cpu NAME=PID (repeatable) it also reports the CPU time each named
process and the load client spent per notification during the run, and
flags the run when other work on the machine used more than --max-other-load
cores (scripts/e2e-bench.sh runs pushproxy, the fake and this client as
separate processes this way).

Flags:
`

// benchCmd is the bench subcommand: flags, then internal/bench.
func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", benchUsage, stderr)
	var o bench.Options
	fs.IntVar(&o.N, "n", 20000, "number of notifications to send")
	fs.IntVar(&o.C, "c", 64, "number of requests in flight at once")
	fs.StringVar(&o.URL, "url", "", "base URL of a running pushproxy (default: start a fake APNs and an in-process pushproxy)")
	fs.StringVar(&o.Token, "token", "", "hex device token for every notification (default: a random one per notification)")
	fs.StringVar(&o.Topic, "topic", "", "to.apns.topic (default: the credential's first topic; com.example.app in self-contained mode)")
	fs.BoolVar(&o.Direct, "direct", false, "send straight to the built-in fake APNs with a minimal HTTP/2 client, without pushproxy (the baseline)")
	fs.IntVar(&o.Batch, "batch", 0, "send through /v1/notifications/batch in groups of `K` (0: one notification per request)")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "deadline of each HTTP request (sent as X-Request-Timeout to pushproxy too)")
	fs.StringVar(&o.Fake, "fake", "", "with --direct: `URL` of a fake APNs running as its own process (internal/fakeapns/cmd/fakeapns) instead of the built-in one")
	fs.StringVar(&o.CAFile, "ca", "", "with --fake: the fake's CA certificate (PEM `file`)")
	fs.StringVar(&o.KeyFile, "key", "", "with --fake: the .p8 `file` the fake trusts")
	fs.StringVar(&o.KeyID, "key-id", "", "with --fake: its key ID (default ABC123DEFG)")
	fs.StringVar(&o.TeamID, "team-id", "", "with --fake: its team ID (default DEF123GHIJ)")
	fs.Func("cpu", "measure the CPU of process `NAME=PID` during the run (/proc/PID/stat; repeatable); the load client's own is reported too", func(s string) error {
		w, err := bench.ParseWatch(s)
		if err == nil {
			o.Watches = append(o.Watches, w)
		}
		return err
	})
	fs.Float64Var(&o.MaxOtherLoad, "max-other-load", 0.25, "with --cpu: flag the run when the rest of the machine used more than this many `cores` meanwhile")
	fs.StringVar(&o.WebPush, "webpush", "", "with --url: send every notification to the Web Push subscription in this JSON `file` ({endpoint, keys}) instead of APNs")
	fs.BoolVar(&o.FCM, "fcm", false, "self-contained: send every notification to Android through a built-in fake FCM (a throwaway service account) instead of APNs")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if err := o.Check(); err != nil {
		fmt.Fprintf(stderr, "pushproxy bench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy bench: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.Print(stdout)
	}
	if rep.Failures > 0 || rep.Interrupted {
		return 1
	}
	return 0
}
