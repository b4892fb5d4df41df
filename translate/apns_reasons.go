package translate

import (
	"encoding/json"
	"strconv"
	"time"
)

// APNsReason is one row of Apple's documented reason table ("Handling
// notification responses from APNs"), with what pushproxy makes of it: what
// the caller is told (Code, Retryable, Action, Message, Hint) and what
// pushproxy itself does before answering (Policy). Senders carry out the
// policy; the caller's fields describe the final answer, after it.
type APNsReason struct {
	Status int
	Reason string
	Code   Code
	// Retryable is the answer's retryable: whether the caller may send the
	// same notification again later, unchanged, and expect it to succeed.
	Retryable bool
	Action    Action
	// Policy is what pushproxy does itself before answering.
	Policy  RetryPolicy
	Message string // what happened, in one sentence
	Hint    string // what an operator should check, in one sentence
}

// APNs reasons, spelled as Apple spells them ("Handling notification
// responses from APNs"): the reason strings of APNsReasons, for code that
// must name one.
const (
	APNsBadCollapseId               = "BadCollapseId"
	APNsBadDeviceToken              = "BadDeviceToken"
	APNsBadExpirationDate           = "BadExpirationDate"
	APNsBadMessageId                = "BadMessageId"
	APNsBadPriority                 = "BadPriority"
	APNsBadTopic                    = "BadTopic"
	APNsDeviceTokenNotForTopic      = "DeviceTokenNotForTopic"
	APNsDuplicateHeaders            = "DuplicateHeaders"
	APNsIdleTimeout                 = "IdleTimeout"
	APNsInvalidPushType             = "InvalidPushType"
	APNsMissingDeviceToken          = "MissingDeviceToken"
	APNsMissingTopic                = "MissingTopic"
	APNsPayloadEmpty                = "PayloadEmpty"
	APNsTopicDisallowed             = "TopicDisallowed"
	APNsBadCertificate              = "BadCertificate"
	APNsBadCertificateEnvironment   = "BadCertificateEnvironment"
	APNsExpiredProviderToken        = "ExpiredProviderToken"
	APNsForbidden                   = "Forbidden"
	APNsInvalidProviderToken        = "InvalidProviderToken"
	APNsMissingProviderToken        = "MissingProviderToken"
	APNsUnrelatedKeyIdInToken       = "UnrelatedKeyIdInToken"
	APNsBadEnvironmentKeyIdInToken  = "BadEnvironmentKeyIdInToken"
	APNsBadPath                     = "BadPath"
	APNsMethodNotAllowed            = "MethodNotAllowed"
	APNsExpiredToken                = "ExpiredToken"
	APNsUnregistered                = "Unregistered"
	APNsPayloadTooLarge             = "PayloadTooLarge"
	APNsTooManyProviderTokenUpdates = "TooManyProviderTokenUpdates"
	APNsTooManyRequests             = "TooManyRequests"
	APNsInternalServerError         = "InternalServerError"
	APNsServiceUnavailable          = "ServiceUnavailable"
	APNsShutdown                    = "Shutdown"
)

