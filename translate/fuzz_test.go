package translate_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pushproxy/pushproxy/translate"
)

// validFieldValue reports whether s may be sent as an HTTP/2 header value
// (RFC 9110 field-value: no control characters other than HTAB).
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func FuzzDecodeNotification(f *testing.F) {
	tok := `"` + testToken + `"`
	for _, seed := range []string{
		// Valid.
		`{"to":{"apns":{"token":` + tok + `}},"title":"Order shipped","body":"On its way","badge":3,"sound":"default"}`,
		`{"to":{"apns":{"token":` + tok + `}},"data":{"order":"1234"}}`,
		`{"to":{"apns":{"token":` + tok + `}},"data":{"k":1},"push_type":"background","priority":"high","ttl":0}`,
		`{"to":{"apns":{"token":` + tok + `}},"body":"call","push_type":"voip","ttl":30,"collapse_id":"c1","id":"A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"}`,
		`{"to":{"apns":{"token":` + tok + `}},"title":"t","image":"https://example.com/i.png","url":"https://example.com/","apns":{"aps":{"interruption-level":"time-sensitive","thread-id":"x","relevance-score":0.5}}}`,
		`{"to":{"apns":{"token":` + tok + `}},"push_type":"liveactivity","apns":{"aps":{"event":"update","content-state":{"a":1},"timestamp":1763632800,"alert":{"title":"t"}}}}`,
		`{"to":{"apns":{"token":` + tok + `}},"body":"b","apns":{"headers":{"apns-priority":"5","apns-topic":"com.other.app","apns-expiration":"0","apns-push-type":"widgets","apns-collapse-id":"x"}}}`,
		`{"to":{"apns":{"token":` + tok + `}},"body":"b","sound":{"critical":1,"name":"a.aiff","volume":1},"apns":{"payload":{"k":[1,2]},"aps":{"sound":null}}}`,
		`{"to":{"apns":{"token":` + tok + `}},"body":"b","ttl":9223372036854775807}`,
		`{"to":{"webpush":{"endpoint":"https://push.example/x","keys":{"p256dh":"P","auth":"A"}}},"body":"b"}`,
		// Invalid.
		`{"to":{"apns":{"token":"abc"}},"body":"b"}`,
		`{"to":{"apns":{"token":` + tok + `}},"push_type":"background","title":"t"}`,
		`{"to":{"apns":{"token":` + tok + `}},"body":"b","collapse_id":"a\nb"}`,
		`{"to":{"apns":{"token":` + tok + `}},"data":{"aps":{}}}`,
		`{"to":{"apns":{"token":123}}}`,
		`{"titel":"x"}`,
		`{"title":"x"} trailing`,
		`[]`,
		``,
		`{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, derr := translate.DecodeNotification(data)
		if derr != nil {
			if n != nil {
				t.Fatalf("notification and error both returned")
			}
			if derr.Code != translate.CodeInvalidRequest || derr.Message == "" {
				t.Fatalf("decode error %+v", derr)
			}
			return
		}
		platform, perr := n.Platform()
		if perr != nil || platform != translate.PlatformAPNs {
			return
		}
		tg := translate.APNsTarget{Topic: testTopic, Now: testNow, NewID: testNewID}
		if n.To.APNs.Topic != "" {
			tg.Topic = n.To.APNs.Topic
		}
		req, err := translate.BuildAPNs(n, tg)
		if err != nil {
			if req != nil {
				t.Fatalf("request and error both returned")
			}
			if err.Message == "" {
				t.Fatalf("error without a message: %+v", err)
			}
			switch err.Code {
			case translate.CodeInvalidRequest, translate.CodeInvalidRecipient, translate.CodePayloadTooLarge:
			default:
				t.Fatalf("unexpected code %s: %v", err.Code, err)
			}
			if n.To.APNs.Token != "" && len(n.To.APNs.Token) >= 8 && strings.Contains(err.Error(), n.To.APNs.Token) {
				t.Fatalf("error reveals the device token: %v", err)
			}
			return
		}
		if !json.Valid(req.Payload) {
			t.Fatalf("payload is not valid JSON: %q", req.Payload)
		}
		var body map[string]any
		if e := json.Unmarshal(req.Payload, &body); e != nil {
			t.Fatalf("payload is not a JSON object: %v", e)
		}
		aps, ok := body["aps"].(map[string]any)
		if !ok {
			t.Fatalf("payload has no aps dictionary: %s", req.Payload)
		}
		limit := 4096
		if req.PushType == translate.PushVoIP {
			limit = 5120
		}
		if len(req.Payload) > limit {
			t.Fatalf("%s payload is %d bytes, over %d", req.PushType, len(req.Payload), limit)
		}
		if req.Topic == "" {
			t.Fatalf("empty topic")
		}
		info, ok := translate.LookupPushType(req.PushType)
		if !ok {
			t.Fatalf("unknown push type %q", req.PushType)
		}
		if !strings.HasSuffix(req.Topic, info.TopicSuffix) {
			t.Fatalf("topic %q lacks the %s suffix %q", req.Topic, req.PushType, info.TopicSuffix)
		}
		switch req.Priority {
		case 1, 5, 10:
		default:
			t.Fatalf("priority %d", req.Priority)
		}
		if req.PushType == translate.PushBackground {
			if req.Priority != 5 {
				t.Fatalf("background push with priority %d", req.Priority)
			}
			if aps["content-available"] != 1.0 {
				t.Fatalf("background push without content-available: 1: %s", req.Payload)
			}
		}
		if req.Expiration != nil && *req.Expiration < 0 {
			t.Fatalf("negative apns-expiration %d", *req.Expiration)
		}
		if len(req.CollapseID) > 64 {
			t.Fatalf("collapse id of %d bytes", len(req.CollapseID))
		}
		if !translate.IsUUID(req.ID) || req.ID != strings.ToLower(req.ID) {
			t.Fatalf("apns-id %q is not a lower-case UUID", req.ID)
		}
		if translate.ValidDeviceToken(req.DeviceToken) != nil || req.DeviceToken != strings.ToLower(req.DeviceToken) {
			t.Fatalf("device token %q", req.DeviceToken)
		}
		for _, h := range req.Headers() {
			if !validFieldValue(h[1]) {
				t.Fatalf("header %s has a value that cannot be sent: %q", h[0], h[1])
			}
		}
	})
}
