package translate

import (
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// APNs push types and their topic suffixes (DESIGN.md "Known library facts").
const (
	PushAlert        = "alert"
	PushBackground   = "background"
	PushVoIP         = "voip"
	PushComplication = "complication"
	PushFileProvider = "fileprovider"
	PushLocation     = "location"
	PushPushToTalk   = "pushtotalk"
	PushLiveActivity = "liveactivity"
	PushWidgets      = "widgets"
	PushControls     = "controls"
	PushMDM          = "mdm"
)

// PushTypeInfo is what APNs requires of one push type.
type PushTypeInfo struct {
	Name        string
	TopicSuffix string // appended to the bundle ID; "" for alert, background and mdm
	// Priorities allowed by Apple, first is the default when the caller gives none.
	Priorities []int
}

// PushTypes is Apple's table, in Apple's order.
var PushTypes = []PushTypeInfo{
	{PushAlert, "", []int{10, 5, 1}},
	{PushBackground, "", []int{5}},
	{PushVoIP, ".voip", []int{10, 5}},
	{PushComplication, ".complication", []int{10, 5}},
	{PushFileProvider, ".pushkit.fileprovider", []int{5, 10}},
	{PushLocation, ".location-query", []int{10, 5}},
	{PushPushToTalk, ".voip-ptt", []int{10, 5}},
	{PushLiveActivity, ".push-type.liveactivity", []int{10, 5}},
	{PushWidgets, ".push-type.widgets", []int{10, 5}},
	{PushControls, ".push-type.controls", []int{10, 5}},
	{PushMDM, "", []int{10, 5}},
}

// LookupPushType returns the row for a push type name.
func LookupPushType(name string) (PushTypeInfo, bool) {
	for _, p := range PushTypes {
		if p.Name == name {
			return p, true
		}
	}
	return PushTypeInfo{}, false
}

// Payload limits, in bytes.
const (
	APNsMaxPayload     = 4096
	APNsMaxVoIPPayload = 5120
	APNsMaxCollapseID  = 64
)

// APNsRequest is everything the APNs sender needs for one HTTP/2 request,
// except the provider token, which is added per attempt.
type APNsRequest struct {
	DeviceToken string // lower-case hex
	Topic       string // apns-topic, suffix included
	PushType    string // apns-push-type
	Priority    int    // apns-priority
	Expiration  *int64 // apns-expiration (unix seconds); nil: header omitted
	CollapseID  string // apns-collapse-id; "" omitted
	ID          string // apns-id, lower-case UUID; kept across retries
	Payload     []byte // JSON body
}

// Path is the request path on the APNs host.
func (r *APNsRequest) Path() string { return "/3/device/" + r.DeviceToken }

// EachHeader calls fn for each apns-* header in a fixed order
// (authorization is added by the sender). It allocates nothing itself: the
// sender's hot path builds its request headers with it.
func (r *APNsRequest) EachHeader(fn func(name, value string)) {
	fn("apns-topic", r.Topic)
	fn("apns-push-type", r.PushType)
	fn("apns-priority", strconv.Itoa(r.Priority))
	fn("apns-id", r.ID)
	if r.Expiration != nil {
		fn("apns-expiration", strconv.FormatInt(*r.Expiration, 10))
	}
	if r.CollapseID != "" {
		fn("apns-collapse-id", r.CollapseID)
	}
}

// Headers returns the apns-* headers in EachHeader's order.
func (r *APNsRequest) Headers() [][2]string {
	var h [][2]string
	r.EachHeader(func(name, value string) { h = append(h, [2]string{name, value}) })
	return h
}

// APNsTarget is what the proxy resolved before translation: the bundle ID
// (topic without suffix) the chosen credential signs for.
type APNsTarget struct {
	Topic string
	// Now is the injected clock used for apns-expiration.
	Now time.Time
	// ID is the apns-id to use when the caller gave none (a new UUID).
	NewID string
}

// apnsHeaderOverrides are the headers a caller may set in apns.headers.
var apnsHeaderOverrides = []string{"apns-push-type", "apns-priority", "apns-expiration", "apns-collapse-id", "apns-topic", "apns-id"}

// UUIDv4 formats 16 random bytes as a version 4 UUID (lower case,
// 8-4-4-4-12); the caller supplies the randomness.
func UUIDv4(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// IsUUID reports whether s is a canonical 8-4-4-4-12 hex UUID.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// ValidDeviceToken checks an APNs device token: hex, 32 to 100 bytes.
func ValidDeviceToken(tok string) *Error {
	if tok == "" {
		return MissingRecipient("to.apns.token", "the device token is required")
	}
	if len(tok)%2 != 0 || len(tok) < 64 || len(tok) > 200 {
		return InvalidRecipient("to.apns.token", "an APNs device token is 64 to 200 hex digits, this one has %d characters", len(tok))
	}
	for i := range len(tok) {
		if !isHex(tok[i]) {
			return InvalidRecipient("to.apns.token", "an APNs device token is hex digits only (no spaces, <> or base64)")
		}
	}
	return nil
}

// BuildAPNs translates a neutral notification into an APNs request. It
// checks everything Apple would refuse as the caller's fault (so such a
// request never leaves pushproxy) and the payload size.
func BuildAPNs(n *Notification, t APNsTarget) (*APNsRequest, *Error) {
	to := n.To.APNs
	if to == nil {
		return nil, Invalid("to.apns", "is required for an APNs notification")
	}
	if err := ValidDeviceToken(to.Token); err != nil {
		return nil, err
	}
	req := &APNsRequest{DeviceToken: strings.ToLower(to.Token)}

	var ov APNsOverrides
	if n.APNs != nil {
		ov = *n.APNs
	}
	for name := range ov.Headers {
		if !slices.Contains(apnsHeaderOverrides, strings.ToLower(name)) {
			return nil, Invalid("apns.headers."+name, "is not a header pushproxy lets a caller set (allowed: %s)", strings.Join(apnsHeaderOverrides, ", "))
		}
	}
	hdr := func(name string) (string, bool) {
		for k, v := range ov.Headers {
			if strings.EqualFold(k, name) {
				return v, true
			}
		}
		return "", false
	}

	if e := checkHeaderOverrides(n, ov.Headers); e != nil {
		return nil, e
	}
	if n.Badge != nil && *n.Badge < 0 {
		return nil, Invalid("badge", "must be 0 or more (0 clears the badge)")
	}
	// Without per-platform aps or payload overrides and with a plain sound
	// name (the common notification), the payload is written directly by
	// appendAPNsPayload; otherwise through maps and encoding/json. Both give
	// the same bytes (TestAPNsPayloadFastPathSameBytes).
	fast := len(ov.APS) == 0 && len(ov.Payload) == 0 && (len(n.Sound) == 0 || plainJSONString(n.Sound))
	var aps map[string]any
	if !fast {
		var e *Error
		if aps, e = buildAPS(n, ov); e != nil {
			return nil, e
		}
	}

	// Push type: explicit, header override, or derived.
	pushType := n.PushType
	if v, ok := hdr("apns-push-type"); ok {
		pushType = v
	}
	visible := n.Title != "" || n.Subtitle != "" || n.Body != "" || n.Badge != nil || len(n.Sound) > 0
	contentAvailable := false
	if !fast {
		visible = aps["alert"] != nil || aps["badge"] != nil || aps["sound"] != nil
		contentAvailable = aps["content-available"] != nil
	}
	if pushType == "" {
		switch {
		case visible:
			pushType = PushAlert
		case len(n.Data) > 0 || contentAvailable || len(ov.Payload) > 0:
			pushType = PushBackground
		default:
			return nil, Invalid("", "the notification is empty: give a title or body, a badge, a sound, or data for a background push")
		}
	}
	info, ok := LookupPushType(pushType)
	if !ok {
		return nil, Invalid("push_type", "unknown push type %q (one of alert, background, voip, complication, fileprovider, location, pushtotalk, liveactivity, widgets, controls, mdm)", pushType)
	}
	req.PushType = info.Name
	if info.Name == PushBackground {
		if visible {
			return nil, Invalid("push_type", "a background push cannot carry an alert, badge or sound; drop push_type or the visible fields")
		}
		contentAvailable = true
		if !fast {
			aps["content-available"] = 1
		}
	}
	// Priority.
	prio := info.Priorities[0]
	switch n.Priority {
	case "":
	case "high":
		prio = 10
	case "normal":
		prio = 5
	case "low":
		prio = 1
	default:
		return nil, Invalid("priority", "must be high, normal or low, not %q", n.Priority)
	}
	if v, ok := hdr("apns-priority"); ok {
		p, err := strconv.Atoi(v)
		if err != nil || (p != 10 && p != 5 && p != 1) {
			return nil, Invalid("apns.headers.apns-priority", "must be 10, 5 or 1")
		}
		prio = p
	}
	if !slices.Contains(info.Priorities, prio) {
		if info.Name == PushBackground {
			// Apple: background pushes must use priority 5; 10 is an
			// error. Deliver it as Apple requires rather than fail it.
			prio = 5
		} else {
			return nil, Invalid("priority", "a %s push allows apns-priority %v, not %d", info.Name, info.Priorities, prio)
		}
	}
	req.Priority = prio

	// Topic.
	topic, topicField := t.Topic, "to.apns.topic"
	if v, ok := hdr("apns-topic"); ok {
		topic, topicField = v, "apns.headers.apns-topic"
	}
	if topic == "" {
		return nil, Invalid(topicField, "is required: the app's bundle ID")
	}
	if !validHeaderValue(topic) {
		return nil, Invalid(topicField, "must not contain control characters")
	}
	if info.TopicSuffix != "" && !strings.HasSuffix(topic, info.TopicSuffix) {
		topic += info.TopicSuffix
	}
	req.Topic = topic

	// Expiration from ttl.
	ttl := n.TTL
	if v, ok := hdr("apns-expiration"); ok {
		e, err := strconv.ParseInt(v, 10, 64)
		if err != nil || e < 0 {
			return nil, Invalid("apns.headers.apns-expiration", "must be a UNIX time in seconds, or 0")
		}
		req.Expiration = &e
	} else if ttl != nil {
		if *ttl < 0 {
			return nil, Invalid("ttl", "must be 0 or more seconds")
		}
		var e int64
		if *ttl > 0 {
			if *ttl > math.MaxInt64-t.Now.Unix() {
				return nil, Invalid("ttl", "is too large")
			}
			e = t.Now.Unix() + *ttl
		}
		req.Expiration = &e
	}

	// Collapse id.
	cid := n.CollapseID
	if v, ok := hdr("apns-collapse-id"); ok {
		cid = v
	}
	if len(cid) > APNsMaxCollapseID {
		return nil, Invalid("collapse_id", "is %d bytes; APNs allows at most %d", len(cid), APNsMaxCollapseID)
	}
	if !validHeaderValue(cid) {
		return nil, Invalid("collapse_id", "must not contain control characters (it is sent as the apns-collapse-id header)")
	}
	req.CollapseID = cid

	// apns-id.
	id := n.ID
	field := "id"
	if v, ok := hdr("apns-id"); ok {
		id, field = v, "apns.headers.apns-id"
	}
	if id == "" {
		id = t.NewID
	} else if !IsUUID(id) {
		return nil, Invalid(field, "must be a UUID (8-4-4-4-12 hex digits); it becomes the apns-id")
	}
	req.ID = strings.ToLower(id)

	if fast {
		for k := range n.Data {
			if k == "aps" {
				return nil, Invalid("data.aps", "is reserved by APNs; use apns.aps to set aps keys")
			}
		}
		payload, err := appendAPNsPayload(make([]byte, 0, 64+len(n.Title)+len(n.Subtitle)+len(n.Body)+len(n.Image)+len(n.URL)+len(n.Sound)+dataSize(n.Data)), n, contentAvailable)
		if err != nil {
			return nil, Invalid("data", "cannot be encoded as JSON: %v", err)
		}
		req.Payload = payload
		return checkAPNsSize(req, info)
	}
	payload, e := encodeAPNsBody(n, ov, aps)
	if e != nil {
		return nil, e
	}
	req.Payload = payload
	return checkAPNsSize(req, info)
}

// checkHeaderOverrides refuses apns.headers that are ambiguous (a header
// named twice in different cases: which one wins would be chance), and
// checks the common fields a header replaces as if it did not: a header
// wins over its field, but a malformed field is still the caller's
// mistake, not something to pass over silently.
func checkHeaderOverrides(n *Notification, headers map[string]string) *Error {
	if len(headers) == 0 {
		return nil
	}
	seen := make(map[string]string, len(headers))
	for k := range headers {
		lk := strings.ToLower(k)
		if other, dup := seen[lk]; dup {
			a, b := min(k, other), max(k, other)
			return Invalid("apns.headers."+b, "names the same header as %q (header names ignore case); give it once", a)
		}
		seen[lk] = k
	}
	over := func(h string) bool { _, ok := seen[h]; return ok }
	if over("apns-push-type") && n.PushType != "" {
		if _, ok := LookupPushType(n.PushType); !ok {
			return Invalid("push_type", "unknown push type %q", n.PushType)
		}
	}
	if over("apns-expiration") && n.TTL != nil && *n.TTL < 0 {
		return Invalid("ttl", "must be 0 or more seconds")
	}
	if over("apns-collapse-id") && (len(n.CollapseID) > APNsMaxCollapseID || !validHeaderValue(n.CollapseID)) {
		return Invalid("collapse_id", "must be at most %d bytes without control characters", APNsMaxCollapseID)
	}
	if over("apns-id") && n.ID != "" && !IsUUID(n.ID) {
		return Invalid("id", "must be a UUID (8-4-4-4-12 hex digits)")
	}
	if over("apns-topic") && n.To.APNs != nil && !validHeaderValue(n.To.APNs.Topic) {
		return Invalid("to.apns.topic", "must not contain control characters")
	}
	return nil
}
