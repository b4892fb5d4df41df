package diagnose

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// fcmNewKey is where a service-account key comes from: the fix of most
// FCM traps.
const fcmNewKey = "Firebase console > Project settings > Service accounts > Generate new private key"

// checkFCM checks every FCM credential: the service-account file is found
// (size, mode, age), and creds.ParseServiceAccount (the parser the server
// loads it with) accepts it for the configured project; when it does not,
// the classic trap is named with its fix (google-services.json, a legacy
// AAAA… server key, an authorized_user file, a missing or non-RSA
// private_key, a project_id that differs from the file's, a token_uri that
// is not https). Whether the server can use the credential is the server's
// own loader's verdict (creds.NewFCMCredential, what creds.LoadFCMCredential
// makes of the account it parsed, with upstream.fcm_token_url), given the
// account parsed here, so check and the server cannot disagree: the file is
// read and parsed once. Nothing is fetched: an access token needs Google,
// and check is offline.
func checkFCM(cfg *proxy.Config, env Env) []Credential {
	var out []Credential
	for i, f := range cfg.FCM {
		out = append(out, checkFCMCredential(cfg, i, f, env))
	}
	return out
}

func checkFCMCredential(cfg *proxy.Config, index int, f proxy.FCMConfig, env Env) Credential {
	c := Credential{Platform: translate.PlatformFCM, Name: f.Name, File: f.ServiceAccountFile, Findings: []Finding{}}
	if c.Name == "" {
		c.Name = fmt.Sprintf("fcm[%d]", index)
	}
	where := fmt.Sprintf("fcm[%d]", index)
	now := env.Now()
	spec := creds.FCMSpec{Name: c.Name, ServiceAccountFile: f.ServiceAccountFile, ProjectID: f.ProjectID}

	if f.ServiceAccountFile == "" {
		c.add(LevelError, "service_account_file", "service_account_file is not set",
			"set "+where+".service_account_file to the service-account key JSON ("+fcmNewKey+")")
		return c
	}
	data, ok := checkFile(&c, fileCheck{
		check:   "service_account_file",
		missing: "put the service-account key JSON at this path (Kubernetes: check the pushproxy-fcm Secret's key and the volume's mountPath)",
		dir:     "point service_account_file at the service-account JSON file inside it",
	}, f.ServiceAccountFile, now)
	if !ok {
		return c
	}

	// The bytes read above, parsed as the server's loader parses them
	// (creds.LoadServiceAccount); a file it refuses is not usable.
	sa, err := creds.ParseServiceAccount(data, spec.ProjectID)
	if err != nil {
		check, fix := fcmTrap(data, f.ProjectID, where)
		c.add(LevelError, check, err.Error(), fix)
		return c
	}
	// The server's verdict on that account, from the server's loader. A
	// token source is made (nothing is fetched until asked) and closed at
	// once.
	cred, lerr := creds.NewFCMCredential(spec, sa, nil, creds.FCMTokenOptions{TokenURL: cfg.Upstream.FCMTokenURL}, now)
	if cred.Tokens != nil {
		cred.Tokens.Close()
	}
	c.Usable = lerr == nil && cred.Usable()
	c.Fingerprint = sa.Fingerprint
	c.add(LevelOK, "service_account", fmt.Sprintf("%s, key %s (RSA %d bits)", sa.ClientEmail, sa.PrivateKeyID, sa.Key.N.BitLen()), "")
	if f.ProjectID != "" {
		c.add(LevelOK, "project_id", sa.ProjectID+" (from the configuration; the file names the same or none)", "")
	} else {
		c.add(LevelOK, "project_id", sa.ProjectID+" (from the file)", "")
	}
	if t := cfg.Upstream.FCMTokenURL; t != "" {
		c.add(LevelOK, "token_uri", fmt.Sprintf("%s in the file, replaced by upstream.fcm_token_url %s", sa.TokenURI, t), "")
	} else {
		c.add(LevelOK, "token_uri", sa.TokenURI, "")
	}
	c.add(LevelOK, "fingerprint", sa.Fingerprint+" (SHA-256 of the public key; /readyz shows the same for the key in use)", "")
	checkFCMAssertion(&c, sa, cfg.Upstream.FCMTokenURL, now)
	if !c.Usable {
		msg := "the server cannot load this credential"
		if lerr != nil {
			msg += ": " + lerr.Error()
		}
		c.add(LevelError, "load", msg, "use the file as the console downloads it ("+fcmNewKey+")")
	}
	return c
}

