package creds_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
)

// syncBuffer is a bytes.Buffer safe for concurrent use (a log sink).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recorder records OnReload results.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) OnReload(result string) {
	r.mu.Lock()
	r.got = append(r.got, result)
	r.mu.Unlock()
}

// take returns the results since the last call.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// pemBody is the base64 of a PEM file, for checking it never reaches a log.
func pemBody(data []byte) string {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(lines[1:len(lines)-1], "")
}

func TestStoreLifecycle(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "AuthKey_"+testKeyID+".p8")
	clk := newClock(bucketAligned().Add(5 * time.Minute))
	var signs counter
	var reloads recorder
	var logs syncBuffer
	spec := creds.Spec{APNs: []creds.APNsSpec{{
		Name: "default", KeyFile: keyPath, TeamID: testTeamID,
		Topics: []string{"com.example.app"}, Environment: "production",
	}}}
	st := creds.NewStore(spec, creds.Options{
		Now:      clk.Now,
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
		OnSign:   func(kind string) { signs.Inc(); checkKind(t, kind) },
		OnReload: reloads.OnReload,
	})

	// 1. The file is missing at start: the credential is published as missing.
	snap := st.Snapshot()
	c := snap.APNsByName("default")
	if c == nil {
		t.Fatal("no credential named default")
	}
	if c.State != creds.StateMissing || c.Usable() || c.Key != nil || c.Tokens != nil || c.Fingerprint != "" {
		t.Errorf("missing file: state %q usable %v fingerprint %q", c.State, c.Usable(), c.Fingerprint)
	}
	if !strings.Contains(c.LastError, "reading key file") || !strings.Contains(c.LastError, "no such file") {
		t.Errorf("LastError = %q, want it to say the file cannot be read", c.LastError)
	}
	if !c.LastErrorAt.Equal(clk.Now()) {
		t.Errorf("LastErrorAt = %v, want %v", c.LastErrorAt, clk.Now())
	}
	if got := reloads.take(); !slices.Equal(got, []string{"error"}) {
		t.Errorf("OnReload at start = %v, want [error]", got)
	}
	// There never was a key: the log says so and what to fix, not that a
	// last good key is kept.
	if out := logs.String(); !strings.Contains(out, "has no usable key yet") || !strings.Contains(out, "key_file holds a valid .p8 key") ||
		strings.Contains(out, "last good key") {
		t.Errorf("first load with the key missing logs:\n%s", out)
	}
	// Reloading with the file still missing reports the failure again, and
	// changes nothing usable.
	if st.Reload() {
		t.Errorf("Reload with the file still missing reported a change")
	}
	if got := reloads.take(); !slices.Equal(got, []string{"error"}) {
		t.Errorf("OnReload = %v, want [error]", got)
	}

	// 2. The file appears.
	keyA := newP256(t)
	pemA := pkcs8PEM(t, keyA)
	writeFile(t, dir, filepath.Base(keyPath), pemA)
	clk.Add(time.Minute)
	if !st.Reload() {
		t.Errorf("Reload after the file appeared reported no change")
	}
	snapA := st.Snapshot()
	a := snapA.APNs[0]
	if a.State != creds.StateOK || !a.Usable() || a.LastError != "" || !a.LastErrorAt.IsZero() {
		t.Errorf("after the file appeared: state %q usable %v LastError %q", a.State, a.Usable(), a.LastError)
	}
	if a.Spec.KeyID != testKeyID {
		t.Errorf("KeyID = %q, want %q from the file name", a.Spec.KeyID, testKeyID)
	}
	if a.Fingerprint != creds.PublicFingerprint(&keyA.PublicKey) {
		t.Errorf("fingerprint %q is not key A's", a.Fingerprint)
	}
	if !a.LoadedAt.Equal(clk.Now()) {
		t.Errorf("LoadedAt = %v, want %v", a.LoadedAt, clk.Now())
	}
	if a.Tokens == nil || a.Tokens.KeyID() != testKeyID || a.Tokens.TeamID() != testTeamID {
		t.Fatalf("token source %+v", a.Tokens)
	}
	tokA, err := a.Tokens.Token()
	if err != nil {
		t.Fatal(err)
	}
	verify(t, tokA, &keyA.PublicKey)
	if signs.N() != 1 {
		t.Errorf("signs = %d, want 1", signs.N())
	}
	if got := reloads.take(); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("OnReload = %v, want [ok]", got)
	}
	// The older snapshot a request may still hold is unchanged.
	if snap.APNs[0].State != creds.StateMissing {
		t.Errorf("an old snapshot was modified")
	}

	// Nothing changed: no new snapshot, no callback.
	if st.Reload() {
		t.Errorf("Reload without a change reported one")
	}
	if st.Snapshot() != snapA {
		t.Errorf("Reload without a change published a new snapshot")
	}
	if got := reloads.take(); len(got) != 0 {
		t.Errorf("OnReload = %v without a change", got)
	}

	// 3. Replaced by garbage: degraded, the old key stays in use.
	writeFile(t, dir, filepath.Base(keyPath), []byte("-----BEGIN PRIVATE KEY-----\nnot base64!\n"))
	clk.Add(time.Minute)
	if st.Reload() {
		t.Errorf("a failed reload reported a change")
	}
	d := st.Snapshot().APNs[0]
	if d.State != creds.StateDegraded || !d.Usable() {
		t.Errorf("after garbage: state %q usable %v, want degraded and usable", d.State, d.Usable())
	}
	if d.Fingerprint != a.Fingerprint || d.Key != a.Key || d.Tokens != a.Tokens || !d.LoadedAt.Equal(a.LoadedAt) {
		t.Errorf("after garbage the credential no longer uses the last good key")
	}
	if !strings.Contains(d.LastError, "not an APNs .p8 key") || !strings.Contains(d.LastError, "truncated") {
		t.Errorf("LastError = %q", d.LastError)
	}
	if out := logs.String(); !strings.Contains(out, "failed to load; keeping the last good key") {
		t.Errorf("a failed reload over a good key logs:\n%s", out)
	}
	if !d.LastErrorAt.Equal(clk.Now()) {
		t.Errorf("LastErrorAt = %v", d.LastErrorAt)
	}
	if tok, err := d.Tokens.Token(); err != nil || tok != tokA {
		t.Errorf("degraded credential: token changed or failed (%v)", err)
	}
	if signs.N() != 1 {
		t.Errorf("signs = %d, want 1", signs.N())
	}
	if got := reloads.take(); !slices.Equal(got, []string{"error"}) {
		t.Errorf("OnReload = %v, want [error]", got)
	}

	// 3b. A P-384 key (valid PEM, wrong curve) is refused the same way.
	writeFile(t, dir, filepath.Base(keyPath), pkcs8PEM(t, newP384(t)))
	st.Reload()
	if d := st.Snapshot().APNs[0]; d.State != creds.StateDegraded || d.Fingerprint != a.Fingerprint || !strings.Contains(d.LastError, "P-256") {
		t.Errorf("P-384 file: state %q fingerprint %q LastError %q", d.State, d.Fingerprint, d.LastError)
	}
	reloads.take()

	// 4. A different valid key: new fingerprint, new token source.
	keyB := newP256(t)
	pemB := pkcs8PEM(t, keyB)
	writeFile(t, dir, filepath.Base(keyPath), pemB)
	clk.Add(time.Minute)
	if !st.Reload() {
		t.Errorf("a new key reported no change")
	}
	bc := st.Snapshot().APNs[0]
	if bc.State != creds.StateOK || bc.LastError != "" || !bc.Usable() {
		t.Errorf("new key: state %q LastError %q", bc.State, bc.LastError)
	}
	if bc.Fingerprint != creds.PublicFingerprint(&keyB.PublicKey) || bc.Fingerprint == a.Fingerprint {
		t.Errorf("new key: fingerprint %q (old %q)", bc.Fingerprint, a.Fingerprint)
	}
	if bc.Tokens == a.Tokens {
		t.Errorf("new key kept the old token source")
	}
	if n, _ := st.Cached(); n != 1 {
		t.Errorf("the store keeps %d token sources after a key swap, want 1 (the old key's is dropped)", n)
	}
	if !bc.LoadedAt.Equal(clk.Now()) {
		t.Errorf("LoadedAt not updated")
	}
	tokB, err := bc.Tokens.Token()
	if err != nil {
		t.Fatal(err)
	}
	if tokB == tokA {
		t.Errorf("the new key signs the old token")
	}
	verify(t, tokB, &keyB.PublicKey)
	if signs.N() != 2 {
		t.Errorf("signs = %d, want 2", signs.N())
	}
	if got := reloads.take(); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("OnReload = %v, want [ok]", got)
	}

	// 5. The same key written again (identical content, then another
	// encoding): the token source is kept, nothing is re-signed.
	for _, data := range [][]byte{pemB, sec1PEM(t, keyB)} {
		if err := os.Remove(keyPath); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, filepath.Base(keyPath), data)
		clk.Add(time.Minute)
		if st.Reload() {
			t.Errorf("re-writing the same key reported a change")
		}
		same := st.Snapshot().APNs[0]
		if same.Tokens != bc.Tokens || same.Key != bc.Key || !same.LoadedAt.Equal(bc.LoadedAt) || same.State != creds.StateOK {
			t.Errorf("same key re-written: token source, key or loaded-at replaced")
		}
		if tok, err := same.Tokens.Token(); err != nil || tok != tokB {
			t.Errorf("same key re-written: token changed (%v)", err)
		}
	}
	if signs.N() != 2 {
		t.Errorf("signs = %d after re-writing the same key, want 2", signs.N())
	}
	if got := reloads.take(); len(got) != 0 {
		t.Errorf("OnReload = %v for an unchanged key", got)
	}

	// 6. Degraded, then the same good key comes back: ok, same token source.
	writeFile(t, dir, filepath.Base(keyPath), nil)
	st.Reload()
	if s := st.Snapshot().APNs[0]; s.State != creds.StateDegraded || !strings.Contains(s.LastError, "empty") {
		t.Errorf("empty file: state %q LastError %q", s.State, s.LastError)
	}
	writeFile(t, dir, filepath.Base(keyPath), pemB)
	clk.Add(time.Minute)
	if !st.Reload() {
		t.Errorf("recovering from degraded reported no change")
	}
	if s := st.Snapshot().APNs[0]; s.State != creds.StateOK || s.LastError != "" || s.Tokens != bc.Tokens || s.Key != bc.Key {
		t.Errorf("recovered: state %q LastError %q same source %v", s.State, s.LastError, s.Tokens == bc.Tokens)
	} else if !s.LoadedAt.Equal(bc.LoadedAt) {
		t.Errorf("recovered with the same key: LoadedAt %v, want the original %v", s.LoadedAt, bc.LoadedAt)
	}
	if got := reloads.take(); !slices.Equal(got, []string{"error", "ok"}) {
		t.Errorf("OnReload = %v, want [error ok]", got)
	}

	// 7. The file disappears: degraded, still usable.
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	st.Reload()
	if s := st.Snapshot().APNs[0]; s.State != creds.StateDegraded || !s.Usable() || s.Fingerprint != bc.Fingerprint {
		t.Errorf("file removed: state %q usable %v", s.State, s.Usable())
	}

	// Key material never reaches the log.
	out := logs.String()
	for name, data := range map[string][]byte{"key A": pemA, "key B": pemB} {
		if strings.Contains(out, pemBody(data)[:24]) {
			t.Errorf("the log contains %s", name)
		}
	}
	for _, tok := range []string{tokA, tokB} {
		if strings.Contains(out, tok) {
			t.Errorf("the log contains a provider token")
		}
	}
	if !strings.Contains(out, "fingerprint="+bc.Fingerprint) {
		t.Errorf("the log does not identify the key by fingerprint:\n%s", out)
	}
}

