package proxy

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pushproxy/pushproxy/translate"
)

// maxHeaderBytes bounds a request's header block; net/http answers a
// larger one itself with a plain-text 431 (see the README).
const maxHeaderBytes = 64 << 10

// routes is the local API: every path with the methods it allows. A wrong
// method on a known path is 405 with Allow, an unknown path 404, both in
// the normalised error shape; a panic anywhere is answered internal_error.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	get := []string{http.MethodGet, http.MethodHead}
	mux.Handle("/v1/notifications", allow([]string{http.MethodPost}, http.HandlerFunc(s.handleSend)))
	mux.Handle("/v1/notifications/batch", allow([]string{http.MethodPost}, http.HandlerFunc(s.handleBatch)))
	mux.Handle("/v1/webpush/vapid-public-key", allow(get, s.authed(s.handleVAPIDPublicKey)))
	mux.Handle("/healthz", allow(get, http.HandlerFunc(s.handleHealth)))
	mux.Handle("/readyz", allow(get, http.HandlerFunc(s.handleReady)))
	mux.Handle("/metrics", allow(get, promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{})))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, translate.NewError(translate.CodeNotFound, "no route "+strconv.Quote(r.URL.Path),
			"the API is POST /v1/notifications, POST /v1/notifications/batch, GET /v1/webpush/vapid-public-key, GET /healthz, GET /readyz, GET /metrics"))
	})
	return s.recoverPanics(mux)
}

// allow answers 405 with an Allow header to the methods a route does not take.
func allow(methods []string, h http.Handler) http.Handler {
	list := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range methods {
			if r.Method == m {
				h.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Allow", list)
		writeError(w, translate.NewError(translate.CodeMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path,
			"use "+list+" on "+r.URL.Path))
	})
}

// panicWriter remembers whether an answer was started, so that a panic
// can still be answered when none was.
type panicWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *panicWriter) WriteHeader(code int) { w.wrote = true; w.ResponseWriter.WriteHeader(code) }
func (w *panicWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (read deadlines).
func (w *panicWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recoverPanics answers a panic in a handler with internal_error (logged
// with its stack, counted) instead of a cut connection.
func (s *Server) recoverPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := &panicWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			e := s.panicked(v, r.Method+" "+r.URL.Path)
			if !pw.wrote {
				writeError(pw, e)
			}
		}()
		h.ServeHTTP(pw, r)
	})
}

// panicked logs and counts a recovered panic and returns its answer.
func (s *Server) panicked(v any, where string) *translate.Error {
	s.log.Error("panic in a request; answered internal_error", "where", where, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	s.m.notifications.WithLabelValues("unknown", string(translate.CodeInternalError)).Inc()
	return translate.NewError(translate.CodeInternalError, "pushproxy failed while handling this request (it may or may not have been sent)", "")
}

type errorBody struct {
	Error *translate.Error `json:"error"`
}

// resultBufs holds the buffers writeJSON appends a Result's answer to
// (about 200 bytes; one a request, returned unless it grew past 4 KiB).
var resultBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeJSON answers v as JSON (encoding/json, HTML escaping off). A
// *translate.Result, the answer of every delivered notification, is
// written by translate.AppendResultJSON instead: the same bytes, without
// reflection, in one Write as the encoder does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r, ok := v.(*translate.Result); ok {
		bp := resultBufs.Get().(*[]byte)
		b, ok := translate.AppendResultJSON((*bp)[:0], r)
		if ok {
			_, _ = w.Write(b)
		}
		if cap(b) <= 4<<10 {
			*bp = b[:0]
			resultBufs.Put(bp)
		}
		if ok {
			return
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, e *translate.Error) {
	if e.Hint == "" {
		e.Hint = translate.DefaultHint(e.Code)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status(), errorBody{e})
}

// authorized checks the bearer token against st (constant-time compare)
// when auth_token_file is set.
func authorized(st *state, r *http.Request) bool {
	if st.cfg.AuthTokenFile == "" {
		return true
	}
	want := st.creds.AuthToken
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && len(want) > 0 && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) == 1
}

