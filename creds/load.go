package creds

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Loading one credential file: a key is validated before it can replace the one in use.

// loadVAPID reads one VAPID key, to sign for subject; on failure it keeps
// the old key, if any. The signer (and its JWT cache) is kept while the
// key and the subject stay the same. s.reloadMu is held.
func (s *Store) loadVAPID(spec VAPIDSpec, subject string, old *VAPIDCredential, now time.Time) (*VAPIDCredential, error) {
	key, err := LoadVAPIDKey(spec.File)
	if err == nil && subject != "" {
		if serr := ValidateSubject(subject); serr != nil {
			err = SubjectError(subject, serr)
		}
	}
	if err != nil {
		c := &VAPIDCredential{Spec: spec, State: StateMissing, LastError: err.Error(), LastErrorAt: now}
		if old.Usable() {
			c.Key, c.Signer, c.Fingerprint, c.LoadedAt, c.State = old.Key, old.Signer, old.Fingerprint, old.LoadedAt, StateDegraded
		}
		return c, err
	}
	sk := key.Fingerprint + "|" + subject
	signer := s.signers[sk]
	if signer == nil {
		var onSign func()
		if s.opts.OnSign != nil {
			onSign = func() { s.opts.OnSign("vapid") }
		}
		signer = NewVAPIDSigner(key, subject, s.opts.Now, onSign)
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
// any) with the error recorded, and the error. s.reloadMu is held.
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
