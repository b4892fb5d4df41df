package creds_test

import (
	"context"
	"fmt"
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

// noWait is how long a test waits to see that nothing is called: a few
// debounces of the watchers below.
const noWait = 250 * time.Millisecond

// expectCall waits for a call within d and says how long it took.
func expectCall(t *testing.T, reasons chan string, d time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-reasons:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("%s: no call within %v", what, d)
	}
	return 0
}

// expectNoCall checks that nothing is called for noWait (a negative
// cannot be waited for otherwise).
func expectNoCall(t *testing.T, reasons chan string, what string) {
	t.Helper()
	select {
	case r := <-reasons:
		t.Fatalf("%s: called (%s)", what, r)
	case <-time.After(noWait):
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// kubeletWrite publishes files in dir the way the kubelet's AtomicWriter
// does: a new ..<timestamp> directory, a ..data_tmp symlink to it renamed
// over ..data, visible names that are symlinks through ..data, the old
// directory removed. No event names a visible file.
func kubeletWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	ts := fmt.Sprintf("..%s.%d", time.Now().Format("2006_01_02_15_04_05"), time.Now().UnixNano())
	must(t, os.Mkdir(filepath.Join(dir, ts), 0o755))
	for name, data := range files {
		mustWrite(t, filepath.Join(dir, ts, name), data)
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	must(t, os.Symlink(ts, filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	for name := range files {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			must(t, os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)))
		}
	}
	if old != "" {
		must(t, os.RemoveAll(filepath.Join(dir, old)))
	}
}

// appender appends a line to path every interval until the test ends.
func appender(t *testing.T, path string, interval time.Duration) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err == nil {
				_, _ = f.WriteString("a log line\n")
				_ = f.Close()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// TestWatcherIgnoresIrrelevantEvents: what happens to names no watched
// file has (a log, an editor's swap and backup files, a temporary file
// renamed away, another directory, a name the glob does not match) calls
// nothing; the watcher is alive all the same.
func TestWatcherIgnoresIrrelevantEvents(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "config.yaml"), "a")
	var calls atomic.Int64
	reasons := make(chan string, 100)
	w := creds.NewWatcher([]string{filepath.Join(dir, "config.yaml"), filepath.Join(dir, "AuthKey_*.p8")}, 30*time.Millisecond, 0,
		func(r string) { calls.Add(1); reasons <- r }, nil)
	w.Open()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	for i := range 10 {
		f, err := os.OpenFile(filepath.Join(dir, "app.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		must(t, err)
		_, _ = fmt.Fprintf(f, "line %d\n", i)
		must(t, f.Close())
		mustWrite(t, filepath.Join(dir, ".config.yaml.swp"), "swap")
		mustWrite(t, filepath.Join(dir, "config.yaml~"), "backup")
		mustWrite(t, filepath.Join(dir, "config.yaml.tmp"), "x")
		must(t, os.Rename(filepath.Join(dir, "config.yaml.tmp"), filepath.Join(dir, "moved.tmp")))
		mustWrite(t, filepath.Join(dir, "AuthKey_ABC123DEFG.p8.bak"), "x")
		must(t, os.Chmod(filepath.Join(dir, "app.log"), 0o640))
		must(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
		mustWrite(t, filepath.Join(dir, "sub", "config.yaml"), "x")
		must(t, os.Remove(filepath.Join(dir, ".config.yaml.swp")))
		time.Sleep(10 * time.Millisecond)
	}
	expectNoCall(t, reasons, "irrelevant events")
	// Alive: a name the glob matches counts.
	mustWrite(t, filepath.Join(dir, "AuthKey_NEWKEY1234.p8"), "x")
	expectCall(t, reasons, 2*time.Second, "a new key file")
	if n := calls.Load(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// TestWatcherRelevantEvents: every way a watched file changes calls.
func TestWatcherRelevantEvents(t *testing.T) {
	const debounce = 30 * time.Millisecond
	for _, tc := range []struct {
		name string
		// setup runs before the watcher starts; it returns the watched
		// path and the change to make.
		setup func(t *testing.T, dir string) (string, func())
	}{
		{"created", func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "key.p8")
			return p, func() { mustWrite(t, p, "new") }
		}},
		{"truncate and write", func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "key.p8")
			mustWrite(t, p, "old")
			return p, func() {
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
				must(t, err)
				_, _ = f.WriteString("new")
				must(t, f.Close())
			}
		}},
		{"editor rename over", func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "key.p8")
			mustWrite(t, p, "old")
			return p, func() {
				mustWrite(t, filepath.Join(dir, ".key.p8.swp"), "new")
				must(t, os.Rename(filepath.Join(dir, ".key.p8.swp"), p))
			}
		}},
		{"editor backup rename", func(t *testing.T, dir string) (string, func()) {
			// vim with backupcopy=no: the file is renamed to a backup
			// name, a new one written.
			p := filepath.Join(dir, "key.p8")
			mustWrite(t, p, "old")
			return p, func() { must(t, os.Rename(p, p+"~")) }
		}},
		{"removed", func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "key.p8")
			mustWrite(t, p, "old")
			return p, func() { must(t, os.Remove(p)) }
		}},
		{"mode changed", func(t *testing.T, dir string) (string, func()) {
			p := filepath.Join(dir, "key.p8")
			mustWrite(t, p, "old")
			return p, func() { must(t, os.Chmod(p, 0o644)) }
		}},
		{"pattern in a directory part: the file in a matching directory rewritten", func(t *testing.T, dir string) (string, func()) {
			must(t, os.MkdirAll(filepath.Join(dir, "keys-2026"), 0o700))
			p := filepath.Join(dir, "keys-2026", "AuthKey_ABC123DEFG.p8")
			mustWrite(t, p, "old")
			return filepath.Join(dir, "keys-*", "AuthKey_ABC123DEFG.p8"), func() {
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
				must(t, err)
				_, _ = f.WriteString("new")
				must(t, f.Close())
			}
		}},
		{"pattern in a directory part: a new matching directory", func(t *testing.T, dir string) (string, func()) {
			return filepath.Join(dir, "keys-*", "AuthKey_ABC123DEFG.p8"), func() {
				must(t, os.MkdirAll(filepath.Join(dir, "keys-2027"), 0o700))
				mustWrite(t, filepath.Join(dir, "keys-2027", "AuthKey_ABC123DEFG.p8"), "new")
			}
		}},
		{"glob match created", func(t *testing.T, dir string) (string, func()) {
			return filepath.Join(dir, "AuthKey_*.p8"), func() { mustWrite(t, filepath.Join(dir, "AuthKey_NEWKEY1234.p8"), "new") }
		}},
		{"kubelet swap", func(t *testing.T, dir string) (string, func()) {
			kubeletWrite(t, dir, map[string]string{"key.p8": "old"})
			return filepath.Join(dir, "key.p8"), func() { kubeletWrite(t, dir, map[string]string{"key.p8": "new"}) }
		}},
		{"kubelet swap with a glob and a new name", func(t *testing.T, dir string) (string, func()) {
			kubeletWrite(t, dir, map[string]string{"AuthKey_ABC123DEFG.p8": "old"})
			return filepath.Join(dir, "AuthKey_*.p8"), func() { kubeletWrite(t, dir, map[string]string{"AuthKey_NEWKEY1234.p8": "new"}) }
		}},
		{"directory removed", func(t *testing.T, dir string) (string, func()) {
			sub := filepath.Join(dir, "secrets")
			must(t, os.Mkdir(sub, 0o755))
			mustWrite(t, filepath.Join(sub, "key.p8"), "old")
			return filepath.Join(sub, "key.p8"), func() { must(t, os.RemoveAll(sub)) }
		}},
		{"directory appears", func(t *testing.T, dir string) (string, func()) {
			sub := filepath.Join(dir, "secrets", "apns")
			return filepath.Join(sub, "key.p8"), func() { must(t, os.MkdirAll(sub, 0o755)) }
		}},
		{"symlinked directory swapped", func(t *testing.T, dir string) (string, func()) {
			for _, d := range []string{"v1", "v2"} {
				must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
				mustWrite(t, filepath.Join(dir, d, "key.p8"), d)
			}
			must(t, os.Symlink("v1", filepath.Join(dir, "current")))
			return filepath.Join(dir, "current", "key.p8"), func() {
				must(t, os.Symlink("v2", filepath.Join(dir, "current.tmp")))
				must(t, os.Rename(filepath.Join(dir, "current.tmp"), filepath.Join(dir, "current")))
			}
		}},
		{"symlink target replaced in another directory", func(t *testing.T, dir string) (string, func()) {
			must(t, os.Mkdir(filepath.Join(dir, "store"), 0o755))
			must(t, os.Mkdir(filepath.Join(dir, "etc"), 0o755))
			mustWrite(t, filepath.Join(dir, "store", "real.p8"), "old")
			must(t, os.Symlink("../store/real.p8", filepath.Join(dir, "etc", "key.p8")))
			return filepath.Join(dir, "etc", "key.p8"), func() {
				mustWrite(t, filepath.Join(dir, "store", "tmp"), "new")
				must(t, os.Rename(filepath.Join(dir, "store", "tmp"), filepath.Join(dir, "store", "real.p8")))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, change := tc.setup(t, dir)
			// Noise beside the file all along.
			appender(t, filepath.Join(dir, "app.log"), 10*time.Millisecond)
			_, _, reasons := runWatcher(t, path, debounce, 0)
			change()
			if r := waitReason(t, reasons); r != "file event" {
				t.Errorf("reason %q", r)
			}
		})
	}
}

