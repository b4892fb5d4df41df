package translate

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// The aps dictionary and the body when there are overrides (maps and encoding/json), and the checks on aps keys.

// encodeAPNsBody is the payload through maps and encoding/json: the custom
// keys (data, image, url, apns.payload) beside aps.
func encodeAPNsBody(n *Notification, ov APNsOverrides, aps map[string]any) ([]byte, *Error) {
	// Body: custom keys beside aps.
	body := map[string]any{}
	for k, raw := range n.Data {
		if k == "aps" {
			return nil, Invalid("data.aps", "is reserved by APNs; use apns.aps to set aps keys")
		}
		body[k] = json.RawMessage(raw)
	}
	if n.Image != "" {
		body["image"] = n.Image
	}
	if n.URL != "" {
		body["url"] = n.URL
	}
	for k, raw := range ov.Payload {
		if k == "aps" {
			return nil, Invalid("apns.payload.aps", "is reserved; use apns.aps to set aps keys")
		}
		body[k] = json.RawMessage(raw)
	}
	body["aps"] = aps
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, Invalid("data", "cannot be encoded as JSON: %v", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// checkAPNsSize refuses a payload over the push type's limit.
func checkAPNsSize(req *APNsRequest, info PushTypeInfo) (*APNsRequest, *Error) {
	limit := APNsMaxPayload
	if info.Name == PushVoIP {
		limit = APNsMaxVoIPPayload
	}
	if len(req.Payload) > limit {
		e := NewError(CodePayloadTooLarge, "the APNs payload is "+strconv.Itoa(len(req.Payload))+" bytes; the limit for "+info.Name+" pushes is "+strconv.Itoa(limit), "shorten the body or move data out of the push: fetch it in the app when the notification arrives")
		e.Platform = PlatformAPNs
		return nil, e
	}
	return req, nil
}

// validHeaderValue reports whether s can be sent as an HTTP header value:
// no control characters other than tab (RFC 9110 field-value). The HTTP/2
// transport refuses anything else, which would look like an upstream failure.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// checkAPSKey type-checks the aps keys Apple documents; other keys pass
// through unchanged so that keys Apple adds later need no upgrade.
func checkAPSKey(k string, v any) *Error {
	field := "apns.aps." + k
	if v == nil {
		return nil // null removes the key (see BuildAPNs)
	}
	switch k {
	case "badge", "content-available", "mutable-content", "timestamp", "stale-date", "dismissal-date":
		if f, ok := v.(float64); !ok || f < 0 || f != float64(int64(f)) {
			return Invalid(field, "must be a non-negative integer")
		}
	case "relevance-score":
		if _, ok := v.(float64); !ok {
			return Invalid(field, "must be a number")
		}
	case "interruption-level":
		s, _ := v.(string)
		if !slices.Contains([]string{"passive", "active", "time-sensitive", "critical"}, s) {
			return Invalid(field, "must be passive, active, time-sensitive or critical")
		}
	case "thread-id", "category", "target-content-id", "event", "attributes-type", "filter-criteria":
		if _, ok := v.(string); !ok {
			return Invalid(field, "must be a string")
		}
	case "alert":
		switch v.(type) {
		case string, map[string]any:
		default:
			return Invalid(field, "must be a string or an alert dictionary")
		}
	case "content-state", "attributes":
		if _, ok := v.(map[string]any); !ok {
			return Invalid(field, "must be an object")
		}
	}
	return nil
}

// article is "a" or "an" before a push type's name.
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

// buildAPS is the aps dictionary derived from the neutral fields, then the
// caller's apns.aps overrides.
func buildAPS(n *Notification, ov APNsOverrides) (map[string]any, *Error) {
	aps := map[string]any{}
	alert := map[string]any{}
	if n.Title != "" {
		alert["title"] = n.Title
	}
	if n.Subtitle != "" {
		alert["subtitle"] = n.Subtitle
	}
	if n.Body != "" {
		alert["body"] = n.Body
	}
	if len(alert) > 0 {
		aps["alert"] = alert
	}
	if n.Badge != nil {
		aps["badge"] = *n.Badge
	}
	if len(n.Sound) > 0 {
		var s any
		if err := json.Unmarshal(n.Sound, &s); err != nil {
			return nil, Invalid("sound", "is not valid JSON")
		}
		switch s.(type) {
		case string, map[string]any:
			aps["sound"] = s
		default:
			return nil, Invalid("sound", "must be a sound name or an APNs sound dictionary")
		}
	}
	if n.Image != "" {
		aps["mutable-content"] = 1
	}
	for k, raw := range ov.APS {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, Invalid("apns.aps."+k, "is not valid JSON")
		}
		if err := checkAPSKey(k, v); err != nil {
			return nil, err
		}
		if k == "alert" {
			if m, ok := v.(map[string]any); ok {
				maps.Copy(alert, m)
				aps["alert"] = alert
				continue
			}
		}
		if v == nil {
			delete(aps, k)
			continue
		}
		aps[k] = v
	}

	return aps, nil
}
