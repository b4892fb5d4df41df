package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/pushproxy/pushproxy/creds"
)

// Config is pushproxy's configuration file (config.example.yaml documents
// every option and its default).
type Config struct {
	Listen         string        `yaml:"listen"`
	AuthTokenFile  string        `yaml:"auth_token_file"`
	RequestTimeout time.Duration `yaml:"request_timeout"`
	MaxInFlight    int           `yaml:"max_in_flight"`
	MaxBatch       int           `yaml:"max_batch"`
	MaxBodyBytes   int64         `yaml:"max_body_bytes"`
	// MaxBodyBytesInFlight bounds the request bytes held in memory at once,
	// over all requests: a request whose body does not fit is answered
	// overloaded at once (peak memory is a few times this).
	MaxBodyBytesInFlight int64          `yaml:"max_body_bytes_in_flight"`
	ShutdownGrace        time.Duration  `yaml:"shutdown_grace"`
	Log                  LogConfig      `yaml:"log"`
	APNs                 []APNsConfig   `yaml:"apns"`
	WebPush              *WebPushConfig `yaml:"webpush"`
	FCM                  []FCMConfig    `yaml:"fcm"`
	Upstream             UpstreamConfig `yaml:"upstream"`
	Reload               ReloadConfig   `yaml:"reload"`
}