// checkFCMAssertion signs the OAuth 2.0 assertion (RFC 7523) the server
// sends to the token endpoint for an access token, with the header and
// claims golang.org/x/oauth2/jwt gives it (RS256, kid; iss, scope, aud,
// iat, exp), and
// shows it decoded: never the assertion itself. Offline, the access token
// is not asked for; the running server's /readyz shows its expiry, or the
// endpoint's refusal.
func checkFCMAssertion(c *Credential, sa *creds.ServiceAccount, tokenURL string, now time.Time) {
	if tokenURL == "" {
		tokenURL = sa.TokenURI
	}
	iat := now.Add(-10 * time.Second) // as x/oauth2 does, for clocks slightly ahead
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": sa.ClientEmail, "scope": creds.FCMScope, "aud": tokenURL, "iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = sa.PrivateKeyID
	assertion, err := tok.SignedString(sa.Key)
	if err != nil {
		c.add(LevelError, "token", "cannot sign the OAuth assertion: "+err.Error(), "make a new key ("+fcmNewKey+")")
		return
	}
	header, claims, err := creds.DecodeToken(assertion)
	if err != nil {
		c.add(LevelError, "token", "cannot decode the OAuth assertion just signed: "+err.Error(), "make a new key ("+fcmNewKey+")")
		return
	}
	c.Token = &Token{Header: header, Claims: claims}
	hj, _ := json.Marshal(header)
	cj, _ := json.Marshal(claims)
	c.add(LevelOK, "token", fmt.Sprintf("signed the OAuth assertion sent for an access token: header %s, claims %s (the assertion itself is not shown; offline, no access token is asked for: /readyz shows its expiry once running)", hj, cj), "")
}

// fcmTrap names the trap a refused service-account file falls into, as
// the check the finding belongs to and its one-line fix. It only picks the
// fix: whether the file is refused is creds.ParseServiceAccount's verdict,
// and its error is the finding's message.
func fcmTrap(data []byte, projectID, where string) (check, fix string) {
	text := bytes.TrimSpace(data)
	download := "download a service-account key (" + fcmNewKey + ") and point " + where + ".service_account_file at that JSON file"
	if len(text) == 0 || text[0] != '{' {
		s := string(text)
		switch {
		case strings.HasPrefix(s, "AAAA") || strings.Contains(s, ":APA91b"):
			return "service_account", "a legacy server key works with the legacy API only, which Google shut down in 2024: " + download
		case strings.Contains(s, "-----BEGIN"):
			return "service_account", "give the whole service-account JSON file, not only its key: " + download
		}
		return "service_account", download
	}
	var f struct {
		Type         string          `json:"type"`
		ProjectID    string          `json:"project_id"`
		ClientEmail  string          `json:"client_email"`
		PrivateKeyID string          `json:"private_key_id"`
		PrivateKey   *string         `json:"private_key"`
		TokenURI     string          `json:"token_uri"`
		ProjectInfo  json.RawMessage `json:"project_info"`
		Client       json.RawMessage `json:"client"`
	}
	if json.Unmarshal(text, &f) != nil {
		return "service_account", "the JSON is damaged (a hand edit?): " + download
	}
	switch {
	case f.Type == "" && (len(f.ProjectInfo) > 0 || len(f.Client) > 0):
		return "service_account", "google-services.json belongs in the Android app, not in pushproxy: " + download
	case f.Type == "authorized_user":
		return "service_account", "a person's gcloud login is not for a server: " + download
	case f.Type != "service_account", f.ClientEmail == "", !strings.Contains(f.ClientEmail, "@"), f.PrivateKeyID == "":
		return "service_account", download
	case f.PrivateKey == nil || *f.PrivateKey == "":
		return "private_key", "the file has no private_key (keys uploaded by hand never have one): make a new key (" + fcmNewKey + ")"
	}
	if !isRSAKeyPEM([]byte(*f.PrivateKey)) {
		// Unparseable, EC, encrypted or short: the parser's message says which.
		return "private_key", "use the file as the console downloads it: private_key is an RSA key, PEM -----BEGIN PRIVATE KEY----- with its \\n line breaks kept (or make a new key: " + fcmNewKey + ")"
	}
	if u, err := url.Parse(f.TokenURI); f.TokenURI != "" && (err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil) {
		return "token_uri", `set "token_uri": "` + creds.FCMDefaultTokenURL + `" as the console writes it (upstream.fcm_token_url may replace it, for tests, but the file's must still be https)`
	}
	switch {
	case projectID != "" && f.ProjectID != "" && projectID != f.ProjectID:
		return "project_id", fmt.Sprintf("remove %s.project_id to send for the file's project %q, or use a key of a service account of project %q", where, f.ProjectID, projectID)
	case f.ProjectID == "" && projectID == "":
		return "project_id", "set " + where + ".project_id to the Firebase project's ID (Firebase console > Project settings > General)"
	}
	return "service_account", download
}

// isRSAKeyPEM reports whether data is a PEM RSA private key of at least
// 2048 bits, PKCS#8 or PKCS#1 (what creds.ParseServiceAccount accepts).
func isRSAKeyPEM(data []byte) bool {
	block, _ := pem.Decode(data)
	if block == nil {
		return false
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return false
	}
	rk, ok := key.(*rsa.PrivateKey)
	return err == nil && ok && rk.N.BitLen() >= 2048
}
