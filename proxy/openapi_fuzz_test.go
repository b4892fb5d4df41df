package proxy_test

// TestOpenAPIFuzz holds the running server to api/openapi.yaml by
// property-based testing. From a seed it generates requests: valid ones
// drawn from the document's schemas (with the deployment's values, such as
// real device tokens and subscriptions, mixed in), and mutated ones (wrong
// types, missing or unknown fields, out-of-range numbers, invalid UTF-8,
// lone surrogates, duplicate keys, nulls, wrong methods, unknown paths, odd
// headers, malformed HTTP). It sends each to the real server (in front of
// the fake APNs and the fake push service) and checks:
//
//   (a) every answer matches the document: its status is declared for the
//       operation, and its body and headers match that status's schema
//       (in strict mode: no undeclared field);
//   (b) the server accepts what the document allows and refuses what it
//       refuses: a request the document says is valid is never answered
//       400 invalid_request (nor 500), one it says is invalid is always
//       answered 4xx; the same for each entry of a batch, in its slot.
//
// "What the document says" is the document's JSON Schema (through
// libopenapi-validator) plus the rules its introduction states in words
// because JSON Schema cannot (I-JSON, the Content-Type rule, int64
// literals, the configuration's names, APNs's 64 bytes): each is coded
// below, next to the sentence it implements.
//
// On failure the seed is printed; OPENAPI_FUZZ_SEED=<seed> replays the same
// requests (OPENAPI_FUZZ_N sets their number). Every mismatch is printed with
// the request that caused it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

const (
	fuzzRequests = 2000
	fuzzBudget   = 20 * time.Second
	fuzzWorkers  = 4
	// The fuzzing harness's limits, small so that they are reached.
	fuzzMaxBatch     = 6
	fuzzMaxBodyBytes = 16 << 10
)

func TestOpenAPIFuzz(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("OPENAPI_FUZZ_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("OPENAPI_FUZZ_SEED: %v", err)
		}
		seed = v
	}
	n := fuzzRequests
	if raceEnabled {
		n = 300
	}
	if s := os.Getenv("OPENAPI_FUZZ_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("OPENAPI_FUZZ_N: %v", err)
		}
		n = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with OPENAPI_FUZZ_SEED=%d OPENAPI_FUZZ_N=%d go test -run TestOpenAPIFuzz ./proxy/", seed, n)
		}
	})
	t.Logf("seed %d, %d requests", seed, n)
	env := newFuzzEnv(t, loadOpenAPI(t))
	problems, ran := fuzzRun(t, env, seed, n, fuzzBudget, false)
	if ran < min(n, 500) {
		t.Errorf("only %d of %d requests ran within %v", ran, n, fuzzBudget)
	}
	for i, p := range problems {
		if i == 25 {
			t.Errorf("… and %d more mismatches", len(problems)-25)
			break
		}
		t.Errorf("seed %d: %s", seed, p)
	}
}

// TestOpenAPIFuzzCatchesDrift: the fuzzer is not a rubber stamp. Against
// copies of the document that are each wrong in one place, as a careless
// edit would make them (a constraint dropped, one added, a status left
// out), it reports mismatches.
func TestOpenAPIFuzzCatchesDrift(t *testing.T) {
	good := loadOpenAPI(t)
	env := newFuzzEnv(t, good)
	// Up to n requests each, stopping at the first mismatch.
	n := 3000
	if raceEnabled {
		n = 1000
	}
	for _, m := range []struct{ name, old, new string }{
		{"badge may be negative", "          format: int64\n          minimum: 0\n          description: The app icon badge", "          format: int64\n          description: The app icon badge"},
		{"an APNs notification may be empty", "        - $ref: \"#/components/schemas/APNsHasContent\"\n", ""},
		{"priority may be urgent", `enum: ["", high, normal, low]`, `enum: ["", high, normal, low, urgent]`},
		{"an FCM sound dictionary needs no name", "              required: [name]\n              properties:\n                name:\n                  type: string\n                  minLength: 1\n", ""},
		{"title at most 3 characters", "        title:\n          type: string\n", "        title:\n          type: string\n          maxLength: 3\n"},
		{"batch entries constrained", "          items:\n            description: A `Notification`; anything else fails this entry alone.", "          items:\n            $ref: \"#/components/schemas/Notification\""},
		{"413 not declared for one notification", "        \"413\":\n          $ref: \"#/components/responses/PayloadTooLarge\"\n        \"417\":\n          $ref: \"#/components/responses/HTTPExpectationFailed\"\n        \"429\"", "        \"417\":\n          $ref: \"#/components/responses/HTTPExpectationFailed\"\n        \"429\""},
	} {
		raw := strings.Replace(string(good.raw), m.old, m.new, 1)
		if raw == string(good.raw) {
			t.Errorf("%s: the document has no %q to change", m.name, m.old)
			continue
		}
		bad, err := parseOpenAPI([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		benv := env.withSpec(t, bad)
		problems, ran := fuzzRun(t, benv, uint64(len(m.name)), n, fuzzBudget, true)
		if len(problems) == 0 {
			t.Errorf("%s: %d requests found no mismatch with a wrong document", m.name, ran)
			continue
		}
		t.Logf("%s: %d mismatches in %d requests, such as:\n%s", m.name, len(problems), ran, clip([]byte(problems[0]), 3000))
	}
}

// fuzzRun generates n requests from seed, sends them (stopping early when
// budget is spent) and judges every answer. It returns the mismatches
// (those from a known server bug only logged) and how many requests ran.
func fuzzRun(t *testing.T, env *fuzzEnv, seed uint64, n int, budget time.Duration, stopAtFirst bool) ([]string, int) {
	t.Helper()
	genStart := time.Now()
	gen := newFuzzGen(newRand(seed), env)
	cases := make([]*fuzzCase, n)
	for i := range cases {
		cases[i] = gen.next(i)
	}
	t.Logf("%d requests generated in %v", n, time.Since(genStart).Round(time.Millisecond))
	start := time.Now()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		problems []string
		stats    = map[string]int{}
		known    = map[string]int{}
		ran      atomic.Int64
	)
	var wg sync.WaitGroup
	for range fuzzWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(cases) || time.Since(start) > budget {
					return
				}
				if stopAtFirst {
					mu.Lock()
					found := len(problems) > 0
					mu.Unlock()
					if found {
						return
					}
				}
				c := cases[i]
				a, err := env.send(c)
				if err != nil {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("request #%d: %v\n%s", i, err, c.dump()))
					mu.Unlock()
					continue
				}
				j := env.judge(c, a)
				ran.Add(1)
				mu.Lock()
				stats[j.bucket]++
				for _, p := range j.problems {
					if bug := env.knownBug(c, j, p); bug != "" {
						if known[bug] == 0 {
							t.Logf("known server bug %q (request #%d): %s\n%s", bug, i, p.msg, c.dump())
						}
						known[bug]++
						continue
					}
					problems = append(problems, fmt.Sprintf("request #%d: %s\n%s\nanswer: %d %s", i, p.msg, c.dump(), a.status, clip(a.raw, 600)))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var keys []string
	for k := range stats {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var summary strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&summary, "\n  %-40s %d", k, stats[k])
	}
	t.Logf("%d of %d requests in %v (seed %d):%s", ran.Load(), n, elapsed.Round(time.Millisecond), seed, summary.String())
	for bug, k := range known {
		t.Logf("known server bug %q: %d requests", bug, k)
	}
	slices.Sort(problems)
	return problems, int(ran.Load())
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// ------------------------------------------------------------ environment

// fuzzEnv is the server under test and what a generator needs to know of
// its deployment.
type fuzzEnv struct {
	h       *harness
	spec    *openAPISpec
	push    *fakepush.Server
	addr    string // host:port of the server
	client  *http.Client
	schemas schema_validation.SchemaValidator
	// the deployment's values
	apnsNames  []string
	vapidNames []string
	fcmNames   []string
	subs       []fuzzSub
	tokens     []string // device tokens, some with a standing error answer
	regTokens  []string // FCM registration tokens, likewise
	notifSch   *base.Schema
	batchSch   *base.Schema
	notFound   *base.Schema
	fcmMsgSch  *base.Schema
}

type fuzzSub struct {
	endpoint, p256dh, auth, vapidKey string
}

func newFuzzEnv(t *testing.T, spec *openAPISpec) *fuzzEnv {
	t.Helper()
	push, err := fakepush.New(fakepush.Options{Style: fakepush.StyleMozilla})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = push.Close() })
	dir := t.TempDir()
	var keys []*creds.VAPIDKey
	var cfgKeys []proxy.VAPIDKeyConfig
	for i, name := range []string{"current", "previous"} {
		data, err := creds.GenerateVAPIDKeyJSON()
		if err != nil {
			t.Fatal(err)
		}
		k, err := creds.ParseVAPIDKey(data)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("vapid-%d.json", i))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		cfgKeys = append(cfgKeys, proxy.VAPIDKeyConfig{Name: name, File: path})
	}
	// The three platforms, each in front of its fake: APNs and FCM from the
	// FCM harness, Web Push added to it.
	fh := newFCMHarness(t, fcmOpts{extra: func(c *proxy.Config, _ *fcmEnvT) {
		f, err := os.OpenFile(c.Upstream.CAFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(push.CAPEM()); err != nil {
			t.Fatal(err)
		}
		f.Close()
		c.WebPush = &proxy.WebPushConfig{Subject: "mailto:ops@example.com", Keys: cfgKeys,
			AllowEndpoints: []string{"127.0.0.1"}, AllowPrivateNetworks: true}
		c.MaxBatch = fuzzMaxBatch
		c.MaxBodyBytes = fuzzMaxBodyBytes
	}})
	h := fh.harness
	for _, k := range keys {
		h.addSecret(k.Private.D.Text(16))
	}
	env := &fuzzEnv{h: h, spec: spec, push: push, addr: strings.TrimPrefix(h.url, "http://"),
		apnsNames: []string{"default"}, vapidNames: []string{"current", "previous"}, fcmNames: []string{"default"}}
	env.client = &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	env.schemas = schema_validation.NewSchemaValidator(openAPIFormats()...)

	// Subscriptions: made with either configured key, one with a key
	// pushproxy does not have (vapid_key_mismatch), one unsubscribed (gone).
	other, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := creds.ParseVAPIDKey(other)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		pub, name := keys[i%2].PublicB64, cfgKeys[i%2].Name
		if i == 6 {
			pub, name = otherKey.PublicB64, ""
		}
		sub, err := push.Subscribe(fakepush.SubscribeOptions{VAPIDKey: pub})
		if err != nil {
			t.Fatal(err)
		}
		if i == 7 {
			push.Unsubscribe(sub.ID)
		}
		h.addSecret(strings.TrimPrefix(sub.Endpoint, push.URL()), sub.Keys.Auth)
		env.subs = append(env.subs, fuzzSub{endpoint: sub.Endpoint, p256dh: sub.Keys.P256DH, auth: sub.Keys.Auth, vapidKey: name})
	}
	// Device tokens: most delivered, some answered with an error by APNs
	// (every one of them answered at once: a Retry-After beyond any
	// deadline is not waited for).
	for range 6 {
		env.tokens = append(env.tokens, h.token())
	}
	for _, r := range []fakeapns.Response{
		{Status: 410, Reason: "Unregistered"},
		{Status: 400, Reason: "BadDeviceToken"},
		{Status: 400, Reason: "DeviceTokenNotForTopic"},
		{Status: 403, Reason: "InvalidProviderToken"},
		{Status: 413, Reason: "PayloadTooLarge"},
		{Status: 429, Reason: "TooManyRequests", RetryAfter: "3600"},
		{Status: 503, Reason: "ServiceUnavailable", RetryAfter: "3600"},
	} {
		tok := h.token()
		h.fake.ScriptAlways(tok, &r)
		env.tokens = append(env.tokens, tok)
	}
	// Registration tokens: most delivered, some answered with an error by
	// FCM (each at once: no retry, or a Retry-After beyond any deadline).
	for range 6 {
		env.regTokens = append(env.regTokens, fh.regToken())
	}
	for _, code := range []string{fakefcm.Unregistered, fakefcm.InvalidToken, fakefcm.SenderIDMismatch, fakefcm.ThirdPartyAuthError, fakefcm.QuotaExceeded} {
		tok := fh.regToken()
		r := fakefcm.Answer(code)
		r.RetryAfter = "3600"
		fh.ffcm.ScriptAlways(tok, r)
		env.regTokens = append(env.regTokens, tok)
	}
	comp := func(name string) *base.Schema {
		sp := spec.model.Components.Schemas.GetOrZero(name)
		if sp == nil {
			t.Fatalf("the document has no schema %s", name)
		}
		return sp.Schema()
	}
	env.notifSch, env.batchSch, env.fcmMsgSch = comp("Notification"), comp("BatchRequest"), comp("FCMMessage")
	nf := spec.model.Components.Responses.GetOrZero("NotFound")
	if nf == nil || nf.Content.GetOrZero("application/json") == nil {
		t.Fatal("the document has no NotFound response")
	}
	env.notFound = nf.Content.GetOrZero("application/json").Schema.Schema()
	return env
}

