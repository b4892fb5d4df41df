package translate_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/translate"
)

// fcmTestToken looks like a real registration token: an instance ID, a
// colon, and "APA91b" followed by base64url.
var fcmTestToken = "dQw4w9WgXcQ:APA91b" + strings.Repeat("Hk3_x-9QzP", 14)

const fcmNewID = "5b9c7d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"

// buildFCM decodes a notification from JSON (as the local API does) and
// translates it.
func buildFCM(t *testing.T, body string) (*translate.FCMRequest, *translate.Error) {
	t.Helper()
	n, derr := translate.DecodeNotification([]byte(body))
	if derr != nil {
		return nil, derr
	}
	if p, perr := n.Platform(); perr != nil || p != translate.PlatformFCM {
		t.Fatalf("Platform() = %q, %v", p, perr)
	}
	return translate.BuildFCM(n, translate.FCMTarget{NewID: fcmNewID})
}

func fcmBody(fields string) string {
	s := `{"to":{"fcm":{"token":"` + fcmTestToken + `"}}`
	if fields != "" {
		s += "," + fields
	}
	return s + "}"
}

// message decodes the request body's message.
func message(t *testing.T, r *translate.FCMRequest) map[string]any {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	m, _ := b["message"].(map[string]any)
	if m == nil {
		t.Fatalf("body %s has no message", r.Body)
	}
	return m
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFCMBuildMapping(t *testing.T) {
	t.Parallel()
	r, e := buildFCM(t, fcmBody(`"title":"Order shipped","subtitle":"ignored","body":"On its way","image":"https://example.com/i.png",
		"url":"https://example.com/o/1","data":{"order":"1234","n":12,"o":{"a":[1,true]},"z":null},
		"priority":"high","ttl":3600,"collapse_id":"order-1234","sound":"default","badge":3,
		"id":"A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"`))
	if e != nil {
		t.Fatal(e)
	}
	want := `{"android":{"collapse_key":"order-1234","notification":{"notification_count":3,"sound":"default"},"priority":"HIGH","ttl":"3600s"},` +
		`"data":{"n":"12","o":"{\"a\":[1,true]}","order":"1234","url":"https://example.com/o/1","z":"null"},` +
		`"notification":{"body":"On its way","image":"https://example.com/i.png","title":"Order shipped"},"token":"` + fcmTestToken + `"}`
	if string(r.Message) != want {
		t.Fatalf("message\n got %s\nwant %s", r.Message, want)
	}
	if string(r.Body) != `{"message":`+want+`}` {
		t.Fatalf("body %s", r.Body)
	}
	if r.ID != "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" || r.Token != fcmTestToken || r.ValidateOnly {
		t.Fatalf("id %q token ok %v validate_only %v", r.ID, r.Token == fcmTestToken, r.ValidateOnly)
	}
	if r.MessageSize != len(want)-len(`,"token":"`+fcmTestToken+`"`) {
		t.Fatalf("MessageSize %d, message without the token is %d bytes", r.MessageSize, len(want)-len(`,"token":"`+fcmTestToken+`"`))
	}
}

func TestFCMBuildPriorityTTLAndDefaults(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		fields string
		want   string // message.android as JSON, "" for none
	}{
		{`"body":"b"`, ""},
		{`"body":"b","priority":"normal"`, `{"priority":"NORMAL"}`},
		{`"body":"b","priority":"low"`, `{"priority":"NORMAL"}`},
		{`"body":"b","priority":"high"`, `{"priority":"HIGH"}`},
		{`"body":"b","ttl":0`, `{"ttl":"0s"}`},
		{`"body":"b","ttl":2419200`, `{"ttl":"2419200s"}`},
		{`"body":"b","badge":0`, `{"notification":{"notification_count":0}}`},
		{`"body":"b","sound":{"critical":1,"name":"alarm.caf","volume":1}`, `{"notification":{"sound":"alarm.caf"}}`},
	} {
		r, e := buildFCM(t, fcmBody(c.fields))
		if e != nil {
			t.Fatalf("%s: %v", c.fields, e)
		}
		m := message(t, r)
		got := ""
		if a, ok := m["android"]; ok {
			got = mustJSON(t, a)
		}
		if got != c.want {
			t.Errorf("%s: android %s, want %s", c.fields, got, c.want)
		}
		if r.ID != fcmNewID {
			t.Errorf("%s: id %q, want the new one", c.fields, r.ID)
		}
	}
}

