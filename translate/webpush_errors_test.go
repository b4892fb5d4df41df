package translate_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/translate"
)

// webPushAnswer is one answer a push service gives, with the body and
// headers it really sends (quoted from the services' documentation and
// from bug reports that show them), and what it must become.
type webPushAnswer struct {
	name    string
	service string
	status  int
	body    string
	header  map[string]string
	code    translate.Code
	retry   bool
	action  translate.Action
	reason  string // Upstream.Reason
}

var webPushAnswers = []webPushAnswer{
	// Mozilla autopush ("Error Codes"; bodies as reported in
	// web-push-libs/webpush-java#147 and mozilla-services/autopush#776).
	{"mozilla 400 errno 101", "mozilla", 400, `{"code": 400, "errno": 101, "error": "Bad Request", "message": "Missing necessary crypto keys."}`, nil, "invalid_request", false, "fix_request", "errno 101"},
	{"mozilla 400 errno 108", "mozilla", 400, `{"code": 400, "errno": 108, "error": "Bad Request", "message": "Invalid router type"}`, nil, "invalid_recipient", false, "remove_recipient", "errno 108"},
	{"mozilla 400 errno 110", "mozilla", 400, `{"code": 400, "errno": 110, "error": "Bad Request", "message": "Invalid crypto keys specified"}`, nil, "invalid_request", false, "fix_request", "errno 110"},
	{"mozilla 400 errno 111", "mozilla", 400, `{"code": 400, "errno": 111, "error": "Bad Request", "message": "Missing TTL value", "more_info": "http://autopush.readthedocs.io/en/latest/http.html#error-codes"}`, nil, "invalid_request", false, "fix_request", "errno 111"},
	// A 400 about the VAPID key or the header carrying it (autopush's
	// VAPID errors are errno 109; its Crypto-Key messages are errno 110,
	// quoted from autopush-rs's extract_public_key).
	{"mozilla 400 errno 109 key mismatch", "mozilla", 400, `{"code": 400, "errno": 109, "error": "Bad Request", "message": "VAPID public key mismatch"}`, nil, "vapid_key_mismatch", false, "resubscribe", "errno 109"},
	{"mozilla 400 errno 109 refused", "mozilla", 400, `{"code": 400, "errno": 109, "error": "Bad Request", "message": "Invalid Authorization header"}`, nil, "credentials_rejected", false, "fix_credentials", "errno 109"},
	{"mozilla 400 errno 110 p256ecdsa", "mozilla", 400, `{"code": 400, "errno": 110, "error": "Bad Request", "message": "Missing p256ecdsa in Crypto-Key header"}`, nil, "credentials_rejected", false, "fix_credentials", "errno 110"},
	{"mozilla 400 errno 110 invalid Crypto-Key", "mozilla", 400, `{"code": 400, "errno": 110, "error": "Bad Request", "message": "Invalid Crypto-Key header"}`, nil, "credentials_rejected", false, "fix_credentials", "errno 110"},
	{"mozilla 400 errno 111 authorization", "mozilla", 400, `{"code": 400, "errno": 111, "error": "Bad Request", "message": "Missing Authorization header"}`, nil, "credentials_rejected", false, "fix_credentials", "errno 111"},
	// … but not a 400 about the encryption headers.
	{"mozilla 400 errno 110 aes128gcm Crypto-Key", "mozilla", 400, `{"code": 400, "errno": 110, "error": "Bad Request", "message": "Invalid aes128gcm Crypto-Key header"}`, nil, "invalid_request", false, "fix_request", "errno 110"},
	{"mozilla 400 errno 110 dh", "mozilla", 400, `{"code": 400, "errno": 110, "error": "Bad Request", "message": "Missing dh value in Crypto-Key header"}`, nil, "invalid_request", false, "fix_request", "errno 110"},
	{"mozilla 400 errno 110 content-encoding", "mozilla", 400, `{"code": 400, "errno": 110, "error": "Bad Request", "message": "Unknown Content-Encoding header"}`, nil, "invalid_request", false, "fix_request", "errno 110"},
	{"mozilla 400 errno 112", "mozilla", 400, `{"code": 400, "errno": 112, "error": "Bad Request", "message": "Invalid TTL header value"}`, nil, "invalid_request", false, "fix_request", "errno 112"},
	{"mozilla 400 errno 113", "mozilla", 400, `{"code": 400, "errno": 113, "error": "Bad Request", "message": "Invalid Topic header value"}`, nil, "invalid_request", false, "fix_request", "errno 113"},
	{"mozilla 401 errno 109 missing header", "mozilla", 401, `{"code": 401, "errno": 109, "error": "Unauthorized", "more_info": "http://autopush.readthedocs.io/en/latest/http.html#error-codes", "message": "Request did not validate missing authorization header"}`, nil, "credentials_rejected", false, "fix_credentials", "errno 109"},
	{"mozilla 401 errno 109 key mismatch", "mozilla", 401, `{"code": 401, "errno": 109, "error": "Unauthorized", "more_info": "http://autopush.readthedocs.io/en/latest/http.html#error-codes", "message": "VAPID public key mismatch"}`, nil, "vapid_key_mismatch", false, "resubscribe", "errno 109"},
	{"mozilla 404 errno 102", "mozilla", 404, `{"code": 404, "errno": 102, "error": "Not Found", "message": "Invalid URL endpoint"}`, nil, "recipient_gone", false, "remove_recipient", "errno 102"},
	{"mozilla 410 errno 103", "mozilla", 410, `{"code": 410, "errno": 103, "error": "Gone", "message": "Expired URL endpoint"}`, nil, "recipient_gone", false, "remove_recipient", "errno 103"},
	{"mozilla 410 errno 105", "mozilla", 410, `{"code": 410, "errno": 105, "error": "Gone", "message": "Endpoint became unavailable during request"}`, nil, "recipient_gone", false, "remove_recipient", "errno 105"},
	{"mozilla 410 errno 106", "mozilla", 410, `{"errno": 106, "message": "No such subscription", "code": 410, "more_info": "http://autopush.readthedocs.io/en/latest/http.html#error-codes", "error": ""}`, nil, "recipient_gone", false, "remove_recipient", "errno 106"},
	{"mozilla 413 errno 104", "mozilla", 413, `{"code": 413, "errno": 104, "error": "Payload Too Large", "message": "Data payload too large"}`, nil, "payload_too_large", false, "fix_request", "errno 104"},
	{"mozilla 429 errno 201", "mozilla", 429, `{"code": 429, "errno": 201, "error": "Too Many Requests", "message": "Use exponential back-off for retries"}`, map[string]string{"Retry-After": "120"}, "rate_limited", true, "retry_later", "errno 201"},
	{"mozilla 500 errno 999", "mozilla", 500, `{"code": 500, "errno": 999, "error": "Internal Server Error", "message": "An unknown error occurred"}`, nil, "upstream_unavailable", true, "retry_later", "errno 999"},
	{"mozilla 502 errno 900", "mozilla", 502, `{"code": 502, "errno": 900, "error": "Bad Gateway", "message": "Internal Bridge misconfiguration"}`, nil, "upstream_unavailable", true, "retry_later", "errno 900"},
	{"mozilla 502 errno 901", "mozilla", 502, `{"code": 502, "errno": 901, "error": "Bad Gateway", "message": "Invalid authentication"}`, nil, "upstream_unavailable", true, "retry_later", "errno 901"},
	{"mozilla 502 errno 902", "mozilla", 502, `{"code": 502, "errno": 902, "error": "Bad Gateway", "message": "An error occurred while establishing a connection"}`, nil, "upstream_unavailable", true, "retry_later", "errno 902"},
	{"mozilla 502 errno 903", "mozilla", 502, `{"code": 502, "errno": 903, "error": "Bad Gateway", "message": "The request timed out"}`, nil, "upstream_unavailable", true, "retry_later", "errno 903"},
	{"mozilla 503 errno 201", "mozilla", 503, `{"code": 503, "errno": 201, "error": "Service Unavailable", "message": "Use exponential back-off for retries"}`, nil, "upstream_unavailable", true, "retry_later", "errno 201"},
	{"mozilla 503 errno 202", "mozilla", 503, `{"code": 503, "errno": 202, "error": "Service Unavailable", "message": "Immediate retry ok"}`, nil, "upstream_unavailable", true, "retry_later", "errno 202"},

	// Apple Web Push: {"reason": …} (bodies as reported in
	// matrix-org/sygnal#338 and web-push-libs/pywebpush#175).
	{"apple 403 BadJwtToken", "apple", 403, `{"reason":"BadJwtToken"}`, nil, "credentials_rejected", false, "fix_credentials", "BadJwtToken"},
	{"apple 403 VapidPkHashMismatch", "apple", 403, `{"reason":"VapidPkHashMismatch"}`, nil, "vapid_key_mismatch", false, "resubscribe", "VapidPkHashMismatch"},
	{"apple 400 VapidPkHashMismatch", "apple", 400, `{"reason":"VapidPkHashMismatch"}`, nil, "vapid_key_mismatch", false, "resubscribe", "VapidPkHashMismatch"},
	{"apple 400 BadWebPushTopic", "apple", 400, `{"reason":"BadWebPushTopic"}`, nil, "invalid_request", false, "fix_request", "BadWebPushTopic"},
	{"apple 400 BadTtl", "apple", 400, `{"reason":"BadTtl"}`, nil, "invalid_request", false, "fix_request", "BadTtl"},
	{"apple 400 BadUrgency", "apple", 400, `{"reason":"BadUrgency"}`, nil, "invalid_request", false, "fix_request", "BadUrgency"},
	{"apple 400 BadDeviceToken", "apple", 400, `{"reason":"BadDeviceToken"}`, nil, "invalid_recipient", false, "remove_recipient", "BadDeviceToken"},
	{"apple 410 Unregistered", "apple", 410, `{"reason":"Unregistered"}`, nil, "recipient_gone", false, "remove_recipient", "Unregistered"},
	{"apple 410 ExpiredToken", "apple", 410, `{"reason":"ExpiredToken"}`, nil, "recipient_gone", false, "remove_recipient", "ExpiredToken"},
	{"apple 413 PayloadTooLarge", "apple", 413, `{"reason":"PayloadTooLarge"}`, nil, "payload_too_large", false, "fix_request", "PayloadTooLarge"},
	{"apple 429 TooManyRequests", "apple", 429, `{"reason":"TooManyRequests"}`, map[string]string{"Retry-After": "30"}, "rate_limited", true, "retry_later", "TooManyRequests"},
	{"apple 500 InternalServerError", "apple", 500, `{"reason":"InternalServerError"}`, nil, "upstream_unavailable", true, "retry_later", "InternalServerError"},
	{"apple 503 ServiceUnavailable", "apple", 503, `{"reason":"ServiceUnavailable"}`, nil, "upstream_unavailable", true, "retry_later", "ServiceUnavailable"},
	{"apple undocumented 403", "apple", 403, `{"reason":"SomethingNew"}`, nil, "credentials_rejected", false, "fix_credentials", "SomethingNew"},

	// FCM: text and HTML bodies (as reported in web-push-libs/web-push#600,
	// web-push-php#325, pushpad/web-push#14, Tech4covid19#141, zaru/webpush#69,
	// danhper/elixir-web-push-encryption#1).
	{"fcm 400 UnauthorizedRegistration", "fcm", 400, "<HTML>\n<HEAD>\n<TITLE>UnauthorizedRegistration</TITLE>\n</HEAD>\n<BODY BGCOLOR=\"#FFFFFF\" TEXT=\"#000000\">\n<H1>UnauthorizedRegistration</H1>\n<H2>Error 400</H2>\n</BODY>\n</HTML>\n", nil, "credentials_rejected", false, "fix_credentials", "UnauthorizedRegistration"},
	{"fcm 400 crypto-key format", "fcm", 400, "crypto-key header had invalid format. crypto-key header should have the following format: p256ecdsa=base64(publicApplicationServerKey)\n", nil, "credentials_rejected", false, "fix_credentials", "crypto-key header had invalid format. crypto-key header should have the following format: p256ecdsa=base64(publicApplicationServerKey)"},
	{"fcm 400 authorization format", "fcm", 400, "authorization header had invalid format. authorization header should have the following format: vapid t=jwtToken; k=base64(publicApplicationServerKey)\n", nil, "credentials_rejected", false, "fix_credentials", "authorization header had invalid format. authorization header should have the following format: vapid t=jwtToken; k=base64(publicApplicationServerKey)"},
	{"fcm 400 key mismatch", "fcm", 400, "the key in the authorization header does not correspond to the sender ID used to subscribe this user.\n", nil, "vapid_key_mismatch", false, "resubscribe", "the key in the authorization header does not correspond to the sender ID used to subscribe this user."},
	{"fcm 400 InvalidTtlParameter", "fcm", 400, "<HTML>\n<HEAD>\n<TITLE>InvalidTtlParameter</TITLE>\n</HEAD>\n<BODY BGCOLOR=\"#FFFFFF\" TEXT=\"#000000\">\n<H1>InvalidTtlParameter</H1>\n<H2>Error 400</H2>\n</BODY>\n</HTML>\n", nil, "invalid_request", false, "fix_request", "InvalidTtlParameter"},
	{"fcm 400 other", "fcm", 400, "invalid request\n", nil, "invalid_recipient", false, "fix_request", "invalid request"},
	{"fcm 401 no authorization", "fcm", 401, "authorization header must be specified.\n", nil, "credentials_rejected", false, "fix_credentials", "authorization header must be specified."},
	{"fcm 403 VAPID mismatch", "fcm", 403, "the VAPID credentials in the authorization header do not correspond to the credentials used to create the subscriptions.\n", nil, "vapid_key_mismatch", false, "resubscribe", "the VAPID credentials in the authorization header do not correspond to the credentials used to create the subscriptions."},
	{"fcm 403 sender mismatch", "fcm", 403, "the key in the authorization header does not correspond to the sender ID used to subscribe this user. Please ensure you are using the correct sender ID and server Key from the Firebase console.\n", nil, "vapid_key_mismatch", false, "resubscribe", "the key in the authorization header does not correspond to the sender ID used to subscribe this user. Please ensure you are using the correct sender ID and server Key from the Firebase console."},
	{"fcm 403 bad JWT", "fcm", 403, "invalid JWT provided\n", nil, "credentials_rejected", false, "fix_credentials", "invalid JWT provided"},
	{"fcm 404 stale", "fcm", 404, "A valid push subscription endpoint should be specified in the URL as such: https://fcm.googleapis.com/wp/dHIoDxE7Hdg:APA91bH1Zj0kNa...\n", nil, "recipient_gone", false, "remove_recipient", "A valid push subscription endpoint should be specified in the URL as such: https://fcm.googleapis.com/wp/dHIoDxE7Hdg:APA91bH1Zj0kNa..."},
	{"fcm 410 unsubscribed", "fcm", 410, "push subscription has unsubscribed or expired.\n", nil, "recipient_gone", false, "remove_recipient", "push subscription has unsubscribed or expired."},
	{"fcm 410 NotRegistered HTML", "fcm", 410, `<HTML> <HEAD> <TITLE>NotRegistered</TITLE> </HEAD> <BODY BGCOLOR="#FFFFFF" TEXT="#000000"> <H1>NotRegistered</H1> <H2>Error 410</H2> </BODY> </HTML>`, nil, "recipient_gone", false, "remove_recipient", "NotRegistered"},
	{"fcm 413", "fcm", 413, "Request Entity Too Large\n", nil, "payload_too_large", false, "fix_request", "Request Entity Too Large"},
	{"fcm 429", "fcm", 429, "Too Many Requests\n", map[string]string{"Retry-After": "Fri, 20 Nov 2026 10:00:42 GMT"}, "rate_limited", true, "retry_later", "Too Many Requests"},
	{"fcm 500", "fcm", 500, "Internal Server Error\n", nil, "upstream_unavailable", true, "retry_later", "Internal Server Error"},
	{"fcm 503", "fcm", 503, "", nil, "upstream_unavailable", true, "retry_later", ""},

	// WNS ("Push notification service request and response headers").
	{"wns 400", "wns", 400, "", map[string]string{"X-WNS-Status": "dropped", "X-WNS-Error-Description": "Invalid TTL header"}, "invalid_request", false, "fix_request", "Invalid TTL header"},
	{"wns 400 VAPID", "wns", 400, "", map[string]string{"X-WNS-Status": "dropped", "X-WNS-Error-Description": "Invalid VAPID Authorization header"}, "credentials_rejected", false, "fix_credentials", "Invalid VAPID Authorization header"},
	{"wns 401", "wns", 401, "", map[string]string{"X-WNS-Error-Description": "Invalid VAPID token"}, "credentials_rejected", false, "fix_credentials", "Invalid VAPID token"},
	{"wns 403", "wns", 403, "", map[string]string{"X-WNS-Error-Description": "The VAPID public key does not match the channel"}, "vapid_key_mismatch", false, "resubscribe", "The VAPID public key does not match the channel"},
	{"wns 404", "wns", 404, "", map[string]string{"X-WNS-Status": "dropped", "X-WNS-Error-Description": "Channel not found"}, "recipient_gone", false, "remove_recipient", "Channel not found"},
	{"wns 406 throttled", "wns", 406, "", map[string]string{"X-WNS-Status": "channelthrottled"}, "rate_limited", true, "retry_later", "channelthrottled"},
	{"wns 406 description", "wns", 406, "", map[string]string{"X-WNS-Status": "dropped", "X-WNS-Error-Description": "Throttle limit exceeded"}, "rate_limited", true, "retry_later", "Throttle limit exceeded"},
	{"wns 410", "wns", 410, "", map[string]string{"X-WNS-Status": "dropped", "X-WNS-Error-Description": "Channel expired"}, "recipient_gone", false, "remove_recipient", "Channel expired"},
	{"wns 413", "wns", 413, "", map[string]string{"X-WNS-Status": "dropped", "X-WNS-Error-Description": "Payload too large"}, "payload_too_large", false, "fix_request", "Payload too large"},
	{"wns 500", "wns", 500, "", map[string]string{"X-WNS-Status": "dropped"}, "upstream_unavailable", true, "retry_later", "dropped"},
	{"wns 503", "wns", 503, "", map[string]string{"X-WNS-Error-Description": "Service unavailable"}, "upstream_unavailable", true, "retry_later", "Service unavailable"},

	// A push service pushproxy has no table for: by status.
	{"other 400", "other", 400, "", nil, "invalid_recipient", false, "fix_request", ""},
	{"other 401", "other", 401, "", nil, "credentials_rejected", false, "fix_credentials", ""},
	{"other 404", "other", 404, "", nil, "recipient_gone", false, "remove_recipient", ""},
	{"other 410", "other", 410, "", nil, "recipient_gone", false, "remove_recipient", ""},
	{"other 413", "other", 413, "", nil, "payload_too_large", false, "fix_request", ""},
	{"other 418", "other", 418, "", nil, "invalid_request", false, "fix_request", ""},
	{"other 429", "other", 429, "", nil, "rate_limited", true, "retry_later", ""},
	{"other 502", "other", 502, "", nil, "upstream_unavailable", true, "retry_later", ""},
	{"other 302", "other", 302, "", nil, "invalid_recipient", false, "resubscribe", ""},
	{"mozilla 301 bridge moved", "mozilla", 301, "", map[string]string{"Location": "https://updates.push.services.mozilla.com/wpush/v2/new"}, "invalid_recipient", false, "resubscribe", ""},
	{"other 100", "other", 100, "", nil, "upstream_unavailable", true, "retry_later", ""},
	// A Mozilla-shaped body on an allowed, unlisted host is still understood.
	{"mozilla body on other host", "other", 401, `{"code":401,"errno":109,"error":"Unauthorized","message":"VAPID public key mismatch"}`, nil, "vapid_key_mismatch", false, "resubscribe", "errno 109"},
	{"apple body on other host", "other", 403, `{"reason":"VapidPkHashMismatch"}`, nil, "vapid_key_mismatch", false, "resubscribe", "VapidPkHashMismatch"},
}

