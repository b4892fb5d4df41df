package fakefcm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Google's words for refused assertions.
const (
	msgBadSignature = "Invalid JWT Signature."
	msgBadTime      = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	msgBadAudience  = "Invalid JWT: Failed audience check."
	msgBadIssuer    = "Invalid email or User ID"
	msgBadScope     = "Invalid OAuth scope or ID token audience provided."
)

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	rec := &TokenFetch{Proto: r.Proto, Received: s.now()}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	form, _ := url.ParseQuery(string(body))
	rec.Assertion = form.Get("assertion")
	if h, c, ok := decodeJWT(rec.Assertion); ok {
		rec.Header, rec.Claims = h, c
		rec.KeyID, _ = h["kid"].(string)
		rec.Account, _ = c["iss"].(string)
	}
	s.mu.Lock()
	s.fetches = append(s.fetches, rec)
	var scripted *TokenResponse
	if len(s.tokenScripts) > 0 {
		scripted = &s.tokenScripts[0]
		s.tokenScripts = s.tokenScripts[1:]
	}
	s.mu.Unlock()
	refuse := func(status int, code, desc string) {
		s.mu.Lock()
		rec.Status, rec.Error, rec.Description = status, code, desc
		s.mu.Unlock()
		s.logf("fakefcm: token request (assertion %s) → %d %s: %s", Fingerprint(rec.Assertion), status, code, desc)
		writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
	}

	if scripted != nil {
		if !wait(r.Context(), scripted.Delay) {
			return
		}
		if scripted.Status == 0 && scripted.Error == "" && scripted.Body == "" {
			scripted = nil // only a delay: then the usual checks
		}
	}
	if scripted != nil {
		status := scripted.Status
		if status == 0 {
			status = 400
		}
		if scripted.Body != "" {
			s.mu.Lock()
			rec.Status = status
			s.mu.Unlock()
			w.WriteHeader(status)
			_, _ = io.WriteString(w, scripted.Body)
			return
		}
		refuse(status, scripted.Error, scripted.Description)
		return
	}

	switch {
	case r.Method != http.MethodPost:
		refuse(405, "invalid_request", "the token endpoint takes POST")
		return
	case !isForm(r.Header.Get("Content-Type")):
		refuse(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	case form.Get("grant_type") != JWTBearerGrant:
		refuse(400, "unsupported_grant_type", "Invalid grant_type: "+form.Get("grant_type"))
		return
	case rec.Assertion == "":
		refuse(400, "invalid_request", "Missing required parameter: assertion")
		return
	}
	email, desc, code := s.checkAssertion(rec.Assertion)
	if desc != "" {
		refuse(400, code, desc)
		return
	}
	tok := "ya29.fake-" + newSecret(32)
	s.mu.Lock()
	s.tokens[tok] = accessToken{account: email, expiry: s.now().Add(s.opts.TokenLifetime)}
	rec.Status, rec.AccessToken = 200, tok
	s.mu.Unlock()
	s.logf("fakefcm: token for %s (key %s) → access token %s", email, rec.KeyID, Fingerprint(tok))
	writeJSON(w, 200, map[string]any{
		"access_token": tok, "expires_in": int(s.opts.TokenLifetime / time.Second), "token_type": "Bearer",
	})
}

func isForm(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// decodeJWT decodes a JWT's header and claims without verifying it.
func decodeJWT(tok string) (map[string]any, map[string]any, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, nil, false
	}
	var h, c map[string]any
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		return nil, nil, false
	}
	return h, c, true
}

