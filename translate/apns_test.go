package translate_test

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/translate"
)

const (
	testTopic = "com.example.app"
	testNewID = "0f0e0d0c-0b0a-4909-8807-060504030201"
)

var (
	testNow = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	// A 32-byte device token in lower-case hex.
	testToken = strings.Repeat("0123456789abcdef", 4)
)

func target() translate.APNsTarget {
	return translate.APNsTarget{Topic: testTopic, Now: testNow, NewID: testNewID}
}

func ptr[T any](v T) *T { return &v }

// apnsNote is a notification to testToken with the given fields set by f.
func apnsNote(f func(n *translate.Notification)) *translate.Notification {
	n := &translate.Notification{To: translate.Recipient{APNs: &translate.APNsRecipient{Token: testToken, Topic: testTopic}}}
	if f != nil {
		f(n)
	}
	return n
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func rawMap(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = raw(kv[i+1])
	}
	return m
}

func mustBuild(t *testing.T, n *translate.Notification) *translate.APNsRequest {
	t.Helper()
	req, err := translate.BuildAPNs(n, target())
	if err != nil {
		t.Fatalf("BuildAPNs: unexpected error %v (field %q)", err, err.Field)
	}
	return req
}

func wantErr(t *testing.T, err *translate.Error, code translate.Code, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s error on field %q, got success", code, field)
	}
	if err.Code != code {
		t.Errorf("code = %s, want %s (message %q)", err.Code, code, err.Message)
	}
	if err.Field != field {
		t.Errorf("field = %q, want %q (message %q)", err.Field, field, err.Message)
	}
	if err.Message == "" {
		t.Errorf("empty message")
	}
	if err.Status() != code.HTTPStatus() {
		t.Errorf("Status() = %d, want %d", err.Status(), code.HTTPStatus())
	}
}

func decodePayload(t *testing.T, p []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, p)
	}
	return m
}

func header(req *translate.APNsRequest, name string) (string, bool) {
	for _, h := range req.Headers() {
		if h[0] == name {
			return h[1], true
		}
	}
	return "", false
}

func TestBuildAPNsPushTypes(t *testing.T) {
	// Expected values written from Apple's documentation (DESIGN.md "Known
	// library facts"), independently of translate.PushTypes.
	type prio struct {
		priority string
		want     int // 0: invalid_request on field "priority"
	}
	tests := []struct {
		pushType    string
		topic       string // the topic given to BuildAPNs
		wantTopic   string
		defaultPrio int
		prios       []prio
	}{
		{"alert", testTopic, "com.example.app", 10,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 1}}},
		{"background", testTopic, "com.example.app", 5,
			[]prio{{"high", 5}, {"normal", 5}, {"low", 5}}},
		{"voip", testTopic, "com.example.app.voip", 10,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 0}}},
		{"complication", testTopic, "com.example.app.complication", 10,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 0}}},
		{"fileprovider", testTopic, "com.example.app.pushkit.fileprovider", 5,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 0}}},
		{"location", testTopic, "com.example.app.location-query", 10,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 0}}},
		{"pushtotalk", testTopic, "com.example.app.voip-ptt", 10,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 0}}},
		{"liveactivity", testTopic, "com.example.app.push-type.liveactivity", 10,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 0}}},
		{"widgets", testTopic, "com.example.app.push-type.widgets", 10,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 0}}},
		{"controls", testTopic, "com.example.app.push-type.controls", 10,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 0}}},
		{"mdm", "com.apple.mgmt.External.0a1b2c3d", "com.apple.mgmt.External.0a1b2c3d", 10,
			[]prio{{"high", 10}, {"normal", 5}, {"low", 0}}},
	}
	seen := map[string]bool{}
	for _, tc := range tests {
		seen[tc.pushType] = true
		mk := func(priority string) *translate.Notification {
			return apnsNote(func(n *translate.Notification) {
				n.PushType = tc.pushType
				n.Priority = priority
				if tc.pushType == "background" {
					n.Data = rawMap("k", `"v"`)
				} else {
					n.Body = "hello"
				}
			})
		}
		build := func(n *translate.Notification, topic string) (*translate.APNsRequest, *translate.Error) {
			tg := target()
			tg.Topic = topic
			return translate.BuildAPNs(n, tg)
		}
		t.Run(tc.pushType, func(t *testing.T) {
			req, err := build(mk(""), tc.topic)
			if err != nil {
				t.Fatalf("BuildAPNs: %v", err)
			}
			if req.PushType != tc.pushType {
				t.Errorf("PushType = %q, want %q", req.PushType, tc.pushType)
			}
			if req.Topic != tc.wantTopic {
				t.Errorf("Topic = %q, want %q", req.Topic, tc.wantTopic)
			}
			if req.Priority != tc.defaultPrio {
				t.Errorf("default Priority = %d, want %d", req.Priority, tc.defaultPrio)
			}
			if v, _ := header(req, "apns-push-type"); v != tc.pushType {
				t.Errorf("apns-push-type header = %q", v)
			}
			if v, _ := header(req, "apns-topic"); v != tc.wantTopic {
				t.Errorf("apns-topic header = %q", v)
			}
			if v, _ := header(req, "apns-priority"); v != strconv.Itoa(tc.defaultPrio) {
				t.Errorf("apns-priority header = %q", v)
			}

			// A caller who already gave the suffixed topic does not get it twice.
			req, err = build(mk(""), tc.wantTopic)
			if err != nil {
				t.Fatalf("BuildAPNs with suffixed topic: %v", err)
			}
			if req.Topic != tc.wantTopic {
				t.Errorf("suffixed topic %q became %q", tc.wantTopic, req.Topic)
			}

			for _, p := range tc.prios {
				req, err := build(mk(p.priority), tc.topic)
				if p.want == 0 {
					wantErr(t, err, translate.CodeInvalidRequest, "priority")
					continue
				}
				if err != nil {
					t.Errorf("priority %s: %v", p.priority, err)
					continue
				}
				if req.Priority != p.want {
					t.Errorf("priority %s → %d, want %d", p.priority, req.Priority, p.want)
				}
			}
		})
	}
	for _, p := range translate.PushTypes {
		if !seen[p.Name] {
			t.Errorf("push type %q in translate.PushTypes has no row in this test", p.Name)
		}
	}
	if len(seen) != len(translate.PushTypes) {
		t.Errorf("test covers %d push types, translate.PushTypes has %d", len(seen), len(translate.PushTypes))
	}
}

