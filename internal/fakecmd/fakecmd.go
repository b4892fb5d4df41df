// Package fakecmd is the run loop the fakes' commands share
// (internal/fakeapns/cmd/fakeapns, internal/fakepush/cmd/fakepush): it
// waits for SIGTERM or SIGINT, turns draining on and off on SIGUSR1, and
// prints the connection count on standard error when it changes.
package fakecmd

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Run returns on SIGTERM or SIGINT. On SIGUSR1 it calls toggleDrain and
// prints the draining state it returns; once a second it calls every (if
// set) and prints conns() when it changed. name prefixes what it prints.
func Run(name string, conns func() int, toggleDrain func() bool, every func()) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr1:
			fmt.Fprintln(os.Stderr, name+": drain", toggleDrain())
		case <-tick.C:
			if every != nil {
				every()
			}
			if n := conns(); n != last {
				last = n
				fmt.Fprintln(os.Stderr, name+": connections", n)
			}
		}
	}
}
