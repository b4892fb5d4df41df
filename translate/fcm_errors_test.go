package translate_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/translate"
)

// fcmAnswer is one answer FCM gives, with the body it really sends (the
// shapes of https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
// and of Google APIs' error model, as quoted in firebase-admin SDK issues),
// and what it must become. Written independently of translate.FCMReasons:
// TestFCMReasonsTableIsCovered fails when a row has no answer here.
type fcmAnswer struct {
	name      string
	status    int
	body      string
	retry     string // Retry-After
	code      translate.Code
	retryable bool
	action    translate.Action
	policy    translate.RetryPolicy
	reason    string // Upstream.Reason
	hintHas   string // a phrase the hint (or message) must hold
}

func fcmErr(code int, status, message, details string) string {
	s := `{"error":{"code":` + strconv.Itoa(code) + `,"message":"` + message + `","status":"` + status + `"`
	if details != "" {
		s += `,"details":[` + details + `]`
	}
	return s + `}}`
}

func fcmDetail(code string) string {
	return `{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"` + code + `"}`
}

func badRequest(field, desc string) string {
	return `{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"` + field + `","description":"` + desc + `"}]}`
}

var fcmAnswers = []fcmAnswer{
	{"invalid token", 400, fcmErr(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", fcmDetail("INVALID_ARGUMENT")), "",
		translate.CodeInvalidRecipient, false, translate.ActionRemoveRecipient, translate.RetryNone, "INVALID_ARGUMENT", "to.fcm.token"},
	{"invalid token field violation", 400, fcmErr(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", fcmDetail("INVALID_ARGUMENT")+","+badRequest("message.token", "Invalid registration token")), "",
		translate.CodeInvalidRecipient, false, translate.ActionRemoveRecipient, translate.RetryNone, "INVALID_ARGUMENT", "to.fcm.token"},
	{"invalid field", 400, fcmErr(400, "INVALID_ARGUMENT", "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), abc", badRequest("message.android.ttl", "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), abc")), "",
		translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone, "INVALID_ARGUMENT", "message.android.ttl"},
	{"invalid data value", 400, fcmErr(400, "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value' (TYPE_STRING), 12", fcmDetail("INVALID_ARGUMENT")+","+badRequest("message.data[0].value", "Invalid value at 'message.data[0].value' (TYPE_STRING), 12")), "",
		translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone, "INVALID_ARGUMENT", "message.data[0].value"},
	{"invalid argument without violations", 400, fcmErr(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", fcmDetail("INVALID_ARGUMENT")), "",
		translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone, "INVALID_ARGUMENT", "Request contains an invalid argument."},
	{"unregistered", 404, fcmErr(404, "NOT_FOUND", "Requested entity was not found.", fcmDetail("UNREGISTERED")), "",
		translate.CodeRecipientGone, false, translate.ActionRemoveRecipient, translate.RetryNone, "UNREGISTERED", "delete this token"},
	{"sender id mismatch", 403, fcmErr(403, "PERMISSION_DENIED", "SenderId mismatch", fcmDetail("SENDER_ID_MISMATCH")), "",
		translate.CodeTopicMismatch, false, translate.ActionFixRequest, translate.RetryNone, "SENDER_ID_MISMATCH", `"proj-a"`},
	{"quota exceeded", 429, fcmErr(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute'", fcmDetail("QUOTA_EXCEEDED")), "30",
		translate.CodeRateLimited, true, translate.ActionRetryLater, translate.RetryBackoff, "QUOTA_EXCEEDED", "retry_after"},
	{"unavailable", 503, fcmErr(503, "UNAVAILABLE", "The service is currently unavailable.", fcmDetail("UNAVAILABLE")), "",
		translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, translate.RetryBackoff, "UNAVAILABLE", "retry later"},
	{"unavailable without detail", 503, fcmErr(503, "UNAVAILABLE", "The service is currently unavailable.", ""), "",
		translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, translate.RetryBackoff, "UNAVAILABLE", "retry later"},
	{"internal", 500, fcmErr(500, "INTERNAL", "Internal error encountered.", fcmDetail("INTERNAL")), "",
		translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, translate.RetryBackoff, "INTERNAL", "retry later"},
	{"third party auth", 401, fcmErr(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", fcmDetail("THIRD_PARTY_AUTH_ERROR")), "",
		translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone, "THIRD_PARTY_AUTH_ERROR", "Firebase console"},
	{"third party auth as 400", 400, fcmErr(400, "INVALID_ARGUMENT", "Auth error from APNS or Web Push Service", fcmDetail("THIRD_PARTY_AUTH_ERROR")), "",
		translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone, "THIRD_PARTY_AUTH_ERROR", "Firebase console"},
	{"apns auth (old name)", 401, fcmErr(401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", fcmDetail("APNS_AUTH_ERROR")), "",
		translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone, "APNS_AUTH_ERROR", "Firebase console"},
	{"access token refused", 401, fcmErr(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", ""), "",
		translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryFreshToken, "UNAUTHENTICATED", "clock"},
	{"401 without a body", 401, ``, "",
		translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryFreshToken, "", "clock"},
	{"api disabled", 403, fcmErr(403, "PERMISSION_DENIED", "Firebase Cloud Messaging API has not been used in project 123456 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/fcm.googleapis.com/overview?project=123456 then retry.",
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED","domain":"googleapis.com"}`), "",
		translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone, "PERMISSION_DENIED", "enable the Firebase Cloud Messaging API"},
	{"missing role", 403, fcmErr(403, "PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/proj-a' (or it may not exist).",
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"IAM_PERMISSION_DENIED","domain":"cloudresourcemanager.googleapis.com"}`), "",
		translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone, "PERMISSION_DENIED", "Firebase Cloud Messaging API Admin role"},
	{"unknown project", 404, fcmErr(404, "NOT_FOUND", "Requested entity was not found.", ""), "",
		translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone, "NOT_FOUND", "project_id"},
	// Answers without a row: a code from the status.
	{"gateway 502 html", 502, `<html><body>Bad Gateway</body></html>`, "",
		translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, translate.RetryBackoff, "", "retry later"},
	{"unspecified error", 500, fcmErr(500, "UNKNOWN", "Unknown error", fcmDetail("UNSPECIFIED_ERROR")), "",
		translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, translate.RetryBackoff, "UNSPECIFIED_ERROR", "retry later"},
	{"413", 413, `payload too large`, "",
		translate.CodePayloadTooLarge, false, translate.ActionFixRequest, translate.RetryNone, "", "shorten"},
	{"429 without detail", 429, fcmErr(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted", ""), "Wed, 02 Dec 2026 10:00:10 GMT",
		translate.CodeRateLimited, true, translate.ActionRetryLater, translate.RetryBackoff, "RESOURCE_EXHAUSTED", "retry_after"},
}

var fcmNow = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func TestFCMAnswers(t *testing.T) {
	t.Parallel()
	for _, a := range fcmAnswers {
		h := http.Header{}
		if a.retry != "" {
			h.Set("Retry-After", a.retry)
		}
		e, policy := translate.ClassifyFCM(translate.FCMReply{Status: a.status, Header: h, Body: []byte(a.body), Project: "proj-a", Token: fcmTestToken}, fcmNow)
		if e.Code != a.code || e.Retryable != a.retryable || e.Action != a.action || policy != a.policy {
			t.Errorf("%s: %s retryable %v action %s policy %s; want %s %v %s %s", a.name, e.Code, e.Retryable, e.Action, policy, a.code, a.retryable, a.action, a.policy)
		}
		if e.Platform != "fcm" || e.Upstream == nil || e.Upstream.Status != a.status || e.Upstream.Reason != a.reason {
			t.Errorf("%s: platform %q upstream %+v, want reason %q", a.name, e.Platform, e.Upstream, a.reason)
		}
		if e.Hint == "" || e.Message == "" {
			t.Errorf("%s: empty hint or message: %+v", a.name, e)
		}
		if !strings.Contains(e.Hint+" "+e.Message+" "+e.Field, a.hintHas) {
			t.Errorf("%s: %q not in message %q / hint %q / field %q", a.name, a.hintHas, e.Message, e.Hint, e.Field)
		}
		if a.retry != "" && e.RetryAfter <= 0 {
			t.Errorf("%s: retry_after %d", a.name, e.RetryAfter)
		}
		if e.Code.HTTPStatus() != e.Status() {
			t.Errorf("%s: status", a.name)
		}
	}
}

func TestFCMAnswerRetryAfter(t *testing.T) {
	t.Parallel()
	h := http.Header{"Retry-After": []string{"Wed, 02 Dec 2026 10:00:10 GMT"}}
	e := translate.FromFCM(translate.FCMReply{Status: 429, Header: h, Body: []byte(fcmErr(429, "RESOURCE_EXHAUSTED", "q", fcmDetail("QUOTA_EXCEEDED")))}, fcmNow)
	if e.RetryAfter != 10 {
		t.Fatalf("retry_after %d, want 10", e.RetryAfter)
	}
}

// Every row of the table has an answer in fcmAnswers, so no row goes
// untested.
func TestFCMReasonsTableIsCovered(t *testing.T) {
	t.Parallel()
	for _, row := range translate.FCMReasons {
		covered := false
		for _, a := range fcmAnswers {
			b, _ := translate.ParseFCMError([]byte(a.body))
			if got := translate.FCMRowFor(a.status, b); got.Key == row.Key && got.Contains == row.Contains {
				covered = true
			}
		}
		if !covered {
			t.Errorf("row %d %s %q has no answer in fcmAnswers", row.Status, row.Key, row.Contains)
		}
		if row.Hint == "" || row.Message == "" || row.Action == "" {
			t.Errorf("row %s: empty hint, message or action", row.Key)
		}
		if row.Retryable != (row.Code == translate.CodeRateLimited || row.Code == translate.CodeUpstreamUnavailable) {
			t.Errorf("row %s: retryable %v for %s", row.Key, row.Retryable, row.Code)
		}
	}
}

// FCM's messages and field violations may echo the registration token: it
// never reaches the error.
func TestFCMAnswerHidesToken(t *testing.T) {
	t.Parallel()
	body := fcmErr(400, "INVALID_ARGUMENT", "Invalid value at 'message.token', "+fcmTestToken,
		badRequest("message.data[0].value", "value "+fcmTestToken+" is not a string"))
	e := translate.FromFCM(translate.FCMReply{Status: 400, Body: []byte(body), Token: fcmTestToken}, fcmNow)
	all := e.Message + e.Hint + e.Upstream.Reason
	if strings.Contains(all, fcmTestToken) || !strings.Contains(all, translate.FingerprintString(fcmTestToken)) {
		t.Fatalf("token shown or not fingerprinted: %q", all)
	}
}

func TestFCMTokenAnswers(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		reply  translate.FCMTokenReply
		code   translate.Code
		policy translate.RetryPolicy
		has    string
	}{
		{"invalid_grant", translate.FCMTokenReply{Status: 400, ErrorCode: "invalid_grant", Description: "Invalid JWT Signature.", ClientEmail: "push@proj-a.iam.gserviceaccount.com"},
			translate.CodeCredentialsRejected, translate.RetryNone, "clock"},
		{"invalid_grant skew", translate.FCMTokenReply{Status: 400, ErrorCode: "invalid_grant", Description: "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."},
			translate.CodeCredentialsRejected, translate.RetryNone, "deleted or disabled"},
		{"invalid_client", translate.FCMTokenReply{Status: 401, ErrorCode: "invalid_client", Description: "The OAuth client was not found."},
			translate.CodeCredentialsRejected, translate.RetryNone, "still exists"},
		{"unauthorized_client", translate.FCMTokenReply{Status: 401, ErrorCode: "unauthorized_client"},
			translate.CodeCredentialsRejected, translate.RetryNone, "enabled"},
		{"invalid_scope", translate.FCMTokenReply{Status: 400, ErrorCode: "invalid_scope"},
			translate.CodeCredentialsRejected, translate.RetryNone, "token endpoint"},
		{"5xx", translate.FCMTokenReply{Status: 503},
			translate.CodeUpstreamUnavailable, translate.RetryBackoff, "retry later"},
		{"unreachable", translate.FCMTokenReply{Transport: "connection refused"},
			translate.CodeUpstreamUnavailable, translate.RetryBackoff, "connection refused"},
		{"other 4xx", translate.FCMTokenReply{Status: 403},
			translate.CodeCredentialsRejected, translate.RetryNone, "disabled"},
	} {
		e, p := translate.ClassifyFCMToken(c.reply, fcmNow)
		if e.Code != c.code || p != c.policy || e.Platform != "fcm" || e.Hint == "" {
			t.Errorf("%s: %s policy %s hint %q", c.name, e.Code, p, e.Hint)
		}
		if !strings.Contains(e.Message+" "+e.Hint, c.has) {
			t.Errorf("%s: %q not in %q / %q", c.name, c.has, e.Message, e.Hint)
		}
		if c.reply.Description != "" && !strings.Contains(e.Message, c.reply.Description) {
			t.Errorf("%s: description missing from %q", c.name, e.Message)
		}
	}
	for _, row := range translate.FCMTokenReasons {
		if e, _ := translate.ClassifyFCMToken(translate.FCMTokenReply{Status: row.Status, ErrorCode: row.Key}, fcmNow); e.Message != row.Message {
			t.Errorf("token row %s not found: %q", row.Key, e.Message)
		}
	}
}

func TestParseFCMError(t *testing.T) {
	t.Parallel()
	b, ok := translate.ParseFCMError([]byte(fcmErr(400, "INVALID_ARGUMENT", "m", fcmDetail("INVALID_ARGUMENT")+","+badRequest("message.token", "d")+`,{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"R"},"junk",{"@type":5}`)))
	if !ok || b.HTTPCode != 400 || b.Status != "INVALID_ARGUMENT" || b.ErrorCode != "INVALID_ARGUMENT" || b.InfoReason != "R" ||
		len(b.FieldViolations) != 1 || b.FieldViolations[0].Field != "message.token" || b.Key() != "INVALID_ARGUMENT" {
		t.Fatalf("%+v %v", b, ok)
	}
	for _, bad := range []string{``, `null`, `{}`, `{"error":null}`, `<html>`, `{"error":"x"}`, `[1]`} {
		if _, ok := translate.ParseFCMError([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseFCMError: the decoder and the classifier never panic, and
// whatever the body, the answer is a complete error whose code follows the
// table or the status.
func FuzzParseFCMError(f *testing.F) {
	for _, a := range fcmAnswers {
		f.Add(a.status, []byte(a.body))
	}
	f.Add(400, []byte(`{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":null}]}}`))
	f.Add(401, []byte(`{"error":{"details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":7}]}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		b, ok := translate.ParseFCMError(body)
		if !ok && (b.ErrorCode != "" || b.Status != "" || len(b.FieldViolations) != 0) {
			t.Fatalf("not parsed but %+v", b)
		}
		e, policy := translate.ClassifyFCM(translate.FCMReply{Status: status, Body: body, Project: "p", Token: fcmTestToken}, fcmNow)
		if e == nil || e.Code == "" || e.Message == "" || e.Hint == "" || e.Action == "" || e.Platform != "fcm" || e.Upstream == nil {
			t.Fatalf("incomplete error %+v", e)
		}
		if policy.BacksOff() != e.Retryable {
			t.Fatalf("policy %s but retryable %v (%s)", policy, e.Retryable, e.Code)
		}
		if strings.Contains(e.Message+e.Hint, fcmTestToken) {
			t.Fatalf("token echoed")
		}
	})
}