// APNsReasons is Apple's table, every documented reason, in Apple's order.
var APNsReasons = []APNsReason{
	{400, APNsBadCollapseId, CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"APNs refused the collapse identifier", "keep collapse_id at 64 bytes or fewer"},
	{400, APNsBadDeviceToken, CodeInvalidRecipient, false, ActionRemoveRecipient, RetryOtherHost,
		"APNs says the device token is invalid",
		"check the token is for this environment (a development build's token only works on the sandbox host) and was copied in full as hex; otherwise delete it"},
	{400, APNsBadExpirationDate, CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"APNs refused the apns-expiration value", "send ttl as a whole number of seconds"},
	{400, APNsBadMessageId, CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"APNs refused the apns-id", "send id as a UUID, or leave it out"},
	{400, APNsBadPriority, CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"APNs refused the apns-priority for this push type", "background pushes must use priority normal (5)"},
	{400, APNsBadTopic, CodeTopicMismatch, false, ActionFixRequest, RetryNone,
		"APNs refused the apns-topic", "check the topic is the app's bundle ID and the push type's suffix (.voip, .push-type.liveactivity …) matches"},
	{400, APNsDeviceTokenNotForTopic, CodeTopicMismatch, false, ActionFixRequest, RetryNone,
		"the device token does not belong to this topic", "check the bundle ID: the token was issued to another app (or another team's key signs for this topic)"},
	{400, APNsDuplicateHeaders, CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"APNs saw a header twice", "report this to pushproxy's maintainers: it should never send duplicate headers"},
	{400, APNsIdleTimeout, CodeUpstreamUnavailable, true, ActionRetryLater, RetryNewConn,
		"APNs closed the idle connection", "nothing to fix: pushproxy retries on a new connection; retry later if it persists"},
	{400, APNsInvalidPushType, CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"APNs refused the apns-push-type", "use one of the push types Apple documents"},
	{400, APNsMissingDeviceToken, CodeInvalidRecipient, false, ActionFixRequest, RetryNone,
		"the device token is missing", "send to.apns.token"},
	{400, APNsMissingTopic, CodeTopicMismatch, false, ActionFixRequest, RetryNone,
		"APNs needs an apns-topic for this key", "set to.apns.topic or the credential's topics: a key that signs for several apps needs the bundle ID"},
	{400, APNsPayloadEmpty, CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"APNs found the payload empty", "give a title, body, badge, sound or data"},
	{400, APNsTopicDisallowed, CodeTopicMismatch, false, ActionFixRequest, RetryNone,
		"APNs does not allow pushing to this topic", "check the bundle ID belongs to the key's team (team ID) and push notifications are enabled for the app ID"},
	{403, APNsBadCertificate, CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"APNs refused the client certificate", "pushproxy uses provider tokens: check no TLS client certificate is forced by a gateway"},
	{403, APNsBadCertificateEnvironment, CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"APNs refused the credential for this environment", "check the credential's environment (production vs development host)"},
	{403, APNsExpiredProviderToken, CodeCredentialsRejected, false, ActionFixCredentials, RetryFreshToken,
		"APNs says the provider token is expired, even after a fresh one was signed", "check this machine's clock (NTP): a token's iat more than an hour off looks expired to Apple"},
	{403, APNsForbidden, CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"APNs forbade the request", "check the key is enabled for APNs in the developer account and not revoked"},
	{403, APNsInvalidProviderToken, CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"APNs refused the provider token", "check key_id matches the .p8 file (AuthKey_<KEYID>.p8), team_id is the team that owns the key, and the key was not revoked"},
	{403, APNsMissingProviderToken, CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"APNs received no provider token", "check the credential's .p8 file is loaded (see /readyz); a gateway may be stripping the authorization header"},
	{403, APNsUnrelatedKeyIdInToken, CodeCredentialsRejected, false, ActionFixCredentials, RetryNewConnOnce,
		"APNs saw a token from another key on the connection, and again on a new one", "check two credentials do not share a team with different keys behind one gateway connection"},
	{403, APNsBadEnvironmentKeyIdInToken, CodeEnvironmentMismatch, false, ActionFixCredentials, RetryNone,
		"the key is not valid for this APNs environment", "check the key's environment in the developer account (sandbox-only or production-only) against the credential's environment"},
	{404, APNsBadPath, CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"APNs refused the request path", "check upstream.apns_*_url has no path; pushproxy adds /3/device/<token>"},
	{405, APNsMethodNotAllowed, CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"APNs refused the request method", "check a gateway between pushproxy and APNs is not rewriting requests"},
	{410, APNsExpiredToken, CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"the device token has expired", "delete this token; the app will register a new one when it next runs"},
	{410, APNsUnregistered, CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"the device token is no longer registered for this topic", "delete this token: the app was uninstalled or notifications were turned off"},
	{413, APNsPayloadTooLarge, CodePayloadTooLarge, false, ActionFixRequest, RetryNone,
		"APNs found the payload too large", "keep the payload at 4096 bytes (5120 for VoIP)"},
	{429, APNsTooManyProviderTokenUpdates, CodeRateLimited, true, ActionRetryLater, RetryNone,
		"APNs says the provider token changed too often", "retry later (pushproxy does not retry it: an immediate retry prolongs the block) and check that no other process signs tokens for this key with a different iat; pushproxy never re-signs sooner than 20 minutes"},
	{429, APNsTooManyRequests, CodeRateLimited, true, ActionRetryLater, RetryBackoff,
		"too many requests to this device token", "send fewer notifications to this device; honour retry_after"},
	{500, APNsInternalServerError, CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"APNs had an internal error", "nothing to fix here; retry later"},
	{503, APNsServiceUnavailable, CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"APNs is unavailable", "retry later"},
	{503, APNsShutdown, CodeUpstreamUnavailable, true, ActionRetryLater, RetryNewConn,
		"the APNs server was shutting down", "nothing to fix: pushproxy retries on a new connection; retry later if it persists"},
}

