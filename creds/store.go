package creds

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// APNsSpec is one configured APNs credential.
type APNsSpec struct {
	Name        string
	KeyFile     string
	KeyID       string // "" → taken from the file name AuthKey_<KEYID>.p8
	TeamID      string
	Topics      []string
	Environment string // production | development | auto
}

// Spec is the set of credential files a Store loads.
type Spec struct {
	APNs          []APNsSpec
	AuthTokenFile string // "" → no bearer token required
}

// State of a credential in a snapshot.
const (
	StateOK       = "ok"       // loaded, and the last load succeeded
	StateDegraded = "degraded" // a good key is in use, but the last reload failed
	StateMissing  = "missing"  // no usable key has ever been loaded
)

// APNsCredential is one APNs credential in a snapshot. It never changes
// once published; a reload publishes a new one.
type APNsCredential struct {
	Spec        APNsSpec // KeyID resolved
	Key         *ecdsa.PrivateKey
	Tokens      *TokenSource // nil when Key is nil
	Fingerprint string       // of the public key; "" when missing
	LoadedAt    time.Time    // when the key in use was read
	State       string
	LastError   string // of the latest load attempt; "" when it succeeded
	LastErrorAt time.Time
}

// Usable reports whether the credential can sign.
func (c *APNsCredential) Usable() bool { return c != nil && c.Key != nil }

// Snapshot is an immutable view of all credentials.
type Snapshot struct {
	APNs      []*APNsCredential // configuration order
	AuthToken []byte            // trimmed; nil when not required
	AuthError string            // load error of the auth token file
	Generated time.Time
}

// APNsByName returns the credential with this name.
func (s *Snapshot) APNsByName(name string) *APNsCredential {
	for _, c := range s.APNs {
		if c.Spec.Name == name {
			return c
		}
	}
	return nil
}

// APNsForTopic picks the credential for a topic: the first that lists the
// topic (or the topic without a push-type suffix), else the first with no
// topic list (a catch-all). With topic "" it is the first credential.
func (s *Snapshot) APNsForTopic(topic string) *APNsCredential {
	if topic == "" {
		if len(s.APNs) == 0 {
			return nil
		}
		return s.APNs[0]
	}
	for _, c := range s.APNs {
		for _, t := range c.Spec.Topics {
			if t == topic || strings.HasPrefix(topic, t+".") {
				return c
			}
		}
	}
	for _, c := range s.APNs {
		if len(c.Spec.Topics) == 0 {
			return c
		}
	}
	return nil
}

// Options tune a Store.
type Options struct {
	Now      func() time.Time
	Logger   *slog.Logger
	OnSign   func(kind string)   // a token was signed ("apns")
	OnReload func(result string) // "ok" | "error" per reload that changed or failed something
}

// Store holds the current Snapshot and reloads it from the files.
type Store struct {
	spec Spec
	opts Options

	mu      sync.Mutex // serialises reloads
	sources map[string]*TokenSource
	cur     atomic.Pointer[Snapshot]
}

// NewStore loads every file once. A file that is missing or invalid is not
// fatal: its credential is published as missing and retried on Reload.
func NewStore(spec Spec, opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{spec: spec, opts: opts, sources: map[string]*TokenSource{}}
	s.Reload()
	return s
}

// Snapshot returns the current snapshot; callers keep it for the whole
// request so one request sees one consistent set of credentials.
func (s *Store) Snapshot() *Snapshot { return s.cur.Load() }

// Reload re-reads every file. A credential whose file fails keeps its last
// good key. It reports whether anything changed.
func (s *Store) Reload() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.cur.Load()
	now := s.opts.Now()
	next := &Snapshot{Generated: now}
	changed, failed := prev == nil, false
	for i, spec := range s.spec.APNs {
		var old *APNsCredential
		if prev != nil {
			old = prev.APNs[i]
		}
		c, err := s.loadAPNs(spec, old, now)
		if err != nil {
			failed = true
			if old == nil || old.LastError != c.LastError {
				s.opts.Logger.Error("apns credential failed to load; keeping the last good key",
					"credential", spec.Name, "file", spec.KeyFile, "error", c.LastError, "state", c.State)
			}
		} else if old == nil || old.Fingerprint != c.Fingerprint || old.State != StateOK {
			changed = true
			s.opts.Logger.Info("apns credential loaded", "credential", spec.Name, "file", spec.KeyFile,
				"key_id", c.Spec.KeyID, "team_id", c.Spec.TeamID, "fingerprint", c.Fingerprint)
		}
		next.APNs = append(next.APNs, c)
	}
	if s.spec.AuthTokenFile != "" {
		tok, err := readAuthToken(s.spec.AuthTokenFile)
		switch {
		case err == nil:
			next.AuthToken = tok
			if prev == nil || !bytes.Equal(prev.AuthToken, tok) {
				changed = true
			}
		case prev != nil && prev.AuthToken != nil:
			next.AuthToken, next.AuthError, failed = prev.AuthToken, err.Error(), true
		default:
			// Fail closed: with no readable token, every caller is refused.
			next.AuthToken, next.AuthError, failed = nil, err.Error(), true
			s.opts.Logger.Error("auth token file failed to load; the local API refuses every caller until it is fixed",
				"file", s.spec.AuthTokenFile, "error", err.Error())
		}
	}
	if !changed && !failed && prev != nil && equalStates(prev, next) {
		return false
	}
	s.cur.Store(next)
	if s.opts.OnReload != nil {
		switch {
		case failed:
			s.opts.OnReload("error")
		case changed:
			s.opts.OnReload("ok")
		}
	}
	return changed
}

