package proxy_test

// The server is held to api/openapi.yaml: every request these tests send and
// every answer the real server gives (through the harness, in front of the
// fake APNs) is validated against the document with libopenapi-validator,
// in strict mode (a field the server sends that the document does not
// declare is an error, even where the schema leaves objects open for
// forward compatibility).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	valerrors "github.com/pb33f/libopenapi-validator/errors"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"gopkg.in/yaml.v3"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/proxy"
	"github.com/pushproxy/pushproxy/translate"
)

const openAPIPath = "../api/openapi.yaml"

var (
	openAPIOnce sync.Once
	openAPIDoc  *openAPISpec
	openAPIErr  error
	openAPIMu   sync.Mutex // the validators are used from one goroutine at a time
)

// openAPISpec is api/openapi.yaml, parsed once per test binary, with its
// validators.
type openAPISpec struct {
	raw   []byte
	doc   libopenapi.Document
	model *v3.Document
	// strict validates answers: a field the server sends that the
	// document does not declare is an error, even where a schema leaves
	// objects open for forward compatibility.
	strict validator.Validator
	// plain validates requests with the document's own semantics
	// (JSON Schema: what additionalProperties allows is allowed).
	plain validator.Validator
}

func loadOpenAPI(t testing.TB) *openAPISpec {
	t.Helper()
	openAPIOnce.Do(func() {
		spec, err := os.ReadFile(openAPIPath)
		if err != nil {
			openAPIErr = err
			return
		}
		openAPIDoc, openAPIErr = parseOpenAPI(spec)
	})
	if openAPIErr != nil {
		t.Fatal(openAPIErr)
	}
	return openAPIDoc
}

// parseOpenAPI builds a document and its validators from YAML.
func parseOpenAPI(spec []byte) (*openAPISpec, error) {
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", openAPIPath, err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("building the model of %s: %w", openAPIPath, err)
	}
	strict, errs := validator.NewValidator(doc, append(openAPIFormats(), config.WithStrictMode(),
		config.WithStrictIgnorePaths(openAPIFreeForm()...))...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("building the validator: %v", errs)
	}
	plain, errs := validator.NewValidator(doc, openAPIFormats()...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("building the validator: %v", errs)
	}
	return &openAPISpec{raw: spec, doc: doc, model: &model.Model, strict: strict, plain: plain}, nil
}

// openAPIValidator is the strict validator (for answers).
func openAPIValidator(t testing.TB) validator.Validator { return loadOpenAPI(t).strict }

// openAPIFreeForm lists the objects the document declares free-form
// (additionalProperties): strict mode would otherwise report their keys.
// "x**" rather than "x.*": a key may be empty or hold a dot.
func openAPIFreeForm() []string {
	var paths []string
	for _, p := range []string{
		"data",                 // Notification.data: the caller's keys
		"sound",                // the critical-sound dictionary
		"aps",                  // APNsOverrides.aps
		"payload",              // APNsOverrides.payload, WebPushOverrides.payload, DryRunRequest.payload
		"request.headers",      // DryRunRequest.headers
		"request.token_header", // DryRunRequest.token_header
		"request.token_claims", // DryRunRequest.token_claims
	} {
		paths = append(paths, "$.body."+p+"**", "$.body.**."+p+"**")
	}
	return paths
}

// openAPIFormats are the validators' format checks: the document's
// `format: int64` fields are checked exactly by the fuzzer, on their
// literal (a validator sees a float64, which cannot tell 2^63 - 1 from
// 2^63), so the validators take any integer there.
func openAPIFormats() []config.Option {
	return []config.Option{config.WithFormatAssertions(), config.WithCustomFormat("int64", func(v any) error {
		if f, ok := v.(float64); ok && f != math.Trunc(f) {
			return fmt.Errorf("%v is not an integer", f)
		}
		return nil
	})}
}

func describeValidation(errs []*valerrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  - %s: %s", e.Message, e.Reason)
		for _, se := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n      %s at %s (%s)", se.Reason, se.FieldPath, se.KeywordLocation)
		}
	}
	return b.String()
}

// specCall is one exchange with the real server, both halves checked
// against the document.
type specCall struct {
	method, path string
	body         any // string, []byte or a value marshalled to JSON; nil: no body
	headers      []string
	// requestOff: the request deliberately breaks the document (to see the
	// server's answer to it); the test asserts that the validator refuses it.
	requestOff bool
}

