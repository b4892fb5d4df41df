package proxy_test

import (
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/internal/testca"
	"github.com/pushproxy/pushproxy/proxy"
)

// k8sVolume writes files the way the kubelet updates a Secret or ConfigMap
// volume (its AtomicWriter): a new ..<timestamp> directory, a ..data_tmp
// symlink to it renamed over ..data, visible names that are symlinks
// through ..data, and the old directory removed. No event ever names the
// visible file.
type k8sVolume struct {
	t   *testing.T
	dir string
	n   int
}

func newK8sVolume(t *testing.T) *k8sVolume {
	return &k8sVolume{t: t, dir: t.TempDir()}
}

func (v *k8sVolume) write(files map[string][]byte) {
	t := v.t
	v.n++
	ts := fmt.Sprintf("..%s.%09d", time.Now().Format("2006_01_02_15_04_05"), v.n)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(v.dir, ts, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	if err := os.Symlink(ts, filepath.Join(v.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, _ := os.ReadDir(v.dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") {
			if _, keep := files[e.Name()]; !keep {
				_ = os.Remove(filepath.Join(v.dir, e.Name()))
			}
		}
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(v.dir, old))
	}
}

func pemOf(t *testing.T, k *ecdsa.PrivateKey) []byte {
	p := filepath.Join(t.TempDir(), "k.p8")
	return writeKey(t, p, k)
}

// fingerprintNow is the fingerprint /readyz reports for the first APNs
// credential.
func (h *harness) fingerprintNow() (string, string) {
	a := h.get("/readyz")
	c := a.Body["platforms"].(map[string]any)["apns"].(map[string]any)["credentials"].([]any)[0].(map[string]any)
	fp, _ := c["fingerprint"].(string)
	state, _ := c["state"].(string)
	return fp, state
}

func (h *harness) waitFingerprint(want string) time.Duration {
	h.t.Helper()
	start := time.Now()
	for {
		if fp, state := h.fingerprintNow(); fp == want && state == "ok" {
			return time.Since(start)
		}
		if time.Since(start) > 5*time.Second {
			fp, state := h.fingerprintNow()
			h.t.Fatalf("fingerprint %s (%s), want %s", fp, state, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) waitState(want string) {
	h.t.Helper()
	start := time.Now()
	for {
		if _, state := h.fingerprintNow(); state == want {
			return
		}
		if time.Since(start) > 5*time.Second {
			_, state := h.fingerprintNow()
			h.t.Fatalf("state %s, want %s", state, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) mustSend() {
	h.t.Helper()
	if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
		h.t.Fatalf("%d %s", a.Status, a.Raw)
	}
}

// TestReloadKubernetesSecretSwap: the kubelet's exact symlink sequence, with
// a key_file glob so that a new key with a new key ID needs no config change.
func TestReloadKubernetesSecretSwap(t *testing.T) {
	vol := newK8sVolume(t)
	h := newHarness(t, harnessOpts{noKeyFile: true, mutate: func(c *proxy.Config) {
		c.APNs[0].KeyFile = filepath.Join(vol.dir, "AuthKey_*.p8")
	}})
	vol.write(map[string][]byte{"AuthKey_" + keyID + ".p8": pemOf(t, h.key)})
	h.addSecret(h.key.D.Text(16))
	h.waitFingerprint(creds.PublicFingerprint(&h.key.PublicKey))
	h.mustSend()

	k2 := genKey(t)
	h.addSecret(k2.D.Text(16))
	h.fake.AddKey(teamID, "NEWKEY1234", &k2.PublicKey, bundle)
	vol.write(map[string][]byte{"AuthKey_NEWKEY1234.p8": pemOf(t, k2)})
	h.waitFingerprint(creds.PublicFingerprint(&k2.PublicKey))
	h.mustSend()
	reqs := h.fake.Requests()
	if last := reqs[len(reqs)-1]; last.KeyID != "NEWKEY1234" || last.Conn == reqs[0].Conn {
		t.Errorf("after the swap: kid %s on connection %d (first was %d)", last.KeyID, last.Conn, reqs[0].Conn)
	}
	// The old key's connection drains and closes (Apple binds a connection
	// to its first key).
	waitFor(t, "the old key's connection to close", func() bool { return h.fake.OpenConns() == 1 })
	if _, err := os.Stat(filepath.Join(vol.dir, "AuthKey_"+keyID+".p8")); !os.IsNotExist(err) {
		t.Errorf("the old visible name should be gone: %v", err)
	}
}

// TestReloadEditorRenameOver: write a temporary file, rename it over the key.
func TestReloadEditorRenameOver(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.mustSend()
	k2 := genKey(t)
	h.addSecret(k2.D.Text(16))
	tmp := filepath.Join(h.dir, ".AuthKey.swp")
	writeKey(t, tmp, k2)
	h.fake.AddKey(teamID, keyID, &k2.PublicKey, bundle) // the fake now only accepts the new key
	if err := os.Rename(tmp, h.keyPath); err != nil {
		t.Fatal(err)
	}
	h.waitFingerprint(creds.PublicFingerprint(&k2.PublicKey))
	h.mustSend()
}

// TestReloadInPlaceTruncateWrite: truncate then write in pieces; the half
// file seen in between never replaces the good key.
func TestReloadInPlaceTruncateWrite(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	k2 := genKey(t)
	h.addSecret(k2.D.Text(16))
	data := pemOf(t, k2)
	f, err := os.OpenFile(h.keyPath, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	h.mustSend() // the old key still signs
	// The half-written file is read and refused (the last good key stays,
	// readiness says degraded) before the rest arrives.
	h.waitState("degraded")
	h.mustSend()
	h.fake.AddKey(teamID, keyID, &k2.PublicKey, bundle)
	if _, err := f.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h.waitFingerprint(creds.PublicFingerprint(&k2.PublicKey))
	h.mustSend()
}

// TestReloadDeleteRecreate: a deleted file keeps the last good key and marks
// the platform degraded; its return recovers.
func TestReloadDeleteRecreate(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	data, err := os.ReadFile(h.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(h.keyPath); err != nil {
		t.Fatal(err)
	}
	h.waitState("degraded")
	if a := h.get("/readyz"); a.Status != 200 || a.Body["status"] != "degraded" {
		t.Fatalf("readyz %d %s", a.Status, a.Raw)
	}
	h.mustSend()
	if err := os.WriteFile(h.keyPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitState("ok")
	h.mustSend()
}

// TestReloadBadFiles: a file that fails to validate keeps the good key;
// the failure is visible in /readyz, the metric and the log (never the
// secret).
func TestReloadBadFiles(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	fp := creds.PublicFingerprint(&h.key.PublicKey)
	for _, bad := range []struct{ name, data, want string }{
		{"truncated", "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n", "truncated"},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", ""},
		{"empty", "", "empty"},
	} {
		if err := os.WriteFile(h.keyPath, []byte(bad.data), 0o600); err != nil {
			t.Fatal(err)
		}
		h.waitState("degraded")
		if got, _ := h.fingerprintNow(); got != fp {
			t.Fatalf("%s: fingerprint changed to %s", bad.name, got)
		}
		if a := h.get("/readyz"); !strings.Contains(string(a.Raw), bad.want) {
			t.Errorf("%s: readyz does not say why: %s", bad.name, a.Raw)
		}
		h.mustSend()
		h.addSecretKey(writeKey(t, h.keyPath, h.key))
		h.waitState("ok")
	}
	if got := metricValue(t, h, `pushproxy_credential_reloads_total{result="error"}`); got < 3 {
		t.Errorf("reload errors counted: %v", got)
	}
	if !strings.Contains(h.logs.String(), "keeping the last good key") {
		t.Error("the failure is not in the log")
	}
}

// TestRotationUnderLoad: notifications to the fake APNs and to the fake
// push service flow without a pause while both keys are rotated 20 times
// Kubernetes-style (one Secret volume each); none fails, every notification
// sent after a swap (plus the debounce) is signed with the new key, and no
// token is re-signed for a reload that did not change a key.
func TestRotationUnderLoad(t *testing.T) {
	apnsVol, vapidVol := newK8sVolume(t), newK8sVolume(t)
	push, err := fakepush.New(fakepush.Options{Style: fakepush.StyleMozilla})
	if err != nil {
		t.Fatal(err)
	}
	defer push.Close()
	vapidKey := func() ([]byte, *creds.VAPIDKey) {
		data, err := creds.GenerateVAPIDKeyJSON()
		if err != nil {
			t.Fatal(err)
		}
		k, err := creds.ParseVAPIDKey(data)
		if err != nil {
			t.Fatal(err)
		}
		return data, k
	}
	v0data, v0 := vapidKey()
	h := newHarness(t, harnessOpts{noKeyFile: true, mutate: func(c *proxy.Config) {
		c.APNs[0].KeyFile = filepath.Join(apnsVol.dir, "AuthKey_*.p8")
		appendCA(t, c.Upstream.CAFile, push.CAPEM())
		c.WebPush = &proxy.WebPushConfig{Subject: "mailto:ops@example.com", AllowEndpoints: []string{"127.0.0.1"}, AllowPrivateNetworks: true,
			Keys: []proxy.VAPIDKeyConfig{{Name: "current", File: filepath.Join(vapidVol.dir, "current.json")},
				{Name: "previous", File: filepath.Join(vapidVol.dir, "previous.json")}}}
	}})
	h.addSecret(h.key.D.Text(16), v0.Private.D.Text(16))
	apnsVol.write(map[string][]byte{"AuthKey_" + keyID + ".p8": pemOf(t, h.key)})
	vapidVol.write(map[string][]byte{"current.json": v0data, "previous.json": v0data})
	h.waitFingerprint(creds.PublicFingerprint(&h.key.PublicKey))
	waitFor(t, "the VAPID keys", func() bool { return h.get("/v1/webpush/vapid-public-key").Body["public_key"] == v0.PublicB64 })

	// The web subscription the load goes to: made with the primary key of
	// the moment; the app resubscribes after each rotation.
	subscribe := func(k *creds.VAPIDKey) map[string]any {
		sub, err := push.Subscribe(fakepush.SubscribeOptions{VAPIDKey: k.PublicB64})
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"endpoint": sub.Endpoint, "keys": map[string]any{"p256dh": sub.Keys.P256DH, "auth": sub.Keys.Auth}}
	}
	var target atomic.Pointer[map[string]any]
	first := subscribe(v0)
	target.Store(&first)

	var stop atomic.Bool
	var failures, sent atomic.Int64
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			for !stop.Load() {
				n := alert(h.token())
				if i%2 == 1 {
					n = map[string]any{"to": map[string]any{"webpush": *target.Load()}, "title": "t"}
				}
				if a := h.post("/v1/notifications", n); a.Status != 200 {
					failures.Add(1)
					t.Errorf("failed during rotation: %d %s", a.Status, a.Raw)
				}
				sent.Add(1)
			}
		})
	}
	debounce := h.cfg.Reload.Debounce
	slack := 150 * time.Millisecond
	if raceEnabled {
		slack = 300 * time.Millisecond
	}
	type swap struct {
		kid, vapid  string
		written, at time.Time // files written; seen in force
	}
	var swaps []swap
	prevData := v0data
	var latencies []time.Duration
	for i := range 20 {
		time.Sleep(150 * time.Millisecond) // load under the key in force
		k := genKey(t)
		vdata, vk := vapidKey()
		h.addSecret(k.D.Text(16), vk.Private.D.Text(16))
		kid := fmt.Sprintf("ROT%07d", i)
		h.fake.AddKey(teamID, kid, &k.PublicKey, bundle) // Apple accepts both keys during a rotation
		next := subscribe(vk)
		written := time.Now()
		apnsVol.write(map[string][]byte{"AuthKey_" + kid + ".p8": pemOf(t, k)})
		vapidVol.write(map[string][]byte{"current.json": vdata, "previous.json": prevData})
		prevData = vdata
		// Wait for the swap to be in force (one state: the APNs key and the
		// VAPID keys together), not for a guessed time.
		h.waitFingerprint(creds.PublicFingerprint(&k.PublicKey))
		waitFor(t, "the new VAPID key", func() bool { return h.get("/v1/webpush/vapid-public-key").Body["public_key"] == vk.PublicB64 })
		latencies = append(latencies, time.Since(written))
		swaps = append(swaps, swap{kid, vk.PublicB64, written, time.Now()})
		// Until the app resubscribes, its subscription (made with the
		// previous key) is delivered via the previous key.
		time.Sleep(50 * time.Millisecond)
		target.Store(&next)
	}
	time.Sleep(150 * time.Millisecond)
	// Reloads that change nothing: SIGHUP-style triggers and a touched directory.
	for range 3 {
		h.srv.TriggerReload("test")
		_ = os.WriteFile(filepath.Join(apnsVol.dir, "unrelated"), []byte("x"), 0o600)
		time.Sleep(debounce + 50*time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of %d notifications failed", failures.Load(), sent.Load())
	}
	// A request is checked against the key in force when it arrived, once
	// the swap has been in force for a moment (a request signed just
	// before the swap may arrive just after it).
	// The next swap's key is right too once its files are written (it may
	// be in force before the test sees it).
	inForce := func(at time.Time) (swap, swap, bool) {
		for i := len(swaps) - 1; i >= 0; i-- {
			if at.After(swaps[i].at) {
				next := swaps[i]
				if i+1 < len(swaps) && at.After(swaps[i+1].written) {
					next = swaps[i+1]
				}
				return swaps[i], next, at.After(swaps[i].at.Add(slack))
			}
		}
		return swap{}, swap{}, false
	}
	checked := 0
	for _, r := range h.fake.Requests() {
		if sw, next, settled := inForce(r.Received); settled {
			checked++
			if r.KeyID != sw.kid && r.KeyID != next.kid {
				t.Errorf("APNs request at +%v after a swap signed with %s, want %s", r.Received.Sub(sw.at), r.KeyID, sw.kid)
			}
		}
	}
	webChecked := 0
	for _, r := range push.Requests() {
		if sw, next, settled := inForce(r.Received); settled {
			webChecked++
			// Every notification is first signed with the new primary key; an
			// old key only signs a retry for a subscription made with it
			// (and then it matches).
			if r.VAPIDKey != sw.vapid && r.VAPIDKey != next.vapid && !r.KeyMatches {
				t.Errorf("Web Push request at +%v after a swap signed with an old key that the subscription does not have", r.Received.Sub(sw.at))
			}
		}
	}
	if checked < 20 || webChecked < 20 {
		t.Errorf("only %d APNs and %d Web Push requests checked", checked, webChecked)
	}
	if got := metricValue(t, h, `pushproxy_tokens_signed_total{kind="apns"}`); got != 21 {
		t.Errorf("%v provider tokens signed for 21 keys", got)
	}
	if got := metricValue(t, h, `pushproxy_tokens_signed_total{kind="vapid"}`); got != 21 {
		t.Errorf("%v VAPID JWTs signed for 21 keys and one audience", got)
	}
	slices.Sort(latencies)
	t.Logf("%d notifications during 20 rotations; %d APNs and %d Web Push requests checked against the key in force; swap in force after %v (median) to %v (max)",
		sent.Load(), checked, webChecked, latencies[len(latencies)/2], latencies[len(latencies)-1])
}

// TestConfigReload: topics, credentials and limits change by editing the
// config file; the listen address is reported as needing a restart; a bad
// config keeps the one in force.
func TestConfigReload(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	var h *harness
	write := func(listen, topics, extra string) {
		// extra: top-level keys (lines not indented) or more apns entries.
		top, apnsExtra := "", ""
		if strings.HasPrefix(extra, "  ") {
			apnsExtra = extra
		} else {
			top = extra
		}
		y := fmt.Sprintf(`%slisten: %s
request_timeout: 10s
upstream:
  apns_production_url: %s
  apns_development_url: %s
  ca_file: %s
reload: {poll_interval: 0s}
apns:
  - name: default
    key_file: %s
    team_id: %s
    topics: [%s]
`, top, listen, h.fake.URL(), h.fake.URL(), h.cfg.Upstream.CAFile, h.keyPath, teamID, topics) + apnsExtra
		if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	level := new(slog.LevelVar)
	h = newHarness(t, harnessOpts{configPath: cfgPath, level: level})
	write("127.0.0.1:0", bundle, "log: {level: warn}\n")
	h.srv.Reload("test")
	if level.Level() != slog.LevelWarn {
		t.Errorf("log.level warn in the file, the logger is at %v", level.Level())
	}

	// A topic added to the list: the other app's notifications now route.
	n := alert(h.token())
	n["to"].(map[string]any)["apns"].(map[string]any)["topic"] = "com.example.other"
	if a := h.post("/v1/notifications", n); a.code() != "topic_mismatch" {
		t.Fatalf("before: %d %s", a.Status, a.Raw)
	}
	write("127.0.0.1:0", bundle+", com.example.other", "")
	waitFor(t, "the topic to be added", func() bool {
		return h.post("/v1/notifications", n).Status == 200
	})

	// A second credential added.
	k2 := genKey(t)
	h.addSecret(k2.D.Text(16))
	p2 := filepath.Join(dir, "AuthKey_SECOND1234.p8")
	writeKey(t, p2, k2)
	h.fake.AddKey("TEAM2TEAM2", "SECOND1234", &k2.PublicKey, "com.second.app")
	write("127.0.0.1:0", bundle, fmt.Sprintf("  - {name: second, key_file: %s, team_id: TEAM2TEAM2, topics: [com.second.app]}\n", p2))
	n2 := alert(h.token())
	n2["to"].(map[string]any)["apns"].(map[string]any)["credential"] = "second"
	waitFor(t, "the second credential", func() bool {
		a := h.post("/v1/notifications", n2)
		return a.Status == 200 && a.Body["credential"] == "second"
	})

	// A bad config keeps the one in force and says so.
	if err := os.WriteFile(cfgPath, []byte("listen: [oops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the config error in /readyz", func() bool {
		a := h.get("/readyz")
		c, _ := a.Body["config"].(map[string]any)
		return c != nil && c["last_error"] != nil && a.Status == 200
	})
	if a := h.post("/v1/notifications", n2); a.Status != 200 {
		t.Fatalf("after a bad config: %d %s", a.Status, a.Raw)
	}

	// The listen address cannot change live: reported, not ignored.
	write("127.0.0.1:1", bundle, "")
	waitFor(t, "restart_required", func() bool {
		a := h.get("/readyz")
		c, _ := a.Body["config"].(map[string]any)
		return c != nil && c["last_error"] == nil && strings.Contains(fmt.Sprint(c["restart_required"]), "listen")
	})
	if !strings.Contains(h.logs.String(), "apply only after a restart") {
		t.Error("restart-required settings not logged")
	}
	// Reloads of that same file change nothing more: no new "reloaded",
	// no second warning (the restart-only setting alone is no live change).
	h.srv.Reload("test")
	okBefore := metricValue(t, h, `pushproxy_credential_reloads_total{result="ok"}`)
	for range 3 {
		h.srv.Reload("test")
	}
	if got := metricValue(t, h, `pushproxy_credential_reloads_total{result="ok"}`); got != okBefore {
		t.Errorf("unchanged file reloaded as a change: reloads{ok} %v → %v", okBefore, got)
	}
	if n := strings.Count(h.logs.String(), "apply only after a restart"); n != 1 {
		t.Errorf("the restart warning was logged %d times for one edit", n)
	}
	// The credential removed from the config is gone.
	if a := h.post("/v1/notifications", n2); a.code() != "invalid_request" {
		t.Errorf("removed credential: %d %s", a.Status, a.Raw)
	}
}

// TestReloadCAFile: upstream.ca_file is watched like a credential: a file
// that does not hold APNs's issuer makes the connection fail; the right one,
// swapped in, is trusted for new connections without a restart.
func TestReloadCAFile(t *testing.T) {
	_, wrongCA, _, err := testca.New("unrelated", []string{"localhost"}, "h2")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
		if err := os.WriteFile(c.Upstream.CAFile, wrongCA, 0o600); err != nil {
			t.Fatal(err)
		}
	}})
	if a := h.post("/v1/notifications", alert(h.token()), "X-Request-Timeout", "2"); a.code() != "upstream_unavailable" {
		t.Fatalf("with the wrong CA: %d %s", a.Status, a.Raw)
	}
	tmp := h.cfg.Upstream.CAFile + ".new"
	if err := os.WriteFile(tmp, h.fake.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, h.cfg.Upstream.CAFile); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new CA to be trusted", func() bool {
		return h.post("/v1/notifications", alert(h.token()), "X-Request-Timeout", "2").Status == 200
	})
	if !strings.Contains(h.logs.String(), "upstream.ca_file reloaded") {
		t.Error("the reload is not logged")
	}
}

// TestReloadAuthToken: the bearer token file is watched: after a swap the
// old token is refused and the new one accepted.
func TestReloadAuthToken(t *testing.T) {
	var tokPath string
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
		tokPath = filepath.Join(filepath.Dir(c.Upstream.CAFile), "api-token")
		if err := os.WriteFile(tokPath, []byte("first-token\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c.AuthTokenFile = tokPath
	}})
	h.addSecret("first-token", "second-token")
	if a := h.post("/v1/notifications", alert(h.token()), "Authorization", "Bearer first-token"); a.Status != 200 {
		t.Fatalf("%d %s", a.Status, a.Raw)
	}
	tmp := tokPath + ".new"
	if err := os.WriteFile(tmp, []byte("second-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, tokPath); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new token", func() bool {
		return h.post("/v1/notifications", alert(h.token()), "Authorization", "Bearer second-token").Status == 200
	})
	if a := h.post("/v1/notifications", alert(h.token()), "Authorization", "Bearer first-token"); a.code() != "unauthorized" {
		t.Errorf("the old token still works: %d %s", a.Status, a.Raw)
	}
}
