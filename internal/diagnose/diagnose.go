// Package diagnose is the offline diagnosis behind pushproxy check: it
// reads a configuration and the credential files it names and reports, for
// each, what is right and what is wrong, with a one-line fix.
//
// It reads the configuration with proxy.LoadConfig (a configuration error is
// a finding, and the per-credential checks still run on what could be
// decoded), then, for each APNs credential: the key file, resolved with
// creds.ResolveKeyFile (the server's rule for a key_file pattern), its size,
// mode and age; the key itself (creds.ParseP8: PKCS#8 ECDSA on P-256), key
// ID (from the file name or the configuration) and team ID (creds.ValidID),
// the public key's fingerprint (the one /readyz shows), the topics and the
// environment; and it signs a provider token exactly as the server would
// (creds.NewTokenSource) and shows its decoded header and claims, never the
// token or its signature. Whether the server can load a credential at all is
// decided by the server's own loader (creds.LoadAPNsKeyFile,
// creds.LoadVAPIDKey), so the diagnosis and the server cannot disagree on
// it. Nothing secret is reported: no key material, no token, no contents of
// the auth token file.
//
// Each finding has a level (ok, warn, error), the check's name, a message
// and, when something is wrong, a one-line fix.
//
// Decisions:
//   - Clock: without network, only gross errors are detectable: a system time
//     before this build's date (or before the date this code was written,
//     for builds without VCS information), or after 2100. A skew of minutes
//     is invisible here; the running server compares its clock with APNs's
//     Date header and reports skew in /readyz.
//   - Development environment heuristic: a development credential signs for
//     the sandbox host, where only tokens of development builds (Xcode debug
//     runs, development provisioning profiles) are valid; TestFlight and App
//     Store builds have production tokens. pushproxy cannot tell from a
//     bundle ID which builds will send tokens, so the diagnosis warns when a
//     development credential lists a topic that (a) no production or auto
//     credential also lists and (b) carries no development marker in its
//     name (a dot-separated part .dev, .debug, .development or .sandbox):
//     such a topic looks like a release app that this configuration can only
//     reach in the sandbox.
//   - Key file mode: a warning when the file is readable or writable by
//     others, or by a group that is not one of this process's own groups
//     (Kubernetes mounts a Secret with defaultMode 0400 and an fsGroup as
//     0440 root:<fsGroup>: readable by the pod's own group, which is fine).
package diagnose

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pushproxy/pushproxy/proxy"
)

// Finding levels, from best to worst; a Report's Status is the worst found.
const (
	LevelOK    = "ok"
	LevelWarn  = "warn"
	LevelError = "error"
)

// clockFloor is a date this code cannot have been built before: a system
// clock earlier than it is certainly wrong, even in a build without VCS
// information.
func clockFloor() time.Time { return time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }

// Finding is one result of one check.
type Finding struct {
	Level   string `json:"level"` // ok | warn | error
	Check   string `json:"check"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Token is a freshly signed provider token, decoded: never the token
// itself, never its signature.
type Token struct {
	Header map[string]any `json:"header"`
	Claims map[string]any `json:"claims"`
}

// Credential is the report on one credential.
type Credential struct {
	Platform string `json:"platform"` // apns | webpush | fcm
	Name     string `json:"name"`
	// File is the file the server reads: for a key_file pattern, the one
	// file it matches, else the path as configured (as /readyz shows it).
	File string `json:"file,omitempty"`
	// Usable is the server's own verdict: its loader
	// (creds.LoadAPNsKeyFile, creds.LoadVAPIDKey; for FCM creds.NewFCMCredential
	// on the account parsed as creds.LoadFCMCredential does) accepts this
	// credential.
	// A usable credential may still carry errors that only the upstream
	// would find (a key ID that does not match the file name, …).
	Usable      bool      `json:"usable"`
	KeyID       string    `json:"key_id,omitempty"`
	TeamID      string    `json:"team_id,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Topics      []string  `json:"topics,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Token       *Token    `json:"token,omitempty"`
	Findings    []Finding `json:"findings"`
}

func (c *Credential) add(level, check, message, fix string) {
	c.Findings = append(c.Findings, Finding{Level: level, Check: check, Message: message, Fix: fix})
}

// Report is the whole diagnosis (the --json output).
type Report struct {
	Config      string       `json:"config"`
	Status      string       `json:"status"` // ok | warn | error: the worst level found
	Errors      int          `json:"errors"`
	Warnings    int          `json:"warnings"`
	General     []Finding    `json:"general"` // configuration, clock, shared files
	Credentials []Credential `json:"credentials"`
}

func (r *Report) add(level, check, message, fix string) {
	r.General = append(r.General, Finding{Level: level, Check: check, Message: message, Fix: fix})
}

