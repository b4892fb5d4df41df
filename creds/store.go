package creds

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

// VAPIDSpec is one configured VAPID key file.
type VAPIDSpec struct {
	Name string
	File string
}

// Spec is the set of credential files a Store loads.
type Spec struct {
	APNs         []APNsSpec
	VAPID        []VAPIDSpec // first = primary
	VAPIDSubject string      // mailto: or https: (checked by ValidateSubject)
	FCM          []FCMSpec   // first = the default (to.fcm.credential absent)
	// FCMTokenURL, if set, replaces every service-account file's token_uri
	// (upstream.fcm_token_url; https).
	FCMTokenURL   string
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
	File        string   // the file read (KeyFile, or the one file its glob matched)
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

// VAPIDCredential is one VAPID key in a snapshot; immutable once published.
type VAPIDCredential struct {
	Spec        VAPIDSpec
	Key         *VAPIDKey
	Signer      *VAPIDSigner // nil when Key is nil
	Fingerprint string
	LoadedAt    time.Time
	State       string
	LastError   string
	LastErrorAt time.Time
}

// Usable reports whether the key can sign.
func (c *VAPIDCredential) Usable() bool { return c != nil && c.Key != nil && c.Signer != nil }

// Snapshot is an immutable view of all credentials.
type Snapshot struct {
	APNs      []*APNsCredential  // configuration order
	VAPID     []*VAPIDCredential // configuration order: first = primary
	FCM       []*FCMCredential   // configuration order: first = default
	AuthToken []byte             // trimmed; nil when not required
	AuthError string             // load error of the auth token file
	Generated time.Time
}

// VAPIDByName returns the VAPID key with this name.
func (s *Snapshot) VAPIDByName(name string) *VAPIDCredential {
	for _, c := range s.VAPID {
		if c.Spec.Name == name {
			return c
		}
	}
	return nil
}

// FCMByName returns the FCM credential with this name.
func (s *Snapshot) FCMByName(name string) *FCMCredential {
	for _, c := range s.FCM {
		if c.Spec.Name == name {
			return c
		}
	}
	return nil
}

// FCMNames returns the configured FCM credential names.
func (s *Snapshot) FCMNames() []string {
	var out []string
	for _, c := range s.FCM {
		out = append(out, c.Spec.Name)
	}
	return slices.Clip(out)
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
	OnSign   func(kind string)   // a token was signed ("apns", "vapid"; "fcm": an assertion sent for an access token)
	OnReload func(result string) // "ok" | "error" per reload that changed or failed something
	// RootCAs are the roots trusted for FCM token endpoints (system +
	// upstream.ca_file); nil means the system's. SetRootCAs changes them.
	RootCAs *x509.CertPool
	// NoFCMWarm turns off fetching a new FCM token source's first access
	// token right after it loads (in the background): then the first
	// notification waits for it.
	NoFCMWarm bool
}

// Store holds the current Snapshot and reloads it from the files.
type Store struct {
	spec Spec
	opts Options

	mu      sync.Mutex // serialises reloads and spec changes
	sources map[string]*TokenSource
	signers map[string]*VAPIDSigner // by key fingerprint and subject: JWT caches survive reloads
	roots   *x509.CertPool          // for FCM token endpoints; under mu
	closed  bool                    // Close was called; under mu
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
	s := &Store{spec: spec, opts: opts, sources: map[string]*TokenSource{}, signers: map[string]*VAPIDSigner{}, roots: opts.RootCAs}
	s.Reload()
	return s
}

// SetRootCAs changes the roots trusted for FCM token endpoints (the CA file
// changed); it takes effect with the next Reload, which gives each FCM
// credential a new token source (the old ones close once unpublished).
func (s *Store) SetRootCAs(roots *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roots = roots
}

// Close stops the FCM token sources of the snapshot in force (their renewal
// timers and fetches); Reload does nothing afterwards. Requests still
// holding the snapshot keep the cached access tokens until they expire.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if cur := s.cur.Load(); cur != nil {
		for _, c := range cur.FCM {
			if c.Tokens != nil {
				c.Tokens.Close()
			}
		}
	}
}

