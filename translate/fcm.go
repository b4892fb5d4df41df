package translate

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// FCM limits and defaults.
const (
	// FCMMaxMessage is the largest FCM message pushproxy sends: the JSON of
	// the message (notification, data, android and the other blocks) without
	// the registration token, in bytes (FCM's 4096-byte payload limit).
	FCMMaxMessage = 4096
	// FCMMaxTTL is the longest android.ttl FCM keeps a message: 28 days.
	FCMMaxTTL = 2419200
	// FCMMinToken and FCMMaxToken bound a registration token's length.
	// Tokens are opaque; today's are about 150 to 200 characters.
	FCMMinToken = 32
	FCMMaxToken = 1024
)

// FCMRecipient addresses one Android (or other Firebase) app instance: its
// registration token, and optionally the name of the FCM credential
// (service account, hence Firebase project) to send with.
type FCMRecipient struct {
	Token      string `json:"token"`
	Credential string `json:"credential,omitempty"`
}

// FCMOverrides is the notification's fcm block: JSON merged into the
// derived FCM message, so that FCM fields pushproxy does not map need no
// upgrade. Android merges into message.android, Message into message
// itself; merges are deep (objects merge key by key) and null removes a
// key. ValidateOnly asks FCM to validate the message without delivering it.
type FCMOverrides struct {
	Android      map[string]json.RawMessage `json:"android,omitempty"`
	Message      map[string]json.RawMessage `json:"message,omitempty"`
	ValidateOnly bool                       `json:"validate_only,omitempty"`
}

// FCMTarget is what the proxy resolved before translation.
type FCMTarget struct {
	// NewID is the answer's id when the caller gave none (a new UUID).
	NewID string
}

// FCMRequest is everything the FCM sender needs for one request besides the
// project (from the credential) and the access token.
type FCMRequest struct {
	// ID is the caller's id (a UUID, lower-cased) or FCMTarget.NewID. FCM has
	// no caller-chosen message id: it is echoed in the answer only.
	ID string
	// Token is the registration token (message.token).
	Token string
	// Body is the request body, {"message":{…}} plus "validate_only":true
	// when asked.
	Body []byte
	// Message is the message's JSON with the token (Body's "message").
	Message json.RawMessage
	// MessageSize is the length of the message's JSON without the token:
	// what FCMMaxMessage bounds.
	MessageSize  int
	ValidateOnly bool
}

// isFCMToken reports whether tok is made of [A-Za-z0-9_:-] only (a loop:
// the regular expression cost a tenth of BuildFCM).
func isFCMToken(tok string) bool {
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return tok != ""
}

// ValidFCMToken checks an FCM registration token: present, FCMMinToken to
// FCMMaxToken characters of [A-Za-z0-9_:-].
func ValidFCMToken(tok string) *Error {
	if tok == "" {
		return MissingRecipient("to.fcm.token", "the registration token is required")
	}
	if len(tok) < FCMMinToken || len(tok) > FCMMaxToken {
		return InvalidRecipient("to.fcm.token", "an FCM registration token is %d to %d characters, this one has %d", FCMMinToken, FCMMaxToken, len(tok))
	}
	if !isFCMToken(tok) {
		return InvalidRecipient("to.fcm.token", "an FCM registration token has only letters, digits, '_', '-' and ':' (no spaces, quotes or line breaks)")
	}
	return nil
}