type specAnswer struct {
	Status int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

func (a specAnswer) code() string {
	e, _ := a.Body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// openAPIDo sends c to the harness's server and validates the request and
// the response against api/openapi.yaml.
func openAPIDo(t *testing.T, h *harness, c specCall) specAnswer {
	t.Helper()
	var data []byte
	switch b := c.body.(type) {
	case nil:
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		var err error
		if data, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	newReq := func() *http.Request {
		var body io.Reader = http.NoBody
		if c.body != nil {
			body = bytes.NewReader(data)
		}
		req, err := http.NewRequest(c.method, h.url+c.path, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(c.headers); i += 2 {
			req.Header.Set(c.headers[i], c.headers[i+1])
		}
		return req
	}

	v := loadOpenAPI(t).plain
	openAPIMu.Lock()
	ok, errs := v.ValidateHttpRequestSync(newReq())
	openAPIMu.Unlock()
	switch {
	case c.requestOff && ok:
		t.Errorf("%s %s: the request was meant to break the document, but it validates: %s", c.method, c.path, data)
	case !c.requestOff && !ok:
		t.Errorf("%s %s: the request does not match the document:%s\nbody: %s", c.method, c.path, describeValidation(errs), data)
	}

	req := newReq()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	a := specAnswer{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.Body); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v: %s", c.method, c.path, err, raw)
		}
	}
	if errs := openAPIValidateResponse(t, newReq(), resp.StatusCode, resp.Header, raw); len(errs) > 0 {
		t.Errorf("%s %s: the %d answer does not match the document:%s\nbody: %s", c.method, c.path, resp.StatusCode, describeValidation(errs), raw)
	}
	return a
}

// openAPIValidateResponse validates one answer (status, headers, body) to
// req against the document and returns the violations.
func openAPIValidateResponse(t testing.TB, req *http.Request, status int, header http.Header, raw []byte) []*valerrors.ValidationError {
	t.Helper()
	return loadOpenAPI(t).validateResponse(req, status, header, raw)
}

func (s *openAPISpec) validateResponse(req *http.Request, status int, header http.Header, raw []byte) []*valerrors.ValidationError {
	resp := &http.Response{
		StatusCode: status, Header: header.Clone(), Request: req,
		Body: io.NopCloser(bytes.NewReader(raw)), ContentLength: int64(len(raw)),
	}
	openAPIMu.Lock()
	defer openAPIMu.Unlock()
	ok, errs := s.strict.ValidateHttpResponse(req, resp)
	if ok {
		return nil
	}
	if len(errs) == 0 {
		return []*valerrors.ValidationError{{Message: "invalid", Reason: "no detail"}}
	}
	return errs
}

func expectAnswer(t *testing.T, what string, a specAnswer, status int, code string) {
	t.Helper()
	if a.Status != status || a.code() != code {
		t.Errorf("%s: got %d %q, want %d %q: %s", what, a.Status, a.code(), status, code, a.Raw)
	}
}

// TestOpenAPIDocument: the document is valid OpenAPI 3.1 and its enums are
// exactly the server's sets.
func TestOpenAPIDocument(t *testing.T) {
	v := openAPIValidator(t)
	if ok, errs := v.ValidateDocument(); !ok {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI document:%s", describeValidation(errs))
	}
	spec, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI    string `yaml:"openapi"`
		Components struct {
			Schemas map[string]struct {
				Enum []string `yaml:"enum"`
			} `yaml:"schemas"`
		} `yaml:"components"`
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	sameSet := func(name string, got []string, want []string) {
		t.Helper()
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: %q is missing from the document's enum", name, w)
			}
		}
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("%s: the document's enum has %q, which the server does not know", name, g)
			}
		}
	}
	var codes []string
	for _, c := range translate.Codes {
		codes = append(codes, string(c))
	}
	sameSet("ErrorCode", doc.Components.Schemas["ErrorCode"].Enum, codes)
	sameSet("Action", doc.Components.Schemas["Action"].Enum, []string{
		string(translate.ActionRemoveRecipient), string(translate.ActionResubscribe), string(translate.ActionFixRequest),
		string(translate.ActionFixCredentials), string(translate.ActionRetryLater), string(translate.ActionNone)})
	sameSet("Platform", doc.Components.Schemas["Platform"].Enum, []string{translate.PlatformAPNs, translate.PlatformWebPush, translate.PlatformFCM})
	var pushTypes []string
	for _, p := range translate.PushTypes {
		pushTypes = append(pushTypes, p.Name)
	}
	sameSet("PushType", doc.Components.Schemas["PushType"].Enum, pushTypes)

	// Every route the server serves is described.
	for path, method := range map[string]string{
		"/v1/notifications": "post", "/v1/notifications/batch": "post", "/v1/webpush/vapid-public-key": "get",
		"/healthz": "get", "/readyz": "get", "/metrics": "get",
	} {
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("the document does not describe %s %s", strings.ToUpper(method), path)
		}
	}
	// The ErrorCode description states each code's status: keep it in step.
	desc := docSchemaDescription(t, spec, "ErrorCode")
	for _, c := range translate.Codes {
		if want := fmt.Sprintf("%s %d", c, c.HTTPStatus()); !strings.Contains(strings.Join(strings.Fields(desc), " "), want) {
			t.Errorf("ErrorCode description lacks %q", want)
		}
	}
}

