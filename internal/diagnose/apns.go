package diagnose

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// checkAPNsCredentials checks every APNs credential.
func checkAPNsCredentials(cfg *proxy.Config, env Env) []Credential {
	var out []Credential
	for i, a := range cfg.APNs {
		out = append(out, checkAPNs(cfg, i, a, env))
	}
	return out
}

func checkAPNs(cfg *proxy.Config, index int, a proxy.APNsConfig, env Env) Credential {
	c := Credential{Platform: translate.PlatformAPNs, Name: a.Name, File: a.KeyFile, Topics: a.Topics, Environment: a.Environment, Findings: []Finding{}}
	if c.Name == "" {
		c.Name = fmt.Sprintf("apns[%d]", index)
	}
	now := env.Now()

	// The key file (key_file may be a pattern matching exactly one file).
	var key *ecdsa.PrivateKey
	file := ""
	if a.KeyFile == "" {
		c.add(LevelError, "key_file", "key_file is not set", "set key_file to the path of the AuthKey_<KEYID>.p8 downloaded from the Apple developer account")
	} else {
		file = resolveKeyFile(&c, a.KeyFile)
	}
	if file != "" {
		c.File = file
		if data, ok := checkKeyFile(&c, file, now); ok {
			key = checkKeyData(&c, file, data)
		}
	}

	// Key ID: from the configuration or the file name, and the two agree.
	fileID := creds.KeyIDFromFileName(file)
	keyID := a.KeyID
	switch {
	case a.KeyID != "" && fileID != "" && !strings.EqualFold(a.KeyID, fileID):
		c.add(LevelError, "key_id", fmt.Sprintf("key_id %s in the configuration does not match the file name %s (key %s)", a.KeyID, filepath.Base(file), fileID),
			fmt.Sprintf("set key_id: %s (or remove key_id), unless the file was renamed: the Key ID is listed under Keys in the Apple developer account", strings.ToUpper(fileID)))
	case a.KeyID != "":
		if err := creds.ValidID("key_id", a.KeyID); err != nil {
			c.add(LevelError, "key_id", err.Error(), idFix("key_id", a.KeyID))
		} else if fileID != "" {
			c.add(LevelOK, "key_id", a.KeyID+" (from the configuration; matches the file name)", "")
		} else {
			c.add(LevelOK, "key_id", a.KeyID+" (from the configuration)", "")
		}
	case fileID != "":
		keyID = fileID
		if err := creds.ValidID("key_id", fileID); err != nil {
			c.add(LevelError, "key_id", "the file name's "+err.Error(), fmt.Sprintf("rename the file AuthKey_%s.p8, or set key_id", strings.ToUpper(fileID)))
		} else {
			c.add(LevelOK, "key_id", fileID+" (from the file name "+filepath.Base(file)+")", "")
		}
	default:
		c.add(LevelError, "key_id", "no key ID: key_id is not set and the file name is not AuthKey_<KEYID>.p8",
			"set key_id to the 10-character Key ID listed under Keys in the Apple developer account")
	}
	c.KeyID = keyID

	// Team ID.
	c.TeamID = a.TeamID
	if err := creds.ValidID("team_id", a.TeamID); err != nil {
		c.add(LevelError, "team_id", err.Error(), idFix("team_id", a.TeamID))
	} else if keyID != "" && a.TeamID == strings.ToUpper(keyID) {
		c.add(LevelError, "team_id", "team_id is the same as the key ID: they are different IDs",
			"set team_id to the Team ID shown under Membership details in the Apple developer account")
	} else {
		c.add(LevelOK, "team_id", a.TeamID, "")
	}

	// Topics and environment.
	checkTopics(&c, a)
	checkEnvironment(&c, cfg, a)

	// A provider token, signed as the server would, shown decoded.
	if key != nil {
		c.Fingerprint = creds.PublicFingerprint(&key.PublicKey)
		c.add(LevelOK, "fingerprint", c.Fingerprint+" (SHA-256 of the public key; /readyz shows the same for the key in use)", "")
		checkSignToken(&c, key, keyID, a.TeamID, env)
	}

	// The server's verdict, from the server's loader: whatever the checks
	// above found, they cannot call usable what the server refuses.
	_, _, _, err := creds.LoadAPNsKeyFile(creds.APNsSpec{Name: c.Name, KeyFile: a.KeyFile, KeyID: a.KeyID, TeamID: a.TeamID, Topics: a.Topics, Environment: a.Environment})
	c.Usable = err == nil
	if err != nil && !slices.ContainsFunc(c.Findings, func(f Finding) bool { return f.Level == LevelError }) {
		c.add(LevelError, "load", "the server cannot load this credential: "+err.Error(), p8Fix)
	}
	return c
}

