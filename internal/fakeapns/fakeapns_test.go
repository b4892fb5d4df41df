package fakeapns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	teamA   = "TEAMAAAAAA"
	kidA    = "KEYAAAAAAA"
	kidA2   = "KEYAAAAAA2" // a second key of team A
	teamB   = "TEAMBBBBBB"
	kidB    = "KEYBBBBBBB"
	bundle  = "com.example.app"
	bundle2 = "com.example.other"
	soloB   = "com.example.solo" // team B's only bundle
)

var (
	device  = strings.Repeat("a1", 32)
	payload = `{"aps":{"alert":"hi"}}`
	// fixedNow is the fake's clock in every test; tokens are dated relative to it.
	fixedNow = time.Unix(1_900_000_000, 0)
)

type fixture struct {
	t                 *testing.T
	s                 *Server
	keyA, keyA2, keyB *ecdsa.PrivateKey
	tokA              string // valid token of key A, iat = now - 30 min

	logMu sync.Mutex
	logs  []string
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{t: t}
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	opts.Logf = func(format string, args ...any) {
		f.logMu.Lock()
		f.logs = append(f.logs, fmt.Sprintf(format, args...))
		f.logMu.Unlock()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.s = s
	f.keyA, f.keyA2, f.keyB = genKey(t), genKey(t), genKey(t)
	s.AddKey(teamA, kidA, &f.keyA.PublicKey, bundle, bundle2)
	s.AddKey(teamA, kidA2, &f.keyA2.PublicKey)
	s.AddKey(teamB, kidB, &f.keyB.PublicKey, soloB)
	f.tokA = token(t, f.keyA, kidA, teamA, fixedNow.Add(-30*time.Minute))
	return f
}

func genKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func token(t *testing.T, key *ecdsa.PrivateKey, kid, team string, iat time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": team, "iat": iat.Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// client returns an HTTP/2 client with its own connection pool, trusting the fake's CA.
func (f *fixture) client() *http.Client {
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: f.s.CertPool()}}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// request builds a valid push request for device with key A's token.
func (f *fixture) request(jwtStr string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, f.s.URL()+"/3/device/"+device, strings.NewReader(payload))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("authorization", "bearer "+jwtStr)
	req.Header.Set("apns-topic", bundle)
	req.Header.Set("apns-push-type", "alert")
	return req
}

type result struct {
	status     int
	reason     string
	timestamp  int64
	apnsID     string
	retryAfter string
}

