package creds

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher calls a function, debounced, whenever something may have changed
// in the directories of a set of files: a watch on a file itself dies when
// the file is replaced (editors rename over it; Kubernetes swaps a ..data
// symlink and no event ever names the file), so the directories are
// watched and every event counts. A periodic re-check catches filesystems
// without events (NFS, some overlay mounts), and Trigger forces one
// (SIGHUP). What changed is decided by the callee, by content.
type Watcher struct {
	debounce time.Duration
	poll     time.Duration
	fn       func(reason string)
	log      *slog.Logger

	fsw     *fsnotify.Watcher // nil if inotify is unavailable
	trigger chan string

	mu      sync.Mutex
	opened  bool
	dirs    []string // directories wanted
	watched map[string]bool
}

// NewWatcher watches the directories of paths. fn runs on the Run
// goroutine, never concurrently with itself.
func NewWatcher(paths []string, debounce, poll time.Duration, fn func(reason string), log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{debounce: debounce, poll: poll, fn: fn, log: log, trigger: make(chan string, 1), watched: map[string]bool{}}
	w.SetPaths(paths)
	return w
}

// SetPaths changes the set of files (after a configuration change).
func (w *Watcher) SetPaths(paths []string) {
	var dirs []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		d := filepath.Dir(p)
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	w.mu.Lock()
	w.dirs = dirs
	w.mu.Unlock()
	w.sync()
}

// sync adds watches for wanted directories (retrying ones that did not
// exist yet) and drops the others.
func (w *Watcher) sync() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fsw == nil {
		return
	}
	for d := range w.watched {
		if !slices.Contains(w.dirs, d) {
			_ = w.fsw.Remove(d)
			delete(w.watched, d)
		}
	}
	for _, d := range w.dirs {
		if w.watched[d] {
			continue
		}
		if err := w.fsw.Add(d); err != nil {
			w.log.Debug("cannot watch directory yet; polling", "dir", d, "error", err.Error())
			continue
		}
		w.watched[d] = true
	}
}

// Trigger asks for a re-check now (SIGHUP).
func (w *Watcher) Trigger(reason string) {
	select {
	case w.trigger <- reason:
	default:
	}
}

// Open starts watching the directories (Run calls it if the caller did
// not): a caller that must not miss a change made right after start-up
// calls it first.
func (w *Watcher) Open() {
	w.mu.Lock()
	if w.fsw != nil || w.opened {
		w.mu.Unlock()
		return
	}
	w.opened = true
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		w.mu.Unlock()
		w.log.Warn("file events unavailable; files are re-read every poll_interval only", "error", err.Error())
		return
	}
	w.fsw = fsw
	clear(w.watched)
	w.mu.Unlock()
	w.sync()
}

// Run delivers debounced events, polls and triggers until ctx ends. The
// file watches exist only until it returns.
func (w *Watcher) Run(ctx context.Context) {
	w.Open()
	var events <-chan fsnotify.Event
	var errs <-chan error
	w.mu.Lock()
	fsw := w.fsw
	w.mu.Unlock()
	if fsw != nil {
		defer func() {
			w.mu.Lock()
			w.fsw = nil
			w.mu.Unlock()
			fsw.Close()
		}()
		events, errs = fsw.Events, fsw.Errors
	}
	var pollC <-chan time.Time
	if w.poll > 0 {
		t := time.NewTicker(w.poll)
		defer t.Stop()
		pollC = t.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			// A burst (kubelet swap, editor save, truncate + write) becomes
			// one re-read once it has been quiet for the debounce.
			debounce.Reset(w.debounce)
			pending = true
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.log.Warn("file watch error; relying on the periodic re-check", "error", err.Error())
		case <-debounce.C:
			if pending {
				pending = false
				w.fn("file event")
			}
		case <-pollC:
			w.sync() // directories that appeared since
			w.fn("poll")
		case r := <-w.trigger:
			w.fn(r)
		}
	}
}
