package translate_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/translate"
)

// localCodes are the codes the local API adds to DESIGN.md's table (the
// README's table lists them too): a path or method it does not have, and
// its own failure.
var localCodes = map[translate.Code]int{"not_found": 404, "method_not_allowed": 405, "internal_error": 500}

func TestCodeHTTPStatus(t *testing.T) {
	if len(translate.Codes) != len(designStatus)+len(localCodes) {
		t.Errorf("translate.Codes has %d codes, DESIGN.md's table %d and the local API %d", len(translate.Codes), len(designStatus), len(localCodes))
	}
	seen := map[translate.Code]bool{}
	for _, c := range translate.Codes {
		if seen[c] {
			t.Errorf("code %s listed twice", c)
		}
		seen[c] = true
		want, ok := designStatus[c]
		if !ok {
			want, ok = localCodes[c]
		}
		if !ok {
			t.Errorf("code %s is not in DESIGN.md's table", c)
			continue
		}
		if got := c.HTTPStatus(); got != want {
			t.Errorf("%s.HTTPStatus() = %d, want %d", c, got, want)
		}
		if !regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`).MatchString(string(c)) {
			t.Errorf("code %q is not snake_case", c)
		}
	}
	if got := translate.Code("no_such_code").HTTPStatus(); got != 500 {
		t.Errorf("unknown code → %d, want 500", got)
	}
}

// TestEveryCodeHasAHint: an error built without a hint gets its code's.
func TestEveryCodeHasAHint(t *testing.T) {
	hints := map[string]translate.Code{}
	for _, c := range translate.Codes {
		h := translate.DefaultHint(c)
		if h == "" || h == translate.DefaultHint("no_such_code") {
			t.Errorf("%s has no hint of its own", c)
		}
		if other, dup := hints[h]; dup {
			t.Errorf("%s and %s share a hint", c, other)
		}
		hints[h] = c
		if e := translate.NewError(c, "m", ""); e.Hint != h {
			t.Errorf("NewError(%s) hint %q", c, e.Hint)
		}
	}
	for _, e := range []*translate.Error{translate.Invalid("", "x"), translate.Invalid("to.apns.token", "x"), translate.InvalidRecipient("to.apns.token", "x")} {
		if e.Hint == "" {
			t.Errorf("%+v has no hint", e)
		}
	}
}

func TestNewErrorDefaults(t *testing.T) {
	for _, tc := range []struct {
		code      translate.Code
		action    translate.Action
		retryable bool
	}{
		{translate.CodeInvalidRequest, translate.ActionFixRequest, false},
		{translate.CodePayloadTooLarge, translate.ActionFixRequest, false},
		{translate.CodeInvalidRecipient, translate.ActionRemoveRecipient, false},
		{translate.CodeRecipientGone, translate.ActionRemoveRecipient, false},
		{translate.CodeTopicMismatch, translate.ActionFixRequest, false},
		{translate.CodeEnvironmentMismatch, translate.ActionFixRequest, false},
		{translate.CodeCredentialsRejected, translate.ActionFixCredentials, false},
		{translate.CodeVAPIDKeyMismatch, translate.ActionResubscribe, false},
		{translate.CodeCredentialsMissing, translate.ActionFixCredentials, false},
		{translate.CodeRateLimited, translate.ActionRetryLater, true},
		{translate.CodeUpstreamUnavailable, translate.ActionRetryLater, true},
		{translate.CodeUpstreamTimeout, translate.ActionRetryLater, true},
		{translate.CodeDestinationForbidden, translate.ActionFixRequest, false},
		{translate.CodeUnauthorized, translate.ActionFixCredentials, false},
		{translate.CodeOverloaded, translate.ActionRetryLater, true},
	} {
		e := translate.NewError(tc.code, "m", "h")
		if e.Action != tc.action || e.Retryable != tc.retryable {
			t.Errorf("NewError(%s): action %s retryable %v; want %s %v", tc.code, e.Action, e.Retryable, tc.action, tc.retryable)
		}
		if e.Status() != designStatus[tc.code] {
			t.Errorf("NewError(%s).Status() = %d", tc.code, e.Status())
		}
	}
}

func TestErrorJSONShape(t *testing.T) {
	e := translate.FromAPNs(translate.APNsReply{
		Status: 410, APNsID: testAPNsID,
		Body:       []byte(`{"reason":"Unregistered","timestamp":1763632800000}`),
		RetryAfter: "30",
	}, testNow)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"code":        "recipient_gone",
		"message":     e.Message,
		"hint":        e.Hint,
		"retryable":   false,
		"action":      "remove_recipient",
		"retry_after": 30.0,
		"platform":    "apns",
		"upstream": map[string]any{
			"status": 410.0, "reason": "Unregistered", "timestamp": 1763632800000.0, "apns_id": testAPNsID,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON\n got %s\nwant %v", b, want)
	}

	// retryable is always present, even when false; empty optional fields are not.
	b, _ = json.Marshal(translate.Invalid("", "bad"))
	s := string(b)
	if !strings.Contains(s, `"retryable":false`) {
		t.Errorf("retryable missing: %s", s)
	}
	// hint is always present and never empty: the contract promises one.
	if !strings.Contains(s, `"hint":"fix the request`) {
		t.Errorf("hint missing: %s", s)
	}
	for _, k := range []string{"retry_after", "platform", "upstream", "field"} {
		if strings.Contains(s, `"`+k+`"`) {
			t.Errorf("empty %s present: %s", k, s)
		}
	}
}

