package proxy

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Reload re-reads the configuration file (if any) and every credential
// file; it is called on file events (debounced), periodically and on
// SIGHUP. Nothing that fails to parse or validate replaces what works.
//
// The new configuration and the credentials it names are built and loaded
// first, then published together as one state (one pointer swap): a
// request never sees one without the other (removing auth_token_file, for
// example, never gives a moment of 401s). Connections of keys no longer in
// use drain after the swap.
func (s *Server) Reload(reason string) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.state()
	cfg, changed := cur.cfg, false
	var status *configStatus
	if s.opts.ConfigPath != "" {
		cfg, status, changed = s.reloadConfig(cur.cfg)
	}
	s.reloadCA(cfg)
	credsChanged := s.store.Reload()
	if snap := s.store.Snapshot(); snap != cur.creds || cfg != cur.cfg {
		s.st.Store(&state{cfg: cfg, creds: snap})
	}
	if status != nil {
		s.configInfo.Store(status)
	}
	if changed {
		if s.opts.LogLevel != nil {
			_ = s.opts.LogLevel.UnmarshalText([]byte(cfg.Log.Level))
		}
		s.m.reloads.WithLabelValues("ok").Inc()
		s.log.Info("configuration reloaded", "file", s.opts.ConfigPath, "apns_credentials", len(cfg.APNs), "fcm_credentials", len(cfg.FCM))
	}
	if credsChanged {
		s.apns.Retain(s.state().creds.APNs)
	}
	s.watcher.SetPaths(s.watchPaths(cfg))
	s.log.Debug("reload done", "reason", reason)
}

// reloadConfig reads the configuration file and prepares a change:
// credentials (fcm entries and upstream.fcm_token_url included), topics,
// limits and timeouts apply live; listen address, max_in_flight, upstream
// hosts (APNs URLs, upstream.fcm_url), log format and shutdown_grace need a
// restart and are reported so. It hands the credential store the new file
// set and returns the configuration to use, the status to publish with it,
// and whether the configuration changed.
func (s *Server) reloadConfig(cur *Config) (*Config, *configStatus, bool) {
	st := *s.configInfo.Load()
	next, err := LoadConfig(s.opts.ConfigPath)
	if err != nil {
		if st.LastError != err.Error() {
			s.log.Error("configuration reload failed; keeping the configuration in force", "file", s.opts.ConfigPath, "error", err.Error())
			s.m.reloads.WithLabelValues("error").Inc()
		}
		st.LastError, st.LastErrorAt = err.Error(), timePtr(s.now())
		return cur, &st, false
	}
	st.LastError, st.LastErrorAt = "", nil
	restart := restartRequired(s.boot, next)
	if len(restart) > 0 && !slices.Equal(restart, st.RestartRequired) {
		s.log.Warn("configuration changed settings that apply only after a restart; they keep their old values", "settings", strings.Join(restart, ", "))
	}
	st.RestartRequired = restart
	// Settings that cannot change live keep the values the process runs
	// with; only then is the file compared with the configuration in force
	// (an edit of a restart-only setting alone changes nothing live).
	next.Listen, next.MaxInFlight, next.ShutdownGrace = s.boot.Listen, s.boot.MaxInFlight, s.boot.ShutdownGrace
	next.MaxBodyBytesInFlight = s.boot.MaxBodyBytesInFlight
	next.Log.Format = s.boot.Log.Format
	next.Upstream.APNsProductionURL, next.Upstream.APNsDevelopmentURL = s.boot.Upstream.APNsProductionURL, s.boot.Upstream.APNsDevelopmentURL
	next.Upstream.FCMURL = s.boot.Upstream.FCMURL
	next.Upstream.APNsMaxConnections, next.Upstream.APNsIdleTimeout = s.boot.Upstream.APNsMaxConnections, s.boot.Upstream.APNsIdleTimeout
	next.Upstream.APNsPingInterval, next.Upstream.APNsPingTimeout = s.boot.Upstream.APNsPingInterval, s.boot.Upstream.APNsPingTimeout
	next.Reload = s.boot.Reload
	if sameConfig(cur, next) {
		return cur, &st, false
	}
	s.store.SetSpec(next.CredSpec())
	st.LoadedAt = timePtr(s.now())
	return next, &st, true
}

