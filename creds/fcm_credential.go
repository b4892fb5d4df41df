package creds

import (
	"time"
)

// FCMCredential is one FCM credential (a service account, hence a Firebase
// project) in a snapshot. It never changes once published; a reload
// publishes a new one.
type FCMCredential struct {
	Spec        FCMSpec
	Account     *ServiceAccount // nil while no valid file was ever loaded
	Tokens      *FCMTokenSource // nil when Account is nil
	Fingerprint string          // of the public key; "" when missing
	LoadedAt    time.Time       // when the key in use was read
	State       string          // StateOK, StateDegraded or StateMissing
	LastError   string          // of the latest load attempt; "" when it succeeded
	LastErrorAt time.Time
}

// Usable reports whether the credential can get access tokens.
func (c *FCMCredential) Usable() bool { return c != nil && c.Account != nil && c.Tokens != nil }

// ProjectID is the project the credential sends for ("" when missing).
func (c *FCMCredential) ProjectID() string {
	if c == nil || c.Account == nil {
		return ""
	}
	return c.Account.ProjectID
}

// LoadFCMCredential reads spec's service-account file and returns the
// credential to publish in the next snapshot, given the one in force (old,
// nil at first):
//
//   - the file fails to read or validate: the old account and token source
//     are kept (state degraded), or none (state missing), with the error;
//   - the same account, key, project and token endpoint as old (and the
//     same trusted roots): old's token source is kept, with its cached token;
//   - anything else: a new token source; the caller closes old's once the
//     snapshot without it is published (requests still holding the old
//     snapshot keep its cached token until it expires).
//
// opts configure a new token source (upstream.fcm_token_url, the roots of
// upstream.ca_file, metrics, logger).
func LoadFCMCredential(spec FCMSpec, old *FCMCredential, opts FCMTokenOptions, now time.Time) (*FCMCredential, error) {
	sa, err := LoadServiceAccount(spec)
	if err != nil {
		return failedFCMCredential(spec, old, err, now), err
	}
	return NewFCMCredential(spec, sa, old, opts, now)
}

// NewFCMCredential is LoadFCMCredential for a service account already read
// and parsed for spec (by LoadServiceAccount, or ParseServiceAccount of the
// file's bytes with spec.ProjectID): the same credential and the same
// error, without reading the file again. pushproxy check calls it on the
// account it diagnoses, so that its verdict is the server's.
func NewFCMCredential(spec FCMSpec, sa *ServiceAccount, old *FCMCredential, opts FCMTokenOptions, now time.Time) (*FCMCredential, error) {
	var src *FCMTokenSource
	if sa != nil && old.Usable() && sameFCMSource(old.Tokens, sa, opts) {
		src = old.Tokens
	} else {
		var err error
		if src, err = NewFCMTokenSource(sa, opts); err != nil {
			return failedFCMCredential(spec, old, err, now), err
		}
	}
	loadedAt := now
	if old.Usable() && old.Fingerprint == sa.Fingerprint && src == old.Tokens {
		loadedAt = old.LoadedAt
	}
	return &FCMCredential{Spec: spec, Account: sa, Tokens: src, Fingerprint: sa.Fingerprint, LoadedAt: loadedAt, State: StateOK}, nil
}

// failedFCMCredential is the credential published after a failed load:
// old's account and token source, degraded, or none (missing), with err.
func failedFCMCredential(spec FCMSpec, old *FCMCredential, err error, now time.Time) *FCMCredential {
	c := &FCMCredential{Spec: spec, State: StateMissing, LastError: err.Error(), LastErrorAt: now}
	if old.Usable() {
		c.Account, c.Tokens, c.Fingerprint, c.LoadedAt, c.State = old.Account, old.Tokens, old.Fingerprint, old.LoadedAt, StateDegraded
	}
	return c
}

// sameFCMSource reports whether src already serves sa with opts: the same
// key, account, key ID, project and token endpoint, and equal roots.
func sameFCMSource(src *FCMTokenSource, sa *ServiceAccount, opts FCMTokenOptions) bool {
	cur := src.sa
	tokenURL := sa.TokenURI
	if opts.TokenURL != "" {
		tokenURL = opts.TokenURL
	}
	sameRoots := (src.opts.RootCAs == nil && opts.RootCAs == nil) ||
		(src.opts.RootCAs != nil && opts.RootCAs != nil && src.opts.RootCAs.Equal(opts.RootCAs))
	return cur.Fingerprint == sa.Fingerprint && cur.ClientEmail == sa.ClientEmail && cur.PrivateKeyID == sa.PrivateKeyID &&
		cur.ProjectID == sa.ProjectID && src.TokenURL() == tokenURL && sameRoots && src.opts.HTTPClient == opts.HTTPClient
}