func equalStates(a, b *Snapshot) bool {
	if len(a.APNs) != len(b.APNs) || a.AuthError != b.AuthError {
		return false
	}
	for i := range a.APNs {
		if a.APNs[i].State != b.APNs[i].State || a.APNs[i].Fingerprint != b.APNs[i].Fingerprint {
			return false
		}
	}
	return true
}

// loadAPNs reads one credential. On failure it returns the old key (if
// any) with the error recorded, and the error.
func (s *Store) loadAPNs(spec APNsSpec, old *APNsCredential, now time.Time) (*APNsCredential, error) {
	key, resolved, err := LoadAPNsKey(spec)
	if err != nil {
		c := &APNsCredential{Spec: resolved, State: StateMissing, LastError: err.Error(), LastErrorAt: now}
		if old.Usable() {
			c.Spec, c.Key, c.Tokens, c.Fingerprint, c.LoadedAt = old.Spec, old.Key, old.Tokens, old.Fingerprint, old.LoadedAt
			c.State = StateDegraded
		}
		return c, err
	}
	fp := PublicFingerprint(&key.PublicKey)
	if old.Usable() && old.Fingerprint == fp && old.Spec.KeyID == resolved.KeyID && old.Spec.TeamID == resolved.TeamID {
		// Same key: keep the object and its loaded-at time.
		c := *old
		c.Spec, c.State, c.LastError, c.LastErrorAt = resolved, StateOK, "", time.Time{}
		return &c, nil
	}
	srcKey := fp + "/" + resolved.KeyID + "/" + resolved.TeamID
	ts := s.sources[srcKey]
	if ts == nil {
		var onSign func()
		if s.opts.OnSign != nil {
			onSign = func() { s.opts.OnSign("apns") }
		}
		ts = NewTokenSource(resolved.KeyID, resolved.TeamID, key, s.opts.Now, onSign)
		s.sources[srcKey] = ts
	}
	return &APNsCredential{Spec: resolved, Key: key, Tokens: ts, Fingerprint: fp, LoadedAt: now, State: StateOK}, nil
}

// LoadAPNsKey reads and validates one APNs credential file and returns the
// key and the spec with its key ID resolved.
func LoadAPNsKey(spec APNsSpec) (*ecdsa.PrivateKey, APNsSpec, error) {
	if spec.KeyID == "" {
		spec.KeyID = KeyIDFromFileName(spec.KeyFile)
		if spec.KeyID == "" {
			return nil, spec, fmt.Errorf("key_id is not set and the file name %q is not AuthKey_<KEYID>.p8", spec.KeyFile)
		}
	}
	if err := ValidID("key_id", spec.KeyID); err != nil {
		return nil, spec, err
	}
	if err := ValidID("team_id", spec.TeamID); err != nil {
		return nil, spec, err
	}
	data, err := os.ReadFile(spec.KeyFile)
	if err != nil {
		return nil, spec, fmt.Errorf("reading key file: %w", err)
	}
	key, err := ParseP8(data)
	if err != nil {
		return nil, spec, fmt.Errorf("key file %s: %w", spec.KeyFile, err)
	}
	return key, spec, nil
}

func readAuthToken(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading auth token file: %w", err)
	}
	tok := bytes.TrimSpace(data)
	if len(tok) == 0 {
		return nil, fmt.Errorf("auth token file %s is empty", path)
	}
	return tok, nil
}

// Run re-checks the files every interval until ctx ends. (File-event
// watching builds on this; the periodic re-check stays for filesystems
// without events.)
func (s *Store) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Reload()
		}
	}
}

// Names returns the configured APNs credential names.
func (s *Snapshot) Names() []string {
	var out []string
	for _, c := range s.APNs {
		out = append(out, c.Spec.Name)
	}
	return slices.Clip(out)
}