// LogConfig selects the log format and level.
type LogConfig struct {
	Format string `yaml:"format"` // json | text
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// APNsConfig is one APNs credential.
type APNsConfig struct {
	Name        string   `yaml:"name"`
	KeyFile     string   `yaml:"key_file"`
	KeyID       string   `yaml:"key_id"`
	TeamID      string   `yaml:"team_id"`
	Topics      []string `yaml:"topics"`
	Environment string   `yaml:"environment"`
}

// WebPushConfig is the Web Push section: VAPID keys (first = primary),
// subject, default TTL and the endpoint guard's allowances.
type WebPushConfig struct {
	Subject              string           `yaml:"subject"`
	Keys                 []VAPIDKeyConfig `yaml:"keys"`
	DefaultTTL           *int64           `yaml:"default_ttl"` // nil → 2419200 (28 days)
	AllowEndpoints       []string         `yaml:"allow_endpoints"`
	AllowPrivateNetworks bool             `yaml:"allow_private_networks"`
	// PadToBuckets pads every encrypted message to a fixed size bucket so
	// its length says less about its content (costs bytes).
	PadToBuckets bool `yaml:"pad_to_buckets"`
}

// VAPIDKeyConfig names one VAPID key file.
type VAPIDKeyConfig struct {
	Name string `yaml:"name"`
	File string `yaml:"file"`
}

// FCMConfig is one FCM credential: a Google service account's key file,
// hence one Firebase project. Notifications pick it by to.fcm.credential,
// else the first.
type FCMConfig struct {
	Name               string `yaml:"name"`
	ServiceAccountFile string `yaml:"service_account_file"`
	// ProjectID is the Firebase project to send for; "" means the file's
	// project_id (a different value is refused when the file loads).
	ProjectID string `yaml:"project_id"`
}

// UpstreamConfig overrides the upstream hosts and trusted roots.
type UpstreamConfig struct {
	APNsProductionURL  string `yaml:"apns_production_url"`
	APNsDevelopmentURL string `yaml:"apns_development_url"`
	CAFile             string `yaml:"ca_file"`
	// FCMURL is the FCM HTTP v1 API origin; FCMTokenURL, if set, replaces
	// every service-account file's token_uri (both https; for tests and
	// private gateways).
	FCMURL      string `yaml:"fcm_url"`
	FCMTokenURL string `yaml:"fcm_token_url"`
	// APNs connections: at most this many usable connections per team, key
	// and host (each carries up to the server's stream limit, 1,000 at
	// APNs); a connection with nothing read for PingInterval is PINGed and
	// closed if no answer comes within PingTimeout; idle ones close after
	// IdleTimeout.
	APNsMaxConnections int           `yaml:"apns_max_connections"`
	APNsIdleTimeout    time.Duration `yaml:"apns_idle_timeout"`
	APNsPingInterval   time.Duration `yaml:"apns_ping_interval"`
	APNsPingTimeout    time.Duration `yaml:"apns_ping_timeout"`
}

// ReloadConfig tunes credential reloading.
type ReloadConfig struct {
	Debounce     time.Duration `yaml:"debounce"`
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Defaults returns the configuration with every default filled in.
func Defaults() Config {
	return Config{
		Listen:               "127.0.0.1:8570",
		RequestTimeout:       10 * time.Second,
		MaxInFlight:          1024,
		MaxBatch:             500,
		MaxBodyBytes:         1 << 20,
		MaxBodyBytesInFlight: 32 << 20,
		ShutdownGrace:        20 * time.Second,
		Log:                  LogConfig{Format: "json", Level: "info"},
		Upstream: UpstreamConfig{
			APNsProductionURL:  "https://api.push.apple.com",
			APNsDevelopmentURL: "https://api.sandbox.push.apple.com",
			FCMURL:             "https://fcm.googleapis.com",
			APNsMaxConnections: 8,
			APNsIdleTimeout:    5 * time.Minute,
			APNsPingInterval:   30 * time.Second,
			APNsPingTimeout:    10 * time.Second,
		},
		Reload: ReloadConfig{Debounce: 200 * time.Millisecond, PollInterval: 30 * time.Second},
	}
}

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

var fieldNotFound = regexp.MustCompile(`line (\d+): field (\S+) not found in type (\S+)`)

// ParseConfig decodes YAML strictly over the defaults: an unknown or
// misspelt key is an error naming the key and its line.
func ParseConfig(data []byte) (*Config, error) {
	cfg := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		msg := err.Error()
		if m := fieldNotFound.FindAllStringSubmatch(msg, -1); m != nil {
			var parts []string
			for _, x := range m {
				parts = append(parts, fmt.Sprintf("line %s: unknown key %q", x[1], x[2]))
			}
			return nil, errors.New(strings.Join(parts, "; "))
		}
		return nil, errors.New(nameKeys(data, strings.TrimPrefix(msg, "yaml: ")))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

var lineRe = regexp.MustCompile(`line (\d+): cannot unmarshal`)

// nameKeys adds the key's dotted path to yaml's "line N: cannot unmarshal"
// messages, which name only the line.
func nameKeys(data []byte, msg string) string {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return msg
	}
	return lineRe.ReplaceAllStringFunc(msg, func(m string) string {
		var line int
		fmt.Sscanf(lineRe.FindStringSubmatch(m)[1], "%d", &line)
		if path := keyAtLine(&root, line, ""); path != "" {
			return fmt.Sprintf("line %d: %s: cannot unmarshal", line, path)
		}
		return m
	})
}

func keyAtLine(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := keyAtLine(c, line, prefix); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			if v.Line == line && v.Kind == yaml.ScalarNode {
				return path
			}
			if p := keyAtLine(v, line, path); p != "" {
				return p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := keyAtLine(c, line, fmt.Sprintf("%s[%d]", prefix, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

// Validate checks values that YAML types cannot.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" {
		bad("listen: must be host:port or unix:///path")
	}
	if c.RequestTimeout <= 0 {
		bad("request_timeout: must be positive")
	}
	if c.MaxInFlight <= 0 {
		bad("max_in_flight: must be positive")
	}
	if c.MaxBatch <= 0 {
		bad("max_batch: must be positive")
	}
	if c.MaxBodyBytes < 1024 {
		bad("max_body_bytes: must be at least 1024")
	}
	if c.MaxBodyBytesInFlight < c.MaxBodyBytes {
		bad("max_body_bytes_in_flight: must be at least max_body_bytes (%d)", c.MaxBodyBytes)
	}
	if c.ShutdownGrace < 0 {
		bad("shutdown_grace: must not be negative")
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format: must be json or text, not %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: must be debug, info, warn or error, not %q", c.Log.Level)
	}
	names := map[string]bool{}
	for i := range c.APNs {
		a := &c.APNs[i]
		where := fmt.Sprintf("apns[%d]", i)
		if a.Name == "" {
			if i == 0 {
				a.Name = "default"
			} else {
				bad("%s.name: is required when there are several apns credentials", where)
			}
		}
		if names[a.Name] {
			bad("%s.name: %q is used twice", where, a.Name)
		}
		names[a.Name] = true
		if a.KeyFile == "" {
			bad("%s.key_file: is required", where)
		}
		if a.Environment == "" {
			a.Environment = "production"
		}
		switch a.Environment {
		case "production", "development", "auto":
		default:
			bad("%s.environment: must be production, development or auto, not %q", where, a.Environment)
		}
		// Key and team ID format errors are reported here, not only when the
		// file loads, because they are in this file.
		if a.KeyID != "" {
			if err := creds.ValidID("key_id", a.KeyID); err != nil {
				bad("%s.%v", where, err)
			}
		} else if a.KeyFile != "" && !strings.ContainsAny(filepath.Base(a.KeyFile), "*?[") && creds.KeyIDFromFileName(a.KeyFile) == "" {
			bad("%s.key_id: is required because the file name is not AuthKey_<KEYID>.p8", where)
		}
		if err := creds.ValidID("team_id", a.TeamID); err != nil {
			bad("%s.%v", where, err)
		}
		for j, t := range a.Topics {
			if t == "" || strings.ContainsAny(t, " /") {
				bad("%s.topics[%d]: %q is not a bundle ID", where, j, t)
			}
		}
	}
	if w := c.WebPush; w != nil {
		if err := creds.ValidateSubject(w.Subject); err != nil {
			errs = append(errs, creds.SubjectError(w.Subject, err))
		}
		if len(w.Keys) == 0 {
			bad("webpush.keys: at least one VAPID key is required (pushproxy vapid-keys makes one)")
		}
		seen := map[string]bool{}
		for i, k := range w.Keys {
			if k.Name == "" {
				bad("webpush.keys[%d].name: is required (subscriptions name the key they were made with)", i)
			}
			if seen[k.Name] {
				bad("webpush.keys[%d].name: %q is used twice", i, k.Name)
			}
			seen[k.Name] = true
			if k.File == "" {
				bad("webpush.keys[%d].file: is required", i)
			}
		}
		if w.DefaultTTL == nil {
			d := int64(2419200)
			w.DefaultTTL = &d
		} else if *w.DefaultTTL < 0 {
			bad("webpush.default_ttl: must be 0 or more seconds")
		}
		for i, h := range w.AllowEndpoints {
			if h == "" || strings.ContainsAny(h, "/:@ ") {
				bad("webpush.allow_endpoints[%d]: %q is not a host name (exact, or *.suffix)", i, h)
			}
		}
	}
	fcmNames := map[string]bool{}
	for i := range c.FCM {
		f := &c.FCM[i]
		where := fmt.Sprintf("fcm[%d]", i)
		if f.Name == "" {
			if i == 0 {
				f.Name = "default"
			} else {
				bad("%s.name: is required when there are several fcm credentials (to.fcm.credential names one)", where)
			}
		}
		if fcmNames[f.Name] {
			bad("%s.name: %q is used twice", where, f.Name)
		}
		fcmNames[f.Name] = true
		if f.ServiceAccountFile == "" {
			bad("%s.service_account_file: is required (the service-account key JSON: Firebase console > Project settings > Service accounts > Generate new private key)", where)
		}
		if f.ProjectID != "" && !fcmProjectRe.MatchString(f.ProjectID) {
			bad("%s.project_id: %q is not a Firebase project ID (lower-case letters, digits and hyphens)", where, f.ProjectID)
		}
	}
	for _, u := range []struct{ name, v string }{
		{"upstream.apns_production_url", c.Upstream.APNsProductionURL},
		{"upstream.apns_development_url", c.Upstream.APNsDevelopmentURL},
	} {
		if !strings.HasPrefix(u.v, "https://") {
			bad("%s: must be an https:// URL", u.name)
		}
	}
	if err := httpsOrigin(c.Upstream.FCMURL); err != nil {
		bad("upstream.fcm_url: %v", err)
	}
	if t := c.Upstream.FCMTokenURL; t != "" {
		if u, err := url.Parse(t); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			bad("upstream.fcm_token_url: must be an https:// URL without user-info (the signed assertion is a credential), not %q", t)
		}
	}
	if c.Upstream.APNsMaxConnections <= 0 {
		bad("upstream.apns_max_connections: must be positive")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"upstream.apns_idle_timeout", c.Upstream.APNsIdleTimeout},
		{"upstream.apns_ping_interval", c.Upstream.APNsPingInterval},
		{"upstream.apns_ping_timeout", c.Upstream.APNsPingTimeout},
	} {
		if d.v <= 0 {
			bad("%s: must be positive, not %s", d.name, d.v)
		}
	}
	if c.Reload.Debounce < 0 {
		bad("reload.debounce: must not be negative")
	}
	if c.Reload.PollInterval < 0 {
		bad("reload.poll_interval: must not be negative (0 turns the periodic re-check off)")
	}
	return errors.Join(errs...)
}

// fcmProjectRe is a Google Cloud project ID: 6 to 30 lower-case letters,
// digits and hyphens, starting with a letter (older projects may carry a
// domain prefix "example.com:", accepted too).
var fcmProjectRe = regexp.MustCompile(`^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)

// httpsOrigin checks an upstream origin: https, a host, no path, query or
// user-info.
func httpsOrigin(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("must be an https:// origin without path, such as https://fcm.googleapis.com, not %q", s)
	}
	return nil
}

// CredSpec is the credential file set of this configuration.
func (c *Config) CredSpec() creds.Spec {
	var s creds.Spec
	for _, a := range c.APNs {
		s.APNs = append(s.APNs, creds.APNsSpec{
			Name: a.Name, KeyFile: a.KeyFile, KeyID: a.KeyID, TeamID: a.TeamID,
			Topics: a.Topics, Environment: a.Environment,
		})
	}
	if w := c.WebPush; w != nil {
		for _, k := range w.Keys {
			s.VAPID = append(s.VAPID, creds.VAPIDSpec{Name: k.Name, File: k.File})
		}
		s.VAPIDSubject = w.Subject
	}
	for _, f := range c.FCM {
		s.FCM = append(s.FCM, creds.FCMSpec{Name: f.Name, ServiceAccountFile: f.ServiceAccountFile, ProjectID: f.ProjectID})
	}
	s.FCMTokenURL = c.Upstream.FCMTokenURL
	s.AuthTokenFile = c.AuthTokenFile
	return s
}
