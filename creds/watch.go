package creds

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// MaxReloadDelay is the ceiling of the debounce: however busy the watched
// directories are, a change is re-read at most this long (or the debounce,
// if that is longer) after the first event that announced it.
const MaxReloadDelay = time.Second

// maxLinks bounds the symlinks followed while resolving one path.
const maxLinks = 40

// Watcher calls a function, debounced, whenever something may have changed
// in one of a set of files.
//
// A watch on a file itself dies when the file is replaced (editors rename
// over it; Kubernetes swaps a ..data symlink and no event ever names the
// file), so the directories are watched, and an event counts only if its
// name can matter:
//   - the base name of a watched file, or a name its glob matches
//     (filepath.Match), whatever happened to it: created, renamed onto
//     (an editor's save), written (truncate and write), removed, its mode
//     changed. An editor's temporary file does not count; its rename onto
//     the name does;
//   - any name starting with ".." (the kubelet's ..data, ..data_tmp and
//     ..<timestamp> entries);
//   - a watched directory itself appearing, disappearing or moving;
//   - every symlink on the way to a file: each path is resolved one
//     component at a time and the directories holding its symlinks are
//     watched for the link's name, so swapping a symlinked directory (or a
//     file that is a symlink into another directory) is seen, and the
//     watches move to the new target. A directory that does not exist yet
//     is watched for in its deepest existing ancestor. The kubelet's
//     ..<timestamp> directories are not watched: the ..data swap beside
//     them is.
//
// Anything else (a log appended to beside the configuration, a busy shared
// mount) is ignored. A burst of relevant events becomes one call once the
// directories have been quiet for the debounce, and at the latest
// max(debounce, MaxReloadDelay) after the first event of the burst, so a
// directory that never goes quiet cannot starve a reload. A lost event
// (inotify queue overflow) counts as a relevant one.
//
// A periodic re-check catches filesystems without events (NFS, some
// overlay mounts) and re-adds watches, and Trigger forces one (SIGHUP).
// What changed is decided by the callee, by content.
type Watcher struct {
	debounce time.Duration
	poll     time.Duration
	fn       func(reason string)
	log      *slog.Logger

	fsw     *fsnotify.Watcher // nil if inotify is unavailable
	trigger chan string

	mu      sync.Mutex
	opened  bool
	paths   []string
	names   map[string][]string    // directory → names (or globs) whose events matter there
	watched map[string]os.FileInfo // directories with a watch, as they were when it was added
}

// NewWatcher watches the files (or globs) paths. fn runs on the Run
// goroutine, never concurrently with itself.
func NewWatcher(paths []string, debounce, poll time.Duration, fn func(reason string), log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{debounce: debounce, poll: poll, fn: fn, log: log, trigger: make(chan string, 1), watched: map[string]os.FileInfo{}}
	w.SetPaths(paths)
	return w
}

// SetPaths changes the set of files (after a configuration change).
func (w *Watcher) SetPaths(paths []string) {
	paths = slices.DeleteFunc(slices.Clone(paths), func(p string) bool { return p == "" })
	w.mu.Lock()
	w.paths = paths
	w.mu.Unlock()
	w.sync()
}

// point is a name, or a glob of names, in a directory whose events matter.
type point struct{ dir, name string }

// watchPoints lists where a change to the file (or glob) p can show: see
// the Watcher's doc.
func watchPoints(p string) []point {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = filepath.Clean(p)
	}
	var pts []point
	add := func(path string) {
		if real, ok := walk(path, &pts); ok {
			pts = append(pts, point{filepath.Dir(real), filepath.Base(real)})
		}
	}
	dirPattern, base := filepath.Dir(abs), filepath.Base(abs)
	dirs := []string{dirPattern}
	if strings.ContainsAny(dirPattern, "*?[") {
		// A pattern in a directory part (key_file: /secrets/keys-*/k.p8):
		// its first patterned component is watched by name in its parent,
		// so that a new match is seen, and every directory matching now is
		// watched like a plain one.
		sep := string(filepath.Separator)
		comps := strings.Split(dirPattern, sep)
		for i, c := range comps {
			if strings.ContainsAny(c, "*?[") {
				parent := strings.Join(comps[:i], sep)
				if parent == "" {
					parent = sep
				}
				if parent, ok := walk(parent, &pts); ok {
					pts = append(pts, point{parent, c})
				}
				break
			}
		}
		dirs, _ = filepath.Glob(dirPattern)
	}
	for _, d := range dirs {
		if !strings.ContainsAny(base, "*?[") {
			add(filepath.Join(d, base))
			continue
		}
		if dir, ok := walk(d, &pts); ok {
			pts = append(pts, point{dir, base})
			matches, _ := filepath.Glob(filepath.Join(dir, base))
			for _, m := range matches {
				add(m)
			}
		}
	}
	return slices.DeleteFunc(pts, func(pt point) bool { return strings.HasPrefix(filepath.Base(pt.dir), "..") })
}