func checkKind(t *testing.T, kind string) {
	if kind != "apns" {
		t.Errorf("OnSign kind = %q, want apns", kind)
	}
}

func TestStoreIndependentCredentials(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "AuthKey_"+testKeyID+".p8", pkcs8PEM(t, newP256(t)))
	explicit := writeFile(t, dir, "apns-key.p8", pkcs8PEM(t, newP256(t)))
	st := creds.NewStore(creds.Spec{APNs: []creds.APNsSpec{
		{Name: "good", KeyFile: good, TeamID: testTeamID},
		{Name: "no-key-id", KeyFile: explicit, TeamID: testTeamID},
		{Name: "explicit-key-id", KeyFile: explicit, KeyID: "XYZ987WVUT", TeamID: testTeamID},
		{Name: "lower-team", KeyFile: good, TeamID: "def123ghij"},
		{Name: "bad-key-id", KeyFile: good, KeyID: "SHORT", TeamID: testTeamID},
	}}, creds.Options{})
	snap := st.Snapshot()
	if got := snap.Names(); !slices.Equal(got, []string{"good", "no-key-id", "explicit-key-id", "lower-team", "bad-key-id"}) {
		t.Errorf("Names() = %v", got)
	}
	for _, tc := range []struct {
		name, state, errPart string
	}{
		{"good", creds.StateOK, ""},
		{"no-key-id", creds.StateMissing, "AuthKey_<KEYID>.p8"},
		{"explicit-key-id", creds.StateOK, ""},
		{"lower-team", creds.StateMissing, "must be upper case"},
		{"bad-key-id", creds.StateMissing, "it has 5 characters"},
	} {
		c := snap.APNsByName(tc.name)
		if c == nil {
			t.Fatalf("no credential %q", tc.name)
		}
		if c.State != tc.state || !strings.Contains(c.LastError, tc.errPart) || (tc.errPart == "") != (c.LastError == "") {
			t.Errorf("%s: state %q LastError %q; want %q containing %q", tc.name, c.State, c.LastError, tc.state, tc.errPart)
		}
		if c.Usable() != (tc.state == creds.StateOK) {
			t.Errorf("%s: Usable() = %v", tc.name, c.Usable())
		}
	}
	if c := snap.APNsByName("explicit-key-id"); c.Spec.KeyID != "XYZ987WVUT" || c.Tokens.KeyID() != "XYZ987WVUT" {
		t.Errorf("explicit key_id not used: %q", c.Spec.KeyID)
	}
	if snap.APNsByName("nope") != nil {
		t.Errorf("APNsByName found a credential that does not exist")
	}
}