func TestBuildAPNsUnknownPushType(t *testing.T) {
	_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) {
		n.Body = "x"
		n.PushType = "VoIP"
	}), target())
	wantErr(t, err, translate.CodeInvalidRequest, "push_type")
}

func TestBuildAPNsBackgroundPriorityCoerced(t *testing.T) {
	for _, h := range []string{"10", "5", "1"} {
		req := mustBuild(t, apnsNote(func(n *translate.Notification) {
			n.PushType = "background"
			n.Priority = "high"
			n.Data = rawMap("k", "1")
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-priority": h}}
		}))
		if req.Priority != 5 {
			t.Errorf("background with apns-priority %s header → %d, want 5", h, req.Priority)
		}
	}
	_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) {
		n.PushType = "background"
		n.Title = "visible"
	}), target())
	wantErr(t, err, translate.CodeInvalidRequest, "push_type")
}

func TestBuildAPNsDerivedPushType(t *testing.T) {
	tests := []struct {
		name     string
		f        func(n *translate.Notification)
		wantType string
		wantPrio int
		wantAPS  map[string]any
	}{
		{"title", func(n *translate.Notification) { n.Title = "T" }, "alert", 10,
			map[string]any{"alert": map[string]any{"title": "T"}}},
		{"body", func(n *translate.Notification) { n.Body = "B" }, "alert", 10,
			map[string]any{"alert": map[string]any{"body": "B"}}},
		{"badge", func(n *translate.Notification) { n.Badge = ptr(0) }, "alert", 10,
			map[string]any{"badge": 0.0}},
		{"sound", func(n *translate.Notification) { n.Sound = raw(`"default"`) }, "alert", 10,
			map[string]any{"sound": "default"}},
		{"body and data", func(n *translate.Notification) { n.Body = "B"; n.Data = rawMap("k", `"v"`) }, "alert", 10,
			map[string]any{"alert": map[string]any{"body": "B"}}},
		{"only data", func(n *translate.Notification) { n.Data = rawMap("k", `"v"`) }, "background", 5,
			map[string]any{"content-available": 1.0}},
		{"only data, priority high", func(n *translate.Notification) { n.Data = rawMap("k", `"v"`); n.Priority = "high" }, "background", 5,
			map[string]any{"content-available": 1.0}},
		{"only apns.payload", func(n *translate.Notification) {
			n.APNs = &translate.APNsOverrides{Payload: rawMap("k", `"v"`)}
		}, "background", 5, map[string]any{"content-available": 1.0}},
		{"only content-available", func(n *translate.Notification) {
			n.APNs = &translate.APNsOverrides{APS: rawMap("content-available", "1")}
		}, "background", 5, map[string]any{"content-available": 1.0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := mustBuild(t, apnsNote(tc.f))
			if req.PushType != tc.wantType {
				t.Errorf("PushType = %q, want %q", req.PushType, tc.wantType)
			}
			if req.Priority != tc.wantPrio {
				t.Errorf("Priority = %d, want %d", req.Priority, tc.wantPrio)
			}
			p := decodePayload(t, req.Payload)
			if !reflect.DeepEqual(p["aps"], tc.wantAPS) {
				t.Errorf("aps = %#v, want %#v", p["aps"], tc.wantAPS)
			}
		})
	}

	t.Run("nothing", func(t *testing.T) {
		for _, f := range []func(n *translate.Notification){
			nil,
			func(n *translate.Notification) { n.Image = "https://example.com/i.png" },
			func(n *translate.Notification) { n.Data = map[string]json.RawMessage{} },
		} {
			_, err := translate.BuildAPNs(apnsNote(f), target())
			wantErr(t, err, translate.CodeInvalidRequest, "")
		}
	})
}