func TestInvalidHelpers(t *testing.T) {
	e := translate.Invalid("to.apns.topic", "is required: %s", "the bundle ID")
	if e.Code != translate.CodeInvalidRequest || e.Field != "to.apns.topic" ||
		e.Message != "to.apns.topic: is required: the bundle ID" || e.Action != translate.ActionFixRequest {
		t.Errorf("Invalid = %+v", e)
	}
	if got := e.Error(); got != "invalid_request: to.apns.topic: is required: the bundle ID" {
		t.Errorf("Error() = %q", got)
	}
	e = translate.Invalid("", "empty %d", 1)
	if e.Message != "empty 1" || e.Field != "" {
		t.Errorf("Invalid without field = %+v", e)
	}
	e = translate.InvalidRecipient("to.apns.token", "bad")
	if e.Code != translate.CodeInvalidRecipient || e.Status() != 400 || e.Message != "to.apns.token: bad" ||
		e.Action != translate.ActionRemoveRecipient {
		t.Errorf("InvalidRecipient = %+v", e)
	}
	var asErr error = e
	if asErr.Error() == "" {
		t.Errorf("*Error is not a useful error")
	}
}

func TestFingerprint(t *testing.T) {
	hex8 := regexp.MustCompile(`^[0-9a-f]{8}$`)
	// SHA-256("abc") = ba7816bf 8f01cfea …
	if got := translate.Fingerprint([]byte("abc")); got != "ba7816bf" {
		t.Errorf(`Fingerprint("abc") = %q, want "ba7816bf"`, got)
	}
	// SHA-256("") = e3b0c442 …
	if got := translate.FingerprintString(""); got != "e3b0c442" {
		t.Errorf(`FingerprintString("") = %q, want "e3b0c442"`, got)
	}
	seen := map[string]string{}
	for _, s := range []string{testToken, strings.ToUpper(testToken), "https://fcm.googleapis.com/fcm/send/x", "k"} {
		a, b := translate.FingerprintString(s), translate.Fingerprint([]byte(s))
		if a != b || a != translate.FingerprintString(s) {
			t.Errorf("fingerprint of %q not stable: %q %q", s, a, b)
		}
		if !hex8.MatchString(a) {
			t.Errorf("fingerprint %q is not 8 lower-case hex digits", a)
		}
		if strings.Contains(s, a) {
			t.Errorf("fingerprint %q is part of its input", a)
		}
		if prev, dup := seen[a]; dup {
			t.Errorf("%q and %q share fingerprint %q", prev, s, a)
		}
		seen[a] = s
	}
}

func TestUUIDv4(t *testing.T) {
	var b [16]byte
	for i := range b {
		b[i] = 0xff
	}
	got := translate.UUIDv4(b)
	if got != "ffffffff-ffff-4fff-bfff-ffffffffffff" || !translate.IsUUID(got) {
		t.Errorf("UUIDv4 = %s", got)
	}
}
