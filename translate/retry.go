package translate

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy is what pushproxy itself does about an upstream answer before
// it answers the caller. It is separate from Error.Retryable and
// Error.Action, which tell the caller what to do with the final answer: a
// row may be retried by pushproxy and still answered retryable=false
// (ExpiredProviderToken: one fresh token, then the credentials are at
// fault), or not retried by pushproxy and answered retryable=true
// (TooManyProviderTokenUpdates: an immediate retry only prolongs it; the
// caller should retry later). Senders carry the policy out; they do not
// decide it from reason strings.
type RetryPolicy uint8

// The retry policies.
const (
	// RetryNone: answered at once.
	RetryNone RetryPolicy = iota
	// RetryBackoff: sent again after exponential back-off with jitter
	// (Retry-After honoured), while attempts remain and the caller's
	// deadline allows.
	RetryBackoff
	// RetryNewConn: the connection that answered is retired, and the
	// request sent again on a new one after back-off, like RetryBackoff.
	RetryNewConn
	// RetryNewConnOnce: the connection that answered is retired, and the
	// request sent again at once on a new one, once.
	RetryNewConnOnce
	// RetryFreshToken: sent again once with a newly signed provider token
	// whose iat is now (APNs refused the cached one as expired), or, for
	// FCM, with a newly fetched OAuth access token (HTTP 401 without an
	// FcmError detail: the cached access token was refused).
	RetryFreshToken
	// RetryOtherHost: sent again once on the other APNs host when the
	// credential's environment is auto (a sandbox token sent to production
	// or the reverse); otherwise RetryNone.
	RetryOtherHost
	// RetryOtherKey: Web Push; sent again signed with the next configured
	// VAPID key (the push service refused the key or the Authorization
	// header), at most once per key.
	RetryOtherKey
)

var retryPolicyNames = [...]string{
	RetryNone: "none", RetryBackoff: "backoff", RetryNewConn: "new_conn", RetryNewConnOnce: "new_conn_once",
	RetryFreshToken: "fresh_token", RetryOtherHost: "other_host", RetryOtherKey: "other_key",
}

// String is the policy's snake_case name.
func (p RetryPolicy) String() string {
	if int(p) < len(retryPolicyNames) {
		return retryPolicyNames[p]
	}
	return "unknown"
}

// BacksOff says whether the policy retries after back-off, bounded by the
// sender's attempts and the caller's deadline (RetryBackoff, RetryNewConn).
func (p RetryPolicy) BacksOff() bool { return p == RetryBackoff || p == RetryNewConn }

// Backoff is the wait before retry number attempt (1-based): the server's
// Retry-After (seconds) when it gave one, else exponential from base with
// full jitter over the upper half, capped at ceiling. rnd(n) returns a
// uniform value in [0, n) (math/rand/v2's N, injected so the function
// stays pure).
func Backoff(attempt, retryAfter int, base, ceiling time.Duration, rnd func(time.Duration) time.Duration) time.Duration {
	if retryAfter > 0 {
		return time.Duration(retryAfter) * time.Second
	}
	ceil := min(base<<min(max(attempt-1, 0), 6), ceiling)
	return ceil/2 + rnd(ceil/2+1)
}

// ReachedUpstream reports whether an attempt that ended with this status
// (0: no answer) and error counts among those that reached the upstream:
// it was answered, or it may have been delivered. An attempt refused or
// failed before its request was sent does not count.
func ReachedUpstream(status int, e *Error) bool {
	return status != 0 || e == nil || e.MaybeDelivered
}

// WithAttempts adds to the message of a final error how many attempts
// reached the upstream, when there was more than one.
func WithAttempts(e *Error, attempts int) *Error {
	if attempts > 1 {
		e.Message += fmt.Sprintf(" (after %d attempts)", attempts)
	}
	return e
}

// RetryAfterSeconds parses a Retry-After header (RFC 9110: delay-seconds
// or an HTTP-date, judged against now) into whole seconds; 0 when absent,
// invalid or past.
func RetryAfterSeconds(v string, now time.Time) int {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return max(secs, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return int(d.Seconds() + 0.999)
		}
	}
	return 0
}
