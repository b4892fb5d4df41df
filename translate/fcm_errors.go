package translate

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FCMReason is one row of pushproxy's table of FCM HTTP v1 answers
// (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode) and of
// the OAuth 2.0 token endpoint's: which answer it is, what the caller is
// told (Code, Retryable, Action, Message, Hint) and what pushproxy itself
// does before answering (Policy).
type FCMReason struct {
	// Status is the HTTP status FCM answers it with (documentation: rows
	// are found by Key).
	Status int
	// Key is the FcmError detail's errorCode ("UNREGISTERED"), or, for an
	// answer without an FcmError detail, the error's google.rpc status
	// ("UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND"); for the token
	// endpoint's rows, the OAuth error ("invalid_grant").
	Key string
	// Contains, if set, is one or more phrases separated by "|"; one of
	// them must appear (case-insensitively) in the error's message, its
	// field violations or its ErrorInfo reason for the row to match.
	Contains string
	Code     Code
	// Retryable is the answer's retryable: whether the caller may send the
	// same notification again later, unchanged, and expect it to succeed.
	Retryable bool
	Action    Action
	// Policy is what pushproxy does itself before answering: RetryBackoff
	// (429, 500, 503), RetryFreshToken (HTTP 401 without an FcmError
	// detail: the access token was refused, so one new token is fetched
	// and the request sent once more), or RetryNone.
	Policy  RetryPolicy
	Message string // what happened, in one sentence
	Hint    string // what an operator should check, in one sentence
}

// FCM error codes (FcmError.errorCode) and the google.rpc statuses that
// FCM answers without an FcmError detail.
const (
	FCMInvalidArgument     = "INVALID_ARGUMENT"
	FCMUnregistered        = "UNREGISTERED"
	FCMSenderIDMismatch    = "SENDER_ID_MISMATCH"
	FCMQuotaExceeded       = "QUOTA_EXCEEDED"
	FCMUnavailable         = "UNAVAILABLE"
	FCMInternal            = "INTERNAL"
	FCMThirdPartyAuthError = "THIRD_PARTY_AUTH_ERROR"
	FCMAPNsAuthError       = "APNS_AUTH_ERROR" // the older name of THIRD_PARTY_AUTH_ERROR
	FCMUnauthenticated     = "UNAUTHENTICATED"
	FCMPermissionDenied    = "PERMISSION_DENIED"
	FCMNotFound            = "NOT_FOUND"
	// The OAuth 2.0 token endpoint's errors (RFC 6749 §5.2).
	OAuthInvalidGrant       = "invalid_grant"
	OAuthInvalidClient      = "invalid_client"
	OAuthUnauthorizedClient = "unauthorized_client"
	OAuthInvalidScope       = "invalid_scope"
)

const (
	hintFCMThirdParty = "the APNs key or certificate, or the Web Push credentials, uploaded to the Firebase console (Project settings > Cloud Messaging) are wrong or expired: upload valid ones; pushproxy's own service account is fine"
	hintFCMKeyRefused = "check the service-account key was not deleted or disabled in the Google Cloud console (IAM > Service accounts > Keys), and this machine's clock (NTP): an assertion more than a few minutes off is refused"
)

