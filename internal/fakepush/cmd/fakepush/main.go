// Command fakepush runs internal/fakepush as a process of its own, for
// measurements that must not share a process with pushproxy or the load
// client: it makes one subscription for a VAPID key (a web-push JSON file),
// writes the subscription ({endpoint, keys}) and its CA to files, prints its
// URL on standard output, and runs until SIGTERM/SIGINT. It forgets the
// requests it records every second, so a long run does not grow it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushproxy/pushproxy/internal/fakepush"
)

func main() {
	vapidFile := flag.String("vapid", "", "the VAPID key file (web-push JSON {publicKey, privateKey}) subscriptions are made with")
	subOut := flag.String("sub-out", "", "write the subscription JSON ({endpoint, keys}) here")
	caOut := flag.String("ca-out", "", "write the CA certificate (PEM) here")
	addr := flag.String("addr", "", "listen address (default: a free loopback port)")
	flag.Parse()
	data, err := os.ReadFile(*vapidFile)
	if err != nil {
		fail(err)
	}
	var k struct {
		PublicKey string `json:"publicKey"`
	}
	if err := json.Unmarshal(data, &k); err != nil || k.PublicKey == "" {
		fail(fmt.Errorf("%s: not a web-push JSON key file", *vapidFile))
	}
	fake, err := fakepush.New(fakepush.Options{Addr: *addr})
	if err != nil {
		fail(err)
	}
	defer fake.Close()
	sub, err := fake.Subscribe(fakepush.SubscribeOptions{VAPIDKey: k.PublicKey})
	if err != nil {
		fail(err)
	}
	for path, v := range map[string][]byte{*caOut: fake.CAPEM(), *subOut: must(json.Marshal(sub))} {
		if path != "" {
			if err := os.WriteFile(path, v, 0o600); err != nil {
				fail(err)
			}
		}
	}
	fmt.Println(fake.URL())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fake.Reset()
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		fail(err)
	}
	return b
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fakepush:", err)
	os.Exit(1)
}
