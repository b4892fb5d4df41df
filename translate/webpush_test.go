package translate_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/translate"
)

// The RFC 8291 Appendix A user agent keys: a real point on P-256.
const (
	wpP256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	wpAuth   = "BTBZMqHH6r4Tts7J_aSIgg"
	wpNewID  = "0f0e0d0c-0b0a-4909-8807-060504030201"
)

func wpPtr[T any](v T) *T { return &v }

func wpRecipient() *translate.WebPushRecipient {
	return &translate.WebPushRecipient{
		Endpoint: "https://fcm.googleapis.com/fcm/send/abc:APA91b",
		Keys:     translate.WebPushKeys{P256DH: wpP256DH, Auth: wpAuth},
	}
}

func wpNote(f func(n *translate.Notification)) *translate.Notification {
	n := &translate.Notification{To: translate.Recipient{WebPush: wpRecipient()}}
	if f != nil {
		f(n)
	}
	return n
}

func TestValidateSubscriptionAcceptsEveryBase64Form(t *testing.T) {
	p, _ := base64.RawURLEncoding.DecodeString(wpP256DH)
	a, _ := base64.RawURLEncoding.DecodeString(wpAuth)
	forms := map[string]func([]byte) string{
		"base64url unpadded": base64.RawURLEncoding.EncodeToString,
		"base64url padded":   base64.URLEncoding.EncodeToString,
		"base64 unpadded":    base64.RawStdEncoding.EncodeToString,
		"base64 padded":      base64.StdEncoding.EncodeToString,
	}
	for name, enc := range forms {
		r := wpRecipient()
		r.Keys = translate.WebPushKeys{P256DH: enc(p), Auth: enc(a)}
		s, err := translate.ValidateSubscription(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(s.P256DH, p) || !bytes.Equal(s.Auth, a) || s.Endpoint != r.Endpoint {
			t.Fatalf("%s: decoded %+v", name, s)
		}
	}
}

func TestValidateSubscriptionRefusals(t *testing.T) {
	offCurve := make([]byte, 65)
	offCurve[0] = 4
	offCurve[64] = 1
	compressed, _ := base64.RawURLEncoding.DecodeString(wpP256DH)
	compressed = append([]byte{2}, compressed[1:33]...)
	cases := []struct {
		name  string
		f     func(r *translate.WebPushRecipient)
		code  translate.Code
		field string
	}{
		{"no endpoint", func(r *translate.WebPushRecipient) { r.Endpoint = "" }, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"relative endpoint", func(r *translate.WebPushRecipient) { r.Endpoint = "/fcm/send/x" }, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"no host", func(r *translate.WebPushRecipient) { r.Endpoint = "https:///x" }, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"opaque", func(r *translate.WebPushRecipient) { r.Endpoint = "https:fcm.googleapis.com" }, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"ftp", func(r *translate.WebPushRecipient) { r.Endpoint = "ftp://fcm.googleapis.com/x" }, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"http", func(r *translate.WebPushRecipient) { r.Endpoint = "http://fcm.googleapis.com/x" }, translate.CodeDestinationForbidden, "to.webpush.endpoint"},
		{"fragment", func(r *translate.WebPushRecipient) { r.Endpoint = "https://fcm.googleapis.com/x#y" }, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"space", func(r *translate.WebPushRecipient) { r.Endpoint = " https://fcm.googleapis.com/x" }, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"newline", func(r *translate.WebPushRecipient) { r.Endpoint = "https://fcm.googleapis.com/x\n" }, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"bad port", func(r *translate.WebPushRecipient) { r.Endpoint = "https://fcm.googleapis.com:99999/x" }, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"too long", func(r *translate.WebPushRecipient) {
			r.Endpoint = "https://fcm.googleapis.com/" + strings.Repeat("x", 5000)
		}, translate.CodeInvalidRecipient, "to.webpush.endpoint"},
		{"no p256dh", func(r *translate.WebPushRecipient) { r.Keys.P256DH = "" }, translate.CodeInvalidRecipient, "to.webpush.keys.p256dh"},
		{"p256dh not base64", func(r *translate.WebPushRecipient) { r.Keys.P256DH = "!!!" }, translate.CodeInvalidRecipient, "to.webpush.keys.p256dh"},
		{"p256dh mixed alphabets", func(r *translate.WebPushRecipient) { r.Keys.P256DH = "ab+_" + wpP256DH[4:] }, translate.CodeInvalidRecipient, "to.webpush.keys.p256dh"},
		{"p256dh short", func(r *translate.WebPushRecipient) { r.Keys.P256DH = wpP256DH[:40] }, translate.CodeInvalidRecipient, "to.webpush.keys.p256dh"},
		{"p256dh compressed", func(r *translate.WebPushRecipient) {
			r.Keys.P256DH = base64.RawURLEncoding.EncodeToString(compressed)
		}, translate.CodeInvalidRecipient, "to.webpush.keys.p256dh"},
		{"p256dh off the curve", func(r *translate.WebPushRecipient) {
			r.Keys.P256DH = base64.RawURLEncoding.EncodeToString(offCurve)
		}, translate.CodeInvalidRecipient, "to.webpush.keys.p256dh"},
		{"no auth", func(r *translate.WebPushRecipient) { r.Keys.Auth = "" }, translate.CodeInvalidRecipient, "to.webpush.keys.auth"},
		{"auth 12 bytes", func(r *translate.WebPushRecipient) { r.Keys.Auth = "AAAAAAAAAAAAAAAA" }, translate.CodeInvalidRecipient, "to.webpush.keys.auth"},
		{"auth padded too much", func(r *translate.WebPushRecipient) { r.Keys.Auth = wpAuth + "===" }, translate.CodeInvalidRecipient, "to.webpush.keys.auth"},
	}
	for _, c := range cases {
		r := wpRecipient()
		c.f(r)
		s, err := translate.ValidateSubscription(r)
		if err == nil {
			t.Fatalf("%s: accepted %+v", c.name, s)
		}
		if err.Code != c.code || err.Field != c.field || !strings.HasPrefix(err.Message, c.field) {
			t.Fatalf("%s: got %s field %q message %q", c.name, err.Code, err.Field, err.Message)
		}
	}
	if _, err := translate.ValidateSubscription(nil); err == nil || err.Field != "to.webpush" {
		t.Fatalf("nil recipient: %v", err)
	}
}

func TestBuildWebPushDeclarativeDefault(t *testing.T) {
	n := wpNote(func(n *translate.Notification) {
		n.Title, n.Subtitle, n.Body = "Order shipped", "ignored", "Your parcel <b> is on its way"
		n.URL, n.Image = "https://shop.example/orders/1234?a=1&b=2", "https://shop.example/i.png"
		n.Badge = wpPtr(3)
		n.CollapseID = "order-1234"
		n.Data = map[string]json.RawMessage{"order": json.RawMessage(`"1234"`), "n": json.RawMessage(`1`)}
		n.Priority = "high"
	})
	m, err := translate.BuildWebPush(n, translate.WebPushTarget{DefaultTTL: 600, NewID: wpNewID})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"web_push":8030,"notification":{"title":"Order shipped","body":"Your parcel <b> is on its way","navigate":"https://shop.example/orders/1234?a=1&b=2","tag":"order-1234","image":"https://shop.example/i.png","data":{"n":1,"order":"1234"}},"app_badge":3}`
	if string(m.Plaintext) != want {
		t.Fatalf("plaintext\n got %s\nwant %s", m.Plaintext, want)
	}
	if m.TTL != 600 || m.Urgency != "high" || m.Topic != "order-1234" || m.ID != wpNewID {
		t.Fatalf("headers %+v", m)
	}
}

func TestBuildWebPushShapes(t *testing.T) {
	cases := []struct {
		name string
		f    func(n *translate.Notification)
		want string
	}{
		{"body only", func(n *translate.Notification) { n.Body = "b" }, `{"web_push":8030,"notification":{"title":"","body":"b"}}`},
		{"data only", func(n *translate.Notification) { n.Data = map[string]json.RawMessage{"k": json.RawMessage(`[1,2]`)} }, `{"data":{"k":[1,2]}}`},
		{"badge only", func(n *translate.Notification) { n.Badge = wpPtr(0) }, `{"app_badge":0}`},
		{"payload string", func(n *translate.Notification) {
			n.Title = "ignored"
			n.WebPush = &translate.WebPushOverrides{Payload: json.RawMessage(`"plain text \u00e9"`)}
		}, "plain text é"},
		{"payload object verbatim", func(n *translate.Notification) {
			n.WebPush = &translate.WebPushOverrides{Payload: json.RawMessage(`{"b": 1, "a": [true]}`)}
		}, `{"b": 1, "a": [true]}`},
		{"payload null is no payload", func(n *translate.Notification) {
			n.Title = "t"
			n.WebPush = &translate.WebPushOverrides{Payload: json.RawMessage(`null`)}
		}, `{"web_push":8030,"notification":{"title":"t"}}`},
	}
	for _, c := range cases {
		m, err := translate.BuildWebPush(wpNote(c.f), translate.WebPushTarget{DefaultTTL: 60})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if string(m.Plaintext) != c.want {
			t.Fatalf("%s: got %s want %s", c.name, m.Plaintext, c.want)
		}
	}
}

func TestBuildWebPushHeaders(t *testing.T) {
	long := strings.Repeat("x", 33)
	cases := []struct {
		name      string
		f         func(n *translate.Notification)
		def       int64
		ttl       int64
		urg, topi string
	}{
		{"default TTL", nil, 2419200, 2419200, "", ""},
		{"ttl 0 wins over default", func(n *translate.Notification) { n.TTL = wpPtr(int64(0)) }, 99, 0, "", ""},
		{"default 0 is 0", nil, 0, 0, "", ""},
		{"negative default is the built-in default", nil, -1, translate.DefaultWebPushTTL, "", ""},
		{"normal", func(n *translate.Notification) { n.Priority = "normal" }, 1, 1, "normal", ""},
		{"low", func(n *translate.Notification) { n.Priority = "low" }, 1, 1, "low", ""},
		{"urgency override", func(n *translate.Notification) {
			n.Priority = "high"
			n.WebPush = &translate.WebPushOverrides{Urgency: "very-low"}
		}, 1, 1, "very-low", ""},
		{"topic as is", func(n *translate.Notification) { n.CollapseID = "a-B_9" }, 1, 1, "", "a-B_9"},
		{"topic mapped (too long)", func(n *translate.Notification) { n.CollapseID = long }, 1, 1, "", translate.WebPushTopic(long)},
		{"topic mapped (not base64url)", func(n *translate.Notification) { n.CollapseID = "order 1234" }, 1, 1, "", translate.WebPushTopic("order 1234")},
		{"topic override", func(n *translate.Notification) {
			n.CollapseID = "x y"
			n.WebPush = &translate.WebPushOverrides{Topic: "over"}
		}, 1, 1, "", "over"},
	}
	for _, c := range cases {
		n := wpNote(func(n *translate.Notification) {
			n.Body = "b"
			if c.f != nil {
				c.f(n)
			}
		})
		m, err := translate.BuildWebPush(n, translate.WebPushTarget{DefaultTTL: c.def})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if m.TTL != c.ttl || m.Urgency != c.urg || m.Topic != c.topi {
			t.Fatalf("%s: got ttl %d urgency %q topic %q", c.name, m.TTL, m.Urgency, m.Topic)
		}
	}
}

func TestWebPushTopicMapping(t *testing.T) {
	for _, id := range []string{"order 1234", strings.Repeat("a", 33), "ü", "a.b", "a/b", "a+b", "a=b"} {
		got := translate.WebPushTopic(id)
		if !translate.IsWebPushTopic(got) || len(got) != 32 {
			t.Fatalf("%q → %q is not a 32-character topic", id, got)
		}
		if got != translate.WebPushTopic(id) {
			t.Fatalf("%q mapped differently twice", id)
		}
	}
	if translate.WebPushTopic("a b") == translate.WebPushTopic("a c") {
		t.Fatal("different ids map to one topic")
	}
	for _, id := range []string{"", "a", strings.Repeat("Z", 32), "order-1234_x"} {
		if got := translate.WebPushTopic(id); got != id {
			t.Fatalf("%q changed to %q", id, got)
		}
	}
}

func TestBuildWebPushRefusals(t *testing.T) {
	cases := []struct {
		name  string
		f     func(n *translate.Notification)
		code  translate.Code
		field string
	}{
		{"empty", func(n *translate.Notification) { n.Body = "" }, translate.CodeInvalidRequest, ""},
		{"negative ttl", func(n *translate.Notification) { n.TTL = wpPtr(int64(-1)) }, translate.CodeInvalidRequest, "ttl"},
		{"bad priority", func(n *translate.Notification) { n.Priority = "urgent" }, translate.CodeInvalidRequest, "priority"},
		{"bad urgency", func(n *translate.Notification) { n.WebPush = &translate.WebPushOverrides{Urgency: "HIGH"} }, translate.CodeInvalidRequest, "webpush.urgency"},
		{"bad topic", func(n *translate.Notification) { n.WebPush = &translate.WebPushOverrides{Topic: "a b"} }, translate.CodeInvalidRequest, "webpush.topic"},
		{"long topic", func(n *translate.Notification) {
			n.WebPush = &translate.WebPushOverrides{Topic: strings.Repeat("a", 33)}
		}, translate.CodeInvalidRequest, "webpush.topic"},
		{"collapse id control", func(n *translate.Notification) { n.CollapseID = "a\nb" }, translate.CodeInvalidRequest, "collapse_id"},
		{"bad id", func(n *translate.Notification) { n.ID = "42" }, translate.CodeInvalidRequest, "id"},
		{"negative badge", func(n *translate.Notification) { n.Badge = wpPtr(-1) }, translate.CodeInvalidRequest, "badge"},
		{"payload not JSON", func(n *translate.Notification) {
			n.WebPush = &translate.WebPushOverrides{Payload: json.RawMessage(`{`)}
		}, translate.CodeInvalidRequest, "webpush.payload"},
		{"payload empty string", func(n *translate.Notification) {
			n.WebPush = &translate.WebPushOverrides{Payload: json.RawMessage(`""`)}
		}, translate.CodeInvalidRequest, "webpush.payload"},
		{"too large", func(n *translate.Notification) { n.Body = strings.Repeat("x", translate.WebPushMaxPlaintext) }, translate.CodePayloadTooLarge, ""},
		{"payload too large", func(n *translate.Notification) {
			n.WebPush = &translate.WebPushOverrides{Payload: json.RawMessage(`"` + strings.Repeat("x", translate.WebPushMaxPlaintext+1) + `"`)}
		}, translate.CodePayloadTooLarge, ""},
	}
	for _, c := range cases {
		n := wpNote(func(n *translate.Notification) {
			n.Body = "b"
			c.f(n)
		})
		m, err := translate.BuildWebPush(n, translate.WebPushTarget{})
		if err == nil {
			t.Fatalf("%s: accepted %+v", c.name, m)
		}
		if err.Code != c.code || err.Field != c.field {
			t.Fatalf("%s: got %s field %q (%s)", c.name, err.Code, err.Field, err.Message)
		}
	}
}

func TestBuildWebPushLimitIsExact(t *testing.T) {
	n := wpNote(func(n *translate.Notification) {
		n.WebPush = &translate.WebPushOverrides{Payload: json.RawMessage(`"` + strings.Repeat("x", translate.WebPushMaxPlaintext) + `"`)}
	})
	m, err := translate.BuildWebPush(n, translate.WebPushTarget{})
	if err != nil || len(m.Plaintext) != 3993 {
		t.Fatalf("3993 bytes must fit: %v", err)
	}
}

func TestWebPushService(t *testing.T) {
	cases := map[string]string{
		"fcm.googleapis.com":                  "fcm",
		"FCM.googleapis.com.":                 "fcm",
		"fcm.googleapis.com:443":              "fcm",
		"android.googleapis.com":              "fcm",
		"updates.push.services.mozilla.com":   "mozilla",
		"web.push.apple.com":                  "apple",
		"wns2-par02p.notify.windows.com":      "wns",
		"x.push.apple.com.evil.example":       "other",
		"evilpush.apple.com":                  "other",
		"notify.windows.com":                  "other",
		"127.0.0.1:8443":                      "other",
		"push.example.net":                    "other",
		"updates.push.services.mozilla.co.uk": "other",
	}
	for host, want := range cases {
		if got := translate.WebPushService(host); got != want {
			t.Errorf("%s: got %s want %s", host, got, want)
		}
	}
}

// FuzzValidateSubscription: whatever the input, the answer is either a
// subscription whose keys are a valid P-256 point and 16 bytes, or an
// invalid_recipient / destination_forbidden error naming a to.webpush field.
func FuzzValidateSubscription(f *testing.F) {
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	pub := k.PublicKey().Bytes()
	for _, s := range [][3]string{
		{"https://fcm.googleapis.com/fcm/send/x", wpP256DH, wpAuth},
		{"https://updates.push.services.mozilla.com/wpush/v2/gAAAA", base64.StdEncoding.EncodeToString(pub), base64.StdEncoding.EncodeToString(make([]byte, 16))},
		{"https://web.push.apple.com/QAbc", base64.URLEncoding.EncodeToString(pub), "AAAAAAAAAAAAAAAAAAAAAA=="},
		{"http://x", "", ""},
		{"https://[::1]:443/x", "BA", "A"},
		{"https://x/y#z", wpP256DH + "=", wpAuth + "=="},
		{"https://a b/", "+/-_", "===="},
		{"", "\n", "\x00"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, endpoint, p256dh, auth string) {
		r := &translate.WebPushRecipient{Endpoint: endpoint, Keys: translate.WebPushKeys{P256DH: p256dh, Auth: auth}}
		s, err := translate.ValidateSubscription(r)
		if err != nil {
			if s != nil {
				t.Fatal("subscription and error both returned")
			}
			if err.Code != translate.CodeInvalidRecipient && err.Code != translate.CodeDestinationForbidden {
				t.Fatalf("code %s", err.Code)
			}
			if !strings.HasPrefix(err.Field, "to.webpush") || !strings.HasPrefix(err.Message, err.Field) {
				t.Fatalf("field %q message %q", err.Field, err.Message)
			}
			return
		}
		if len(s.P256DH) != 65 || len(s.Auth) != 16 {
			t.Fatalf("keys %d/%d bytes", len(s.P256DH), len(s.Auth))
		}
		if _, e := ecdh.P256().NewPublicKey(s.P256DH); e != nil {
			t.Fatalf("accepted a key off the curve: %v", e)
		}
		if !strings.HasPrefix(strings.ToLower(s.Endpoint), "https://") {
			t.Fatalf("accepted endpoint %q", s.Endpoint)
		}
	})
}

// FuzzDecodeWebPushKey: decoding never panics, and what it accepts
// re-encodes to the same bytes in every alphabet.
func FuzzDecodeWebPushKey(f *testing.F) {
	for _, s := range []string{wpP256DH, wpAuth, "YQ==", "YQ", "+/+/", "-_-_", "a", "====", "YQ=a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := translate.DecodeWebPushKey(s)
		if err != nil {
			return
		}
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.StdEncoding} {
			again, err := translate.DecodeWebPushKey(enc.EncodeToString(b))
			if len(b) > 0 && (err != nil || !bytes.Equal(again, b)) {
				t.Fatalf("%q: re-decoding gave %x, %v", s, again, err)
			}
		}
	})
}
