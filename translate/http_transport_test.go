package translate

import (
	"strings"
	"testing"
)

func TestFromHTTPTransport(t *testing.T) {
	base := HTTPTransport{Platform: PlatformWebPush, Server: "the push service", Reach: "the push service", Detail: "EOF"}
	with := func(f func(*HTTPTransport)) HTTPTransport { c := base; f(&c); return c }
	cases := []struct {
		name      string
		in        HTTPTransport
		code      Code
		retryable bool
		maybe     bool
		policy    RetryPolicy
		says      string
	}{
		{"refused at connect", with(func(c *HTTPTransport) { c.NotSent = true }), CodeUpstreamUnavailable, true, false, RetryBackoff, "check network access to the push service"},
		{"deadline before sending", with(func(c *HTTPTransport) { c.NotSent, c.Deadline = true, true }), CodeUpstreamTimeout, true, false, RetryNone, "raise X-Request-Timeout"},
		{"lost after sending", base, CodeUpstreamUnavailable, false, true, RetryNone, "may have been delivered"},
		{"deadline", with(func(c *HTTPTransport) { c.Deadline = true }), CodeUpstreamTimeout, true, true, RetryNone, "may have been delivered"},
		{"drained", with(func(c *HTTPTransport) { c.Refused, c.Connections = true, 4 }), CodeUpstreamUnavailable, true, false, RetryBackoff, "draining every connection"},
		{"drained, one connection", with(func(c *HTTPTransport) { c.Refused, c.Connections = true, 1 }), CodeUpstreamUnavailable, true, false, RetryBackoff, "draining every connection"},
		{"left alone", with(func(c *HTTPTransport) { c.Refused = true }), CodeUpstreamUnavailable, true, false, RetryBackoff, "leaves it alone"},
		// Refused unprocessed wins over a deadline that passed meanwhile:
		// the refused dial sent nothing.
		{"drained at the deadline", with(func(c *HTTPTransport) { c.Refused, c.Connections, c.Deadline = true, 2, true }), CodeUpstreamUnavailable, true, false, RetryBackoff, "draining"},
	}
	for _, c := range cases {
		e := FromHTTPTransport(c.in)
		if e.Code != c.code || e.Retryable != c.retryable || e.MaybeDelivered != c.maybe || e.Platform != PlatformWebPush {
			t.Errorf("%s: %+v", c.name, e)
		}
		if !strings.Contains(e.Hint, c.says) {
			t.Errorf("%s: hint %q does not say %q", c.name, e.Hint, c.says)
		}
		if c.in.Connections == 1 && !strings.Contains(e.Message, "1 connection in a row") {
			t.Errorf("%s: message %q", c.name, e.Message)
		}
		if got := HTTPTransportPolicy(e); got != c.policy {
			t.Errorf("%s: policy %v, want %v", c.name, got, c.policy)
		}
		if c.in.Refused && (!strings.Contains(e.Message, "not delivered") || (c.in.Connections > 0) != strings.Contains(e.Message, "in a row")) {
			t.Errorf("%s: message %q", c.name, e.Message)
		}
	}
}
