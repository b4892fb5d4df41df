// Command webpushgo is the Web Push baseline of scripts/e2e-bench.sh: the
// load client sending straight to a Web Push service with
// github.com/SherClockHolmes/webpush-go v1.4.0 (what an application would
// do without pushproxy), measured like pushproxy bench measures a run
// (throughput, latency, CPU per notification of named processes and of
// itself). It lives apart so that pushproxy's binary does not link
// webpush-go.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"time"

	webpushgo "github.com/SherClockHolmes/webpush-go"

	"github.com/pushproxy/pushproxy/internal/bench"
)

func main() {
	var o bench.Options
	flag.IntVar(&o.N, "n", 20000, "number of notifications")
	flag.IntVar(&o.C, "c", 64, "in flight at once")
	subFile := flag.String("sub", "", "subscription JSON file ({endpoint, keys})")
	vapidFile := flag.String("vapid", "", "VAPID key file (web-push JSON {publicKey, privateKey})")
	caFile := flag.String("ca", "", "the push service's CA (PEM)")
	ttl := flag.Int("ttl", 2419200, "TTL header (pushproxy's default_ttl)")
	flag.Func("cpu", "measure the CPU of process NAME=PID (repeatable)", func(s string) error {
		w, err := bench.ParseWatch(s)
		if err == nil {
			o.Watches = append(o.Watches, w)
		}
		return err
	})
	flag.Float64Var(&o.MaxOtherLoad, "max-other-load", 0.25, "flag the run when other work used more than this many cores")
	asJSON := flag.Bool("json", false, "print the summary as JSON")
	flag.Parse()
	o.Timeout = 10 * time.Second

	var sub webpushgo.Subscription
	var key struct{ PublicKey, PrivateKey string }
	if err := readJSON(*subFile, &sub); err != nil {
		fail(err)
	}
	if err := readJSON(*vapidFile, &key); err != nil {
		fail(err)
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail(fmt.Errorf("%s: no PEM certificate", *caFile))
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true,
		MaxIdleConns: o.C, MaxIdleConnsPerHost: o.C, IdleConnTimeout: 90 * time.Second,
	}
	client := &http.Client{Transport: tr, Timeout: o.Timeout}
	// The plaintext pushproxy sends for {"title":"Hello","body":"World"}.
	msg := []byte(`{"web_push":8030,"notification":{"title":"Hello","body":"World","navigate":""}}`)
	opts := &webpushgo.Options{HTTPClient: client, Subscriber: "ops@example.com", TTL: *ttl,
		VAPIDPublicKey: key.PublicKey, VAPIDPrivateKey: key.PrivateKey, Urgency: webpushgo.UrgencyHigh}
	o.Target = "webpush-go v1.4.0 → push service, no pushproxy"
	o.Send = func(ctx context.Context, i int) string {
		resp, err := webpushgo.SendNotificationWithContext(ctx, msg, &sub, opts)
		if err != nil {
			return "transport_error"
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return strconv.Itoa(resp.StatusCode)
		}
		return ""
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := bench.Run(ctx, o)
	if err != nil {
		fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.Print(os.Stdout)
	}
	if rep.Failures > 0 || rep.Interrupted {
		os.Exit(1)
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "webpushgo:", err)
	os.Exit(1)
}
