package translate_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/translate"
)

func TestDecodeNotificationValid(t *testing.T) {
	body := `{
	  "to": {"apns": {"token": "` + testToken + `", "topic": "com.example.app", "credential": "default", "environment": "production"}},
	  "title": "Order shipped", "subtitle": "s", "body": "Your parcel is on its way",
	  "badge": 3, "sound": "default", "image": "https://example.com/i.png", "url": "https://example.com/o",
	  "data": {"order": "1234", "n": 1},
	  "priority": "high", "ttl": 3600, "collapse_id": "order-1234", "push_type": "alert",
	  "id": "` + testNewID + `", "dry_run": true,
	  "apns": {"headers": {"apns-priority": "5"}, "aps": {"thread-id": "t"}, "payload": {"k": [1]}},
	  "webpush": {"topic": "t", "urgency": "low", "payload": "text"}
	}`
	n, err := translate.DecodeNotification([]byte(body))
	if err != nil {
		t.Fatalf("DecodeNotification: %v", err)
	}
	want := &translate.Notification{
		To: translate.Recipient{APNs: &translate.APNsRecipient{
			Token: testToken, Topic: "com.example.app", Credential: "default", Environment: "production",
		}},
		Title: "Order shipped", Subtitle: "s", Body: "Your parcel is on its way",
		Badge: ptr(3), Sound: raw(`"default"`), Image: "https://example.com/i.png", URL: "https://example.com/o",
		Data:     rawMap("order", `"1234"`, "n", `1`),
		Priority: "high", TTL: ptr[int64](3600), CollapseID: "order-1234", PushType: "alert",
		ID: testNewID, DryRun: true,
		APNs: &translate.APNsOverrides{
			Headers: map[string]string{"apns-priority": "5"},
			APS:     rawMap("thread-id", `"t"`),
			Payload: rawMap("k", `[1]`),
		},
		WebPush: &translate.WebPushOverrides{Topic: "t", Urgency: "low", Payload: raw(`"text"`)},
	}
	if !reflect.DeepEqual(n, want) {
		gj, _ := json.Marshal(n)
		wj, _ := json.Marshal(want)
		t.Errorf("decoded\n got %s\nwant %s", gj, wj)
	}
	if p, err := n.Platform(); err != nil || p != translate.PlatformAPNs {
		t.Errorf("Platform() = %q, %v", p, err)
	}

	wp := `{"to":{"webpush":{"endpoint":"https://push.example/x","keys":{"p256dh":"P","auth":"A"},"expirationTime":null,"vapid_key":"2026-11"}},"body":"b"}`
	n, err = translate.DecodeNotification([]byte(wp))
	if err != nil {
		t.Fatalf("DecodeNotification(webpush): %v", err)
	}
	if n.To.WebPush == nil || n.To.WebPush.Keys.P256DH != "P" || n.To.WebPush.Keys.Auth != "A" || n.To.WebPush.VAPIDKey != "2026-11" {
		t.Errorf("webpush recipient = %+v", n.To.WebPush)
	}
	if p, err := n.Platform(); err != nil || p != translate.PlatformWebPush {
		t.Errorf("Platform() = %q, %v", p, err)
	}
}

func TestDecodeNotificationErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		field   string
		message string // a substring the message must contain
	}{
		{"unknown top-level field", `{"titel":"x"}`, "titel", `unknown field "titel"`},
		{"unknown nested field", `{"to":{"apns":{"tokn":"x"}}}`, "tokn", `unknown field "tokn"`},
		{"unknown override field", `{"apns":{"header":{}}}`, "header", `unknown field "header"`},
		{"token not a string", `{"to":{"apns":{"token":123}}}`, "to.apns.token", "expected a string"},
		{"badge not an integer", `{"badge":"3"}`, "badge", "expected an integer"},
		{"badge fractional", `{"badge":1.5}`, "badge", "expected an integer"},
		{"ttl too large for int64", `{"ttl":99999999999999999999}`, "ttl", "expected an integer"},
		{"dry_run not a bool", `{"dry_run":"yes"}`, "dry_run", "expected a boolean"},
		{"to not an object", `{"to":"x"}`, "to", "expected an object"},
		{"apns recipient array", `{"to":{"apns":[]}}`, "to.apns", "expected an object"},
		{"webpush keys wrong", `{"to":{"webpush":{"keys":{"auth":5}}}}`, "to.webpush.keys.auth", "expected a string"},
		{"data not an object", `{"data":[1]}`, "data", "expected an object"},
		{"header value not a string", `{"apns":{"headers":{"apns-priority":10}}}`, "apns.headers", "expected a string"},
		{"top level array", `[]`, "", "expected an object"},
		{"top level string", `"x"`, "", "expected an object"},
		{"trailing object", `{"title":"x"}{"title":"y"}`, "", "unexpected data after the JSON object"},
		{"trailing garbage", `{"title":"x"} x`, "", "unexpected data"},
		{"trailing brace", `{"title":"x"}}`, "", "unexpected data"},
		{"empty body", ``, "", "empty"},
		{"whitespace body", " \n\t", "", "empty"},
		{"truncated", `{"title":"x"`, "", "ends early"},
		{"syntax error", `{"title" "x"}`, "", "malformed JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := translate.DecodeNotification([]byte(tc.body))
			if n != nil {
				t.Errorf("got a notification as well as an error")
			}
			wantErr(t, err, translate.CodeInvalidRequest, tc.field)
			if err != nil && !strings.Contains(err.Message, tc.message) {
				t.Errorf("message %q does not contain %q", err.Message, tc.message)
			}
			if err != nil && tc.field != "" && !strings.HasPrefix(err.Message, tc.field+": ") {
				t.Errorf("message %q does not start with the field %q", err.Message, tc.field)
			}
		})
	}
}

