package translate

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonProblem is what checkJSON finds: the dotted path of the offending
// value ("to.apns.token", "data.order", "notifications[2]") and what is
// wrong with it.
type jsonProblem struct {
	path string
	msg  string
}

// checkJSON finds in a JSON document what encoding/json accepts silently
// but the API refuses, because JSON is the contract and silently rewriting
// a caller's text is worse than an error:
//   - invalid UTF-8 in a string (encoding/json would send U+FFFD instead);
//   - a key twice in one object (encoding/json keeps the last);
//   - null where allowNull says no (encoding/json treats it as absent).
//
// It expects a document that encoding/json already parsed; on anything
// else it stops without a finding (and never panics or loops: fuzzed).
//   - a key that is not exactly one of the field names of a fixed-shape
//     object (fields: encoding/json would match "Title" to title).
func checkJSON(data []byte, allowNull func(path []string) bool, fields fieldSet) *jsonProblem {
	var path [8]string
	c := jsonChecker{data: data, allowNull: allowNull, fields: fields, path: path[:0]}
	c.skipSpace()
	c.value()
	return c.found
}

// checkEnvelope checks only the top level of a document (a batch's
// envelope: a duplicate or misspelt key, a null), parsing the rest
// without judging it: the entries are judged one by one.
func checkEnvelope(data []byte, fields fieldSet) *jsonProblem {
	var path [8]string
	c := jsonChecker{data: data, allowNull: func(p []string) bool { return len(p) >= 1 }, fields: fields, path: path[:0], maxDepth: 1}
	c.skipSpace()
	c.value()
	return c.found
}

// checkJSONLoose is checkJSON without field names (tests and fuzzing).
func checkJSONLoose(data []byte, allowNull func(path []string) bool) *jsonProblem {
	return checkJSON(data, allowNull, nil)
}

type jsonChecker struct {
	data      []byte
	i         int
	path      []string
	allowNull func(path []string) bool
	fields    fieldSet
	found     *jsonProblem
	scratch   []byte // the joined path of an object, for the fields lookup
	// maxDepth, if > 0, ignores problems deeper than this many path
	// elements (a batch's envelope is checked apart from its entries).
	maxDepth int
}

// fieldNames holds one copy of every field name of the fixed-shape objects,
// so that a key that is one of them costs no allocation.
var fieldNames = func() map[string]string {
	m := map[string]string{}
	for _, fs := range []fieldSet{notificationFields, batchFields} {
		for _, names := range fs {
			for n := range names {
				m[n] = n
			}
		}
	}
	return m
}()

// namesHere is the set of exact field names of the object at c.path, or
// nil when its shape is free; the lookup allocates nothing.
func (c *jsonChecker) namesHere() map[string]bool {
	switch len(c.path) {
	case 0:
		return c.fields[""]
	case 1:
		return c.fields[c.path[0]]
	}
	b := c.scratch[:0]
	for _, s := range c.path {
		if len(b) > 0 && !strings.HasPrefix(s, "[") {
			b = append(b, '.')
		}
		b = append(b, s...)
	}
	c.scratch = b
	return c.fields[string(b)]
}

// fail records a problem at the current path, unless one was found
// already or the path is deeper than maxDepth; it says whether it did.
func (c *jsonChecker) fail(msg string) bool {
	if c.found != nil || (c.maxDepth > 0 && len(c.path) > c.maxDepth) {
		return false
	}
	c.found = &jsonProblem{path: joinPath(c.path), msg: msg}
	return true
}

