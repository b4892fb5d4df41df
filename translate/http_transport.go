package translate

import "fmt"

// HTTPTransport describes a Web Push or FCM attempt that ended without an
// answer, as the sender observed it (nothing of net/http in it).
type HTTPTransport struct {
	// Platform is PlatformWebPush or PlatformFCM.
	Platform string
	// Server names the upstream in messages: "the push service", "FCM".
	Server string
	// Reach is what the hint asks to check network access to.
	Reach string
	// Deadline: the caller's deadline passed.
	Deadline bool
	// BeforeConnect: the attempt failed before a connection existed (DNS,
	// TCP connect), so nothing was sent.
	BeforeConnect bool
	// NotProcessed, if > 0: that many connections in a row closed or
	// refused the request before processing it (GOAWAY, REFUSED_STREAM, a
	// connection drained at once) until pushproxy stopped trying.
	NotProcessed int
	// Detail is the transport error's text, already scrubbed of secrets.
	Detail string
}

// FromHTTPTransport normalises an attempt that got no answer. One that
// failed before a connection existed, or that every connection refused
// unprocessed, was not delivered (retryable); one that failed after the
// request may have been sent may have been delivered, and pushproxy never
// re-sends it (the caller decides).
func FromHTTPTransport(t HTTPTransport) *Error {
	var e *Error
	switch {
	case t.NotProcessed > 0:
		e = NewError(CodeUpstreamUnavailable,
			fmt.Sprintf("%s closed or refused %d connections in a row before processing the notification (not delivered)", t.Server, t.NotProcessed),
			t.Server+" (or a load balancer in front of it) is draining every connection; pushproxy retried with back-off; retry later and check network access to "+t.Reach)
		e.Action = ActionRetryLater
	case t.Deadline:
		e = NewError(CodeUpstreamTimeout, t.Server+" did not answer within the deadline",
			"raise X-Request-Timeout or request_timeout if "+t.Server+" is slow from here")
		// The request may have been written before the deadline passed.
		e.MaybeDelivered = true
	default:
		e = NewError(CodeUpstreamUnavailable, "the connection to "+t.Server+" failed: "+t.Detail,
			"check network access to "+t.Reach+" and upstream.ca_file")
		if !t.BeforeConnect {
			e.Retryable, e.MaybeDelivered = false, true
			e.Hint = "the connection failed after the request may have been sent, so it may have been delivered; the caller decides whether to send it again"
		}
	}
	e.Platform = t.Platform
	return e
}

// HTTPTransportPolicy is what the sender does about an attempt without an
// answer: one that surely sent nothing (retryable upstream_unavailable) is
// retried with back-off; any other is answered.
func HTTPTransportPolicy(e *Error) RetryPolicy {
	if e.Retryable && e.Code == CodeUpstreamUnavailable {
		return RetryBackoff
	}
	return RetryNone
}