func TestSnapshotAPNsForTopic(t *testing.T) {
	app := &creds.APNsCredential{Spec: creds.APNsSpec{Name: "app", Topics: []string{"com.example.app"}}}
	multi := &creds.APNsCredential{Spec: creds.APNsSpec{Name: "multi", Topics: []string{"com.other.app", "com.third.app"}}}
	all := &creds.APNsCredential{Spec: creds.APNsSpec{Name: "all"}}
	withAll := &creds.Snapshot{APNs: []*creds.APNsCredential{app, multi, all}}
	catchAllFirst := &creds.Snapshot{APNs: []*creds.APNsCredential{all, app}}
	noAll := &creds.Snapshot{APNs: []*creds.APNsCredential{app, multi}}
	empty := &creds.Snapshot{}

	for _, tc := range []struct {
		name  string
		snap  *creds.Snapshot
		topic string
		want  *creds.APNsCredential
	}{
		{"exact", withAll, "com.example.app", app},
		{"voip suffix", withAll, "com.example.app.voip", app},
		{"live activity suffix", withAll, "com.example.app.push-type.liveactivity", app},
		{"second topic of a list", withAll, "com.third.app", multi},
		{"suffixed second topic", withAll, "com.third.app.complication", multi},
		{"unknown → catch-all", withAll, "com.unknown.app", all},
		{"prefix that is not a suffix", withAll, "com.example.apple", all},
		{"listed topic wins over an earlier catch-all", catchAllFirst, "com.example.app", app},
		{"unknown without catch-all", noAll, "com.unknown.app", nil},
		{"prefix without catch-all", noAll, "com.example.apple", nil},
		{"no topic → first", noAll, "", app},
		{"no topic, catch-all first", catchAllFirst, "", all},
		{"empty snapshot", empty, "com.example.app", nil},
		{"empty snapshot, no topic", empty, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.snap.APNsForTopic(tc.topic); got != tc.want {
				name := "<nil>"
				if got != nil {
					name = got.Spec.Name
				}
				t.Errorf("APNsForTopic(%q) = %s", tc.topic, name)
			}
		})
	}
}

func TestStoreAuthToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	const secret = "s3cr3t-bearer-value"
	var logs syncBuffer
	var reloads recorder
	st := creds.NewStore(creds.Spec{AuthTokenFile: path}, creds.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnReload: reloads.OnReload,
	})

	// Missing at start: fail closed.
	s := st.Snapshot()
	if s.AuthToken != nil || !strings.Contains(s.AuthError, "reading auth token file") {
		t.Errorf("missing: AuthToken set %v, AuthError %q", s.AuthToken != nil, s.AuthError)
	}
	if got := reloads.take(); !slices.Equal(got, []string{"error"}) {
		t.Errorf("OnReload = %v", got)
	}

	// Appears, with surrounding whitespace.
	writeFile(t, dir, "token", []byte("  \t"+secret+"\r\n\n"))
	if !st.Reload() {
		t.Errorf("the token file appearing reported no change")
	}
	s = st.Snapshot()
	if string(s.AuthToken) != secret || s.AuthError != "" {
		t.Errorf("AuthToken not trimmed (len %d) or AuthError %q", len(s.AuthToken), s.AuthError)
	}
	if got := reloads.take(); !slices.Equal(got, []string{"ok"}) {
		t.Errorf("OnReload = %v", got)
	}
	if st.Reload() {
		t.Errorf("an unchanged token file reported a change")
	}

	// Emptied: the last good token stays, the error is reported.
	writeFile(t, dir, "token", []byte(" \n"))
	st.Reload()
	s = st.Snapshot()
	if string(s.AuthToken) != secret || !strings.Contains(s.AuthError, "empty") {
		t.Errorf("emptied: token kept %v, AuthError %q", string(s.AuthToken) == secret, s.AuthError)
	}
	// Removed: the same.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	st.Reload()
	s = st.Snapshot()
	if string(s.AuthToken) != secret || s.AuthError == "" {
		t.Errorf("removed: token kept %v, AuthError %q", string(s.AuthToken) == secret, s.AuthError)
	}

	// Rotated.
	writeFile(t, dir, "token", []byte("next-value\n"))
	if !st.Reload() {
		t.Errorf("a rotated token reported no change")
	}
	if s = st.Snapshot(); string(s.AuthToken) != "next-value" || s.AuthError != "" {
		t.Errorf("rotated: AuthError %q", s.AuthError)
	}

	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "next-value") {
		t.Errorf("the log contains the bearer token")
	}

	// Without an auth token file, none is required.
	if s := creds.NewStore(creds.Spec{}, creds.Options{}).Snapshot(); s.AuthToken != nil || s.AuthError != "" {
		t.Errorf("no auth token file: %+v", s)
	}
}

