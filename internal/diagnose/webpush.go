package diagnose

import (
	"encoding/json"
	"fmt"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// checkWebPush checks the webpush section: the subject Apple and the
// others accept, and every VAPID key: found, parses (web-push JSON or PEM),
// P-256, public key 65 bytes and matching the private key (swapped values
// named), written in unpadded base64url; then a freshly signed JWT,
// decoded.
func checkWebPush(cfg *proxy.Config, env Env) []Credential {
	w := cfg.WebPush
	if w == nil || len(w.Keys) == 0 {
		return nil
	}
	var out []Credential
	for i, k := range w.Keys {
		c := Credential{Platform: translate.PlatformWebPush, Name: k.Name, File: k.File, Findings: []Finding{}}
		// The server's verdict, from the server's loader (creds.Store also
		// refuses to sign with a subject ValidateSubject refuses).
		_, lerr := creds.LoadVAPIDKey(k.File)
		c.Usable = lerr == nil && (w.Subject == "" || creds.ValidateSubject(w.Subject) == nil)
		if i == 0 {
			if err := creds.ValidateSubject(w.Subject); err != nil {
				c.add(LevelError, "subject", fmt.Sprintf("webpush.subject %q: %v", w.Subject, err),
					"use mailto:ops@your-domain (exactly one mailto:, no localhost) or an https:// URL of your site")
			} else {
				c.add(LevelOK, "subject", w.Subject, "")
			}
		}
		data, ok := checkKeyFile(&c, k.File, env.Now())
		if !ok {
			out = append(out, c)
			continue
		}
		key, err := creds.ParseVAPIDKey(data)
		if err != nil {
			c.add(LevelError, "vapid_key", err.Error(), "generate a pair with pushproxy vapid-keys (or web-push generate-vapid-keys --json) and keep publicKey and privateKey as they come")
			out = append(out, c)
			continue
		}
		for _, warn := range key.Warnings {
			c.add(LevelWarn, "vapid_key", warn, "write both keys in unpadded base64url, as web-push generate-vapid-keys --json does")
		}
		c.Fingerprint = key.Fingerprint
		primary := ""
		if i == 0 {
			primary = "; primary: new subscribers must use it as applicationServerKey"
		}
		c.add(LevelOK, "vapid_key", fmt.Sprintf("P-256 key pair, public key %s (fingerprint %s)%s", key.PublicB64, key.Fingerprint, primary), "")
		if creds.ValidateSubject(w.Subject) == nil {
			signer := creds.NewVAPIDSigner(key, w.Subject, env.Now, nil)
			auth, err := signer.Authorization("https://fcm.googleapis.com/fcm/send/check")
			if err != nil {
				c.add(LevelError, "token", "cannot sign a VAPID JWT: "+err.Error(), "regenerate the key pair")
			} else if tok, _, err := creds.ParseVAPIDAuthorization(auth); err == nil {
				header, claims, err := creds.DecodeToken(tok)
				if err == nil {
					c.Token = &Token{Header: header, Claims: claims}
					hj, _ := json.Marshal(header)
					cj, _ := json.Marshal(claims)
					c.add(LevelOK, "token", fmt.Sprintf("signed a VAPID JWT for FCM: header %s, claims %s (the token itself is not shown)", hj, cj), "")
				}
			}
		}
		out = append(out, c)
	}
	return out
}
