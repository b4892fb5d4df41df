package translate

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Web Push limits (RFC 8030, RFC 8291).
const (
	// WebPushRecordSize is the size of the one aes128gcm record pushproxy
	// sends (the rs field of the RFC 8188 header).
	WebPushRecordSize = 4096
	// WebPushHeaderSize is the aes128gcm content-coding header that precedes
	// the record: salt (16) ‖ rs (4) ‖ idlen (1) ‖ keyid (the 65-byte
	// ephemeral public key).
	WebPushHeaderSize = 16 + 4 + 1 + 65
	// WebPushMaxBody is the largest body every push service must accept
	// (RFC 8291 §4: 4096 octets of payload body, content-coding header and
	// authentication tag included).
	WebPushMaxBody = 4096
	// WebPushMaxPlaintext is the largest plaintext that fits WebPushMaxBody
	// in one record: 4096 − 86 (header) − 16 (AEAD tag) − 1 (padding
	// delimiter) = 3993 bytes.
	WebPushMaxPlaintext = WebPushMaxBody - WebPushHeaderSize - 16 - 1
	// WebPushMaxTopic is the longest Topic header (RFC 8030 §5.4).
	WebPushMaxTopic = 32
	// WebPushMaxEndpoint bounds the endpoint URL's length.
	WebPushMaxEndpoint = 4096
	// DefaultWebPushTTL is webpush.default_ttl's default: 28 days, the
	// longest that FCM keeps a message.
	DefaultWebPushTTL = 2419200
	// DeclarativeWebPushMagic is the "web_push" member that marks a
	// Declarative Web Push message (the RFC number of Web Push).
	DeclarativeWebPushMagic = 8030
)

// Web Push urgencies (RFC 8030 §5.3), lowest first.
var WebPushUrgencies = []string{"very-low", "low", "normal", "high"}

// Subscription is a validated Web Push subscription: where to POST and the
// user agent's keys.
type Subscription struct {
	Endpoint string
	P256DH   []byte // the user agent's public key: a 65-byte uncompressed P-256 point
	Auth     []byte // the 16-byte authentication secret
}

// WebPushTarget is what the proxy resolved before translation.
type WebPushTarget struct {
	// DefaultTTL is webpush.default_ttl (DefaultWebPushTTL when not
	// configured): the TTL of a notification without ttl. 0 is a valid TTL
	// ("deliver now or drop"); a negative value means DefaultWebPushTTL.
	DefaultTTL int64
	// NewID is the answer's id when the caller gave none (a new UUID).
	NewID string
}

// WebPushMessage is everything the Web Push sender needs besides the
// subscription and the VAPID keys: the plaintext to encrypt and the RFC 8030
// headers.
type WebPushMessage struct {
	// ID is the caller's id (a UUID, lower-cased) or WebPushTarget.NewID.
	// It is not sent upstream (Web Push has no message id header); it is
	// echoed in the answer.
	ID        string
	Plaintext []byte
	TTL       int64  // TTL header, seconds; always sent
	Urgency   string // Urgency header; "" → not sent (the service assumes normal)
	Topic     string // Topic header; "" → not sent
}

// DecodeWebPushKey decodes a subscription key or VAPID key given in base64:
// base64url or standard alphabet, padded or not (browsers' toJSON() gives
// unpadded base64url; older code often sends standard base64).
func DecodeWebPushKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("is empty")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return nil, errors.New("contains white space")
	}
	t := strings.TrimRight(s, "=")
	if len(s)-len(t) > 2 {
		return nil, errors.New("has too much '=' padding")
	}
	std := strings.ContainsAny(t, "+/")
	if std && strings.ContainsAny(t, "-_") {
		return nil, errors.New("mixes the base64 and base64url alphabets")
	}
	enc := base64.RawURLEncoding
	if std {
		enc = base64.RawStdEncoding
	}
	b, err := enc.DecodeString(t)
	if err != nil {
		return nil, errors.New("is not valid base64url (or base64)")
	}
	return b, nil
}

