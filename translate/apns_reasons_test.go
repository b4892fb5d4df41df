package translate_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/translate"
)

// apnsReasonWant is what DESIGN.md "Normalised errors" says each of Apple's
// documented reasons must become. Written independently of
// translate.APNsReasons: a row added there without a row here fails
// TestAPNsReasonsTableIsCovered.
type apnsReasonWant struct {
	status    int // the status Apple documents for the reason
	reason    string
	code      translate.Code
	retryable bool // what the caller is told
	action    translate.Action
	policy    translate.RetryPolicy // what pushproxy does itself
}

var apnsReasonsWant = []apnsReasonWant{
	// 400: the request was bad.
	{400, "BadCollapseId", translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "BadDeviceToken", translate.CodeInvalidRecipient, false, translate.ActionRemoveRecipient, translate.RetryOtherHost},
	{400, "BadExpirationDate", translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "BadMessageId", translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "BadPriority", translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "BadTopic", translate.CodeTopicMismatch, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "DeviceTokenNotForTopic", translate.CodeTopicMismatch, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "DuplicateHeaders", translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "IdleTimeout", translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, translate.RetryNewConn},
	{400, "InvalidPushType", translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "MissingDeviceToken", translate.CodeInvalidRecipient, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "MissingTopic", translate.CodeTopicMismatch, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "PayloadEmpty", translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone},
	{400, "TopicDisallowed", translate.CodeTopicMismatch, false, translate.ActionFixRequest, translate.RetryNone},
	// 403: the credentials.
	{403, "BadCertificate", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone},
	{403, "BadCertificateEnvironment", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone},
	{403, "ExpiredProviderToken", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryFreshToken},
	{403, "Forbidden", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone},
	{403, "InvalidProviderToken", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone},
	{403, "MissingProviderToken", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNone},
	{403, "UnrelatedKeyIdInToken", translate.CodeCredentialsRejected, false, translate.ActionFixCredentials, translate.RetryNewConnOnce},
	{403, "BadEnvironmentKeyIdInToken", translate.CodeEnvironmentMismatch, false, translate.ActionFixCredentials, translate.RetryNone},
	// 404, 405: pushproxy (or a gateway) built a bad request.
	{404, "BadPath", translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone},
	{405, "MethodNotAllowed", translate.CodeInvalidRequest, false, translate.ActionFixRequest, translate.RetryNone},
	// 410: the device token is gone.
	{410, "ExpiredToken", translate.CodeRecipientGone, false, translate.ActionRemoveRecipient, translate.RetryNone},
	{410, "Unregistered", translate.CodeRecipientGone, false, translate.ActionRemoveRecipient, translate.RetryNone},
	// 413, 429, 5xx.
	{413, "PayloadTooLarge", translate.CodePayloadTooLarge, false, translate.ActionFixRequest, translate.RetryNone},
	{429, "TooManyProviderTokenUpdates", translate.CodeRateLimited, true, translate.ActionRetryLater, translate.RetryNone},
	{429, "TooManyRequests", translate.CodeRateLimited, true, translate.ActionRetryLater, translate.RetryBackoff},
	{500, "InternalServerError", translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, translate.RetryBackoff},
	{503, "ServiceUnavailable", translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, translate.RetryBackoff},
	{503, "Shutdown", translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater, translate.RetryNewConn},
}

// designStatus is DESIGN.md's table: the HTTP status of pushproxy's answer
// for each code.
var designStatus = map[translate.Code]int{
	"invalid_request":       400,
	"payload_too_large":     413,
	"invalid_recipient":     400,
	"recipient_gone":        410,
	"topic_mismatch":        400,
	"environment_mismatch":  400,
	"credentials_rejected":  502,
	"vapid_key_mismatch":    502,
	"credentials_missing":   503,
	"rate_limited":          429,
	"upstream_unavailable":  503,
	"upstream_timeout":      504,
	"destination_forbidden": 400,
	"unauthorized":          401,
	"overloaded":            503,
}

const testAPNsID = "aa6b7c8d-1e2f-4a3b-9c4d-5e6f7a8b9c0d"

func apnsBody(reason string) []byte { return []byte(`{"reason":"` + reason + `"}`) }