// Snapshot returns the current snapshot; callers keep it for the whole
// request so one request sees one consistent set of credentials.
func (s *Store) Snapshot() *Snapshot { return s.cur.Load() }

// SetSpec replaces the set of credential files (after a configuration
// change); it takes effect with the next Reload. Credentials keep their last
// good key by name: a new file that fails to load does not take a working
// credential away.
func (s *Store) SetSpec(spec Spec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spec = spec
}

// Paths lists every file (or glob) the store reads, for watching.
func (s *Store) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range s.spec.APNs {
		out = append(out, a.KeyFile)
	}
	for _, v := range s.spec.VAPID {
		out = append(out, v.File)
	}
	for _, f := range s.spec.FCM {
		out = append(out, f.ServiceAccountFile)
	}
	if s.spec.AuthTokenFile != "" {
		out = append(out, s.spec.AuthTokenFile)
	}
	return out
}

// Reload re-reads every file. A credential whose file fails keeps its last
// good key. It reports whether anything changed.
func (s *Store) Reload() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	prev := s.cur.Load()
	now := s.opts.Now()
	next := &Snapshot{Generated: now}
	changed, failed := prev == nil, false
	for _, spec := range s.spec.APNs {
		var old *APNsCredential
		if prev != nil {
			old = prev.APNsByName(spec.Name)
		}
		c, err := s.loadAPNs(spec, old, now)
		if err != nil {
			failed = true
			switch {
			case old != nil && old.LastError == c.LastError:
				// Already said.
			case c.Usable():
				s.opts.Logger.Error("apns credential failed to load; keeping the last good key",
					"credential", spec.Name, "file", spec.KeyFile, "error", c.LastError, "state", c.State)
			default:
				s.opts.Logger.Error("apns credential has no usable key yet: its notifications are answered credentials_missing until key_file holds a valid .p8 key from the Apple developer account (the file is re-read when it changes)",
					"credential", spec.Name, "file", spec.KeyFile, "error", c.LastError, "state", c.State)
			}
		} else if old == nil || old.Fingerprint != c.Fingerprint || old.State != StateOK {
			changed = true
			s.opts.Logger.Info("apns credential loaded", "credential", spec.Name, "file", spec.KeyFile,
				"key_id", c.Spec.KeyID, "team_id", c.Spec.TeamID, "fingerprint", c.Fingerprint)
		}
		next.APNs = append(next.APNs, c)
	}
	for _, spec := range s.spec.VAPID {
		var old *VAPIDCredential
		if prev != nil {
			old = prev.VAPIDByName(spec.Name)
		}
		c, err := s.loadVAPID(spec, old, now)
		if err != nil {
			failed = true
			switch {
			case old != nil && old.LastError == c.LastError:
				// Already said.
			case c.Usable():
				s.opts.Logger.Error("VAPID key failed to load; keeping the last good key",
					"key", spec.Name, "file", spec.File, "error", c.LastError, "state", c.State)
			default:
				s.opts.Logger.Error("VAPID key is not loaded yet: it cannot sign until its file holds a valid key pair (pushproxy vapid-keys makes one; the file is re-read when it changes)",
					"key", spec.Name, "file", spec.File, "error", c.LastError, "state", c.State)
			}
		} else if old == nil || old.Fingerprint != c.Fingerprint || old.State != StateOK || old.Signer != c.Signer {
			changed = true
			s.opts.Logger.Info("VAPID key loaded", "key", spec.Name, "file", spec.File, "fingerprint", c.Fingerprint)
		}
		next.VAPID = append(next.VAPID, c)
	}
	var fresh []*FCMTokenSource // new token sources, warmed once published
	for _, spec := range s.spec.FCM {
		var old *FCMCredential
		if prev != nil {
			old = prev.FCMByName(spec.Name)
		}
		c, _, err := LoadFCMCredential(spec, old, s.fcmTokenOptions(), now)
		if err != nil {
			failed = true
			switch {
			case old != nil && old.LastError == c.LastError:
				// Already said.
			case c.Usable():
				s.opts.Logger.Error("FCM service account failed to load; keeping the last good key",
					"credential", spec.Name, "file", spec.ServiceAccountFile, "error", c.LastError, "state", c.State)
			default:
				s.opts.Logger.Error("FCM credential has no usable service account yet: its notifications are answered credentials_missing until service_account_file holds a valid service-account key (the file is re-read when it changes)",
					"credential", spec.Name, "file", spec.ServiceAccountFile, "error", c.LastError, "state", c.State)
			}
		} else if old == nil || old.Tokens != c.Tokens || old.State != StateOK {
			changed = true
			if old == nil || old.Tokens != c.Tokens {
				fresh = append(fresh, c.Tokens)
			}
			s.opts.Logger.Info("FCM service account loaded", "credential", spec.Name, "file", spec.ServiceAccountFile,
				"client_email", c.Account.ClientEmail, "private_key_id", c.Account.PrivateKeyID,
				"project_id", c.Account.ProjectID, "fingerprint", c.Fingerprint)
		}
		next.FCM = append(next.FCM, c)
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
	if prev != nil && !sameNames(prev, next) {
		changed = true
	}
	if !changed && !failed && prev != nil && equalStates(prev, next) {
		s.evict(prev)
		return false
	}
	s.cur.Store(next)
	s.evict(next)
	if prev != nil {
		closeUnused(prev, next)
	}
	if !s.opts.NoFCMWarm {
		for _, src := range fresh {
			src.Prefetch()
		}
	}
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

// evict drops the token sources and VAPID signers that the snapshot in
// force does not use: a key that was swapped out, or whose credential left
// the configuration, takes its key material and token cache with it. A
// key that comes back later gets a new source or signer; the provider
// token of its time bucket is the same bytes (deterministic signing), so
// Apple sees no new token.
func (s *Store) evict(in *Snapshot) {
	used := make(map[*TokenSource]bool, len(in.APNs))
	for _, c := range in.APNs {
		if c.Tokens != nil {
			used[c.Tokens] = true
		}
	}
	for k, ts := range s.sources {
		if !used[ts] {
			delete(s.sources, k)
		}
	}
	signing := make(map[*VAPIDSigner]bool, len(in.VAPID))
	for _, c := range in.VAPID {
		if c.Signer != nil {
			signing[c.Signer] = true
		}
	}
	for k, sg := range s.signers {
		if !signing[sg] {
			delete(s.signers, k)
		}
	}
}

// fcmTokenOptions configure the token source of a newly loaded service
// account. s.mu is held.
func (s *Store) fcmTokenOptions() FCMTokenOptions {
	o := FCMTokenOptions{TokenURL: s.spec.FCMTokenURL, RootCAs: s.roots, Logger: s.opts.Logger}
	if s.opts.OnSign != nil {
		o.OnFetch = func(error) { s.opts.OnSign("fcm") }
	}
	return o
}

// closeUnused closes the FCM token sources of prev that next does not use:
// a service account swapped for another key, or whose credential left the
// configuration. Requests still holding prev keep its cached tokens until
// they expire; nothing renews them any more.
func closeUnused(prev, next *Snapshot) {
	used := make(map[*FCMTokenSource]bool, len(next.FCM))
	for _, c := range next.FCM {
		if c.Tokens != nil {
			used[c.Tokens] = true
		}
	}
	for _, c := range prev.FCM {
		if c.Tokens != nil && !used[c.Tokens] {
			c.Tokens.Close()
			used[c.Tokens] = true // closed once even if listed twice
		}
	}
}

func sameNames(a, b *Snapshot) bool {
	if len(a.VAPID) != len(b.VAPID) {
		return false
	}
	for i := range a.VAPID {
		if a.VAPID[i].Spec != b.VAPID[i].Spec || a.VAPID[i].State != b.VAPID[i].State || a.VAPID[i].Fingerprint != b.VAPID[i].Fingerprint {
			return false
		}
	}
	return slices.Equal(a.Names(), b.Names()) && slices.Equal(a.FCMNames(), b.FCMNames())
}

// loadVAPID reads one VAPID key; on failure it keeps the old key, if any.
// The signer (and its JWT cache) is kept while the key and the subject
// stay the same.
func (s *Store) loadVAPID(spec VAPIDSpec, old *VAPIDCredential, now time.Time) (*VAPIDCredential, error) {
	key, err := LoadVAPIDKey(spec.File)
	if err == nil && s.spec.VAPIDSubject != "" {
		if serr := ValidateSubject(s.spec.VAPIDSubject); serr != nil {
			err = SubjectError(s.spec.VAPIDSubject, serr)
		}
	}
	if err != nil {
		c := &VAPIDCredential{Spec: spec, State: StateMissing, LastError: err.Error(), LastErrorAt: now}
		if old.Usable() {
			c.Key, c.Signer, c.Fingerprint, c.LoadedAt, c.State = old.Key, old.Signer, old.Fingerprint, old.LoadedAt, StateDegraded
		}
		return c, err
	}
	sk := key.Fingerprint + "|" + s.spec.VAPIDSubject
	signer := s.signers[sk]
	if signer == nil {
		var onSign func()
		if s.opts.OnSign != nil {
			onSign = func() { s.opts.OnSign("vapid") }
		}
		signer = NewVAPIDSigner(key, s.spec.VAPIDSubject, s.opts.Now, onSign)
		s.signers[sk] = signer
	}
	loadedAt := now
	if old.Usable() && old.Fingerprint == key.Fingerprint {
		loadedAt = old.LoadedAt
	}
	return &VAPIDCredential{Spec: spec, Key: signer.Key(), Signer: signer, Fingerprint: key.Fingerprint, LoadedAt: loadedAt, State: StateOK}, nil
}

// LoadVAPIDKey reads and validates one VAPID key file.
func LoadVAPIDKey(path string) (*VAPIDKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading VAPID key file: %w", err)
	}
	k, err := ParseVAPIDKey(data)
	if err != nil {
		return nil, fmt.Errorf("VAPID key file %s: %w", path, err)
	}
	return k, nil
}