// walk resolves the absolute path like filepath.EvalSymlinks, one component
// at a time, adding to pts every symlink it goes through (the link's name
// in its real directory). When a component does not exist, it adds that
// name in the deepest existing directory and reports false.
func walk(path string, pts *[]point) (string, bool) {
	sep := string(filepath.Separator)
	vol := filepath.VolumeName(path)
	cur := vol + sep
	todo := strings.Split(path[len(vol):], sep)
	for links := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil {
			*pts = append(*pts, point{cur, c})
			return "", false
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		*pts = append(*pts, point{cur, c})
		target, err := os.Readlink(next)
		if links++; err != nil || links > maxLinks {
			return "", false
		}
		if filepath.IsAbs(target) {
			tv := filepath.VolumeName(target)
			cur, target = tv+sep, target[len(tv):]
		}
		todo = append(strings.Split(target, sep), todo...)
	}
	return cur, true
}

// sync works out which names matter in which directories, adds watches for
// them (again, for a directory replaced since) and drops the others.
func (w *Watcher) sync() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fsw == nil {
		return
	}
	names := map[string][]string{}
	for _, p := range w.paths {
		for _, pt := range watchPoints(p) {
			if !slices.Contains(names[pt.dir], pt.name) {
				names[pt.dir] = append(names[pt.dir], pt.name)
			}
		}
	}
	w.names = names
	for d, was := range w.watched {
		_, want := names[d]
		st, err := os.Stat(d)
		if !want || err != nil || !os.SameFile(was, st) {
			_ = w.fsw.Remove(d)
			delete(w.watched, d)
		}
	}
	for d := range names {
		if _, ok := w.watched[d]; ok {
			continue
		}
		st, err := os.Stat(d)
		if err == nil && !st.IsDir() {
			err = errors.New("not a directory")
		}
		if err == nil {
			err = w.fsw.Add(d)
		}
		if err != nil {
			w.log.Debug("cannot watch directory yet; polling", "dir", d, "error", err.Error())
			continue
		}
		w.watched[d] = st
	}
}

// relevant reports whether an event can be about a watched file.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.names[name]; ok {
		// A watched directory itself. Removed or moved away, its watch is
		// gone (fsnotify drops it): sync adds it again once it is back.
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			delete(w.watched, name)
		}
		return true
	}
	pats, ok := w.names[filepath.Dir(name)]
	if !ok {
		return false
	}
	base := filepath.Base(name)
	if strings.HasPrefix(base, "..") {
		return true
	}
	for _, p := range pats {
		if m, _ := filepath.Match(p, base); m {
			return true
		}
	}
	return false
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
			clear(w.watched)
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
	// quiet fires once no relevant event came for the debounce; ceiling
	// fires max(debounce, MaxReloadDelay) after the first one of a burst.
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	defer quiet.Stop()
	ceiling := time.NewTimer(time.Hour)
	ceiling.Stop()
	defer ceiling.Stop()
	pending := false
	arm := func() {
		if !pending {
			pending = true
			ceiling.Reset(max(w.debounce, MaxReloadDelay))
		}
		quiet.Reset(w.debounce)
	}
	// call re-reads, once the watches follow swapped symlinks and
	// directories that appeared (a change made after that has an event).
	call := func(reason string) {
		w.sync()
		w.fn(reason)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if w.relevant(ev) {
				arm()
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Warn("file events were lost; re-reading", "error", err.Error())
				arm()
				continue
			}
			w.log.Warn("file watch error; relying on the periodic re-check", "error", err.Error())
		case <-quiet.C:
			if pending {
				pending = false
				ceiling.Stop()
				call("file event")
			}
		case <-ceiling.C:
			if pending {
				pending = false
				quiet.Stop()
				w.log.Debug("watched directories never quiet; re-reading at the debounce ceiling")
				call("file event")
			}
		case <-pollC:
			call("poll")
		case r := <-w.trigger:
			call(r)
		}
	}
}
