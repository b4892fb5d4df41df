// Command fakeapns runs internal/fakeapns as a process of its own, for
// measurements that must not share a process with pushproxy (footprint,
// load): it registers one key, answers every request after a delay, writes
// its CA to a file and its URL to standard output, and runs until
// SIGTERM/SIGINT. -drain answers every new connection with GOAWAY (last
// stream 0, reason Shutdown) as a draining load balancer does; SIGUSR1
// turns that on and off while it runs. The connections accepted so far
// are printed on standard error whenever the count changes (at most once
// a second).
package main

import (
	"crypto/ecdsa"
	"flag"
	"fmt"
	"os"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/internal/fakecmd"
)

func main() {
	keyFile := flag.String("key", "", "the .p8 whose public half signs accepted tokens")
	keyID := flag.String("key-id", "", "its key ID")
	teamID := flag.String("team-id", "", "its team ID")
	topic := flag.String("topic", "com.example.app", "bundle ID")
	caOut := flag.String("ca-out", "", "write the CA certificate (PEM) here")
	addr := flag.String("addr", "", "listen address (default: a free loopback port)")
	delay := flag.Duration("delay", 0, "answer every request after this long")
	goAwayAfter := flag.Int("goaway-after", 0, "end every connection gracefully (GOAWAY) after this many streams, as APNs does; 0: never")
	drain := flag.Bool("drain", false, "answer every new connection with GOAWAY (last stream 0) and close it; SIGUSR1 toggles")
	flag.Parse()
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		fail(err)
	}
	key, err := creds.ParseP8(data)
	if err != nil {
		fail(err)
	}
	fake, err := fakeapns.New(fakeapns.Options{Addr: *addr, GoAwayAfter: *goAwayAfter, DrainNew: *drain})
	if err != nil {
		fail(err)
	}
	defer fake.Close()
	pub := key.Public().(*ecdsa.PublicKey)
	fake.AddKey(*teamID, *keyID, pub, *topic)
	if *delay > 0 {
		fake.SetDefault(&fakeapns.Response{Delay: *delay})
	}
	if *caOut != "" {
		if err := os.WriteFile(*caOut, fake.CAPEM(), 0o600); err != nil {
			fail(err)
		}
	}
	fmt.Println(fake.URL())
	fakecmd.Run("fakeapns", fake.Conns, func() bool {
		*drain = !*drain
		fake.SetDrainNew(*drain)
		return *drain
	}, nil)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fakeapns:", err)
	os.Exit(1)
}
