package creds

import (
	"bytes"
	"crypto/x509"
	"log/slog"
	"slices"
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
//
// Two locks: reloadMu serialises reloads, one at a time reading the files,
// building the next snapshot (new FCM token sources included) and
// publishing it, so that concurrent reloads never mix and the last one
// wins; mu guards the spec, the roots, closed and draining, and orders a
// publication with Close, and is only ever held for a few instructions.
//
// An FCM token source that a reload retires (its key swapped, its CA file
// or token URL changed, its credential removed) starts no fetch any more,
// but its fetch in flight is not cancelled: the notifications that hold the
// previous snapshot and wait for that fetch get its token. The fetch takes
// as long as the token endpoint does, up to FetchTimeout (the request
// carries its context, see withContext); a background goroutine waits for
// it and then closes the source, with no lock held, so that neither the
// reload nor the next one nor Paths, SetSpec or SetRootCAs wait for it.
// Only Close cancels such a fetch.
type Store struct {
	opts Options

	reloadMu sync.Mutex
	sources  map[string]*TokenSource // under reloadMu
	signers  map[string]*VAPIDSigner // by key fingerprint and subject: JWT caches survive reloads; under reloadMu

	mu       sync.Mutex
	spec     Spec           // under mu
	roots    *x509.CertPool // for FCM token endpoints; under mu
	closed   bool           // Close was called; under mu
	retiring sync.WaitGroup // closes of retired FCM token sources; added to under mu while !closed
	// draining are the retired FCM token sources whose fetch in flight
	// may not have ended yet, for Close to cancel; under mu.
	draining map[*FCMTokenSource]struct{}
	cur      atomic.Pointer[Snapshot]
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
	s := &Store{spec: spec, opts: opts, sources: map[string]*TokenSource{}, signers: map[string]*VAPIDSigner{}, roots: opts.RootCAs,
		draining: map[*FCMTokenSource]struct{}{}}
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

// Close stops the FCM token sources of the snapshot in force and the
// retired ones still finishing a fetch (their renewal timers, and their
// fetches in flight, which are cancelled), and waits for all of them;
// Reload does nothing afterwards. Requests still holding the snapshot keep
// the cached access tokens until they expire.
func (s *Store) Close() {
	s.mu.Lock()
	s.closed = true
	cur := s.cur.Load() // a reload publishes under mu, or not at all once closed
	draining := make([]*FCMTokenSource, 0, len(s.draining))
	for src := range s.draining {
		draining = append(draining, src)
	}
	s.mu.Unlock()
	// Cancel everything first, then wait: the fetches end together.
	for _, src := range draining {
		src.stop() // retire's goroutine waits for it
	}
	if cur != nil {
		for _, c := range cur.FCM {
			if c.Tokens != nil {
				c.Tokens.stop()
			}
		}
		for _, c := range cur.FCM {
			if c.Tokens != nil {
				c.Tokens.Close()
			}
		}
	}
	s.retiring.Wait()
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

// logFailure logs a credential file that failed to load, once per distinct
// error (repeated: the last reload said the same): "keeping the last good
// key" when there is one (kept), else notYet, which says what to fix.
func (s *Store) logFailure(what string, repeated, kept bool, notYet string, attrs ...any) {
	switch {
	case repeated:
	case kept:
		s.opts.Logger.Error(what+" failed to load; keeping the last good key", attrs...)
	default:
		s.opts.Logger.Error(notYet, attrs...)
	}
}

// Reload re-reads every file. A credential whose file fails keeps its last
// good key. It reports whether anything changed. The new snapshot is
// published with one swap; concurrent reloads run one after the other. The
// FCM token sources it retires refuse new fetches when it returns; their
// fetches in flight are neither cancelled (the callers waiting for them get
// their tokens) nor waited for (see retire; Close cancels them).
func (s *Store) Reload() bool {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	files, roots, closed := s.spec, s.roots, s.closed
	s.mu.Unlock()
	if closed {
		return false
	}
	prev := s.cur.Load() // only a reload stores it, and reloads are serialised
	now := s.opts.Now()
	next := &Snapshot{Generated: now}
	changed, failed := prev == nil, false
	for _, spec := range files.APNs {
		var old *APNsCredential
		if prev != nil {
			old = prev.APNsByName(spec.Name)
		}
		c, err := s.loadAPNs(spec, old, now)
		if err != nil {
			failed = true
			s.logFailure("apns credential", old != nil && old.LastError == c.LastError, c.Usable(),
				"apns credential has no usable key yet: its notifications are answered credentials_missing until key_file holds a valid .p8 key from the Apple developer account (the file is re-read when it changes)",
				"credential", spec.Name, "file", spec.KeyFile, "error", c.LastError, "state", c.State)
		} else if old == nil || old.Fingerprint != c.Fingerprint || old.State != StateOK {
			changed = true
			s.opts.Logger.Info("apns credential loaded", "credential", spec.Name, "file", spec.KeyFile,
				"key_id", c.Spec.KeyID, "team_id", c.Spec.TeamID, "fingerprint", c.Fingerprint)
		}
		next.APNs = append(next.APNs, c)
	}
	for _, spec := range files.VAPID {
		var old *VAPIDCredential
		if prev != nil {
			old = prev.VAPIDByName(spec.Name)
		}
		c, err := s.loadVAPID(spec, files.VAPIDSubject, old, now)
		if err != nil {
			failed = true
			s.logFailure("VAPID key", old != nil && old.LastError == c.LastError, c.Usable(),
				"VAPID key is not loaded yet: it cannot sign until its file holds a valid key pair (pushproxy vapid-keys makes one; the file is re-read when it changes)",
				"key", spec.Name, "file", spec.File, "error", c.LastError, "state", c.State)
		} else if old == nil || old.Fingerprint != c.Fingerprint || old.State != StateOK || old.Signer != c.Signer {
			changed = true
			s.opts.Logger.Info("VAPID key loaded", "key", spec.Name, "file", spec.File, "fingerprint", c.Fingerprint)
		}
		next.VAPID = append(next.VAPID, c)
	}
	var fresh []*FCMTokenSource // new token sources, warmed once published
	for _, spec := range files.FCM {
		var old *FCMCredential
		if prev != nil {
			old = prev.FCMByName(spec.Name)
		}
		c, err := LoadFCMCredential(spec, old, s.fcmTokenOptions(files.FCMTokenURL, roots), now)
		if err != nil {
			failed = true
			s.logFailure("FCM service account", old != nil && old.LastError == c.LastError, c.Usable(),
				"FCM credential has no usable service account yet: its notifications are answered credentials_missing until service_account_file holds a valid service-account key (the file is re-read when it changes)",
				"credential", spec.Name, "file", spec.ServiceAccountFile, "error", c.LastError, "state", c.State)
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
	if files.AuthTokenFile != "" {
		tok, err := readAuthToken(files.AuthTokenFile)
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
				"file", files.AuthTokenFile, "error", err.Error())
		}
	}
	if prev != nil && !sameNames(prev, next) {
		changed = true
	}
	if !changed && !failed && prev != nil && equalStates(prev, next) {
		s.evict(prev)
		return false
	}
	// Publish, unless Close came first: then the new token sources were
	// never published, nor asked for a token, and close at once.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		for _, src := range fresh {
			src.Close()
		}
		return false
	}
	s.cur.Store(next)
	retired := unusedFCMSources(prev, next)
	if len(retired) > 0 {
		s.retiring.Add(1)
		for _, src := range retired {
			s.draining[src] = struct{}{}
		}
	}
	s.mu.Unlock()
	s.evict(next)
	s.retire(retired)
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
// account: tokenURL and roots are the reload's (Spec.FCMTokenURL, and
// SetRootCAs's).
func (s *Store) fcmTokenOptions(tokenURL string, roots *x509.CertPool) FCMTokenOptions {
	o := FCMTokenOptions{TokenURL: tokenURL, RootCAs: roots, Logger: s.opts.Logger}
	if s.opts.OnSign != nil {
		o.OnFetch = func(error) { s.opts.OnSign("fcm") }
	}
	return o
}

// unusedFCMSources lists the FCM token sources of prev (nil at first) that
// next does not use: a service account swapped for another key, or whose
// credential left the configuration.
func unusedFCMSources(prev, next *Snapshot) []*FCMTokenSource {
	if prev == nil {
		return nil
	}
	used := make(map[*FCMTokenSource]bool, len(next.FCM))
	for _, c := range next.FCM {
		if c.Tokens != nil {
			used[c.Tokens] = true
		}
	}
	var out []*FCMTokenSource
	for _, c := range prev.FCM {
		if c.Tokens != nil && !used[c.Tokens] {
			out = append(out, c.Tokens)
			used[c.Tokens] = true // listed once even if held twice
		}
	}
	return out
}

// retire closes the token sources a published snapshot no longer uses,
// without holding up the reload: from now on they start no fetch and no
// renewal timer fires, but a fetch in flight is let finish (within the
// source's FetchTimeout) so that the requests still holding the previous
// snapshot and waiting for it get its token rather than a cancellation. A
// background goroutine waits for those fetches, then closes the sources;
// Close cancels the fetches and waits for the goroutine. Requests still
// holding the previous snapshot keep its cached tokens until they expire;
// nothing renews them any more. s.retiring was added to, and s.draining
// holds the sources, under s.mu.
func (s *Store) retire(retired []*FCMTokenSource) {
	if len(retired) == 0 {
		return
	}
	for _, src := range retired {
		src.retire()
	}
	go func() {
		defer s.retiring.Done()
		for _, src := range retired {
			src.drain()
			src.Close() // the fetch ended: this only releases its context
			s.mu.Lock()
			delete(s.draining, src)
			s.mu.Unlock()
		}
	}()
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