func TestFCMBuildMerge(t *testing.T) {
	t.Parallel()
	r, e := buildFCM(t, fcmBody(`"title":"t","body":"b","priority":"high","ttl":60,"sound":"default","data":{"k":"v","drop":"x"},
		"fcm":{"android":{"priority":"NORMAL","ttl":null,"direct_boot_ok":true,"notification":{"channel_id":"orders","sound":null}},
		       "message":{"notification":{"body":null},"data":{"drop":null,"extra":"e"},"apns":{"headers":{"apns-priority":"5"}},"fcm_options":{"analytics_label":"l"}},
		       "validate_only":true}`))
	if e != nil {
		t.Fatal(e)
	}
	want := `{"android":{"direct_boot_ok":true,"notification":{"channel_id":"orders"},"priority":"NORMAL"},` +
		`"apns":{"headers":{"apns-priority":"5"}},"data":{"extra":"e","k":"v"},"fcm_options":{"analytics_label":"l"},` +
		`"notification":{"title":"t"},"token":"` + fcmTestToken + `"}`
	if string(r.Message) != want {
		t.Fatalf("message\n got %s\nwant %s", r.Message, want)
	}
	if !r.ValidateOnly || !strings.HasSuffix(string(r.Body), `,"validate_only":true}`) {
		t.Fatalf("validate_only not sent: %s", r.Body)
	}
	// Numbers in overrides keep their exact text.
	r, e = buildFCM(t, fcmBody(`"body":"b","fcm":{"android":{"notification":{"notification_count":12345678901234567}}}`))
	if e != nil {
		t.Fatal(e)
	}
	if !strings.Contains(string(r.Message), `"notification_count":12345678901234567`) {
		t.Fatalf("number rewritten: %s", r.Message)
	}
	// Null removing everything derived leaves no empty blocks; fcm.message
	// may carry android too.
	r, e = buildFCM(t, fcmBody(`"body":"b","badge":2,"fcm":{"message":{"android":{"notification":{"notification_count":null}}}}`))
	if e != nil {
		t.Fatal(e)
	}
	if strings.Contains(string(r.Message), "android") {
		t.Fatalf("empty android block left: %s", r.Message)
	}
}