// APNsRowFor is the row for an answer: the documented row of its reason,
// else one made from its status (apnsByStatus). ClassifyAPNs phrases the
// answer from it and returns its Policy, which the sender carries out.
func APNsRowFor(status int, reason string) APNsReason {
	if row, ok := LookupAPNsReason(reason); ok {
		return row
	}
	return apnsByStatus(status, reason)
}

// LookupAPNsReason returns the documented row for a reason string.
func LookupAPNsReason(reason string) (APNsReason, bool) {
	for _, r := range APNsReasons {
		if r.Reason == reason {
			return r, true
		}
	}
	return APNsReason{}, false
}

// APNsReply is what an APNs server answered to one request.
type APNsReply struct {
	Status     int
	APNsID     string
	Body       []byte // {"reason": …, "timestamp": …} on failure
	RetryAfter string // Retry-After header, if any
}

// apnsErrorBody is APNs's JSON error body.
type apnsErrorBody struct {
	Reason    string `json:"reason"`
	Timestamp int64  `json:"timestamp"`
}

// ParseAPNsBody extracts reason and timestamp from an APNs error body;
// a body that is not APNs's JSON yields an empty reason.
func ParseAPNsBody(body []byte) (reason string, timestamp int64) {
	var b apnsErrorBody
	if json.Unmarshal(body, &b) != nil {
		return "", 0
	}
	return b.Reason, b.Timestamp
}

// ClassifyAPNs normalises a non-200 APNs reply and returns the retry
// policy of the answer's row, found once: what the sender does before answering (RetryBackoff, RetryNewConn,
// RetryNewConnOnce, RetryFreshToken, RetryOtherHost or RetryNone), as
// opposed to the error's Retryable and Action, which tell the caller what
// to do with the final answer. now is the injected clock, used only for an
// HTTP-date Retry-After. Unknown reasons get a code and a policy from the
// status (DESIGN.md).
func ClassifyAPNs(r APNsReply, now time.Time) (*Error, RetryPolicy) {
	reason, ts := ParseAPNsBody(r.Body)
	row := APNsRowFor(r.Status, reason)
	e := &Error{
		Code: row.Code, Message: row.Message, Hint: row.Hint,
		Retryable: row.Retryable, Action: row.Action, Platform: PlatformAPNs,
		Upstream: &Upstream{Status: r.Status, Reason: reason, Timestamp: ts, APNsID: r.APNsID},
	}
	if r.Status == 410 && ts > 0 {
		e.Hint = row.Hint + "; APNs reported it inactive since " + time.UnixMilli(ts).UTC().Format(time.RFC3339)
	}
	e.RetryAfter = RetryAfterSeconds(r.RetryAfter, now)
	return e, row.Policy
}

// apnsByStatus is the fallback for a reason Apple does not document (or a
// reply from something in between, such as a gateway): 429 and 5xx (and
// any other status) are retried with back-off, the rest are answered.
func apnsByStatus(status int, reason string) APNsReason {
	what := "APNs answered HTTP " + strconv.Itoa(status)
	if reason != "" {
		what += " with the undocumented reason " + strconv.Quote(reason)
	}
	switch {
	case status == 400 || status == 404 || status == 405:
		return APNsReason{status, reason, CodeInvalidRequest, false, ActionFixRequest, RetryNone, what, "compare the request with Apple's documentation; run with dry_run to see it"}
	case status == 401 || status == 403:
		return APNsReason{status, reason, CodeCredentialsRejected, false, ActionFixCredentials, RetryNone, what, "check key_id, team_id and the .p8 key"}
	case status == 410:
		return APNsReason{status, reason, CodeRecipientGone, false, ActionRemoveRecipient, RetryNone, what, "delete this token"}
	case status == 413:
		return APNsReason{status, reason, CodePayloadTooLarge, false, ActionFixRequest, RetryNone, what, "shorten the payload"}
	case status == 429:
		return APNsReason{status, reason, CodeRateLimited, true, ActionRetryLater, RetryBackoff, what, "slow down; honour retry_after"}
	}
	return APNsReason{status, reason, CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff, what, "retry later; check the upstream URL if it persists"}
}
