package translate

import "fmt"

// APNsTransport describes an APNs attempt that ended without an answer:
// what the sender observed, with nothing of the HTTP/2 library in it.
type APNsTransport struct {
	// GoAwayReason is the reason of the GOAWAY that ended the attempt or
	// its connection (APNs's debug data {"reason": …}, else "GOAWAY
	// <code>"), or "".
	GoAwayReason string
	// Deadline: the caller's deadline passed.
	Deadline bool
	// Wrote: the request was written, so APNs may have processed it.
	Wrote bool
	// Detail is the transport error's text, already scrubbed of the device
	// token.
	Detail string
}

// FromAPNsTransport normalises an attempt that got no answer. A documented
// reason in a GOAWAY keeps its meaning (Shutdown → upstream_unavailable,
// BadCertificateEnvironment → credentials_rejected …); a request that was
// written may have been delivered and is never retried by pushproxy
// (retryable false: the caller decides).
func FromAPNsTransport(t APNsTransport) *Error {
	var e *Error
	switch {
	case t.Deadline:
		e = NewError(CodeUpstreamTimeout, "APNs did not answer within the deadline", "raise X-Request-Timeout or request_timeout if APNs is slow from here")
		if t.Wrote {
			e.Hint = "the request reached APNs before the deadline, so it may have been delivered; raise X-Request-Timeout if this repeats"
			e.MaybeDelivered = true
		}
	case t.GoAwayReason != "":
		if row, ok := LookupAPNsReason(t.GoAwayReason); ok {
			e = NewError(row.Code, "APNs closed the connection: "+row.Message, row.Hint)
			e.Retryable, e.Action = row.Retryable, row.Action
		} else {
			e = NewError(CodeUpstreamUnavailable, "APNs closed the connection ("+t.GoAwayReason+")", "retry later; check network access to the APNs host")
		}
		e.Upstream = &Upstream{Reason: t.GoAwayReason}
	default:
		e = NewError(CodeUpstreamUnavailable, "the connection to APNs failed: "+t.Detail, "check network access to the APNs host and upstream.ca_file")
	}
	if t.Wrote && !t.Deadline {
		// APNs may have processed it: re-sending could deliver it twice.
		e.Retryable, e.MaybeDelivered = false, true
		e.Hint = "the connection failed after the request was sent, so it may have been delivered; the caller decides whether to send it again (" + e.Hint + ")"
		if e.Code == CodeUpstreamUnavailable {
			e.Action = ActionRetryLater
		}
	}
	e.Platform = PlatformAPNs
	return e
}

// APNsTransportPolicy is what the sender does about an attempt without an
// answer: one that never reached APNs (retryable) is retried with back-off,
// unless its GOAWAY reason's row says otherwise; one that may have been
// processed is answered.
func APNsTransportPolicy(e *Error) RetryPolicy {
	if !e.Retryable {
		return RetryNone
	}
	if e.Upstream != nil && e.Upstream.Reason != "" {
		if row, ok := LookupAPNsReason(e.Upstream.Reason); ok && !row.Policy.BacksOff() {
			return RetryNone
		}
	}
	return RetryBackoff
}

// APNsNotSent is the error of a notification that every connection refused
// before processing it (GOAWAY with a lower last stream ID, REFUSED_STREAM,
// a connection that closed before the request was written) until the
// re-sends ran out (connections tried; 0: pushproxy is leaving a host that
// drains every connection alone and tried none) or the deadline passed: it
// was surely not delivered, so the caller may send it again.
func APNsNotSent(goAwayReason string, deadline bool, connections int) *Error {
	var e *Error
	if deadline {
		e = NewError(CodeUpstreamTimeout,
			"APNs did not take the notification before the deadline (not delivered)",
			"APNs kept refusing new streams (GOAWAY or REFUSED_STREAM); retry later, or raise X-Request-Timeout if this repeats")
	} else if connections == 0 {
		e = NewError(CodeUpstreamUnavailable,
			"APNs has refused every new connection lately before processing anything; the notification was not sent (not delivered)",
			"APNs (or a load balancer in front of it) is draining every connection; pushproxy leaves it alone for up to a second at a time; retry later and check network access to the APNs host")
	} else {
		e = NewError(CodeUpstreamUnavailable,
			fmt.Sprintf("APNs refused the notification on %d connection%s in a row (not delivered)", connections, plural(connections)),
			"APNs (or a load balancer in front of it) is draining every connection; retry later and check network access to the APNs host")
	}
	e.Retryable, e.Action, e.Platform = true, ActionRetryLater, PlatformAPNs
	if goAwayReason != "" {
		e.Message += ": the server sent GOAWAY (" + goAwayReason + ")"
		e.Upstream = &Upstream{Reason: goAwayReason}
	}
	return e
}

// APNsAfterOtherHost adjusts the final error of a notification under
// environment auto. switched: it was tried on the other host too, which is
// env. A token both hosts refuse as BadDeviceToken is not a token of this
// app; a token the other host knows but whose credential it refuses belongs
// to that environment (environment_mismatch).
func APNsAfterOtherHost(e *Error, switched bool, env string) {
	reason := ""
	if e.Upstream != nil {
		reason = e.Upstream.Reason
	}
	switch {
	case reason == APNsBadDeviceToken && switched:
		e.Hint = "the token was refused by both the production and the sandbox host: it is not a valid token for this app; delete it"
	case reason == APNsBadDeviceToken:
		e.Hint += "; if it comes from a development build, send it with environment development (or set the credential's environment to auto)"
	case switched:
		if e.Code == CodeCredentialsRejected {
			e.Code, e.Action = CodeEnvironmentMismatch, ActionFixCredentials
			e.Message = "the token belongs to the " + env + " environment, where the credential was refused"
		}
		e.Hint += " (the token belongs to the " + env + " environment)"
	}
}

// plural is "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
