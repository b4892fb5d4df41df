package creds_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
)

func TestSkew(t *testing.T) {
	var k creds.Skew
	if _, ok := k.Get(); ok || k.Hint("APNs") != "" {
		t.Fatal("a new Skew knows something")
	}
	upstream := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	date := upstream.Format(http.TimeFormat)
	k.Note(date, upstream.Add(400*time.Millisecond))
	if d, ok := k.Get(); !ok || d != 0 || k.Hint("APNs") != "" {
		t.Fatalf("in step: %v %v", d, ok)
	}
	// The same Date value is not parsed again.
	k.Note(date, upstream.Add(5*time.Minute))
	if d, _ := k.Get(); d != 0 {
		t.Fatalf("a repeated Date was re-read: %v", d)
	}
	later := upstream.Add(time.Second)
	k.Note(later.Format(http.TimeFormat), later.Add(-2*time.Hour))
	if d, _ := k.Get(); d != -2*time.Hour || !strings.Contains(k.Hint("APNs"), "-2h0m0s off APNs's") {
		t.Fatalf("behind: %v %q", d, k.Hint("APNs"))
	}
	k.Note("yesterday", time.Now())
	if d, _ := k.Get(); d != -2*time.Hour {
		t.Fatal("a bad Date changed the skew")
	}
}