func do(t *testing.T, c *http.Client, req *http.Request) result {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := result{status: resp.StatusCode, apnsID: resp.Header.Get("apns-id"), retryAfter: resp.Header.Get("retry-after")}
	if resp.ProtoMajor != 2 {
		t.Errorf("proto %s, want HTTP/2", resp.Proto)
	}
	if r.status == http.StatusOK {
		if len(body) != 0 {
			t.Errorf("200 with body %q", body)
		}
		return r
	}
	var e struct {
		Reason    string `json:"reason"`
		Timestamp *int64 `json:"timestamp"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("status %d, body %q: %v", r.status, body, err)
	}
	r.reason = e.Reason
	if e.Timestamp != nil {
		r.timestamp = *e.Timestamp
	}
	if (e.Timestamp != nil) != (r.status == http.StatusGone) {
		t.Errorf("status %d with body %s: timestamp must be present exactly for 410", r.status, body)
	}
	return r
}

func TestValidRequest(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.client()

	req := f.request(f.tokA)
	req.Header.Set("apns-id", "123E4567-E89B-12D3-A456-426614174000")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("apns-expiration", "0")
	req.Header.Set("apns-collapse-id", strings.Repeat("c", 64))
	got := do(t, c, req)
	if got.status != 200 || got.apnsID != "123e4567-e89b-12d3-a456-426614174000" {
		t.Fatalf("got %+v, want 200 with the apns-id echoed in lower case", got)
	}

	got = do(t, c, f.request(f.tokA))
	if got.status != 200 || !isUUID(got.apnsID) || got.apnsID[14] != '4' {
		t.Fatalf("got %+v, want 200 with a new UUID v4", got)
	}

	recs := f.s.Requests()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	r := recs[0]
	if r.Conn != 1 || r.Method != "POST" || r.Path != "/3/device/"+device || r.DeviceToken != device ||
		r.JWT != f.tokA || r.KeyID != kidA || r.TeamID != teamA || r.IssuedAt != fixedNow.Add(-30*time.Minute).Unix() ||
		r.Status != 200 || r.Reason != "" || r.APNsID != "123e4567-e89b-12d3-a456-426614174000" || string(r.Body) != payload ||
		r.Header.Get("apns-topic") != bundle || !r.Received.Equal(fixedNow) {
		t.Errorf("record %+v", r)
	}
	if r.StreamID == 0 || r.StreamID%2 != 1 || recs[1].StreamID <= r.StreamID {
		t.Errorf("stream IDs %d, %d: want odd and increasing on one connection", r.StreamID, recs[1].StreamID)
	}
	if recs[1].APNsID != got.apnsID || recs[1].Conn != 1 || f.s.Conns() != 1 {
		t.Errorf("second record %+v, conns %d", recs[1], f.s.Conns())
	}

	// Requests returns copies.
	recs[0].Header.Set("apns-topic", "changed")
	recs[0].Body[0] = 'X'
	if again := f.s.Requests()[0]; again.Header.Get("apns-topic") != bundle || string(again.Body) != payload {
		t.Error("Requests shares memory with the server's records")
	}

	// Logs never carry a device token or a provider token in full.
	f.logMu.Lock()
	defer f.logMu.Unlock()
	if len(f.logs) == 0 {
		t.Error("no debug log")
	}
	for _, l := range f.logs {
		if strings.Contains(l, device) || strings.Contains(l, f.tokA) || strings.Contains(l, strings.Split(f.tokA, ".")[2]) {
			t.Errorf("log line leaks a secret: %s", l)
		}
	}
}

// payloadOfSize returns a JSON payload with an aps dictionary, exactly n bytes long.
func payloadOfSize(n int) string {
	base := `{"aps":{"alert":""}}`
	return `{"aps":{"alert":"` + strings.Repeat("x", n-len(base)) + `"}}`
}

func TestValidation(t *testing.T) {
	f := newFixture(t, Options{})
	now := fixedNow
	other := genKey(t)
	hs256 := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": teamA, "iat": now.Unix()})
		tok.Header["kid"] = kidA
		s, err := tok.SignedString([]byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	noIat := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": teamA})
		tok.Header["kid"] = kidA
		s, err := tok.SignedString(f.keyA)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	setHeader := func(k, v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(k, v) }
	}
	setBody := func(b string) func(*http.Request) {
		return func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(b))
			r.ContentLength = int64(len(b))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(b)), nil }
		}
	}
	setPath := func(p string) func(*http.Request) {
		return func(r *http.Request) { r.URL.Path = p }
	}
	setToken := func(tok string) func(*http.Request) { return setHeader("authorization", "bearer "+tok) }
	all := func(ms ...func(*http.Request)) func(*http.Request) {
		return func(r *http.Request) {
			for _, m := range ms {
				m(r)
			}
		}
	}

	tests := []struct {
		name   string
		mutate func(*http.Request)
		status int
		reason string
	}{
		{"valid", nil, 200, ""},
		{"GET", func(r *http.Request) { r.Method = http.MethodGet; setBody("")(r) }, 405, "MethodNotAllowed"},
		{"PUT before bad path", all(func(r *http.Request) { r.Method = http.MethodPut }, setPath("/nope")), 405, "MethodNotAllowed"},
		{"bad path", setPath("/3/devices/" + device), 404, "BadPath"},
		{"bad version", setPath("/2/device/" + device), 404, "BadPath"},
		{"missing device token", setPath("/3/device/"), 400, "MissingDeviceToken"},
		{"missing device token no slash", setPath("/3/device"), 400, "MissingDeviceToken"},
		{"device token not hex", setPath("/3/device/" + strings.Repeat("zz", 32)), 400, "BadDeviceToken"},
		{"device token odd length", setPath("/3/device/" + device + "a"), 400, "BadDeviceToken"},
		{"device token short", setPath("/3/device/" + device[:62]), 400, "BadDeviceToken"},
		{"device token too long", setPath("/3/device/" + strings.Repeat("ab", 101)), 400, "BadDeviceToken"},
		{"device token long ok", setPath("/3/device/" + strings.Repeat("AB", 100)), 200, ""},
		{"bad device token before missing provider token", all(setPath("/3/device/xyz"), func(r *http.Request) { r.Header.Del("authorization") }), 400, "BadDeviceToken"},
		{"no authorization", func(r *http.Request) { r.Header.Del("authorization") }, 403, "MissingProviderToken"},
		{"basic authorization", setHeader("authorization", "basic Zm9vOmJhcg=="), 403, "MissingProviderToken"},
		{"empty bearer", setHeader("authorization", "bearer "), 403, "MissingProviderToken"},
		{"Bearer capitalised", setHeader("authorization", "Bearer "+f.tokA), 200, ""},
		{"garbage token", setToken("not.a.jwt"), 403, "InvalidProviderToken"},
		{"unknown kid", setToken(token(t, f.keyA, "KEYUNKNOWN", teamA, now)), 403, "InvalidProviderToken"},
		{"bad signature", setToken(token(t, other, kidA, teamA, now)), 403, "InvalidProviderToken"},
		{"HS256", setToken(hs256), 403, "InvalidProviderToken"},
		{"iss of another team", setToken(token(t, f.keyA, kidA, teamB, now)), 403, "InvalidProviderToken"},
		{"no iat", setToken(noIat), 403, "InvalidProviderToken"},
		{"expired", setToken(token(t, f.keyA, kidA, teamA, now.Add(-time.Hour-time.Second))), 403, "ExpiredProviderToken"},
		{"almost expired", setToken(token(t, f.keyA, kidA, teamA, now.Add(-time.Hour))), 200, ""},
		{"future", setToken(token(t, f.keyA, kidA, teamA, now.Add(61*time.Second))), 403, "InvalidProviderToken"},
		{"slightly future", setToken(token(t, f.keyA, kidA, teamA, now.Add(60*time.Second))), 200, ""},
		{"bad push type", setHeader("apns-push-type", "banner"), 400, "InvalidPushType"},
		{"absent push type is alert", func(r *http.Request) { r.Header.Del("apns-push-type") }, 200, ""},
		{"missing topic", func(r *http.Request) { r.Header.Del("apns-topic") }, 400, "MissingTopic"},
		{"topic of another team", setHeader("apns-topic", soloB), 400, "TopicDisallowed"},
		{"unknown topic", setHeader("apns-topic", "com.evil.app"), 400, "TopicDisallowed"},
		{"second bundle", setHeader("apns-topic", bundle2), 200, ""},
		{"voip without suffix", setHeader("apns-push-type", "voip"), 400, "BadTopic"},
		{"alert with voip suffix", setHeader("apns-topic", bundle+".voip"), 400, "BadTopic"},
		{"voip", all(setHeader("apns-push-type", "voip"), setHeader("apns-topic", bundle+".voip")), 200, ""},
		{"complication", all(setHeader("apns-push-type", "complication"), setHeader("apns-topic", bundle+".complication")), 200, ""},
		{"fileprovider", all(setHeader("apns-push-type", "fileprovider"), setHeader("apns-topic", bundle+".pushkit.fileprovider")), 200, ""},
		{"location", all(setHeader("apns-push-type", "location"), setHeader("apns-topic", bundle+".location-query")), 200, ""},
		{"pushtotalk", all(setHeader("apns-push-type", "pushtotalk"), setHeader("apns-topic", bundle+".voip-ptt")), 200, ""},
		{"liveactivity", all(setHeader("apns-push-type", "liveactivity"), setHeader("apns-topic", bundle+".push-type.liveactivity")), 200, ""},
		{"liveactivity wrong suffix", all(setHeader("apns-push-type", "liveactivity"), setHeader("apns-topic", bundle+".push-type.widgets")), 400, "BadTopic"},
		{"widgets", all(setHeader("apns-push-type", "widgets"), setHeader("apns-topic", bundle2+".push-type.widgets")), 200, ""},
		{"controls", all(setHeader("apns-push-type", "controls"), setHeader("apns-topic", bundle+".push-type.controls")), 200, ""},
		{"mdm", all(setHeader("apns-push-type", "mdm"), setHeader("apns-topic", "com.apple.mgmt.External.1234")), 200, ""},
		{"mdm with app topic", setHeader("apns-push-type", "mdm"), 400, "BadTopic"},
		{"bad topic before bad priority", all(setHeader("apns-topic", "com.evil.app"), setHeader("apns-priority", "7")), 400, "TopicDisallowed"},
		{"priority 7", setHeader("apns-priority", "7"), 400, "BadPriority"},
		{"priority 5", setHeader("apns-priority", "5"), 200, ""},
		{"priority 1", setHeader("apns-priority", "1"), 200, ""},
		{"background priority 10", all(setHeader("apns-push-type", "background"), setHeader("apns-priority", "10")), 400, "BadPriority"},
		{"background priority 5", all(setHeader("apns-push-type", "background"), setHeader("apns-priority", "5"),
			setBody(`{"aps":{"content-available":1}}`)), 200, ""},
		{"expiration negative", setHeader("apns-expiration", "-1"), 400, "BadExpirationDate"},
		{"expiration text", setHeader("apns-expiration", "tomorrow"), 400, "BadExpirationDate"},
		{"expiration", setHeader("apns-expiration", "1900003600"), 200, ""},
		{"bad apns-id", setHeader("apns-id", "not-a-uuid"), 400, "BadMessageId"},
		{"apns-id without dashes", setHeader("apns-id", "123e4567e89b12d3a456426614174000"), 400, "BadMessageId"},
		{"collapse id 65 bytes", setHeader("apns-collapse-id", strings.Repeat("c", 65)), 400, "BadCollapseId"},
		{"duplicate priority", func(r *http.Request) { r.Header["Apns-Priority"] = []string{"10", "10"} }, 400, "DuplicateHeaders"},
		{"duplicate topic", func(r *http.Request) { r.Header["Apns-Topic"] = []string{bundle, bundle} }, 400, "DuplicateHeaders"},
		{"empty body", setBody(""), 400, "PayloadEmpty"},
		{"body 4096", setBody(payloadOfSize(4096)), 200, ""},
		{"body 4097", setBody(payloadOfSize(4097)), 413, "PayloadTooLarge"},
		{"huge body", setBody(payloadOfSize(200 << 10)), 413, "PayloadTooLarge"},
		{"voip body 5120", all(setHeader("apns-push-type", "voip"), setHeader("apns-topic", bundle+".voip"), setBody(payloadOfSize(5120))), 200, ""},
		{"voip body 5121", all(setHeader("apns-push-type", "voip"), setHeader("apns-topic", bundle+".voip"), setBody(payloadOfSize(5121))), 413, "PayloadTooLarge"},
		{"body not JSON", setBody("hello"), 400, "PayloadEmpty"},
		{"body JSON array", setBody(`[{"aps":{}}]`), 400, "PayloadEmpty"},
		{"body without aps", setBody(`{"data":1}`), 400, "PayloadEmpty"},
		{"aps not a dictionary", setBody(`{"aps":"hi"}`), 400, "PayloadEmpty"},
		{"body null", setBody(`null`), 400, "PayloadEmpty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := f.request(f.tokA)
			if tc.mutate != nil {
				tc.mutate(req)
			}
			// A fresh connection per case, so token and connection rules start afresh.
			got := do(t, f.client(), req)
			if got.status != tc.status || got.reason != tc.reason {
				t.Errorf("got %d %q, want %d %q", got.status, got.reason, tc.status, tc.reason)
			}
			if !isUUID(got.apnsID) {
				t.Errorf("apns-id %q", got.apnsID)
			}
			recs := f.s.Requests()
			last := recs[len(recs)-1]
			if last.Status != tc.status || last.Reason != tc.reason || last.APNsID != got.apnsID {
				t.Errorf("recorded %d %q %s, answered %d %q %s", last.Status, last.Reason, last.APNsID, got.status, got.reason, got.apnsID)
			}
		})
	}
	if n := len(f.s.Requests()); n != len(tests) {
		t.Errorf("%d records for %d requests", n, len(tests))
	}
}

func TestDefaultTopicWithOneBundle(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.client()
	tokB := token(t, f.keyB, kidB, teamB, fixedNow)
	for _, pt := range []string{"alert", "voip", "liveactivity"} {
		req := f.request(tokB)
		req.Header.Del("apns-topic")
		req.Header.Set("apns-push-type", pt)
		if got := do(t, c, req); got.status != 200 {
			t.Errorf("%s without apns-topic for a one-bundle team: %+v", pt, got)
		}
	}
	req := f.request(tokB)
	req.Header.Set("apns-topic", soloB+".voip")
	if got := do(t, c, req); got.reason != "BadTopic" {
		t.Errorf("alert to the voip topic: %+v", got)
	}
}

func TestOneKeyPerConnection(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.client()
	tokA2 := token(t, f.keyA2, kidA2, teamA, fixedNow)
	tokB := token(t, f.keyB, kidB, teamB, fixedNow)

	if got := do(t, c, f.request(f.tokA)); got.status != 200 {
		t.Fatalf("first request: %+v", got)
	}
	if got := do(t, c, f.request(tokA2)); got.status != 403 || got.reason != "UnrelatedKeyIdInToken" {
		t.Errorf("other key of the same team on the connection: %+v", got)
	}
	reqB := f.request(tokB)
	reqB.Header.Set("apns-topic", soloB)
	if got := do(t, c, reqB); got.status != 403 || got.reason != "UnrelatedKeyIdInToken" {
		t.Errorf("other team on the connection: %+v", got)
	}
	if got := do(t, c, f.request(f.tokA)); got.status != 200 {
		t.Errorf("first key again: %+v", got)
	}

	// A new connection may use another key.
	c2 := f.client()
	reqB = f.request(tokB)
	reqB.Header.Set("apns-topic", soloB)
	if got := do(t, c2, reqB); got.status != 200 {
		t.Errorf("team B on its own connection: %+v", got)
	}
	recs := f.s.Requests()
	if f.s.Conns() != 2 || recs[0].Conn != 1 || recs[len(recs)-1].Conn != 2 {
		t.Errorf("conns %d, records on conns %d…%d", f.s.Conns(), recs[0].Conn, recs[len(recs)-1].Conn)
	}

	// A removed key is refused, on an existing connection too.
	f.s.RemoveKey(kidA)
	if got := do(t, c, f.request(f.tokA)); got.status != 403 || got.reason != "InvalidProviderToken" {
		t.Errorf("removed key: %+v", got)
	}
}

func TestTooManyProviderTokenUpdates(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.client()
	t0 := fixedNow.Add(-50 * time.Minute)
	tok0 := token(t, f.keyA, kidA, teamA, t0)
	steps := []struct {
		tok    string
		status int
		reason string
	}{
		{tok0, 200, ""},
		{tok0, 200, ""}, // the same token again is fine
		{token(t, f.keyA, kidA, teamA, t0.Add(10*time.Minute)), 429, "TooManyProviderTokenUpdates"},
		{tok0, 200, ""}, // the refused token did not replace it
		{token(t, f.keyA, kidA, teamA, t0.Add(20*time.Minute)), 200, ""},
		{tok0, 429, "TooManyProviderTokenUpdates"}, // going back is churn too
		{token(t, f.keyA, kidA, teamA, t0.Add(45*time.Minute)), 200, ""},
	}
	for i, st := range steps {
		if got := do(t, c, f.request(st.tok)); got.status != st.status || got.reason != st.reason {
			t.Errorf("step %d: got %d %q, want %d %q", i, got.status, got.reason, st.status, st.reason)
		}
	}
	if f.s.Conns() != 1 {
		t.Errorf("%d connections, want 1", f.s.Conns())
	}
	// The same churn spread over connections is not refused.
	if got := do(t, f.client(), f.request(token(t, f.keyA, kidA, teamA, t0.Add(46*time.Minute)))); got.status != 200 {
		t.Errorf("new token on a new connection: %+v", got)
	}
}

func TestScriptAndDefault(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.client()
	f.s.Script(strings.ToUpper(device),
		Response{Status: 410, Reason: "Unregistered"},
		Response{Status: 410, Reason: "ExpiredToken", Timestamp: 1763632800000},
		Response{Status: 429, RetryAfter: "7"},
		Response{Status: 400, Reason: "DeviceTokenNotForTopic"},
	)

	// A rejected request does not consume the script.
	bad := f.request(f.tokA)
	bad.Header.Set("apns-priority", "3")
	if got := do(t, c, bad); got.reason != "BadPriority" {
		t.Fatalf("bad request: %+v", got)
	}
	want := []result{
		{status: 410, reason: "Unregistered", timestamp: fixedNow.UnixMilli()},
		{status: 410, reason: "ExpiredToken", timestamp: 1763632800000},
		{status: 429, reason: "TooManyRequests", retryAfter: "7"},
		{status: 400, reason: "DeviceTokenNotForTopic"},
		{status: 200},
		{status: 200},
	}
	for i, w := range want {
		got := do(t, c, f.request(f.tokA))
		got.apnsID = ""
		if got != w {
			t.Errorf("request %d: got %+v, want %+v", i, got, w)
		}
	}

	// The default applies to tokens with nothing scripted, until reset.
	f.s.SetDefault(&Response{Status: 503, Reason: "Shutdown"})
	if got := do(t, c, f.request(f.tokA)); got.status != 503 || got.reason != "Shutdown" {
		t.Errorf("default: %+v", got)
	}
	f.s.SetDefault(nil)
	if got := do(t, c, f.request(f.tokA)); got.status != 200 {
		t.Errorf("default removed: %+v", got)
	}

	f.s.Script(device, Response{Status: 500})
	f.s.Reset()
	if n := len(f.s.Requests()); n != 0 {
		t.Errorf("%d records after Reset", n)
	}
	if got := do(t, c, f.request(f.tokA)); got.status != 200 {
		t.Errorf("script survived Reset: %+v", got)
	}
}

func TestDelay(t *testing.T) {
	f := newFixture(t, Options{})
	c := f.client()

	f.s.Script(device, Response{Delay: 150 * time.Millisecond})
	start := time.Now()
	if got := do(t, c, f.request(f.tokA)); got.status != 200 {
		t.Fatalf("delayed: %+v", got)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %v, want at least 150ms", d)
	}

	// A client giving up ends the wait; nothing is answered.
	f.s.Script(device, Response{Status: 410, Delay: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := c.Do(f.request(f.tokA).WithContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancelled request took %v", d)
	}
	// The handler sees the reset and returns: the next request on the connection works.
	if got := do(t, c, f.request(f.tokA)); got.status != 200 {
		t.Errorf("after cancel: %+v", got)
	}
	recs := f.s.Requests()
	if n := len(recs); n != 3 || recs[1].Status != 0 || recs[2].Status != 200 {
		t.Errorf("records: %+v", recs)
	}
}

func TestGoAwayAfterLosesNothing(t *testing.T) {
	const (
		total   = 200
		workers = 8
		after   = 50
	)
	f := newFixture(t, Options{GoAwayAfter: after})
	c := f.client()

	ids := make(chan string, total)
	for i := 0; i < total; i++ {
		ids <- newUUID()
	}
	close(ids)
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				req := f.request(f.tokA)
				req.Header.Set("apns-id", id)
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("apns-id") != id {
					errs <- fmt.Errorf("status %d apns-id %s for %s", resp.StatusCode, resp.Header.Get("apns-id"), id)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	recs := f.s.Requests()
	seen := make(map[string]int)
	perConn := make(map[uint64]int)
	for _, r := range recs {
		seen[r.APNsID]++
		perConn[r.Conn]++
	}
	if len(recs) != total || len(seen) != total {
		t.Errorf("%d records, %d distinct notifications; want %d of each (nothing lost, nothing twice)", len(recs), len(seen), total)
	}
	// Each connection serves at least GoAwayAfter streams (but the last), and not
	// much more: what was in flight when the GOAWAY went out, plus what the
	// workers sent before the client read it (x/net's graceful shutdown lets
	// streams in for about a round trip, several per worker on a busy machine).
	if f.s.Conns() < total/(after+workers)+1 {
		t.Errorf("%d connections for %d requests with GoAwayAfter=%d", f.s.Conns(), total, after)
	}
	for conn, n := range perConn {
		if n > 2*after || (n < after && conn != uint64(f.s.Conns())) {
			t.Errorf("connection %d carried %d streams", conn, n)
		}
	}
}

// TestGoAwayFrame talks raw HTTP/2 frames to see the GOAWAY itself: NO_ERROR, the last
// stream ID of the streams already started, those streams answered, then the connection
// closed.
func TestGoAwayFrame(t *testing.T) {
	f := newFixture(t, Options{GoAwayAfter: 2, MaxConcurrentStreams: 7})
	addr := strings.TrimPrefix(f.s.URL(), "https://")
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: f.s.CertPool(), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(4 * time.Second))
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q", p)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	send := func(id uint32) {
		hbuf.Reset()
		for _, kv := range [][2]string{
			{":method", "POST"}, {":scheme", "https"}, {":authority", addr},
			{":path", "/3/device/" + device}, {"authorization", "bearer " + f.tokA}, {"apns-topic", bundle},
		} {
			enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		if err := fr.WriteData(id, true, []byte(payload)); err != nil {
			t.Fatal(err)
		}
	}
	send(1)
	send(3)

	var goAway *http2.GoAwayFrame
	answered := map[uint32]bool{}
	sentAfter := false
	for {
		fr2, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				break
			}
			t.Fatalf("reading frames: %v (GOAWAY %v, answered %v)", err, goAway, answered)
		}
		switch fr2 := fr2.(type) {
		case *http2.SettingsFrame:
			if !fr2.IsAck() {
				if v, ok := fr2.Value(http2.SettingMaxConcurrentStreams); !ok || v != 7 {
					t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d, %v; want 7", v, ok)
				}
				fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			goAway = fr2
			if !sentAfter {
				// A stream opened after the GOAWAY is ignored, not answered.
				sentAfter = true
				send(5)
			}
		case *http2.HeadersFrame:
			answered[fr2.StreamID] = true
		}
	}
	if goAway == nil {
		t.Fatal("connection closed without GOAWAY")
	}
	if goAway.ErrCode != http2.ErrCodeNo || goAway.LastStreamID != 3 {
		t.Errorf("GOAWAY %v last stream %d, want NO_ERROR and 3", goAway.ErrCode, goAway.LastStreamID)
	}
	if !answered[1] || !answered[3] || answered[5] {
		t.Errorf("answered streams %v, want 1 and 3", answered)
	}
	if n := len(f.s.Requests()); n != 2 {
		t.Errorf("%d records, want 2", n)
	}
}

func TestNotH2Refused(t *testing.T) {
	f := newFixture(t, Options{})
	addr := strings.TrimPrefix(f.s.URL(), "https://")
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: f.s.CertPool(), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(conn, "POST /3/device/"+device+" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("HTTP/1.1 without ALPN h2 got an answer (%d, %v)", n, err)
	}
	if f.s.Conns() != 1 || len(f.s.Requests()) != 0 {
		t.Errorf("conns %d, records %d", f.s.Conns(), len(f.s.Requests()))
	}
	if !bytes.Contains(f.s.CAPEM(), []byte("BEGIN CERTIFICATE")) {
		t.Error("CAPEM is not PEM")
	}
}

func TestCloseStopsEverything(t *testing.T) {
	before := runtime.NumGoroutine()

	f := newFixture(t, Options{})
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: f.s.CertPool()}}
	c := &http.Client{Transport: tr}
	if got := do(t, c, f.request(f.tokA)); got.status != 200 {
		t.Fatalf("%+v", got)
	}
	// One request waiting on a long delay while the server closes.
	f.s.Script(device, Response{Delay: time.Minute})
	done := make(chan error, 1)
	go func() {
		resp, err := c.Do(f.request(f.tokA))
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		done <- err
	}()
	for len(f.s.Requests()) < 2 {
		time.Sleep(time.Millisecond)
	}

	start := time.Now()
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-done; err == nil {
		t.Error("delayed request was answered after Close")
	}
	if err := f.s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(f.s.URL(), "https://"), time.Second); err == nil {
		t.Error("still listening after Close")
	}
	tr.CloseIdleConnections()

	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