// ValidateSubscription checks a browser's PushSubscription.toJSON() and
// decodes its keys. The errors are invalid_recipient naming the field, except
// a plain-http endpoint, which is destination_forbidden (pushproxy never
// sends a message in clear text). Whether the host is a known push service is
// the sender's endpoint guard's business.
func ValidateSubscription(s *WebPushRecipient) (*Subscription, *Error) {
	if s == nil {
		return nil, MissingRecipient("to.webpush", "is required for a Web Push notification")
	}
	if err := ValidateEndpoint(s.Endpoint); err != nil {
		return nil, err
	}
	p, err := DecodeWebPushKey(s.Keys.P256DH)
	if err != nil {
		return nil, InvalidRecipient("to.webpush.keys.p256dh", "%s; give the subscription's keys.p256dh as the browser's toJSON() returns it", err.Error())
	}
	if len(p) != 65 || p[0] != 4 {
		return nil, InvalidRecipient("to.webpush.keys.p256dh", "must be a 65-byte uncompressed P-256 public key (it decodes to %d bytes)", len(p))
	}
	if _, err := ecdh.P256().NewPublicKey(p); err != nil {
		return nil, InvalidRecipient("to.webpush.keys.p256dh", "is not a point on the P-256 curve; the subscription is corrupt")
	}
	a, err := DecodeWebPushKey(s.Keys.Auth)
	if err != nil {
		return nil, InvalidRecipient("to.webpush.keys.auth", "%s; give the subscription's keys.auth as the browser's toJSON() returns it", err.Error())
	}
	if len(a) != 16 {
		return nil, InvalidRecipient("to.webpush.keys.auth", "must be a 16-byte authentication secret (it decodes to %d bytes)", len(a))
	}
	return &Subscription{Endpoint: s.Endpoint, P256DH: p, Auth: a}, nil
}

// ValidateEndpoint checks that an endpoint is an absolute https URL with a
// host and no fragment.
func ValidateEndpoint(endpoint string) *Error {
	const field = "to.webpush.endpoint"
	if endpoint == "" {
		return MissingRecipient(field, "is required: the subscription's endpoint URL")
	}
	if len(endpoint) > WebPushMaxEndpoint {
		return InvalidRecipient(field, "is %d bytes; an endpoint URL is at most %d", len(endpoint), WebPushMaxEndpoint)
	}
	if strings.TrimSpace(endpoint) != endpoint || !validHeaderValue(endpoint) || strings.ContainsAny(endpoint, " \t") {
		return InvalidRecipient(field, "must not contain spaces or control characters")
	}
	u, err := url.Parse(endpoint)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return InvalidRecipient(field, "must be an absolute https URL (https://host/path)")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		e := NewError(CodeDestinationForbidden, field+": a push endpoint must use https, not http", "use the endpoint the browser's PushSubscription gives; every push service uses https")
		e.Field = field
		return e
	default:
		return InvalidRecipient(field, "must be an https URL, not %s:", u.Scheme)
	}
	if u.Hostname() == "" {
		return InvalidRecipient(field, "has no host name")
	}
	if u.Fragment != "" || strings.Contains(endpoint, "#") {
		return InvalidRecipient(field, "must not have a #fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return InvalidRecipient(field, "has an invalid port")
		}
	}
	return nil
}

// Known push service names (WebPushService).
const (
	ServiceFCM     = "fcm"
	ServiceMozilla = "mozilla"
	ServiceApple   = "apple"
	ServiceWNS     = "wns"
	ServiceOther   = "other"
)