func equalStates(a, b *Snapshot) bool {
	if len(a.APNs) != len(b.APNs) || a.AuthError != b.AuthError {
		return false
	}
	for i := range a.APNs {
		if a.APNs[i].State != b.APNs[i].State || a.APNs[i].Fingerprint != b.APNs[i].Fingerprint ||
			!equalSpec(a.APNs[i].Spec, b.APNs[i].Spec) {
			return false
		}
	}
	if len(a.FCM) != len(b.FCM) {
		return false
	}
	for i := range a.FCM {
		x, y := a.FCM[i], b.FCM[i]
		if x.Spec != y.Spec || x.State != y.State || x.Fingerprint != y.Fingerprint || x.Tokens != y.Tokens || x.LastError != y.LastError {
			return false
		}
	}
	return true
}

func equalSpec(a, b APNsSpec) bool {
	return a.Name == b.Name && a.KeyFile == b.KeyFile && a.KeyID == b.KeyID && a.TeamID == b.TeamID &&
		a.Environment == b.Environment && slices.Equal(a.Topics, b.Topics)
}

// loadAPNs reads one credential. On failure it returns the old key (if
// any) with the error recorded, and the error.
func (s *Store) loadAPNs(spec APNsSpec, old *APNsCredential, now time.Time) (*APNsCredential, error) {
	key, resolved, file, err := LoadAPNsKeyFile(spec)
	if err != nil {
		c := &APNsCredential{Spec: resolved, File: file, State: StateMissing, LastError: err.Error(), LastErrorAt: now}
		if old.Usable() {
			c.Spec, c.File, c.Key, c.Tokens, c.Fingerprint, c.LoadedAt = old.Spec, old.File, old.Key, old.Tokens, old.Fingerprint, old.LoadedAt
			c.State = StateDegraded
		}
		return c, err
	}
	fp := PublicFingerprint(&key.PublicKey)
	if old.Usable() && old.Fingerprint == fp && old.Spec.KeyID == resolved.KeyID && old.Spec.TeamID == resolved.TeamID {
		// Same key: keep the object and its loaded-at time.
		c := *old
		c.Spec, c.File, c.State, c.LastError, c.LastErrorAt = resolved, file, StateOK, "", time.Time{}
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
	return &APNsCredential{Spec: resolved, File: file, Key: key, Tokens: ts, Fingerprint: fp, LoadedAt: now, State: StateOK}, nil
}

// LoadAPNsKey reads and validates one APNs credential file and returns the
// key and the spec with its key ID resolved.
func LoadAPNsKey(spec APNsSpec) (*ecdsa.PrivateKey, APNsSpec, error) {
	k, s, _, err := LoadAPNsKeyFile(spec)
	return k, s, err
}

// LoadAPNsKeyFile is LoadAPNsKey that also returns the file read. KeyFile
// may be a glob (AuthKey_*.p8) matching exactly one file: then a Secret
// swap that brings a new key with a new key ID needs no configuration
// change, the ID coming from the new file's name.
func LoadAPNsKeyFile(spec APNsSpec) (*ecdsa.PrivateKey, APNsSpec, string, error) {
	file, err := ResolveKeyFile(spec.KeyFile)
	if err != nil {
		return nil, spec, "", err
	}
	if spec.KeyID == "" {
		spec.KeyID = KeyIDFromFileName(file)
		if spec.KeyID == "" {
			return nil, spec, file, fmt.Errorf("key_id is not set and the file name %q is not AuthKey_<KEYID>.p8", filepath.Base(file))
		}
	}
	if err := ValidID("key_id", spec.KeyID); err != nil {
		return nil, spec, file, err
	}
	if err := ValidID("team_id", spec.TeamID); err != nil {
		return nil, spec, file, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, spec, file, fmt.Errorf("reading key file: %w", err)
	}
	key, err := ParseP8(data)
	if err != nil {
		return nil, spec, file, fmt.Errorf("key file %s: %w", file, err)
	}
	return key, spec, file, nil
}

// ResolveKeyFile is the key_file rule: a path with no glob metacharacter
// (* ? [) anywhere in it is used as it is; a pattern (in the file name or
// in a directory part) must match exactly one regular file, dangling
// symlinks (as left for a moment by a Kubernetes swap) and directories not
// counting. pushproxy check resolves key files with it too, so the check
// and the server read the same file.
func ResolveKeyFile(pattern string) (string, error) {
	if !strings.ContainsAny(pattern, "*?[") {
		return pattern, nil
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return "", fmt.Errorf("key_file %q: %w", pattern, err)
	}
	var files []string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
			files = append(files, m)
		}
	}
	switch len(files) {
	case 0:
		return "", fmt.Errorf("key_file %q matches no file", pattern)
	case 1:
		return files[0], nil
	}
	return "", fmt.Errorf("key_file %q matches %d files (%s); it must match exactly one", pattern, len(files), strings.Join(files, ", "))
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

// Names returns the configured APNs credential names.
func (s *Snapshot) Names() []string {
	var out []string
	for _, c := range s.APNs {
		out = append(out, c.Spec.Name)
	}
	return slices.Clip(out)
}