// FCMReasons is the table of FCM's answers to messages:send. Rows with
// Contains come before the row without for the same Key.
var FCMReasons = []FCMReason{
	{400, FCMInvalidArgument, "message.token|registration token", CodeInvalidRecipient, false, ActionRemoveRecipient, RetryNone,
		"FCM says the registration token is not a valid FCM registration token",
		"check to.fcm.token was copied in full from the app (FirebaseMessaging.getToken); if it was, delete it"},
	{400, FCMInvalidArgument, "", CodeInvalidRequest, false, ActionFixRequest, RetryNone,
		"FCM refused a field of the message",
		"fix the field FCM names (fcm.android and fcm.message are sent as given; run with dry_run to see the message)"},
	{404, FCMUnregistered, "", CodeRecipientGone, false, ActionRemoveRecipient, RetryNone,
		"FCM says the registration token is no longer registered",
		"delete this token: the app was uninstalled, its data cleared, or the token expired; the app registers a new one when it next runs"},
	{403, FCMSenderIDMismatch, "", CodeTopicMismatch, false, ActionFixRequest, RetryNone,
		"the registration token belongs to another Firebase project",
		"send the token with the FCM credential of the project the app is registered in (to.fcm.credential)"},
	{429, FCMQuotaExceeded, "", CodeRateLimited, true, ActionRetryLater, RetryBackoff,
		"FCM says a sending quota was exceeded (the project's, or this device's or topic's rate)",
		"send fewer notifications (to this device, or in all); honour retry_after; the project's quota is in the Google Cloud console"},
	{503, FCMUnavailable, "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"FCM is unavailable", "nothing to fix here; retry later"},
	{500, FCMInternal, "", CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff,
		"FCM had an internal error", "nothing to fix here; retry later"},
	{401, FCMThirdPartyAuthError, "", CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"FCM could not deliver through APNs or Web Push: the credentials uploaded to Firebase were refused", hintFCMThirdParty},
	{401, FCMAPNsAuthError, "", CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"FCM could not deliver through APNs: the APNs credentials uploaded to Firebase were refused", hintFCMThirdParty},
	{401, FCMUnauthenticated, "", CodeCredentialsRejected, false, ActionFixCredentials, RetryFreshToken,
		"FCM refused the access token, even a freshly fetched one",
		"check the service account belongs to the project (project_id) and its key is enabled, and this machine's clock"},
	{403, FCMPermissionDenied, "has not been used|is disabled|service_disabled|api_disabled", CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"the Firebase Cloud Messaging API is disabled for the project",
		"enable the Firebase Cloud Messaging API (fcm.googleapis.com) in the Google Cloud console for this project, then wait a few minutes"},
	{403, FCMPermissionDenied, "", CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"the service account may not send messages for the project",
		"grant the service account the Firebase Cloud Messaging API Admin role (or firebase.messaging permission cloudmessaging.messages.create) in this project, and check project_id names a project that exists"},
	{404, FCMNotFound, "", CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"FCM does not know the project",
		"check project_id (fcm[].project_id, else the service account's project_id) names the Firebase project"},
}

// FCMTokenReasons is the table of the OAuth 2.0 token endpoint's answers
// to the JWT-bearer grant (RFC 6749 §5.2; Google's token endpoint).
var FCMTokenReasons = []FCMReason{
	{400, OAuthInvalidGrant, "", CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"the token endpoint refused the service account's signed assertion (invalid_grant)", hintFCMKeyRefused},
	{401, OAuthInvalidClient, "", CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"the token endpoint does not know the service account (invalid_client)",
		"check the service account still exists (IAM > Service accounts) and client_email is its address"},
	{401, OAuthUnauthorizedClient, "", CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"the token endpoint does not let the service account use this grant (unauthorized_client)",
		"check the service account is enabled and the file is a service-account key, not another kind of credential"},
	{400, OAuthInvalidScope, "", CodeCredentialsRejected, false, ActionFixCredentials, RetryNone,
		"the token endpoint refused the firebase.messaging scope (invalid_scope)",
		"check upstream.fcm_token_url (or the file's token_uri) is Google's token endpoint"},
}

// FCMErrorBody is what FCM's JSON error body says
// ({"error": {"code", "message", "status", "details": […]}}).
type FCMErrorBody struct {
	HTTPCode  int    // error.code
	Message   string // error.message
	Status    string // error.status, the google.rpc code name
	ErrorCode string // the FcmError detail's errorCode, "" without one
	// FieldViolations are the google.rpc.BadRequest detail's.
	FieldViolations []FCMFieldViolation
	// InfoReason is the google.rpc.ErrorInfo detail's reason
	// ("SERVICE_DISABLED", "IAM_PERMISSION_DENIED" …).
	InfoReason string
}

// FCMFieldViolation is one field FCM refused.
type FCMFieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

const (
	fcmErrorType      = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
	fcmBadRequestType = "type.googleapis.com/google.rpc.BadRequest"
	fcmErrorInfoType  = "type.googleapis.com/google.rpc.ErrorInfo"
)

// ParseFCMError decodes FCM's error body. A body that is not FCM's JSON
// (a gateway's HTML, an empty body) yields a zero FCMErrorBody and false.
func ParseFCMError(body []byte) (FCMErrorBody, bool) {
	var raw struct {
		Error *struct {
			Code    int               `json:"code"`
			Message string            `json:"message"`
			Status  string            `json:"status"`
			Details []json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &raw) != nil || raw.Error == nil {
		return FCMErrorBody{}, false
	}
	b := FCMErrorBody{HTTPCode: raw.Error.Code, Message: raw.Error.Message, Status: raw.Error.Status}
	for _, d := range raw.Error.Details {
		var det struct {
			Type            string              `json:"@type"`
			ErrorCode       string              `json:"errorCode"`
			FieldViolations []FCMFieldViolation `json:"fieldViolations"`
			Reason          string              `json:"reason"`
		}
		if json.Unmarshal(d, &det) != nil {
			continue
		}
		switch det.Type {
		case fcmErrorType:
			if b.ErrorCode == "" {
				b.ErrorCode = det.ErrorCode
			}
		case fcmBadRequestType:
			b.FieldViolations = append(b.FieldViolations, det.FieldViolations...)
		case fcmErrorInfoType:
			if b.InfoReason == "" {
				b.InfoReason = det.Reason
			}
		}
	}
	return b, true
}

// Key is what FCMReasons rows are found by: the FcmError errorCode, else
// the google.rpc status.
func (b FCMErrorBody) Key() string {
	if b.ErrorCode != "" {
		return b.ErrorCode
	}
	return b.Status
}

// text is everything a row's Contains is matched against, lower-cased.
func (b FCMErrorBody) text() string {
	var sb strings.Builder
	sb.WriteString(b.Message)
	for _, v := range b.FieldViolations {
		sb.WriteString(" " + v.Field + " " + v.Description)
	}
	sb.WriteString(" " + b.InfoReason)
	return strings.ToLower(sb.String())
}

// FCMReply is what FCM answered to one messages:send request (not 2xx).
type FCMReply struct {
	Status int
	Header http.Header // Retry-After
	Body   []byte      // at most a few KiB: the sender truncates it
	// Project is the Firebase project the request was sent for (named in
	// hints).
	Project string
	// Token is the registration token the request was for: never repeated
	// in the error (FCM's messages may echo it); a fingerprint stands in.
	Token string
}

// FCMRowFor is the row for an answer: the table's row for its key, else one
// made from its status (fcmByStatus).
func FCMRowFor(status int, b FCMErrorBody) FCMReason {
	if row, ok := lookupFCM(FCMReasons, b.ErrorCode, b.text()); ok {
		return row
	}
	if row, ok := lookupFCM(FCMReasons, b.Status, b.text()); ok && (b.ErrorCode == "" || row.Key != FCMUnauthenticated) {
		return row
	}
	return fcmByStatus(status)
}

// LookupFCMReason returns the row of FCMReasons for a key (FcmError
// errorCode or google.rpc status) and the error's text (message, field
// violations), used for rows with Contains.
func LookupFCMReason(key, text string) (FCMReason, bool) {
	return lookupFCM(FCMReasons, key, strings.ToLower(text))
}

func lookupFCM(table []FCMReason, key, lower string) (FCMReason, bool) {
	if key == "" {
		return FCMReason{}, false
	}
	for _, r := range table {
		if r.Key == key && (r.Contains == "" || containsAny(lower, r.Contains)) {
			return r, true
		}
	}
	return FCMReason{}, false
}

// ClassifyFCM normalises FCM's non-2xx answer and returns the retry policy
// of the answer's row: what the sender does before answering (RetryBackoff,
// RetryFreshToken or RetryNone), as opposed to the error's Retryable and Action, which tell
// the caller what to do with the final answer. An answer without a row gets
// a code from its status: 400 invalid_request, 401 credentials_rejected
// (after a fresh token), 403 credentials_rejected, 404 recipient_gone, 413
// payload_too_large, 429 rate_limited, 5xx upstream_unavailable.
func ClassifyFCM(r FCMReply, now time.Time) (*Error, RetryPolicy) {
	b, _ := ParseFCMError(r.Body)
	row := FCMRowFor(r.Status, b)
	e := &Error{
		Code: row.Code, Message: row.Message, Hint: row.Hint,
		Retryable: row.Retryable, Action: row.Action, Platform: PlatformFCM,
		Upstream: &Upstream{Status: r.Status, Reason: b.Key()},
	}
	hide := func(s string) string {
		if r.Token != "" {
			s = strings.ReplaceAll(s, r.Token, "<token "+FingerprintString(r.Token)+">")
		}
		return s
	}
	project := r.Project
	if project == "" {
		project = "(unknown)"
	}
	switch {
	case row.Key == FCMSenderIDMismatch:
		e.Hint = "the token was issued for another Firebase project than " + strconv.Quote(project) +
			" (the credential's project_id): " + row.Hint
	case row.Key == FCMNotFound || row.Key == FCMPermissionDenied:
		e.Message += " " + strconv.Quote(project)
	case row.Code == CodeInvalidRecipient:
		e.Field = "to.fcm.token"
	case row.Code == CodeInvalidRequest && len(b.FieldViolations) > 0:
		v := b.FieldViolations[0]
		e.Message = "FCM refused " + hide(v.Field) + ": " + hide(v.Description)
		if f := fcmLocalField(v.Field); f != "" {
			e.Hint = "fix " + f + ", which became " + hide(v.Field) + " (run with dry_run to see the message)"
		}
	}
	if b.Message != "" && !strings.Contains(e.Message, b.Message) && row.Code != CodeInvalidRequest {
		e.Message += " (FCM: " + strconv.Quote(hide(b.Message)) + ")"
	} else if b.Message != "" && row.Code == CodeInvalidRequest && len(b.FieldViolations) == 0 {
		e.Message += ": " + hide(b.Message)
	}
	if r.Header != nil {
		e.RetryAfter = RetryAfterSeconds(r.Header.Get("Retry-After"), now)
	}
	return e, row.Policy
}

// fcmLocalField names the local API field an FCM field path came from,
// when it is one pushproxy derives ("message.android.ttl" → "ttl (or
// fcm.android.ttl)"); "" when it is not known.
func fcmLocalField(f string) string {
	switch {
	case f == "message.android.ttl":
		return "ttl (or fcm.android.ttl)"
	case f == "message.android.priority":
		return "priority (or fcm.android.priority)"
	case f == "message.android.collapse_key":
		return "collapse_id (or fcm.android.collapse_key)"
	case strings.HasPrefix(f, "message.data"):
		return "data (or fcm.message.data)"
	case strings.HasPrefix(f, "message.notification"):
		return "title, body or image (or fcm.message.notification)"
	case strings.HasPrefix(f, "message.android"):
		return "fcm.android" + strings.TrimPrefix(f, "message.android")
	case strings.HasPrefix(f, "message."):
		return "fcm." + f
	}
	return ""
}

// fcmByStatus is the fallback for an answer no row describes (a gateway's
// answer, an FcmError code FCM adds later).
func fcmByStatus(status int) FCMReason {
	what := "FCM answered HTTP " + strconv.Itoa(status)
	r := FCMReason{Status: status, Message: what}
	switch {
	case status == 400:
		r.Code, r.Action, r.Hint = CodeInvalidRequest, ActionFixRequest, "compare the message with FCM's reference (projects.messages); run with dry_run to see it"
	case status == 401:
		r.Code, r.Action, r.Policy = CodeCredentialsRejected, ActionFixCredentials, RetryFreshToken
		r.Hint = "check the service-account key is enabled and belongs to the project, and this machine's clock"
	case status == 403:
		r.Code, r.Action, r.Hint = CodeCredentialsRejected, ActionFixCredentials, "check the service account may send for the project (Firebase Cloud Messaging API Admin role) and the API is enabled"
	case status == 404:
		r.Code, r.Action, r.Hint = CodeRecipientGone, ActionRemoveRecipient, "delete this token"
	case status == 413:
		r.Code, r.Action, r.Hint = CodePayloadTooLarge, ActionFixRequest, "shorten the message"
	case status == 429:
		r.Code, r.Action, r.Retryable, r.Policy, r.Hint = CodeRateLimited, ActionRetryLater, true, RetryBackoff, "slow down; honour retry_after"
	case status >= 400 && status < 500:
		r.Code, r.Action, r.Hint = CodeInvalidRequest, ActionFixRequest, "check upstream.fcm_url and any gateway between pushproxy and FCM"
	default:
		r.Code, r.Action, r.Retryable, r.Policy, r.Hint = CodeUpstreamUnavailable, ActionRetryLater, true, RetryBackoff, "retry later; check upstream.fcm_url if it persists"
	}
	return r
}

// FCMTokenReply is what the OAuth 2.0 token endpoint answered when asked
// for an access token, or Status 0 when it could not be reached.
type FCMTokenReply struct {
	Status      int
	ErrorCode   string // the OAuth "error" ("invalid_grant"); "" when not given
	Description string // the OAuth "error_description"
	RetryAfter  string // Retry-After header, if any
	// Transport is the error of a request that got no answer ("" otherwise).
	Transport string
	// ClientEmail names the service account in messages (not a secret).
	ClientEmail string
}

// ClassifyFCMToken normalises a failed access-token fetch: the token
// endpoint's OAuth error (FCMTokenReasons), else a code from its status
// (5xx, 429 and no answer at all: upstream_unavailable, retried with
// back-off; other 4xx: credentials_rejected).
func ClassifyFCMToken(r FCMTokenReply, now time.Time) (*Error, RetryPolicy) {
	row, ok := lookupFCM(FCMTokenReasons, r.ErrorCode, "")
	if !ok {
		row = FCMReason{Status: r.Status, Key: r.ErrorCode}
		switch {
		case r.Status == 0:
			row.Code, row.Retryable, row.Action, row.Policy = CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff
			row.Message = "the OAuth token endpoint could not be reached: " + r.Transport
			row.Hint = "check network access to the token endpoint (the file's token_uri, or upstream.fcm_token_url) and upstream.ca_file"
		case r.Status == 429 || r.Status >= 500:
			row.Code, row.Retryable, row.Action, row.Policy = CodeUpstreamUnavailable, true, ActionRetryLater, RetryBackoff
			row.Message = "the OAuth token endpoint answered HTTP " + strconv.Itoa(r.Status)
			row.Hint = "nothing to fix here; retry later"
		default:
			row.Code, row.Action = CodeCredentialsRejected, ActionFixCredentials
			row.Message = "the OAuth token endpoint answered HTTP " + strconv.Itoa(r.Status)
			row.Hint = hintFCMKeyRefused
		}
	}
	e := &Error{
		Code: row.Code, Message: row.Message, Hint: row.Hint,
		Retryable: row.Retryable, Action: row.Action, Platform: PlatformFCM,
		Upstream: &Upstream{Status: r.Status, Reason: r.ErrorCode},
	}
	if r.ClientEmail != "" && row.Code == CodeCredentialsRejected {
		e.Message += " for " + r.ClientEmail
	}
	if r.Description != "" {
		e.Message += " (" + strconv.Quote(r.Description) + ")"
	}
	e.RetryAfter = RetryAfterSeconds(r.RetryAfter, now)
	return e, row.Policy
}