// resolveKeyFile resolves key_file with the server's rule
// (creds.ResolveKeyFile: a pattern must match exactly one regular file) and
// reports a pattern's outcome. It returns "" when there is no file to read.
func resolveKeyFile(c *Credential, pattern string) string {
	file, err := creds.ResolveKeyFile(pattern)
	switch {
	case errors.Is(err, filepath.ErrBadPattern):
		c.add(LevelError, "key_file", err.Error(), "fix the pattern, such as /secrets/apns/AuthKey_*.p8")
		return ""
	case err != nil:
		c.add(LevelError, "key_file", err.Error(),
			"make the pattern match exactly one file: put the AuthKey_<KEYID>.p8 where it looks, or leave only one key there (Kubernetes: check the Secret's keys and the volume's mountPath)")
		return ""
	case file != pattern:
		c.add(LevelOK, "key_file", fmt.Sprintf("pattern %s matches %s", pattern, file), "")
	}
	return file
}

const p8Fix = "download the APNs key (Certificates, Identifiers & Profiles > Keys > + > Apple Push Notifications service) and point key_file at its AuthKey_<KEYID>.p8"

// checkKeyData parses the key with creds.ParseP8 (the server's parser) and
// names the usual mistakes. It returns the key when it is usable.
func checkKeyData(c *Credential, path string, data []byte) *ecdsa.PrivateKey {
	key, err := creds.ParseP8(data)
	if err == nil {
		kind := "PKCS#8"
		if b, _ := pem.Decode(data); b != nil && b.Type != "PRIVATE KEY" {
			kind = "SEC1 (" + b.Type + ")"
		}
		c.add(LevelOK, "parse", kind+" ECDSA private key", "")
		c.add(LevelOK, "curve", "P-256, as ES256 requires", "")
		if ext := strings.ToLower(filepath.Ext(path)); ext != ".p8" {
			c.add(LevelWarn, "key_file", "the file name ends in "+ext+", not .p8; the key is fine", "keep Apple's file name AuthKey_<KEYID>.p8: the key ID is read from it")
		}
		return key
	}
	msg := strings.TrimPrefix(err.Error(), creds.ErrNotP8.Error()+": ")
	block, _ := pem.Decode(data)
	ext := strings.ToLower(filepath.Ext(path))
	switch {
	case ext == ".p12" || ext == ".pfx" || ext == ".cer" || ext == ".crt" || (block == nil && len(data) > 1 && data[0] == 0x30):
		c.add(LevelError, "parse", fmt.Sprintf("%s is not a .p8 key: %s", filepath.Base(path), msg),
			"certificates and .p12 bundles are for certificate auth, which pushproxy does not use; "+p8Fix)
	case block != nil && block.Type == "CERTIFICATE":
		c.add(LevelError, "parse", "the file is a certificate, not the private key: "+msg, p8Fix)
	case isRSA(block):
		c.add(LevelError, "key_type", "the file is an RSA key; APNs provider tokens are ES256 (ECDSA P-256)", p8Fix)
	default:
		if curve := ecCurve(block); curve != "" && curve != "P-256" {
			c.add(LevelError, "curve", "the key is on curve "+curve+"; APNs needs P-256 (ES256)", p8Fix)
			return nil
		}
		c.add(LevelError, "parse", msg, p8Fix)
	}
	return nil
}

func isRSA(b *pem.Block) bool {
	if b == nil {
		return false
	}
	if b.Type == "RSA PRIVATE KEY" {
		return true
	}
	if b.Type == "PRIVATE KEY" {
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		_, ok := k.(*rsa.PrivateKey)
		return err == nil && ok
	}
	return false
}

func ecCurve(b *pem.Block) string {
	if b == nil {
		return ""
	}
	var key any
	switch b.Type {
	case "PRIVATE KEY":
		key, _ = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, _ = x509.ParseECPrivateKey(b.Bytes)
	}
	if k, ok := key.(*ecdsa.PrivateKey); ok {
		if k.Curve == elliptic.P256() {
			return "P-256"
		}
		return k.Curve.Params().Name
	}
	return ""
}

// idFix is the one-line fix for a malformed key or team ID.
func idFix(field, id string) string {
	squeezed := strings.ToUpper(strings.Join(strings.Fields(id), ""))
	if creds.ValidID(field, squeezed) == nil {
		return fmt.Sprintf("write %s: %s (10 upper-case letters or digits, no spaces)", field, squeezed)
	}
	where := "Membership details"
	if field == "key_id" {
		where = "Keys"
	}
	return fmt.Sprintf("copy the 10-character %s from %s in the Apple developer account", strings.ReplaceAll(field, "_", " "), where)
}

