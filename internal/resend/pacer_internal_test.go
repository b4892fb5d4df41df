package resend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// clock is a Pacer clock moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestPacerRests(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	var logs bytes.Buffer
	p := NewPacer(Options{Attempts: 2, Server: "push service", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	p.now = c.now
	const addr = "push.example:443"
	tr := &Tracker{}
	for i := range 2 {
		if err := p.admit(tr, addr); err != nil {
			t.Fatalf("dial %d refused: %v", i+1, err)
		}
	}
	if err := p.admit(tr, addr); err != ErrExhausted {
		t.Fatalf("third dial: %v, want ErrExhausted", err)
	}
	// Resting 100 ms: another request is refused without dialling; other
	// hosts are not affected.
	other := &Tracker{}
	if err := p.admit(other, addr); err != ErrExhausted || other.Dials() != 0 {
		t.Errorf("while resting: %v, %d dials", err, other.Dials())
	}
	if err := p.admit(other, "other.example:443"); err != nil {
		t.Errorf("another host: %v", err)
	}
	// A request exhausted during the rest does not lengthen it.
	p.strike(addr)
	c.t = c.t.Add(100 * time.Millisecond)
	if err := p.admit(&Tracker{}, addr); err != nil {
		t.Errorf("after 100 ms: %v", err)
	}
	// Refused again: 200 ms, then 400, 800, and never over 1 s.
	for _, want := range []time.Duration{200, 400, 800, 1000, 1000} {
		p.strike(addr)
		c.t = c.t.Add(want*time.Millisecond - time.Millisecond)
		if !p.resting(addr) {
			t.Errorf("rest shorter than %d ms", want)
		}
		c.t = c.t.Add(time.Millisecond)
		if p.resting(addr) {
			t.Errorf("rest longer than %d ms", want)
		}
	}
	// One warning per rest, naming the host and the rest.
	var rests []time.Duration
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Msg  string        `json:"msg"`
			Host string        `json:"host"`
			For  time.Duration `json:"for"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Host != addr ||
			rec.Msg != "push service refuses every new connection unprocessed; leaving it alone" {
			t.Fatalf("log line %q", line)
		}
		rests = append(rests, rec.For)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(rests, want) {
		t.Errorf("warned of rests %v, want %v", rests, want)
	}
	// An answer ends the rest and forgets the host.
	p.strike(addr)
	p.noteAnswer(addr)
	if p.resting(addr) || len(p.hosts) != 0 || p.n.Load() != 0 {
		t.Errorf("after an answer: resting %v, %d hosts", p.resting(addr), len(p.hosts))
	}
}

func TestPacerBounded(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	var rests int
	p := NewPacer(Options{Attempts: 1, OnRest: func() { rests++ }})
	p.now = c.now
	for i := range 10 * maxHosts {
		c.t = c.t.Add(time.Millisecond)
		p.strike(fmt.Sprintf("h%d.example:443", i))
	}
	if len(p.hosts) != maxHosts || int(p.n.Load()) != maxHosts {
		t.Errorf("%d hosts held (n %d), want %d", len(p.hosts), p.n.Load(), maxHosts)
	}
	if rests != 10*maxHosts {
		t.Errorf("OnRest called %d times for %d rests", rests, 10*maxHosts)
	}
	// The newest are kept.
	if !p.resting(fmt.Sprintf("h%d.example:443", 10*maxHosts-1)) {
		t.Error("the newest host was forgotten")
	}
}