func TestFromAPNsDocumentedReasons(t *testing.T) {
	for _, w := range apnsReasonsWant {
		t.Run(w.reason, func(t *testing.T) {
			e := translate.FromAPNs(translate.APNsReply{Status: w.status, APNsID: testAPNsID, Body: apnsBody(w.reason)}, testNow)
			if e.Code != w.code {
				t.Errorf("code = %s, want %s", e.Code, w.code)
			}
			if e.Retryable != w.retryable {
				t.Errorf("retryable = %v, want %v", e.Retryable, w.retryable)
			}
			if e.Action != w.action {
				t.Errorf("action = %s, want %s", e.Action, w.action)
			}
			if strings.TrimSpace(e.Message) == "" || strings.TrimSpace(e.Hint) == "" {
				t.Errorf("message %q / hint %q must both be set", e.Message, e.Hint)
			}
			if e.Status() != designStatus[w.code] {
				t.Errorf("our status = %d, want %d for %s", e.Status(), designStatus[w.code], w.code)
			}
			if e.Platform != translate.PlatformAPNs {
				t.Errorf("platform = %q", e.Platform)
			}
			if e.Upstream == nil {
				t.Fatalf("no upstream")
			}
			if e.Upstream.Status != w.status || e.Upstream.Reason != w.reason || e.Upstream.APNsID != testAPNsID {
				t.Errorf("upstream = %+v", *e.Upstream)
			}
			if e.Upstream.Timestamp != 0 {
				t.Errorf("upstream timestamp = %d without one in the body", e.Upstream.Timestamp)
			}
			if e.RetryAfter != 0 {
				t.Errorf("retry_after = %d without a Retry-After header", e.RetryAfter)
			}
			if !strings.Contains(e.Error(), w.reason) {
				t.Errorf("Error() = %q does not name the reason", e.Error())
			}

			row, ok := translate.LookupAPNsReason(w.reason)
			if !ok {
				t.Fatalf("LookupAPNsReason(%q) found nothing", w.reason)
			}
			if row.Status != w.status {
				t.Errorf("table status = %d, Apple documents %d", row.Status, w.status)
			}
		})
	}
}

// TestAPNsReasonsRows walks every row of translate.APNsReasons and holds it
// to apnsReasonsWant: status, code (and pushproxy's status for it), what the
// caller is told (retryable, action, a hint), and what pushproxy does
// itself (policy). A policy that retries with back-off is for a passing
// condition, so its final answer tells the caller to retry later too.
func TestAPNsReasonsRows(t *testing.T) {
	want := map[string]apnsReasonWant{}
	for _, w := range apnsReasonsWant {
		want[w.reason] = w
	}
	for _, row := range translate.APNsReasons {
		t.Run(row.Reason, func(t *testing.T) {
			w, ok := want[row.Reason]
			if !ok {
				t.Fatalf("no expectation for %q", row.Reason)
			}
			if row.Status != w.status || row.Code != w.code || row.Code.HTTPStatus() != designStatus[w.code] {
				t.Errorf("status %d code %s (answered %d), want %d %s (%d)", row.Status, row.Code, row.Code.HTTPStatus(), w.status, w.code, designStatus[w.code])
			}
			if row.Retryable != w.retryable || row.Action != w.action {
				t.Errorf("caller told retryable=%v action=%s, want %v %s", row.Retryable, row.Action, w.retryable, w.action)
			}
			if row.Policy != w.policy {
				t.Errorf("pushproxy's policy %s, want %s", row.Policy, w.policy)
			}
			if strings.TrimSpace(row.Hint) == "" || strings.TrimSpace(row.Message) == "" {
				t.Errorf("message %q / hint %q", row.Message, row.Hint)
			}
			if row.Policy.BacksOff() && (!row.Retryable || row.Action != translate.ActionRetryLater) {
				t.Errorf("pushproxy retries it with back-off, but the caller is told retryable=%v action=%s", row.Retryable, row.Action)
			}
			if got := translate.APNsRowFor(row.Status, row.Reason); got.Reason != row.Reason || got.Policy != row.Policy {
				t.Errorf("APNsRowFor(%d, %q) = %q %s", row.Status, row.Reason, got.Reason, got.Policy)
			}
		})
	}
	// The exported constants are the reasons the senders switch on.
	for c, reason := range map[string]string{
		translate.APNsExpiredProviderToken: "ExpiredProviderToken", translate.APNsUnrelatedKeyIdInToken: "UnrelatedKeyIdInToken",
		translate.APNsIdleTimeout: "IdleTimeout", translate.APNsBadDeviceToken: "BadDeviceToken",
		translate.APNsTooManyProviderTokenUpdates: "TooManyProviderTokenUpdates", translate.APNsShutdown: "Shutdown",
	} {
		if c != reason {
			t.Errorf("constant %q for %q", c, reason)
		}
	}
}