func TestStoreConcurrentReloads(t *testing.T) {
	dir := t.TempDir()
	keyPath := writeFile(t, dir, "AuthKey_"+testKeyID+".p8", pkcs8PEM(t, newP256(t)))
	st := creds.NewStore(creds.Spec{APNs: []creds.APNsSpec{{Name: "default", KeyFile: keyPath, TeamID: testTeamID}}}, creds.Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				st.Reload()
				c := st.Snapshot().APNs[0]
				if !c.Usable() {
					t.Errorf("credential unusable during reloads")
					return
				}
				if _, err := c.Tokens.Token(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestStoreEvictsGoneKeys: the token sources and VAPID signers of keys
// that were swapped out, or whose credential left the configuration, are
// dropped on reload; the ones in use are kept with their caches.
func TestStoreEvictsGoneKeys(t *testing.T) {
	dir := t.TempDir()
	apnsPath := filepath.Join(dir, "AuthKey_"+testKeyID+".p8")
	otherPath := filepath.Join(dir, "other.p8")
	vapidPath := filepath.Join(dir, "vapid.json")
	writeVAPID := func() {
		data, err := creds.GenerateVAPIDKeyJSON()
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, filepath.Base(vapidPath), data)
	}
	writeFile(t, dir, filepath.Base(apnsPath), pkcs8PEM(t, newP256(t)))
	writeFile(t, dir, filepath.Base(otherPath), pkcs8PEM(t, newP256(t)))
	writeVAPID()
	spec := creds.Spec{
		APNs: []creds.APNsSpec{
			{Name: "default", KeyFile: apnsPath, TeamID: testTeamID},
			{Name: "other", KeyFile: otherPath, KeyID: "XYZ987WVUT", TeamID: testTeamID},
		},
		VAPID:        []creds.VAPIDSpec{{Name: "current", File: vapidPath}},
		VAPIDSubject: "mailto:ops@example.com",
	}
	st := creds.NewStore(spec, creds.Options{})
	check := func(what string, sources, signers int) {
		t.Helper()
		if n, m := st.Cached(); n != sources || m != signers {
			t.Errorf("%s: the store keeps %d token sources and %d signers, want %d and %d", what, n, m, sources, signers)
		}
	}
	check("at start", 2, 1)
	kept := st.Snapshot().APNsByName("other").Tokens
	for range 5 {
		writeFile(t, dir, filepath.Base(apnsPath), pkcs8PEM(t, newP256(t)))
		writeVAPID()
		if !st.Reload() {
			t.Fatal("a key swap reported no change")
		}
		check("after key swaps", 2, 1)
	}
	if st.Snapshot().APNsByName("other").Tokens != kept {
		t.Errorf("the token source of a key that did not change was replaced")
	}
	// A bad file keeps the last good key, and its source.
	writeFile(t, dir, filepath.Base(apnsPath), []byte("garbage"))
	st.Reload()
	check("after a bad file", 2, 1)
	// A credential leaves the configuration.
	spec.APNs = spec.APNs[:1]
	spec.VAPID = nil
	st.SetSpec(spec)
	st.Reload()
	check("after credentials left the configuration", 1, 0)
}

// TestStoreMissingVAPIDKeyLog: a VAPID key that never loaded is reported
// as not loaded yet, with what to do; one that loaded and then broke keeps
// its last good key.
func TestStoreMissingVAPIDKeyLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vapid.json")
	var logs syncBuffer
	st := creds.NewStore(creds.Spec{VAPID: []creds.VAPIDSpec{{Name: "current", File: path}}, VAPIDSubject: "mailto:ops@example.com"},
		creds.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if out := logs.String(); !strings.Contains(out, "VAPID key is not loaded yet") || !strings.Contains(out, "pushproxy vapid-keys") ||
		strings.Contains(out, "last good key") {
		t.Errorf("first load with the key missing logs:\n%s", out)
	}
	data, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "vapid.json", data)
	st.Reload()
	writeFile(t, dir, "vapid.json", []byte("{}"))
	st.Reload()
	if out := logs.String(); !strings.Contains(out, "VAPID key failed to load; keeping the last good key") {
		t.Errorf("a failed reload over a good key logs:\n%s", out)
	}
}