// checkAssertion verifies an assertion the way Google does; it returns
// the service account, or the OAuth error and Google's description.
func (s *Server) checkAssertion(assertion string) (email, desc, code string) {
	// The key: the one the header's kid names, or, without a kid (gtoken
	// and google-auth-library send none), each key of the account the
	// claims' iss names, as Google does.
	var owner string
	tok, err := jwt.Parse(assertion, func(t *jwt.Token) (any, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if kid, ok := t.Header["kid"].(string); ok {
			o, known := s.keyOwner[kid]
			if !known {
				return nil, errors.New("unknown key")
			}
			owner = o
			return s.accounts[o].keys[kid], nil
		}
		iss, _ := t.Claims.(jwt.MapClaims)["iss"].(string)
		a := s.accounts[iss]
		if iss == "" || a == nil || len(a.keys) == 0 {
			return nil, errors.New("unknown account")
		}
		owner = iss
		var vks jwt.VerificationKeySet
		for _, k := range a.keys {
			vks.Keys = append(vks.Keys, k)
		}
		return vks, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil || !tok.Valid {
		return "", msgBadSignature, "invalid_grant"
	}
	claims, _ := tok.Claims.(jwt.MapClaims)
	iss, _ := claims["iss"].(string)
	if iss == "" || iss != owner {
		return "", msgBadIssuer, "invalid_grant"
	}
	aud, _ := claims["aud"].(string)
	if aud != s.TokenURL() && aud != GoogleTokenURL && aud != GoogleTokenURLV4 {
		return "", msgBadAudience, "invalid_grant"
	}
	scope, _ := claims["scope"].(string)
	scopes := strings.Fields(scope)
	if !slices.Contains(scopes, Scope) && !slices.Contains(scopes, CloudPlatformScope) {
		return "", msgBadScope, "invalid_scope"
	}
	iat, ok1 := claims["iat"].(float64)
	exp, ok2 := claims["exp"].(float64)
	now := float64(s.now().Unix())
	if !ok1 || !ok2 || iat > now+60 || exp <= now || exp <= iat || exp-iat > 3600 {
		return "", msgBadTime, "invalid_grant"
	}
	return iss, "", ""
}

var (
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9_:-]+$`)
	ttlRe   = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,9})?s$`)
	// messageFields are the fields of FCM's Message resource.
	messageFields = []string{"name", "data", "notification", "android", "webpush", "apns", "fcm_options", "fcmOptions", "token", "topic", "condition"}
)

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rec := &Request{
		Conn: s.connOf(r), Proto: r.Proto, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(),
		Body: body, Received: s.now(),
	}
	s.mu.Lock()
	if m := s.opts.MaxRecords; m > 0 && len(s.records) >= m {
		s.records = append(s.records[:0], s.records[len(s.records)-m+1:]...)
	}
	s.records = append(s.records, rec)
	s.mu.Unlock()
	answer := func(resp Response, why string) {
		st := resp.RPCStatus
		if st == "" {
			st = rpcStatusFor(resp.Status)
		}
		code := resp.ErrorCode
		if code == "" {
			code = st
		}
		s.mu.Lock()
		rec.Status, rec.ErrorCode, rec.Reason = resp.Status, code, why
		s.mu.Unlock()
		s.logf("fakefcm: send %s (token %s) → %d %s: %s", rec.Project, Fingerprint(rec.Token), resp.Status, code, why)
		if resp.RetryAfter != "" {
			w.Header().Set("Retry-After", resp.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(resp.Status)
		_, _ = w.Write(ErrorBody(resp))
	}
	invalid := func(field, desc string, fcmError bool) {
		resp := Response{Status: 400, RPCStatus: "INVALID_ARGUMENT", Message: desc}
		if field != "" {
			resp.FieldViolations = []FieldViolation{{field, desc}}
		}
		if fcmError {
			resp.ErrorCode = InvalidArgument
		}
		answer(resp, desc)
	}

	rest, _ := strings.CutPrefix(r.URL.Path, "/v1/projects/")
	project, ok := strings.CutSuffix(rest, "/messages:send")
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	rec.Project, rec.AccessToken = project, bearer
	s.mu.Unlock()
	if !ok || project == "" || strings.Contains(project, "/") {
		answer(Response{Status: 404, RPCStatus: "NOT_FOUND", Message: "The requested URL " + r.URL.Path + " was not found on this server."}, "no such path")
		return
	}
	if r.Method != http.MethodPost {
		answer(Response{Status: 405, RPCStatus: "INVALID_ARGUMENT", Message: "method not allowed"}, "method "+r.Method)
		return
	}

	// 1. The access token.
	s.mu.Lock()
	at, live := s.tokens[bearer]
	live = live && s.now().Before(at.expiry)
	rec.Account = at.account
	s.mu.Unlock()
	if !live {
		answer(Answer(Unauthenticated), "no live access token")
		return
	}

	// 2. The project.
	s.mu.Lock()
	exists, allowed := false, false
	for _, a := range s.accounts {
		exists = exists || a.projects[project]
	}
	if a := s.accounts[at.account]; a != nil {
		allowed = a.projects[project]
	}
	disabled := s.disabled[project]
	s.mu.Unlock()
	switch {
	case !exists:
		answer(Answer(ProjectNotFound), "no such project")
		return
	case disabled:
		resp := Answer(ServiceDisabled)
		resp.Message = strings.Replace(resp.Message, "in project", "in project "+project, 1)
		answer(resp, "API disabled")
		return
	case !allowed:
		answer(Answer(PermissionDenied), at.account+" may not send for "+project)
		return
	}

	// 3. The body.
	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil {
		invalid("", "Invalid JSON payload received. "+err.Error(), false)
		return
	}
	for k := range req {
		if k != "message" && k != "validate_only" && k != "validateOnly" {
			invalid(k, fmt.Sprintf("Invalid JSON payload received. Unknown name %q: Cannot find field.", k), false)
			return
		}
	}
	var validateOnly bool
	if v, ok := req["validate_only"]; ok {
		if json.Unmarshal(v, &validateOnly) != nil {
			invalid("validate_only", "Invalid value at 'validate_only' (TYPE_BOOL)", false)
			return
		}
	}
	var msg map[string]any
	dec := json.NewDecoder(bytes.NewReader(req["message"]))
	dec.UseNumber()
	if err := dec.Decode(&msg); err != nil || msg == nil {
		invalid("message", "Invalid value at 'message': a Message object is required", false)
		return
	}
	s.mu.Lock()
	rec.Message, rec.ValidateOnly = msg, validateOnly
	s.mu.Unlock()
	for k := range msg {
		if !slices.Contains(messageFields, k) {
			invalid("message", fmt.Sprintf("Invalid JSON payload received. Unknown name %q at 'message': Cannot find field.", k), false)
			return
		}
	}
	targets := 0
	for _, k := range []string{"token", "topic", "condition"} {
		if _, ok := msg[k]; ok {
			targets++
		}
	}
	if targets != 1 {
		invalid("message", "Exactly one of token, topic or condition must be specified", false)
		return
	}
	token, isStr := msg["token"].(string)
	s.mu.Lock()
	rec.Token = token
	s.mu.Unlock()
	// 4. The token.
	if _, has := msg["token"]; has && (!isStr || len(token) > 4096 || !tokenRe.MatchString(token)) {
		answer(Answer(InvalidToken), "malformed registration token")
		return
	}
	// 5. Field values.
	if field, desc := checkMessage(msg); field != "" {
		invalid(field, desc, true)
		return
	}
	// 6. Size without the token.
	noToken := make(map[string]any, len(msg))
	for k, v := range msg {
		if k != "token" {
			noToken[k] = v
		}
	}
	size, _ := json.Marshal(noToken)
	if len(size) > MaxMessage {
		invalid("message", "Message is too big", true)
		return
	}
	// 7. The token's project.
	s.mu.Lock()
	bound, isBound := s.bound[token]
	s.mu.Unlock()
	if isBound && bound != project {
		answer(Answer(SenderIDMismatch), "token of project "+bound)
		return
	}

	s.mu.Lock()
	var resp *Response
	if q := s.scripts[token]; len(q) > 0 {
		resp = &q[0]
		s.scripts[token] = q[1:]
	} else if a, ok := s.always[token]; ok {
		resp = &a
	}
	s.nmsg++
	n := s.nmsg
	s.mu.Unlock()
	if resp != nil {
		if !wait(r.Context(), resp.Delay) {
			return
		}
		if resp.Status != 0 && resp.Status != 200 {
			answer(*resp, "scripted")
			return
		}
	}
	name := "projects/" + project + "/messages/"
	if validateOnly {
		name += ValidateOnlyName
	} else {
		name += "0:" + strconv.FormatInt(s.now().UnixMicro(), 10) + "%" + strconv.FormatInt(int64(n), 16) + "fakefcm"
	}
	s.mu.Lock()
	rec.Status, rec.Name = 200, name
	s.mu.Unlock()
	s.logf("fakefcm: send %s (token %s) → 200 %s", project, Fingerprint(token), name)
	writeJSON(w, 200, map[string]string{"name": name})
}

// checkMessage checks field values as FCM does; it returns the field and
// FCM's description of what is wrong, or "".
func checkMessage(msg map[string]any) (string, string) {
	if f, d := checkData("message.data", msg["data"]); f != "" {
		return f, d
	}
	if v, ok := msg["notification"]; ok {
		if _, isObj := v.(map[string]any); !isObj {
			return "message.notification", "Invalid value at 'message.notification' (type.googleapis.com/google.firebase.fcm.v1.Notification)"
		}
	}
	a, ok := msg["android"]
	if !ok {
		return "", ""
	}
	android, isObj := a.(map[string]any)
	if !isObj {
		return "message.android", "Invalid value at 'message.android' (type.googleapis.com/google.firebase.fcm.v1.AndroidConfig)"
	}
	if p, ok := android["priority"]; ok && p != "NORMAL" && p != "HIGH" {
		return "message.android.priority", fmt.Sprintf("Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), %v", p)
	}
	if t, ok := android["ttl"]; ok {
		ts, _ := t.(string)
		secs, _ := strconv.ParseFloat(strings.TrimSuffix(ts, "s"), 64)
		if !ttlRe.MatchString(ts) || secs > 2419200 {
			return "message.android.ttl", fmt.Sprintf("Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), %v", t)
		}
	}
	if c, ok := android["collapse_key"]; ok {
		if _, isStr := c.(string); !isStr {
			return "message.android.collapse_key", "Invalid value at 'message.android.collapse_key' (TYPE_STRING)"
		}
	}
	if f, d := checkData("message.android.data", android["data"]); f != "" {
		return f, d
	}
	if n, ok := android["notification"]; ok {
		an, isObj := n.(map[string]any)
		if !isObj {
			return "message.android.notification", "Invalid value at 'message.android.notification' (type.googleapis.com/google.firebase.fcm.v1.AndroidNotification)"
		}
		if c, ok := an["notification_count"]; ok {
			num, isNum := c.(json.Number)
			i, err := num.Int64()
			if !isNum || err != nil || i < 0 {
				return "message.android.notification.notification_count", fmt.Sprintf("Invalid value at 'message.android.notification.notification_count' (TYPE_INT32), %v", c)
			}
		}
	}
	return "", ""
}

func checkData(field string, v any) (string, string) {
	if v == nil {
		return "", ""
	}
	d, ok := v.(map[string]any)
	if !ok {
		return field, "Invalid value at '" + field + "' (map<string, string>)"
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if k == "from" || k == "notification" || k == "message_type" || strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.") || k == "" {
			return field, "Invalid data payload key: " + k
		}
		if _, isStr := d[k].(string); !isStr {
			f := fmt.Sprintf("%s[%d].value", field, i)
			return f, fmt.Sprintf("Invalid value at '%s' (TYPE_STRING), %v", f, d[k])
		}
	}
	return "", ""
}
