package fakepush

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/internal/h2trouble"
)

// Options.Trouble takes effect: with a graceful GOAWAY after every second
// stream, sequential pushes are all delivered, two per connection; with
// DrainNew a push fails and nothing is recorded, until SetTrouble ends it.
func TestFakeTrouble(t *testing.T) {
	t.Run("GoAwayAfter", func(t *testing.T) {
		f := newFixtureOpts(t, Options{Trouble: h2trouble.Trouble{GoAwayAfter: 2}})
		sub, _ := f.s.Subscribe(SubscribeOptions{VAPIDKey: f.key.PublicB64})
		for range 6 {
			if resp := f.post(sub, []byte("x"), nil); resp.StatusCode != http.StatusCreated || resp.ProtoMajor != 2 {
				t.Fatalf("%s %d %s", resp.Proto, resp.StatusCode, f.answerBody)
			}
		}
		var conns []int
		for _, r := range f.s.Requests() {
			conns = append(conns, r.Conn)
		}
		// Each GOAWAY is on the wire before the second stream's answer,
		// so the client takes a new connection for the next push.
		if want := []int{1, 1, 2, 2, 3, 3}; !slices.Equal(conns, want) || f.s.Conns() != 3 {
			t.Errorf("connections of the pushes %v (of %d); want %v", conns, f.s.Conns(), want)
		}
	})
	t.Run("DrainNew", func(t *testing.T) {
		f := newFixtureOpts(t, Options{Trouble: h2trouble.Trouble{DrainNew: true}})
		sub, _ := f.s.Subscribe(SubscribeOptions{VAPIDKey: f.key.PublicB64})
		// A body without GetBody: net/http's client does not send it
		// again over new connections (it would, as fast as it can
		// dial, until the deadline).
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", sub.Endpoint, io.NopCloser(strings.NewReader("x")))
		auth, _ := f.signer.Authorization(sub.Endpoint)
		req.Header.Set("Authorization", auth)
		req.Header.Set("TTL", "0")
		req.Header.Set("Content-Encoding", "aes128gcm")
		if resp, err := f.client.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("drained: %s", resp.Status)
		}
		if n := len(f.s.Requests()); n != 0 || f.s.Conns() == 0 {
			t.Errorf("%d requests recorded over %d connections; want none over some", n, f.s.Conns())
		}
		f.s.SetTrouble(h2trouble.Trouble{})
		if resp := f.post(sub, []byte("x"), nil); resp.StatusCode != http.StatusCreated {
			t.Errorf("after SetTrouble: %d %s", resp.StatusCode, f.answerBody)
		}
		if n := len(f.s.Requests()); n != 1 {
			t.Errorf("%d requests recorded, want 1", n)
		}
	})
}