func TestFromWebPushEveryAnswer(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, a := range webPushAnswers {
		h := http.Header{}
		for k, v := range a.header {
			h.Set(k, v)
		}
		e := translate.FromWebPush(translate.WebPushReply{Status: a.status, Header: h, Body: []byte(a.body), Service: a.service}, now)
		if e.Code != a.code || e.Retryable != a.retry || e.Action != a.action {
			t.Errorf("%s: got %s retryable %v action %s, want %s %v %s", a.name, e.Code, e.Retryable, e.Action, a.code, a.retry, a.action)
		}
		if e.Platform != translate.PlatformWebPush || e.Upstream == nil || e.Upstream.Status != a.status || e.Upstream.Reason != a.reason {
			t.Errorf("%s: platform %q upstream %+v, want reason %q", a.name, e.Platform, e.Upstream, a.reason)
		}
		if e.Message == "" || e.Hint == "" {
			t.Errorf("%s: message %q hint %q", a.name, e.Message, e.Hint)
		}
		if e.Code.HTTPStatus() == 500 {
			t.Errorf("%s: code %s has no status", a.name, e.Code)
		}
		if strings.ContainsAny(e.Message, "\n\r") || strings.ContainsAny(e.Upstream.Reason, "\n\r") {
			t.Errorf("%s: control characters in %q / %q", a.name, e.Message, e.Upstream.Reason)
		}
		if a.header["Retry-After"] != "" && e.RetryAfter <= 0 {
			t.Errorf("%s: retry_after %d", a.name, e.RetryAfter)
		}
	}
}

