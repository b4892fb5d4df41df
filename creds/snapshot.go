package creds

import (
	"crypto/ecdsa"
	"slices"
	"strings"
	"time"
)

// A Snapshot: every credential as loaded, immutable once published, and how to find one.

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

// Names returns the configured APNs credential names.
func (s *Snapshot) Names() []string {
	var out []string
	for _, c := range s.APNs {
		out = append(out, c.Spec.Name)
	}
	return slices.Clip(out)
}