func docSchemaDescription(t *testing.T, spec []byte, name string) string {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Description string `yaml:"description"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas[name].Description
}

// TestOpenAPIConformance exercises every route and many outcomes of the
// running server and validates each exchange.
func TestOpenAPIConformance(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	post := func(path string, body any, headers ...string) specAnswer {
		t.Helper()
		return openAPIDo(t, h, specCall{method: "POST", path: path, body: body, headers: headers})
	}
	get := func(path string) specAnswer {
		t.Helper()
		return openAPIDo(t, h, specCall{method: "GET", path: path})
	}

	// Delivered, with every common field and the APNs overrides.
	tok := h.token()
	n := alert(tok)
	n["id"] = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
	n["subtitle"], n["badge"], n["sound"], n["image"], n["url"] = "sub", 3, "default", "https://example.com/i.png", "https://example.com/o/1"
	n["data"] = map[string]any{"order": "1234", "n": 2}
	n["priority"], n["ttl"], n["collapse_id"], n["push_type"] = "high", 3600, "order-1234", "alert"
	n["to"].(map[string]any)["apns"].(map[string]any)["topic"] = bundle
	n["to"].(map[string]any)["apns"].(map[string]any)["environment"] = "production"
	n["apns"] = map[string]any{"headers": map[string]string{"apns-priority": "5"},
		"aps": map[string]any{"interruption-level": "time-sensitive", "thread-id": "orders"}, "payload": map[string]any{"k": "v"}}
	a := post("/v1/notifications", n, "X-Request-Timeout", "5")
	if a.Status != 200 || a.Body["platform"] != "apns" || a.Body["id"] != "3f2504e0-4f89-11d3-9a0c-0305e82c3301" {
		t.Errorf("delivered: %d %s", a.Status, a.Raw)
	}

	// A background push (data only).
	if a := post("/v1/notifications", map[string]any{"to": map[string]any{"apns": map[string]any{"token": h.token()}}, "data": map[string]any{"sync": true}}); a.Status != 200 {
		t.Errorf("background: %d %s", a.Status, a.Raw)
	}

	// Dry run: the request, the token decoded.
	dry := alert(h.token())
	dry["dry_run"] = true
	a = post("/v1/notifications", dry)
	if req, _ := a.Body["request"].(map[string]any); a.Status != 200 || req == nil || req["token_claims"] == nil || a.Body["attempts"] != float64(0) {
		t.Errorf("dry run: %d %s", a.Status, a.Raw)
	}

	// Errors pushproxy finds itself.
	expectAnswer(t, "unknown field", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications",
		body: map[string]any{"to": map[string]any{"apns": map[string]any{"token": tok}}, "title": "x", "colour": "red"}, requestOff: true}),
		400, "invalid_request")
	expectAnswer(t, "bad priority", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications",
		body: map[string]any{"to": map[string]any{"apns": map[string]any{"token": tok}}, "title": "x", "priority": "urgent"}, requestOff: true}),
		400, "invalid_request")
	expectAnswer(t, "no recipient", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications",
		body: map[string]any{"to": map[string]any{}, "title": "x"}, requestOff: true}), 400, "invalid_request")
	expectAnswer(t, "malformed JSON", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications",
		body: `{"to":`, requestOff: true}), 400, "invalid_request")
	expectAnswer(t, "bad X-Request-Timeout", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications",
		body: alert(tok), headers: []string{"X-Request-Timeout", "soon"}, requestOff: true}), 400, "invalid_request")
	expectAnswer(t, "bad device token", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications",
		body: alert("not-hex"), requestOff: true}), 400, "invalid_recipient")
	big := alert(h.token())
	big["body"] = strings.Repeat("x", 5000)
	expectAnswer(t, "too large", post("/v1/notifications", big), 413, "payload_too_large")
	unknownTopic := alert(h.token())
	unknownTopic["to"].(map[string]any)["apns"].(map[string]any)["topic"] = "com.unknown.app"
	expectAnswer(t, "no credential for the topic", post("/v1/notifications", unknownTopic), 400, "topic_mismatch")
	noCred := alert(h.token())
	noCred["to"].(map[string]any)["apns"].(map[string]any)["credential"] = "nope"
	expectAnswer(t, "unknown credential", post("/v1/notifications", noCred), 400, "invalid_request")

	// A Web Push recipient, with no webpush section configured (see
	// TestOpenAPIWebPush for the configured case).
	wp := map[string]any{"to": map[string]any{"webpush": map[string]any{"endpoint": "http://127.0.0.1:1/push",
		"keys": map[string]any{"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", "auth": "tBHItJI5svbpez7KI4CCXg"}}},
		"title": "x", "webpush": map[string]any{"urgency": "high", "topic": "t1"}}
	a = openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications", body: wp, requestOff: true}) // http: is not https
	if a.Status == 200 || a.code() == "" {
		t.Errorf("web push to a loopback http endpoint: %d %s", a.Status, a.Raw)
	}

	// Errors APNs answers, normalised.
	gone := h.token()
	h.fake.Script(gone, fakeapns.Response{Status: 410, Reason: "Unregistered"})
	a = post("/v1/notifications", alert(gone))
	expectAnswer(t, "unregistered", a, 410, "recipient_gone")
	if up, _ := a.Body["error"].(map[string]any)["upstream"].(map[string]any); up == nil || up["timestamp"] == nil {
		t.Errorf("recipient_gone without the 410 timestamp: %s", a.Raw)
	}
	wrongTopic := h.token()
	h.fake.Script(wrongTopic, fakeapns.Response{Status: 400, Reason: "DeviceTokenNotForTopic"})
	expectAnswer(t, "token not for topic", post("/v1/notifications", alert(wrongTopic)), 400, "topic_mismatch")
	refused := h.token()
	h.fake.Script(refused, fakeapns.Response{Status: 403, Reason: "InvalidProviderToken"})
	expectAnswer(t, "refused key", post("/v1/notifications", alert(refused)), 502, "credentials_rejected")
	badTok := h.token()
	h.fake.Script(badTok, fakeapns.Response{Status: 400, Reason: "BadDeviceToken"})
	expectAnswer(t, "bad token (APNs)", post("/v1/notifications", alert(badTok)), 400, "invalid_recipient")
	limited := h.token()
	h.fake.Script(limited, fakeapns.Response{Status: 429, Reason: "TooManyRequests", RetryAfter: "30"})
	a = post("/v1/notifications", alert(limited), "X-Request-Timeout", "2")
	expectAnswer(t, "rate limited", a, 429, "rate_limited")
	if a.Header.Get("Retry-After") != "30" {
		t.Errorf("rate_limited without Retry-After 30: %v", a.Header)
	}
	slow := h.token()
	h.fake.Script(slow, fakeapns.Response{Delay: 10 * time.Second})
	expectAnswer(t, "deadline", post("/v1/notifications", alert(slow), "X-Request-Timeout", "0.3"), 504, "upstream_timeout")

	// A batch with mixed entries.
	goneB := h.token()
	h.fake.Script(goneB, fakeapns.Response{Status: 410, Reason: "Unregistered"})
	bigB := alert(h.token())
	bigB["body"] = strings.Repeat("y", 5000)
	dryB := alert(h.token())
	dryB["dry_run"] = true
	a = post("/v1/notifications/batch", map[string]any{"notifications": []any{alert(h.token()), alert(goneB), bigB, dryB, unknownTopic}})
	results, _ := a.Body["results"].([]any)
	if a.Status != 200 || len(results) != 5 {
		t.Fatalf("batch: %d %s", a.Status, a.Raw)
	}
	wantCodes := []string{"", "recipient_gone", "payload_too_large", "", "topic_mismatch"}
	for i, r := range results {
		e, _ := r.(map[string]any)["error"].(map[string]any)
		got, _ := e["code"].(string)
		if got != wantCodes[i] {
			t.Errorf("batch entry %d: %q, want %q: %v", i, got, wantCodes[i], r)
		}
	}
	// An entry that is not a Notification fails alone, inside a 200: the
	// document leaves a batch's entries unconstrained, so the request is valid.
	a = openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications/batch",
		body: map[string]any{"notifications": []any{alert(h.token()), map[string]any{"to": map[string]any{"apns": map[string]any{"token": tok}}, "colour": 1}}}})
	if results, _ := a.Body["results"].([]any); a.Status != 200 || len(results) != 2 {
		t.Errorf("batch with a bad entry: %d %s", a.Status, a.Raw)
	} else if e, _ := results[1].(map[string]any)["error"].(map[string]any); e == nil || e["code"] != "invalid_request" || e["field"] != "notifications[1].colour" {
		t.Errorf("bad batch entry: %v", results[1])
	}
	expectAnswer(t, "batch without notifications", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications/batch",
		body: map[string]any{}, requestOff: true}), 400, "invalid_request")

	// Operations routes.
	if a := get("/healthz"); a.Status != 200 || a.Body["status"] != "ok" {
		t.Errorf("healthz: %d %s", a.Status, a.Raw)
	}
	a = get("/readyz")
	if a.Status != 200 || a.Body["status"] != "ready" {
		t.Errorf("readyz: %d %s", a.Status, a.Raw)
	}
	if a := get("/metrics"); a.Status != 200 || !strings.Contains(string(a.Raw), `pushproxy_notifications_total{code="ok",platform="apns"}`) {
		t.Errorf("metrics: %d %.300s", a.Status, a.Raw)
	}
	// The VAPID key route: an error object while Web Push is not configured.
	get("/v1/webpush/vapid-public-key")

	// The degraded state: the key file goes bad, the last good key stays.
	if err := os.WriteFile(h.keyPath, []byte("-----BEGIN PRIVATE KEY-----\ntruncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.srv.Reload("test")
	a = get("/readyz")
	if a.Status != 200 || a.Body["status"] != "degraded" {
		t.Errorf("readyz after a bad reload: %d %s", a.Status, a.Raw)
	}
}

// TestOpenAPINotReady: /readyz 503 validates too.
func TestOpenAPINotReady(t *testing.T) {
	h := newHarness(t, harnessOpts{noKeyFile: true})
	a := openAPIDo(t, h, specCall{method: "GET", path: "/readyz"})
	if a.Status != 503 || a.Body["status"] != "unavailable" {
		t.Errorf("readyz without a key: %d %s", a.Status, a.Raw)
	}
	expectAnswer(t, "no key", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications", body: alert(h.token())}), 503, "credentials_missing")
}

// TestOpenAPIUnauthorizedAndOverloaded: 401 and 503 overloaded validate.
func TestOpenAPIUnauthorizedAndOverloaded(t *testing.T) {
	var tokPath string
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
		tokPath = filepath.Join(filepath.Dir(c.Upstream.CAFile), "api.token")
		c.AuthTokenFile = tokPath
		c.MaxInFlight = 1
	}})
	if err := os.WriteFile(tokPath, []byte("openapi-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.addSecret("openapi-secret")
	h.srv.Reload("test")
	auth := []string{"Authorization", "Bearer openapi-secret"}

	a := openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications", body: alert(h.token())})
	expectAnswer(t, "no bearer token", a, 401, "unauthorized")
	if a.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	expectAnswer(t, "batch, wrong bearer token", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications/batch",
		body: map[string]any{"notifications": []any{}}, headers: []string{"Authorization", "Bearer nope"}}), 401, "unauthorized")

	slow := h.token()
	h.fake.Script(slow, fakeapns.Response{Delay: 10 * time.Second})
	var wg sync.WaitGroup
	var slowAnswer specAnswer
	wg.Go(func() {
		slowAnswer = openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications", body: alert(slow), headers: append([]string{"X-Request-Timeout", "1.5"}, auth...)})
	})
	waitFor(t, "the slow request to reach the fake", func() bool { return len(h.fake.Requests()) == 1 })
	a = openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications", body: alert(h.token()), headers: auth})
	expectAnswer(t, "over max_in_flight", a, 503, "overloaded")
	if a.Header.Get("Retry-After") == "" {
		t.Error("overloaded without Retry-After")
	}
	wg.Wait()
	expectAnswer(t, "the slow one", slowAnswer, 504, "upstream_timeout")
}

// TestOpenAPIDetectsDrift: answers that differ from the document fail
// validation (so the conformance test above can fail): real answers of the
// server, each altered the way a careless change would alter them.
func TestOpenAPIDetectsDrift(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	tok := h.token()
	ok := openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications", body: alert(tok)})
	gone := h.token()
	h.fake.Script(gone, fakeapns.Response{Status: 410, Reason: "Unregistered"})
	fail := openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications", body: alert(gone)})
	ready := openAPIDo(t, h, specCall{method: "GET", path: "/readyz"})
	if ok.Status != 200 || fail.Status != 410 || ready.Status != 200 {
		t.Fatalf("setup: %d %d %d", ok.Status, fail.Status, ready.Status)
	}
	mutations := []struct {
		name   string
		path   string
		answer specAnswer
		status int
		change func(m map[string]any)
	}{
		{"an undocumented field in a result", "/v1/notifications", ok, 200, func(m map[string]any) { m["delivered_at"] = "now" }},
		{"a field renamed", "/v1/notifications", ok, 200, func(m map[string]any) { m["attempt_count"] = m["attempts"]; delete(m, "attempts") }},
		{"a type changed", "/v1/notifications", ok, 200, func(m map[string]any) { m["attempts"] = "1" }},
		{"an unknown platform", "/v1/notifications", ok, 200, func(m map[string]any) { m["platform"] = "gcm" }},
		{"an unknown error code", "/v1/notifications", fail, 410, func(m map[string]any) { m["error"].(map[string]any)["code"] = "gone" }},
		{"an unknown action", "/v1/notifications", fail, 410, func(m map[string]any) { m["error"].(map[string]any)["action"] = "delete" }},
		{"retryable missing", "/v1/notifications", fail, 410, func(m map[string]any) { delete(m["error"].(map[string]any), "retryable") }},
		{"an undocumented upstream field", "/v1/notifications", fail, 410, func(m map[string]any) {
			m["error"].(map[string]any)["upstream"].(map[string]any)["body"] = "{}"
		}},
		{"an unknown readiness state", "/readyz", ready, 200, func(m map[string]any) { m["status"] = "fine" }},
		{"an undocumented credential field", "/readyz", ready, 200, func(m map[string]any) {
			m["platforms"].(map[string]any)["apns"].(map[string]any)["credentials"].([]any)[0].(map[string]any)["key_pem"] = "x"
		}},
	}
	for _, m := range mutations {
		var body map[string]any
		if err := json.Unmarshal(m.answer.Raw, &body); err != nil {
			t.Fatal(err)
		}
		m.change(body)
		raw, _ := json.Marshal(body)
		method := "POST"
		if m.path == "/readyz" {
			method = "GET"
		}
		req, _ := http.NewRequest(method, h.url+m.path, nil)
		if errs := openAPIValidateResponse(t, req, m.status, m.answer.Header, raw); len(errs) == 0 {
			t.Errorf("%s: the altered answer still validates: %s", m.name, raw)
		}
	}
	// A status the document does not list for the route.
	req, _ := http.NewRequest("POST", h.url+"/v1/notifications", nil)
	if errs := openAPIValidateResponse(t, req, 418, ok.Header, ok.Raw); len(errs) == 0 {
		t.Error("an undocumented status validates")
	}
}

// TestOpenAPIWebPush: the Web Push answers (delivery, dry run, errors, the
// VAPID key route, readiness with VAPID keys) validate too.
func TestOpenAPIWebPush(t *testing.T) {
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
	h := newHarness(t, harnessOpts{mutate: func(c *proxy.Config) {
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
	}})
	for _, k := range keys {
		h.addSecret(k.Private.D.Text(16))
	}
	subscribe := func(vapidKey string) (*fakepush.Subscription, map[string]any) {
		t.Helper()
		sub, err := push.Subscribe(fakepush.SubscribeOptions{VAPIDKey: vapidKey})
		if err != nil {
			t.Fatal(err)
		}
		h.addSecret(strings.TrimPrefix(sub.Endpoint, push.URL()), sub.Keys.Auth)
		return sub, map[string]any{"endpoint": sub.Endpoint, "keys": map[string]any{"p256dh": sub.Keys.P256DH, "auth": sub.Keys.Auth}}
	}
	note := func(to map[string]any) map[string]any {
		return map[string]any{"to": map[string]any{"webpush": to}, "title": "Order shipped", "body": "On its way",
			"url": "https://shop.example/orders/1", "data": map[string]any{"order": "1234"}, "ttl": 600,
			"priority": "high", "collapse_id": "order-1234"}
	}
	post := func(path string, body any) specAnswer {
		t.Helper()
		return openAPIDo(t, h, specCall{method: "POST", path: path, body: body})
	}

	a := openAPIDo(t, h, specCall{method: "GET", path: "/v1/webpush/vapid-public-key"})
	if a.Status != 200 || a.Body["public_key"] != keys[0].PublicB64 {
		t.Errorf("vapid-public-key: %d %s", a.Status, a.Raw)
	}
	a = openAPIDo(t, h, specCall{method: "GET", path: "/readyz"})
	if wp, _ := a.Body["platforms"].(map[string]any)["webpush"].(map[string]any); a.Status != 200 || wp == nil || wp["status"] != "ok" {
		t.Errorf("readyz: %d %s", a.Status, a.Raw)
	}

	_, to := subscribe(keys[0].PublicB64)
	if a := post("/v1/notifications", note(to)); a.Status != 200 || a.Body["platform"] != "webpush" {
		t.Errorf("delivered: %d %s", a.Status, a.Raw)
	}
	_, to = subscribe(keys[1].PublicB64)
	to["vapid_key"] = "previous"
	n := note(to)
	n["webpush"] = map[string]any{"urgency": "low", "topic": "orders", "payload": "plain text"}
	if a := post("/v1/notifications", n); a.Status != 200 || a.Body["credential"] != "previous" {
		t.Errorf("delivered with the previous key: %d %s", a.Status, a.Raw)
	}
	_, to = subscribe(keys[0].PublicB64)
	n = note(to)
	n["dry_run"] = true
	if a := post("/v1/notifications", n); a.Status != 200 || a.Body["request"] == nil {
		t.Errorf("dry run: %d %s", a.Status, a.Raw)
	}

	gone, to := subscribe(keys[0].PublicB64)
	push.Script(gone.ID, fakepush.Response{Status: 410})
	expectAnswer(t, "unsubscribed", post("/v1/notifications", note(to)), 410, "recipient_gone")
	other, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := creds.ParseVAPIDKey(other)
	if err != nil {
		t.Fatal(err)
	}
	_, to = subscribe(otherKey.PublicB64)
	expectAnswer(t, "subscribed with another VAPID key", post("/v1/notifications", note(to)), 502, "vapid_key_mismatch")
	_, to = subscribe(keys[0].PublicB64)
	to["endpoint"] = "https://push.attacker.example/x"
	expectAnswer(t, "endpoint not a push service", post("/v1/notifications", note(to)), 400, "destination_forbidden")
	_, to = subscribe(keys[0].PublicB64)
	to["keys"] = map[string]any{"p256dh": "AAAA", "auth": "AAAA"}
	expectAnswer(t, "bad subscription keys", openAPIDo(t, h, specCall{method: "POST", path: "/v1/notifications", body: note(to), requestOff: true}),
		400, "invalid_recipient")

	// A batch across both platforms.
	_, to = subscribe(keys[0].PublicB64)
	a = post("/v1/notifications/batch", map[string]any{"notifications": []any{note(to), alert(h.token())}})
	if results, _ := a.Body["results"].([]any); a.Status != 200 || len(results) != 2 {
		t.Errorf("batch: %d %s", a.Status, a.Raw)
	}
}
