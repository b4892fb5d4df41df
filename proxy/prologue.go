package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pushproxy/pushproxy/translate"
)

// request is a notification request past its prologue: the state it runs
// under, its deadline and its body.
type request struct {
	st     *state
	ctx    context.Context
	cancel context.CancelFunc
	body   []byte
	held   int64 // request bytes taken from the budget
	s      *Server
}

// done releases what the prologue took.
func (q *request) done() {
	q.cancel()
	q.s.bytes.give(q.held)
}

// begin is the prologue shared by the notification routes, in this order:
// refuse during shutdown; load the state once; check the bearer token and
// the content type; set the deadline; admit the body's bytes against
// max_body_bytes_in_flight (at once, overloaded beyond it); read the body
// under the request's deadline. A notification slot is taken only after
// this, so a client that never finishes its body holds no slot.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, limit func(*Config) int64) (*request, *translate.Error) {
	if s.shuttingDown.Load() {
		return nil, shuttingDown()
	}
	st := s.state()
	if !authorized(st, r) {
		return nil, unauthorized(w)
	}
	if e := checkContentType(r.Header.Get("Content-Type")); e != nil {
		return nil, e
	}
	d, e := requestTimeout(r, st.cfg.RequestTimeout)
	if e != nil {
		return nil, e
	}
	max := limit(st.cfg)
	if r.ContentLength > max {
		return nil, tooLarge(max)
	}
	q := &request{st: st, s: s}
	q.ctx, q.cancel = context.WithTimeout(r.Context(), d)
	body, e := s.readBody(w, r, q, max)
	if e != nil {
		q.done()
		return nil, e
	}
	q.body = body
	return q, nil
}

func tooLarge(max int64) *translate.Error {
	return translate.NewError(translate.CodePayloadTooLarge, fmt.Sprintf("the request body is over %d bytes", max), "send smaller requests, or split a batch (max_body_bytes)")
}

// checkContentType accepts application/json (charset utf-8 if one is
// named), or no Content-Type at all.
func checkContentType(ct string) *translate.Error {
	if ct == "" || ct == "application/json" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return translate.Invalid("Content-Type", "must be application/json, not %q", ct).WithHint("send the header Content-Type: application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return translate.Invalid("Content-Type", "charset must be utf-8, not %q", cs).WithHint("send JSON as UTF-8 with Content-Type: application/json")
	}
	return nil
}

// requestTimeout is X-Request-Timeout (decimal seconds, from
// MinRequestTimeout to MaxRequestTimeout, larger values capped) or the
// configured default.
func requestTimeout(r *http.Request, def time.Duration) (time.Duration, *translate.Error) {
	v := r.Header.Get("X-Request-Timeout")
	if v == "" {
		return def, nil
	}
	v = strings.TrimSpace(v)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !decimalSeconds(v) || f < MinRequestTimeout.Seconds() {
		return 0, translate.Invalid("X-Request-Timeout", "must be a number of seconds from %g, such as 2.5, not %q", MinRequestTimeout.Seconds(), v).
			WithHint("send the seconds the caller can wait, retries included (at most " + MaxRequestTimeout.String() + "), or leave the header out for request_timeout")
	}
	if f > MaxRequestTimeout.Seconds() {
		return MaxRequestTimeout, nil
	}
	return time.Duration(f * float64(time.Second)), nil
}

// decimalSeconds says v is a plain decimal number (digits, at most one
// point): what X-Request-Timeout takes, not Go's float syntax (Inf, NaN,
// 0x1p3, 1_0, 1e3).
func decimalSeconds(v string) bool {
	digits, point := 0, false
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !point:
			point = true
		default:
			return false
		}
	}
	return digits > 0
}

// budgetChunk is how many bytes a body of unknown length takes from the
// budget at a time.
const budgetChunk = 64 << 10