// TestAPNsUndocumentedPolicy: a reason Apple does not document is retried
// with back-off when its status says the condition passes (429, 5xx), and
// answered at once otherwise.
func TestAPNsUndocumentedPolicy(t *testing.T) {
	for status, want := range map[int]translate.RetryPolicy{
		400: translate.RetryNone, 401: translate.RetryNone, 403: translate.RetryNone, 404: translate.RetryNone,
		410: translate.RetryNone, 413: translate.RetryNone, 429: translate.RetryBackoff,
		500: translate.RetryBackoff, 502: translate.RetryBackoff, 503: translate.RetryBackoff,
	} {
		row := translate.APNsRowFor(status, "SomethingNew")
		if row.Policy != want || row.Policy.BacksOff() != row.Retryable {
			t.Errorf("%d: policy %s retryable %v, want %s", status, row.Policy, row.Retryable, want)
		}
	}
}

func TestAPNsReasonsTableIsCovered(t *testing.T) {
	var want, got []string
	for _, w := range apnsReasonsWant {
		want = append(want, w.reason)
	}
	for _, r := range translate.APNsReasons {
		got = append(got, r.Reason)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		for _, r := range got {
			if !slices.Contains(want, r) {
				t.Errorf("translate.APNsReasons has %q, which this test does not check", r)
			}
		}
		for _, r := range want {
			if !slices.Contains(got, r) {
				t.Errorf("translate.APNsReasons lacks Apple's %q", r)
			}
		}
	}
	if len(slices.Compact(got)) != len(translate.APNsReasons) {
		t.Errorf("translate.APNsReasons has duplicate rows")
	}
}

func TestFromAPNsGoneTimestamp(t *testing.T) {
	inactive := time.Date(2026, 11, 19, 8, 30, 15, 250e6, time.UTC)
	ms := inactive.UnixMilli()
	for _, reason := range []string{"Unregistered", "ExpiredToken"} {
		body := []byte(`{"reason":"` + reason + `","timestamp":` + strconv.FormatInt(ms, 10) + `}`)
		e := translate.FromAPNs(translate.APNsReply{Status: 410, Body: body}, testNow)
		if e.Code != translate.CodeRecipientGone || e.Status() != 410 {
			t.Errorf("%s: code %s status %d", reason, e.Code, e.Status())
		}
		if e.Upstream.Timestamp != ms {
			t.Errorf("%s: upstream timestamp = %d, want %d (milliseconds)", reason, e.Upstream.Timestamp, ms)
		}
		if !strings.Contains(e.Hint, "2026-11-19T08:30:15Z") {
			t.Errorf("%s: hint %q does not give the UTC date 2026-11-19T08:30:15Z", reason, e.Hint)
		}
	}
	// Without a timestamp the hint has no date.
	e := translate.FromAPNs(translate.APNsReply{Status: 410, Body: apnsBody("Unregistered")}, testNow)
	if strings.Contains(e.Hint, "since") {
		t.Errorf("hint %q has a date without a timestamp", e.Hint)
	}
}

