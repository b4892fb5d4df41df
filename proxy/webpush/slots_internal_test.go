package webpush

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestHostSlotsDoNotAccumulate: per-host slots exist only while used, so
// endpoints on ever-new hosts do not grow the map; a slot is still
// exclusive while a waiter holds the entry.
func TestHostSlotsDoNotAccumulate(t *testing.T) {
	s := New(Options{MaxPerHost: 1})
	defer s.Close()
	ctx := context.Background()
	for i := range 1000 {
		release, err := s.slot(ctx, fmt.Sprintf("h%d.notify.windows.com", i))
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	if n := s.hostsInUse(); n != 0 {
		t.Fatalf("%d host entries left after every slot was released", n)
	}
	release, _ := s.slot(ctx, "a.example")
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.slot(wctx, "a.example"); err == nil {
		t.Fatal("a second slot of a one-slot host was granted")
	}
	if n := s.hostsInUse(); n != 1 {
		t.Fatalf("%d entries while one slot is held", n)
	}
	got := make(chan func())
	go func() {
		r, err := s.slot(ctx, "a.example")
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	release()
	r := <-got
	r()
	if n := s.hostsInUse(); n != 0 {
		t.Fatalf("%d entries after the waiter released", n)
	}
}
