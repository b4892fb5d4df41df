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
	// NotSent: the attempt failed before its request was written (DNS, TCP
	// connect, TLS, a connection closed before the request's first
	// frame), so nothing was sent.
	NotSent bool
	// Refused: the server closed or refused, unprocessed, every new
	// connection lately (GOAWAY, REFUSED_STREAM, a connection drained at
	// once), and pushproxy stopped dialling it for this notification;
	// Connections is how many this notification went through.
	Refused     bool
	Connections int
	// Detail is the transport error's text, already scrubbed of secrets.
	Detail string
}

// FromHTTPTransport normalises an attempt that got no answer. One that
// failed before its request was written, or that every connection refused
// unprocessed, was not delivered (retryable); one that failed after the
// request may have been sent may have been delivered, and pushproxy never
// re-sends it (the caller decides).
func FromHTTPTransport(t HTTPTransport) *Error {
	var e *Error
	switch {
	case t.Refused:
		msg := t.Server + " has closed or refused every new connection lately before processing anything; the notification was not sent (not delivered)"
		if t.Connections > 0 {
			msg = fmt.Sprintf("%s closed or refused %d connection%s in a row before processing the notification (not delivered)", t.Server, t.Connections, plural(t.Connections))
		}
		e = NewError(CodeUpstreamUnavailable, msg,
			t.Server+" (or a load balancer in front of it) is draining every connection; pushproxy leaves it alone for a while and retries with back-off; retry later and check network access to "+t.Reach)
		e.Action = ActionRetryLater
	case t.Deadline && t.NotSent:
		e = NewError(CodeUpstreamTimeout, t.Server+" took no request from pushproxy before the deadline (not delivered)",
			"raise X-Request-Timeout or request_timeout if "+t.Server+" is slow to connect from here")
	case t.Deadline:
		e = NewError(CodeUpstreamTimeout, t.Server+" did not answer within the deadline",
			"the request may have reached "+t.Server+" before the deadline, so it may have been delivered; raise X-Request-Timeout or request_timeout if "+t.Server+" is slow from here")
		e.MaybeDelivered = true
	case t.NotSent:
		e = NewError(CodeUpstreamUnavailable, "the connection to "+t.Server+" failed before the notification was sent: "+t.Detail+" (not delivered)",
			"check network access to "+t.Reach+" and upstream.ca_file")
	default:
		e = NewError(CodeUpstreamUnavailable, "the connection to "+t.Server+" failed: "+t.Detail,
			"the connection failed after the request may have been sent, so it may have been delivered; the caller decides whether to send it again")
		e.Retryable, e.MaybeDelivered = false, true
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