func TestDecodeNotificationTrailingWhitespace(t *testing.T) {
	if _, err := translate.DecodeNotification([]byte("{\"title\":\"x\"}\r\n\t ")); err != nil {
		t.Errorf("trailing whitespace refused: %v", err)
	}
}

func TestDecodeNotificationDoesNotEchoSecrets(t *testing.T) {
	// A token sent with the wrong type must not be echoed back as a value.
	const secretish = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for _, body := range []string{
		`{"to":{"apns":{"token":["` + secretish + `"]}}}`,
		`{"to":{"webpush":{"endpoint":{"u":"https://push.example/` + secretish + `"}}}}`,
	} {
		_, err := translate.DecodeNotification([]byte(body))
		if err == nil {
			t.Fatalf("accepted %s", body)
		}
		if strings.Contains(err.Error(), secretish) {
			t.Errorf("error reveals the value: %v", err)
		}
	}
}

func TestPlatform(t *testing.T) {
	apns := &translate.APNsRecipient{Token: testToken}
	wp := &translate.WebPushRecipient{Endpoint: "https://push.example/x"}
	for _, tc := range []struct {
		name string
		to   translate.Recipient
		want string // "" → invalid_request on "to"
	}{
		{"none", translate.Recipient{}, ""},
		{"both", translate.Recipient{APNs: apns, WebPush: wp}, ""},
		{"apns", translate.Recipient{APNs: apns}, translate.PlatformAPNs},
		{"webpush", translate.Recipient{WebPush: wp}, translate.PlatformWebPush},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &translate.Notification{To: tc.to}
			p, err := n.Platform()
			if tc.want == "" {
				wantErr(t, err, translate.CodeInvalidRequest, "to")
				if p != "" {
					t.Errorf("platform %q with an error", p)
				}
				return
			}
			if err != nil || p != tc.want {
				t.Errorf("Platform() = %q, %v; want %q", p, err, tc.want)
			}
		})
	}
	// Decoded: an empty "to" object, and both recipients.
	for _, body := range []string{`{"to":{}}`, `{}`, `{"to":{"apns":{"token":"a"},"webpush":{"endpoint":"b"}}}`} {
		n, err := translate.DecodeNotification([]byte(body))
		if err != nil {
			t.Fatalf("DecodeNotification(%s): %v", body, err)
		}
		_, perr := n.Platform()
		wantErr(t, perr, translate.CodeInvalidRequest, "to")
	}
}

func TestDecodeBatch(t *testing.T) {
	entries, err := translate.DecodeBatch([]byte(`{"notifications":[{"title":"a"},{"bogus":1},"not even an object"]}`))
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	if len(entries) != 3 {
		t.Fatalf("got %d entries, want 3", len(entries))
	}
	// Each entry is kept raw: a bad entry fails only when decoded itself.
	if _, err := translate.DecodeNotification(entries[0]); err != nil {
		t.Errorf("entry 0: %v", err)
	}
	if _, err := translate.DecodeNotification(entries[1]); err == nil || err.Field != "bogus" {
		t.Errorf("entry 1: err = %v, want unknown field bogus", err)
	}
	if _, err := translate.DecodeNotification(entries[2]); err == nil {
		t.Errorf("entry 2 decoded")
	}

	entries, err = translate.DecodeBatch([]byte(`{"notifications":[]}`))
	if err != nil || len(entries) != 0 {
		t.Errorf("empty batch: %v, %d entries", err, len(entries))
	}

	for _, tc := range []struct {
		name, body, field, message string
	}{
		{"missing", `{}`, "notifications", "required"},
		{"null", `{"notifications":null}`, "notifications", "required"},
		{"unknown field", `{"notifications":[],"extra":1}`, "extra", `unknown field "extra"`},
		{"wrong type", `{"notifications":{}}`, "notifications", "expected an array"},
		{"trailing", `{"notifications":[]} []`, "", "unexpected data"},
		{"empty", ``, "", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := translate.DecodeBatch([]byte(tc.body))
			if got != nil {
				t.Errorf("entries returned with an error")
			}
			wantErr(t, err, translate.CodeInvalidRequest, tc.field)
			if err != nil && !strings.Contains(err.Message, tc.message) {
				t.Errorf("message %q does not contain %q", err.Message, tc.message)
			}
		})
	}
}
