package proxy_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkReloadLatency measures, at the default debounce (200 ms), the
// time from a key file swap (a rename over the file, as editors and
// Kubernetes do) to the first notification signed with the new key: each
// op rotates the key and sends until the fake APNs sees the new one.
//
//	go test -run='^$' -bench=ReloadLatency -benchtime=10x ./proxy/
func BenchmarkReloadLatency(b *testing.B) {
	h := newHarness(b, harnessOpts{})
	if h.cfg.Reload.Debounce != 200*time.Millisecond {
		b.Fatalf("debounce %v is not the default", h.cfg.Reload.Debounce)
	}
	h.mustSend()
	var worst time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := genKey(b)
		h.addSecret(k.D.Text(16))
		tmp := filepath.Join(h.dir, "new.p8")
		writeKey(b, tmp, k)
		h.fake.AddKey(teamID, keyID, &k.PublicKey, bundle)
		start := time.Now()
		if err := os.Rename(tmp, h.keyPath); err != nil {
			b.Fatal(err)
		}
		for {
			// The fake now accepts only the new key: the first 200 is the
			// first request signed with it.
			if a := h.post("/v1/notifications", alert(h.token())); a.Status == 200 {
				break
			}
			if time.Since(start) > 5*time.Second {
				b.Fatal("the new key was not picked up within 5 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Milliseconds()), "worst-ms")
}