// Every row of translate.WebPushReasons is reached by one of the answers above.
func TestWebPushReasonsTableIsCovered(t *testing.T) {
	now := time.Now()
	seen := map[int]bool{}
	for _, a := range webPushAnswers {
		h := http.Header{}
		for k, v := range a.header {
			h.Set(k, v)
		}
		e := translate.FromWebPush(translate.WebPushReply{Status: a.status, Header: h, Body: []byte(a.body), Service: a.service}, now)
		for i, row := range translate.WebPushReasons {
			if row.Message != "" && strings.HasPrefix(e.Message, row.Message) && row.Code == e.Code {
				seen[i] = true
			}
		}
	}
	for i, row := range translate.WebPushReasons {
		if !seen[i] {
			t.Errorf("row %d (%s %d %q %q) has no test answer", i, row.Service, row.Status, row.Reason, row.Contains)
		}
		if row.Hint == "" || row.Message == "" || row.Action == "" {
			t.Errorf("row %d incomplete", i)
		}
	}
}

func TestFromWebPushRetryAfterDate(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	h := http.Header{"Retry-After": {"Fri, 20 Nov 2026 10:00:42 GMT"}}
	e := translate.FromWebPush(translate.WebPushReply{Status: 429, Header: h, Service: "fcm"}, now)
	if e.RetryAfter != 42 {
		t.Fatalf("retry_after %d", e.RetryAfter)
	}
	h.Set("Retry-After", "-5")
	if e := translate.FromWebPush(translate.WebPushReply{Status: 429, Header: h}, now); e.RetryAfter != 0 {
		t.Fatalf("negative retry_after %d", e.RetryAfter)
	}
}

