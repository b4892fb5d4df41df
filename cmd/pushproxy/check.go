package main

// pushproxy check --config FILE [--json]: offline diagnosis of a
// configuration and the credential files it names.
//
// It reads the configuration with proxy.LoadConfig (a configuration error is
// a finding, and the per-credential checks still run on what could be
// decoded), then, for each APNs credential: the key file (path, size, mode,
// age), the key itself (creds.ParseP8: PKCS#8 ECDSA on P-256), key ID (from
// the file name or the configuration) and team ID (creds.ValidID), the
// public key's fingerprint (the one /readyz shows), the topics and the
// environment; and it signs a provider token exactly as the server would
// (creds.NewTokenSource) and shows its decoded header and claims, never the
// token or its signature. Nothing secret is printed: no key material, no
// token, no contents of the auth token file.
//
// Each finding has a level (ok, warn, error), the check's name, a message
// and, when something is wrong, a one-line fix. Exit status: 0 when nothing
// is wrong (warnings are printed but do not fail), 1 when a problem was
// found, 2 on a usage error.
//
// Decisions:
//   - Clock: without network, only gross errors are detectable: a system time
//     before this build's date (or before checkClockFloor, for builds without
//     VCS information), or after 2100. A skew of minutes is invisible here;
//     the running server compares its clock with APNs's Date header and
//     reports skew in /readyz.
//   - Development environment heuristic: a development credential signs for
//     the sandbox host, where only tokens of development builds (Xcode debug
//     runs, development provisioning profiles) are valid; TestFlight and App
//     Store builds have production tokens. pushproxy cannot tell from a
//     bundle ID which builds will send tokens, so check warns when a
//     development credential lists a topic that (a) no production or auto
//     credential also lists and (b) carries no development marker in its
//     name (a dot-separated part .dev, .debug, .development or .sandbox):
//     such a topic looks like a release app that this configuration can only
//     reach in the sandbox.
//   - Key file mode: a warning when the file is readable or writable by
//     others, or by a group that is not one of this process's own groups
//     (Kubernetes mounts a Secret with defaultMode 0400 and an fsGroup as
//     0440 root:<fsGroup>: readable by the pod's own group, which is fine).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"gopkg.in/yaml.v3"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

// Finding levels.
const (
	checkOK    = "ok"
	checkWarn  = "warn"
	checkError = "error"
)