// joinPath writes a path the way errors name fields: keys joined by dots,
// array indexes in brackets.
func joinPath(p []string) string {
	var b strings.Builder
	for _, s := range p {
		if b.Len() > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func (c *jsonChecker) skipSpace() {
	for c.i < len(c.data) {
		switch c.data[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// value checks one value at c.i; on any syntax it does not expect it
// records nothing and moves to the end.
func (c *jsonChecker) value() {
	if c.found != nil || c.i >= len(c.data) {
		c.i = len(c.data)
		return
	}
	switch ch := c.data[c.i]; {
	case ch == '{':
		c.object()
	case ch == '[':
		c.array()
	case ch == '"':
		if _, ok := c.str(false); !ok {
			c.i = len(c.data)
		}
	case ch == 'n':
		switch {
		case len(c.path) == 0:
			c.fail("expected a JSON object, got null")
		case c.allowNull != nil && !c.allowNull(c.path):
			c.fail("null is not a value here; leave the field out instead")
		}
		c.i += 4
	default: // number, true, false
		start, exp := c.i, false
		for c.i < len(c.data) {
			switch c.data[c.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				c.number(start, exp)
				return
			case 'e', 'E':
				exp = true
			}
			c.i++
		}
		c.number(start, exp)
	}
}

// number refuses a number no 64-bit float can hold (1e400): encoding/json
// passes it on inside raw values, where one platform would send it and
// another refuse it. Only numbers with an exponent or over 300 characters
// can be out of range, so the others are not parsed.
func (c *jsonChecker) number(start int, exp bool) {
	tok := c.data[start:c.i]
	if len(tok) == 0 || (tok[0] != '-' && (tok[0] < '0' || tok[0] > '9')) || (!exp && len(tok) <= 300) {
		return
	}
	if _, err := strconv.ParseFloat(string(tok), 64); err != nil {
		c.fail("the number is out of the range of a 64-bit float")
	}
}

func (c *jsonChecker) object() {
	c.i++ // {
	var stack [16]string
	keys := stack[:0]
	var seen map[string]bool
	var names map[string]bool // the exact field names here, if the shape is fixed
	if c.fields != nil {
		names = c.namesHere()
	}
	for c.found == nil {
		c.skipSpace()
		if c.i >= len(c.data) {
			return
		}
		if c.data[c.i] == '}' {
			c.i++
			return
		}
		if c.data[c.i] == ',' {
			c.i++
			continue
		}
		if c.data[c.i] != '"' {
			c.i = len(c.data)
			return
		}
		key, ok := c.str(true)
		if !ok {
			c.i = len(c.data)
			return
		}
		// Objects are small: a slice until they are not.
		dup := false
		if seen != nil {
			dup = seen[key]
			seen[key] = true
		} else {
			for _, k := range keys {
				if k == key {
					dup = true
					break
				}
			}
			keys = append(keys, key)
			if len(keys) > 16 {
				seen = make(map[string]bool, 2*len(keys))
				for _, k := range keys {
					seen[k] = true
				}
			}
		}
		c.path = append(c.path, key)
		if dup && c.fail("the key appears twice in one object; send it once") {
			return
		}
		if names != nil && !names[key] && c.fail("unknown field (field names are case-sensitive)") {
			return
		}
		c.skipSpace()
		if c.i >= len(c.data) || c.data[c.i] != ':' {
			c.i = len(c.data)
			return
		}
		c.i++
		c.skipSpace()
		c.value()
		c.path = c.path[:len(c.path)-1]
	}
}

func (c *jsonChecker) array() {
	c.i++ // [
	for n := 0; c.found == nil; {
		c.skipSpace()
		if c.i >= len(c.data) {
			return
		}
		switch c.data[c.i] {
		case ']':
			c.i++
			return
		case ',':
			c.i++
			continue
		}
		c.path = append(c.path, "["+strconv.Itoa(n)+"]")
		start := c.i
		c.value()
		c.path = c.path[:len(c.path)-1]
		if c.i == start { // no progress: not JSON we expect
			c.i = len(c.data)
			return
		}
		n++
	}
}

// str reads the string at c.i (which is '"'), checks its bytes are UTF-8,
// and returns its value if asked (escapes decoded only when there are any).
func (c *jsonChecker) str(want bool) (string, bool) {
	start := c.i
	c.i++
	escaped := false
	for c.i < len(c.data) {
		switch ch := c.data[c.i]; {
		case ch == '"':
			raw := c.data[start+1 : c.i]
			c.i++
			if !utf8.Valid(raw) {
				c.fail("the string is not valid UTF-8")
				return "", true
			}
			if !escaped {
				if !want {
					return "", true
				}
				if s, ok := fieldNames[string(raw)]; ok {
					return s, true
				}
				return string(raw), true
			}
			if loneSurrogate(raw) {
				c.fail("the string has a \\u escape of half a UTF-16 surrogate pair, which is not text")
				return "", true
			}
			var s string
			if json.Unmarshal(c.data[start:c.i], &s) != nil {
				return "", false
			}
			if !want {
				return "", true
			}
			return s, true
		case ch == '\\':
			escaped = true
			c.i += 2
		default:
			c.i++
		}
	}
	return "", false
}

// loneSurrogate reports a \uD800–\uDFFF escape that is not half of a
// well-formed pair (encoding/json would turn it into U+FFFD).
func loneSurrogate(raw []byte) bool {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		if !ok {
			i++ // skip the escaped character
			continue
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			lo, ok := hex4(i + 6)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		default:
			i += 5
		}
	}
	return false
}