func TestBuildAPNsExpiration(t *testing.T) {
	tests := []struct {
		name string
		ttl  *int64
		hdr  string // apns-expiration override
		want string // "" → header omitted
	}{
		{"absent", nil, "", ""},
		{"zero", ptr[int64](0), "", "0"},
		{"one hour", ptr[int64](3600), "", strconv.FormatInt(testNow.Unix()+3600, 10)},
		{"one second", ptr[int64](1), "", strconv.FormatInt(testNow.Unix()+1, 10)},
		{"header wins", ptr[int64](3600), "1800000000", "1800000000"},
		{"header zero", nil, "0", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := mustBuild(t, apnsNote(func(n *translate.Notification) {
				n.Body = "b"
				n.TTL = tc.ttl
				if tc.hdr != "" {
					n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-expiration": tc.hdr}}
				}
			}))
			got, ok := header(req, "apns-expiration")
			if tc.want == "" {
				if ok || req.Expiration != nil {
					t.Errorf("apns-expiration = %q, want it omitted", got)
				}
				return
			}
			if !ok || got != tc.want {
				t.Errorf("apns-expiration = %q (present %v), want %q", got, ok, tc.want)
			}
		})
	}

	bad := []struct {
		name  string
		f     func(n *translate.Notification)
		field string
	}{
		{"negative ttl", func(n *translate.Notification) { n.TTL = ptr[int64](-1) }, "ttl"},
		{"overflowing ttl", func(n *translate.Notification) { n.TTL = ptr[int64](1<<63 - 1) }, "ttl"},
		{"header not a number", func(n *translate.Notification) {
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-expiration": "tomorrow"}}
		}, "apns.headers.apns-expiration"},
		{"header negative", func(n *translate.Notification) {
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-expiration": "-5"}}
		}, "apns.headers.apns-expiration"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) { n.Body = "b"; tc.f(n) }), target())
			wantErr(t, err, translate.CodeInvalidRequest, tc.field)
		})
	}
}

func TestBuildAPNsCollapseID(t *testing.T) {
	for _, tc := range []struct {
		name string
		cid  string
		hdr  bool
		ok   bool
	}{
		{"empty", "", false, true},
		{"64 bytes", strings.Repeat("c", 64), false, true},
		{"64 bytes multibyte", strings.Repeat("é", 32), false, true},
		{"65 bytes", strings.Repeat("c", 65), false, false},
		{"65 bytes multibyte", strings.Repeat("é", 32) + "c", false, false},
		{"header 64", strings.Repeat("h", 64), true, true},
		{"header 65", strings.Repeat("h", 65), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := apnsNote(func(n *translate.Notification) {
				n.Body = "b"
				if tc.hdr {
					n.CollapseID = "short"
					n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-collapse-id": tc.cid}}
				} else {
					n.CollapseID = tc.cid
				}
			})
			req, err := translate.BuildAPNs(n, target())
			if !tc.ok {
				wantErr(t, err, translate.CodeInvalidRequest, "collapse_id")
				return
			}
			if err != nil {
				t.Fatalf("BuildAPNs: %v", err)
			}
			got, present := header(req, "apns-collapse-id")
			if tc.cid == "" {
				if present {
					t.Errorf("apns-collapse-id present (%q) for an empty collapse_id", got)
				}
				return
			}
			if got != tc.cid {
				t.Errorf("apns-collapse-id = %q, want %q", got, tc.cid)
			}
		})
	}
}

