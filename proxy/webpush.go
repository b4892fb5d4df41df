package proxy

import (
	"context"
	"net/http"
	"strings"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy/webpush"
	"github.com/pushproxy/pushproxy/translate"
)

// sendWebPush delivers one Web Push notification: subscription checked,
// message built, encrypted and signed with the subscription's VAPID key
// (or the primary), the other keys tried on a key mismatch.
func (s *Service) sendWebPush(ctx context.Context, st *state, n *translate.Notification) (*translate.Result, string, *translate.Error) {
	cfg := st.cfg
	if cfg.WebPush == nil {
		return nil, "", translate.NewError(translate.CodeCredentialsMissing, "Web Push is not configured in this pushproxy",
			"add a webpush section with a subject and VAPID keys to the configuration (pushproxy vapid-keys makes a key)")
	}
	to := n.To.WebPush
	sub, e := translate.ValidateSubscription(to)
	if e != nil {
		return nil, "", e
	}
	snap := st.creds
	var keys []webpush.KeyRef
	for _, c := range snap.VAPID {
		if c.Usable() {
			keys = append(keys, webpush.KeyRef{Name: c.Spec.Name, Signer: c.Signer})
		}
	}
	if to.VAPIDKey != "" && snap.VAPIDByName(to.VAPIDKey) == nil {
		var names []string
		for _, c := range snap.VAPID {
			names = append(names, c.Spec.Name)
		}
		return nil, "", translate.Invalid("to.webpush.vapid_key", "no VAPID key named %q (configured: %s)", to.VAPIDKey, strings.Join(names, ", "))
	}
	if len(keys) == 0 {
		hint := "check webpush.keys in the configuration; /readyz shows each key's state"
		if len(snap.VAPID) > 0 {
			hint = "fix " + snap.VAPID[0].Spec.File + ": " + snap.VAPID[0].LastError
		}
		return nil, "", translate.NewError(translate.CodeCredentialsMissing, "no usable VAPID key", hint)
	}
	msg, e := translate.BuildWebPush(n, translate.WebPushTarget{DefaultTTL: *cfg.WebPush.DefaultTTL, NewID: newUUID()})
	if e != nil {
		return nil, "", e
	}
	d := webpush.Delivery{Subscription: sub, Message: msg, Keys: keys, Preferred: to.VAPIDKey}
	if n.DryRun {
		preview, e := s.webpush.Preview(d)
		if e != nil {
			return nil, "", e
		}
		name := keys[0].Name
		if to.VAPIDKey != "" {
			name = to.VAPIDKey
		}
		return &translate.Result{ID: msg.ID, Platform: translate.PlatformWebPush, Credential: name, Request: preview}, name, nil
	}
	res, e := s.webpush.Send(ctx, d)
	name := to.VAPIDKey
	if res != nil {
		name = res.Credential
	}
	return res, name, e
}

// handleVAPIDPublicKey answers the key new subscribers must use
// (applicationServerKey) and every key still accepted during a rotation.
func (s *Server) handleVAPIDPublicKey(w http.ResponseWriter, r *http.Request) {
	type key struct {
		Name      string `json:"name"`
		PublicKey string `json:"public_key"`
		Primary   bool   `json:"primary"`
	}
	body := struct {
		PublicKey string `json:"public_key"`
		Keys      []key  `json:"keys"`
	}{Keys: []key{}}
	for _, c := range s.state().creds.VAPID {
		if !c.Usable() {
			continue
		}
		primary := body.PublicKey == ""
		if primary {
			body.PublicKey = c.Key.PublicB64
		}
		body.Keys = append(body.Keys, key{Name: c.Spec.Name, PublicKey: c.Key.PublicB64, Primary: primary})
	}
	if body.PublicKey == "" {
		writeError(w, translate.NewError(translate.CodeCredentialsMissing, "no usable VAPID key", "configure webpush.keys; /readyz shows each key's state"))
		return
	}
	w.Header().Set("Cache-Control", "max-age=60")
	writeJSON(w, http.StatusOK, body)
}

// webpushReadiness is the webpush part of /readyz.
func webpushReadiness(snap *creds.Snapshot, configured bool) readyPlatform {
	p := readyPlatform{Credentials: []readyCredential{}}
	if !configured {
		p.Status = "not_configured"
		return p
	}
	usable := 0
	for i, c := range snap.VAPID {
		rc := readyCredential{Name: c.Spec.Name, State: c.State, File: c.Spec.File, Fingerprint: c.Fingerprint,
			LoadedAt: timePtr(c.LoadedAt), LastError: c.LastError, LastErrorAt: timePtr(c.LastErrorAt)}
		if c.Usable() {
			usable++
			rc.PublicKey = c.Key.PublicB64
			rc.Primary = i == 0
		}
		p.count(c.State, "VAPID key "+c.Spec.Name+": "+c.LastError)
		p.Credentials = append(p.Credentials, rc)
	}
	p.settle(usable)
	return p
}
