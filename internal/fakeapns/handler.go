package fakeapns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushproxy/pushproxy/internal/h2trouble"
	"github.com/pushproxy/pushproxy/translate"
)

const (
	devicePathPrefix = "/3/device/"
	maxPayload       = 4096
	maxVoIPPayload   = 5120
	// maxRead bounds what is read (and recorded) of a request body; anything longer is
	// far over every APNs limit and answered 413 all the same.
	maxRead = 64 << 10

	maxTokenAge     = time.Hour
	maxTokenFuture  = 60 * time.Second
	minTokenRefresh = 20 * time.Minute
)

// Apple's reasons, as they appear in the JSON body of an error response.
const (
	reasonBadCollapseID               = "BadCollapseId"
	reasonBadDeviceToken              = "BadDeviceToken"
	reasonBadExpirationDate           = "BadExpirationDate"
	reasonBadMessageID                = "BadMessageId"
	reasonBadPriority                 = "BadPriority"
	reasonBadTopic                    = "BadTopic"
	reasonDuplicateHeaders            = "DuplicateHeaders"
	reasonInvalidPushType             = "InvalidPushType"
	reasonMissingDeviceToken          = "MissingDeviceToken"
	reasonMissingTopic                = "MissingTopic"
	reasonPayloadEmpty                = "PayloadEmpty"
	reasonTopicDisallowed             = "TopicDisallowed"
	reasonExpiredProviderToken        = "ExpiredProviderToken"
	reasonInvalidProviderToken        = "InvalidProviderToken"
	reasonMissingProviderToken        = "MissingProviderToken"
	reasonUnrelatedKeyIDInToken       = "UnrelatedKeyIdInToken"
	reasonBadPath                     = "BadPath"
	reasonMethodNotAllowed            = "MethodNotAllowed"
	reasonPayloadTooLarge             = "PayloadTooLarge"
	reasonTooManyProviderTokenUpdates = "TooManyProviderTokenUpdates"
)

// Request headers, in canonical form.
const (
	headerAuthorization = "Authorization"
	headerPushType      = "Apns-Push-Type"
	headerTopic         = "Apns-Topic"
	headerPriority      = "Apns-Priority"
	headerExpiration    = "Apns-Expiration"
	headerID            = "Apns-Id"
	headerCollapseID    = "Apns-Collapse-Id"
)

const (
	pushTypeAlert      = "alert"
	pushTypeBackground = "background"
	pushTypeVoIP       = "voip"
	pushTypeMDM        = "mdm"
	mdmTopicPrefix     = "com.apple.mgmt."
)

// topicSuffix is the apns-topic suffix each push type adds to the bundle ID. mdm is
// absent: its topic is the MDM push certificate's topic (com.apple.mgmt.…).
var topicSuffix = map[string]string{
	pushTypeAlert:      "",
	pushTypeBackground: "",
	pushTypeVoIP:       ".voip",
	"complication":     ".complication",
	"fileprovider":     ".pushkit.fileprovider",
	"location":         ".location-query",
	"pushtotalk":       ".voip-ptt",
	"liveactivity":     ".push-type.liveactivity",
	"widgets":          ".push-type.widgets",
	"controls":         ".push-type.controls",
}