// withSpec is env judged by another version of the document.
func (env *fuzzEnv) withSpec(t *testing.T, spec *openAPISpec) *fuzzEnv {
	t.Helper()
	e := *env
	e.spec = spec
	// A validator caches compiled schemas by the hash of their own node,
	// not of what they refer to: one per document.
	e.schemas = schema_validation.NewSchemaValidator(openAPIFormats()...)
	e.notifSch = spec.model.Components.Schemas.GetOrZero("Notification").Schema()
	e.fcmMsgSch = spec.model.Components.Schemas.GetOrZero("FCMMessage").Schema()
	e.batchSch = spec.model.Components.Schemas.GetOrZero("BatchRequest").Schema()
	e.notFound = spec.model.Components.Responses.GetOrZero("NotFound").Content.GetOrZero("application/json").Schema.Schema()
	return &e
}

// ---------------------------------------------------------------- requests

// fuzzCase is one generated request.
type fuzzCase struct {
	i            int
	method, path string
	header       [][2]string // in order; Content-Type among them when sent
	body         []byte      // nil: no body
	raw          []byte      // non-nil: these bytes go over TCP as they are
	rawWant      int         // net/http's status for raw
	notes        []string    // how it was made (the mutations applied)
}

func (c *fuzzCase) get(name string) (string, bool) {
	for _, h := range c.header {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

func (c *fuzzCase) dump() string {
	var b strings.Builder
	if c.raw != nil {
		fmt.Fprintf(&b, "  raw (%s): %q", strings.Join(c.notes, "; "), clip(c.raw, 400))
		return b.String()
	}
	fmt.Fprintf(&b, "  %s %s", c.method, c.path)
	if len(c.notes) > 0 {
		fmt.Fprintf(&b, "  [%s]", strings.Join(c.notes, "; "))
	}
	for _, h := range c.header {
		fmt.Fprintf(&b, "\n  %s: %q", h[0], h[1])
	}
	if c.body != nil {
		fmt.Fprintf(&b, "\n  body: %q", clip(c.body, 1500))
	}
	return b.String()
}

type fuzzAnswer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any // when JSON
}

func (a *fuzzAnswer) code() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (env *fuzzEnv) send(c *fuzzCase) (*fuzzAnswer, error) {
	var resp *http.Response
	if c.raw != nil {
		conn, err := net.DialTimeout("tcp", env.addr, 5*time.Second)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(c.raw); err != nil {
			return nil, err
		}
		req, _ := http.NewRequest(c.method, env.h.url+c.path, nil)
		if resp, err = http.ReadResponse(bufio.NewReader(conn), req); err != nil {
			return nil, fmt.Errorf("reading the answer to a raw request: %w", err)
		}
	} else {
		var body io.Reader = http.NoBody
		if c.body != nil {
			body = bytes.NewReader(c.body)
		}
		req, err := http.NewRequest(c.method, env.h.url+c.path, body)
		if err != nil {
			return nil, err
		}
		for _, h := range c.header {
			req.Header.Add(h[0], h[1])
		}
		if resp, err = env.client.Do(req); err != nil {
			return nil, err
		}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	a := &fuzzAnswer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" && len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			return nil, fmt.Errorf("the answer (%d) says JSON but is not: %v: %s", resp.StatusCode, err, clip(raw, 300))
		}
	}
	return a, nil
}

// ------------------------------------------------------------------ oracle

// fuzzJudgement is what the oracle made of one exchange.
type fuzzJudgement struct {
	docValid bool
	why      []string // why the document refuses the request
	entries  []entryJudgement
	problems []fuzzProblem // mismatches between the answer and the document
	bucket   string        // for the summary
	tree     *jnode        // the body as parsed, when JSON
}

// fuzzProblem is one mismatch.
type fuzzProblem struct {
	msg   string
	entry int // the batch entry it is about; -1: the whole request
	// accepted: the server accepted (or sent) what the document refuses;
	// refused: the server refused what the document allows.
	accepted, refused bool
}

type entryJudgement struct {
	valid bool
	why   []string
	node  *jnode
}

func (env *fuzzEnv) judge(c *fuzzCase, a *fuzzAnswer) *fuzzJudgement {
	j := &fuzzJudgement{docValid: true}
	defer func() {
		v := "valid"
		if !j.docValid {
			v = "invalid"
		}
		code := a.code()
		if code == "" && a.status >= 400 {
			code = "plain"
		}
		platform, _ := a.body["platform"].(string)
		if e, _ := a.body["error"].(map[string]any); e != nil {
			platform, _ = e["platform"].(string)
		}
		j.bucket = strings.TrimSpace(fmt.Sprintf("%s → %d %s %s", v, a.status, code, platform))
	}()
	problem := func(format string, args ...any) {
		j.problems = append(j.problems, fuzzProblem{msg: fmt.Sprintf(format, args...), entry: -1})
	}
	accepted := func(entry int, format string, args ...any) {
		j.problems = append(j.problems, fuzzProblem{msg: fmt.Sprintf(format, args...), entry: entry, accepted: true})
	}
	refused := func(entry int, format string, args ...any) {
		j.problems = append(j.problems, fuzzProblem{msg: fmt.Sprintf(format, args...), entry: entry, refused: true})
	}

	item := env.spec.model.Paths.PathItems.GetOrZero(c.path)
	if item == nil && unclean(c.path) {
		// "A path that is not clean (//, /./, /../) is answered 307 with a
		// Location by net/http, whatever the method."
		j.docValid = false
		j.why = append(j.why, "the path is not clean")
		if a.status != http.StatusTemporaryRedirect || a.header.Get("Location") == "" {
			problem("a path that is not clean was answered %d (Location %q), not 307", a.status, a.header.Get("Location"))
		}
		return j
	}
	if item == nil {
		// "A path this document does not list is answered 404 not_found."
		j.docValid = false
		j.why = append(j.why, "the path is not in the document")
		if a.status != http.StatusNotFound {
			problem("a path the document does not list was answered %d, not 404", a.status)
		}
		if c.method != http.MethodHead {
			if errs := env.validateSchema(env.notFound, a.raw); errs != "" {
				problem("the 404 does not match the document's NotFound response:%s", errs)
			}
		}
		return j
	}
	op := item.GetOperations().GetOrZero(strings.ToLower(c.method))
	if op == nil {
		problem("the generator sent %s, a method the document does not describe for %s", c.method, c.path)
		return j
	}
	req, _ := http.NewRequest(c.method, env.h.url+c.path, nil)
	if errs := env.spec.validateResponse(req, a.status, a.header, a.raw); len(errs) > 0 {
		problem("the %d answer does not match the document:%s", a.status, describeValidation(errs))
	}
	if c.raw != nil {
		// net/http's own answers, which the document declares.
		j.docValid = false
		j.why = append(j.why, "malformed HTTP ("+strings.Join(c.notes, "; ")+")")
		if a.status != c.rawWant {
			problem("net/http was expected to answer %d, the answer is %d", c.rawWant, a.status)
		}
		return j
	}
	if op.RequestBody == nil {
		env.requestValid(j, c, nil)
	} else {
		env.requestValid(j, c, op)
	}
	onlyRefused := op.Responses.Codes.GetOrZero("405") != nil && op.Responses.Codes.GetOrZero("200") == nil
	switch {
	case onlyRefused && a.status != http.StatusMethodNotAllowed:
		problem("%s %s is documented as 405 only, the answer is %d", c.method, c.path, a.status)
	case a.status == http.StatusInternalServerError:
		problem("internal_error: a panic in the server")
	case j.docValid && a.status == http.StatusBadRequest && a.code() == string(translate.CodeInvalidRequest) && !fromUpstream(a.body):
		// (An invalid_request the platform answered is the platform's
		// judgment: pushproxy accepted the request and sent it.)
		refused(-1, "the document allows this request, the server refuses it: %s", a.raw)
	case !j.docValid && (a.status < 400 || a.status > 499):
		accepted(-1, "the document refuses this request (%s), the server answers %d", strings.Join(j.why, "; "), a.status)
	case !j.docValid && fromUpstream(a.body):
		// pushproxy itself refuses what the document refuses, before
		// sending anything.
		accepted(-1, "the document refuses this request (%s), pushproxy sent it (the platform refused it: %d)", strings.Join(j.why, "; "), a.status)
	}
	if c.path == "/v1/notifications/batch" && a.status == http.StatusOK && j.docValid {
		results, _ := a.body["results"].([]any)
		if len(results) != len(j.entries) {
			problem("%d entries, %d results", len(j.entries), len(results))
			return j
		}
		for i, e := range j.entries {
			r, _ := results[i].(map[string]any)
			ebody, _ := r["error"].(map[string]any)
			code, _ := ebody["code"].(string)
			switch {
			case e.valid && code == string(translate.CodeInvalidRequest) && !fromUpstream(r):
				refused(i, "entry %d: the document allows it, the server refuses it: %v", i, r)
			case code == string(translate.CodeInternalError):
				problem("entry %d: internal_error", i)
			case !e.valid && ebody == nil:
				accepted(i, "entry %d: the document refuses it (%s), the server sent it: %v", i, strings.Join(e.why, "; "), r)
			case !e.valid && translate.Code(code).HTTPStatus() >= 500:
				accepted(i, "entry %d: the document refuses it (%s), the server answers %s", i, strings.Join(e.why, "; "), code)
			case !e.valid && fromUpstream(r):
				accepted(i, "entry %d: the document refuses it (%s), pushproxy sent it (the platform refused it: %s)", i, strings.Join(e.why, "; "), code)
			}
		}
	}
	return j
}

