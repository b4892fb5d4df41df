package proxy

import (
	"context"
	"crypto/rand"
	"strconv"
	"strings"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy/apns"
	"github.com/pushproxy/pushproxy/translate"
)

// send resolves the platform and credential and delivers one notification
// with the configuration and credentials of st.
func (s *Service) send(ctx context.Context, st *state, n *translate.Notification) (*translate.Result, *translate.Error) {
	platform, e := n.Platform()
	if e != nil {
		s.account("unknown", n, "", e)
		return nil, e
	}
	var (
		res  *translate.Result
		cred string
	)
	switch platform {
	case translate.PlatformAPNs:
		var c *creds.APNsCredential
		res, c, e = s.sendAPNs(ctx, st, n)
		if c != nil {
			cred = c.Spec.Name
		}
	case translate.PlatformWebPush:
		res, cred, e = s.sendWebPush(ctx, st, n)
	case translate.PlatformFCM:
		res, cred, e = s.sendFCM(ctx, st, n)
	default:
		// Platform answers only the three names above.
		e = translate.NewError(translate.CodeInvalidRequest, "unknown platform "+strconv.Quote(platform), "address the notification to.apns, to.webpush or to.fcm")
	}
	if e != nil {
		e.Platform = platform
		switch {
		case context.Cause(ctx) == errGraceOver:
			graceOver(e)
		case ctx.Err() != nil && e.Code == translate.CodeUpstreamUnavailable:
			// The deadline passed: a timeout; retryable unless the request
			// may have been delivered (then the caller decides).
			e.Code, e.Retryable = translate.CodeUpstreamTimeout, !e.MaybeDelivered
		}
	}
	s.account(platform, n, cred, e)
	return res, e
}

// graceOver rewrites the error of a notification cut because
// shutdown_grace ran out: pushproxy, not the upstream, stopped it.
func graceOver(e *translate.Error) {
	if e.MaybeDelivered {
		e.Code, e.Action, e.Retryable = translate.CodeUpstreamUnavailable, translate.ActionRetryLater, false
		e.Message = "pushproxy shut down (shutdown_grace ran out) after the request reached the push service, before it answered"
		e.Hint = "it may have been delivered; the caller decides whether to send it again (to another replica); raise shutdown_grace if this happens on every deploy"
		return
	}
	e.Code, e.Action, e.Retryable = translate.CodeUpstreamUnavailable, translate.ActionRetryLater, true
	e.Message = "pushproxy shut down (shutdown_grace ran out) before the notification was sent (not delivered)"
	e.Hint = "send it again, to another replica; raise shutdown_grace if this happens on every deploy"
}

func (s *Service) sendAPNs(ctx context.Context, st *state, n *translate.Notification) (*translate.Result, *creds.APNsCredential, *translate.Error) {
	to := n.To.APNs
	snap := st.creds
	var cred *creds.APNsCredential
	if to.Credential != "" {
		cred = snap.APNsByName(to.Credential)
		if cred == nil {
			return nil, nil, translate.Invalid("to.apns.credential", "no APNs credential named %q (configured: %s)", to.Credential, strings.Join(snap.Names(), ", ")).
				WithHint("name one of the configured credentials, or leave to.apns.credential out to pick the one that lists the topic")
		}
	} else {
		cred = snap.APNsForTopic(to.Topic)
		if cred == nil {
			if len(snap.APNs) == 0 {
				return nil, nil, translate.NewError(translate.CodeCredentialsMissing, "no APNs credential is configured", "add an apns entry with key_file, team_id and topics to the configuration")
			}
			// The caller named a topic this pushproxy does not sign for: a
			// request to fix (or a configuration to extend), not an outage.
			e := translate.NewError(translate.CodeTopicMismatch, "no APNs credential lists topic "+strconv.Quote(to.Topic),
				"check to.apns.topic is the app's bundle ID; if it is, add it to the topics of the credential whose team owns the app, or name the credential in to.apns.credential")
			e.Field = "to.apns.topic"
			return nil, nil, e
		}
	}
	if e := apns.Unusable(cred); e != nil {
		return nil, cred, e
	}
	topic := to.Topic
	if topic == "" && len(cred.Spec.Topics) > 0 {
		topic = cred.Spec.Topics[0]
	}
	env := cred.Spec.Environment
	switch to.Environment {
	case "":
	case apns.Production, apns.Development, apns.Auto:
		env = to.Environment
	default:
		return nil, cred, translate.Invalid("to.apns.environment", "must be production, development or auto, not %q", to.Environment)
	}
	req, e := translate.BuildAPNs(n, translate.APNsTarget{Topic: topic, Now: s.now(), NewID: newUUID()})
	if e != nil {
		return nil, cred, e
	}
	d := apns.Delivery{Credential: cred, Environment: env, Request: req}
	if n.DryRun {
		preview, e := s.apns.Preview(d)
		if e != nil {
			return nil, cred, e
		}
		return &translate.Result{ID: req.ID, Platform: translate.PlatformAPNs, Credential: cred.Spec.Name, Environment: apns.FirstEnvironment(env), Request: preview}, cred, nil
	}
	res, e := s.apns.Send(ctx, d)
	return res, cred, e
}

// account counts a notification and logs a failure: code, upstream status
// and reason, credential name, and only a fingerprint of the recipient.
func (s *Service) account(platform string, n *translate.Notification, cred string, e *translate.Error) {
	code := "ok"
	if e != nil {
		code = string(e.Code)
	}
	s.m.notifications.WithLabelValues(platform, code).Inc()
	if e == nil {
		return
	}
	attrs := []any{"platform", platform, "code", code, "message", e.Message}
	if e.Upstream != nil {
		attrs = append(attrs, "upstream_status", e.Upstream.Status, "upstream_reason", e.Upstream.Reason)
	}
	if cred != "" {
		attrs = append(attrs, "credential", cred)
	}
	if n != nil {
		if n.To.APNs != nil && n.To.APNs.Token != "" {
			attrs = append(attrs, "recipient", translate.FingerprintString(strings.ToLower(n.To.APNs.Token)))
		} else if n.To.WebPush != nil && n.To.WebPush.Endpoint != "" {
			attrs = append(attrs, "recipient", translate.FingerprintString(n.To.WebPush.Endpoint))
		} else if n.To.FCM != nil && n.To.FCM.Token != "" {
			attrs = append(attrs, "recipient", translate.FingerprintString(n.To.FCM.Token))
		}
		if n.ID != "" {
			attrs = append(attrs, "id", n.ID)
		}
	}
	s.log.Warn("notification failed", attrs...)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return translate.UUIDv4(b)
}
