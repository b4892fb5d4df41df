package translate

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// WebPushReason is one row of pushproxy's table of push service answers:
// which answer it is (service style, status, reason, and optionally
// phrases the service's message must contain), what the caller is told
// (Code, Retryable, Action, Message, Hint) and what pushproxy itself does
// before answering (Policy).
type WebPushReason struct {
	Service string // ServiceFCM, ServiceMozilla, ServiceApple, ServiceWNS
	Status  int    // 0: any status
	// Reason is how the answer names itself: Mozilla "errno 109", Apple's
	// JSON reason, WNS's X-WNS-Status or X-WNS-Error-Description; "" for
	// FCM's text bodies.
	Reason string
	// Contains, if set, is one or more phrases separated by "|"; one of
	// them must appear (case-insensitively) in the answer's message or body
	// text for the row to match.
	Contains string
	Code     Code
	// Retryable is the answer's retryable: whether the caller may send the
	// same notification again later, unchanged, and expect it to succeed.
	Retryable bool
	Action    Action
	// Policy is what pushproxy does itself before answering: RetryBackoff
	// (5xx, 429, throttling), RetryOtherKey (the push service refused the
	// VAPID key or the Authorization header: another configured key may be
	// the subscription's), or RetryNone.
	Policy  RetryPolicy
	Message string // what happened, in one sentence
	Hint    string // what an operator should check, in one sentence
}

const (
	hintVAPIDMismatch = "the subscription was created with another VAPID public key (applicationServerKey): keep the old key in webpush.keys until its subscribers have re-subscribed, or have the browser subscribe again with the key from GET /v1/webpush/vapid-public-key"
	hintVAPIDRefused  = "check webpush.subject (mailto:you@example.com or https://…, no spaces or angle brackets), this machine's clock (NTP), and that the key file is the one the subscriptions were made with"
	hintGone          = "delete this subscription: the user unsubscribed, revoked permission or the browser dropped it"
)