func unclean(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/./") || strings.Contains(p, "/../") ||
		strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..")
}

// fromUpstream says an error answer carries what an upstream answered:
// the request was sent.
func fromUpstream(body map[string]any) bool {
	e, _ := body["error"].(map[string]any)
	return e != nil && e["upstream"] != nil
}

// requestValid decides whether the document allows the request of c to
// op (nil: an operation without a body), recording why not in j.
func (env *fuzzEnv) requestValid(j *fuzzJudgement, c *fuzzCase, op *v3.Operation) {
	invalid := func(format string, args ...any) {
		j.docValid = false
		j.why = append(j.why, fmt.Sprintf(format, args...))
	}
	req, _ := http.NewRequest(c.method, env.h.url+c.path, bytes.NewReader(c.body))
	for _, h := range c.header {
		req.Header.Add(h[0], h[1])
	}
	if op != nil {
		// "Content-Type is application/json (any case; parameters allowed;
		// a charset, if given, is utf-8) or absent (the body is then read
		// as JSON); anything else is invalid_request."
		if ct, ok := c.get("Content-Type"); ok {
			mt, params, err := mime.ParseMediaType(ct)
			switch {
			case err != nil || mt != "application/json":
				invalid("Content-Type %q is not application/json", ct)
			case params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8"):
				invalid("Content-Type %q names a charset other than utf-8", ct)
			}
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	openAPIMu.Lock()
	ok, errs := env.spec.plain.ValidateHttpRequestSync(req)
	openAPIMu.Unlock()
	if !ok {
		invalid("the schema:%s", describeValidation(errs))
	}
	if op == nil {
		return
	}
	batch := c.path == "/v1/notifications/batch"
	tree, probs, err := parseJSON(c.body)
	if err != nil {
		invalid("not JSON: %v", err)
		return
	}
	j.tree = tree
	// "Request bodies are I-JSON … In a batch this holds for the envelope;
	// each entry is judged on its own."
	for _, p := range probs {
		if batch && strings.HasPrefix(p.path, "notifications[") {
			continue
		}
		invalid("I-JSON: %s at %q", p.msg, p.path)
	}
	sch := env.notifSch
	if batch {
		sch = env.batchSch
	}
	for _, p := range int64Problems(tree, sch, "") {
		invalid("%s", p)
	}
	if !batch {
		for _, p := range env.proseProblems(c.body, tree) {
			invalid("%s", p)
		}
		return
	}
	// "a batch has at most max_batch entries (invalid_request)"
	list := tree.get("notifications")
	if list != nil && list.kind == '[' {
		if len(list.vals) > fuzzMaxBatch {
			invalid("%d entries, over max_batch (%d)", len(list.vals), fuzzMaxBatch)
		}
		for i, e := range list.vals {
			j.entries = append(j.entries, env.entryValid(c.body, e, probs, fmt.Sprintf("notifications[%d]", i)))
		}
	}
}

// entryValid judges one batch entry as the document judges a Notification.
func (env *fuzzEnv) entryValid(body []byte, e *jnode, probs []jproblem, prefix string) entryJudgement {
	ej := entryJudgement{valid: true, node: e}
	invalid := func(format string, args ...any) {
		ej.valid = false
		ej.why = append(ej.why, fmt.Sprintf(format, args...))
	}
	for _, p := range probs {
		if p.path == prefix || strings.HasPrefix(p.path, prefix+".") || strings.HasPrefix(p.path, prefix+"[") {
			invalid("I-JSON: %s at %q", p.msg, p.path)
		}
	}
	if errs := env.validateSchema(env.notifSch, body[e.start:e.end]); errs != "" {
		invalid("the schema:%s", errs)
	}
	for _, p := range int64Problems(e, env.notifSch, "") {
		invalid("%s", p)
	}
	for _, p := range env.proseProblems(body, e) {
		invalid("%s", p)
	}
	return ej
}

// validateSchema validates JSON text against one schema of the document;
// it returns the violations, or "".
func (env *fuzzEnv) validateSchema(s *base.Schema, raw []byte) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "\n  - not JSON: " + err.Error()
	}
	if v == nil && !slices.Contains(s.Type, "null") {
		return "\n  - null" // ValidateSchemaObject takes nil for "no value"
	}
	openAPIMu.Lock()
	ok, errs := env.schemas.ValidateSchemaObject(s, v)
	openAPIMu.Unlock()
	if ok {
		return ""
	}
	if len(errs) == 0 {
		return "\n  - invalid"
	}
	return describeValidation(errs)
}

// proseProblems checks a notification against the rules the document
// states in words.
func (env *fuzzEnv) proseProblems(body []byte, n *jnode) []string {
	if n == nil || n.kind != '{' {
		return nil
	}
	var out []string
	to := n.get("to")
	apns, webpush, fcmTo := to.get("apns"), to.get("webpush"), to.get("fcm")
	if fcmTo != nil && fcmTo.kind == '{' {
		// "to.fcm.credential must name a configured credential"
		if c := fcmTo.get("credential"); c != nil && c.kind == '"' && c.str != "" && !slices.Contains(env.fcmNames, c.str) {
			out = append(out, "to.fcm.credential names no configured credential")
		}
		out = append(out, env.fcmMessageProblems(body, n)...)
	}
	if apns != nil && apns.kind == '{' {
		// "to.apns.credential … must name a configured credential"
		if c := apns.get("credential"); c != nil && c.kind == '"' && c.str != "" && !slices.Contains(env.apnsNames, c.str) {
			out = append(out, "to.apns.credential names no configured credential")
		}
		// "collapse_id (or apns-collapse-id) is at most 64 bytes of UTF-8"
		if cid := n.get("collapse_id"); cid != nil && cid.kind == '"' && len(cid.str) > 64 {
			out = append(out, fmt.Sprintf("collapse_id is %d bytes, over APNs's 64", len(cid.str)))
		}
		if hs := n.get("apns").get("headers"); hs != nil && hs.kind == '{' {
			for i, k := range hs.keys {
				if strings.EqualFold(k, "apns-collapse-id") && hs.vals[i].kind == '"' && len(hs.vals[i].str) > 64 {
					out = append(out, fmt.Sprintf("apns-collapse-id is %d bytes, over APNs's 64", len(hs.vals[i].str)))
				}
			}
		}
		// "now + ttl must fit a signed 64-bit UNIX time"
		if ttl := n.get("ttl"); ttl != nil && ttl.kind == '0' {
			if v, err := strconv.ParseInt(ttl.lit, 10, 64); err == nil && v > math.MaxInt64-time.Now().Unix() {
				out = append(out, "now + ttl overflows a 64-bit UNIX time")
			}
		}
	}
	if webpush != nil && webpush.kind == '{' {
		// "to.webpush.vapid_key must name a configured credential"
		if k := webpush.get("vapid_key"); k != nil && k.kind == '"' && k.str != "" && !slices.Contains(env.vapidNames, k.str) {
			out = append(out, "to.webpush.vapid_key names no configured key")
		}
	}
	return out
}