func TestBuildAPNsID(t *testing.T) {
	const upper = "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"
	for _, tc := range []struct {
		name    string
		id, hdr string
		want    string
		field   string // error field when non-empty
	}{
		{"absent → NewID", "", "", testNewID, ""},
		{"caller uuid lower-cased", upper, "", strings.ToLower(upper), ""},
		{"header wins", testNewID, upper, strings.ToLower(upper), ""},
		{"not a uuid", "order-1234", "", "", "id"},
		{"uuid without dashes", "a1b2c3d4e5f64a7b8c9d0e1f2a3b4c5d", "", "", "id"},
		{"uuid with braces", "{" + upper + "}", "", "", "id"},
		{"non-hex uuid", "g1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "", "", "id"},
		{"bad header", "", "nope", "", "apns.headers.apns-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := apnsNote(func(n *translate.Notification) {
				n.Body = "b"
				n.ID = tc.id
				if tc.hdr != "" {
					n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-id": tc.hdr}}
				}
			})
			req, err := translate.BuildAPNs(n, target())
			if tc.field != "" {
				wantErr(t, err, translate.CodeInvalidRequest, tc.field)
				return
			}
			if err != nil {
				t.Fatalf("BuildAPNs: %v", err)
			}
			if req.ID != tc.want {
				t.Errorf("ID = %q, want %q", req.ID, tc.want)
			}
			if h, _ := header(req, "apns-id"); h != tc.want {
				t.Errorf("apns-id header = %q, want %q", h, tc.want)
			}
		})
	}
}

