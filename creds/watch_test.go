package creds_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
)

// runWatcher runs a Watcher over path until the test ends and counts calls.
func runWatcher(t *testing.T, path string, debounce, poll time.Duration) (*creds.Watcher, *atomic.Int64, chan string) {
	t.Helper()
	var calls atomic.Int64
	reasons := make(chan string, 100)
	w := creds.NewWatcher([]string{path}, debounce, poll, func(r string) {
		calls.Add(1)
		reasons <- r
	}, nil)
	w.Open()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return w, &calls, reasons
}

func waitReason(t *testing.T, reasons chan string) string {
	t.Helper()
	select {
	case r := <-reasons:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no call")
	}
	return ""
}

// TestWatcherDebouncesBursts: a burst of changes in the watched directory
// (here a truncate and several writes) becomes one call.
func TestWatcherDebouncesBursts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.p8")
	_, calls, reasons := runWatcher(t, path, 150*time.Millisecond, 0)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := f.WriteString("part\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.Close()
	if r := waitReason(t, reasons); r != "file event" {
		t.Errorf("reason %q", r)
	}
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls for one burst, want 1", n)
	}
}

// TestWatcherPollsAndTriggers: without events the periodic re-check calls,
// and Trigger (SIGHUP) calls at once.
func TestWatcherPollsAndTriggers(t *testing.T) {
	dir := t.TempDir()
	w, _, reasons := runWatcher(t, filepath.Join(dir, "key.p8"), time.Hour, 20*time.Millisecond)
	if r := waitReason(t, reasons); r != "poll" {
		t.Errorf("reason %q, want poll", r)
	}
	w.Trigger("SIGHUP")
	for {
		if r := waitReason(t, reasons); r == "SIGHUP" {
			break
		}
	}
}

// TestWatcherLateDirectory: a directory that does not exist at start is
// watched once it appears (picked up by the next poll).
func TestWatcherLateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	_, _, reasons := runWatcher(t, filepath.Join(dir, "key.p8"), 20*time.Millisecond, 50*time.Millisecond)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	waitReason(t, reasons) // a poll, which adds the watch
	time.Sleep(20 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "key.p8"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for {
		if r := waitReason(t, reasons); r == "file event" {
			return
		}
	}
}