// handle serves one stream: record it, check it, answer it.
func (s *Server) handle(c *conn, w http.ResponseWriter, r *http.Request) {
	received := s.now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		panic(http.ErrAbortHandler) // reset the stream; never answer 200 by accident
	}
	sid := h2trouble.StreamID(w, r)
	c.mu.Lock()
	if c.goAwayLast != 0 && sid > c.goAwayLast {
		// Above our own GOAWAY's last stream: not processed, not recorded.
		c.mu.Unlock()
		s.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	c.maxStream = max(c.maxStream, sid)
	c.mu.Unlock()
	s.wg.Add(1)
	rec := &Request{
		Conn:     c.id,
		StreamID: sid,
		Method:   r.Method,
		Path:     r.URL.Path,
		Header:   r.Header.Clone(),
		Received: received,
	}
	if tok, ok := strings.CutPrefix(r.URL.Path, devicePathPrefix); ok {
		rec.DeviceToken = tok
	}
	s.records = append(s.records, rec)
	s.mu.Unlock()
	defer s.wg.Done()

	n := c.streams.Add(1)
	if s.opts.GoAwayAfter > 0 && n == int64(s.opts.GoAwayAfter) {
		if s.opts.GoAwayReason != "" {
			s.goAwayWithReason(c)
			panic(http.ErrAbortHandler)
		}
		c.shutdown()
	}
	if s.opts.ResetAfter > 0 && n == int64(s.opts.ResetAfter) {
		s.logf("fakeapns: conn %d: reset after %d streams", c.id, n)
		if tc, ok := c.raw.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST, not FIN
		}
		_ = c.raw.Close()
		panic(http.ErrAbortHandler)
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, maxRead+1))
	ti := s.readTokenCached(r.Header)
	s.mu.Lock()
	rec.Body = body
	rec.JWT, rec.KeyID, rec.TeamID, rec.IssuedAt = ti.raw, ti.kid, ti.iss, ti.iat
	s.mu.Unlock()
	if err != nil {
		s.logf("fakeapns: conn %d stream %d: reading body: %v", c.id, rec.StreamID, err)
		panic(http.ErrAbortHandler)
	}

	apnsID := strings.ToLower(r.Header.Get(headerID))
	if !isUUID(apnsID) {
		apnsID = newUUID()
	}

	var resp Response
	status, reason := s.check(c, r, rec.DeviceToken, body, ti)
	if status == 0 {
		resp = s.scripted(rec.DeviceToken)
		status, reason = resp.Status, resp.Reason
		if status == 0 {
			status = http.StatusOK
		}
		if status == http.StatusOK {
			reason = ""
		} else if reason == "" {
			reason = defaultReason(status)
		}
	}
	if reason == reasonExpiredProviderToken {
		// Apple expects a new token after refusing one as expired: the
		// next distinct token on this connection is not churn.
		c.mu.Lock()
		c.expiredJWT = ti.raw
		c.mu.Unlock()
	}

	if resp.Delay > 0 {
		t := time.NewTimer(resp.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.logf("fakeapns: conn %d stream %d: request ended during a %v delay", c.id, rec.StreamID, resp.Delay)
			panic(http.ErrAbortHandler)
		}
	}

	h := w.Header()
	h.Set("apns-id", apnsID)
	if resp.RetryAfter != "" {
		h.Set("Retry-After", resp.RetryAfter)
	}
	if status == http.StatusOK {
		w.WriteHeader(status)
	} else {
		e := struct {
			Reason    string `json:"reason"`
			Timestamp int64  `json:"timestamp,omitempty"`
		}{Reason: reason}
		if status == http.StatusGone {
			e.Timestamp = resp.Timestamp
			if e.Timestamp == 0 {
				e.Timestamp = s.now().UnixMilli()
			}
		}
		b, _ := json.Marshal(e)
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}

	s.mu.Lock()
	rec.Status, rec.Reason, rec.APNsID = status, reason, apnsID
	s.mu.Unlock()
	s.logf("fakeapns: conn %d stream %d: %s device=%s kid=%s jwt=%s push-type=%s topic=%s → %d %s",
		c.id, rec.StreamID, r.Method, fingerprint(rec.DeviceToken), ti.kid, fingerprint(ti.raw),
		r.Header.Get(headerPushType), r.Header.Get(headerTopic), status, reason)
}

// scripted takes the next queued answer for a device token, else its standing answer,
// else the default.
func (s *Server) scripted(deviceToken string) Response {
	k := strings.ToLower(deviceToken)
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.scripts[k]; len(q) > 0 {
		r := q[0]
		if len(q) == 1 {
			delete(s.scripts, k)
		} else {
			s.scripts[k] = q[1:]
		}
		return r
	}
	if r, ok := s.always[k]; ok {
		return r
	}
	if s.def != nil {
		return *s.def
	}
	return Response{}
}

func defaultReason(status int) string {
	switch status {
	case http.StatusBadRequest:
		return reasonBadDeviceToken
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusNotFound:
		return reasonBadPath
	case http.StatusMethodNotAllowed:
		return reasonMethodNotAllowed
	case http.StatusGone:
		return "Unregistered"
	case http.StatusRequestEntityTooLarge:
		return reasonPayloadTooLarge
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	}
	if status >= 500 {
		return "InternalServerError"
	}
	return strings.ReplaceAll(http.StatusText(status), " ", "")
}

