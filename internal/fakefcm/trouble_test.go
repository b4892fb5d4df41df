package fakefcm_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/internal/h2trouble"
)

// Options.Trouble takes effect: with a graceful GOAWAY after every second
// stream, the token fetch and the sends all succeed, two streams per
// connection; with DrainNew a send fails and nothing is recorded, until
// SetTrouble ends it.
func TestTrouble(t *testing.T) {
	t.Parallel()
	t.Run("GoAwayAfter", func(t *testing.T) {
		s, c := start(t, fakefcm.Options{Trouble: h2trouble.Trouble{GoAwayAfter: 2}})
		tok := accessToken(t, s, c) // stream 1 of connection 1
		for range 5 {
			if status, e, _ := send(t, c, s, tok, project, msg("")); status != 200 {
				t.Fatalf("send: %d %+v", status, e)
			}
		}
		var conns []int
		for _, r := range s.Requests() {
			if r.Proto != "HTTP/2.0" {
				t.Errorf("%s", r.Proto)
			}
			conns = append(conns, r.Conn)
		}
		// Each GOAWAY is on the wire before the second stream's answer,
		// so the client takes a new connection for the next request.
		if want := []int{1, 2, 2, 3, 3}; !slices.Equal(conns, want) || s.Conns() != 3 {
			t.Errorf("connections of the sends %v (of %d); want %v", conns, s.Conns(), want)
		}
	})
	t.Run("DrainNew", func(t *testing.T) {
		s, c := start(t, fakefcm.Options{Trouble: h2trouble.Trouble{DrainNew: true}})
		// A body without GetBody: net/http's client does not send it
		// again over new connections (it would, as fast as it can
		// dial, until the deadline).
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/v1/projects/"+project+"/messages:send",
			io.NopCloser(strings.NewReader(msg(""))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer ya29.any")
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("drained: %s", resp.Status)
		}
		if n := len(s.Requests()); n != 0 || s.Conns() == 0 {
			t.Errorf("%d sends recorded over %d connections; want none over some", n, s.Conns())
		}
		s.SetTrouble(h2trouble.Trouble{})
		tok := accessToken(t, s, c)
		if status, e, _ := send(t, c, s, tok, project, msg("")); status != 200 {
			t.Errorf("after SetTrouble: %d %+v", status, e)
		}
		if n := len(s.Requests()); n != 1 {
			t.Errorf("%d sends recorded, want 1", n)
		}
	})
}
