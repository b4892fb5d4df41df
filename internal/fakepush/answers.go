package fakepush

import (
	"net/http"
	"strconv"
)

// answer is an HTTP answer to write.
type answer struct {
	status int
	body   string
	header http.Header
}

func (a answer) write(w http.ResponseWriter) {
	for k, v := range a.header {
		w.Header()[k] = v
	}
	if a.body != "" && w.Header().Get("Content-Type") == "" {
		ct := "text/plain; charset=utf-8"
		if len(a.body) > 0 && a.body[0] == '{' {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

// What the fake refuses.
type kind int

const (
	kindNotFound kind = iota
	kindGone
	kindNoTTL
	kindBadTTL
	kindBadTopic
	kindBadUrgency
	kindBadJWT
	kindKeyMismatch
	kindBadEncoding
	kindTooLarge
	kindRateLimited
	kindUnavailable
)

func mozilla(status, errno int, msg string) answer {
	return answer{status: status, body: `{"code": ` + strconv.Itoa(status) + `, "errno": ` + strconv.Itoa(errno) +
		`, "error": "` + http.StatusText(status) + `", "message": "` + msg +
		`", "more_info": "http://autopush.readthedocs.io/en/latest/http.html#error-codes"}`}
}

func apple(status int, reason string) answer {
	return answer{status: status, body: `{"reason":"` + reason + `"}`}
}

func wns(status int, st, desc string) answer {
	h := http.Header{"X-Wns-Status": {st}}
	if desc != "" {
		h.Set("X-WNS-Error-Description", desc)
	}
	return answer{status: status, header: h}
}

// styleAnswer is how each service words a refusal (the bodies the services
// send; see translate's table for the sources).
func styleAnswer(style string, k kind) answer {
	switch style {
	case StyleFCM:
		switch k {
		case kindNotFound:
			return answer{status: 404, body: "A valid push subscription endpoint should be specified in the URL as such: https://fcm.googleapis.com/wp/dHIoDxE7Hdg:APA91bH1Zj0kNa...\n"}
		case kindGone:
			return answer{status: 410, body: "push subscription has unsubscribed or expired.\n"}
		case kindNoTTL, kindBadTTL:
			return answer{status: 400, body: "<HTML>\n<HEAD>\n<TITLE>InvalidTtlParameter</TITLE>\n</HEAD>\n<BODY>\n<H1>InvalidTtlParameter</H1>\n<H2>Error 400</H2>\n</BODY>\n</HTML>\n"}
		case kindBadTopic, kindBadUrgency, kindBadEncoding:
			return answer{status: 400, body: "invalid request\n"}
		case kindBadJWT:
			return answer{status: 403, body: "invalid JWT provided\n"}
		case kindKeyMismatch:
			return answer{status: 403, body: "the VAPID credentials in the authorization header do not correspond to the credentials used to create the subscriptions.\n"}
		case kindTooLarge:
			return answer{status: 413, body: "Request Entity Too Large\n"}
		case kindRateLimited:
			return answer{status: 429, body: "Too Many Requests\n", header: http.Header{"Retry-After": {"1"}}}
		case kindUnavailable:
			return answer{status: 503, body: "Service Unavailable\n"}
		}
	case StyleApple:
		switch k {
		case kindNotFound, kindGone:
			return apple(410, "Unregistered")
		case kindNoTTL, kindBadTTL:
			return apple(400, "BadTtl")
		case kindBadTopic:
			return apple(400, "BadWebPushTopic")
		case kindBadUrgency:
			return apple(400, "BadUrgency")
		case kindBadJWT:
			return apple(403, "BadJwtToken")
		case kindKeyMismatch:
			return apple(403, "VapidPkHashMismatch")
		case kindBadEncoding:
			return apple(400, "BadRequest")
		case kindTooLarge:
			return apple(413, "PayloadTooLarge")
		case kindRateLimited:
			a := apple(429, "TooManyRequests")
			a.header = http.Header{"Retry-After": {"1"}}
			return a
		case kindUnavailable:
			return apple(503, "ServiceUnavailable")
		}
	case StyleWNS:
		switch k {
		case kindNotFound:
			return wns(404, "dropped", "Channel not found")
		case kindGone:
			return wns(410, "dropped", "Channel expired")
		case kindNoTTL, kindBadTTL:
			return wns(400, "dropped", "Invalid TTL header")
		case kindBadTopic, kindBadUrgency, kindBadEncoding:
			return wns(400, "dropped", "Invalid header")
		case kindBadJWT:
			return wns(401, "dropped", "Invalid VAPID token")
		case kindKeyMismatch:
			return wns(403, "dropped", "The VAPID public key does not match the channel")
		case kindTooLarge:
			return wns(413, "dropped", "Payload too large")
		case kindRateLimited:
			a := wns(406, "channelthrottled", "")
			a.header.Set("Retry-After", "1")
			return a
		case kindUnavailable:
			return wns(503, "dropped", "Service unavailable")
		}
	}
	// Mozilla autopush.
	switch k {
	case kindNotFound:
		return mozilla(404, 102, "Invalid URL endpoint")
	case kindGone:
		return mozilla(410, 106, "No such subscription")
	case kindNoTTL:
		return mozilla(400, 111, "Missing TTL value")
	case kindBadTTL:
		return mozilla(400, 112, "Invalid TTL header value")
	case kindBadTopic:
		return mozilla(400, 113, "Invalid Topic header value")
	case kindBadUrgency:
		return mozilla(400, 111, "Invalid Urgency header value")
	case kindBadJWT:
		return mozilla(401, 109, "Request did not validate Invalid Authorization Header")
	case kindKeyMismatch:
		return mozilla(401, 109, "VAPID public key mismatch")
	case kindBadEncoding:
		return mozilla(400, 110, "Invalid crypto headers")
	case kindTooLarge:
		return mozilla(413, 104, "Data payload too large")
	case kindRateLimited:
		a := mozilla(429, 201, "Use exponential back-off for retries")
		a.header = http.Header{"Retry-After": {"1"}}
		return a
	}
	return mozilla(503, 201, "Use exponential back-off for retries")
}

// styleAnswerForStatus is the style's usual answer for a scripted status.
func styleAnswerForStatus(style string, status int) answer {
	switch status {
	case 404:
		return styleAnswer(style, kindNotFound)
	case 410:
		return styleAnswer(style, kindGone)
	case 413:
		return styleAnswer(style, kindTooLarge)
	case 429:
		return styleAnswer(style, kindRateLimited)
	case 401, 403:
		return styleAnswer(style, kindBadJWT)
	case 400:
		return styleAnswer(style, kindBadTopic)
	}
	if status >= 500 {
		a := styleAnswer(style, kindUnavailable)
		a.status = status
		return a
	}
	return answer{status: status, body: http.StatusText(status) + "\n"}
}