func TestFCMBuildErrors(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", translate.FCMMaxMessage)
	for _, c := range []struct {
		name, body string
		code       translate.Code
		field      string // Error.Field, or a part of the message
	}{
		{"no token", `{"to":{"fcm":{"token":""}},"body":"b"}`, translate.CodeInvalidRecipient, "to.fcm.token"},
		{"short token", `{"to":{"fcm":{"token":"abc"}},"body":"b"}`, translate.CodeInvalidRecipient, "to.fcm.token"},
		{"long token", `{"to":{"fcm":{"token":"` + strings.Repeat("a", translate.FCMMaxToken+1) + `"}},"body":"b"}`, translate.CodeInvalidRecipient, "to.fcm.token"},
		{"token with space", `{"to":{"fcm":{"token":"` + fcmTestToken[:40] + ` ` + fcmTestToken[41:] + `"}},"body":"b"}`, translate.CodeInvalidRecipient, "to.fcm.token"},
		{"token with dot", `{"to":{"fcm":{"token":"` + fcmTestToken + `.x"}},"body":"b"}`, translate.CodeInvalidRecipient, "to.fcm.token"},
		{"reserved from", fcmBody(`"data":{"from":"x"}`), translate.CodeInvalidRequest, "data.from"},
		{"reserved notification", fcmBody(`"data":{"notification":"x"}`), translate.CodeInvalidRequest, "data.notification"},
		{"reserved message_type", fcmBody(`"data":{"message_type":"x"}`), translate.CodeInvalidRequest, "data.message_type"},
		{"reserved google.", fcmBody(`"data":{"google.c.a.e":"1"}`), translate.CodeInvalidRequest, "data.google.c.a.e"},
		{"reserved gcm.", fcmBody(`"data":{"gcm.n.e":"1"}`), translate.CodeInvalidRequest, "data.gcm.n.e"},
		{"reserved in fcm.message.data", fcmBody(`"body":"b","fcm":{"message":{"data":{"from":"x"}}}`), translate.CodeInvalidRequest, "fcm.message.data.from"},
		{"reserved in fcm.android.data", fcmBody(`"body":"b","fcm":{"android":{"data":{"gcm.x":"x"}}}`), translate.CodeInvalidRequest, "fcm.android.data.gcm.x"},
		{"non-string fcm data", fcmBody(`"body":"b","fcm":{"message":{"data":{"n":1}}}`), translate.CodeInvalidRequest, "fcm.message.data.n"},
		{"recipient in fcm.message", fcmBody(`"body":"b","fcm":{"message":{"topic":"news"}}`), translate.CodeInvalidRequest, "fcm.message.topic"},
		{"token in fcm.message", fcmBody(`"body":"b","fcm":{"message":{"token":"x"}}`), translate.CodeInvalidRequest, "fcm.message.token"},
		{"bad priority", fcmBody(`"body":"b","priority":"urgent"`), translate.CodeInvalidRequest, "priority"},
		{"bad android priority", fcmBody(`"body":"b","fcm":{"android":{"priority":"high"}}`), translate.CodeInvalidRequest, "fcm.android.priority"},
		{"bad android ttl", fcmBody(`"body":"b","fcm":{"android":{"ttl":"3600"}}`), translate.CodeInvalidRequest, "fcm.android.ttl"},
		{"android ttl over 28 days", fcmBody(`"body":"b","fcm":{"android":{"ttl":"2419201s"}}`), translate.CodeInvalidRequest, "fcm.android.ttl"},
		{"negative ttl", fcmBody(`"body":"b","ttl":-1`), translate.CodeInvalidRequest, "ttl"},
		{"ttl over 28 days", fcmBody(`"body":"b","ttl":2419201`), translate.CodeInvalidRequest, "ttl"},
		{"negative badge", fcmBody(`"body":"b","badge":-1`), translate.CodeInvalidRequest, "badge"},
		{"bad count override", fcmBody(`"body":"b","fcm":{"android":{"notification":{"notification_count":"3"}}}`), translate.CodeInvalidRequest, "fcm.android.notification.notification_count"},
		{"sound without name", fcmBody(`"body":"b","sound":{"critical":1}`), translate.CodeInvalidRequest, "sound"},
		{"bad id", fcmBody(`"body":"b","id":"x"`), translate.CodeInvalidRequest, "id"},
		{"url and data.url differ", fcmBody(`"url":"https://a/","data":{"url":"https://b/"}`), translate.CodeInvalidRequest, "url"},
		{"empty", fcmBody(``), translate.CodeInvalidRequest, ""},
		{"too large", fcmBody(`"body":"` + big + `"`), translate.CodePayloadTooLarge, ""},
		{"too large after merge", fcmBody(`"body":"b","fcm":{"message":{"data":{"x":"` + big + `"}}}`), translate.CodePayloadTooLarge, ""},
		{"null outside fcm blocks", fcmBody(`"body":"b","fcm":{"android":null}`), translate.CodeInvalidRequest, "fcm.android"},
		{"unknown fcm field", fcmBody(`"body":"b","fcm":{"apns":{}}`), translate.CodeInvalidRequest, "apns"},
	} {
		_, e := buildFCM(t, c.body)
		if e == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if e.Code != c.code || e.Hint == "" {
			t.Errorf("%s: %s (hint %q), want %s", c.name, e, e.Hint, c.code)
		}
		if c.field != "" && e.Field != c.field && !strings.Contains(e.Message, c.field) {
			t.Errorf("%s: field %q message %q, want %q named", c.name, e.Field, e.Message, c.field)
		}
		if strings.Contains(e.Message+e.Hint, fcmTestToken) {
			t.Errorf("%s: the token is echoed", c.name)
		}
	}
}

// The 4096-byte limit counts the message without the token: a message
// just at the limit passes whatever the token's length.
func TestFCMBuildSizeExcludesToken(t *testing.T) {
	t.Parallel()
	r, e := buildFCM(t, fcmBody(`"body":"x"`))
	if e != nil {
		t.Fatal(e)
	}
	pad := translate.FCMMaxMessage - r.MessageSize
	r, e = buildFCM(t, fcmBody(`"body":"x`+strings.Repeat("y", pad)+`"`))
	if e != nil || r.MessageSize != translate.FCMMaxMessage || len(r.Message) <= translate.FCMMaxMessage {
		t.Fatalf("at the limit: %v, size %d", e, r.MessageSize)
	}
	if _, e = buildFCM(t, fcmBody(`"body":"x`+strings.Repeat("y", pad+1)+`"`)); e == nil || e.Code != translate.CodePayloadTooLarge || e.Platform != translate.PlatformFCM {
		t.Fatalf("one over: %v", e)
	}
}