func TestBuildAPNsPayload(t *testing.T) {
	tests := []struct {
		name     string
		f        func(n *translate.Notification)
		wantType string
		want     map[string]any
	}{
		{
			name: "alert with custom data",
			f: func(n *translate.Notification) {
				n.Title, n.Subtitle, n.Body = "Order shipped", "Parcel", "On its way <&>"
				n.Badge = ptr(3)
				n.Sound = raw(`"default"`)
				n.Data = rawMap("order", `"1234"`, "n", `7`, "nested", `{"a":[1,true,null]}`)
			},
			wantType: "alert",
			want: map[string]any{
				"aps": map[string]any{
					"alert": map[string]any{"title": "Order shipped", "subtitle": "Parcel", "body": "On its way <&>"},
					"badge": 3.0,
					"sound": "default",
				},
				"order":  "1234",
				"n":      7.0,
				"nested": map[string]any{"a": []any{1.0, true, nil}},
			},
		},
		{
			name: "critical sound dictionary",
			f: func(n *translate.Notification) {
				n.Body = "b"
				n.Sound = raw(`{"critical":1,"name":"alarm.aiff","volume":0.5}`)
			},
			wantType: "alert",
			want: map[string]any{"aps": map[string]any{
				"alert": map[string]any{"body": "b"},
				"sound": map[string]any{"critical": 1.0, "name": "alarm.aiff", "volume": 0.5},
			}},
		},
		{
			name: "image sets mutable-content, image and url beside aps",
			f: func(n *translate.Notification) {
				n.Title = "t"
				n.Image = "https://example.com/i.png"
				n.URL = "https://example.com/orders/1?a=1&b=2"
			},
			wantType: "alert",
			want: map[string]any{
				"aps":   map[string]any{"alert": map[string]any{"title": "t"}, "mutable-content": 1.0},
				"image": "https://example.com/i.png",
				"url":   "https://example.com/orders/1?a=1&b=2",
			},
		},
		{
			name: "aps overrides",
			f: func(n *translate.Notification) {
				n.Title = "t"
				n.Badge = ptr(1)
				n.APNs = &translate.APNsOverrides{APS: rawMap(
					"thread-id", `"orders"`,
					"category", `"ORDER"`,
					"interruption-level", `"time-sensitive"`,
					"relevance-score", `0.75`,
					"target-content-id", `"w1"`,
					"filter-criteria", `"work"`,
					"badge", `9`,
					"alert", `{"launch-image":"l.png","title-loc-key":"K"}`,
					"x-future-key", `{"any":"thing"}`,
				)}
			},
			wantType: "alert",
			want: map[string]any{"aps": map[string]any{
				"alert":              map[string]any{"title": "t", "launch-image": "l.png", "title-loc-key": "K"},
				"badge":              9.0,
				"thread-id":          "orders",
				"category":           "ORDER",
				"interruption-level": "time-sensitive",
				"relevance-score":    0.75,
				"target-content-id":  "w1",
				"filter-criteria":    "work",
				"x-future-key":       map[string]any{"any": "thing"},
			}},
		},
		{
			name: "alert string override replaces the dictionary",
			f: func(n *translate.Notification) {
				n.Title = "t"
				n.APNs = &translate.APNsOverrides{APS: rawMap("alert", `"plain"`)}
			},
			wantType: "alert",
			want:     map[string]any{"aps": map[string]any{"alert": "plain"}},
		},
		{
			name: "null override removes a derived key",
			f: func(n *translate.Notification) {
				n.Title = "t"
				n.Sound = raw(`"default"`)
				n.APNs = &translate.APNsOverrides{APS: rawMap("sound", `null`)}
			},
			wantType: "alert",
			want:     map[string]any{"aps": map[string]any{"alert": map[string]any{"title": "t"}}},
		},
		{
			name: "null override of a typed key removes it",
			f: func(n *translate.Notification) {
				n.Title = "t"
				n.Image = "https://example.com/i.png"
				n.APNs = &translate.APNsOverrides{APS: rawMap("mutable-content", `null`)}
			},
			wantType: "alert",
			want: map[string]any{
				"aps":   map[string]any{"alert": map[string]any{"title": "t"}},
				"image": "https://example.com/i.png",
			},
		},
		{
			name: "live activity",
			f: func(n *translate.Notification) {
				n.PushType = "liveactivity"
				n.Title = "Delivery"
				n.Body = "2 stops away"
				n.APNs = &translate.APNsOverrides{APS: rawMap(
					"event", `"update"`,
					"content-state", `{"stops":2,"driver":"Ann"}`,
					"timestamp", `1763632800`,
					"stale-date", `1763636400`,
					"dismissal-date", `1763640000`,
					"relevance-score", `100`,
				)}
			},
			wantType: "liveactivity",
			want: map[string]any{"aps": map[string]any{
				"alert":           map[string]any{"title": "Delivery", "body": "2 stops away"},
				"event":           "update",
				"content-state":   map[string]any{"stops": 2.0, "driver": "Ann"},
				"timestamp":       1763632800.0,
				"stale-date":      1763636400.0,
				"dismissal-date":  1763640000.0,
				"relevance-score": 100.0,
			}},
		},
		{
			name: "live activity start",
			f: func(n *translate.Notification) {
				n.PushType = "liveactivity"
				n.Body = "started"
				n.APNs = &translate.APNsOverrides{APS: rawMap(
					"event", `"start"`,
					"content-state", `{"stops":5}`,
					"timestamp", `1763632800`,
					"attributes-type", `"DeliveryAttributes"`,
					"attributes", `{"order":"1234"}`,
				)}
			},
			wantType: "liveactivity",
			want: map[string]any{"aps": map[string]any{
				"alert":           map[string]any{"body": "started"},
				"event":           "start",
				"content-state":   map[string]any{"stops": 5.0},
				"timestamp":       1763632800.0,
				"attributes-type": "DeliveryAttributes",
				"attributes":      map[string]any{"order": "1234"},
			}},
		},
		{
			name: "apns.payload beside aps wins over data",
			f: func(n *translate.Notification) {
				n.Data = rawMap("k", `"from data"`, "d", `1`)
				n.APNs = &translate.APNsOverrides{Payload: rawMap("k", `"from payload"`, "p", `[1]`)}
			},
			wantType: "background",
			want: map[string]any{
				"aps": map[string]any{"content-available": 1.0},
				"k":   "from payload",
				"d":   1.0,
				"p":   []any{1.0},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := mustBuild(t, apnsNote(tc.f))
			if req.PushType != tc.wantType {
				t.Errorf("PushType = %q, want %q", req.PushType, tc.wantType)
			}
			got := decodePayload(t, req.Payload)
			if !reflect.DeepEqual(got, tc.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tc.want)
				t.Errorf("payload\n got %s\nwant %s", gj, wj)
			}
			if strings.HasSuffix(string(req.Payload), "\n") {
				t.Errorf("payload ends with a newline")
			}
		})
	}
}

func TestBuildAPNsPayloadNoHTMLEscaping(t *testing.T) {
	req := mustBuild(t, apnsNote(func(n *translate.Notification) { n.Body = "<b>&</b>" }))
	if !strings.Contains(string(req.Payload), `"<b>&</b>"`) {
		t.Errorf("payload escapes HTML, wasting bytes of the 4 KiB budget: %s", req.Payload)
	}
}