// fcmMessageProblems builds the FCM message of notification n the way the
// document's introduction says ("FCM only: the message pushproxy builds
// must match FCMMessage. It is built from the common fields …, then
// fcm.android is merged into android and fcm.message into the message …")
// and checks it against FCMMessage.
func (env *fuzzEnv) fcmMessageProblems(body []byte, n *jnode) []string {
	str := func(k string) string {
		if v := n.get(k); v != nil && v.kind == '"' {
			return v.str
		}
		return ""
	}
	msg := jobj()
	notif := jobj()
	for _, k := range []string{"title", "body", "image"} {
		if v := str(k); v != "" {
			notif.set(k, jstr(v))
		}
	}
	if len(notif.keys) > 0 {
		msg.set("notification", notif)
	}
	data := jobj()
	if d := n.get("data"); d != nil && d.kind == '{' {
		for i, k := range d.keys {
			v := d.vals[i]
			if v.kind == '"' {
				data.set(k, jstr(v.str))
				continue
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, body[v.start:v.end]); err != nil {
				return []string{"data." + k + " is not JSON"}
			}
			data.set(k, jstr(buf.String()))
		}
	}
	if u := str("url"); u != "" {
		// "url → data.url, which must then equal a data.url given too"
		if d := data.get("url"); d != nil && d.str != u {
			return []string{"url and data.url differ"}
		}
		data.set("url", jstr(u))
	}
	if len(data.keys) > 0 {
		msg.set("data", data)
	}
	android := jobj()
	switch str("priority") {
	case "high":
		android.set("priority", jstr("HIGH"))
	case "normal", "low":
		android.set("priority", jstr("NORMAL"))
	}
	if ttl := n.get("ttl"); ttl != nil && ttl.kind == '0' {
		android.set("ttl", jstr(ttl.lit+"s"))
	}
	if c := str("collapse_id"); c != "" {
		android.set("collapse_key", jstr(c))
	}
	anotif := jobj()
	if snd := n.get("sound"); snd != nil {
		switch {
		case snd.kind == '"':
			anotif.set("sound", jstr(snd.str))
		case snd.get("name") != nil:
			anotif.set("sound", snd.get("name").clone())
		}
	}
	if b := n.get("badge"); b != nil {
		anotif.set("notification_count", b.clone())
	}
	if len(anotif.keys) > 0 {
		android.set("notification", anotif)
	}
	if len(android.keys) > 0 {
		msg.set("android", android)
	}
	ov := n.get("fcm")
	if a := ov.get("android"); a != nil && a.kind == '{' && len(a.keys) > 0 {
		dst := msg.get("android")
		if dst == nil || dst.kind != '{' {
			dst = jobj()
		}
		for i, k := range a.keys {
			mergeJ(dst, k, a.vals[i])
		}
		msg.set("android", dst)
	}
	if m := ov.get("message"); m != nil && m.kind == '{' {
		for i, k := range m.keys {
			mergeJ(msg, k, m.vals[i])
		}
	}
	dropEmptyJ(msg, "notification")
	dropEmptyJ(msg, "data")
	if a := msg.get("android"); a != nil && a.kind == '{' {
		dropEmptyJ(a, "notification")
		dropEmptyJ(a, "data")
		dropEmptyJ(msg, "android")
	}
	var out []string
	if errs := env.validateSchema(env.fcmMsgSch, msg.encode()); errs != "" {
		out = append(out, "the FCM message "+clip(msg.encode(), 300)+" does not match FCMMessage:"+errs)
	}
	for _, p := range int64Problems(msg, env.fcmMsgSch, "message") {
		out = append(out, "the FCM message: "+p)
	}
	return out
}

// mergeJ merges v into dst[k] as the document says: objects key by key,
// null removes, anything else replaces.
func mergeJ(dst *jnode, k string, v *jnode) {
	switch v.kind {
	case 'n':
		dst.del(k)
	case '{':
		d := dst.get(k)
		if d == nil || d.kind != '{' {
			d = jobj()
		} else {
			d = d.clone()
		}
		for i, kk := range v.keys {
			mergeJ(d, kk, v.vals[i])
		}
		dst.set(k, d)
	default:
		dst.set(k, v.clone())
	}
}

func dropEmptyJ(n *jnode, k string) {
	if v := n.get(k); v != nil && v.kind == '{' && len(v.keys) == 0 {
		n.del(k)
	}
}

// int64Problems finds the numbers the document declares `format: int64`
// that are not integer literals within the signed 64-bit range ("Integers
// with format: int64 … are written as JSON integer literals").
func int64Problems(n *jnode, s *base.Schema, path string) []string {
	if n == nil || s == nil {
		return nil
	}
	set := expandAll(s)
	var out []string
	if n.kind == '0' {
		for _, x := range set {
			if x.Format == "int64" {
				if _, err := strconv.ParseInt(n.lit, 10, 64); err != nil {
					out = append(out, fmt.Sprintf("%s: %s is not an int64 literal", path, n.lit))
				}
				break
			}
		}
	}
	switch n.kind {
	case '{':
		for i, k := range n.keys {
			for _, x := range set {
				if x.Properties != nil {
					if p := x.Properties.GetOrZero(k); p != nil {
						out = append(out, int64Problems(n.vals[i], p.Schema(), path+"."+k)...)
					}
				}
			}
		}
	case '[':
		for i, v := range n.vals {
			for _, x := range set {
				if x.Items != nil && x.Items.IsA() && x.Items.A != nil {
					out = append(out, int64Problems(v, x.Items.A.Schema(), fmt.Sprintf("%s[%d]", path, i))...)
				}
			}
		}
	}
	return out
}

// expandAll is s with every subschema that may apply to the same value
// (allOf, anyOf, oneOf, then, else), for the oracle.
func expandAll(s *base.Schema) []*base.Schema {
	var out []*base.Schema
	var walk func(*base.Schema, int)
	walk = func(x *base.Schema, depth int) {
		if x == nil || depth > 8 || slices.Contains(out, x) {
			return
		}
		out = append(out, x)
		for _, l := range [][]*base.SchemaProxy{x.AllOf, x.AnyOf, x.OneOf} {
			for _, p := range l {
				walk(p.Schema(), depth+1)
			}
		}
		for _, p := range []*base.SchemaProxy{x.Then, x.Else} {
			if p != nil {
				walk(p.Schema(), depth+1)
			}
		}
	}
	walk(s, 0)
	return out
}

// knownBug names the server bug a mismatch comes from, when it is one
// already reported and not yet fixed; "" otherwise. Such a mismatch is
// logged, not failed; when the server is fixed, its entry goes. The five
// the fuzzer found (a null inside expirationTime, an apns.headers name
// twice in different cases, numbers beyond the float64 range, a batch
// envelope's duplicate key after a bad entry, an apns.headers override
// hiding the field it replaces) are fixed; none is known now.
func (env *fuzzEnv) knownBug(c *fuzzCase, j *fuzzJudgement, p fuzzProblem) string {
	return ""
}

// -------------------------------------------------------------- JSON tree

// jnode is a JSON value as written: object members in order (a key may be
// there twice), numbers as their literal, strings as their bytes (invalid
// UTF-8 kept). The generator builds it; the oracle parses the bytes sent.
type jnode struct {
	kind       byte // '{' '[' '"' '0' 't' 'f' 'n'
	str        string
	lit        string // a number's literal
	keys       []string
	vals       []*jnode // object values (with keys) or array items
	raw        string   // generator only: written verbatim instead
	start, end int      // parser only: the value's bytes in the document
}

func (n *jnode) get(key string) *jnode {
	if n == nil || n.kind != '{' {
		return nil
	}
	var v *jnode
	for i, k := range n.keys {
		if k == key {
			v = n.vals[i]
		}
	}
	return v
}

func (n *jnode) set(key string, v *jnode) {
	for i, k := range n.keys {
		if k == key {
			n.vals[i] = v
			return
		}
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
}

func (n *jnode) del(key string) {
	for i, k := range n.keys {
		if k == key {
			n.keys = slices.Delete(n.keys, i, i+1)
			n.vals = slices.Delete(n.vals, i, i+1)
			return
		}
	}
}

func jstr(s string) *jnode { return &jnode{kind: '"', str: s} }
func jnum(s string) *jnode { return &jnode{kind: '0', lit: s} }
func jnull() *jnode        { return &jnode{kind: 'n'} }
func jbool(b bool) *jnode {
	if b {
		return &jnode{kind: 't'}
	}
	return &jnode{kind: 'f'}
}
func jobj(kv ...any) *jnode {
	n := &jnode{kind: '{'}
	for i := 0; i+1 < len(kv); i += 2 {
		n.set(kv[i].(string), kv[i+1].(*jnode))
	}
	return n
}

func (n *jnode) clone() *jnode {
	c := *n
	c.keys = slices.Clone(n.keys)
	c.vals = make([]*jnode, len(n.vals))
	for i, v := range n.vals {
		c.vals[i] = v.clone()
	}
	return &c
}

func (n *jnode) encode() []byte {
	var b bytes.Buffer
	n.write(&b)
	return b.Bytes()
}

func (n *jnode) write(b *bytes.Buffer) {
	if n.raw != "" {
		b.WriteString(n.raw)
		return
	}
	switch n.kind {
	case '{':
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			n.vals[i].write(b)
		}
		b.WriteByte('}')
	case '[':
		b.WriteByte('[')
		for i, v := range n.vals {
			if i > 0 {
				b.WriteByte(',')
			}
			v.write(b)
		}
		b.WriteByte(']')
	case '"':
		writeJSONString(b, n.str)
	case '0':
		b.WriteString(n.lit)
	case 't':
		b.WriteString("true")
	case 'f':
		b.WriteString("false")
	default:
		b.WriteString("null")
	}
}

// writeJSONString escapes what JSON requires and writes every other byte as
// it is, so invalid UTF-8 stays invalid.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// jproblem is what I-JSON refuses in a document that is JSON.
type jproblem struct{ path, msg string }

// parseJSON parses an RFC 8259 JSON text (and nothing else: no BOM, no
// trailing data) and reports, besides, what I-JSON (RFC 7493) refuses:
// invalid UTF-8, escapes of half a surrogate pair, a key twice in an
// object, a number beyond the range of a 64-bit float. It is written here, apart from the server's checker, so that the
// two can disagree.
func parseJSON(b []byte) (*jnode, []jproblem, error) {
	p := &jparser{b: b}
	p.ws()
	n, err := p.value(nil)
	if err != nil {
		return nil, nil, err
	}
	p.ws()
	if p.i != len(b) {
		return nil, nil, fmt.Errorf("data after the value at byte %d", p.i)
	}
	return n, p.probs, nil
}

