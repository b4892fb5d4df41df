package translate

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The APNs payload of a notification without apns.aps or apns.payload
// overrides, written straight into one buffer: the bytes encoding/json
// gives for BuildAPNs's maps (keys sorted, HTML not escaped, raw data
// values compacted), at a fraction of the cost (no maps, no reflection).

// plainJSONString reports whether raw is a JSON string whose bytes
// encoding/json would write back unchanged: no escape, no U+2028/U+2029.
// (raw comes from the strict decoder: valid JSON, valid UTF-8.)
func plainJSONString(raw json.RawMessage) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	inner := raw[1 : len(raw)-1]
	return bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && !bytes.Contains(inner, []byte("\u2028")) && !bytes.Contains(inner, []byte("\u2029"))
}

// dataSize is about the bytes the data values take.
func dataSize(d map[string]json.RawMessage) int {
	n := 0
	for k, v := range d {
		n += len(k) + len(v) + 4
	}
	return n
}

// appendAPNsPayload writes {custom keys…, "aps": {…}} with the keys sorted
// as encoding/json sorts a map's. Only for a notification BuildAPNs found
// fit (no aps or payload overrides, no "aps" data key, a plain sound).
func appendAPNsPayload(b []byte, n *Notification, contentAvailable bool) ([]byte, error) {
	const image, url, aps = "image", "url", "aps"
	var stack [8]string
	keys := stack[:0]
	for k := range n.Data {
		if (k == image && n.Image != "") || (k == url && n.URL != "") {
			continue // the neutral field wins, as in BuildAPNs's map
		}
		keys = append(keys, k)
	}
	if n.Image != "" {
		keys = append(keys, image)
	}
	if n.URL != "" {
		keys = append(keys, url)
	}
	keys = append(keys, aps)
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		switch {
		case k == aps:
			b = appendAPS(b, n, contentAvailable)
		case k == image && n.Image != "":
			b = appendJSONString(b, n.Image)
		case k == url && n.URL != "":
			b = appendJSONString(b, n.URL)
		default:
			raw := n.Data[k]
			if bytes.ContainsAny(raw, " \t\r\n") {
				var buf bytes.Buffer
				if err := json.Compact(&buf, raw); err != nil {
					return nil, err
				}
				raw = buf.Bytes()
			}
			b = append(b, raw...)
		}
	}
	return append(b, '}'), nil
}

// appendAPS writes the aps dictionary, keys in sorted order: alert, badge,
// content-available, mutable-content, sound.
func appendAPS(b []byte, n *Notification, contentAvailable bool) []byte {
	b = append(b, '{')
	sep := func() {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
	}
	if n.Title != "" || n.Subtitle != "" || n.Body != "" {
		b = append(b, `"alert":{`...)
		if n.Body != "" {
			b = append(b, `"body":`...)
			b = appendJSONString(b, n.Body)
		}
		if n.Subtitle != "" {
			sep()
			b = append(b, `"subtitle":`...)
			b = appendJSONString(b, n.Subtitle)
		}
		if n.Title != "" {
			sep()
			b = append(b, `"title":`...)
			b = appendJSONString(b, n.Title)
		}
		b = append(b, '}')
	}
	if n.Badge != nil {
		sep()
		b = append(b, `"badge":`...)
		b = strconv.AppendInt(b, int64(*n.Badge), 10)
	}
	if contentAvailable {
		sep()
		b = append(b, `"content-available":1`...)
	}
	if n.Image != "" {
		sep()
		b = append(b, `"mutable-content":1`...)
	}
	if len(n.Sound) > 0 {
		sep()
		b = append(b, `"sound":`...)
		b = append(b, n.Sound...)
	}
	return append(b, '}')
}

// appendJSONString is encoding/json's string encoding with HTML escaping
// off (Encoder.SetEscapeHTML(false)), byte for byte.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
