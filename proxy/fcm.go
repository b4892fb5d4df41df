package proxy

import (
	"context"
	"strings"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy/fcm"
	"github.com/pushproxy/pushproxy/translate"
)

// sendFCM delivers one FCM notification: the credential named by
// to.fcm.credential (else the first configured), the message built, and
// sent with that service account's access token (or, for a dry run,
// previewed: the request with the access token fetched but shown as its
// fingerprint). It returns the credential's name for the answer and the
// log.
func (s *Service) sendFCM(ctx context.Context, st *state, n *translate.Notification) (*translate.Result, string, *translate.Error) {
	to := n.To.FCM
	snap := st.creds
	if len(snap.FCM) == 0 {
		return nil, "", translate.NewError(translate.CodeCredentialsMissing, "FCM is not configured in this pushproxy",
			"add an fcm entry with service_account_file (the Firebase project's service-account key) to the configuration")
	}
	cred := snap.FCM[0]
	if to.Credential != "" {
		cred = snap.FCMByName(to.Credential)
		if cred == nil {
			return nil, "", translate.Invalid("to.fcm.credential", "no FCM credential named %q (configured: %s)", to.Credential, strings.Join(snap.FCMNames(), ", ")).
				WithHint("name one of the configured fcm credentials, or leave to.fcm.credential out to use the first")
		}
	}
	if !cred.Usable() {
		return nil, cred.Spec.Name, fcmUnusable(cred)
	}
	req, e := translate.BuildFCM(n, translate.FCMTarget{NewID: newUUID()})
	if e != nil {
		return nil, cred.Spec.Name, e
	}
	d := fcm.Delivery{Request: req, Credential: cred.Spec.Name, Tokens: cred.Tokens}
	if n.DryRun {
		preview, e := s.fcm.Preview(ctx, d)
		if e != nil {
			return nil, cred.Spec.Name, e
		}
		return &translate.Result{ID: req.ID, Platform: translate.PlatformFCM, Credential: cred.Spec.Name, Request: preview}, cred.Spec.Name, nil
	}
	res, e := s.fcm.Send(ctx, d)
	return res, cred.Spec.Name, e
}

// fcmUnusable is the answer for a credential whose service-account file
// never loaded: what is wrong with it, and where.
func fcmUnusable(c *creds.FCMCredential) *translate.Error {
	hint := "set fcm[].service_account_file to the service-account key of the Firebase project (Firebase console > Project settings > Service accounts > Generate new private key); /readyz shows each credential's state"
	if c.LastError != "" {
		hint = "fix " + c.Spec.ServiceAccountFile + ": " + c.LastError + " (the file is re-read when it changes; pushproxy check names the usual mistakes)"
	}
	return translate.NewError(translate.CodeCredentialsMissing, "FCM credential "+c.Spec.Name+" has no usable service-account key", hint)
}

// fcmReadiness is the fcm part of /readyz: per credential the file's
// state, the service account (client_email, private_key_id, project_id,
// the key's fingerprint) and the access token's expiry and last fetch
// error; never the key or the token. A failed token request (the latest
// one) degrades the platform, the reason saying why, but leaves it usable
// (200): a cached token may still be valid, the next request may succeed,
// and a pod's readiness must not flap with a token endpoint's outage.
func fcmReadiness(snap *creds.Snapshot) readyPlatform {
	p := readyPlatform{Credentials: []readyCredential{}}
	if len(snap.FCM) == 0 {
		p.Status = "not_configured"
		return p
	}
	usable := 0
	for _, c := range snap.FCM {
		rc := readyCredential{Name: c.Spec.Name, State: c.State, File: c.Spec.ServiceAccountFile, Fingerprint: c.Fingerprint,
			LoadedAt: timePtr(c.LoadedAt), LastError: c.LastError, LastErrorAt: timePtr(c.LastErrorAt)}
		p.count(c.State, "FCM credential "+c.Spec.Name+": "+c.LastError)
		if c.Usable() {
			usable++
			in := c.Tokens.Info()
			rc.ClientEmail, rc.PrivateKeyID, rc.ProjectID = in.ClientEmail, in.PrivateKeyID, in.ProjectID
			rc.TokenExpiry = timePtr(in.TokenExpiry)
			rc.TokenError, rc.TokenErrorAt = in.LastError, timePtr(in.LastErrorAt)
			if in.LastError != "" {
				p.failing++
				if p.Reason == "" {
					what := "the latest access-token request failed (the cached token is still in use)"
					if in.TokenExpiry.IsZero() || time.Until(in.TokenExpiry) <= 0 {
						what = "no access token"
					}
					p.Reason = "FCM credential " + c.Spec.Name + ": " + what + ": " + in.LastError
				}
			}
		}
		p.Credentials = append(p.Credentials, rc)
	}
	p.settle(usable)
	return p
}