// checkClockFloor is a date this code cannot have been built before: a
// system clock earlier than it is certainly wrong, even in a build without
// VCS information.
var checkClockFloor = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// checkFinding is one result of one check.
type checkFinding struct {
	Level   string `json:"level"` // ok | warn | error
	Check   string `json:"check"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// checkToken is a freshly signed provider token, decoded: never the token
// itself, never its signature.
type checkToken struct {
	Header map[string]any `json:"header"`
	Claims map[string]any `json:"claims"`
}

// checkCredential is the report on one credential.
type checkCredential struct {
	Platform    string         `json:"platform"` // apns | webpush
	Name        string         `json:"name"`
	File        string         `json:"file,omitempty"`
	KeyID       string         `json:"key_id,omitempty"`
	TeamID      string         `json:"team_id,omitempty"`
	Fingerprint string         `json:"fingerprint,omitempty"`
	Topics      []string       `json:"topics,omitempty"`
	Environment string         `json:"environment,omitempty"`
	Token       *checkToken    `json:"token,omitempty"`
	Findings    []checkFinding `json:"findings"`
}

func (c *checkCredential) add(level, check, message, fix string) {
	c.Findings = append(c.Findings, checkFinding{Level: level, Check: check, Message: message, Fix: fix})
}

// checkReport is the whole diagnosis (the --json output).
type checkReport struct {
	Config      string            `json:"config"`
	Status      string            `json:"status"` // ok | warn | error: the worst level found
	Errors      int               `json:"errors"`
	Warnings    int               `json:"warnings"`
	General     []checkFinding    `json:"general"` // configuration, clock, shared files
	Credentials []checkCredential `json:"credentials"`
}

func (r *checkReport) add(level, check, message, fix string) {
	r.General = append(r.General, checkFinding{Level: level, Check: check, Message: message, Fix: fix})
}

// checkEnv is what the checks take from the outside world.
type checkEnv struct {
	now func() time.Time
	// built is when this binary was built (VCS time), zero when unknown.
	built time.Time
}

// checkPlatform is one platform's credential checks: it takes the decoded
// configuration and returns a report per credential.
type checkPlatform func(cfg *proxy.Config, env checkEnv) []checkCredential

// checkPlatforms are run in order on every configuration; each returned
// checkCredential names its platform.
var checkPlatforms = []checkPlatform{checkAPNsCredentials, checkWebPush}

// runCheck is the check subcommand.
func runCheck(args []string, stdout, stderr io.Writer) int {
	return runCheckEnv(args, stdout, stderr, checkEnv{now: time.Now, built: buildTime()})
}

func runCheckEnv(args []string, stdout, stderr io.Writer, env checkEnv) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file to check (required)")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pushproxy check --config FILE [--json]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || fs.NArg() > 0 {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "pushproxy check: unexpected argument %q\n", fs.Arg(0))
		} else {
			fmt.Fprintln(stderr, "pushproxy check: --config FILE is required")
		}
		fs.Usage()
		return 2
	}
	rep := diagnose(*configPath, env)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(rep)
	} else {
		rep.print(stdout)
	}
	if rep.Errors > 0 {
		return 1
	}
	return 0
}

// buildTime is the VCS commit time recorded in the binary, if any.
func buildTime() time.Time {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return time.Time{}
	}
	for _, kv := range bi.Settings {
		if kv.Key == "vcs.time" {
			if t, err := time.Parse(time.RFC3339, kv.Value); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// diagnose runs every check on one configuration file.
func diagnose(path string, env checkEnv) *checkReport {
	rep := &checkReport{Config: path, General: []checkFinding{}, Credentials: []checkCredential{}}
	cfg := checkLoadConfig(rep, path)
	checkClock(rep, env)
	if cfg != nil {
		checkSharedFiles(rep, cfg, env)
		for _, p := range checkPlatforms {
			rep.Credentials = append(rep.Credentials, p(cfg, env)...)
		}
		if len(cfg.APNs) == 0 && (cfg.WebPush == nil || len(cfg.WebPush.Keys) == 0) {
			rep.add(checkError, "credentials", "the configuration has no credential: nothing can be sent",
				"add an apns entry (key_file, team_id, topics); config.example.yaml shows one")
		}
	}
	rep.tally()
	return rep
}

func (r *checkReport) tally() {
	count := func(fs []checkFinding) {
		for _, f := range fs {
			switch f.Level {
			case checkError:
				r.Errors++
			case checkWarn:
				r.Warnings++
			}
		}
	}
	count(r.General)
	for _, c := range r.Credentials {
		count(c.Findings)
	}
	switch {
	case r.Errors > 0:
		r.Status = checkError
	case r.Warnings > 0:
		r.Status = checkWarn
	default:
		r.Status = checkOK
	}
}

// isCredentialIDError matches the configuration errors that the
// per-credential checks report themselves, with a fix (so that they are not
// listed twice).
func isCredentialIDError(line string) bool {
	var i int
	var rest string
	if n, _ := fmt.Sscanf(line, "apns[%d].%s", &i, &rest); n != 2 {
		return false
	}
	return strings.HasPrefix(rest, "key_id") || strings.HasPrefix(rest, "team_id")
}

// checkLoadConfig loads the file strictly (as serve does) and reports what
// fails; if that fails it decodes the file leniently so that the credential
// checks can still run. It returns nil when nothing could be decoded.
func checkLoadConfig(rep *checkReport, path string) *proxy.Config {
	cfg, err := proxy.LoadConfig(path)
	if err == nil {
		rep.add(checkOK, "config", "parsed and validated ("+plural(len(cfg.APNs), "APNs credential")+")", "")
		return cfg
	}
	data, rerr := os.ReadFile(path)
	if rerr != nil {
		fix := "give the path of the configuration file (config.example.yaml documents every option)"
		if errors.Is(rerr, os.ErrPermission) {
			fix = "make the file readable by the user that runs pushproxy"
		}
		rep.add(checkError, "config", rerr.Error(), fix)
		return nil
	}
	lenient := proxy.Defaults()
	if yerr := yaml.Unmarshal(data, &lenient); yerr != nil {
		rep.add(checkError, "config", err.Error(), "fix the YAML at the line named; config.example.yaml documents every option")
		return nil
	}
	_ = lenient.Validate() // fills the defaults it derives (names, environment)
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "config "+path+": ")
	reported := false
	for _, line := range strings.Split(msg, "\n") {
		if line == "" || isCredentialIDError(line) {
			continue
		}
		reported = true
		rep.add(checkError, "config", line, "correct the key named; config.example.yaml documents every option and its default")
	}
	if !reported {
		rep.add(checkError, "config", "the configuration is refused: see the credential findings below", "correct the IDs as the credential findings say")
	}
	return &lenient
}

// checkClock looks for gross clock errors (offline).
func checkClock(rep *checkReport, env checkEnv) {
	now := env.now()
	floor, floorWhat := checkClockFloor, "the date this version was written"
	if env.built.After(floor) {
		floor, floorWhat = env.built, "this binary's build (commit) date"
	}
	const honest = "offline, only gross errors are detectable; APNs refuses provider tokens whose iat is off by an hour or more (ExpiredProviderToken), and once running /readyz reports the skew against APNs's Date header"
	switch {
	case now.Before(floor):
		rep.add(checkError, "clock", fmt.Sprintf("the system time %s is before %s (%s): the clock is wrong, and APNs will refuse every provider token",
			now.UTC().Format(time.RFC3339), floorWhat, floor.UTC().Format(time.DateOnly)),
			"set the clock and keep it synchronised (NTP / chrony / systemd-timesyncd)")
	case now.Year() >= 2100:
		rep.add(checkError, "clock", fmt.Sprintf("the system time %s is absurd: the clock is wrong, and APNs will refuse every provider token", now.UTC().Format(time.RFC3339)),
			"set the clock and keep it synchronised (NTP / chrony / systemd-timesyncd)")
	default:
		rep.add(checkOK, "clock", fmt.Sprintf("system time %s (not before %s); %s", now.UTC().Format(time.RFC3339), floorWhat, honest), "")
	}
}

// checkSharedFiles checks the files that are not credentials of one
// platform: the bearer token file and the extra CA file. Their contents are
// never printed.
func checkSharedFiles(rep *checkReport, cfg *proxy.Config, env checkEnv) {
	if p := cfg.AuthTokenFile; p != "" {
		data, err := os.ReadFile(p)
		switch {
		case err != nil:
			rep.add(checkError, "auth_token_file", fmt.Sprintf("%s: %v; the server refuses every caller until it can read the token", p, err),
				"create the file with the bearer token callers will send (or remove auth_token_file)")
		case len(strings.TrimSpace(string(data))) == 0:
			rep.add(checkError, "auth_token_file", p+" is empty; the server refuses every caller",
				"write the bearer token into the file (surrounding whitespace is trimmed)")
		default:
			rep.add(checkOK, "auth_token_file", fmt.Sprintf("%s: a token of %d characters (not shown)", p, len(strings.TrimSpace(string(data)))), "")
			if f := checkFileMode(p); f != nil {
				f.Check = "auth_token_file"
				rep.General = append(rep.General, *f)
			}
		}
	}
	if p := cfg.Upstream.CAFile; p != "" {
		data, err := os.ReadFile(p)
		switch {
		case err != nil:
			rep.add(checkError, "ca_file", fmt.Sprintf("%s: %v; the server will not start", p, err), "fix upstream.ca_file, or remove it to trust only the system's roots")
		case !x509.NewCertPool().AppendCertsFromPEM(data):
			rep.add(checkError, "ca_file", p+": no PEM certificate found; the server will not start", "upstream.ca_file must hold PEM CERTIFICATE blocks")
		default:
			rep.add(checkOK, "ca_file", p+": PEM roots found (trusted besides the system's)", "")
		}
	}
}

// checkFileMode warns when a secret file is readable or writable by others,
// or by a group that is not this process's own (see the package comment).
func checkFileMode(path string) *checkFinding {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	mode := fi.Mode().Perm()
	if mode&0o077 == 0 {
		return nil
	}
	if mode&0o007 == 0 && mode&0o020 == 0 && ownGroup(fi) {
		return nil // group-readable by our own group: a Kubernetes fsGroup mount
	}
	who := "other users"
	if mode&0o007 == 0 {
		who = "its group"
	}
	return &checkFinding{Level: checkWarn, Check: "file_mode",
		Message: fmt.Sprintf("%s is readable or writable by %s (mode %04o); the key should be readable by pushproxy alone", path, who, mode),
		Fix:     fmt.Sprintf("chmod 600 %s (Kubernetes: defaultMode: 0400 on the Secret volume)", path)}
}

func ownGroup(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	gid := int(st.Gid)
	if gid == os.Getgid() || gid == os.Getegid() {
		return true
	}
	groups, _ := os.Getgroups()
	return slices.Contains(groups, gid)
}

// checkAPNsCredentials checks every APNs credential.
func checkAPNsCredentials(cfg *proxy.Config, env checkEnv) []checkCredential {
	var out []checkCredential
	for i, a := range cfg.APNs {
		out = append(out, checkAPNs(cfg, i, a, env))
	}
	return out
}

func checkAPNs(cfg *proxy.Config, index int, a proxy.APNsConfig, env checkEnv) checkCredential {
	c := checkCredential{Platform: translate.PlatformAPNs, Name: a.Name, File: a.KeyFile, Topics: a.Topics, Environment: a.Environment, Findings: []checkFinding{}}
	if c.Name == "" {
		c.Name = fmt.Sprintf("apns[%d]", index)
	}
	now := env.now()

	// The key file (key_file may be a glob matching exactly one file).
	var key *ecdsa.PrivateKey
	file := a.KeyFile
	switch {
	case a.KeyFile == "":
		c.add(checkError, "key_file", "key_file is not set", "set key_file to the path of the AuthKey_<KEYID>.p8 downloaded from the Apple developer account")
	case strings.ContainsAny(filepath.Base(file), "*?["):
		file = checkKeyGlob(&c, a.KeyFile)
	}
	if file != "" {
		if data, ok := checkKeyFile(&c, file, now); ok {
			key = checkKeyData(&c, file, data)
		}
	}

	// Key ID: from the configuration or the file name, and the two agree.
	fileID := creds.KeyIDFromFileName(file)
	keyID := a.KeyID
	switch {
	case a.KeyID != "" && fileID != "" && !strings.EqualFold(a.KeyID, fileID):
		c.add(checkError, "key_id", fmt.Sprintf("key_id %s in the configuration does not match the file name %s (key %s)", a.KeyID, filepath.Base(file), fileID),
			fmt.Sprintf("set key_id: %s (or remove key_id), unless the file was renamed: the Key ID is listed under Keys in the Apple developer account", strings.ToUpper(fileID)))
	case a.KeyID != "":
		if err := creds.ValidID("key_id", a.KeyID); err != nil {
			c.add(checkError, "key_id", err.Error(), idFix("key_id", a.KeyID))
		} else if fileID != "" {
			c.add(checkOK, "key_id", a.KeyID+" (from the configuration; matches the file name)", "")
		} else {
			c.add(checkOK, "key_id", a.KeyID+" (from the configuration)", "")
		}
	case fileID != "":
		keyID = fileID
		if err := creds.ValidID("key_id", fileID); err != nil {
			c.add(checkError, "key_id", "the file name's "+err.Error(), fmt.Sprintf("rename the file AuthKey_%s.p8, or set key_id", strings.ToUpper(fileID)))
		} else {
			c.add(checkOK, "key_id", fileID+" (from the file name "+filepath.Base(file)+")", "")
		}
	default:
		c.add(checkError, "key_id", "no key ID: key_id is not set and the file name is not AuthKey_<KEYID>.p8",
			"set key_id to the 10-character Key ID listed under Keys in the Apple developer account")
	}
	c.KeyID = keyID

	// Team ID.
	c.TeamID = a.TeamID
	if err := creds.ValidID("team_id", a.TeamID); err != nil {
		c.add(checkError, "team_id", err.Error(), idFix("team_id", a.TeamID))
	} else if keyID != "" && a.TeamID == strings.ToUpper(keyID) {
		c.add(checkError, "team_id", "team_id is the same as the key ID: they are different IDs",
			"set team_id to the Team ID shown under Membership details in the Apple developer account")
	} else {
		c.add(checkOK, "team_id", a.TeamID, "")
	}

	// Topics and environment.
	checkTopics(&c, a)
	checkEnvironment(&c, cfg, a)

	// A provider token, signed as the server would, shown decoded.
	if key != nil {
		c.Fingerprint = creds.PublicFingerprint(&key.PublicKey)
		c.add(checkOK, "fingerprint", c.Fingerprint+" (SHA-256 of the public key; /readyz shows the same for the key in use)", "")
		checkSignToken(&c, key, keyID, a.TeamID, env)
	}
	return c
}

// checkKeyGlob resolves a key_file pattern as the server does: it must
// match exactly one regular file. It returns "" when it does not.
func checkKeyGlob(c *checkCredential, pattern string) string {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		c.add(checkError, "key_file", fmt.Sprintf("key_file %q is not a valid pattern: %v", pattern, err), "fix the pattern, such as /secrets/apns/AuthKey_*.p8")
		return ""
	}
	var files []string
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
			files = append(files, m)
		}
	}
	switch len(files) {
	case 0:
		c.add(checkError, "key_file", fmt.Sprintf("key_file %q matches no file", pattern), "put the AuthKey_<KEYID>.p8 where the pattern looks (Kubernetes: check the Secret's key and the volume's mountPath)")
		return ""
	case 1:
		c.add(checkOK, "key_file", fmt.Sprintf("pattern %s matches %s", pattern, filepath.Base(files[0])), "")
		return files[0]
	}
	c.add(checkError, "key_file", fmt.Sprintf("key_file %q matches %d files (%s)", pattern, len(files), strings.Join(files, ", ")), "leave exactly one key in the directory, or name the file")
	return ""
}

// checkKeyFile reports where the file is, its size, mode and age, and
// returns its contents.
func checkKeyFile(c *checkCredential, path string, now time.Time) ([]byte, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		fix := "put the .p8 at this path (Kubernetes: check the Secret's name and key and the volume's mountPath)"
		if errors.Is(err, os.ErrPermission) {
			fix = "make the file (and its directory) readable by the user that runs pushproxy"
		}
		c.add(checkError, "key_file", err.Error(), fix)
		return nil, false
	}
	if fi.IsDir() {
		c.add(checkError, "key_file", path+" is a directory", "point key_file at the .p8 file inside it")
		return nil, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		c.add(checkError, "key_file", err.Error(), "make the file readable by the user that runs pushproxy")
		return nil, false
	}
	where := path
	if lfi, err := os.Lstat(path); err == nil && lfi.Mode()&os.ModeSymlink != 0 {
		if target, err := filepath.EvalSymlinks(path); err == nil {
			where += " → " + target
		}
	}
	age := now.Sub(fi.ModTime())
	c.add(checkOK, "key_file", fmt.Sprintf("found %s (%d bytes, mode %04o, modified %s, %s ago)",
		where, len(data), fi.Mode().Perm(), fi.ModTime().UTC().Format(time.RFC3339), roundAge(age)), "")
	if age < -5*time.Minute {
		c.add(checkWarn, "clock", fmt.Sprintf("the key file was modified %s in the future: this clock, or the one of the machine that wrote it, is wrong", roundAge(-age)),
			"check the system time (NTP)")
	}
	if f := checkFileMode(path); f != nil {
		c.Findings = append(c.Findings, *f)
	}
	return data, true
}

func roundAge(d time.Duration) string {
	switch {
	case d < 0:
		d = -d
	}
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

const p8Fix = "download the APNs key (Certificates, Identifiers & Profiles > Keys > + > Apple Push Notifications service) and point key_file at its AuthKey_<KEYID>.p8"

// checkKeyData parses the key with creds.ParseP8 (the server's parser) and
// names the usual mistakes. It returns the key when it is usable.
func checkKeyData(c *checkCredential, path string, data []byte) *ecdsa.PrivateKey {
	key, err := creds.ParseP8(data)
	if err == nil {
		kind := "PKCS#8"
		if b, _ := pem.Decode(data); b != nil && b.Type != "PRIVATE KEY" {
			kind = "SEC1 (" + b.Type + ")"
		}
		c.add(checkOK, "parse", kind+" ECDSA private key", "")
		c.add(checkOK, "curve", "P-256, as ES256 requires", "")
		if ext := strings.ToLower(filepath.Ext(path)); ext != ".p8" {
			c.add(checkWarn, "key_file", "the file name ends in "+ext+", not .p8; the key is fine", "keep Apple's file name AuthKey_<KEYID>.p8: the key ID is read from it")
		}
		return key
	}
	msg := strings.TrimPrefix(err.Error(), creds.ErrNotP8.Error()+": ")
	block, _ := pem.Decode(data)
	ext := strings.ToLower(filepath.Ext(path))
	switch {
	case ext == ".p12" || ext == ".pfx" || ext == ".cer" || ext == ".crt" || (block == nil && len(data) > 1 && data[0] == 0x30):
		c.add(checkError, "parse", fmt.Sprintf("%s is not a .p8 key: %s", filepath.Base(path), msg),
			"certificates and .p12 bundles are for certificate auth, which pushproxy does not use; "+p8Fix)
	case block != nil && block.Type == "CERTIFICATE":
		c.add(checkError, "parse", "the file is a certificate, not the private key: "+msg, p8Fix)
	case isRSA(block):
		c.add(checkError, "key_type", "the file is an RSA key; APNs provider tokens are ES256 (ECDSA P-256)", p8Fix)
	default:
		if curve := ecCurve(block); curve != "" && curve != "P-256" {
			c.add(checkError, "curve", "the key is on curve "+curve+"; APNs needs P-256 (ES256)", p8Fix)
			return nil
		}
		c.add(checkError, "parse", msg, p8Fix)
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
func checkTopics(c *checkCredential, a proxy.APNsConfig) {
	if len(a.Topics) == 0 {
		c.add(checkWarn, "topics", "no topics: this credential catches every topic, and each notification must name to.apns.topic",
			"list the app's bundle IDs in topics (the first is the default topic)")
		return
	}
	c.add(checkOK, "topics", strings.Join(a.Topics, ", ")+" (default "+a.Topics[0]+")", "")
	for _, t := range a.Topics {
		for _, p := range translate.PushTypes {
			if p.TopicSuffix != "" && strings.HasSuffix(t, p.TopicSuffix) {
				c.add(checkWarn, "topics", fmt.Sprintf("topic %s ends in %s: topics are bundle IDs, and pushproxy appends the suffix of a %s push itself", t, p.TopicSuffix, p.Name),
					"list "+strings.TrimSuffix(t, p.TopicSuffix)+" instead")
			}
		}
	}
}

// devMarkers are the parts of a bundle ID that mark a development build.
var devMarkers = []string{"dev", "debug", "development", "sandbox"}

// checkEnvironment reports the APNs host and the development heuristic
// described in the file comment.
func checkEnvironment(c *checkCredential, cfg *proxy.Config, a proxy.APNsConfig) {
	switch a.Environment {
	case "production", "":
		c.add(checkOK, "environment", "production ("+cfg.Upstream.APNsProductionURL+"): tokens of TestFlight and App Store builds; a development build's token is answered BadDeviceToken (use auto to try both)", "")
		return
	case "auto":
		c.add(checkOK, "environment", "auto: production first, and the development host once on BadDeviceToken", "")
		return
	case "development":
	default:
		return // the configuration finding names it
	}
	var releaseLike []string
	for _, t := range a.Topics {
		parts := strings.Split(strings.ToLower(t), ".")
		marked := slices.ContainsFunc(parts, func(p string) bool { return slices.Contains(devMarkers, p) })
		covered := slices.ContainsFunc(cfg.APNs, func(o proxy.APNsConfig) bool {
			return o.Name != a.Name && (o.Environment == "production" || o.Environment == "auto") && slices.Contains(o.Topics, t)
		})
		if !marked && !covered {
			releaseLike = append(releaseLike, t)
		}
	}
	if len(releaseLike) == 0 {
		c.add(checkOK, "environment", "development ("+cfg.Upstream.APNsDevelopmentURL+"): only tokens of development builds (Xcode, development provisioning profile) are accepted", "")
		return
	}
	c.add(checkWarn, "environment", fmt.Sprintf("development (sandbox) only, but %s looks like a release app's topic and no production credential lists it: tokens of TestFlight and App Store builds are production tokens and will be refused (BadDeviceToken)",
		strings.Join(releaseLike, ", ")),
		"use environment: production (or auto) unless only development builds send tokens here; or add a production credential for these topics")
}

// checkSignToken signs a provider token with the server's token source and
// shows its decoded header and claims (never the token or its signature).
func checkSignToken(c *checkCredential, key *ecdsa.PrivateKey, keyID, teamID string, env checkEnv) {
	ts := creds.NewTokenSource(keyID, teamID, key, env.now, nil)
	tok, err := ts.Token()
	if err != nil {
		c.add(checkError, "token", "cannot sign a provider token: "+err.Error(), p8Fix)
		return
	}
	header, claims, err := creds.DecodeToken(tok)
	if err != nil {
		c.add(checkError, "token", "cannot decode the signed token: "+err.Error(), "report this: pushproxy signed a token it cannot read")
		return
	}
	_, verr := jwt.Parse(tok, func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"ES256"}))
	if verr != nil {
		c.add(checkError, "token", "the signed token does not verify with the key's public half: "+verr.Error(), "report this: the key file may be damaged")
		return
	}
	c.Token = &checkToken{Header: header, Claims: claims}
	hj, _ := json.Marshal(header)
	cj, _ := json.Marshal(claims)
	iat := ""
	if v, ok := claims["iat"].(float64); ok {
		iat = fmt.Sprintf("; iat %s, aligned to a %d-minute bucket so every replica signs the same token", time.Unix(int64(v), 0).UTC().Format(time.RFC3339), int(creds.TokenBucket.Minutes()))
	}
	c.add(checkOK, "token", fmt.Sprintf("signed and verified an ES256 provider token: header %s, claims %s%s (the token itself is not shown)", hj, cj, iat), "")
}

// checkWebPush checks the webpush section: the subject Apple and the
// others accept, and every VAPID key: found, parses (web-push JSON or PEM),
// P-256, public key 65 bytes and matching the private key (swapped values
// named), written in unpadded base64url; then a freshly signed JWT,
// decoded.
func checkWebPush(cfg *proxy.Config, env checkEnv) []checkCredential {
	w := cfg.WebPush
	if w == nil || len(w.Keys) == 0 {
		return nil
	}
	var out []checkCredential
	for i, k := range w.Keys {
		c := checkCredential{Platform: translate.PlatformWebPush, Name: k.Name, File: k.File, Findings: []checkFinding{}}
		if i == 0 {
			if err := creds.ValidateSubject(w.Subject); err != nil {
				c.add(checkError, "subject", fmt.Sprintf("webpush.subject %q: %v", w.Subject, err),
					"use mailto:ops@your-domain (exactly one mailto:, no localhost) or an https:// URL of your site")
			} else {
				c.add(checkOK, "subject", w.Subject, "")
			}
		}
		data, ok := checkKeyFile(&c, k.File, env.now())
		if !ok {
			out = append(out, c)
			continue
		}
		key, err := creds.ParseVAPIDKey(data)
		if err != nil {
			c.add(checkError, "vapid_key", err.Error(), "generate a pair with pushproxy vapid-keys (or web-push generate-vapid-keys --json) and keep publicKey and privateKey as they come")
			out = append(out, c)
			continue
		}
		for _, warn := range key.Warnings {
			c.add(checkWarn, "vapid_key", warn, "write both keys in unpadded base64url, as web-push generate-vapid-keys --json does")
		}
		c.Fingerprint = key.Fingerprint
		primary := ""
		if i == 0 {
			primary = "; primary: new subscribers must use it as applicationServerKey"
		}
		c.add(checkOK, "vapid_key", fmt.Sprintf("P-256 key pair, public key %s (fingerprint %s)%s", key.PublicB64, key.Fingerprint, primary), "")
		if creds.ValidateSubject(w.Subject) == nil {
			signer := creds.NewVAPIDSigner(key, w.Subject, env.now, nil)
			auth, err := signer.Authorization("https://fcm.googleapis.com/fcm/send/check")
			if err != nil {
				c.add(checkError, "token", "cannot sign a VAPID JWT: "+err.Error(), "regenerate the key pair")
			} else if tok, _, err := creds.ParseVAPIDAuthorization(auth); err == nil {
				header, claims, err := creds.DecodeToken(tok)
				if err == nil {
					c.Token = &checkToken{Header: header, Claims: claims}
					hj, _ := json.Marshal(header)
					cj, _ := json.Marshal(claims)
					c.add(checkOK, "token", fmt.Sprintf("signed a VAPID JWT for FCM: header %s, claims %s (the token itself is not shown)", hj, cj), "")
				}
			}
		}
		out = append(out, c)
	}
	return out
}

// print writes the human-readable report.
func (r *checkReport) print(w io.Writer) {
	fmt.Fprintf(w, "pushproxy check: %s\n", r.Config)
	section := func(title string, fs []checkFinding) {
		fmt.Fprintf(w, "\n%s\n", title)
		for _, f := range fs {
			label := map[string]string{checkOK: "ok", checkWarn: "WARN", checkError: "ERROR"}[f.Level]
			fmt.Fprintf(w, "  %-5s %-15s %s\n", label, f.Check, f.Message)
			if f.Fix != "" {
				fmt.Fprintf(w, "  %-5s %-15s fix: %s\n", "", "", f.Fix)
			}
		}
	}
	section("general", r.General)
	for _, c := range r.Credentials {
		title := fmt.Sprintf("%s credential %q", c.Platform, c.Name)
		if c.File != "" {
			title += " (" + c.File + ")"
		}
		section(title, c.Findings)
	}
	fmt.Fprintf(w, "\nresult: %s: %s, %s\n", r.Status, plural(r.Errors, "error"), plural(r.Warnings, "warning"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
