package translate

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	lo := func(n time.Duration) time.Duration { return 0 }
	hi := func(n time.Duration) time.Duration { return n - 1 }
	for _, c := range []struct {
		attempt, retryAfter int
		min, max            time.Duration
	}{
		{1, 0, 25 * time.Millisecond, 50 * time.Millisecond},
		{2, 0, 50 * time.Millisecond, 100 * time.Millisecond},
		{7, 0, 1 * time.Second, 2 * time.Second},
		{30, 0, 1 * time.Second, 2 * time.Second},
		{1, 3, 3 * time.Second, 3 * time.Second},
	} {
		a := Backoff(c.attempt, c.retryAfter, 50*time.Millisecond, 2*time.Second, lo)
		b := Backoff(c.attempt, c.retryAfter, 50*time.Millisecond, 2*time.Second, hi)
		if a != c.min || b != c.max {
			t.Errorf("attempt %d retry-after %d: %v..%v, want %v..%v", c.attempt, c.retryAfter, a, b, c.min, c.max)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]int{
		"": 0, "30": 30, " 7 ": 7, "-5": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat):           90,
		now.Add(1500 * time.Millisecond).Format(time.RFC850):        1, // RFC 850 dates are accepted too
		now.Add(-time.Minute).Format(http.TimeFormat):               0,
		now.Add(2 * time.Second).Format("Mon Jan _2 15:04:05 2006"): 2,
	} {
		if got := RetryAfterSeconds(v, now); got != want {
			t.Errorf("%q: %d, want %d", v, got, want)
		}
	}
}

func TestReachedUpstream(t *testing.T) {
	maybe := NewError(CodeUpstreamUnavailable, "lost", "h")
	maybe.MaybeDelivered = true
	cases := []struct {
		status int
		e      *Error
		want   bool
	}{
		{200, nil, true},
		{429, NewError(CodeRateLimited, "slow down", "h"), true},
		{0, maybe, true},
		{0, NewError(CodeUpstreamUnavailable, "refused before sending", "h"), false},
	}
	for _, c := range cases {
		if got := ReachedUpstream(c.status, c.e); got != c.want {
			t.Errorf("ReachedUpstream(%d, %v) = %v", c.status, c.e, got)
		}
	}
}