// checkTopics reports the topics and the usual mistakes in them.
func checkTopics(c *Credential, a proxy.APNsConfig) {
	if len(a.Topics) == 0 {
		c.add(LevelWarn, "topics", "no topics: this credential catches every topic, and each notification must name to.apns.topic",
			"list the app's bundle IDs in topics (the first is the default topic)")
		return
	}
	c.add(LevelOK, "topics", strings.Join(a.Topics, ", ")+" (default "+a.Topics[0]+")", "")
	for _, t := range a.Topics {
		for _, p := range translate.PushTypes {
			if p.TopicSuffix != "" && strings.HasSuffix(t, p.TopicSuffix) {
				c.add(LevelWarn, "topics", fmt.Sprintf("topic %s ends in %s: topics are bundle IDs, and pushproxy appends the suffix of a %s push itself", t, p.TopicSuffix, p.Name),
					"list "+strings.TrimSuffix(t, p.TopicSuffix)+" instead")
			}
		}
	}
}

// devMarker reports whether a dot-separated part of a bundle ID marks a
// development build.
func devMarker(part string) bool {
	switch part {
	case "dev", "debug", "development", "sandbox":
		return true
	}
	return false
}

// checkEnvironment reports the APNs host and the development heuristic
// described in the file comment.
func checkEnvironment(c *Credential, cfg *proxy.Config, a proxy.APNsConfig) {
	switch a.Environment {
	case "production", "":
		c.add(LevelOK, "environment", "production ("+cfg.Upstream.APNsProductionURL+"): tokens of TestFlight and App Store builds; a development build's token is answered BadDeviceToken (use auto to try both)", "")
		return
	case "auto":
		c.add(LevelOK, "environment", "auto: production first, and the development host once on BadDeviceToken", "")
		return
	case "development":
	default:
		return // the configuration finding names it
	}
	var releaseLike []string
	for _, t := range a.Topics {
		parts := strings.Split(strings.ToLower(t), ".")
		marked := slices.ContainsFunc(parts, devMarker)
		covered := slices.ContainsFunc(cfg.APNs, func(o proxy.APNsConfig) bool {
			return o.Name != a.Name && (o.Environment == "production" || o.Environment == "auto") && slices.Contains(o.Topics, t)
		})
		if !marked && !covered {
			releaseLike = append(releaseLike, t)
		}
	}
	if len(releaseLike) == 0 {
		c.add(LevelOK, "environment", "development ("+cfg.Upstream.APNsDevelopmentURL+"): only tokens of development builds (Xcode, development provisioning profile) are accepted", "")
		return
	}
	c.add(LevelWarn, "environment", fmt.Sprintf("development (sandbox) only, but %s looks like a release app's topic and no production credential lists it: tokens of TestFlight and App Store builds are production tokens and will be refused (BadDeviceToken)",
		strings.Join(releaseLike, ", ")),
		"use environment: production (or auto) unless only development builds send tokens here; or add a production credential for these topics")
}

// checkSignToken signs a provider token with the server's token source and
// shows its decoded header and claims (never the token or its signature).
func checkSignToken(c *Credential, key *ecdsa.PrivateKey, keyID, teamID string, env Env) {
	ts := creds.NewTokenSource(keyID, teamID, key, env.Now, nil)
	tok, err := ts.Token()
	if err != nil {
		c.add(LevelError, "token", "cannot sign a provider token: "+err.Error(), p8Fix)
		return
	}
	header, claims, err := creds.DecodeToken(tok)
	if err != nil {
		c.add(LevelError, "token", "cannot decode the signed token: "+err.Error(), "report this: pushproxy signed a token it cannot read")
		return
	}
	_, verr := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"ES256"}))
	if verr != nil {
		c.add(LevelError, "token", "the signed token does not verify with the key's public half: "+verr.Error(), "report this: the key file may be damaged")
		return
	}
	c.Token = &Token{Header: header, Claims: claims}
	hj, _ := json.Marshal(header)
	cj, _ := json.Marshal(claims)
	iat := ""
	if v, ok := claims["iat"].(float64); ok {
		iat = fmt.Sprintf("; iat %s, aligned to a %d-minute bucket so every replica signs the same token", time.Unix(int64(v), 0).UTC().Format(time.RFC3339), int(creds.TokenBucket.Minutes()))
	}
	c.add(LevelOK, "token", fmt.Sprintf("signed and verified an ES256 provider token: header %s, claims %s%s (the token itself is not shown)", hj, cj, iat), "")
}