// unauthorized sets the challenge header and returns the 401 answer.
func unauthorized(w http.ResponseWriter) *translate.Error {
	w.Header().Set("WWW-Authenticate", `Bearer realm="pushproxy"`)
	return translate.NewError(translate.CodeUnauthorized, "missing or wrong bearer token", "send Authorization: Bearer <contents of auth_token_file>")
}

// authed guards a route that is not a notification route (those check the
// token in their prologue). Health, readiness and metrics stay open for
// probes.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !authorized(s.state(), r) {
			writeError(w, unauthorized(w))
			return
		}
		h(w, r)
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// refuse answers a request its prologue refused, counting what is a
// notification that was not sent.
func (s *Server) refuse(w http.ResponseWriter, e *translate.Error) {
	if e.Code == translate.CodeOverloaded || e.Code == translate.CodeInvalidRequest || e.Code == translate.CodePayloadTooLarge {
		s.m.notifications.WithLabelValues("unknown", string(e.Code)).Inc()
	}
	writeError(w, e)
}

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	q, e := s.begin(w, r, func(c *Config) int64 { return c.MaxBodyBytes })
	if e != nil {
		s.refuse(w, e)
		return
	}
	defer q.done()
	n, e := translate.DecodeNotification(q.body)
	if e != nil {
		s.account("unknown", nil, "", e)
		writeError(w, e)
		return
	}
	if !s.acquire() {
		s.m.notifications.WithLabelValues("unknown", string(translate.CodeOverloaded)).Inc()
		writeError(w, overloaded())
		return
	}
	defer s.release()
	if f := s.testHook.Load(); f != nil {
		(*f)(n)
	}
	res, e := s.send(q.ctx, q.st, n)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleBatch(w http.ResponseWriter, r *http.Request) {
	q, e := s.begin(w, r, func(c *Config) int64 { return c.MaxBodyBytes * int64(min(c.MaxBatch, 16)) })
	if e != nil {
		s.refuse(w, e)
		return
	}
	defer q.done()
	// A refused envelope (malformed, or more entries than max_batch) is one
	// request whose notifications were not sent: it is counted once, with
	// its code and platform "unknown", as handleSend counts a notification
	// it could not decode. Its entries are not counted one by one: they
	// were never decoded, and a malformed envelope may not say how many
	// there are.
	entries, e := translate.DecodeBatch(q.body)
	if e == nil && len(entries) > q.st.cfg.MaxBatch {
		e = translate.Invalid("notifications", "has %d entries; the limit (max_batch) is %d", len(entries), q.st.cfg.MaxBatch).
			WithHint("split the batch into requests of at most max_batch entries")
	}
	if e != nil {
		s.account("unknown", nil, "", e)
		writeError(w, e)
		return
	}
	results := make([]any, len(entries))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(batchWorkers, len(entries)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(entries) {
					return
				}
				results[i] = s.batchEntry(q, i, entries[i])
			}
		})
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// batchEntry sends one entry of a batch; a panic fails that entry only
// (a batch worker's panic would otherwise end the process).
func (s *Server) batchEntry(q *request, i int, raw json.RawMessage) (out any) {
	defer func() {
		if v := recover(); v != nil {
			out = errorBody{s.panicked(v, fmt.Sprintf("batch entry %d", i))}
		}
	}()
	n, e := translate.DecodeNotification(raw)
	if e != nil {
		if e.Field != "" {
			e.Field = fmt.Sprintf("notifications[%d].%s", i, e.Field)
		} else {
			e.Field = fmt.Sprintf("notifications[%d]", i)
		}
		s.account("unknown", nil, "", e)
		return errorBody{e}
	}
	if !s.acquireWait(q.ctx) {
		s.m.notifications.WithLabelValues("unknown", string(translate.CodeOverloaded)).Inc()
		e := overloaded()
		e.Message = "no max_in_flight slot came free within the batch's deadline"
		if context.Cause(q.ctx) == errGraceOver {
			e = shuttingDown()
		}
		return errorBody{e}
	}
	defer s.release()
	if f := s.testHook.Load(); f != nil {
		(*f)(n)
	}
	res, e := s.send(q.ctx, q.st, n)
	if e != nil {
		return errorBody{e}
	}
	return res
}
