package creds

import (
	"fmt"
	"sync/atomic"
	"time"
)

// SkewLimit is the clock difference with an upstream beyond which
// pushproxy warns: a provider token's iat or a VAPID JWT's exp that far off
// is the classic cause of ExpiredProviderToken and refused JWTs.
const SkewLimit = 60 * time.Second

// Skew tracks this machine's clock against an upstream's, from the Date
// header of its answers (one-second resolution). Date changes once a
// second, so a value already seen is not parsed again: Note is cheap on
// every answer. Safe for concurrent use; the zero value knows nothing.
type Skew struct {
	last  atomic.Pointer[string] // the Date value last parsed
	secs  atomic.Int64           // this clock minus the upstream's, whole seconds
	known atomic.Bool
}

// httpDate is the IMF-fixdate form of HTTP's Date header.
const httpDate = "Mon, 02 Jan 2006 15:04:05 GMT"

// Note records the skew an answer's Date header shows at now.
func (k *Skew) Note(date string, now time.Time) {
	if date == "" {
		return
	}
	if p := k.last.Load(); p != nil && *p == date {
		return
	}
	t, err := time.Parse(httpDate, date)
	if err != nil {
		return
	}
	d := now.Sub(t).Round(time.Second)
	if d == time.Second || d == -time.Second {
		d = 0 // within the header's resolution
	}
	k.secs.Store(int64(d / time.Second))
	k.known.Store(true)
	k.last.Store(&date)
}

// Get is the skew and whether an answer has shown one.
func (k *Skew) Get() (time.Duration, bool) {
	return time.Duration(k.secs.Load()) * time.Second, k.known.Load()
}

// Hint is the sentence to add to a credentials_rejected hint when the
// skew is beyond SkewLimit, else "".
func (k *Skew) Hint(upstream string) string {
	d, ok := k.Get()
	if !ok || (d <= SkewLimit && d >= -SkewLimit) {
		return ""
	}
	return fmt.Sprintf("; this machine's clock is %s off %s's (Date header): fix NTP", d, upstream)
}
