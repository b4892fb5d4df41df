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
)

// Codes lists every code, in the order of the documentation table.
var Codes = []Code{
	CodeInvalidRequest, CodePayloadTooLarge, CodeInvalidRecipient, CodeRecipientGone,
	CodeTopicMismatch, CodeEnvironmentMismatch, CodeCredentialsRejected, CodeVAPIDKeyMismatch,
	CodeCredentialsMissing, CodeRateLimited, CodeUpstreamUnavailable, CodeUpstreamTimeout,
	CodeDestinationForbidden, CodeUnauthorized, CodeOverloaded,
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
	return 500
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
}

// Error is the normalised error object. It is also a Go error.
type Error struct {
	Code       Code      `json:"code"`
	Message    string    `json:"message"`
	Hint       string    `json:"hint,omitempty"`
	Retryable  bool      `json:"retryable"`
	Action     Action    `json:"action"`
	RetryAfter int       `json:"retry_after,omitempty"` // seconds
	Platform   string    `json:"platform,omitempty"`
	Upstream   *Upstream `json:"upstream,omitempty"`
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
		CodeEnvironmentMismatch, CodeDestinationForbidden:
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

// NewError builds an error with the code's default action and retryability.
func NewError(c Code, message, hint string) *Error {
	return &Error{Code: c, Message: message, Hint: hint, Action: defaultAction(c), Retryable: defaultRetryable(c)}
}

// Invalid is an invalid_request error naming the offending field.
func Invalid(field, format string, args ...any) *Error {
	e := NewError(CodeInvalidRequest, fmt.Sprintf(format, args...), "")
	e.Field = field
	if field != "" {
		e.Message = field + ": " + e.Message
	}
	return e
}

// InvalidRecipient is an invalid_recipient error naming the offending field.
func InvalidRecipient(field, format string, args ...any) *Error {
	e := NewError(CodeInvalidRecipient, fmt.Sprintf(format, args...), "")
	e.Field = field
	if field != "" {
		e.Message = field + ": " + e.Message
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