func sameConfig(a, b *Config) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// restartRequired names the settings of next that differ from the ones
// the process started with and cannot change while it runs.
func restartRequired(boot, next *Config) []string {
	var out []string
	diff := func(name string, changed bool) {
		if changed {
			out = append(out, name)
		}
	}
	diff("listen", boot.Listen != next.Listen)
	diff("max_in_flight", boot.MaxInFlight != next.MaxInFlight)
	diff("max_body_bytes_in_flight", boot.MaxBodyBytesInFlight != next.MaxBodyBytesInFlight)
	diff("shutdown_grace", boot.ShutdownGrace != next.ShutdownGrace)
	diff("log.format", boot.Log.Format != next.Log.Format)
	diff("upstream.apns_production_url", boot.Upstream.APNsProductionURL != next.Upstream.APNsProductionURL)
	diff("upstream.apns_development_url", boot.Upstream.APNsDevelopmentURL != next.Upstream.APNsDevelopmentURL)
	diff("upstream.fcm_url", boot.Upstream.FCMURL != next.Upstream.FCMURL)
	diff("upstream.apns_max_connections", boot.Upstream.APNsMaxConnections != next.Upstream.APNsMaxConnections)
	diff("upstream.apns_idle_timeout", boot.Upstream.APNsIdleTimeout != next.Upstream.APNsIdleTimeout)
	diff("upstream.apns_ping_interval", boot.Upstream.APNsPingInterval != next.Upstream.APNsPingInterval)
	diff("upstream.apns_ping_timeout", boot.Upstream.APNsPingTimeout != next.Upstream.APNsPingTimeout)
	diff("reload", boot.Reload != next.Reload)
	bw, nw := boot.WebPush, next.WebPush
	diff("webpush.allow_endpoints, webpush.allow_private_networks, webpush.pad_to_buckets",
		(bw == nil) != (nw == nil) || (bw != nil && nw != nil && (!slices.Equal(bw.AllowEndpoints, nw.AllowEndpoints) ||
			bw.AllowPrivateNetworks != nw.AllowPrivateNetworks || bw.PadToBuckets != nw.PadToBuckets)))
	return out
}

// reloadCA re-reads upstream.ca_file; a changed, valid file is trusted for
// new connections (existing ones drain); a bad one keeps the old roots.
func (s *Server) reloadCA(cfg *Config) {
	if s.opts.RootCAs != nil || cfg.Upstream.CAFile == "" {
		return
	}
	pem, pool, err := loadCAFile(cfg.Upstream.CAFile)
	if err != nil {
		s.log.Error("upstream.ca_file failed to load; keeping the roots in use", "file", cfg.Upstream.CAFile, "error", err.Error())
		return
	}
	if string(pem) == string(s.caPEM) {
		return
	}
	s.caPEM = pem
	s.apns.SetRootCAs(pool)
	s.webpush.SetRootCAs(pool)
	s.fcm.SetRootCAs(pool)
	s.store.SetRootCAs(pool) // FCM token endpoints: new token sources at the Reload that follows
	s.log.Info("upstream.ca_file reloaded", "file", cfg.Upstream.CAFile)
}

// loadCAFile reads extra trusted roots, added to the system's.
func loadCAFile(path string) ([]byte, *x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("upstream.ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("upstream.ca_file %s: no PEM certificate found", path)
	}
	return pem, pool, nil
}

// watchPaths are the files whose directories are watched.
func (s *Server) watchPaths(cfg *Config) []string {
	paths := s.store.Paths()
	if cfg.Upstream.CAFile != "" {
		paths = append(paths, cfg.Upstream.CAFile)
	}
	if s.opts.ConfigPath != "" {
		paths = append(paths, s.opts.ConfigPath)
	}
	return paths
}