// WebPushService names the push service an endpoint host belongs to, for
// choosing the error table and for hints: "fcm" (Chrome, Edge on Android,
// Opera, Samsung Internet, Brave …), "mozilla" (Firefox), "apple" (Safari),
// "wns" (Edge on Windows) or "other". host may carry a port.
func WebPushService(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case host == "fcm.googleapis.com" || host == "android.googleapis.com":
		return ServiceFCM
	case host == "push.services.mozilla.com" || strings.HasSuffix(host, ".push.services.mozilla.com"):
		return ServiceMozilla
	case host == "push.apple.com" || strings.HasSuffix(host, ".push.apple.com"):
		return ServiceApple
	case strings.HasSuffix(host, ".notify.windows.com"):
		return ServiceWNS
	}
	return ServiceOther
}

// declarativeNotification is the "notification" member of a Declarative Web
// Push message (W3C Push API, "declarative push message"). Fields are in the
// order they are written.
type declarativeNotification struct {
	Title    string          `json:"title"`
	Body     string          `json:"body,omitempty"`
	Navigate string          `json:"navigate,omitempty"`
	Tag      string          `json:"tag,omitempty"`
	Image    string          `json:"image,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

type declarativeMessage struct {
	WebPush      int                      `json:"web_push"`
	Notification *declarativeNotification `json:"notification"`
	AppBadge     *int                     `json:"app_badge,omitempty"`
}

// dataOnlyMessage is the plaintext of a notification with data but nothing
// to show: a message for the service worker.
type dataOnlyMessage struct {
	Data     json.RawMessage `json:"data,omitempty"`
	Navigate string          `json:"navigate,omitempty"`
	Image    string          `json:"image,omitempty"`
	AppBadge *int            `json:"app_badge,omitempty"`
}

// BuildWebPush translates a neutral notification into a Web Push message.
//
// The plaintext, unless webpush.payload replaces it, is a Declarative Web Push
// message when there is a title or body:
//
//	{"web_push":8030,"notification":{"title","body","navigate","tag","image","data"},"app_badge":N}
//
// (title from title, body from body, navigate from url, tag from collapse_id,
// image from image, data from data; app_badge from badge). Safari shows it
// without a service worker when it has a navigate URL; other browsers hand it
// to the service worker, which reads the same fields. Without a title or body
// the plaintext is {"data":…} (plus navigate/image/app_badge when given), a
// message for the service worker only. subtitle and sound have no Web Push
// equivalent and are ignored. webpush.payload is sent verbatim: a JSON string
// as its bytes, anything else as the JSON given.
//
// TTL comes from ttl, else t.DefaultTTL, and is always set; Urgency from
// priority (high, normal, low) unless webpush.urgency (very-low, low,
// normal, high) overrides it; Topic from collapse_id (see WebPushTopic)
// unless webpush.topic overrides it. A plaintext over WebPushMaxPlaintext is
// payload_too_large.
func BuildWebPush(n *Notification, t WebPushTarget) (*WebPushMessage, *Error) {
	m := &WebPushMessage{}
	var ov WebPushOverrides
	if n.WebPush != nil {
		ov = *n.WebPush
	}

	// TTL.
	switch {
	case n.TTL != nil:
		if *n.TTL < 0 {
			return nil, Invalid("ttl", "must be 0 or more seconds")
		}
		m.TTL = *n.TTL
	case t.DefaultTTL >= 0:
		m.TTL = t.DefaultTTL
	default:
		m.TTL = DefaultWebPushTTL
	}

	// Urgency.
	switch n.Priority {
	case "":
	case "high", "normal", "low":
		m.Urgency = n.Priority
	default:
		return nil, Invalid("priority", "must be high, normal or low, not %q", n.Priority)
	}
	if ov.Urgency != "" {
		ok := false
		for _, u := range WebPushUrgencies {
			ok = ok || ov.Urgency == u
		}
		if !ok {
			return nil, Invalid("webpush.urgency", "must be very-low, low, normal or high, not %q", ov.Urgency)
		}
		m.Urgency = ov.Urgency
	}

	// Topic.
	if !validHeaderValue(n.CollapseID) {
		return nil, Invalid("collapse_id", "must not contain control characters")
	}
	m.Topic = WebPushTopic(n.CollapseID)
	if ov.Topic != "" {
		if !IsWebPushTopic(ov.Topic) {
			return nil, Invalid("webpush.topic", "must be 1 to %d characters of the base64url alphabet (A-Z a-z 0-9 - _); use collapse_id for any other string, pushproxy maps it", WebPushMaxTopic)
		}
		m.Topic = ov.Topic
	}

	// ID.
	switch {
	case n.ID == "":
		m.ID = t.NewID
	case !IsUUID(n.ID):
		return nil, Invalid("id", "must be a UUID (8-4-4-4-12 hex digits)")
	default:
		m.ID = strings.ToLower(n.ID)
	}

	// Plaintext.
	if n.Badge != nil && *n.Badge < 0 {
		return nil, Invalid("badge", "must be 0 or more (0 clears the badge)")
	}
	if raw := bytes.TrimSpace(ov.Payload); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, Invalid("webpush.payload", "is not a valid JSON string")
			}
			m.Plaintext = []byte(s)
		} else {
			if !json.Valid(raw) {
				return nil, Invalid("webpush.payload", "is not valid JSON")
			}
			m.Plaintext = bytes.Clone(raw)
		}
		if len(m.Plaintext) == 0 {
			return nil, Invalid("webpush.payload", "is empty; leave it out to send the default payload")
		}
	} else {
		p, err := webPushPlaintext(n)
		if err != nil {
			return nil, err
		}
		m.Plaintext = p
	}
	if len(m.Plaintext) > WebPushMaxPlaintext {
		e := NewError(CodePayloadTooLarge,
			"the Web Push payload is "+strconv.Itoa(len(m.Plaintext))+" bytes; at most "+strconv.Itoa(WebPushMaxPlaintext)+" fit in one encrypted 4096-byte message",
			"shorten the body or data, or send an id and let the service worker fetch the rest")
		e.Platform = PlatformWebPush
		return nil, e
	}
	return m, nil
}

func webPushPlaintext(n *Notification) ([]byte, *Error) {
	var data json.RawMessage
	if len(n.Data) > 0 {
		b, err := marshalNoEscape(n.Data)
		if err != nil {
			return nil, Invalid("data", "cannot be encoded as JSON: %v", err)
		}
		data = b
	}
	var v any
	switch {
	case n.Title != "" || n.Body != "":
		v = declarativeMessage{
			WebPush: DeclarativeWebPushMagic,
			Notification: &declarativeNotification{
				Title: n.Title, Body: n.Body, Navigate: n.URL, Tag: n.CollapseID, Image: n.Image, Data: data,
			},
			AppBadge: n.Badge,
		}
	case data != nil || n.URL != "" || n.Image != "" || n.Badge != nil:
		v = dataOnlyMessage{Data: data, Navigate: n.URL, Image: n.Image, AppBadge: n.Badge}
	default:
		return nil, Invalid("", "the notification is empty: give a title or body, data, or webpush.payload")
	}
	b, err := marshalNoEscape(v)
	if err != nil {
		return nil, Invalid("data", "cannot be encoded as JSON: %v", err)
	}
	return b, nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// IsWebPushTopic reports whether s can be sent as a Topic header: 1 to 32
// characters of the URL- and filename-safe base64 alphabet (RFC 8030 §5.4).
func IsWebPushTopic(s string) bool {
	if len(s) == 0 || len(s) > WebPushMaxTopic {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// WebPushTopic maps a collapse_id to a Topic header value: the id itself
// when it already is one (IsWebPushTopic), else the base64url encoding of the
// first 24 bytes of its SHA-256 (32 characters). The mapping is
// deterministic, so every replica and every retry uses the same Topic for the
// same collapse_id. "" stays "" (no Topic).
func WebPushTopic(collapseID string) string {
	if collapseID == "" || IsWebPushTopic(collapseID) {
		return collapseID
	}
	sum := sha256.Sum256([]byte(collapseID))
	return base64.RawURLEncoding.EncodeToString(sum[:24])
}