func TestFromWebPushBoundsQuotedText(t *testing.T) {
	body := strings.Repeat("é", 500) + "\x00\x1b"
	e := translate.FromWebPush(translate.WebPushReply{Status: 400, Body: []byte(body), Service: "fcm"}, time.Now())
	if len(e.Upstream.Reason) > 210 || len(e.Message) > 600 {
		t.Fatalf("reason %d bytes, message %d bytes", len(e.Upstream.Reason), len(e.Message))
	}
	if !strings.HasSuffix(e.Upstream.Reason, "…") {
		t.Fatalf("reason not cut: %q", e.Upstream.Reason)
	}
}

// TestWebPushPolicies: what pushproxy does about each answer is told apart
// from what the caller is told. It tries another VAPID key exactly when the
// service refused the key or its header (credentials_rejected,
// vapid_key_mismatch: the caller is told to fix credentials or resubscribe
// only once every key was refused); it retries with back-off exactly what
// the caller is told is retryable.
func TestWebPushPolicies(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	check := func(name string, code translate.Code, retryable bool, p translate.RetryPolicy) {
		t.Helper()
		keyRefusal := code == translate.CodeCredentialsRejected || code == translate.CodeVAPIDKeyMismatch
		if (p == translate.RetryOtherKey) != keyRefusal {
			t.Errorf("%s: %s with policy %s", name, code, p)
		}
		if p.BacksOff() != retryable || (p != translate.RetryNone && p != translate.RetryBackoff && p != translate.RetryOtherKey) {
			t.Errorf("%s: retryable %v with policy %s", name, retryable, p)
		}
	}
	for _, a := range webPushAnswers {
		h := http.Header{}
		for k, v := range a.header {
			h.Set(k, v)
		}
		e, p := translate.ClassifyWebPush(translate.WebPushReply{Status: a.status, Header: h, Body: []byte(a.body), Service: a.service}, now)
		check(a.name, e.Code, e.Retryable, p)
	}
	for i, row := range translate.WebPushReasons {
		check(fmt.Sprintf("row %d (%s %d %s %q)", i, row.Service, row.Status, row.Reason, row.Contains), row.Code, row.Retryable, row.Policy)
		if strings.TrimSpace(row.Hint) == "" || row.Code.HTTPStatus() == 500 {
			t.Errorf("row %d: hint %q code %s", i, row.Hint, row.Code)
		}
	}
	for _, c := range []struct {
		name string
		r    translate.WebPushReply
		want translate.RetryPolicy
	}{
		{"mozilla 400 errno 109", translate.WebPushReply{Status: 400, Body: []byte(`{"errno":109,"message":"VAPID public key mismatch"}`)}, translate.RetryOtherKey},
		{"fcm 400 crypto-key", translate.WebPushReply{Status: 400, Body: []byte("crypto-key header had invalid format"), Service: "fcm"}, translate.RetryOtherKey},
		{"apple 400 BadJwtToken", translate.WebPushReply{Status: 400, Body: []byte(`{"reason":"BadJwtToken"}`)}, translate.RetryOtherKey},
		{"fcm 400 other", translate.WebPushReply{Status: 400, Body: []byte("invalid request"), Service: "fcm"}, translate.RetryNone},
		{"mozilla 400 errno 113", translate.WebPushReply{Status: 400, Body: []byte(`{"errno":113,"message":"Invalid Topic header value"}`)}, translate.RetryNone},
		{"other 401", translate.WebPushReply{Status: 401}, translate.RetryOtherKey},
		{"other 503", translate.WebPushReply{Status: 503}, translate.RetryBackoff},
		{"other 410", translate.WebPushReply{Status: 410}, translate.RetryNone},
	} {
		if _, p := translate.ClassifyWebPush(c.r, now); p != c.want {
			t.Errorf("%s: policy %s, want %s", c.name, p, c.want)
		}
	}
}

