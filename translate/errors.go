package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Code is a stable, platform-neutral error code (snake_case). The set is
// closed: callers may switch on it.
type Code string

// The error codes of DESIGN.md "Normalised errors".
const (
	CodeInvalidRequest       Code = "invalid_request"
	CodePayloadTooLarge      Code = "payload_too_large"
	CodeInvalidRecipient     Code = "invalid_recipient"
	CodeRecipientGone        Code = "recipient_gone"
	CodeTopicMismatch        Code = "topic_mismatch"
	CodeEnvironmentMismatch  Code = "environment_mismatch"
	CodeCredentialsRejected  Code = "credentials_rejected"
	CodeVAPIDKeyMismatch     Code = "vapid_key_mismatch"
	CodeCredentialsMissing   Code = "credentials_missing"
	CodeRateLimited          Code = "rate_limited"
	CodeUpstreamUnavailable  Code = "upstream_unavailable"
	CodeUpstreamTimeout      Code = "upstream_timeout"
	CodeDestinationForbidden Code = "destination_forbidden"
	CodeUnauthorized         Code = "unauthorized"
	CodeOverloaded           Code = "overloaded"
	// CodeNotFound and CodeMethodNotAllowed answer a request for a path the
	// local API does not have, or a method its path does not take.
	CodeNotFound         Code = "not_found"
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeInternalError is pushproxy's own failure (a recovered panic): the
	// notification may or may not have been sent.
	CodeInternalError Code = "internal_error"
)

// Codes lists every code, in the order of the documentation table.
var Codes = []Code{
	CodeInvalidRequest, CodePayloadTooLarge, CodeInvalidRecipient, CodeRecipientGone,
	CodeTopicMismatch, CodeEnvironmentMismatch, CodeCredentialsRejected, CodeVAPIDKeyMismatch,
	CodeCredentialsMissing, CodeRateLimited, CodeUpstreamUnavailable, CodeUpstreamTimeout,
	CodeDestinationForbidden, CodeUnauthorized, CodeOverloaded, CodeNotFound, CodeMethodNotAllowed, CodeInternalError,
}

// HTTPStatus is the status of pushproxy's own answer for a code; it follows
// the code, never the upstream status.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeInvalidRequest, CodeInvalidRecipient, CodeTopicMismatch,
		CodeEnvironmentMismatch, CodeDestinationForbidden:
		return 400
	case CodeUnauthorized:
		return 401
	case CodeNotFound:
		return 404
	case CodeMethodNotAllowed:
		return 405
	case CodeRecipientGone:
		return 410
	case CodePayloadTooLarge:
		return 413
	case CodeRateLimited:
		return 429
	case CodeCredentialsRejected, CodeVAPIDKeyMismatch:
		return 502
	case CodeCredentialsMissing, CodeUpstreamUnavailable, CodeOverloaded:
		return 503
	case CodeUpstreamTimeout:
		return 504
	}
	return 500 // CodeInternalError
}

// Action tells the caller what to do about an error.
type Action string

// The actions of DESIGN.md.
const (
	ActionRemoveRecipient Action = "remove_recipient"
	ActionResubscribe     Action = "resubscribe"
	ActionFixRequest      Action = "fix_request"
	ActionFixCredentials  Action = "fix_credentials"
	ActionRetryLater      Action = "retry_later"
	ActionNone            Action = "none"
)