// WebPushReasons is the table of known push service answers. Rows with
// Contains come before the rows without for the same service and reason.
var WebPushReasons = []WebPushReason{
	// Mozilla autopush: JSON {code, errno, error, message} (autopush
	// "Error Codes").
	{ServiceMozilla, 400, "errno 101", "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"Mozilla autopush says the encryption keys are missing", "report this to pushproxy's maintainers: it always sends an aes128gcm body"},
	{ServiceMozilla, 400, "errno 108", "", CodeInvalidRecipient, false, ActionRemoveRecipient, RetryNone,
		"Mozilla autopush does not recognise the endpoint's router type", "the endpoint URL is corrupt; delete the subscription"},
	// A 400 about the VAPID key or the header that carries it (errno 109,
	// or errno 110/111 naming Crypto-Key's p256ecdsa, the Authorization
	// header or VAPID): another key may be the subscription's.
	{ServiceMozilla, 400, "errno 109", "mismatch", CodeVAPIDKeyMismatch, false, ActionResubscribe, RetryOtherKey,
		"Mozilla autopush says the VAPID public key does not match the subscription's", hintVAPIDMismatch},
	{ServiceMozilla, 400, "errno 109", "", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"Mozilla autopush refused the VAPID authorization", hintVAPIDRefused},
	{ServiceMozilla, 400, "errno 110", "p256ecdsa|missing crypto-key header|invalid crypto-key header|vapid", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"Mozilla autopush refused the VAPID public key in the Crypto-Key header", hintVAPIDRefused},
	{ServiceMozilla, 400, "errno 111", "authorization|crypto-key|vapid", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"Mozilla autopush says the VAPID Authorization or Crypto-Key header is missing", hintVAPIDRefused},
	{ServiceMozilla, 400, "errno 110", "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"Mozilla autopush refused the encryption keys", "report this to pushproxy's maintainers; if only this subscription fails, its keys may be corrupt"},
	{ServiceMozilla, 400, "errno 111", "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"Mozilla autopush says a required header is missing", "report this to pushproxy's maintainers: it always sends TTL and Content-Encoding"},
	{ServiceMozilla, 400, "errno 112", "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"Mozilla autopush refused the TTL", "send ttl between 0 and 2592000 seconds"},
	{ServiceMozilla, 400, "errno 113", "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"Mozilla autopush refused the Topic", "webpush.topic must be at most 32 base64url characters; or use collapse_id"},
	{ServiceMozilla, 401, "errno 109", "mismatch", CodeVAPIDKeyMismatch, false, ActionResubscribe, RetryOtherKey,
		"Mozilla autopush says the VAPID public key does not match the subscription's", hintVAPIDMismatch},
	{ServiceMozilla, 401, "errno 109", "", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"Mozilla autopush refused the VAPID authorization", hintVAPIDRefused},
	{ServiceMozilla, 404, "errno 102", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"Mozilla autopush says the endpoint is invalid", hintGone},
	{ServiceMozilla, 410, "errno 103", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"Mozilla autopush says the subscription has expired", hintGone},
	{ServiceMozilla, 410, "errno 105", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"Mozilla autopush says the endpoint became unavailable", hintGone},
	{ServiceMozilla, 410, "errno 106", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"Mozilla autopush says there is no such subscription", hintGone},
	{ServiceMozilla, 413, "errno 104", "", CodePayloadTooLarge, false, ActionFixRequest, RetryNone,
		"Mozilla autopush found the payload too large", "shorten the payload (at most 3993 bytes of plaintext)"},
	{ServiceMozilla, 429, "errno 201", "", CodeRateLimited, true, ActionRetryLater, RetryBackoff,
		"Mozilla autopush asks to back off", "send fewer notifications to this subscription; honour retry_after"},
	{ServiceMozilla, 500, "errno 999", "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"Mozilla autopush had an unknown error", "nothing to fix here; retry later"},
	{ServiceMozilla, 502, "errno 900", "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"Mozilla autopush's bridge is misconfigured", "nothing to fix here; retry later"},
	{ServiceMozilla, 502, "errno 901", "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"Mozilla autopush's bridge refused its authentication", "nothing to fix here; retry later"},
	{ServiceMozilla, 502, "errno 902", "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"Mozilla autopush could not reach its bridge", "nothing to fix here; retry later"},
	{ServiceMozilla, 502, "errno 903", "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"Mozilla autopush's bridge timed out", "nothing to fix here; retry later"},
	{ServiceMozilla, 503, "errno 201", "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"Mozilla autopush is unavailable and asks for exponential back-off", "nothing to fix here; retry later"},
	{ServiceMozilla, 503, "errno 202", "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"Mozilla autopush is unavailable and allows an immediate retry", "nothing to fix here; retry later"},

	// Apple Web Push: JSON {"reason": …}.
	{ServiceApple, 0, "BadJwtToken", "", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"Apple refused the VAPID JWT", "check webpush.subject (a mailto: or https: URL, no spaces or angle brackets, not localhost), this machine's clock, and that the subscription was made with one of the configured keys"},
	{ServiceApple, 0, "VapidPkHashMismatch", "", CodeVAPIDKeyMismatch, false, ActionResubscribe, RetryOtherKey,
		"Apple says the VAPID public key does not match the subscription's", hintVAPIDMismatch},
	{ServiceApple, 0, "BadWebPushTopic", "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"Apple refused the Topic", "webpush.topic must be at most 32 base64url characters; or use collapse_id"},
	{ServiceApple, 0, "BadTtl", "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"Apple refused the TTL", "send ttl as a whole number of seconds, 0 or more"},
	{ServiceApple, 0, "BadUrgency", "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"Apple refused the Urgency", "webpush.urgency must be very-low, low, normal or high"},
	{ServiceApple, 0, "BadDeviceToken", "", CodeInvalidRecipient, false, ActionRemoveRecipient, RetryNone,
		"Apple says the subscription's endpoint is invalid", "the endpoint URL is corrupt; delete the subscription"},
	{ServiceApple, 0, "Unregistered", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"Apple says the subscription is no longer valid", hintGone},
	{ServiceApple, 0, "ExpiredToken", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"Apple says the subscription has expired", hintGone},
	{ServiceApple, 0, "PayloadTooLarge", "", CodePayloadTooLarge, false, ActionFixRequest, RetryNone,
		"Apple found the payload too large", "shorten the payload (at most 3993 bytes of plaintext)"},
	{ServiceApple, 0, "TooManyRequests", "", CodeRateLimited, true, ActionRetryLater, RetryBackoff,
		"Apple says there were too many requests to this subscription", "send fewer notifications to this subscription; honour retry_after"},
	{ServiceApple, 0, "InternalServerError", "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"Apple's push service had an internal error", "nothing to fix here; retry later"},
	{ServiceApple, 0, "ServiceUnavailable", "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"Apple's push service is unavailable", "retry later"},

	// FCM: text or HTML bodies.
	{ServiceFCM, 400, "", "do not correspond|does not correspond|public key mismatch|vapid key mismatch", CodeVAPIDKeyMismatch, false, ActionResubscribe, RetryOtherKey,
		"FCM says the VAPID key does not correspond to the one the subscription was created with", hintVAPIDMismatch},
	{ServiceFCM, 400, "", "authorization header|crypto-key|p256ecdsa|vapid|applicationserverkey", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"FCM refused the VAPID key or the Authorization header that carries it", hintVAPIDRefused},
	{ServiceFCM, 400, "", "UnauthorizedRegistration", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"FCM refused the VAPID authorization (UnauthorizedRegistration)", hintVAPIDRefused},
	{ServiceFCM, 400, "", "InvalidTtlParameter", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"FCM refused the request's TTL header", "report this to pushproxy's maintainers: it always sends TTL"},
	{ServiceFCM, 401, "", "", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"FCM found no valid VAPID authorization", hintVAPIDRefused},
	{ServiceFCM, 403, "", "do not correspond", CodeVAPIDKeyMismatch, false, ActionResubscribe, RetryOtherKey,
		"FCM says the VAPID credentials do not correspond to the ones the subscription was created with", hintVAPIDMismatch},
	{ServiceFCM, 403, "", "does not correspond", CodeVAPIDKeyMismatch, false, ActionResubscribe, RetryOtherKey,
		"FCM says the key does not correspond to the one the subscription was created with", hintVAPIDMismatch},
	{ServiceFCM, 403, "", "", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"FCM refused the VAPID JWT", hintVAPIDRefused},
	{ServiceFCM, 404, "", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"FCM does not know this subscription (expired, or stale for over 270 days)", hintGone},
	{ServiceFCM, 410, "", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"FCM says the push subscription has unsubscribed or expired", hintGone},
	{ServiceFCM, 413, "", "", CodePayloadTooLarge, false, ActionFixRequest, RetryNone,
		"FCM found the payload too large", "shorten the payload (at most 3993 bytes of plaintext)"},
	{ServiceFCM, 429, "", "", CodeRateLimited, true, ActionRetryLater, RetryBackoff,
		"FCM says there were too many requests", "send fewer notifications; honour retry_after"},

	// WNS: X-WNS-Status and X-WNS-Error-Description headers.
	{ServiceWNS, 0, "channelthrottled", "", CodeRateLimited, true, ActionRetryLater, RetryBackoff,
		"WNS throttled this channel", "send fewer notifications to this subscription; honour retry_after"},
	{ServiceWNS, 400, "", "vapid|authorization|crypto-key", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"WNS refused the VAPID key or the Authorization header that carries it", hintVAPIDRefused},
	{ServiceWNS, 400, "", "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"WNS says one or more headers were specified incorrectly", "report this to pushproxy's maintainers with the error description"},
	{ServiceWNS, 401, "", "", CodeCredentialsRejected, false, ActionFixCredentials, RetryOtherKey,
		"WNS refused the VAPID authorization", hintVAPIDRefused},
	{ServiceWNS, 403, "", "", CodeVAPIDKeyMismatch, false, ActionResubscribe, RetryOtherKey,
		"WNS authenticated the request but does not let this key send to this subscription", hintVAPIDMismatch},
	{ServiceWNS, 404, "", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"WNS does not recognise this channel", hintGone},
	{ServiceWNS, 406, "", "", CodeRateLimited, true, ActionRetryLater, RetryBackoff,
		"WNS says the throttle limit was exceeded", "send fewer notifications; honour retry_after"},
	{ServiceWNS, 410, "", "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"WNS says the channel has expired", hintGone},
	{ServiceWNS, 413, "", "", CodePayloadTooLarge, false, ActionFixRequest, RetryNone,
		"WNS found the payload too large", "shorten the payload"},
}

// WebPushReply is what a push service answered to one request (not 2xx).
type WebPushReply struct {
	Status int
	Header http.Header
	Body   []byte // at most a few KiB: the sender truncates it
	// Service is WebPushService of the endpoint's host. The body's shape
	// decides the table (JSON with errno: Mozilla; JSON with reason: Apple;
	// X-WNS-* headers: WNS; text: FCM's phrases), so a service on an
	// unlisted host (allow_endpoints, a gateway) is still understood.
	Service string
	// Host is the endpoint's host name (never its path, which identifies
	// the subscriber). Messages about a service on an unlisted host
	// (Service "other") name the host, and the format its reply had,
	// rather than a service it is not.
	Host string
}

// serviceName is how messages name a service.
func serviceName(s string) string {
	switch s {
	case ServiceFCM:
		return "FCM"
	case ServiceMozilla:
		return "Mozilla autopush"
	case ServiceApple:
		return "Apple Web Push"
	case ServiceWNS:
		return "WNS"
	}
	return "the push service"
}

var htmlTitle = regexp.MustCompile(`(?is)<title>\s*(.*?)\s*</title>`)

// parsedReply is a reply's style and the phrases it carries.
type parsedReply struct {
	style  string // the table to use
	reason string // for Upstream.Reason
	text   string // the service's message (for Contains and for the message)
	shaped bool   // the style was read from the reply's shape (headers, JSON), not guessed
}

func parseWebPushReply(r WebPushReply) parsedReply {
	if r.Header != nil {
		st, desc := r.Header.Get("X-WNS-Status"), r.Header.Get("X-WNS-Error-Description")
		if st != "" || desc != "" {
			reason := desc
			if reason == "" || strings.EqualFold(st, "channelthrottled") {
				reason = strings.ToLower(st)
			}
			return parsedReply{style: ServiceWNS, reason: short(reason), text: desc, shaped: true}
		}
	}
	var j struct {
		Errno   *int   `json:"errno"`
		Message string `json:"message"`
		Error   string `json:"error"`
		Reason  string `json:"reason"`
	}
	if json.Unmarshal(r.Body, &j) == nil {
		switch {
		case j.Errno != nil:
			return parsedReply{style: ServiceMozilla, reason: "errno " + strconv.Itoa(*j.Errno), text: short(j.Message), shaped: true}
		case j.Reason != "":
			return parsedReply{style: ServiceApple, reason: short(j.Reason), text: short(j.Reason), shaped: true}
		}
	}
	text := strings.TrimSpace(string(r.Body))
	if m := htmlTitle.FindStringSubmatch(text); m != nil {
		text = m[1]
	}
	style := r.Service
	if style != ServiceWNS && style != ServiceMozilla && style != ServiceApple {
		style = ServiceFCM // FCM's phrases are the only text table
	}
	return parsedReply{style: style, reason: short(firstLine(text)), text: short(text)}
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// short bounds a phrase quoted from a service and strips control characters.
func short(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		cut := 200
		for cut > 0 && s[cut]&0xc0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// LookupWebPushReason returns the row for a service style, status, reason
// and message.
func LookupWebPushReason(service string, status int, reason, text string) (WebPushReason, bool) {
	lt := strings.ToLower(text)
	for _, row := range WebPushReasons {
		if row.Service != service || (row.Status != 0 && row.Status != status) {
			continue
		}
		if row.Reason != "" && !strings.EqualFold(row.Reason, reason) {
			continue
		}
		if row.Contains != "" && !containsAny(lt, row.Contains) {
			continue
		}
		return row, true
	}
	return WebPushReason{}, false
}

// containsAny says whether lower (lower-case text) contains one of the
// "|"-separated phrases.
func containsAny(lower, phrases string) bool {
	for p := range strings.SplitSeq(phrases, "|") {
		if p != "" && strings.Contains(lower, strings.ToLower(p)) {
			return true
		}
	}
	return false
}

// ClassifyWebPush normalises a push service's non-2xx answer and returns
// the retry policy of the answer's row: what the sender does before
// answering (RetryBackoff, RetryOtherKey or RetryNone), as opposed to the
// error's Retryable and Action, which tell the caller what to do with the
// final answer. now is the injected clock, used for an HTTP-date
// Retry-After. An answer without a row gets a code from its status: 400
// invalid_recipient (action fix_request: the service did not say the
// subscription itself is bad), 401/403 credentials_rejected, 404/410
// recipient_gone, 413 payload_too_large, 429 rate_limited, 5xx
// upstream_unavailable, 3xx (never followed) invalid_recipient with action
// resubscribe.
func ClassifyWebPush(r WebPushReply, now time.Time) (*Error, RetryPolicy) {
	p := parseWebPushReply(r)
	row, ok := LookupWebPushReason(p.style, r.Status, p.reason, p.text)
	if !ok {
		row = webPushByStatus(r.Status)
	}
	e := &Error{
		Code: row.Code, Message: row.Message, Hint: row.Hint,
		Retryable: row.Retryable, Action: row.Action, Platform: PlatformWebPush,
		Upstream: &Upstream{Status: r.Status, Reason: p.reason},
	}
	// who names the service in messages: a listed service by its name; an
	// unlisted host (allow_endpoints) by its host name, with the format its
	// reply had when that format is known.
	var who string
	if r.Service != "" && r.Service != ServiceOther {
		who = serviceName(r.Service)
		if !ok {
			e.Message = who + " answered HTTP " + strconv.Itoa(r.Status)
		}
	} else {
		who = r.Host
		if who == "" {
			who = "the push service"
		}
		e.Message = who + " answered HTTP " + strconv.Itoa(r.Status)
		if ok || p.shaped {
			e.Message += " (in " + serviceName(p.style) + "'s format)"
		}
		if ok {
			e.Message += ": " + neutralMessage(row.Message)
		}
	}
	if p.text != "" && !strings.Contains(e.Message, p.text) {
		e.Message += " (" + who + ": " + strconv.Quote(p.text) + ")"
	}
	if r.Header != nil {
		e.RetryAfter = RetryAfterSeconds(r.Header.Get("Retry-After"), now)
	}
	return e, row.Policy
}

// neutralMessage is a row's message without the service it names first
// ("Mozilla autopush says the subscription has expired" → "the service says
// the subscription has expired"), for a reply in that service's format from
// another host.
func neutralMessage(m string) string {
	for _, name := range []string{"Mozilla autopush", "Apple's push service", "Apple", "FCM", "WNS"} {
		if rest, ok := strings.CutPrefix(m, name); ok {
			return "the service" + rest
		}
	}
	return m
}

// webPushByStatus is the fallback for an answer no row describes.
func webPushByStatus(status int) WebPushReason {
	r := WebPushReason{Status: status}
	switch {
	case status == 400:
		// The service did not say the subscription itself is bad (rows
		// that do say so answer remove_recipient): the caller checks what
		// it sent rather than deleting a subscription that may be fine.
		r.Code, r.Action = CodeInvalidRecipient, ActionFixRequest
		r.Hint = "the push service did not say why: check the subscription was copied whole (endpoint and keys) and run with dry_run to see the request; delete the subscription only if it keeps being refused"
	case status == 401 || status == 403:
		r.Code, r.Action, r.Hint = CodeCredentialsRejected, ActionFixCredentials, hintVAPIDRefused
		r.Policy = RetryOtherKey
	case status == 404 || status == 410:
		r.Code, r.Action, r.Hint = CodeRecipientGone, ActionRemoveRecipient, hintGone
	case status == 413:
		r.Code, r.Action, r.Hint = CodePayloadTooLarge, ActionFixRequest, "shorten the payload"
	case status == 429:
		r.Code, r.Action, r.Retryable, r.Hint = CodeRateLimited, ActionRetryLater, true, "slow down; honour retry_after"
		r.Policy = RetryBackoff
	case status >= 500:
		r.Code, r.Action, r.Retryable, r.Hint = CodeUpstreamUnavailable, ActionRetryLater, true, "retry later"
		r.Policy = RetryBackoff
	case status >= 400:
		r.Code, r.Action = CodeInvalidRequest, ActionFixRequest
		r.Hint = "compare the request with RFC 8030; run with dry_run to see it"
	case status >= 300 && status < 400:
		// Mozilla's bridge answers 301 when an endpoint moved. pushproxy
		// never follows a redirect (it could lead anywhere).
		r.Code, r.Action = CodeInvalidRecipient, ActionResubscribe
		r.Hint = "the push service redirected this endpoint (pushproxy never follows redirects): the subscription has probably moved; have the browser subscribe again"
	default:
		r.Code, r.Action, r.Retryable, r.Hint = CodeUpstreamUnavailable, ActionRetryLater, true, "the push service answered an unexpected status; check the endpoint"
		r.Policy = RetryBackoff
	}
	return r
}