func TestBuildAPNsBadAPSOverrides(t *testing.T) {
	for _, tc := range []struct{ key, value string }{
		{"badge", `-1`},
		{"badge", `1.5`},
		{"badge", `"3"`},
		{"content-available", `true`},
		{"mutable-content", `"1"`},
		{"timestamp", `"now"`},
		{"stale-date", `-10`},
		{"dismissal-date", `1.25`},
		{"relevance-score", `"high"`},
		{"interruption-level", `"loud"`},
		{"interruption-level", `1`},
		{"thread-id", `5`},
		{"category", `{}`},
		{"event", `1`},
		{"attributes-type", `[]`},
		{"alert", `5`},
		{"content-state", `"x"`},
		{"attributes", `[1]`},
		{"thread-id", `not json`},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) {
				n.Body = "b"
				n.APNs = &translate.APNsOverrides{APS: rawMap(tc.key, tc.value)}
			}), target())
			wantErr(t, err, translate.CodeInvalidRequest, "apns.aps."+tc.key)
		})
	}
}

func TestBuildAPNsOtherInvalidFields(t *testing.T) {
	for _, tc := range []struct {
		name  string
		f     func(n *translate.Notification)
		field string
	}{
		{"negative badge", func(n *translate.Notification) { n.Badge = ptr(-1) }, "badge"},
		{"sound number", func(n *translate.Notification) { n.Body = "b"; n.Sound = raw(`1`) }, "sound"},
		{"sound array", func(n *translate.Notification) { n.Body = "b"; n.Sound = raw(`["a"]`) }, "sound"},
		{"bad priority", func(n *translate.Notification) { n.Body = "b"; n.Priority = "urgent" }, "priority"},
		{"data.aps", func(n *translate.Notification) { n.Body = "b"; n.Data = rawMap("aps", `{"alert":"x"}`) }, "data.aps"},
		{"apns.payload.aps", func(n *translate.Notification) {
			n.Body = "b"
			n.APNs = &translate.APNsOverrides{Payload: rawMap("aps", `{}`)}
		}, "apns.payload.aps"},
		{"no apns recipient", func(n *translate.Notification) { n.Body = "b"; n.To.APNs = nil }, "to.apns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := translate.BuildAPNs(apnsNote(tc.f), target())
			wantErr(t, err, translate.CodeInvalidRequest, tc.field)
		})
	}

	t.Run("no topic", func(t *testing.T) {
		tg := target()
		tg.Topic = ""
		_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) { n.Body = "b" }), tg)
		wantErr(t, err, translate.CodeInvalidRequest, "to.apns.topic")
	})

	// Values the HTTP/2 transport would refuse to send must be the caller's
	// invalid_request, not an upstream failure.
	t.Run("control characters in header values", func(t *testing.T) {
		tg := target()
		tg.Topic = "com.example.app\r\nx-injected: 1"
		_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) { n.Body = "b" }), tg)
		wantErr(t, err, translate.CodeInvalidRequest, "to.apns.topic")

		for _, tc := range []struct {
			f     func(n *translate.Notification)
			field string
		}{
			{func(n *translate.Notification) { n.CollapseID = "a\nb" }, "collapse_id"},
			{func(n *translate.Notification) { n.CollapseID = "a\x00b" }, "collapse_id"},
			{func(n *translate.Notification) { n.CollapseID = "a\x7fb" }, "collapse_id"},
			{func(n *translate.Notification) {
				n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-collapse-id": "a\rb"}}
			}, "collapse_id"},
			{func(n *translate.Notification) {
				n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-topic": "com.example.app\n"}}
			}, "apns.headers.apns-topic"},
			{func(n *translate.Notification) {
				n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-topic": ""}}
			}, "apns.headers.apns-topic"},
		} {
			_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) { n.Body = "b"; tc.f(n) }), target())
			wantErr(t, err, translate.CodeInvalidRequest, tc.field)
		}
		// Tabs, spaces and non-ASCII are fine.
		req := mustBuild(t, apnsNote(func(n *translate.Notification) { n.Body = "b"; n.CollapseID = "order\t1234 é" }))
		if req.CollapseID != "order\t1234 é" {
			t.Errorf("collapse id = %q", req.CollapseID)
		}
	})
}

