package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

func TestDemoFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "0.0.0.0:8570"},
		{"--listen", "[::1]:8570"},
		{"--listen", "192.168.1.2:8570"},
		{"--listen", "127.0.0.1"},
		{"--apns-port", "-1"},
		{"--push-port", "70000"},
		{"--fcm-port", "-1"},
		{"--log-level", "loud"},
		{"extra"},
		{"--nope"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"demo"}, args...), &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	// An address in use: exit 1, naming the flag.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errb bytes.Buffer
	code := runDemo(context.Background(), []string{"--listen", ln.Addr().String(), "--apns-port", "0", "--push-port", "0", "--fcm-port", "0"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "in use") || !strings.Contains(errb.String(), "--listen") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	errb.Reset()
	code = runDemo(context.Background(), []string{"--listen", "127.0.0.1:0", "--apns-port", port, "--push-port", "0", "--fcm-port", "0"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "--apns-port") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	errb.Reset()
	code = runDemo(context.Background(), []string{"--listen", "127.0.0.1:0", "--apns-port", "0", "--push-port", "0", "--fcm-port", port}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "in use") || !strings.Contains(errb.String(), "--fcm-port") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	if out.Len() != 0 {
		t.Errorf("printed lines although it did not start:\n%s", out.String())
	}
}

// TestDemoCommandStops: with its context ended at once, the command starts
// everything, prints the lines, stops, says so and exits 0.
func TestDemoCommandStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := runDemo(ctx, []string{"--listen", "127.0.0.1:0", "--apns-port", "0", "--push-port", "0", "--fcm-port", "0", "--log-level", "warn"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "curl -s 127.0.0.1:") || !strings.Contains(errb.String(), "stopped; the throwaway keys are deleted") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
}