func TestFromAPNsRetryAfter(t *testing.T) {
	httpDate := func(t time.Time) string { return t.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") }
	for _, tc := range []struct {
		name       string
		retryAfter string
		now        time.Time
		want       int
	}{
		{"absent", "", testNow, 0},
		{"seconds", "30", testNow, 30},
		{"zero seconds", "0", testNow, 0},
		{"negative seconds", "-5", testNow, 0},
		{"http-date", httpDate(testNow.Add(90 * time.Second)), testNow, 90},
		{"http-date rounds up", httpDate(testNow.Add(90 * time.Second)), testNow.Add(500 * time.Millisecond), 90},
		{"http-date in the past", httpDate(testNow.Add(-time.Minute)), testNow, 0},
		{"garbage", "soon", testNow, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := translate.FromAPNs(translate.APNsReply{Status: 429, Body: apnsBody("TooManyRequests"), RetryAfter: tc.retryAfter}, tc.now)
			if e.RetryAfter != tc.want {
				t.Errorf("Retry-After %q → retry_after %d, want %d", tc.retryAfter, e.RetryAfter, tc.want)
			}
			if e.Code != translate.CodeRateLimited || !e.Retryable {
				t.Errorf("code %s retryable %v", e.Code, e.Retryable)
			}
		})
	}
}

func TestFromAPNsUnknownReasons(t *testing.T) {
	for _, tc := range []struct {
		status    int
		code      translate.Code
		retryable bool
		action    translate.Action
	}{
		{400, translate.CodeInvalidRequest, false, translate.ActionFixRequest},
		{401, translate.CodeCredentialsRejected, false, translate.ActionFixCredentials},
		{403, translate.CodeCredentialsRejected, false, translate.ActionFixCredentials},
		{404, translate.CodeInvalidRequest, false, translate.ActionFixRequest},
		{405, translate.CodeInvalidRequest, false, translate.ActionFixRequest},
		{410, translate.CodeRecipientGone, false, translate.ActionRemoveRecipient},
		{413, translate.CodePayloadTooLarge, false, translate.ActionFixRequest},
		{429, translate.CodeRateLimited, true, translate.ActionRetryLater},
		{500, translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater},
		{502, translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater},
		{503, translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater},
		{418, translate.CodeUpstreamUnavailable, true, translate.ActionRetryLater},
	} {
		for _, body := range []struct{ name, body, reason string }{
			{"undocumented reason", `{"reason":"SomethingNew"}`, "SomethingNew"},
			{"html body", `<html><body>Bad Gateway</body></html>`, ""},
			{"empty body", ``, ""},
			{"json without reason", `{"error":"x"}`, ""},
		} {
			t.Run(strconv.Itoa(tc.status)+" "+body.name, func(t *testing.T) {
				e := translate.FromAPNs(translate.APNsReply{Status: tc.status, Body: []byte(body.body)}, testNow)
				if e.Code != tc.code || e.Retryable != tc.retryable || e.Action != tc.action {
					t.Errorf("got %s/%v/%s, want %s/%v/%s", e.Code, e.Retryable, e.Action, tc.code, tc.retryable, tc.action)
				}
				if e.Message == "" || e.Hint == "" {
					t.Errorf("message %q / hint %q must both be set", e.Message, e.Hint)
				}
				if !strings.Contains(e.Message, strconv.Itoa(tc.status)) {
					t.Errorf("message %q does not give the status", e.Message)
				}
				if body.reason != "" && !strings.Contains(e.Message, strconv.Quote(body.reason)) {
					t.Errorf("message %q does not quote the undocumented reason", e.Message)
				}
				if e.Upstream == nil || e.Upstream.Status != tc.status || e.Upstream.Reason != body.reason {
					t.Errorf("upstream = %+v", e.Upstream)
				}
				if e.Status() != designStatus[tc.code] {
					t.Errorf("our status %d, want %d", e.Status(), designStatus[tc.code])
				}
			})
		}
	}
}

func TestParseAPNsBody(t *testing.T) {
	for _, tc := range []struct {
		body   string
		reason string
		ts     int64
	}{
		{`{"reason":"Unregistered","timestamp":1763632800000}`, "Unregistered", 1763632800000},
		{`{"reason":"BadTopic"}`, "BadTopic", 0},
		{`not json`, "", 0},
		{``, "", 0},
		{`{"reason":5}`, "", 0},
	} {
		r, ts := translate.ParseAPNsBody([]byte(tc.body))
		if r != tc.reason || ts != tc.ts {
			t.Errorf("ParseAPNsBody(%q) = %q, %d; want %q, %d", tc.body, r, ts, tc.reason, tc.ts)
		}
	}
}
