package translate

import "strconv"

// AppendResultJSON appends to dst exactly what a json.Encoder with
// SetEscapeHTML(false) writes for *r, trailing newline included, without
// reflection: the answer to every delivered notification. It reports false
// (and returns dst unchanged) when it cannot: r is nil or carries a dry-run
// Request, which keeps going through encoding/json.
//
// Strings go through appendJSONString (apnspayload.go): encoding/json's
// escaping with HTML escaping off, byte for byte. The code mirrors the
// json tags of Result and Upstream field by field (order, omitempty); a
// field added to either type must be added here too: the tests compare
// with encoding/json on random values, every field set, and would fail.
func AppendResultJSON(dst []byte, r *Result) ([]byte, bool) {
	if r == nil || r.Request != nil {
		return dst, false
	}
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, r.ID)
	dst = append(dst, `,"platform":`...)
	dst = appendJSONString(dst, r.Platform)
	if u := r.Upstream; u != nil {
		dst = append(dst, `,"upstream":`...)
		dst = appendUpstreamJSON(dst, u)
	}
	if r.Credential != "" {
		dst = append(dst, `,"credential":`...)
		dst = appendJSONString(dst, r.Credential)
	}
	if r.Environment != "" {
		dst = append(dst, `,"environment":`...)
		dst = appendJSONString(dst, r.Environment)
	}
	dst = append(dst, `,"attempts":`...)
	dst = strconv.AppendInt(dst, int64(r.Attempts), 10)
	dst = append(dst, '}', '\n')
	return dst, true
}

// appendUpstreamJSON appends u as encoding/json does: every field of
// Upstream is omitempty, so an empty Upstream is {}.
func appendUpstreamJSON(dst []byte, u *Upstream) []byte {
	dst = append(dst, '{')
	if u.Status != 0 {
		dst = appendJSONKey(dst, `"status":`)
		dst = strconv.AppendInt(dst, int64(u.Status), 10)
	}
	if u.Reason != "" {
		dst = appendJSONKey(dst, `"reason":`)
		dst = appendJSONString(dst, u.Reason)
	}
	if u.Timestamp != 0 {
		dst = appendJSONKey(dst, `"timestamp":`)
		dst = strconv.AppendInt(dst, u.Timestamp, 10)
	}
	if u.APNsID != "" {
		dst = appendJSONKey(dst, `"apns_id":`)
		dst = appendJSONString(dst, u.APNsID)
	}
	if u.MessageID != "" {
		dst = appendJSONKey(dst, `"message_id":`)
		dst = appendJSONString(dst, u.MessageID)
	}
	return append(dst, '}')
}

// appendJSONKey appends key ("name":) after a comma unless it is the
// first member of the object just opened (a value never ends in '{').
func appendJSONKey(dst []byte, key string) []byte {
	if dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	return append(dst, key...)
}
