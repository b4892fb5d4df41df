package fakepush

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func validTopic(t string) bool {
	if len(t) == 0 || len(t) > 32 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// origin is the origin a request was sent to, as the VAPID aud must name
// it.
func origin(r *http.Request) string {
	host := strings.ToLower(r.Host)
	if h, p, err := net.SplitHostPort(host); err == nil && p == "443" {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	return "https://" + host
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	rec := &Request{
		Proto: r.Proto, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(),
		Body: body, Received: s.now(),
	}
	rec.Conn = s.conns.Of(r)
	id, _ := strings.CutPrefix(r.URL.Path, "/push/")
	rec.SubscriptionID = id
	s.mu.Lock()
	sub := s.subs[id]
	gone := s.gone[id]
	s.records = append(s.records, rec)
	s.mu.Unlock()

	style := s.opts.Style
	if sub != nil {
		style = sub.Style
	}
	refuse := func(a answer, why string) {
		s.mu.Lock()
		rec.Status, rec.Reason = a.status, why
		s.mu.Unlock()
		s.logf("fakepush: %s %s → %d (%s)", r.Method, fingerprint(r.URL.Path), a.status, why)
		a.write(w)
	}
	switch {
	case r.Method != http.MethodPost:
		refuse(answer{status: 405, body: "method not allowed\n"}, "method "+r.Method)
		return
	case sub == nil || !strings.HasPrefix(r.URL.Path, "/push/"):
		refuse(styleAnswer(style, kindNotFound), "no such subscription")
		return
	case gone:
		refuse(styleAnswer(style, kindGone), "unsubscribed")
		return
	}
	ttl := r.Header.Get("TTL")
	if n, err := strconv.ParseInt(ttl, 10, 64); err != nil || n < 0 {
		k := kindBadTTL
		if ttl == "" {
			k = kindNoTTL
		}
		refuse(styleAnswer(style, k), "TTL "+strconv.Quote(ttl))
		return
	}
	if t, ok := r.Header["Topic"]; ok && (len(t) != 1 || !validTopic(t[0])) {
		refuse(styleAnswer(style, kindBadTopic), "Topic "+strconv.Quote(r.Header.Get("Topic")))
		return
	}
	if u, ok := r.Header["Urgency"]; ok {
		switch r.Header.Get("Urgency") {
		case "very-low", "low", "normal", "high":
		default:
			refuse(styleAnswer(style, kindBadUrgency), "Urgency "+strconv.Quote(strings.Join(u, ",")))
			return
		}
	}
	info, verr := VerifyVAPID(r.Header.Get("Authorization"), origin(r), s.now())
	if info != nil {
		s.mu.Lock()
		rec.JWT, rec.JWTHeader, rec.Claims, rec.VAPIDKey = info.Token, info.Header, info.Claims, info.Key
		rec.KeyMatches = strings.TrimRight(info.Key, "=") == sub.VAPIDKey
		s.mu.Unlock()
	}
	if verr != nil {
		refuse(styleAnswer(style, kindBadJWT), verr.Error())
		return
	}
	if !rec.KeyMatches {
		a := styleAnswer(style, kindKeyMismatch)
		if km := sub.KeyMismatch; km != nil {
			a = answer{status: km.Status, body: km.Body, header: km.Header}
			if a.status == 0 {
				a.status = http.StatusBadRequest
			}
		}
		refuse(a, "k is not the subscription's applicationServerKey")
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		refuse(styleAnswer(style, kindBadEncoding), "Content-Encoding "+strconv.Quote(ce))
		return
	}
	if len(body) == 0 {
		refuse(styleAnswer(style, kindBadEncoding), "empty body")
		return
	}
	if len(body) > 4096 {
		refuse(styleAnswer(style, kindTooLarge), fmt.Sprintf("body of %d bytes", len(body)))
		return
	}
	pt, derr := Decrypt(body, sub.PrivateKey, sub.AuthSecret)
	s.mu.Lock()
	if derr != nil {
		rec.DecryptError = derr.Error()
	} else {
		rec.Plaintext = pt
	}
	var script *Response
	if q := s.scripts[id]; len(q) > 0 {
		script = &q[0]
		s.scripts[id] = q[1:]
	}
	s.nmsg++
	msgID := s.nmsg
	s.mu.Unlock()

	a := answer{status: http.StatusCreated, header: http.Header{"Location": {s.url + "/m/" + strconv.Itoa(msgID)}, "TTL": {ttl}}}
	if script != nil {
		if script.Delay > 0 {
			t := time.NewTimer(script.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if script.Status != 0 && script.Status != http.StatusCreated {
			a = answer{status: script.Status, body: script.Body, header: script.Header}
			if script.Body == "" && script.Header == nil {
				a = styleAnswerForStatus(style, script.Status)
			}
		}
	}
	s.mu.Lock()
	rec.Status = a.status
	s.mu.Unlock()
	s.logf("fakepush: POST %s → %d (%d bytes plaintext)", fingerprint(r.URL.Path), a.status, len(pt))
	a.write(w)
}
