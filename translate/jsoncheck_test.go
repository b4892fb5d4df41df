package translate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeRefusesWhatJSONAcceptsSilently(t *testing.T) {
	to := `"to":{"apns":{"token":"` + strings.Repeat("ab", 32) + `"}}`
	cases := []struct {
		name, body, field, msg string
	}{
		{"invalid UTF-8 in the title", "{" + to + ",\"title\":\"caf\xe9\"}", "title", "not valid UTF-8"},
		{"invalid UTF-8 deep in data", "{" + to + ",\"data\":{\"a\":[\"ok\",\"\xff\"]}}", "data.a[1]", "not valid UTF-8"},
		{"lone surrogate escape", "{" + to + `,"body":"x\ud800y"}`, "body", "surrogate"},
		{"lone low surrogate", "{" + to + `,"body":"\udc00"}`, "body", "surrogate"},
		{"duplicate top-level key", "{" + to + `,"title":"a","title":"b"}`, "title", "twice"},
		{"duplicate in to.apns", `{"to":{"apns":{"token":"aa","token":"bb"}}}`, "to.apns.token", "twice"},
		{"duplicate escaped key", "{" + to + `,"title":"a","t\u0069tle":"b"}`, "title", "twice"},
		{"duplicate among many data keys", "{" + to + `,"data":{` + manyKeys(40) + `,"k7":1}}`, "data.k7", "twice"},
		{"webpush null", "{" + to + `,"title":"x","webpush":null}`, "webpush", "null"},
		{"to.apns null", `{"to":{"apns":null},"title":"x"}`, "to.apns", "null"},
		{"title null", "{" + to + `,"title":null}`, "title", "null"},
		{"header null", "{" + to + `,"title":"x","apns":{"headers":{"apns-topic":null}}}`, "apns.headers.apns-topic", "null"},
		{"root null", `null`, "", "got null"},
		{"number out of float range", "{" + to + `,"data":{"n":1e400}}`, "data.n", "range"},
		{"long number out of float range", "{" + to + `,"data":{"n":` + strings.Repeat("9", 400) + `}}`, "data.n", "range"},
		{"field name in another case", "{" + to + `,"Title":"x"}`, "Title", "case-sensitive"},
		{"nested field name in another case", `{"to":{"APNS":{"token":"aa"}},"title":"x"}`, "to.APNS", "case-sensitive"},
		{"recipient field in another case", `{"to":{"apns":{"Token":"aa"}},"title":"x"}`, "to.apns.Token", "case-sensitive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, e := DecodeNotification([]byte(c.body))
			if e == nil {
				t.Fatal("accepted")
			}
			if e.Code != CodeInvalidRequest || e.Field != c.field || !strings.Contains(e.Message, c.msg) || e.Hint == "" {
				t.Fatalf("got %+v", e)
			}
		})
	}
	ok := []string{
		"{" + to + `,"title":"café ✓ \ud83d\ude00","data":{"x":null,"y":[null]}}`,
		`{"to":{"webpush":{"endpoint":"https://x","keys":{"p256dh":"a","auth":"b"},"expirationTime":null}},"title":"t"}`,
		`{"to":{"webpush":{"endpoint":"https://x","keys":{"p256dh":"a","auth":"b"},"expirationTime":[null]}},"title":"t"}`,
		"{" + to + `,"data":{"n":1e300,"m":-1.5E-300,"k":12345678901234567890}}`,
		"{" + to + `,"apns":{"aps":{"alert":null},"payload":{"k":null}},"sound":{"name":"a","volume":null}}`,
		"{" + to + `,"data":{` + manyKeys(100) + `}}`,
	}
	for _, b := range ok {
		if _, e := DecodeNotification([]byte(b)); e != nil {
			t.Errorf("refused %s: %v", b, e)
		}
	}
}

func manyKeys(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, `"k`+itoa(i)+`":1`)
	}
	return strings.Join(parts, ",")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestDecodeBatchEnvelope(t *testing.T) {
	if _, e := DecodeBatch([]byte(`{"notifications":[],"notifications":[{}]}`)); e == nil || e.Field != "notifications" {
		t.Fatalf("duplicate envelope key: %v", e)
	}
	if _, e := DecodeBatch([]byte(`{"notifications":null}`)); e == nil {
		t.Fatal("null notifications accepted")
	}
	// A duplicate envelope key after a bad entry is still found.
	if _, e := DecodeBatch([]byte("{\"notifications\":[{\"a\":1,\"a\":2,\"b\":\"\xff\"}],\"notifications\":[]}")); e == nil || e.Field != "notifications" || !strings.Contains(e.Message, "twice") {
		t.Fatalf("duplicate envelope key after a bad entry: %v", e)
	}
	if _, e := DecodeBatch([]byte(`{"Notifications":[]}`)); e == nil {
		t.Fatal("envelope key in another case accepted")
	}
	entries, e := DecodeBatch([]byte(`{"notifications":[null,{"title":"a","title":"b"}]}`))
	if e != nil || len(entries) != 2 {
		t.Fatalf("entries are judged one by one: %v", e)
	}
	if _, e := DecodeNotification(entries[0]); e == nil || !strings.Contains(e.Message, "got null") {
		t.Fatalf("null entry: %v", e)
	}
}

// FuzzCheckJSON: the checker never panics or loops on any input, and on
// valid UTF-8 documents that encoding/json accepts, it finds a duplicate
// key exactly when encoding/json's own tokenizer sees one.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"a":2}`, `{"a":{"b":[1,"x",null]}}`, "{\"a\":\"\xff\"}", `[1,2`, `"\ud800"`, `{"a\u0062":1,"ab":2}`, `{"a":"\\"}`, `[{"a":1},{"a":1}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := checkJSONLoose(data, func([]string) bool { return true })
		if !json.Valid(data) || !utf8.Valid(data) || loneSurrogate(data) {
			return
		}
		gotDup := p != nil && strings.Contains(p.msg, "twice")
		if want := hasDuplicateKey(t, data); gotDup != want {
			t.Fatalf("duplicate found %v, encoding/json's tokenizer says %v: %q", gotDup, want, data)
		}
	})
}

// hasDuplicateKey is the oracle: encoding/json's tokenizer, with a set of
// keys per open object.
func hasDuplicateKey(t *testing.T, data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		obj    bool
		keys   map[string]bool
		expect bool // next string token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.obj && top.expect
		if top != nil && top.obj {
			top.expect = !top.expect
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{obj: true, keys: map[string]bool{}, expect: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].expect = true
				}
			}
		case string:
			if isKey {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
			}
		}
	}
}
