package translate

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// encodeResultStd is what the local API wrote before AppendResultJSON: a
// json.Encoder with HTML escaping off.
func encodeResultStd(t testing.TB, r *Result) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkResultJSON compares AppendResultJSON with encoding/json, appending
// after a prefix so that an appender that ignores dst is caught too.
func checkResultJSON(t testing.TB, r *Result) {
	t.Helper()
	want := encodeResultStd(t, r)
	prefix := []byte("prefix")
	got, ok := AppendResultJSON(prefix[:len(prefix):len(prefix)], r)
	if !ok {
		t.Fatalf("AppendResultJSON(%#v) declined", r)
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("AppendResultJSON dropped dst: %q", got)
	}
	if got = got[len(prefix):]; !bytes.Equal(got, want) {
		t.Fatalf("AppendResultJSON(%#v)\n got %q\nwant %q", r, got, want)
	}
}

func TestAppendResultJSONTable(t *testing.T) {
	cases := map[string]*Result{
		"zero":           {},
		"minimal":        {ID: "n1", Platform: PlatformAPNs, Attempts: 1},
		"apns success":   {ID: "0f8fad5b-d9cb-469f-a165-70867728950e", Platform: PlatformAPNs, Upstream: &Upstream{Status: 200, APNsID: "5e5d4c4b-0000-1111-2222-333344445555"}, Credential: "default", Environment: "production", Attempts: 1},
		"fcm success":    {ID: "x", Platform: PlatformFCM, Upstream: &Upstream{Status: 200, MessageID: "projects/p/messages/0:1234%abcd"}, Credential: "fcm-main", Attempts: 2},
		"webpush":        {ID: "w", Platform: PlatformWebPush, Upstream: &Upstream{Status: 201}, Credential: "vapid", Attempts: 3},
		"empty upstream": {ID: "e", Platform: "apns", Upstream: &Upstream{}},
		"all upstream":   {ID: "a", Platform: "apns", Upstream: &Upstream{Status: 410, Reason: "Unregistered", Timestamp: 1700000000123, APNsID: "id", MessageID: "m"}, Credential: "c", Environment: "sandbox", Attempts: 4},
		"only reason":    {Upstream: &Upstream{Reason: "r"}},
		"only timestamp": {Upstream: &Upstream{Timestamp: -1}},
		"only apns id":   {Upstream: &Upstream{APNsID: "i"}},
		"only msg id":    {Upstream: &Upstream{MessageID: "m"}},
		"status+msg":     {Upstream: &Upstream{Status: -7, MessageID: "m"}},
		"credential":     {Credential: "c"},
		"environment":    {Environment: "e"},
		"neg attempts":   {Attempts: -3},
		"extreme ints":   {Attempts: math.MinInt64, Upstream: &Upstream{Status: math.MaxInt64, Timestamp: math.MinInt64}},
		"max ints":       {Attempts: math.MaxInt64, Upstream: &Upstream{Status: math.MinInt64, Timestamp: math.MaxInt64}},
		"escapes":        {ID: "a\"b\\c/d", Platform: "\b\f\n\r\t\x00\x01\x1f\x7f", Credential: "<script>&amp;</script>", Environment: "line\u2028para\u2029end"},
		"invalid utf8":   {ID: "bad\xffutf8", Platform: "\xc3", Credential: "\xed\xa0\x80surrogate", Environment: "\xf0\x9f\x98trunc", Upstream: &Upstream{Reason: "\x80\xbf", APNsID: "\xf8\x88\x80\x80\x80"}},
		"non-ascii":      {ID: "Grüße 👋", Platform: "日本語", Credential: "\ufffd", Environment: "\u2027\u202a", Upstream: &Upstream{MessageID: "é\u00a0\U0010ffff"}},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) { checkResultJSON(t, r) })
	}
}

// Every byte value, alone and between ASCII letters.
func TestAppendResultJSONEveryByte(t *testing.T) {
	for b := range 256 {
		s := string([]byte{byte(b)})
		checkResultJSON(t, &Result{ID: s, Platform: "a" + s + "z", Upstream: &Upstream{Reason: s + s}})
	}
}

func TestAppendResultJSONDeclines(t *testing.T) {
	if b, ok := AppendResultJSON([]byte("x"), nil); ok || string(b) != "x" {
		t.Errorf("nil Result: %q, %v", b, ok)
	}
	r := &Result{ID: "d", Platform: PlatformFCM, Request: &DryRunRequest{Method: "POST"}}
	if b, ok := AppendResultJSON([]byte("x"), r); ok || string(b) != "x" {
		t.Errorf("dry run: %q, %v", b, ok)
	}
}