// readBody reads the body under the request's deadline, taking its bytes
// from the budget first: all at once when the length is declared, chunk
// by chunk as they arrive when it is not.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, q *request, max int64) ([]byte, *translate.Error) {
	if r.ContentLength >= 0 {
		if !s.bytes.take(r.ContentLength) {
			return nil, bodyOverloaded()
		}
		q.held = r.ContentLength
	}
	// The body must arrive within the request's deadline. Once it is read
	// the connection gets no deadline again (keep-alive); when reading
	// fails, the deadline is left in the past, so that net/http does not
	// wait for the rest of an unread body before answering.
	rc := http.NewResponseController(w)
	if dl, ok := q.ctx.Deadline(); ok {
		_ = rc.SetReadDeadline(dl)
	}
	ok := false
	defer func() {
		if ok {
			_ = rc.SetReadDeadline(time.Time{})
		} else {
			_ = rc.SetReadDeadline(time.Now())
		}
	}()
	var src io.Reader = http.MaxBytesReader(w, r.Body, max)
	if r.ContentLength < 0 {
		src = &budgetReader{r: src, b: s.bytes, q: q}
	}
	size := r.ContentLength
	if size < 0 {
		size = 512
	}
	buf := make([]byte, 0, size+1)
	for {
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			ok = true
			return buf, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				return nil, tooLarge(max)
			case errors.Is(err, errBudget):
				return nil, bodyOverloaded()
			case errors.Is(err, os.ErrDeadlineExceeded):
				return nil, translate.Invalid("", "the request body did not arrive within the request's deadline").
					WithHint("send the whole body at once; a body must arrive within X-Request-Timeout (or request_timeout)")
			}
			return nil, translate.Invalid("", "reading the request body: %v", err)
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// errBudget ends a body that does not fit in max_body_bytes_in_flight.
var errBudget = errors.New("max_body_bytes_in_flight reached")

// budgetReader takes a body of undeclared length from the byte budget as
// it arrives.
type budgetReader struct {
	r io.Reader
	b *byteBudget
	q *request
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if len(p) > budgetChunk {
		p = p[:budgetChunk]
	}
	if !br.b.take(int64(len(p))) {
		return 0, errBudget
	}
	n, err := br.r.Read(p)
	br.b.give(int64(len(p) - n))
	br.q.held += int64(n)
	return n, err
}

func bodyOverloaded() *translate.Error {
	e := translate.NewError(translate.CodeOverloaded, "pushproxy holds as many request bytes as max_body_bytes_in_flight allows",
		"retry after a moment, with smaller batches if you can; raise max_body_bytes_in_flight or run more replicas if this persists")
	e.RetryAfter = 1
	return e
}

// byteBudget bounds the request bytes in memory.
type byteBudget struct {
	mu        sync.Mutex
	used, max int64
}

func newByteBudget(max int64) *byteBudget { return &byteBudget{max: max} }

func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

// inUse is the bytes held now.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

func (s *Server) acquire() bool {
	select {
	case s.sem <- struct{}{}:
		s.m.inFlight.Inc()
		return true
	default:
		return false
	}
}

// acquireWait waits for a slot until ctx ends (batch entries: a batch
// queues for slots within its deadline instead of failing entry by entry).
func (s *Server) acquireWait(ctx context.Context) bool {
	select {
	case s.sem <- struct{}{}:
		s.m.inFlight.Inc()
		return true
	default:
	}
	select {
	case s.sem <- struct{}{}:
		s.m.inFlight.Inc()
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) release() {
	<-s.sem
	s.m.inFlight.Dec()
}

func overloaded() *translate.Error {
	e := translate.NewError(translate.CodeOverloaded, "pushproxy is at its max_in_flight limit", "retry after a moment; raise max_in_flight or run more replicas if this persists")
	e.RetryAfter = 1
	return e
}

func shuttingDown() *translate.Error {
	e := translate.NewError(translate.CodeOverloaded, "pushproxy is shutting down", "send to another replica, or retry once it has restarted")
	e.RetryAfter = 1
	return e
}
