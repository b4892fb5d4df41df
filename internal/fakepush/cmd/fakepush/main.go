// Command fakepush runs internal/fakepush as a process of its own, for
// measurements that must not share a process with pushproxy or the load
// client: it makes one subscription for a VAPID key (a web-push JSON file),
// writes the subscription ({endpoint, keys}) and its CA to files, prints its
// URL on standard output, and runs until SIGTERM/SIGINT. It forgets the
// requests it records every second, so a long run does not grow it.
//
// To try pushproxy against a push service in trouble from outside:
// -goaway-after N ends every HTTP/2 connection gracefully after N streams,
// -reset-after N drops it (TCP RST) at its Nth stream, -drain answers every
// new connection with GOAWAY (last stream 0) and closes it; SIGUSR1 turns
// draining on and off while it runs. The connections accepted so far are
// printed on standard error whenever the count changes (at most once a
// second).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/pushproxy/pushproxy/internal/fakecmd"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/internal/h2trouble"
)

func main() {
	vapidFile := flag.String("vapid", "", "the VAPID key file (web-push JSON {publicKey, privateKey}) subscriptions are made with")
	subOut := flag.String("sub-out", "", "write the subscription JSON ({endpoint, keys}) here")
	caOut := flag.String("ca-out", "", "write the CA certificate (PEM) here")
	addr := flag.String("addr", "", "listen address (default: a free loopback port)")
	goAwayAfter := flag.Int("goaway-after", 0, "end every HTTP/2 connection gracefully (GOAWAY) after this many streams; 0: never")
	resetAfter := flag.Int("reset-after", 0, "drop every HTTP/2 connection (TCP RST) at this stream; 0: never")
	drain := flag.Bool("drain", false, "answer every new HTTP/2 connection with GOAWAY (last stream 0) and close it; SIGUSR1 toggles")
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
	trouble := h2trouble.Trouble{GoAwayAfter: *goAwayAfter, ResetAfter: *resetAfter, DrainNew: *drain}
	fake, err := fakepush.New(fakepush.Options{Addr: *addr, Trouble: trouble})
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
	fakecmd.Run("fakepush", fake.Conns, func() bool {
		trouble.DrainNew = !trouble.DrainNew
		fake.SetTrouble(trouble)
		return trouble.DrainNew
	}, fake.Reset)
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