func TestFCMPlatformExactlyOne(t *testing.T) {
	t.Parallel()
	apns := `"apns":{"token":"` + testToken + `"}`
	web := `"webpush":{"endpoint":"https://fcm.googleapis.com/fcm/send/x","keys":{"p256dh":"p","auth":"a"}}`
	fcm := `"fcm":{"token":"` + fcmTestToken + `","credential":"second"}`
	for _, c := range []struct {
		to   string
		want string
	}{
		{fcm, translate.PlatformFCM},
		{apns + "," + fcm, ""},
		{web + "," + fcm, ""},
		{apns + "," + web + "," + fcm, ""},
		{``, ""},
	} {
		n, derr := translate.DecodeNotification([]byte(`{"to":{` + c.to + `},"body":"b"}`))
		if derr != nil {
			t.Fatal(derr)
		}
		p, e := n.Platform()
		if p != c.want || (c.want == "") != (e != nil) {
			t.Errorf("to {%s}: %q, %v", c.to, p, e)
		}
		if e != nil && (e.Field != "to" || !strings.Contains(e.Message, "to.fcm")) {
			t.Errorf("to {%s}: %v", c.to, e)
		}
		if c.want == translate.PlatformFCM && n.To.FCM.Credential != "second" {
			t.Errorf("credential %q", n.To.FCM.Credential)
		}
	}
}

func TestFCMReservedDataKey(t *testing.T) {
	t.Parallel()
	for k, bad := range map[string]bool{
		"from": true, "notification": true, "message_type": true, "google.x": true, "gcm.y": true, "": true,
		"From": false, "googlex": false, "gcm": false, "order": false, "fromage": false, "url": false,
	} {
		if _, got := translate.FCMReservedDataKey(k); got != bad {
			t.Errorf("%q: reserved %v, want %v", k, got, bad)
		}
	}
}

// FuzzBuildFCM: whatever the notification, BuildFCM never panics, and what
// it builds is a JSON body whose message carries the token, has only
// string data values, and fits FCMMaxMessage without the token.
func FuzzBuildFCM(f *testing.F) {
	for _, seed := range []string{
		`"title":"t","body":"b","data":{"k":"v","n":1},"priority":"high","ttl":60,"collapse_id":"c","sound":"default","badge":1`,
		`"body":"b","fcm":{"android":{"ttl":null,"notification":{"channel_id":"x","sound":null}},"message":{"data":{"a":"b"},"apns":{"payload":{"aps":{}}}}}`,
		`"data":{"o":{"a":[1,{"b":null}]}},"fcm":{"message":{"android":{"priority":"NORMAL"}},"validate_only":true}`,
		`"body":"b","fcm":{"message":{"data":{"from":"x"}}}`,
		`"body":"b","fcm":{"android":{"notification":{"notification_count":-1}}}`,
		`"url":"https://e/","data":{"url":"https://e/"}`,
	} {
		f.Add([]byte(fcmBody(seed)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, derr := translate.DecodeNotification(data)
		if derr != nil || n.To.FCM == nil {
			return
		}
		r, e := translate.BuildFCM(n, translate.FCMTarget{NewID: fcmNewID})
		if e != nil {
			if r != nil || e.Hint == "" || e.Message == "" {
				t.Fatalf("bad error %+v", e)
			}
			return
		}
		var body struct {
			Message map[string]any `json:"message"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("body %q: %v", r.Body, err)
		}
		if body.Message["token"] != n.To.FCM.Token || r.MessageSize > translate.FCMMaxMessage {
			t.Fatalf("token or size: %s", r.Body)
		}
		if d, ok := body.Message["data"].(map[string]any); ok {
			for k, v := range d {
				if _, isStr := v.(string); !isStr {
					t.Fatalf("data.%s is %T", k, v)
				}
				if _, bad := translate.FCMReservedDataKey(k); bad {
					t.Fatalf("reserved key %q sent", k)
				}
			}
		}
	})
}