// Upstream describes what the upstream service answered, when it answered.
type Upstream struct {
	Status    int    `json:"status,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Timestamp int64  `json:"timestamp,omitempty"` // APNs 410: milliseconds since the epoch
	APNsID    string `json:"apns_id,omitempty"`
	// MessageID is FCM's name for the message it accepted
	// ("projects/<project>/messages/<id>").
	MessageID string `json:"message_id,omitempty"`
}

// Error is the normalised error object. It is also a Go error.
type Error struct {
	Code       Code      `json:"code"`
	Message    string    `json:"message"`
	Hint       string    `json:"hint"`
	Retryable  bool      `json:"retryable"`
	Action     Action    `json:"action"`
	RetryAfter int       `json:"retry_after,omitempty"` // seconds
	Platform   string    `json:"platform,omitempty"`
	Upstream   *Upstream `json:"upstream,omitempty"`
	// MaybeDelivered says the request reached the upstream before the
	// failure, so it may have been delivered (a connection lost after the
	// request was written, a deadline that passed while waiting for the
	// answer). Not part of the answer: its message and hint say it.
	MaybeDelivered bool `json:"-"`
	// Field names the offending request field for invalid_request and
	// invalid_recipient, in dotted JSON form ("to.apns.token").
	Field string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Upstream != nil && e.Upstream.Reason != "" {
		s += " (upstream " + e.Upstream.Reason + ")"
	}
	return s
}

// Status is the HTTP status of pushproxy's answer carrying this error.
func (e *Error) Status() int { return e.Code.HTTPStatus() }

// defaultAction is the action a code implies when a row does not say.
func defaultAction(c Code) Action {
	switch c {
	case CodeInvalidRequest, CodePayloadTooLarge, CodeTopicMismatch,
		CodeEnvironmentMismatch, CodeDestinationForbidden, CodeNotFound, CodeMethodNotAllowed:
		return ActionFixRequest
	case CodeInvalidRecipient, CodeRecipientGone:
		return ActionRemoveRecipient
	case CodeCredentialsRejected, CodeCredentialsMissing, CodeUnauthorized:
		return ActionFixCredentials
	case CodeVAPIDKeyMismatch:
		return ActionResubscribe
	case CodeRateLimited, CodeUpstreamUnavailable, CodeUpstreamTimeout, CodeOverloaded:
		return ActionRetryLater
	}
	return ActionNone
}

// defaultRetryable says whether a later identical request may succeed.
func defaultRetryable(c Code) bool {
	switch c {
	case CodeRateLimited, CodeUpstreamUnavailable, CodeUpstreamTimeout, CodeOverloaded:
		return true
	}
	return false
}

// NewError builds an error with the code's default action and
// retryability. Every error carries a hint: an empty one becomes the
// code's default (DefaultHint).
func NewError(c Code, message, hint string) *Error {
	if hint == "" {
		hint = DefaultHint(c)
	}
	return &Error{Code: c, Message: message, Hint: hint, Action: defaultAction(c), Retryable: defaultRetryable(c)}
}

// DefaultHint is the one-sentence hint of a code, for errors that have no
// more precise one. Every code has one (a test walks Codes).
func DefaultHint(c Code) string {
	switch c {
	case CodeInvalidRequest:
		return "fix the request and send it again: the body is one JSON object as described in api/openapi.yaml"
	case CodePayloadTooLarge:
		return "shorten the title, body or data: APNs takes 4096 bytes (VoIP 5120), Web Push one 4096-byte record after encryption"
	case CodeInvalidRecipient:
		return "check the device token or subscription was copied in full from the app; if it was, delete it"
	case CodeRecipientGone:
		return "delete this recipient: it will never accept notifications again"
	case CodeTopicMismatch:
		return "check the topic (bundle ID) against the app the token was issued to and the credential's topics"
	case CodeEnvironmentMismatch:
		return "send development builds' tokens with environment development, or set the credential's environment to auto"
	case CodeCredentialsRejected:
		return "check the credential's key, key ID and team ID against the developer account, and this machine's clock"
	case CodeVAPIDKeyMismatch:
		return "the subscription was made with another VAPID key: have the browser subscribe again with GET /v1/webpush/vapid-public-key"
	case CodeCredentialsMissing:
		return "check the credential files named in the configuration; /readyz shows each one's state and last error"
	case CodeRateLimited:
		return "send less often to this recipient or topic; wait retry_after seconds before retrying"
	case CodeUpstreamUnavailable:
		return "retry later; if it persists, check network access to the push service from this host"
	case CodeUpstreamTimeout:
		return "retry later, or raise X-Request-Timeout (or request_timeout) if the push service is slow from here"
	case CodeDestinationForbidden:
		return "send only to https endpoints of known push services, or add the host to webpush.allow_endpoints"
	case CodeUnauthorized:
		return "send Authorization: Bearer <contents of auth_token_file>"
	case CodeOverloaded:
		return "retry after retry_after seconds; raise max_in_flight or run more replicas if this persists"
	case CodeMethodNotAllowed:
		return "use the method the Allow header names; the routes are POST /v1/notifications, POST /v1/notifications/batch, GET /v1/webpush/vapid-public-key, GET /healthz, GET /readyz, GET /metrics"
	case CodeNotFound:
		return "the routes are POST /v1/notifications, POST /v1/notifications/batch, GET /v1/webpush/vapid-public-key, GET /healthz, GET /readyz, GET /metrics"
	case CodeInternalError:
		return "this is a bug in pushproxy: report it with the log line of this request; the notification may or may not have been sent"
	}
	return "see the error-code table in the README"
}

// fieldHint is the hint of an error about one field of the request.
func fieldHint(field string) string {
	if field == "" {
		return DefaultHint(CodeInvalidRequest)
	}
	return "fix " + field + " and send again; api/openapi.yaml gives its type and allowed values"
}

// fieldError is an error of code c about one request field, named in
// the message and in Field.
func fieldError(c Code, hint, field, format string, args ...any) *Error {
	e := NewError(c, fmt.Sprintf(format, args...), hint)
	e.Field = field
	if field != "" {
		e.Message = field + ": " + e.Message
	}
	return e
}

// Invalid is an invalid_request error naming the offending field.
func Invalid(field, format string, args ...any) *Error {
	return fieldError(CodeInvalidRequest, fieldHint(field), field, format, args...)
}

// InvalidRecipient is an invalid_recipient error naming the offending field.
func InvalidRecipient(field, format string, args ...any) *Error {
	hint := ""
	if field != "" {
		hint = "check " + field + " was copied in full from the app or browser; a recipient the platform refuses should be deleted"
	}
	return fieldError(CodeInvalidRecipient, hint, field, format, args...)
}

// MissingRecipient is the invalid_recipient error of a recipient field the
// caller left out: a request to fix (action fix_request), not a recipient
// to delete.
func MissingRecipient(field, format string, args ...any) *Error {
	e := InvalidRecipient(field, format, args...)
	e.Action = ActionFixRequest
	e.Hint = "send " + field + " as the app or browser gave it"
	return e
}

// WithHint replaces the hint, for an error whose cause is better known
// than its code's default says.
func (e *Error) WithHint(hint string) *Error {
	if hint != "" {
		e.Hint = hint
	}
	return e
}

// Fingerprint is the short, non-reversible form in which secrets (device
// tokens, endpoints, keys) may appear in logs, messages and hints: the first
// 8 hex digits of their SHA-256.
func Fingerprint(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:4])
}

// FingerprintString is Fingerprint of a string.
func FingerprintString(s string) string { return Fingerprint([]byte(s)) }