// fcmReservedData are data keys FCM refuses; keys starting with
// fcmReservedPrefixes are refused too.
var (
	fcmReservedData     = []string{"from", "notification", "message_type"}
	fcmReservedPrefixes = []string{"google.", "gcm."}
	// fcmRecipientKeys are the message's target fields: the recipient is
	// to.fcm.token, never fcm.message.
	fcmRecipientKeys = []string{"token", "topic", "condition"}
	fcmTTLRe         = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,9})?s$`)
)

// FCMReservedDataKey reports whether FCM refuses k as a data key, and why.
func FCMReservedDataKey(k string) (string, bool) {
	if slices.Contains(fcmReservedData, k) {
		return "is a key FCM reserves (from, notification, message_type)", true
	}
	for _, p := range fcmReservedPrefixes {
		if strings.HasPrefix(k, p) {
			return "starts with " + strconv.Quote(p) + ", a prefix FCM reserves", true
		}
	}
	if k == "" {
		return "is an empty key", true
	}
	return "", false
}

// BuildFCM translates a neutral notification into an FCM HTTP v1 request
// body (https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages):
//
//   - title, body, image → message.notification.{title, body, image};
//     subtitle has no Android equivalent and is not sent;
//   - data → message.data: FCM takes only string values, so a string is
//     sent as it is and any other JSON value as its JSON text ({"n":1} →
//     "1", {"o":{"a":true}} → "{\"a\":true}"); url → message.data.url;
//   - priority high → android.priority HIGH, normal and low → NORMAL;
//   - ttl → android.ttl "<n>s" (0 allowed, at most 28 days; absent: FCM's
//     default of 4 weeks);
//   - collapse_id → android.collapse_key; sound → android.notification.sound
//     (a name, or the name of an APNs sound dictionary); badge →
//     android.notification.notification_count;
//   - fcm.android is merged into message.android, then fcm.message into
//     message, deeply (objects key by key), null removing a key: FCM fields
//     pushproxy does not map (channel_id, direct_boot_ok, apns, webpush,
//     fcm_options …) pass through.
//
// Refused before sending: data keys FCM reserves (from, notification,
// message_type, google.* and gcm.*) as invalid_request naming the key; a
// non-string value in the merged message.data; a recipient set in
// fcm.message (token, topic, condition); android.priority other than HIGH
// or NORMAL; android.ttl not of the form "<seconds>s"; an empty message;
// and a message whose JSON without the token is over FCMMaxMessage bytes,
// as payload_too_large.
func BuildFCM(n *Notification, t FCMTarget) (*FCMRequest, *Error) {
	to := n.To.FCM
	if to == nil {
		return nil, MissingRecipient("to.fcm", "is required for an FCM notification")
	}
	if err := ValidFCMToken(to.Token); err != nil {
		return nil, err
	}
	req := &FCMRequest{Token: to.Token}
	var ov FCMOverrides
	if n.FCM != nil {
		ov = *n.FCM
	}
	req.ValidateOnly = ov.ValidateOnly

	switch {
	case n.ID == "":
		req.ID = t.NewID
	case !IsUUID(n.ID):
		return nil, Invalid("id", "must be a UUID (8-4-4-4-12 hex digits)")
	default:
		req.ID = strings.ToLower(n.ID)
	}

	msg := map[string]any{}
	notif := map[string]any{}
	if n.Title != "" {
		notif["title"] = n.Title
	}
	if n.Body != "" {
		notif["body"] = n.Body
	}
	if n.Image != "" {
		notif["image"] = n.Image
	}
	if len(notif) > 0 {
		msg["notification"] = notif
	}

	data := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(n.Data)) {
		if why, bad := FCMReservedDataKey(k); bad {
			return nil, Invalid("data."+k, "%s; rename it", why)
		}
		s, err := fcmDataString(n.Data[k])
		if err != nil {
			return nil, Invalid("data."+k, "is not valid JSON")
		}
		data[k] = s
	}
	if n.URL != "" {
		if v, ok := data["url"]; ok && v != n.URL {
			return nil, Invalid("url", "data.url is given too, with another value; give one of them")
		}
		data["url"] = n.URL
	}
	if len(data) > 0 {
		msg["data"] = data
	}

	android := map[string]any{}
	switch n.Priority {
	case "":
	case "high":
		android["priority"] = "HIGH"
	case "normal", "low":
		android["priority"] = "NORMAL"
	default:
		return nil, Invalid("priority", "must be high, normal or low, not %q", n.Priority)
	}
	if n.TTL != nil {
		switch {
		case *n.TTL < 0:
			return nil, Invalid("ttl", "must be 0 or more seconds")
		case *n.TTL > FCMMaxTTL:
			return nil, Invalid("ttl", "is %d seconds; FCM keeps a message at most 28 days (%d seconds)", *n.TTL, FCMMaxTTL)
		}
		android["ttl"] = strconv.FormatInt(*n.TTL, 10) + "s"
	}
	if n.CollapseID != "" {
		android["collapse_key"] = n.CollapseID
	}
	anotif := map[string]any{}
	if len(n.Sound) > 0 {
		name, e := fcmSound(n.Sound)
		if e != nil {
			return nil, e
		}
		anotif["sound"] = name
	}
	if n.Badge != nil {
		if *n.Badge < 0 {
			return nil, Invalid("badge", "must be 0 or more")
		}
		anotif["notification_count"] = *n.Badge
	}
	if len(anotif) > 0 {
		android["notification"] = anotif
	}
	if len(android) > 0 {
		msg["android"] = android
	}

	// Overrides.
	if len(ov.Android) > 0 {
		a, _ := msg["android"].(map[string]any)
		if a == nil {
			a = map[string]any{}
		}
		if e := mergeRaw(a, ov.Android, "fcm.android"); e != nil {
			return nil, e
		}
		msg["android"] = a
	}
	if len(ov.Message) > 0 {
		for _, k := range fcmRecipientKeys {
			if _, ok := ov.Message[k]; ok {
				return nil, Invalid("fcm.message."+k, "cannot be set here: the recipient is to.fcm.token")
			}
		}
		if e := mergeRaw(msg, ov.Message, "fcm.message"); e != nil {
			return nil, e
		}
	}
	dropEmpty(msg, "notification")
	dropEmpty(msg, "data")
	if a, ok := msg["android"].(map[string]any); ok {
		dropEmpty(a, "notification")
		dropEmpty(a, "data")
		dropEmpty(msg, "android")
	}
	if e := checkFCMMessage(msg); e != nil {
		return nil, e
	}

	// The message with the token, encoded once. The token is only
	// [A-Za-z0-9_:-], so it is encoded as itself: the message without it is
	// exactly `"token":"<token>"` and one comma shorter (msg is not empty).
	msg["token"] = to.Token
	full, err := marshalNoEscape(msg)
	if err != nil {
		return nil, Invalid("fcm", "cannot be encoded as JSON: %v", err)
	}
	req.MessageSize = len(full) - len(`"token":""`) - len(to.Token) - 1
	if req.MessageSize > FCMMaxMessage {
		e := NewError(CodePayloadTooLarge,
			"the FCM message is "+strconv.Itoa(req.MessageSize)+" bytes; FCM takes at most "+strconv.Itoa(FCMMaxMessage),
			"shorten the title, body or data, or send an id and let the app fetch the rest")
		e.Platform = PlatformFCM
		return nil, e
	}
	// {"message":…} plus "validate_only":true, as encoding/json writes it.
	body := make([]byte, 0, len(full)+40)
	body = append(append(body, `{"message":`...), full...)
	if req.ValidateOnly {
		body = append(body, `,"validate_only":true`...)
	}
	req.Body = append(body, '}')
	req.Message = req.Body[len(`{"message":`) : len(`{"message":`)+len(full)]
	return req, nil
}

// fcmDataString is a data value as FCM takes it: a JSON string's own text,
// anything else its compact JSON text.
func fcmDataString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// fcmSound is the Android sound of the neutral sound: a name, or the name
// of an APNs critical-sound dictionary.
func fcmSound(raw json.RawMessage) (string, *Error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", Invalid("sound", "is not valid JSON")
	}
	switch s := v.(type) {
	case string:
		return s, nil
	case map[string]any:
		if name, ok := s["name"].(string); ok && name != "" {
			return name, nil
		}
	}
	return "", Invalid("sound", "must be a sound name (or a dictionary with a name) for FCM")
}

// mergeRaw merges the override's keys into dst deeply: objects merge key
// by key, null removes the key, anything else replaces it.
func mergeRaw(dst map[string]any, src map[string]json.RawMessage, field string) *Error {
	for _, k := range slices.Sorted(maps.Keys(src)) {
		dec := json.NewDecoder(bytes.NewReader(src[k]))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return Invalid(field+"."+k, "is not valid JSON")
		}
		mergeValue(dst, k, v)
	}
	return nil
}

func mergeValue(dst map[string]any, k string, v any) {
	switch sv := v.(type) {
	case nil:
		delete(dst, k)
	case map[string]any:
		d, ok := dst[k].(map[string]any)
		if !ok {
			d = map[string]any{}
		}
		for _, kk := range slices.Sorted(maps.Keys(sv)) {
			mergeValue(d, kk, sv[kk])
		}
		dst[k] = d
	default:
		dst[k] = v
	}
}

func dropEmpty(m map[string]any, k string) {
	if sub, ok := m[k].(map[string]any); ok && len(sub) == 0 {
		delete(m, k)
	}
}

// checkFCMMessage checks the merged message for what FCM would refuse as
// the caller's fault.
func checkFCMMessage(msg map[string]any) *Error {
	if len(msg) == 0 {
		return Invalid("", "the notification is empty: give a title or body, data, or an fcm block")
	}
	if v, ok := msg["notification"]; ok {
		if _, isObj := v.(map[string]any); !isObj {
			return Invalid("fcm.message.notification", "must be an object")
		}
	}
	if v, ok := msg["data"]; ok {
		d, isObj := v.(map[string]any)
		if !isObj {
			return Invalid("fcm.message.data", "must be an object of strings")
		}
		for _, k := range slices.Sorted(maps.Keys(d)) {
			if why, bad := FCMReservedDataKey(k); bad {
				return Invalid("fcm.message.data."+k, "%s; rename it", why)
			}
			if _, isStr := d[k].(string); !isStr {
				return Invalid("fcm.message.data."+k, "must be a string: FCM takes only string data values (top-level data converts them for you)")
			}
		}
	}
	a, ok := msg["android"]
	if !ok {
		return nil
	}
	android, isObj := a.(map[string]any)
	if !isObj {
		return Invalid("fcm.message.android", "must be an object")
	}
	if p, ok := android["priority"]; ok && p != "HIGH" && p != "NORMAL" {
		return Invalid("fcm.android.priority", "must be HIGH or NORMAL")
	}
	if v, ok := android["ttl"]; ok {
		s, _ := v.(string)
		if !fcmTTLRe.MatchString(s) {
			return Invalid("fcm.android.ttl", "must be a duration in seconds with the suffix s, such as \"3600s\"")
		}
		secs, _ := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
		if secs > FCMMaxTTL {
			return Invalid("fcm.android.ttl", "is over 28 days (%ds), the longest FCM keeps a message", FCMMaxTTL)
		}
	}
	if v, ok := android["collapse_key"]; ok {
		if _, isStr := v.(string); !isStr {
			return Invalid("fcm.android.collapse_key", "must be a string")
		}
	}
	if v, ok := android["data"]; ok {
		d, isObj := v.(map[string]any)
		if !isObj {
			return Invalid("fcm.android.data", "must be an object of strings")
		}
		for k, dv := range d {
			if why, bad := FCMReservedDataKey(k); bad {
				return Invalid("fcm.android.data."+k, "%s; rename it", why)
			}
			if _, isStr := dv.(string); !isStr {
				return Invalid("fcm.android.data."+k, "must be a string: FCM takes only string data values")
			}
		}
	}
	if v, ok := android["notification"]; ok {
		an, isObj := v.(map[string]any)
		if !isObj {
			return Invalid("fcm.android.notification", "must be an object")
		}
		if c, ok := an["notification_count"]; ok {
			if num, isNum := c.(json.Number); isNum {
				if i, err := num.Int64(); err != nil || i < 0 {
					return Invalid("fcm.android.notification.notification_count", "must be a whole number, 0 or more")
				}
			} else if i, isInt := c.(int); !isInt || i < 0 {
				return Invalid("fcm.android.notification.notification_count", "must be a whole number, 0 or more")
			}
		}
	}
	return nil
}