func TestBuildAPNsHeaderOverrides(t *testing.T) {
	const id = "11111111-2222-4333-8444-555555555555"
	req := mustBuild(t, apnsNote(func(n *translate.Notification) {
		n.Body = "b"
		n.Priority = "high"
		n.CollapseID = "from-field"
		n.APNs = &translate.APNsOverrides{Headers: map[string]string{
			"APNS-Push-Type":   "voip",
			"apns-priority":    "5",
			"apns-expiration":  "1800000000",
			"apns-collapse-id": "from-header",
			"apns-topic":       "com.other.app",
			"apns-id":          id,
		}}
	}))
	want := [][2]string{
		{"apns-topic", "com.other.app.voip"},
		{"apns-push-type", "voip"},
		{"apns-priority", "5"},
		{"apns-id", id},
		{"apns-expiration", "1800000000"},
		{"apns-collapse-id", "from-header"},
	}
	if got := req.Headers(); !reflect.DeepEqual(got, want) {
		t.Errorf("Headers() = %v\nwant %v", got, want)
	}

	for _, tc := range []struct {
		name, value string
		field       string
	}{
		{"apns-priority", "7", "apns.headers.apns-priority"},
		{"apns-priority", "high", "apns.headers.apns-priority"},
		{"apns-push-type", "banner", "push_type"},
	} {
		_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) {
			n.Body = "b"
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{tc.name: tc.value}}
		}), target())
		wantErr(t, err, translate.CodeInvalidRequest, tc.field)
	}

	for _, name := range []string{"authorization", "apns-unknown", "content-length", "Host", ":path"} {
		t.Run("refuse "+name, func(t *testing.T) {
			_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) {
				n.Body = "b"
				n.APNs = &translate.APNsOverrides{Headers: map[string]string{name: "x"}}
			}), target())
			wantErr(t, err, translate.CodeInvalidRequest, "apns.headers."+name)
		})
	}
}

func TestBuildAPNsRequestShape(t *testing.T) {
	upper := strings.ToUpper(testToken)
	req := mustBuild(t, apnsNote(func(n *translate.Notification) {
		n.To.APNs.Token = upper
		n.Body = "b"
	}))
	if req.DeviceToken != testToken {
		t.Errorf("DeviceToken = %q, want lower case %q", req.DeviceToken, testToken)
	}
	if got, want := req.Path(), "/3/device/"+testToken; got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	want := [][2]string{
		{"apns-topic", testTopic},
		{"apns-push-type", "alert"},
		{"apns-priority", "10"},
		{"apns-id", testNewID},
	}
	if got := req.Headers(); !reflect.DeepEqual(got, want) {
		t.Errorf("Headers() = %v, want %v", got, want)
	}
}

// sizedNote returns a notification of the given push type whose payload is
// exactly size bytes, computed from the encoding overhead.
func sizedNote(t *testing.T, pushType string, size int) *translate.Notification {
	t.Helper()
	mk := func(n int) *translate.Notification {
		return apnsNote(func(note *translate.Notification) {
			note.PushType = pushType
			note.Body = strings.Repeat("x", n)
		})
	}
	req := mustBuild(t, mk(1))
	overhead := len(req.Payload) - 1
	return mk(size - overhead)
}

func TestBuildAPNsPayloadSize(t *testing.T) {
	for _, tc := range []struct {
		pushType string
		limit    int
	}{
		{"alert", 4096},
		{"voip", 5120},
		{"liveactivity", 4096},
		{"pushtotalk", 4096},
	} {
		t.Run(tc.pushType, func(t *testing.T) {
			req, err := translate.BuildAPNs(sizedNote(t, tc.pushType, tc.limit), target())
			if err != nil {
				t.Fatalf("payload of exactly %d bytes refused: %v", tc.limit, err)
			}
			if len(req.Payload) != tc.limit {
				t.Fatalf("constructed payload is %d bytes, want %d", len(req.Payload), tc.limit)
			}
			_, err = translate.BuildAPNs(sizedNote(t, tc.pushType, tc.limit+1), target())
			if err == nil {
				t.Fatalf("payload of %d bytes accepted", tc.limit+1)
			}
			if err.Code != translate.CodePayloadTooLarge || err.Status() != 413 {
				t.Errorf("code = %s (status %d), want payload_too_large (413)", err.Code, err.Status())
			}
			if err.Action != translate.ActionFixRequest || err.Retryable {
				t.Errorf("action = %s retryable = %v, want fix_request and not retryable", err.Action, err.Retryable)
			}
			if err.Platform != translate.PlatformAPNs {
				t.Errorf("platform = %q", err.Platform)
			}
			if !strings.Contains(err.Message, strconv.Itoa(tc.limit+1)) || !strings.Contains(err.Message, strconv.Itoa(tc.limit)) {
				t.Errorf("message %q does not give the size and the limit", err.Message)
			}
			if err.Hint == "" {
				t.Errorf("no hint")
			}
		})
	}
	// A voip-sized payload is too large for an alert.
	_, err := translate.BuildAPNs(sizedNote(t, "alert", 5120), target())
	if err == nil || err.Code != translate.CodePayloadTooLarge {
		t.Errorf("5120-byte alert: err = %v, want payload_too_large", err)
	}
}

