package resend

import (
	"fmt"
	"testing"
	"time"
)

// clock is a Pacer clock moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestPacerRests(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	p := NewPacer(2)
	p.now = c.now
	var rests []time.Duration
	p.OnRest = func(_ string, rest time.Duration, _ int) { rests = append(rests, rest) }
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
	if want := []time.Duration{100, 200, 400, 800, 1000, 1000}; len(rests) != len(want) || rests[0] != 100*time.Millisecond || rests[5] != time.Second {
		t.Errorf("OnRest saw %v", rests)
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
	p := NewPacer(1)
	p.now = c.now
	for i := range 10 * maxHosts {
		c.t = c.t.Add(time.Millisecond)
		p.strike(fmt.Sprintf("h%d.example:443", i))
	}
	if len(p.hosts) != maxHosts || int(p.n.Load()) != maxHosts {
		t.Errorf("%d hosts held (n %d), want %d", len(p.hosts), p.n.Load(), maxHosts)
	}
	// The newest are kept.
	if !p.resting(fmt.Sprintf("h%d.example:443", 10*maxHosts-1)) {
		t.Error("the newest host was forgotten")
	}
}
