package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"-c", "0"},
		{"--direct", "--url", "http://127.0.0.1:1"},
		{"--direct", "--batch", "5"},
		{"--token", "nothex"},
		{"--timeout", "0s"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"bench"}, args...), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "-n", "1", "--url", "http://127.0.0.1:1"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "warm-up") {
		t.Errorf("unreachable --url: exit %d, %q", code, errb.String())
	}
}