// check validates a request in Apple's order. It returns status 0 when the request is
// acceptable, else the status and reason to answer.
func (s *Server) check(c *conn, r *http.Request, deviceToken string, body []byte, ti tokenInfo) (int, string) {
	// 1. Method and path.
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, reasonMethodNotAllowed
	}
	if r.URL.Path == strings.TrimSuffix(devicePathPrefix, "/") {
		return http.StatusBadRequest, reasonMissingDeviceToken
	}
	if !strings.HasPrefix(r.URL.Path, devicePathPrefix) {
		return http.StatusNotFound, reasonBadPath
	}
	if deviceToken == "" {
		return http.StatusBadRequest, reasonMissingDeviceToken
	}
	if !validDeviceToken(deviceToken) {
		return http.StatusBadRequest, reasonBadDeviceToken
	}

	// 2. Provider token.
	if ti.raw == "" {
		return http.StatusForbidden, reasonMissingProviderToken
	}
	topics, status, reason := s.authenticate(c, ti)
	if status != 0 {
		return status, reason
	}

	// 3. Push type.
	pushType := r.Header.Get(headerPushType)
	if pushType == "" {
		pushType = pushTypeAlert
	}
	suffix, known := topicSuffix[pushType]
	if !known && pushType != pushTypeMDM {
		return http.StatusBadRequest, reasonInvalidPushType
	}

	// 4. Topic.
	topic := r.Header.Get(headerTopic)
	if topic == "" {
		if len(topics) != 1 {
			return http.StatusBadRequest, reasonMissingTopic
		}
		topic = topics[0] + suffix
	}
	if status, reason := checkTopic(topic, pushType, topics); status != 0 {
		return status, reason
	}

	// 5. Priority.
	if vs, ok := r.Header[headerPriority]; ok {
		switch p := vs[0]; {
		case p != "10" && p != "5" && p != "1":
			return http.StatusBadRequest, reasonBadPriority
		case p == "10" && pushType == pushTypeBackground:
			return http.StatusBadRequest, reasonBadPriority
		}
	}

	// 6. Other headers.
	if vs, ok := r.Header[headerExpiration]; ok && !isDigits(vs[0]) {
		return http.StatusBadRequest, reasonBadExpirationDate
	}
	if vs, ok := r.Header[headerID]; ok && !isUUID(strings.ToLower(vs[0])) {
		return http.StatusBadRequest, reasonBadMessageID
	}
	if len(r.Header.Get(headerCollapseID)) > 64 {
		return http.StatusBadRequest, reasonBadCollapseID
	}
	for name, vs := range r.Header {
		if len(vs) > 1 && (name == headerAuthorization || strings.HasPrefix(name, "Apns-")) {
			return http.StatusBadRequest, reasonDuplicateHeaders
		}
	}

	// 7. Payload.
	if len(body) == 0 {
		return http.StatusBadRequest, reasonPayloadEmpty
	}
	limit := maxPayload
	if pushType == pushTypeVoIP {
		limit = maxVoIPPayload
	}
	if len(body) > limit {
		return http.StatusRequestEntityTooLarge, reasonPayloadTooLarge
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(body, &payload); err != nil || payload == nil {
		return http.StatusBadRequest, reasonPayloadEmpty
	}
	if aps := bytes.TrimSpace(payload["aps"]); len(aps) == 0 || aps[0] != '{' {
		return http.StatusBadRequest, reasonPayloadEmpty
	}
	return 0, ""
}

// checkTopic decides whether topic suits the push type for a team with these bundle IDs.
func checkTopic(topic, pushType string, bundles []string) (int, string) {
	if pushType == pushTypeMDM {
		if strings.HasPrefix(topic, mdmTopicPrefix) {
			return 0, ""
		}
	} else {
		want := topicSuffix[pushType]
		for _, b := range bundles {
			if topic == b+want {
				return 0, ""
			}
		}
	}
	// A topic of this team, but for another push type?
	for _, b := range bundles {
		if topic == b {
			return http.StatusBadRequest, reasonBadTopic
		}
		for _, sfx := range topicSuffix {
			if sfx != "" && topic == b+sfx {
				return http.StatusBadRequest, reasonBadTopic
			}
		}
	}
	return http.StatusBadRequest, reasonTopicDisallowed
}

// validDeviceToken: even-length hex; Apple's tokens are 64 hex digits today, longer ones
// are allowed for the future.
func validDeviceToken(t string) bool {
	if len(t) < 64 || len(t) > 200 || len(t)%2 != 0 {
		return false
	}
	_, err := hex.DecodeString(t)
	return err == nil
}

func isDigits(v string) bool {
	if v == "" || len(v) > 19 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// isUUID reports whether v is a canonical lower-case UUID (8-4-4-4-12 hex digits).
func isUUID(v string) bool {
	if len(v) != 36 {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID, as APNs assigns when apns-id is absent.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return translate.UUIDv4(b)
}

// goAwayWithReason writes APNs's kind of GOAWAY (debug data {"reason": …})
// onto the connection between two of x/net's frames, then closes the
// connection after a moment.
func (s *Server) goAwayWithReason(c *conn) {
	// The last stream is the highest one recorded: every stream recorded is
	// "processed"; later ones are refused unrecorded (see handle).
	c.mu.Lock()
	lastStreamID := c.maxStream
	c.goAwayLast = lastStreamID
	s.logf("fakeapns: conn %d: GOAWAY last=%d reason=%s", c.id, lastStreamID, s.opts.GoAwayReason)
	_ = c.fw.Inject(h2trouble.GoAwayFrame(lastStreamID, s.opts.GoAwayCode, s.opts.GoAwayReason))
	c.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-time.After(50 * time.Millisecond):
		case <-s.ctx.Done():
		}
		_ = c.raw.Close()
	}()
}
