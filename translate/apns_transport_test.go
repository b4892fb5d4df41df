package translate

import (
	"strings"
	"testing"
	"time"
)

func TestFromAPNsTransport(t *testing.T) {
	cases := []struct {
		name      string
		in        APNsTransport
		code      Code
		retryable bool
		maybe     bool
		policy    RetryPolicy
	}{
		{"connection refused", APNsTransport{Detail: "dial tcp: refused"}, CodeUpstreamUnavailable, true, false, RetryBackoff},
		{"lost after writing", APNsTransport{Wrote: true, Detail: "EOF"}, CodeUpstreamUnavailable, false, true, RetryNone},
		{"deadline before writing", APNsTransport{Deadline: true}, CodeUpstreamTimeout, true, false, RetryBackoff},
		{"deadline after writing", APNsTransport{Deadline: true, Wrote: true}, CodeUpstreamTimeout, true, true, RetryBackoff},
		{"GOAWAY Shutdown unwritten", APNsTransport{GoAwayReason: APNsShutdown}, CodeUpstreamUnavailable, true, false, RetryBackoff},
		{"GOAWAY Shutdown written", APNsTransport{GoAwayReason: APNsShutdown, Wrote: true}, CodeUpstreamUnavailable, false, true, RetryNone},
		{"GOAWAY credential reason", APNsTransport{GoAwayReason: APNsBadCertificateEnvironment}, CodeCredentialsRejected, false, false, RetryNone},
		{"GOAWAY unknown reason", APNsTransport{GoAwayReason: "GOAWAY PROTOCOL_ERROR"}, CodeUpstreamUnavailable, true, false, RetryBackoff},
	}
	for _, c := range cases {
		e := FromAPNsTransport(c.in)
		if e.Code != c.code || e.Retryable != c.retryable || e.MaybeDelivered != c.maybe || e.Hint == "" || e.Platform != PlatformAPNs {
			t.Errorf("%s: %+v", c.name, e)
		}
		if c.maybe && !strings.Contains(e.Hint, "may have been delivered") {
			t.Errorf("%s: hint %q does not say it may have been delivered", c.name, e.Hint)
		}
		if got := APNsTransportPolicy(e); got != c.policy && !c.in.Deadline {
			t.Errorf("%s: policy %v, want %v", c.name, got, c.policy)
		}
	}
}

func TestAPNsNotSent(t *testing.T) {
	e := APNsNotSent(APNsShutdown, false, 101)
	if e.Code != CodeUpstreamUnavailable || !e.Retryable || e.Upstream.Reason != APNsShutdown || !strings.Contains(e.Message, "not delivered") || !strings.Contains(e.Message, "101 connections") {
		t.Errorf("%+v", e)
	}
	if e := APNsNotSent("", true, 3); e.Code != CodeUpstreamTimeout || !e.Retryable || e.Upstream != nil {
		t.Errorf("%+v", e)
	}
	if e := APNsNotSent(APNsShutdown, false, 0); e.Code != CodeUpstreamUnavailable || !e.Retryable || !strings.Contains(e.Message, "not sent") || strings.Contains(e.Message, "connections in a row") {
		t.Errorf("resting pool: %+v", e)
	}
	if e := APNsNotSent(APNsShutdown, false, 1); !strings.Contains(e.Message, "on 1 connection in a row") {
		t.Errorf("one connection: %+v", e)
	}
}

func TestAPNsAfterOtherHost(t *testing.T) {
	bad := func() *Error {
		return FromAPNs(APNsReply{Status: 400, Body: []byte(`{"reason":"BadDeviceToken"}`)}, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	}
	e := bad()
	APNsAfterOtherHost(e, true, "development")
	if e.Code != CodeInvalidRecipient || !strings.Contains(e.Hint, "both the production and the sandbox") {
		t.Errorf("both refused: %+v", e)
	}
	e = bad()
	APNsAfterOtherHost(e, false, "production")
	if !strings.Contains(e.Hint, "environment development") {
		t.Errorf("not switched: %+v", e)
	}
	e = FromAPNs(APNsReply{Status: 403, Body: []byte(`{"reason":"InvalidProviderToken"}`)}, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	APNsAfterOtherHost(e, true, "development")
	if e.Code != CodeEnvironmentMismatch || !strings.Contains(e.Message, "development environment") {
		t.Errorf("other host knows the token: %+v", e)
	}
	e = FromAPNs(APNsReply{Status: 403, Body: []byte(`{"reason":"InvalidProviderToken"}`)}, time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC))
	APNsAfterOtherHost(e, false, "production")
	if e.Code != CodeCredentialsRejected {
		t.Errorf("not switched: %+v", e)
	}
}