// TestWatcherFollowsMovedWatches: after a directory disappears and comes
// back, or a symlinked directory is swapped, the watches are where the
// files now are: changes there call, changes in the old target do not.
func TestWatcherFollowsMovedWatches(t *testing.T) {
	t.Run("directory re-created", func(t *testing.T) {
		sub := filepath.Join(t.TempDir(), "secrets")
		must(t, os.Mkdir(sub, 0o755))
		path := filepath.Join(sub, "key.p8")
		_, _, reasons := runWatcher(t, path, 30*time.Millisecond, 0)
		must(t, os.RemoveAll(sub))
		expectCall(t, reasons, 2*time.Second, "directory removed")
		must(t, os.Mkdir(sub, 0o755))
		expectCall(t, reasons, 2*time.Second, "directory re-created")
		mustWrite(t, path, "new")
		expectCall(t, reasons, 2*time.Second, "file written in the re-created directory")
	})
	t.Run("symlinked directory swapped", func(t *testing.T) {
		dir := t.TempDir()
		for _, d := range []string{"v1", "v2"} {
			must(t, os.Mkdir(filepath.Join(dir, d), 0o755))
			mustWrite(t, filepath.Join(dir, d, "key.p8"), d)
		}
		must(t, os.Symlink("v1", filepath.Join(dir, "current")))
		_, _, reasons := runWatcher(t, filepath.Join(dir, "current", "key.p8"), 30*time.Millisecond, 0)
		mustWrite(t, filepath.Join(dir, "v1", "key.p8"), "v1 changed")
		expectCall(t, reasons, 2*time.Second, "the file in the link's target written")
		must(t, os.Symlink("v2", filepath.Join(dir, "current.tmp")))
		must(t, os.Rename(filepath.Join(dir, "current.tmp"), filepath.Join(dir, "current")))
		expectCall(t, reasons, 2*time.Second, "the link swapped")
		mustWrite(t, filepath.Join(dir, "v2", "key.p8"), "v2 changed")
		expectCall(t, reasons, 2*time.Second, "the file in the new target written")
		mustWrite(t, filepath.Join(dir, "v1", "key.p8"), "old target changed")
		expectNoCall(t, reasons, "the file in the old target written")
	})
	t.Run("SetPaths", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		w, _, reasons := runWatcher(t, filepath.Join(a, "key.p8"), 30*time.Millisecond, 0)
		w.SetPaths([]string{filepath.Join(b, "key.p8")})
		mustWrite(t, filepath.Join(a, "key.p8"), "x")
		expectNoCall(t, reasons, "a file no longer watched")
		mustWrite(t, filepath.Join(b, "key.p8"), "x")
		expectCall(t, reasons, 2*time.Second, "the file now watched")
	})
}

