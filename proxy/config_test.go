package proxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigParses(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if cfg.Listen != d.Listen || cfg.RequestTimeout != d.RequestTimeout || cfg.MaxInFlight != d.MaxInFlight ||
		cfg.ShutdownGrace != d.ShutdownGrace || cfg.Reload != d.Reload || cfg.Upstream != d.Upstream {
		t.Errorf("the example's values differ from the defaults: %+v", cfg)
	}
	if len(cfg.APNs) != 1 || cfg.APNs[0].Name != "default" || cfg.APNs[0].TeamID != "DEF123GHIJ" {
		t.Errorf("apns %+v", cfg.APNs)
	}
}

func TestEmptyConfigIsDefaults(t *testing.T) {
	cfg, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8570" || cfg.RequestTimeout != 10*time.Second || cfg.MaxInFlight != 1024 ||
		cfg.ShutdownGrace != 20*time.Second || cfg.Reload.Debounce != 200*time.Millisecond || cfg.Reload.PollInterval != 30*time.Second ||
		cfg.Upstream.APNsProductionURL != "https://api.push.apple.com" || cfg.Upstream.APNsDevelopmentURL != "https://api.sandbox.push.apple.com" {
		t.Errorf("defaults %+v", cfg)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown top-level key", "listen: 127.0.0.1:1\nrequest_timout: 5s\n", `line 2: unknown key "request_timout"`},
		{"unknown nested key", "apns:\n  - name: a\n    key_file: AuthKey_ABC123DEFG.p8\n    team_id: DEF123GHIJ\n    topic: [x]\n", `line 5: unknown key "topic"`},
		{"bad duration", "request_timeout: soon\n", "request_timeout"},
		{"lower-case team", "apns:\n  - key_file: AuthKey_ABC123DEFG.p8\n    team_id: def123ghij\n", "upper case"},
		{"short team", "apns:\n  - key_file: AuthKey_ABC123DEFG.p8\n    team_id: DEF123\n", "team_id"},
		{"no key id", "apns:\n  - key_file: /k/key.p8\n    team_id: DEF123GHIJ\n", "AuthKey_<KEYID>.p8"},
		{"bad key id", "apns:\n  - key_file: /k/key.p8\n    key_id: abc\n    team_id: DEF123GHIJ\n", "key_id"},
		{"bad environment", "apns:\n  - key_file: AuthKey_ABC123DEFG.p8\n    team_id: DEF123GHIJ\n    environment: staging\n", "environment"},
		{"duplicate names", "apns:\n  - {name: a, key_file: AuthKey_ABC123DEFG.p8, team_id: DEF123GHIJ}\n  - {name: a, key_file: AuthKey_ABC123DEFH.p8, team_id: DEF123GHIJ}\n", "used twice"},
		{"second unnamed", "apns:\n  - {key_file: AuthKey_ABC123DEFG.p8, team_id: DEF123GHIJ}\n  - {key_file: AuthKey_ABC123DEFH.p8, team_id: DEF123GHIJ}\n", "apns[1].name"},
		{"http upstream", "upstream:\n  apns_production_url: http://x\n", "https"},
		{"log format", "log: {format: xml}\n", "log.format"},
		{"subject", "webpush:\n  subject: ops@example.com\n", "webpush.subject"},
		{"max_in_flight", "max_in_flight: 0\n", "max_in_flight"},
		{"not yaml", "listen: [\n", "line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestConfigFileErrorsNameTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("%v", err)
	}
	if _, err := LoadConfig(p + ".missing"); err == nil {
		t.Fatal("a missing config file must be an error")
	}
}

func TestCredSpec(t *testing.T) {
	cfg, err := ParseConfig([]byte("auth_token_file: /t\napns:\n  - {key_file: /k/AuthKey_ABC123DEFG.p8, team_id: DEF123GHIJ, topics: [a.b]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.CredSpec()
	if len(s.APNs) != 1 || s.APNs[0].Name != "default" || s.APNs[0].Environment != "production" || s.AuthTokenFile != "/t" || s.APNs[0].Topics[0] != "a.b" {
		t.Errorf("%+v", s)
	}
}

// TestConfigErrorsNameTheSettingOnce: each error names its setting once,
// with its value where it helps, never "webpush.subject: webpush.subject …".
func TestConfigErrorsNameTheSettingOnce(t *testing.T) {
	cases := []struct{ name, yaml, setting, want string }{
		{"subject without scheme", "webpush:\n  subject: ops@example.com\n  keys: [{name: k, file: /k.json}]\n",
			"webpush.subject", `webpush.subject "ops@example.com" needs the mailto: scheme: mailto:ops@example.com`},
		{"subject twice mailto", "webpush:\n  subject: mailto:mailto:ops@example.com\n  keys: [{name: k, file: /k.json}]\n",
			"webpush.subject", `webpush.subject "mailto:mailto:ops@example.com" says mailto: twice`},
		{"subject local host", "webpush:\n  subject: https://localhost/contact\n  keys: [{name: k, file: /k.json}]\n",
			"webpush.subject", `webpush.subject "https://localhost/contact" names a local host`},
		{"subject empty", "webpush:\n  keys: [{name: k, file: /k.json}]\n",
			"webpush.subject", "webpush.subject is empty"},
		{"team id", "apns:\n  - {key_file: AuthKey_ABC123DEFG.p8, team_id: def123ghij}\n",
			"team_id", `apns[0].team_id "def123ghij" must be upper case`},
		{"key id", "apns:\n  - {key_file: /k/key.p8, key_id: abc, team_id: DEF123GHIJ}\n",
			"key_id", `apns[0].key_id "abc" must be 10 upper-case`},
		{"ping interval", "upstream:\n  apns_ping_interval: 0s\n",
			"apns_ping_interval", "upstream.apns_ping_interval: must be positive"},
		{"poll interval", "reload:\n  poll_interval: -1s\n",
			"poll_interval", "reload.poll_interval: must not be negative"},
		{"log level", "log: {level: loud}\n", "log.level", `log.level: must be debug, info, warn or error, not "loud"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want it to contain %q", msg, c.want)
			}
			if n := strings.Count(msg, c.setting); n != 1 {
				t.Errorf("error %q names %s %d times, want once", msg, c.setting, n)
			}
		})
	}
}

func TestFCMConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte("fcm:\n  - service_account_file: /s/a.json\n  - {name: other, service_account_file: /s/b.json, project_id: my-other-project}\n" +
		"upstream:\n  fcm_token_url: https://tokens.example.com/token\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FCM[0].Name != "default" || cfg.FCM[1].Name != "other" || cfg.Upstream.FCMURL != "https://fcm.googleapis.com" {
		t.Fatalf("%+v %+v", cfg.FCM, cfg.Upstream)
	}
	s := cfg.CredSpec()
	if len(s.FCM) != 2 || s.FCM[0].ServiceAccountFile != "/s/a.json" || s.FCM[1].ProjectID != "my-other-project" ||
		s.FCMTokenURL != "https://tokens.example.com/token" {
		t.Fatalf("%+v", s)
	}
	for _, c := range []struct{ name, yaml, want string }{
		{"no file", "fcm:\n  - name: a\n", "fcm[0].service_account_file: is required"},
		{"second unnamed", "fcm:\n  - service_account_file: /a\n  - service_account_file: /b\n", "fcm[1].name: is required"},
		{"duplicate", "fcm:\n  - {name: a, service_account_file: /a}\n  - {name: a, service_account_file: /b}\n", `fcm[1].name: "a" is used twice`},
		{"bad project", "fcm:\n  - {service_account_file: /a, project_id: My_Project}\n", "fcm[0].project_id"},
		{"http fcm_url", "upstream:\n  fcm_url: http://fcm.googleapis.com\n", "upstream.fcm_url"},
		{"fcm_url with path", "upstream:\n  fcm_url: https://fcm.googleapis.com/v1\n", "upstream.fcm_url"},
		{"http token url", "upstream:\n  fcm_token_url: http://oauth2.googleapis.com/token\n", "upstream.fcm_token_url"},
		{"unknown key", "fcm:\n  - {service_account: /a}\n", `unknown key "service_account"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestFCMRestartRequired: the FCM API origin needs a restart like the APNs
// hosts; the credentials and the token URL apply live.
func TestFCMRestartRequired(t *testing.T) {
	boot := Defaults()
	next := Defaults()
	next.Upstream.FCMURL = "https://fcm.example.com"
	next.Upstream.FCMTokenURL = "https://tokens.example.com/token"
	next.FCM = []FCMConfig{{Name: "default", ServiceAccountFile: "/s/a.json"}}
	got := restartRequired(&boot, &next)
	if len(got) != 1 || got[0] != "upstream.fcm_url" {
		t.Fatalf("%v", got)
	}
}