func TestBuildAPNsBadDeviceToken(t *testing.T) {
	for _, tc := range []struct{ name, token string }{
		{"empty", ""},
		{"odd length", testToken + "a"},
		{"non-hex", strings.Repeat("zz", 32)},
		{"spaces", "<" + testToken[:30] + " " + testToken[31:] + ">"},
		{"too short", "deadbeefcafe0123"},
		{"62 digits", testToken[:62]},
		{"too long", strings.Repeat("ab", 101)},
		{"base64", "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJ+/8="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) {
				n.To.APNs.Token = tc.token
				n.Body = "b"
			}), target())
			wantErr(t, err, translate.CodeInvalidRecipient, "to.apns.token")
			if err == nil {
				return
			}
			if tc.token != "" {
				for _, s := range []string{err.Error(), err.Message, err.Hint} {
					if strings.Contains(s, tc.token) || (len(tc.token) >= 16 && strings.Contains(s, tc.token[:16])) {
						t.Errorf("error text reveals the device token: %q", s)
					}
				}
			}
		})
	}
	// 100 bytes (200 hex digits) is the longest token allowed.
	long := strings.Repeat("ab", 100)
	if err := translate.ValidDeviceToken(long); err != nil {
		t.Errorf("200-digit token refused: %v", err)
	}
	if err := translate.ValidDeviceToken(strings.ToUpper(testToken)); err != nil {
		t.Errorf("upper-case token refused: %v", err)
	}
}

func TestIsUUID(t *testing.T) {
	for s, want := range map[string]bool{
		testNewID:                               true,
		"A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D":  true,
		"":                                      false,
		"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5":   false,
		"a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5dd": false,
		"a1b2c3d4e-5f6-4a7b-8c9d-0e1f2a3b4c5d":  false,
		"a1b2c3d4-e5f6-4a7b-8c9d_0e1f2a3b4c5d":  false,
		"x1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d":  false,
	} {
		if got := translate.IsUUID(s); got != want {
			t.Errorf("IsUUID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestLookupPushType(t *testing.T) {
	if p, ok := translate.LookupPushType("voip"); !ok || p.TopicSuffix != ".voip" {
		t.Errorf("LookupPushType(voip) = %+v, %v", p, ok)
	}
	for _, name := range []string{"", "VOIP", "Alert", "banner"} {
		if _, ok := translate.LookupPushType(name); ok {
			t.Errorf("LookupPushType(%q) found a row", name)
		}
	}
}

// TestBuildAPNsOverriddenFieldsStillChecked: a header override wins, but the
// common field it replaces is still checked, and a header named twice in
// different cases is refused.
func TestBuildAPNsOverriddenFieldsStillChecked(t *testing.T) {
	neg := int64(-5)
	for _, tc := range []struct {
		f     func(n *translate.Notification)
		field string
	}{
		{func(n *translate.Notification) {
			n.PushType = "bogus"
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-push-type": "alert"}}
		}, "push_type"},
		{func(n *translate.Notification) {
			n.TTL = &neg
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-expiration": "0"}}
		}, "ttl"},
		{func(n *translate.Notification) {
			n.ID = "not-a-uuid"
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-id": "11111111-2222-4333-8444-555555555555"}}
		}, "id"},
		{func(n *translate.Notification) {
			n.CollapseID = strings.Repeat("c", 100)
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-collapse-id": "x"}}
		}, "collapse_id"},
		{func(n *translate.Notification) {
			n.To.APNs.Topic = "com.example.app\u0001"
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-topic": "com.example.app"}}
		}, "to.apns.topic"},
		{func(n *translate.Notification) {
			n.APNs = &translate.APNsOverrides{Headers: map[string]string{"apns-priority": "10", "APNS-PRIORITY": "5"}}
		}, "apns.headers.apns-priority"},
	} {
		_, err := translate.BuildAPNs(apnsNote(func(n *translate.Notification) { n.Body = "b"; tc.f(n) }), target())
		wantErr(t, err, translate.CodeInvalidRequest, tc.field)
	}
}
