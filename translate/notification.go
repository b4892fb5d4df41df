package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Notification is the platform-neutral request body of POST /v1/notifications.
type Notification struct {
	To         Recipient                  `json:"to"`
	Title      string                     `json:"title,omitempty"`
	Subtitle   string                     `json:"subtitle,omitempty"`
	Body       string                     `json:"body,omitempty"`
	Badge      *int                       `json:"badge,omitempty"`
	Sound      json.RawMessage            `json:"sound,omitempty"` // a name, or APNs's critical-sound dictionary
	Image      string                     `json:"image,omitempty"`
	URL        string                     `json:"url,omitempty"`
	Data       map[string]json.RawMessage `json:"data,omitempty"`
	Priority   string                     `json:"priority,omitempty"` // high | normal | low
	TTL        *int64                     `json:"ttl,omitempty"`      // seconds; 0 = now or never
	CollapseID string                     `json:"collapse_id,omitempty"`
	PushType   string                     `json:"push_type,omitempty"`
	ID         string                     `json:"id,omitempty"`
	DryRun     bool                       `json:"dry_run,omitempty"`
	APNs       *APNsOverrides             `json:"apns,omitempty"`
	WebPush    *WebPushOverrides          `json:"webpush,omitempty"`
	FCM        *FCMOverrides              `json:"fcm,omitempty"`
}

// Recipient holds exactly one of APNs, WebPush or FCM.
type Recipient struct {
	APNs    *APNsRecipient    `json:"apns,omitempty"`
	WebPush *WebPushRecipient `json:"webpush,omitempty"`
	FCM     *FCMRecipient     `json:"fcm,omitempty"`
}

// APNsRecipient addresses one device of one app.
type APNsRecipient struct {
	Token       string `json:"token"`
	Topic       string `json:"topic,omitempty"`
	Credential  string `json:"credential,omitempty"`
	Environment string `json:"environment,omitempty"` // production | development
}

// WebPushRecipient is a browser's PushSubscription.toJSON() plus the name of
// the VAPID key it was made with.
type WebPushRecipient struct {
	Endpoint       string          `json:"endpoint"`
	Keys           WebPushKeys     `json:"keys"`
	ExpirationTime json.RawMessage `json:"expirationTime,omitempty"`
	VAPIDKey       string          `json:"vapid_key,omitempty"`
}

// WebPushKeys are the subscription's public key and authentication secret.
type WebPushKeys struct {
	P256DH string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// APNsOverrides set what only APNs has; they win over derived values.
type APNsOverrides struct {
	Headers map[string]string          `json:"headers,omitempty"`
	APS     map[string]json.RawMessage `json:"aps,omitempty"`
	Payload map[string]json.RawMessage `json:"payload,omitempty"`
}

// WebPushOverrides set what only Web Push has.
type WebPushOverrides struct {
	Topic   string          `json:"topic,omitempty"`
	Urgency string          `json:"urgency,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Platform names.
const (
	PlatformAPNs    = "apns"
	PlatformWebPush = "webpush"
	PlatformFCM     = "fcm"
)

// Platform reports which platform the notification is addressed to, or an
// invalid_request error when it names none or several.
func (n *Notification) Platform() (string, *Error) {
	given := 0
	for _, set := range []bool{n.To.APNs != nil, n.To.WebPush != nil, n.To.FCM != nil} {
		if set {
			given++
		}
	}
	switch {
	case given > 1:
		return "", Invalid("to", "give exactly one of to.apns, to.webpush and to.fcm, not several")
	case n.To.APNs != nil:
		return PlatformAPNs, nil
	case n.To.WebPush != nil:
		return PlatformWebPush, nil
	case n.To.FCM != nil:
		return PlatformFCM, nil
	}
	return "", Invalid("to", "a recipient is required: give to.apns, to.webpush or to.fcm")
}

// DecodeNotification decodes one notification strictly: unknown fields,
// trailing data and wrong types are invalid_request errors naming the field.
func DecodeNotification(data []byte) (*Notification, *Error) {
	var n Notification
	if err := decodeStrict(data, &n); err != nil {
		return nil, err
	}
	if p := checkJSON(data, notificationNullAllowed, notificationFields); p != nil {
		return nil, problemError(p)
	}
	return &n, nil
}

// notificationNullAllowed says where a notification may hold null: inside
// the free-form values (data, sound's dictionary, the apns aps and payload
// blocks, a Web Push payload object, the fcm android and message blocks)
// and as a subscription's expirationTime, which browsers'
// PushSubscription.toJSON() writes as null.
// Everywhere else null is refused: a field is given or left out.
func notificationNullAllowed(p []string) bool {
	switch {
	case len(p) >= 2 && (p[0] == "data" || p[0] == "sound"):
		return true
	case len(p) >= 3 && p[0] == "apns" && (p[1] == "aps" || p[1] == "payload"):
		return true
	case len(p) >= 3 && p[0] == "webpush" && p[1] == "payload":
		return true
	case len(p) >= 3 && p[0] == "fcm" && (p[1] == "android" || p[1] == "message"):
		// null removes a key from the derived FCM message (see BuildFCM).
		return true
	case len(p) >= 3 && p[0] == "to" && p[1] == "webpush" && p[2] == "expirationTime":
		return true
	}
	return false
}

// problemError is the invalid_request of a checkJSON finding.
func problemError(p *jsonProblem) *Error {
	if p.path == "" {
		return Invalid("", "%s", p.msg)
	}
	return Invalid(p.path, "%s", p.msg)
}

// DecodeBatch decodes {"notifications":[…]} strictly at the top level; each
// entry is kept raw so that one bad entry does not fail the others.
func DecodeBatch(data []byte) ([]json.RawMessage, *Error) {
	var b struct {
		Notifications []json.RawMessage `json:"notifications"`
	}
	if err := decodeStrict(data, &b); err != nil {
		return nil, err
	}
	// The entries are checked one by one when they are decoded; here only
	// the envelope (a duplicate "notifications", a null).
	if p := checkEnvelope(data, batchFields); p != nil {
		return nil, problemError(p)
	}
	if b.Notifications == nil {
		return nil, Invalid("notifications", "is required (an array of notifications)")
	}
	return b.Notifications, nil
}

func decodeStrict(data []byte, v any) *Error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Invalid("", "unexpected data after the JSON object")
	}
	return nil
}

// jsonError turns an encoding/json error into an invalid_request that names
// the field where possible.
func jsonError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		return Invalid(field, "expected %s, got JSON %s", friendlyType(typeErr.Type.String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return Invalid("", "malformed JSON at byte %d: %s", syntaxErr.Offset, syntaxErr.Error())
	case errors.Is(err, io.EOF):
		return Invalid("", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid("", "the JSON body ends early")
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name := strings.Trim(rest, `"`)
		return Invalid(name, "unknown field %q", name)
	}
	return Invalid("", "%s", strings.TrimPrefix(msg, "json: "))
}

func friendlyType(t string) string {
	switch {
	case strings.HasPrefix(t, "map[") || strings.HasPrefix(t, "translate.") || strings.HasPrefix(t, "*translate."):
		return "an object"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case strings.Contains(t, "int"):
		return "an integer"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	}
	return fmt.Sprintf("a %s", t)
}
