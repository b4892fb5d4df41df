package translate

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// The fast path writes exactly the bytes the maps and encoding/json give.
func TestAPNsPayloadFastPathSameBytes(t *testing.T) {
	strs := []string{"", "Hello", "Grüße 👋", "a\"b\\c", "tab\tnl\nnul\x00 bell\x07", "<script>&amp;", "line\u2028para\u2029", "bad\xffutf8", "\x7f", "\b\f\r"}
	raws := []string{`"default"`, `1`, `{"b": [1, 2, {"c": null}], "a": "x y"}`, `true`, `"\u00e9\n"`, `[ ]`, `{"k":"<&>"}`}
	keys := []string{"order", "image", "url", "Z", "a b", "ü", "\u2028", "id"}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	for i := range 5000 {
		n := &Notification{Title: pick(strs), Subtitle: pick(strs), Body: pick(strs), Image: pick(strs), URL: pick(strs)}
		if rng.IntN(2) == 0 {
			b := rng.IntN(100)
			n.Badge = &b
		}
		if rng.IntN(2) == 0 {
			n.Sound = json.RawMessage(pick([]string{`"default"`, `"ping.aiff"`, `"ü"`}))
		}
		if rng.IntN(2) == 0 {
			n.Data = map[string]json.RawMessage{}
			for range rng.IntN(5) {
				n.Data[pick(keys)] = json.RawMessage(pick(raws))
			}
		}
		ca := rng.IntN(2) == 0
		aps, e := buildAPS(n, APNsOverrides{})
		if e != nil {
			t.Fatal(e)
		}
		if ca {
			aps["content-available"] = 1
		}
		want, e := encodeAPNsBody(n, APNsOverrides{}, aps)
		if e != nil {
			t.Fatal(e)
		}
		got, err := appendAPNsPayload(nil, n, ca)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: %+v\n got %s\nwant %s", i, n, got, want)
		}
	}
}

func TestPlainJSONString(t *testing.T) {
	for raw, want := range map[string]bool{`"default"`: true, `"ü"`: true, `"a\"b"`: false, `"a\nb"`: false, "\"\u2028\"": false, `1`: false, `{}`: false, `"`: false} {
		if got := plainJSONString(json.RawMessage(raw)); got != want {
			t.Errorf("plainJSONString(%s) = %v", raw, got)
		}
	}
}

func BenchmarkBuildAPNs(b *testing.B) {
	n, e := DecodeNotification([]byte(`{"to":{"apns":{"token":"` + string(bytes.Repeat([]byte("ab"), 32)) + `"}},"title":"Hello","body":"World","data":{"order":"1234"}}`))
	if e != nil {
		b.Fatal(e)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, e := BuildAPNs(n, APNsTarget{Topic: "com.example.app", NewID: "0b0e6c9a-9c57-4b8f-8b1e-3f5b2c7d9e10"}); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkDecodeNotification(b *testing.B) {
	body := []byte(`{"to":{"apns":{"token":"` + string(bytes.Repeat([]byte("ab"), 32)) + `"}},"title":"Hello","body":"World"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, e := DecodeNotification(body); e != nil {
			b.Fatal(e)
		}
	}
}
