package apns

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/translate"
)

// One attempt on one connection, and what its failure means.

// outcome is what one attempt came to.
type outcome struct {
	conn        *pconn
	reply       *translate.APNsReply
	err         *translate.Error
	wrote       bool // the request's headers were written to a connection
	unprocessed bool // the server surely did not process it: safe to re-send
	drainedHost bool // not sent: the pool rests after APNs refused every recent connection whole
}

// Errors of x/net/http2 that say a stream was not processed. x/net does not
// export them; the GOAWAY tests pin this classification to the library.
const (
	msgGotGoAway = "http2: Transport received Server's graceful shutdown GOAWAY"
	msgUnusable  = "http2: client conn not usable"
)

func isUnprocessed(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) && se.Code == http2.ErrCodeRefusedStream {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if m := e.Error(); m == msgGotGoAway || m == msgUnusable {
			return true
		}
	}
	return false
}

// refusedAll says the server sent a GOAWAY whose last stream ID is 0 on
// this connection: it processed no stream on it, whatever error the
// attempt ended with (the deadline passing while it was refused, for
// example).
func refusedAll(conn *pconn) bool {
	g := conn.goAway.Load()
	return g != nil && g.LastStreamID == 0
}

// sentBody is a request body that records whether x/net started reading
// it. x/net reads the body only after writing the headers, and a server
// cannot process a request whose body it has not received (END_STREAM
// comes with the body), so an unread body means the request is safe to
// send again.
type sentBody struct {
	bytes.Reader
	read atomic.Bool
}

func (b *sentBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.Reader.Read(p)
}

func (b *sentBody) Close() error { return nil }

// roundTrip makes one attempt on a pooled connection.
func (s *Sender) roundTrip(ctx context.Context, p *pool, r *translate.APNsRequest, auth string) outcome {
	conn, err := p.get(ctx)
	if errors.Is(err, errDraining) {
		return outcome{unprocessed: true, drainedHost: true}
	}
	if err != nil {
		return outcome{err: s.transportError(ctx, nil, err, false)}
	}
	defer p.release()
	body := &sentBody{}
	body.Reset(r.Payload)
	// One backing array for every header's value slice.
	h := make(http.Header, 8)
	vals := make([]string, 0, 7)
	set := func(name, value string) {
		vals = append(vals, value)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	r.EachHeader(set)
	set("authorization", auth)
	req := (&http.Request{
		Method: http.MethodPost, URL: &url.URL{Scheme: "https", Host: p.addr, Path: r.Path()},
		Header: h, Body: body, ContentLength: int64(len(r.Payload)), Host: p.host,
		Proto: "HTTP/2.0", ProtoMajor: 2,
	}).WithContext(ctx)
	start := time.Now()
	resp, err := conn.cc.RoundTrip(req)
	if err != nil {
		if s.opts.OnAttempt != nil {
			s.opts.OnAttempt(time.Since(start), 0)
		}
		w := body.read.Load()
		if isUnprocessed(err) || (!w && ctx.Err() == nil) || refusedAll(conn) {
			return outcome{conn: conn, wrote: w, unprocessed: true}
		}
		return outcome{conn: conn, wrote: w, err: s.transportError(ctx, conn, err, w)}
	}
	p.answered()
	s.skew.Note(resp.Header.Get("Date"), s.opts.Now())
	reply := &translate.APNsReply{Status: resp.StatusCode, APNsID: resp.Header.Get("apns-id")}
	if resp.StatusCode == http.StatusOK {
		// APNs answers success with an empty body: nothing to read.
		_ = resp.Body.Close()
		if s.opts.OnAttempt != nil {
			s.opts.OnAttempt(time.Since(start), resp.StatusCode)
		}
		return outcome{conn: conn, wrote: true, reply: reply}
	}
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if rerr != nil {
		return outcome{conn: conn, wrote: true, err: s.transportError(ctx, conn, rerr, true)}
	}
	reply.Body, reply.RetryAfter = data, resp.Header.Get("retry-after")
	if s.opts.OnAttempt != nil {
		s.opts.OnAttempt(time.Since(start), resp.StatusCode)
	}
	return outcome{conn: conn, wrote: true, reply: reply}
}

// transportError normalises a failure without an APNs answer. The reason
// of a GOAWAY that caused it (from the error, or seen on the connection)
// is passed on: a documented APNs reason keeps its meaning (Shutdown →
// upstream_unavailable, BadCertificateEnvironment → credentials_rejected …).
func (s *Sender) transportError(ctx context.Context, conn *pconn, err error, wrote bool) *translate.Error {
	reason := ""
	var ga http2.GoAwayError
	if errors.As(err, &ga) {
		var b struct {
			Reason string `json:"reason"`
		}
		_ = json.Unmarshal([]byte(ga.DebugData), &b)
		reason = b.Reason
		if reason == "" {
			reason = "GOAWAY " + ga.ErrCode.String()
		}
	} else if conn != nil {
		if g := conn.goAway.Load(); g != nil {
			reason = g.Reason
			if reason == "" {
				reason = "GOAWAY " + g.ErrCode.String()
			}
		}
	}
	detail := ""
	if reason == "" && ctx.Err() == nil {
		detail = scrub(err.Error())
	}
	return translate.FromAPNsTransport(translate.APNsTransport{GoAwayReason: reason, Deadline: ctx.Err() != nil, Wrote: wrote, Detail: detail})
}

// notSent is the error of a notification whose re-sends ran out, whose
// deadline passed between them, or that a resting pool refused
// (translate.APNsNotSent), with the reason of g, the last GOAWAY seen (nil:
// none), after trying it on that many connections.
func (s *Sender) notSent(ctx context.Context, g *goAwayInfo, connections int) *translate.Error {
	reason := ""
	if g != nil {
		reason = g.Reason
		if reason == "" {
			reason = "GOAWAY " + g.ErrCode.String()
		}
	}
	return translate.APNsNotSent(reason, ctx.Err() != nil, connections)
}

// scrub removes the request URL (which holds the device token) from a
// transport error message.
func scrub(msg string) string {
	if i := strings.Index(msg, "/3/device/"); i >= 0 {
		j := i + len("/3/device/")
		k := j
		for k < len(msg) && msg[k] != '"' && msg[k] != ' ' && msg[k] != ':' {
			k++
		}
		msg = msg[:j] + "…" + msg[k:]
	}
	return msg
}
