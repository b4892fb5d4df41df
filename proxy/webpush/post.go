package webpush

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pushproxy/pushproxy/internal/resend"

	"github.com/pushproxy/pushproxy/translate"
)

// One POST to a push service, and what its failure means.

// Headers returns the RFC 8030/8291 request headers for a message, in a
// fixed order (Authorization is added per key).
func Headers(m *translate.WebPushMessage, bodyLen int) [][2]string {
	h := [][2]string{
		{"TTL", strconv.FormatInt(m.TTL, 10)},
		{"Content-Encoding", "aes128gcm"},
		{"Content-Type", "application/octet-stream"},
		{"Content-Length", strconv.Itoa(bodyLen)},
	}
	if m.Urgency != "" {
		h = append(h, [2]string{"Urgency", m.Urgency})
	}
	if m.Topic != "" {
		h = append(h, [2]string{"Topic", m.Topic})
	}
	return h
}

// post makes one attempt and returns the answer's status, its error and
// the retry policy for it.
func (s *Sender) post(ctx context.Context, u *url.URL, m *translate.WebPushMessage, body []byte, auth, service string) (int, *translate.Error, translate.RetryPolicy) {
	release, err := s.slot(ctx, u.Host)
	if err != nil {
		// The deadline passed waiting for a slot: nothing was sent.
		e := translate.NewError(translate.CodeUpstreamTimeout, "the push service took no request from pushproxy before the deadline (not delivered)",
			"too many notifications to this push service at once; retry later, or raise X-Request-Timeout")
		e.Platform = translate.PlatformWebPush
		return 0, e, translate.RetryNone
	}
	defer release()
	rctx, tracker := s.pacer.Track(ctx)
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, translate.InvalidRecipient("to.webpush.endpoint", "cannot make a request to this endpoint"), translate.RetryNone
	}
	for _, kv := range Headers(m, len(body)) {
		if kv[0] != "Content-Length" {
			req.Header.Set(kv[0], kv[1])
		}
	}
	req.Header.Set("Authorization", auth)
	start := time.Now()
	resp, err := s.client.Load().Do(req)
	if err != nil {
		if s.opts.OnAttempt != nil {
			s.opts.OnAttempt(time.Since(start), 0)
		}
		e := s.transportError(ctx, err, tracker)
		return 0, e, translate.HTTPTransportPolicy(e)
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	_ = resp.Body.Close()
	s.skew.Note(resp.Header.Get("Date"), s.opts.Now())
	if s.opts.OnAttempt != nil {
		s.opts.OnAttempt(time.Since(start), resp.StatusCode)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil, translate.RetryNone
	}
	e, policy := translate.ClassifyWebPush(translate.WebPushReply{
		Status: resp.StatusCode, Header: resp.Header, Body: data, Service: service, Host: u.Hostname(),
	}, s.opts.Now())
	hidePath(e, u)
	if e.Code == translate.CodeCredentialsRejected {
		e.Hint += s.skew.Hint("the push service")
	}
	return resp.StatusCode, e, policy
}

// hidePath removes the endpoint's path (the subscriber's secret) from what
// a push service's answer put into an error: some services echo the URL or
// the subscription's ID in their message.
func hidePath(e *translate.Error, u *url.URL) {
	secrets := []string{u.EscapedPath(), u.Path}
	if i := strings.LastIndexByte(u.Path, '/'); i >= 0 && len(u.Path)-i-1 >= 8 {
		secrets = append(secrets, u.Path[i+1:])
	}
	hide := func(s string) string {
		for _, sec := range secrets {
			if len(sec) > 1 {
				s = strings.ReplaceAll(s, sec, "/…")
			}
		}
		return s
	}
	e.Message, e.Hint = hide(e.Message), hide(e.Hint)
	if e.Upstream != nil {
		e.Upstream.Reason = hide(e.Upstream.Reason)
	}
}

// transportError normalises a failure without an answer (see
// translate.FromHTTPTransport).
func (s *Sender) transportError(ctx context.Context, err error, tr *resend.Tracker) *translate.Error {
	var fe *ForbiddenError
	if errors.As(err, &fe) {
		return forbidden(fe)
	}
	return translate.FromHTTPTransport(translate.HTTPTransport{
		Platform: translate.PlatformWebPush, Server: "the push service", Reach: "the push service",
		Refused:     errors.Is(err, resend.ErrExhausted),
		Connections: tr.Dials(),
		Deadline:    ctx.Err() != nil,
		NotSent:     tr.NotSent(err),
		Detail:      scrub(err.Error()),
	})
}

// scrub removes the endpoint URL (whose path is the subscription's secret)
// from a transport error message.
func scrub(msg string) string {
	for {
		i := strings.Index(msg, "https://")
		if i < 0 {
			return msg
		}
		j := i + len("https://")
		for j < len(msg) && msg[j] != '/' && msg[j] != '"' && msg[j] != ' ' {
			j++
		}
		k := j
		for k < len(msg) && msg[k] != '"' && msg[k] != ' ' {
			k++
		}
		msg = msg[:i] + "<endpoint " + msg[i+len("https://"):j] + ">" + msg[k:]
	}
}