// Env is what the checks take from the outside world.
type Env struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Built is when this binary was built (VCS time, see BuildTime), zero
	// when unknown.
	Built time.Time
}

// platformCheck is one platform's credential checks: it takes the decoded
// configuration and returns a report per credential.
type platformCheck func(cfg *proxy.Config, env Env) []Credential

// platformChecks are run in order on every configuration; each returned
// Credential names its platform. A new platform adds its checks here.
func platformChecks() []platformCheck {
	return []platformCheck{checkAPNsCredentials, checkWebPush, checkFCM}
}

// BuildTime is the VCS commit time recorded in the binary, if any.
func BuildTime() time.Time {
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

// Run runs every check on one configuration file.
func Run(path string, env Env) *Report {
	if env.Now == nil {
		env.Now = time.Now
	}
	rep := &Report{Config: path, General: []Finding{}, Credentials: []Credential{}}
	cfg := checkLoadConfig(rep, path)
	checkClock(rep, env)
	if cfg != nil {
		checkSharedFiles(rep, cfg, env)
		for _, p := range platformChecks() {
			rep.Credentials = append(rep.Credentials, p(cfg, env)...)
		}
		if len(cfg.APNs) == 0 && (cfg.WebPush == nil || len(cfg.WebPush.Keys) == 0) && len(cfg.FCM) == 0 {
			rep.add(LevelError, "credentials", "the configuration has no credential: nothing can be sent",
				"add an apns entry (key_file, team_id, topics), webpush keys or an fcm entry (service_account_file); config.example.yaml shows each")
		}
	}
	rep.tally()
	return rep
}

func (r *Report) tally() {
	count := func(fs []Finding) {
		for _, f := range fs {
			switch f.Level {
			case LevelError:
				r.Errors++
			case LevelWarn:
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
		r.Status = LevelError
	case r.Warnings > 0:
		r.Status = LevelWarn
	default:
		r.Status = LevelOK
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
func checkLoadConfig(rep *Report, path string) *proxy.Config {
	cfg, err := proxy.LoadConfig(path)
	if err == nil {
		var what []string
		if len(cfg.APNs) > 0 || len(cfg.FCM) == 0 && (cfg.WebPush == nil || len(cfg.WebPush.Keys) == 0) {
			what = append(what, plural(len(cfg.APNs), "APNs credential"))
		}
		if cfg.WebPush != nil && len(cfg.WebPush.Keys) > 0 {
			what = append(what, plural(len(cfg.WebPush.Keys), "VAPID key"))
		}
		if len(cfg.FCM) > 0 {
			what = append(what, plural(len(cfg.FCM), "FCM credential"))
		}
		rep.add(LevelOK, "config", "parsed and validated ("+strings.Join(what, ", ")+")", "")
		return cfg
	}
	data, rerr := os.ReadFile(path)
	if rerr != nil {
		fix := "give the path of the configuration file (config.example.yaml documents every option)"
		if errors.Is(rerr, os.ErrPermission) {
			fix = "make the file readable by the user that runs pushproxy"
		}
		rep.add(LevelError, "config", rerr.Error(), fix)
		return nil
	}
	lenient := proxy.Defaults()
	if yerr := yaml.Unmarshal(data, &lenient); yerr != nil {
		rep.add(LevelError, "config", err.Error(), "fix the YAML at the line named; config.example.yaml documents every option")
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
		rep.add(LevelError, "config", line, "correct the key named; config.example.yaml documents every option and its default")
	}
	if !reported {
		rep.add(LevelError, "config", "the configuration is refused: see the credential findings below", "correct the IDs as the credential findings say")
	}
	return &lenient
}

// checkClock looks for gross clock errors (offline).
func checkClock(rep *Report, env Env) {
	now := env.Now()
	floor, floorWhat := clockFloor(), "the date this version was written"
	if env.Built.After(floor) {
		floor, floorWhat = env.Built, "this binary's build (commit) date"
	}
	const honest = "offline, only gross errors are detectable; APNs refuses provider tokens whose iat is off by an hour or more (ExpiredProviderToken), and once running /readyz reports the skew against APNs's Date header"
	switch {
	case now.Before(floor):
		rep.add(LevelError, "clock", fmt.Sprintf("the system time %s is before %s (%s): the clock is wrong, and APNs will refuse every provider token",
			now.UTC().Format(time.RFC3339), floorWhat, floor.UTC().Format(time.DateOnly)),
			"set the clock and keep it synchronised (NTP / chrony / systemd-timesyncd)")
	case now.Year() >= 2100:
		rep.add(LevelError, "clock", fmt.Sprintf("the system time %s is absurd: the clock is wrong, and APNs will refuse every provider token", now.UTC().Format(time.RFC3339)),
			"set the clock and keep it synchronised (NTP / chrony / systemd-timesyncd)")
	default:
		rep.add(LevelOK, "clock", fmt.Sprintf("system time %s (not before %s); %s", now.UTC().Format(time.RFC3339), floorWhat, honest), "")
	}
}

// checkSharedFiles checks the files that are not credentials of one
// platform: the bearer token file and the extra CA file. Their contents are
// never printed.
func checkSharedFiles(rep *Report, cfg *proxy.Config, env Env) {
	if p := cfg.AuthTokenFile; p != "" {
		data, err := os.ReadFile(p)
		switch {
		case err != nil:
			rep.add(LevelError, "auth_token_file", fmt.Sprintf("%s: %v; the server refuses every caller until it can read the token", p, err),
				"create the file with the bearer token callers will send (or remove auth_token_file)")
		case len(strings.TrimSpace(string(data))) == 0:
			rep.add(LevelError, "auth_token_file", p+" is empty; the server refuses every caller",
				"write the bearer token into the file (surrounding whitespace is trimmed)")
		default:
			rep.add(LevelOK, "auth_token_file", fmt.Sprintf("%s: a token of %d characters (not shown)", p, len(strings.TrimSpace(string(data)))), "")
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
			rep.add(LevelError, "ca_file", fmt.Sprintf("%s: %v; the server will not start", p, err), "fix upstream.ca_file, or remove it to trust only the system's roots")
		case !x509.NewCertPool().AppendCertsFromPEM(data):
			rep.add(LevelError, "ca_file", p+": no PEM certificate found; the server will not start", "upstream.ca_file must hold PEM CERTIFICATE blocks")
		default:
			rep.add(LevelOK, "ca_file", p+": PEM roots found (trusted besides the system's)", "")
		}
	}
}

// checkFileMode warns when a secret file is readable or writable by others,
// or by a group that is not this process's own (see the package comment).
func checkFileMode(path string) *Finding {
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
	return &Finding{Level: LevelWarn, Check: "file_mode",
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

// fileCheck names a credential file's check and its fixes when the file
// is missing or a directory.
type fileCheck struct {
	check, missing, dir string
}

// keyFileCheck is the key_file check of APNs keys and VAPID keys.
var keyFileCheck = fileCheck{
	check:   "key_file",
	missing: "put the .p8 at this path (Kubernetes: check the Secret's name and key and the volume's mountPath)",
	dir:     "point key_file at the .p8 file inside it",
}

// checkKeyFile reports where the file is, its size, mode and age, and
// returns its contents.
func checkKeyFile(c *Credential, path string, now time.Time) ([]byte, bool) {
	return checkFile(c, keyFileCheck, path, now)
}

// checkFile is checkKeyFile for any credential file, under fc's check name.
func checkFile(c *Credential, fc fileCheck, path string, now time.Time) ([]byte, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		fix := fc.missing
		if errors.Is(err, os.ErrPermission) {
			fix = "make the file (and its directory) readable by the user that runs pushproxy"
		}
		c.add(LevelError, fc.check, err.Error(), fix)
		return nil, false
	}
	if fi.IsDir() {
		c.add(LevelError, fc.check, path+" is a directory", fc.dir)
		return nil, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		c.add(LevelError, fc.check, err.Error(), "make the file readable by the user that runs pushproxy")
		return nil, false
	}
	where := path
	if lfi, err := os.Lstat(path); err == nil && lfi.Mode()&os.ModeSymlink != 0 {
		if target, err := filepath.EvalSymlinks(path); err == nil {
			where += " → " + target
		}
	}
	age := now.Sub(fi.ModTime())
	c.add(LevelOK, fc.check, fmt.Sprintf("found %s (%d bytes, mode %04o, modified %s, %s ago)",
		where, len(data), fi.Mode().Perm(), fi.ModTime().UTC().Format(time.RFC3339), roundAge(age)), "")
	if age < -5*time.Minute {
		c.add(LevelWarn, "clock", fmt.Sprintf("the key file was modified %s in the future: this clock, or the one of the machine that wrote it, is wrong", roundAge(-age)),
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

// WriteJSON writes the report as indented JSON (pushproxy check --json).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// Print writes the human-readable report.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "pushproxy check: %s\n", r.Config)
	section := func(title string, fs []Finding) {
		fmt.Fprintf(w, "\n%s\n", title)
		for _, f := range fs {
			label := levelLabel(f.Level)
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

// levelLabel is how the human-readable report writes a level.
func levelLabel(level string) string {
	switch level {
	case LevelWarn:
		return "WARN"
	case LevelError:
		return "ERROR"
	}
	return "ok"
}