// TestWebPushOtherHostMessages: a reply from a host on allow_endpoints
// names that host, and the format its reply had when it is known, never a
// service it is not; a listed service is still named.
func TestWebPushOtherHostMessages(t *testing.T) {
	now := time.Now()
	const host = "push.internal.example"
	for _, c := range []struct {
		name   string
		r      translate.WebPushReply
		prefix string
		not    string
	}{
		{"mozilla json", translate.WebPushReply{Status: 410, Body: []byte(`{"code":410,"errno":106,"error":"Gone","message":"No such subscription"}`)},
			host + ` answered HTTP 410 (in Mozilla autopush's format): the service says there is no such subscription (` + host + `: "No such subscription")`, "Mozilla autopush says"},
		{"apple json", translate.WebPushReply{Status: 403, Body: []byte(`{"reason":"BadJwtToken"}`)},
			host + ` answered HTTP 403 (in Apple Web Push's format): the service refused the VAPID JWT`, "Apple refused"},
		{"wns headers", translate.WebPushReply{Status: 404, Header: http.Header{"X-Wns-Status": {"dropped"}, "X-Wns-Error-Description": {"Channel not found"}}},
			host + ` answered HTTP 404 (in WNS's format): the service does not recognise this channel`, "WNS does"},
		{"fcm phrase", translate.WebPushReply{Status: 403, Body: []byte("the VAPID credentials in the authorization header do not correspond to the credentials used to create the subscriptions.")},
			host + ` answered HTTP 403 (in FCM's format): the service says the VAPID credentials`, "FCM says"},
		{"plain text, no row", translate.WebPushReply{Status: 400, Body: []byte("no thanks")},
			host + ` answered HTTP 400 (` + host + `: "no thanks")`, "format"},
		{"json errno, no row", translate.WebPushReply{Status: 400, Body: []byte(`{"errno":555,"message":"odd"}`)},
			host + ` answered HTTP 400 (in Mozilla autopush's format) (` + host + `: "odd")`, "Mozilla autopush answered"},
	} {
		c.r.Service, c.r.Host = translate.ServiceOther, host
		e := translate.FromWebPush(c.r, now)
		if !strings.HasPrefix(e.Message, c.prefix) || strings.Contains(e.Message, c.not) {
			t.Errorf("%s: message %q, want it to start %q and not say %q", c.name, e.Message, c.prefix, c.not)
		}
	}
	// A listed service is named as such, whatever host name is passed.
	e := translate.FromWebPush(translate.WebPushReply{Status: 410, Body: []byte("push subscription has unsubscribed or expired.\n"), Service: translate.ServiceFCM, Host: "fcm.googleapis.com"}, now)
	if !strings.HasPrefix(e.Message, "FCM says the push subscription has unsubscribed or expired") {
		t.Errorf("listed service: %q", e.Message)
	}
}
