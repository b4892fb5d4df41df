package proxy

import (
	"fmt"
	"net/http"
	"time"

	"github.com/pushproxy/pushproxy/creds"
)

// readyCredential is one credential in /readyz: never a secret, only the
// public key's fingerprint.
type readyCredential struct {
	Name        string     `json:"name"`
	State       string     `json:"state"` // ok | degraded | missing
	File        string     `json:"file"`
	KeyID       string     `json:"key_id,omitempty"`
	TeamID      string     `json:"team_id,omitempty"`
	Topics      []string   `json:"topics,omitempty"`
	Environment string     `json:"environment,omitempty"`
	Fingerprint string     `json:"fingerprint,omitempty"`
	LoadedAt    *time.Time `json:"loaded_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	PublicKey   string     `json:"public_key,omitempty"` // VAPID: the public key (not a secret)
	Primary     bool       `json:"primary,omitempty"`    // VAPID: the key new subscribers use
	// FCM: the service account in use and its access token's expiry and
	// latest fetch error (never the key or the token).
	ClientEmail  string     `json:"client_email,omitempty"`
	PrivateKeyID string     `json:"private_key_id,omitempty"`
	ProjectID    string     `json:"project_id,omitempty"`
	TokenExpiry  *time.Time `json:"token_expiry,omitempty"`
	TokenError   string     `json:"token_error,omitempty"`
	TokenErrorAt *time.Time `json:"token_error_at,omitempty"`
}

type readyPlatform struct {
	Status      string            `json:"status"` // ok | degraded | unavailable | not_configured
	Reason      string            `json:"reason,omitempty"`
	Credentials []readyCredential `json:"credentials"`
	// ClockSkewSeconds is this machine's clock minus the upstream's (Date
	// header of the latest answer); absent until an answer came.
	ClockSkewSeconds *float64 `json:"clock_skew_seconds,omitempty"`

	failing int // credentials not ok (not shown)
}

// noteSkew reports the clock difference with an upstream; beyond
// creds.SkewLimit the platform is degraded, since tokens and VAPID JWTs may
// be refused.
func noteSkew(p *readyPlatform, who string, skew func() (time.Duration, bool)) {
	d, ok := skew()
	if !ok {
		return
	}
	sec := d.Seconds()
	p.ClockSkewSeconds = &sec
	if d > creds.SkewLimit || d < -creds.SkewLimit {
		if p.Status == "ok" {
			p.Status = "degraded"
		}
		if p.Reason == "" {
			p.Reason = fmt.Sprintf("this machine's clock is %.0f s off %s's: tokens may be refused (fix NTP)", sec, who)
		}
	}
}

// count notes one credential's state; the first failing one gives the
// platform's reason.
func (p *readyPlatform) count(state, reason string) {
	if state == creds.StateOK {
		return
	}
	p.failing++
	if p.Reason == "" {
		p.Reason = reason
	}
}

// settle sets the platform's status from its usable and failing credentials.
func (p *readyPlatform) settle(usable int) {
	switch {
	case usable == 0:
		p.Status = "unavailable"
	case p.failing > 0:
		p.Status = "degraded"
	default:
		p.Status = "ok"
	}
}

type readyBody struct {
	Status    string                   `json:"status"` // ready | degraded | unavailable | shutting_down
	Platforms map[string]readyPlatform `json:"platforms"`
	Config    *configStatus            `json:"config,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// readiness computes /readyz: 200 while any platform can send (even when a
// reload failed and the last good key is in use: degraded), 503 when none
// can, and at once on shutdown.
func (s *Server) readiness() (int, readyBody) {
	cur := s.state()
	snap := cur.creds
	body := readyBody{Platforms: map[string]readyPlatform{}}
	if st := s.configInfo.Load(); st != nil && st.File != "" {
		body.Config = st
	}
	ap := apnsReadiness(snap)
	noteSkew(&ap, "APNs", s.apns.ClockSkew)
	body.Platforms["apns"] = ap
	wp := webpushReadiness(snap, cur.cfg.WebPush != nil)
	if wp.Status != "not_configured" {
		noteSkew(&wp, "the push service", s.webpush.ClockSkew)
	}
	body.Platforms["webpush"] = wp
	fp := fcmReadiness(snap)
	if fp.Status != "not_configured" {
		noteSkew(&fp, "FCM", s.fcm.ClockSkew)
	}
	body.Platforms["fcm"] = fp
	can := func(p readyPlatform) bool { return p.Status == "ok" || p.Status == "degraded" }
	usable := can(ap) || can(wp) || can(fp)
	// A configured platform that cannot send, beside one that can, makes
	// the whole degraded (still 200: the pod keeps serving what works).
	down := func(p readyPlatform) bool { return p.Status == "unavailable" }
	partly := false
	for _, p := range []readyPlatform{ap, wp, fp} {
		if p.Status == "degraded" || down(p) {
			partly = true
		}
	}
	switch {
	case s.shuttingDown.Load():
		body.Status = "shutting_down"
		return http.StatusServiceUnavailable, body
	case !usable:
		body.Status = "unavailable"
		return http.StatusServiceUnavailable, body
	case partly || snap.AuthError != "" || (body.Config != nil && (body.Config.LastError != "" || len(body.Config.RestartRequired) > 0)):
		body.Status = "degraded"
	default:
		body.Status = "ready"
	}
	return http.StatusOK, body
}

func apnsReadiness(snap *creds.Snapshot) readyPlatform {
	p := readyPlatform{Credentials: []readyCredential{}}
	if len(snap.APNs) == 0 {
		p.Status = "not_configured"
		return p
	}
	usable := 0
	for _, c := range snap.APNs {
		file := c.File
		if file == "" {
			file = c.Spec.KeyFile
		}
		rc := readyCredential{
			Name: c.Spec.Name, State: c.State, File: file, KeyID: c.Spec.KeyID, TeamID: c.Spec.TeamID,
			Topics: c.Spec.Topics, Environment: c.Spec.Environment, Fingerprint: c.Fingerprint,
			LoadedAt: timePtr(c.LoadedAt), LastError: c.LastError, LastErrorAt: timePtr(c.LastErrorAt),
		}
		if c.Usable() {
			usable++
		}
		p.count(c.State, "credential "+c.Spec.Name+": "+c.LastError)
		p.Credentials = append(p.Credentials, rc)
	}
	p.settle(usable)
	return p
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	status, body := s.readiness()
	writeJSON(w, status, body)
}