// TestWatcherBusyDirectory: a log appended to every 20 ms beside the file
// does not delay a change beyond the debounce; and a file that is itself
// written without a pause (a directory that never goes quiet) is still
// re-read within about MaxReloadDelay, and again about every
// MaxReloadDelay while it lasts, not at every event.
func TestWatcherBusyDirectory(t *testing.T) {
	const debounce = 200 * time.Millisecond
	slack := 400 * time.Millisecond
	dir := t.TempDir()
	path := filepath.Join(dir, "key.p8")
	mustWrite(t, path, "old")
	appender(t, filepath.Join(dir, "app.log"), 20*time.Millisecond)
	_, calls, reasons := runWatcher(t, path, debounce, 0)

	mustWrite(t, path, "new")
	if took := expectCall(t, reasons, 5*time.Second, "a change beside a busy log"); took > debounce+slack {
		t.Errorf("a change beside a busy log called after %v, want about the debounce (%v)", took, debounce)
	} else {
		t.Logf("a change beside a busy log: called after %v", took)
	}

	// Now the file itself never goes quiet: an event every 20 ms, far
	// within the debounce.
	start := time.Now()
	appender(t, path, 20*time.Millisecond)
	for i := range 3 {
		took := expectCall(t, reasons, 5*time.Second, "a never-quiet file")
		t.Logf("never-quiet file: call %d after %v", i+1, time.Since(start))
		if took > creds.MaxReloadDelay+slack {
			t.Errorf("call %d came %v after the previous one, want at most about %v", i+1, took, creds.MaxReloadDelay)
		}
		start = time.Now()
	}
	if n := calls.Load(); n > 5 {
		t.Errorf("%d calls in about 3 s of continuous writes: the ceiling should allow about one a second", n)
	}
}