type jparser struct {
	b     []byte
	i     int
	probs []jproblem
}

func jpath(p []string) string {
	var b strings.Builder
	for _, s := range p {
		if b.Len() > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func (p *jparser) ws() {
	for p.i < len(p.b) && strings.IndexByte(" \t\n\r", p.b[p.i]) >= 0 {
		p.i++
	}
}

func (p *jparser) value(path []string) (*jnode, error) {
	if p.i >= len(p.b) {
		return nil, io.ErrUnexpectedEOF
	}
	start := p.i
	var n *jnode
	var err error
	switch c := p.b[p.i]; {
	case c == '{':
		n, err = p.object(path)
	case c == '[':
		n, err = p.array(path)
	case c == '"':
		var s string
		s, err = p.str(path)
		n = jstr(s)
	case c == '-' || c >= '0' && c <= '9':
		n, err = p.number(path)
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
				p.i += len(lit)
				n = map[string]*jnode{"true": jbool(true), "false": jbool(false), "null": jnull()}[lit]
			}
		}
		if n == nil {
			err = fmt.Errorf("unexpected %q at byte %d", c, p.i)
		}
	}
	if err != nil {
		return nil, err
	}
	n.start, n.end = start, p.i
	return n, nil
}

func (p *jparser) object(path []string) (*jnode, error) {
	p.i++
	n := &jnode{kind: '{'}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return n, nil
	}
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, fmt.Errorf("expected a key at byte %d", p.i)
		}
		k, err := p.str(path)
		if err != nil {
			return nil, err
		}
		sub := append(slices.Clone(path), k)
		if slices.Contains(n.keys, k) {
			p.probs = append(p.probs, jproblem{jpath(sub), "a key twice in one object"})
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, fmt.Errorf("expected ':' at byte %d", p.i)
		}
		p.i++
		p.ws()
		v, err := p.value(sub)
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, k)
		n.vals = append(n.vals, v)
		p.ws()
		if p.i >= len(p.b) {
			return nil, io.ErrUnexpectedEOF
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return n, nil
		default:
			return nil, fmt.Errorf("expected ',' or '}' at byte %d", p.i)
		}
	}
}

func (p *jparser) array(path []string) (*jnode, error) {
	p.i++
	n := &jnode{kind: '['}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return n, nil
	}
	for {
		p.ws()
		v, err := p.value(append(slices.Clone(path), "["+strconv.Itoa(len(n.vals))+"]"))
		if err != nil {
			return nil, err
		}
		n.vals = append(n.vals, v)
		p.ws()
		if p.i >= len(p.b) {
			return nil, io.ErrUnexpectedEOF
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return n, nil
		default:
			return nil, fmt.Errorf("expected ',' or ']' at byte %d", p.i)
		}
	}
}

var jnumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`)

func (p *jparser) number(path []string) (*jnode, error) {
	m := jnumber.Find(p.b[p.i:])
	if m == nil {
		return nil, fmt.Errorf("bad number at byte %d", p.i)
	}
	p.i += len(m)
	if _, err := strconv.ParseFloat(string(m), 64); err != nil {
		p.probs = append(p.probs, jproblem{jpath(path), "a number beyond the range of a 64-bit float"})
	}
	return jnum(string(m)), nil
}

// str reads a string; the value keeps invalid UTF-8 bytes as they are and
// decodes a lone surrogate escape to U+FFFD (both reported).
func (p *jparser) str(path []string) (string, error) {
	p.i++ // "
	var b strings.Builder
	bad := false
	for {
		if p.i >= len(p.b) {
			return "", io.ErrUnexpectedEOF
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if bad {
				p.probs = append(p.probs, jproblem{jpath(path), "a string that is not UTF-8 text"})
			}
			return b.String(), nil
		case c < 0x20:
			return "", fmt.Errorf("a control character in a string at byte %d", p.i)
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return "", io.ErrUnexpectedEOF
			}
			e := p.b[p.i+1]
			if e != 'u' {
				r, ok := map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[e]
				if !ok {
					return "", fmt.Errorf("bad escape at byte %d", p.i)
				}
				b.WriteByte(r)
				p.i += 2
				continue
			}
			r, ok := p.hex4(p.i + 2)
			if !ok {
				return "", fmt.Errorf("bad \\u escape at byte %d", p.i)
			}
			p.i += 6
			switch {
			case r >= 0xD800 && r < 0xDC00:
				if lo, ok := p.hex4(p.i + 2); ok && p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' && lo >= 0xDC00 && lo <= 0xDFFF {
					p.i += 6
					b.WriteRune(0x10000 + (r-0xD800)<<10 + (lo - 0xDC00))
					continue
				}
				bad = true
				b.WriteRune(utf8.RuneError)
			case r >= 0xDC00 && r <= 0xDFFF:
				bad = true
				b.WriteRune(utf8.RuneError)
			default:
				b.WriteRune(r)
			}
		default:
			r, size := utf8.DecodeRune(p.b[p.i:])
			if r == utf8.RuneError && size <= 1 {
				bad = true
			}
			b.Write(p.b[p.i : p.i+size])
			p.i += size
		}
	}
}

func (p *jparser) hex4(i int) (rune, bool) {
	if i+4 > len(p.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[i:i+4]), 16, 32)
	return rune(v), err == nil
}

// --------------------------------------------------------------- generator

// fuzzGen draws requests from the document. Half are positive: drawn from
// the schemas (with the deployment's values mixed in), with ordinary
// headers. Half are negative: one positive request with exactly one
// deviation (one value at or over a bound the schema sets, a key dropped
// or added, a wrong type, bad JSON, an odd header, another method or path,
// malformed HTTP), so that what decides the answer is that deviation.
type fuzzGen struct {
	r   *rand.Rand
	env *fuzzEnv
	// sch holds the constraints each generated value was drawn under, for
	// the mutations that go to a bound and over it.
	sch map[*jnode]*cons
}

func newFuzzGen(r *rand.Rand, env *fuzzEnv) *fuzzGen {
	return &fuzzGen{r: r, env: env, sch: map[*jnode]*cons{}}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func (g *fuzzGen) chance(p float64) bool { return g.r.Float64() < p }

func pick[T any](g *fuzzGen, l ...T) T { return l[g.r.IntN(len(l))] }

// weighted picks a key with probability proportional to its weight.
func weighted(g *fuzzGen, w map[string]int) string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range w {
			if !yield(k) {
				return
			}
		}
	})
	total := 0
	for _, k := range keys {
		total += w[k]
	}
	x := g.r.IntN(total)
	for _, k := range keys {
		if x < w[k] {
			return k
		}
		x -= w[k]
	}
	return keys[0]
}

var (
	documentedPaths = []string{"/v1/notifications", "/v1/notifications/batch", "/healthz", "/readyz", "/metrics", "/v1/webpush/vapid-public-key"}
	allMethods      = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"}
)

func (g *fuzzGen) next(i int) *fuzzCase {
	c := &fuzzCase{i: i}
	dev := ""
	if g.chance(0.5) {
		dev = weighted(g, map[string]int{"body": 60, "bytes": 5, "content-type": 8, "timeout": 8, "header": 4, "method": 6, "path": 5, "raw": 4})
	}
	switch dev {
	case "raw":
		g.rawCase(c)
		return c
	case "method":
		c.path = pick(g, documentedPaths...)
		c.method = pick(g, allMethods...)
		c.notes = append(c.notes, "method "+c.method)
		if c.method != "GET" && c.method != "HEAD" && g.chance(0.5) {
			c.body = g.notificationBody(c, false)
		}
		g.headers(c, "")
		return c
	case "path":
		c.path = pick(g, "/", "/v1", "/v1/", "/v1/notifications/", "/v1/notification", "/V1/notifications", "/v1/notifications/batch/x",
			"/healthz/", "/readyz.json", "/v2/notifications", "/v1/webpush", "/v1/webpush/vapid-public-key/", "/metrics/x", "/favicon.ico",
			"/v1/notifications%2Fbatch", "/%76%31/notifications/x", "/v1/notifications/batch/",
			"/v1//notifications", "/./healthz", "/v1/../readyz", "/metrics/.")
		c.method = pick(g, allMethods...)
		c.notes = append(c.notes, "unknown path")
		if c.method == "POST" {
			c.body = g.notificationBody(c, false)
		}
		g.headers(c, "")
		return c
	}
	switch x := g.r.Float64(); {
	case x < 0.6:
		c.method, c.path = "POST", "/v1/notifications"
		c.body = g.notificationBody(c, dev == "body")
	case x < 0.88:
		c.method, c.path = "POST", "/v1/notifications/batch"
		c.body = g.batchBody(c, dev == "body")
	default:
		c.path = pick(g, "/healthz", "/readyz", "/metrics", "/v1/webpush/vapid-public-key")
		c.method = pick(g, "GET", "GET", "GET", "HEAD")
		if c.path == "/metrics" && g.chance(0.3) {
			c.header = append(c.header, [2]string{"Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"})
		}
	}
	if dev == "bytes" && c.body != nil {
		c.body = g.breakBytes(c, c.body)
	}
	g.headers(c, dev)
	return c
}

// headers adds the request headers; dev names the one to make odd.
func (g *fuzzGen) headers(c *fuzzCase, dev string) {
	if c.body != nil {
		ct := pick(g, "application/json", "application/json", "application/json", "", "APPLICATION/JSON",
			"application/json; charset=utf-8", `application/json;charset="UTF-8"`, "application/json; foo=bar")
		if dev == "content-type" {
			ct = pick(g, "application/json; charset=latin1", "application/json; charset=utf-16", "application/json; foo",
				"text/plain", "application/x-www-form-urlencoded", "application/jsonx", "application/json, text/plain",
				"application/merge-patch+json", "application/*", "*/*", "json")
			c.notes = append(c.notes, "Content-Type")
		}
		if ct != "" {
			c.header = append(c.header, [2]string{"Content-Type", ct})
		}
	}
	if c.method == "POST" {
		// Bound every send, whatever an upstream does.
		v := pick(g, "5", "5", "2.5", "10", "300", "301", "3600", "7.", "0.5", ".5", "005")
		if dev == "timeout" {
			v = pick(g, "0", "-1", "0.0009", "abc", "NaN", "Inf", "infinity", "1_0", "0x10", "1e400", "1e3", "+2", "5s", "٣", ".", "1.2.3", "0.")
			c.notes = append(c.notes, "X-Request-Timeout")
		}
		c.header = append(c.header, [2]string{"X-Request-Timeout", v})
	}
	if dev == "header" {
		c.header = append(c.header, pick(g, [2]string{"X-Foo", "bar"}, [2]string{"Accept", "text/html"},
			[2]string{"Authorization", "Bearer nope"}, [2]string{"Accept-Language", "fr"}, [2]string{"X-Request-Id", "é"},
			[2]string{"Cookie", "a=b"}, [2]string{"Cache-Control", "no-cache"}, [2]string{"X-Request-Timeout", ""}))
		c.notes = append(c.notes, "extra header")
	}
}

// rawCase makes a request net/http answers itself.
func (g *fuzzGen) rawCase(c *fuzzCase) {
	c.path = pick(g, documentedPaths...)
	c.method = "GET"
	if strings.HasPrefix(c.path, "/v1/notifications") {
		c.method = "POST"
	}
	body := `{"to":{"apns":{"token":"` + strings.Repeat("ab", 32) + `"}},"title":"x","dry_run":true}`
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: pushproxy\r\n", c.method, c.path)
	end := "Content-Type: application/json\r\nConnection: close\r\n"
	withBody := func(extra string) string {
		return head + extra + end + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	}
	kinds := []func(){
		func() {
			c.raw, c.rawWant = []byte(withBody("X-Odd: a\x01b\r\n")), 400
			c.notes = append(c.notes, "control character in a header")
		},
		func() {
			c.raw, c.rawWant = []byte(withBody("X-Odd: a\x7fb\r\n")), 400
			c.notes = append(c.notes, "DEL in a header")
		},
		func() {
			c.raw, c.rawWant = []byte(withBody("X Odd: 1\r\n")), 400
			c.notes = append(c.notes, "invalid header name")
		},
		func() {
			c.raw, c.rawWant = []byte(withBody("X-Big: "+strings.Repeat("b", 70<<10)+"\r\n")), 431
			c.notes = append(c.notes, "70 KiB header")
		},
		func() {
			c.raw, c.rawWant = []byte(withBody("Expect: teapot\r\n")), 417
			c.notes = append(c.notes, "Expect: teapot")
		},
		func() {
			c.raw, c.rawWant = []byte(head+"Transfer-Encoding: gzip\r\n"+end+"\r\n"), 501
			c.notes = append(c.notes, "Transfer-Encoding: gzip")
		},
		func() {
			c.raw, c.rawWant = []byte(head+end+"Content-Length: 3\r\nContent-Length: 4\r\n\r\n{}  "), 400
			c.notes = append(c.notes, "two Content-Lengths")
		},
		func() {
			c.raw, c.rawWant = []byte(fmt.Sprintf("%s %s HTTP/1.1\r\n", c.method, c.path)+end+"\r\n"), 400
			c.notes = append(c.notes, "no Host")
		},
	}
	pick(g, kinds...)()
}

// notificationBody draws a notification from the document's Notification
// schema; deviate: with one mutation.
func (g *fuzzGen) notificationBody(c *fuzzCase, deviate bool) []byte {
	n := g.gen(g.env.notifSch, "")
	if deviate {
		g.mutate(c, n)
	}
	return n.encode()
}

func (g *fuzzGen) batchBody(c *fuzzCase, deviate bool) []byte {
	list := &jnode{kind: '['}
	count := g.r.IntN(5)
	if deviate && g.chance(0.05) {
		count = fuzzMaxBatch + 1
		c.notes = append(c.notes, "over max_batch")
		deviate = false
	}
	for range count {
		list.vals = append(list.vals, g.gen(g.env.notifSch, ""))
	}
	env := jobj("notifications", list)
	g.sch[env] = g.cons(g.expand(g.env.batchSch))
	if deviate {
		if len(list.vals) > 0 && g.chance(0.8) {
			k := g.r.IntN(len(list.vals))
			c.notes = append(c.notes, fmt.Sprintf("entry %d:", k))
			g.mutate(c, list.vals[k])
		} else {
			g.mutate(c, env)
		}
	}
	return env.encode()
}

// breakBytes breaks the JSON text itself.
func (g *fuzzGen) breakBytes(c *fuzzCase, b []byte) []byte {
	switch g.r.IntN(7) {
	case 0:
		c.notes = append(c.notes, "truncated")
		return b[:g.r.IntN(len(b))]
	case 1:
		c.notes = append(c.notes, "trailing data")
		return append(b, pick(g, " {}", "x", "]", "null")...)
	case 2:
		c.notes = append(c.notes, "BOM")
		return append([]byte("\xef\xbb\xbf"), b...)
	case 3:
		c.notes = append(c.notes, "not an object")
		return []byte(pick(g, "", "null", "[]", "1", `"x"`, "not json", "{"))
	case 4:
		c.notes = append(c.notes, "a byte replaced")
		b = slices.Clone(b)
		b[g.r.IntN(len(b))] = pick(g, byte(0xff), byte(0x00), byte('"'), byte('}'))
		return b
	case 5:
		c.notes = append(c.notes, "whitespace around (valid)")
		return append(append([]byte(" \n\t"), b...), " \r\n"...)
	default:
		c.notes = append(c.notes, "over max_body_bytes")
		return []byte(`{"to":{"apns":{"token":"` + strings.Repeat("ab", 32) + `"}},"title":"x","data":{"k":"` + strings.Repeat("z", fuzzMaxBodyBytes*17) + `"}}`)
	}
}

// sset is the schemas that apply to one value when generating it: the
// schema, its allOf members, every then-branch (the platform rules of both
// platforms: valid for either), and one alternative of each anyOf and
// oneOf. avoid lists the keys the alternatives not taken of a oneOf
// require (so that "exactly one of" stays one).
type sset struct {
	list  []*base.Schema
	avoid []string
}

func (g *fuzzGen) expand(s *base.Schema) *sset {
	ss := &sset{}
	var walk func(*base.Schema, int)
	walk = func(x *base.Schema, depth int) {
		if x == nil || depth > 8 {
			return
		}
		ss.list = append(ss.list, x)
		for _, p := range x.AllOf {
			walk(p.Schema(), depth+1)
		}
		if x.Then != nil {
			walk(x.Then.Schema(), depth+1)
		}
		if len(x.AnyOf) > 0 {
			walk(x.AnyOf[g.r.IntN(len(x.AnyOf))].Schema(), depth+1)
		}
		if len(x.OneOf) > 0 {
			k := g.r.IntN(len(x.OneOf))
			for i, p := range x.OneOf {
				if i != k {
					ss.avoid = append(ss.avoid, p.Schema().Required...)
				}
			}
			walk(x.OneOf[k].Schema(), depth+1)
		}
	}
	walk(s, 0)
	return ss
}

// prop is the schemas of one property (properties, then patternProperties).
func (ss *sset) prop(name string) []*base.Schema {
	var out []*base.Schema
	for _, x := range ss.list {
		if x.Properties != nil {
			if p := x.Properties.GetOrZero(name); p != nil {
				out = append(out, p.Schema())
			}
		}
		if x.PatternProperties != nil {
			for pat, p := range x.PatternProperties.FromOldest() {
				if re := compiledPattern(pat); re != nil && re.MatchString(name) {
					out = append(out, p.Schema())
				}
			}
		}
	}
	return out
}

var patterns sync.Map // pattern → *regexp.Regexp (nil: does not compile)

func compiledPattern(p string) *regexp.Regexp {
	if re, ok := patterns.Load(p); ok {
		return re.(*regexp.Regexp)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		re = nil
	}
	patterns.Store(p, re)
	return re
}

// cons is what a set of schemas says about one value, merged.
type cons struct {
	ss                        *sset
	types, pats               []string
	enum, consts              []*jnode
	minLen, maxLen            int64 // maxLen < 0: none
	minimum, maximum, exclMax *float64
	format                    string
	props, required           []string
	closed, freeform, notNull bool
	hasProps, objectFreeform  bool
	minProps                  int64
	item                      *base.Schema
}

func (g *fuzzGen) cons(ss *sset) *cons {
	c := &cons{ss: ss, maxLen: -1}
	for _, x := range ss.list {
		if len(x.Type) > 0 {
			if c.types == nil {
				c.types = slices.Clone(x.Type)
			} else {
				c.types = slices.DeleteFunc(c.types, func(t string) bool {
					return !slices.Contains(x.Type, t) && !(t == "number" && slices.Contains(x.Type, "integer"))
				})
			}
		}
		if len(x.Enum) > 0 && c.enum == nil {
			for _, e := range x.Enum {
				c.enum = append(c.enum, yamlToJ(e))
			}
		}
		if x.Const != nil {
			c.consts = append(c.consts, yamlToJ(x.Const))
		}
		if x.Pattern != "" {
			c.pats = append(c.pats, x.Pattern)
		}
		if x.MinLength != nil {
			c.minLen = max(c.minLen, *x.MinLength)
		}
		if x.MaxLength != nil && (c.maxLen < 0 || *x.MaxLength < c.maxLen) {
			c.maxLen = *x.MaxLength
		}
		if x.Minimum != nil && (c.minimum == nil || *x.Minimum > *c.minimum) {
			c.minimum = x.Minimum
		}
		if x.Maximum != nil && (c.maximum == nil || *x.Maximum < *c.maximum) {
			c.maximum = x.Maximum
		}
		if x.ExclusiveMaximum != nil && x.ExclusiveMaximum.IsB() {
			v := x.ExclusiveMaximum.B
			c.exclMax = &v
		}
		if x.Format != "" {
			c.format = x.Format
		}
		if x.Properties != nil {
			c.hasProps = true
			for k := range x.Properties.KeysFromOldest() {
				if !slices.Contains(c.props, k) {
					c.props = append(c.props, k)
				}
			}
		}
		c.required = append(c.required, x.Required...)
		if ap := x.AdditionalProperties; ap != nil {
			if ap.IsB() && !ap.B {
				c.closed = true
			} else {
				c.freeform, c.objectFreeform = true, true
			}
		}
		if x.Not != nil && slices.Contains(x.Not.Schema().Type, "null") {
			c.notNull = true
		}
		if x.MinProperties != nil {
			c.minProps = max(c.minProps, *x.MinProperties)
		}
		if x.Items != nil && x.Items.IsA() && c.item == nil {
			c.item = x.Items.A.Schema()
		}
	}
	return c
}

// gen draws a value for s at path (dotted, for the deployment's hints).
func (g *fuzzGen) gen(s *base.Schema, path string) *jnode {
	if h := g.hint(path); h != nil {
		return h
	}
	return g.genSet(g.expand(s), path)
}

func (g *fuzzGen) genSet(ss *sset, path string) *jnode {
	c := g.cons(ss)
	n := g.genCons(c, path)
	g.sch[n] = c
	return n
}

func (g *fuzzGen) genCons(c *cons, path string) *jnode {
	if len(c.consts) > 0 {
		return c.consts[0].clone()
	}
	if c.enum != nil {
		return pick(g, c.enum...).clone()
	}
	typ := ""
	if len(c.types) > 0 {
		typ = pick(g, c.types...)
	} else if c.hasProps {
		typ = "object"
	}
	switch typ {
	case "":
		v := g.randomJSON(2)
		for c.notNull && v.kind == 'n' {
			v = g.randomJSON(2)
		}
		return v
	case "null":
		return jnull()
	case "boolean":
		return jbool(g.chance(0.5))
	case "integer", "number":
		return jnum(g.integer(c))
	case "string":
		return jstr(g.str(c))
	case "array":
		n := &jnode{kind: '['}
		for range g.r.IntN(3) {
			if c.item != nil {
				n.vals = append(n.vals, g.gen(c.item, path+"[]"))
			} else {
				n.vals = append(n.vals, g.randomJSON(1))
			}
		}
		return n
	}
	// object
	n := &jnode{kind: '{'}
	for _, k := range c.props {
		if slices.Contains(c.ss.avoid, k) && !slices.Contains(c.required, k) {
			continue
		}
		if !slices.Contains(c.required, k) && !g.chance(0.3) {
			continue
		}
		n.set(k, g.genProp(c.ss, k, join(path, k)))
	}
	for _, k := range c.required {
		if n.get(k) == nil {
			n.set(k, g.genProp(c.ss, k, join(path, k)))
		}
	}
	if c.freeform && !c.closed && (c.objectFreeform && !c.hasProps || g.chance(0.2)) {
		for i := int64(len(n.keys)); i < c.minProps || g.chance(0.4); i++ {
			n.set(pick(g, "order", "k", "n", "sync", "thread", "x-y", "é"), g.randomJSON(1))
			if len(n.keys) > 4 {
				break
			}
		}
	}
	return n
}

func (g *fuzzGen) genProp(ss *sset, k, path string) *jnode {
	if h := g.hint(path); h != nil {
		return h
	}
	sub := &sset{}
	for _, x := range ss.prop(k) {
		e := g.expand(x)
		sub.list = append(sub.list, e.list...)
		sub.avoid = append(sub.avoid, e.avoid...)
	}
	return g.genSet(sub, path)
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// hint draws, at some paths, from the deployment's values instead of the
// schema (a device token the fake knows, a subscription the fake push
// service has, a configured name), so that valid requests get delivered.
func (g *fuzzGen) hint(path string) *jnode {
	env := g.env
	switch path {
	case "to.apns.token":
		if g.chance(0.85) {
			tok := pick(g, env.tokens...)
			if g.chance(0.1) {
				tok = strings.ToUpper(tok)
			}
			return jstr(tok)
		}
	case "to.apns.topic", "apns.headers.apns-topic":
		if g.chance(0.85) {
			return jstr(pick(g, bundle, bundle, "", bundle+".voip", "com.example.other", "com.unknown.app"))
		}
	case "to.apns.credential":
		if g.chance(0.85) {
			return jstr(pick(g, "default", "", "nope"))
		}
	case "to.webpush":
		if g.chance(0.85) {
			s := pick(g, env.subs...)
			w := jobj("endpoint", jstr(s.endpoint), "keys", jobj("p256dh", jstr(s.p256dh), "auth", jstr(s.auth)))
			switch g.r.IntN(4) {
			case 0:
				w.set("vapid_key", jstr(s.vapidKey))
			case 1:
				w.set("vapid_key", jstr(pick(g, "current", "previous", "", "nope")))
			}
			if g.chance(0.2) {
				w.set("expirationTime", pick(g, jnull(), jnum("1767225600000")))
			}
			return w
		}
	case "to.fcm.token":
		if g.chance(0.85) {
			return jstr(pick(g, env.regTokens...))
		}
	case "to.fcm.credential":
		if g.chance(0.85) {
			return jstr(pick(g, "default", "", "nope"))
		}
	case "fcm.android":
		if g.chance(0.7) {
			return g.subset(jobj("priority", jstr(pick(g, "HIGH", "NORMAL")), "ttl", jstr(pick(g, "3600s", "0s", "2419200s", "1.5s")),
				"collapse_key", jstr("k"), "direct_boot_ok", jbool(true), "notification", g.subset(jobj("channel_id", jstr("orders"),
					"notification_count", jnum(pick(g, "0", "3")), "sound", jstr("default"), "tag", jnull())),
				"data", g.subset(jobj("k", jstr("v"), "n", jnull()))))
		}
	case "fcm.message":
		if g.chance(0.7) {
			return g.subset(jobj("fcm_options", jobj("analytics_label", jstr("x")), "notification", g.subset(jobj("title", jstr("T"), "body", jnull())),
				"data", g.subset(jobj("k", jstr("v"), "order", jnull())), "android", g.subset(jobj("priority", jstr("HIGH"), "collapse_key", jnull())),
				"apns", jobj("headers", jobj("apns-priority", jstr("5")))))
		}
	case "image", "url":
		if g.chance(0.5) {
			return jstr(pick(g, "https://example.com/x.png", "", "/relative"))
		}
	}
	return nil
}

// subset keeps each member of o with probability 1/2.
func (g *fuzzGen) subset(o *jnode) *jnode {
	n := jobj()
	for i, k := range o.keys {
		if g.chance(0.5) {
			n.set(k, o.vals[i])
		}
	}
	return n
}

func lit(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func (g *fuzzGen) integer(c *cons) string {
	lo, hi := -1000.0, 1e9
	if c.minimum != nil {
		lo = *c.minimum
	}
	if c.maximum != nil {
		hi = *c.maximum
	}
	switch g.r.IntN(10) {
	case 0:
		return lit(lo)
	case 1:
		switch {
		case c.maximum != nil:
			return lit(hi)
		case c.exclMax != nil:
			return "9223372036854774784"
		case c.format == "int64":
			return pick(g, "9223372036854775807", "4294967296", "2419200")
		}
	}
	// Any magnitude up to 10^9, within the bounds.
	span := min(hi-lo, math.Pow(10, float64(g.r.IntN(10))))
	return strconv.FormatInt(int64(lo)+g.r.Int64N(int64(span)+1), 10)
}

var fuzzStrings = []string{"", "x", "Hello", "Order shipped", "Your parcel is on its way", "日本語", "emoji 🎉",
	"tab\there", `a "quote"`, `back\slash`, "line\nbreak", "ünïcödé", "com.example.app", "  padded  ", "order-1234",
	"https://example.com/o/1"}

func (g *fuzzGen) str(c *cons) string {
	var s string
	if len(c.pats) > 0 {
		s = genRegex(g, pick(g, c.pats...))
	} else {
		s = pick(g, fuzzStrings...)
	}
	for int64(utf8.RuneCountInString(s)) < c.minLen {
		s += "a"
	}
	if c.maxLen >= 0 && int64(utf8.RuneCountInString(s)) > c.maxLen {
		s = string([]rune(s)[:c.maxLen])
	}
	return s
}

// randomJSON is a small free-form value.
func (g *fuzzGen) randomJSON(depth int) *jnode {
	k := g.r.IntN(7)
	if depth <= 0 {
		k = g.r.IntN(4)
	}
	switch k {
	case 0:
		return jstr(pick(g, fuzzStrings...))
	case 1:
		return jnum(pick(g, "0", "1", "-3", "2.5", "1e3", "42"))
	case 2:
		return jbool(g.chance(0.5))
	case 3:
		return jnull()
	case 4, 5:
		n := jobj()
		for range g.r.IntN(3) {
			n.set(pick(g, "a", "b", "sound", "name", "volume", "critical"), g.randomJSON(depth-1))
		}
		return n
	default:
		n := &jnode{kind: '['}
		for range g.r.IntN(3) {
			n.vals = append(n.vals, g.randomJSON(depth-1))
		}
		return n
	}
}

func yamlToJ(n interface{ Decode(any) error }) *jnode {
	var v any
	if err := n.Decode(&v); err != nil {
		return jnull()
	}
	b, _ := json.Marshal(v)
	t, _, err := parseJSON(b)
	if err != nil {
		return jnull()
	}
	return t
}

// genRegex draws a string the pattern matches (repetitions kept short).
func genRegex(g *fuzzGen, pattern string) string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return pick(g, fuzzStrings...)
	}
	var b strings.Builder
	genRe(g, re, &b)
	return b.String()
}

func genRe(g *fuzzGen, re *syntax.Regexp, b *strings.Builder) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 && g.chance(0.5) {
				r = []rune(strings.ToUpper(string(r)))[0]
			}
			b.WriteRune(r)
		}
	case syntax.OpCharClass:
		// Prefer printable ASCII, then a few other characters in range.
		var cands []rune
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for _, r := range []rune{lo, hi, lo + (hi-lo)/2, 'a', 'Z', '5', '-', 'é', '日', '🎉', '\t', ' '} {
				if r >= lo && r <= hi && (r < 0xD800 || r > 0xDFFF) && r <= utf8.MaxRune {
					cands = append(cands, r)
				}
			}
		}
		if len(cands) > 0 {
			b.WriteRune(pick(g, cands...))
		}
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte(byte('a' + g.r.IntN(26)))
	case syntax.OpCapture:
		genRe(g, re.Sub[0], b)
	case syntax.OpConcat:
		for _, s := range re.Sub {
			genRe(g, s, b)
		}
	case syntax.OpAlternate:
		genRe(g, pick(g, re.Sub...), b)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		lo, hi := 0, 4
		switch re.Op {
		case syntax.OpPlus:
			lo = 1
		case syntax.OpQuest:
			hi = 1
		case syntax.OpRepeat:
			lo, hi = re.Min, re.Max
			if hi < 0 || hi > lo+3 {
				hi = lo + 3
			}
		}
		for range lo + g.r.IntN(hi-lo+1) {
			genRe(g, re.Sub[0], b)
		}
	}
}

// ---------------------------------------------------------------- mutation

type jslot struct {
	parent *jnode
	idx    int // in parent.vals
	path   string
}

func slots(n *jnode, path string, out *[]jslot) {
	for i, v := range n.vals {
		p := path
		if n.kind == '{' {
			p = join(path, n.keys[i])
		} else {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		*out = append(*out, jslot{n, i, p})
		slots(v, p, out)
	}
}

// mutate makes one deviation in the tree rooted at root.
func (g *fuzzGen) mutate(c *fuzzCase, root *jnode) {
	var all []jslot
	slots(root, "", &all)
	objs := []*jnode{root}
	var strs, bounded []jslot
	for _, s := range all {
		v := s.parent.vals[s.idx]
		if v.kind == '{' {
			objs = append(objs, v)
		}
		if v.kind == '"' {
			strs = append(strs, s)
		}
		if g.sch[v] != nil {
			bounded = append(bounded, s)
		}
	}
	note := func(what, where string) { c.notes = append(c.notes, what+" at "+strconv.Quote(where)) }
	kind := weighted(g, map[string]int{"bound": 55, "drop": 8, "add": 8, "type": 10, "null": 5, "case": 5, "twice": 5, "text": 6, "recipients": 3, "nasty": 5})
	switch {
	case kind == "bound" && len(bounded) > 0:
		// Values with a bound on their length or size first.
		var weighted []jslot
		for _, b := range bounded {
			c := g.sch[b.parent.vals[b.idx]]
			w := 1
			if c.maxLen >= 0 || c.minLen > 0 || c.minimum != nil || c.maximum != nil || c.exclMax != nil {
				w = 4
			} else if len(c.pats) > 0 || c.enum != nil {
				w = 2
			}
			for range w {
				weighted = append(weighted, b)
			}
		}
		s := pick(g, weighted...)
		v := s.parent.vals[s.idx]
		nv, what := g.bound(v, g.sch[v])
		note(what, s.path)
		s.parent.vals[s.idx] = nv
	case kind == "drop":
		o := pick(g, objs...)
		if len(o.keys) > 0 {
			i := g.r.IntN(len(o.keys))
			note("dropped", o.keys[i])
			o.keys = slices.Delete(o.keys, i, i+1)
			o.vals = slices.Delete(o.vals, i, i+1)
		}
	case kind == "add":
		o := pick(g, objs...)
		key := pick(g, "colour", "x", "", "aps", "tο", "extra_field", "apns-foo", "Apns-Priority", "APNS-ID", "fcm")
		note("added key "+strconv.Quote(key), "")
		o.set(key, g.randomJSON(1))
	case kind == "type" && len(all) > 0:
		s := pick(g, all...)
		v := pick(g, jnull(), jstr("1"), jnum("1"), jbool(true), jobj(), &jnode{kind: '['}, jstr(""))
		note("replaced with "+string(v.encode()), s.path)
		s.parent.vals[s.idx] = v
	case kind == "null" && len(all) > 0:
		s := pick(g, all...)
		note("null", s.path)
		s.parent.vals[s.idx] = jnull()
	case kind == "case":
		o := pick(g, objs...)
		if len(o.keys) > 0 {
			i := g.r.IntN(len(o.keys))
			k := o.keys[i]
			nk := pick(g, strings.ToUpper(k), strings.ToUpper(k[:min(1, len(k))])+k[min(1, len(k)):],
				strings.Replace(k, "s", "ſ", 1), strings.Replace(k, "k", "\u212a", 1))
			note("key case "+strconv.Quote(nk), k)
			o.keys[i] = nk
		}
	case kind == "twice":
		o := pick(g, objs...)
		if len(o.keys) > 0 {
			i := g.r.IntN(len(o.keys))
			note("key twice", o.keys[i])
			o.keys = append(o.keys, o.keys[i])
			o.vals = append(o.vals, pick(g, o.vals[i].clone(), g.randomJSON(1)))
		}
	case kind == "text" && len(strs) > 0:
		s := pick(g, strs...)
		if g.chance(0.5) {
			note("invalid UTF-8", s.path)
			s.parent.vals[s.idx] = jstr(s.parent.vals[s.idx].str + "\xff\xfe")
		} else {
			note("lone surrogate", s.path)
			s.parent.vals[s.idx] = &jnode{kind: '"', raw: pick(g, `"a\ud800"`, `"\udc00b"`, `"\ud83d\u0041"`)}
		}
	case kind == "recipients":
		if to := root.get("to"); to != nil && to.kind == '{' {
			if g.chance(0.5) {
				note("several recipients", "to")
				s := g.env.subs[0]
				for _, p := range []string{"apns", "webpush", "fcm"} {
					if to.get(p) == nil || g.chance(0.5) {
						to.set(p, map[string]*jnode{"apns": jobj("token", jstr(g.env.tokens[0])),
							"webpush": jobj("endpoint", jstr(s.endpoint), "keys", jobj("p256dh", jstr(s.p256dh), "auth", jstr(s.auth))),
							"fcm":     jobj("token", jstr(g.env.regTokens[0]))}[p])
					}
				}
			} else {
				note("no recipient", "to")
				root.set("to", jobj())
			}
		}
	case kind == "nasty" && len(strs) > 0:
		s := pick(g, strs...)
		v := pick(g, "a\x01b", "\x7f", "line\nbreak", "\x00", "tab\tok", strings.Repeat("z", 65), strings.Repeat("é", 40), "", " ")
		note("string "+strconv.Quote(v), s.path)
		s.parent.vals[s.idx] = jstr(v)
	default:
		// The kind drawn had nothing to act on: a key dropped from the root.
		if len(root.keys) > 0 {
			i := g.r.IntN(len(root.keys))
			note("dropped", root.keys[i])
			root.keys = slices.Delete(root.keys, i, i+1)
			root.vals = slices.Delete(root.vals, i, i+1)
		}
	}
}

// bound is a value at or just past one of the bounds c sets on v.
func (g *fuzzGen) bound(v *jnode, c *cons) (*jnode, string) {
	type alt struct {
		n    *jnode
		what string
	}
	var alts []alt
	s := func(x, what string) { alts = append(alts, alt{jstr(x), what}) }
	num := func(x, what string) { alts = append(alts, alt{jnum(x), what}) }
	switch v.kind {
	case '"':
		if c.maxLen >= 0 {
			s(strings.Repeat("z", int(c.maxLen)), "maxLength") // z: not hex, so never a device token in the logs
			s(strings.Repeat("z", int(c.maxLen)+1), "maxLength+1")
			if c.maxLen >= 2 {
				s(strings.Repeat("é", int(c.maxLen)/2+1), "maxLength characters, more bytes")
			}
		}
		if c.minLen > 0 {
			s(strings.Repeat("z", int(c.minLen)-1), "minLength-1")
		}
		if len(c.pats) > 0 || c.enum != nil {
			s("", "empty")
			s(v.str+"\x01", "a control character added")
			s(" "+v.str, "a space before")
			s(v.str+" ", "a space after")
			s(strings.ToUpper(v.str), "upper case")
			s(v.str+"x", "a character added")
			if r := []rune(v.str); len(r) > 0 {
				s(string(r[:len(r)-1]), "a character removed")
			}
		}
	case '0':
		if c.minimum != nil {
			num(lit(*c.minimum), "minimum")
			num(lit(*c.minimum-1), "minimum-1")
		}
		if c.maximum != nil {
			num(lit(*c.maximum), "maximum")
			num(lit(*c.maximum+1), "maximum+1")
		}
		if c.exclMax != nil {
			num("9223372036854775807", "exclusiveMaximum-1 (a float64 at the bound)")
			num("9223372036854774784", "below exclusiveMaximum")
			num("9223372036854775808", "exclusiveMaximum")
		}
		if slices.Contains(c.types, "integer") {
			num("1.5", "a fraction")
			num("2.0", "an integer written with a fraction")
			num("1e2", "an integer written with an exponent")
		}
		if c.format == "int64" {
			num("9223372036854775807", "int64 max")
			num("9223372036854775808", "int64 max+1")
			num("-9223372036854775809", "int64 min-1")
		}
	case '{':
		for _, k := range c.required {
			if v.get(k) != nil {
				n := v.clone()
				n.del(k)
				alts = append(alts, alt{n, "required " + k + " dropped"})
			}
		}
		if c.closed {
			n := v.clone()
			n.set("zz_unknown", jstr("x"))
			alts = append(alts, alt{n, "an unknown key"})
		}
		alts = append(alts, alt{jobj(), "an empty object"})
	case '[':
		alts = append(alts, alt{&jnode{kind: '['}, "an empty array"})
	}
	if c.enum != nil && v.kind != '"' {
		alts = append(alts, alt{jstr("zz"), "not in the enum"})
	}
	if len(alts) == 0 {
		wrong := map[byte]*jnode{'"': jnum("1"), '0': jstr("1"), 't': jstr("true"), 'f': jnum("0"), 'n': jstr("null"), '{': jstr("{}"), '[': jobj()}[v.kind]
		return wrong, "another type"
	}
	a := pick(g, alts...)
	return a.n, a.what
}