// randJSONTestString mixes the bytes and runes encoding/json treats
// differently: quotes, backslashes, control bytes, DEL, HTML characters,
// invalid UTF-8 (stray continuation bytes, truncated sequences, encoded
// surrogates, overlongs), U+2028/U+2029, other non-ASCII, and plain text.
func randJSONTestString(rng *rand.Rand) string {
	if rng.IntN(6) == 0 {
		return ""
	}
	pieces := []string{
		`"`, `\`, "/", "<", ">", "&", "\x7f", "\b", "\f", "\n", "\r", "\t", "\x00", "\x1f", "\x0b",
		"\u2028", "\u2029", "\u2027", "\u202a", "é", "ü", "日本", "👋", "\ufffd", "\U0010ffff", "\u00a0",
		"\xff", "\xc3", "\x80", "\xed\xa0\x80", "\xc0\xaf", "\xe2\x80", "\xf0\x9f\x98", "\xf4\x90\x80\x80",
		"hello", "projects/p/messages/0:1", "Unregistered", " ", "a",
	}
	var b strings.Builder
	for range rng.IntN(12) {
		switch rng.IntN(4) {
		case 0: // a random byte, any value
			b.WriteByte(byte(rng.IntN(256)))
		case 1: // a random rune, surrogates and out-of-range included (written as U+FFFD by Go)
			b.WriteRune(rune(rng.IntN(0x110010)))
		default:
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
	}
	return b.String()
}

func randJSONTestInt(rng *rand.Rand) int64 {
	switch rng.IntN(6) {
	case 0:
		return 0
	case 1:
		return -rng.Int64N(1000)
	case 2:
		return []int64{math.MinInt64, math.MaxInt64, -1, 1, 200, 410}[rng.IntN(6)]
	case 3:
		return int64(rng.Uint64())
	default:
		return rng.Int64N(1 << 45)
	}
}

func TestAppendResultJSONRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for range 50_000 {
		r := &Result{
			ID:          randJSONTestString(rng),
			Platform:    randJSONTestString(rng),
			Credential:  randJSONTestString(rng),
			Environment: randJSONTestString(rng),
			Attempts:    int(randJSONTestInt(rng)),
		}
		if rng.IntN(3) != 0 {
			r.Upstream = &Upstream{}
			if rng.IntN(2) == 0 {
				r.Upstream.Status = int(randJSONTestInt(rng))
			}
			if rng.IntN(2) == 0 {
				r.Upstream.Reason = randJSONTestString(rng)
			}
			if rng.IntN(2) == 0 {
				r.Upstream.Timestamp = randJSONTestInt(rng)
			}
			if rng.IntN(2) == 0 {
				r.Upstream.APNsID = randJSONTestString(rng)
			}
			if rng.IntN(2) == 0 {
				r.Upstream.MessageID = randJSONTestString(rng)
			}
		}
		checkResultJSON(t, r)
	}
}

func FuzzAppendResultJSON(f *testing.F) {
	f.Add("id", "apns", "default", "production", 1, true, 200, "", int64(0), "apns-id", "")
	f.Add("a\"b\\c", "\x00\x1f\x7f", "<&>", "\u2028\u2029", -1, true, 0, "bad\xff", int64(-5), "", "projects/p/messages/1")
	f.Add("", "", "", "", 0, false, 0, "", int64(0), "", "")
	f.Fuzz(func(t *testing.T, id, platform, credential, environment string, attempts int, upstream bool, status int, reason string, timestamp int64, apnsID, messageID string) {
		r := &Result{ID: id, Platform: platform, Credential: credential, Environment: environment, Attempts: attempts}
		if upstream {
			r.Upstream = &Upstream{Status: status, Reason: reason, Timestamp: timestamp, APNsID: apnsID, MessageID: messageID}
		}
		checkResultJSON(t, r)
	})
}

// A delivered APNs notification's answer, the common case.
var benchResult = &Result{
	ID:          "0f8fad5b-d9cb-469f-a165-70867728950e",
	Platform:    PlatformAPNs,
	Upstream:    &Upstream{Status: 200, APNsID: "5E5D4C4B-0000-1111-2222-333344445555"},
	Credential:  "default",
	Environment: "production",
	Attempts:    1,
}

func BenchmarkResultJSON(b *testing.B) {
	b.Run("append-nil-buffer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ := AppendResultJSON(nil, benchResult)
			_, _ = io.Discard.Write(buf)
		}
	})
	b.Run("append-reused-buffer", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = AppendResultJSON(buf[:0], benchResult)
			_, _ = io.Discard.Write(buf)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			enc := json.NewEncoder(io.Discard)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(benchResult)
		}
	})
}
