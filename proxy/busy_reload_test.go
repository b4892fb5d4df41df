package proxy_test

import (
	"crypto/ecdsa"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/proxy"
)

// noise appends a line to a file in dir every 20–50 ms until the test
// ends, the way a log written beside the configuration does (opened,
// appended, closed, so that a helper that deletes the file only makes the
// next write create it again).
func noise(t *testing.T, dir string) {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	path := filepath.Join(dir, "app.log")
	go func() {
		defer close(done)
		timer := time.NewTimer(0)
		defer timer.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-timer.C:
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err == nil {
				_, _ = fmt.Fprintf(f, "%s line %d\n", time.Now().Format(time.RFC3339Nano), i)
				_ = f.Close()
			}
			timer.Reset(time.Duration(20+i*7%31) * time.Millisecond)
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// writeBusyConfig writes the configuration file the server reloads: the
// harness's settings, with the APNs key taken from keyGlob. It is replaced
// by a rename, so a reload never reads half of it.
func writeBusyConfig(t *testing.T, h *harness, path, keyGlob string) {
	t.Helper()
	y := fmt.Sprintf(`listen: %s
request_timeout: 10s
upstream:
  apns_production_url: %s
  apns_development_url: %s
  ca_file: %s
reload: {poll_interval: 0s}
apns:
  - name: default
    key_file: %s
    team_id: %s
    topics: [%s]
    environment: production
`, h.cfg.Listen, h.fake.URL(), h.fake.URL(), h.cfg.Upstream.CAFile, keyGlob, teamID, bundle)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// swapper replaces the APNs key in a key directory one way; it returns
// when the change is complete on disk.
type swapper interface {
	swap(t *testing.T, kid string, k *ecdsa.PrivateKey)
	dir() string
}

// kubeletSwap: the kubelet's ..data symlink sequence (see k8sVolume).
type kubeletSwap struct{ vol *k8sVolume }

func (s *kubeletSwap) dir() string { return s.vol.dir }
func (s *kubeletSwap) swap(t *testing.T, kid string, k *ecdsa.PrivateKey) {
	s.vol.write(map[string][]byte{"AuthKey_" + kid + ".p8": pemOf(t, k)})
}

// plainSwap: a plain directory holding one AuthKey_<KEYID>.p8. The key ID
// comes from the file name and Apple (like the fake) knows one key per key
// ID, so a rotation that keeps notifications flowing gives the new key its
// own name; the old one is removed right after.
type plainSwap struct {
	d        string
	cur      string
	truncate bool
}

func (s *plainSwap) dir() string { return s.d }
func (s *plainSwap) swap(t *testing.T, kid string, k *ecdsa.PrivateKey) {
	next := filepath.Join(s.d, "AuthKey_"+kid+".p8")
	data := pemOf(t, k)
	if s.truncate {
		// Truncate and write in two pieces: WRITE events on the name.
		f, err := os.OpenFile(next, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range [][]byte{data[:len(data)/2], data[len(data)/2:]} {
			if _, err := f.Write(part); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	} else {
		// An editor's save: a temporary name (irrelevant), renamed onto
		// the name that matters.
		tmp := filepath.Join(s.d, ".AuthKey.p8.swp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, next); err != nil {
			t.Fatal(err)
		}
	}
	if s.cur != "" && s.cur != next {
		if err := os.Remove(s.cur); err != nil {
			t.Fatal(err)
		}
	}
	s.cur = next
}

// TestBusyDirectoryReload is the regression test of issue 10: with a
// writer appending to a file every 20–50 ms in every watched directory
// (the configuration's, the key's, the CA file's), a key swapped
// Kubernetes-style, by an editor's rename or by truncate-and-write is in
// use within one second, and no notification fails while notifications
// are sent without a pause. The latency of each swap (from the moment it
// is complete on disk to /readyz showing the new key) is logged.
func TestBusyDirectoryReload(t *testing.T) {
	const swaps = 5
	limit := time.Second
	if raceEnabled {
		limit = 2 * time.Second
	}
	kinds := []string{"kubernetes", "rename", "truncate+write"}
	latencies := map[string][]time.Duration{}
	for ki, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			var sw swapper
			if kind == "kubernetes" {
				sw = &kubeletSwap{vol: newK8sVolume(t)}
			} else {
				sw = &plainSwap{d: t.TempDir(), truncate: kind == "truncate+write"}
			}
			cfgDir := t.TempDir()
			cfgPath := filepath.Join(cfgDir, "config.yaml")
			keyGlob := filepath.Join(sw.dir(), "AuthKey_*.p8")
			h := newHarness(t, harnessOpts{noKeyFile: true, configPath: cfgPath, mutate: func(c *proxy.Config) {
				c.APNs[0].KeyFile = keyGlob
			}})
			h.addSecret(h.key.D.Text(16))
			writeBusyConfig(t, h, cfgPath, keyGlob)
			sw.swap(t, keyID, h.key)
			h.waitFingerprint(creds.PublicFingerprint(&h.key.PublicKey))
			waitFor(t, "the configuration file to be in force", func() bool {
				c, _ := h.get("/readyz").Body["config"].(map[string]any)
				return c != nil && c["last_error"] == nil
			})

			for _, d := range []string{cfgDir, sw.dir(), h.dir} {
				noise(t, d)
			}
			var stop atomic.Bool
			var sent, failed atomic.Int64
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					for !stop.Load() {
						if a := h.post("/v1/notifications", alert(h.token())); a.Status != 200 {
							failed.Add(1)
							t.Errorf("a notification failed during the swaps: %d %s", a.Status, a.Raw)
						}
						sent.Add(1)
					}
				})
			}
			defer func() {
				stop.Store(true)
				wg.Wait()
			}()

			for i := range swaps {
				// Not in step with the writers or the debounce.
				time.Sleep(time.Duration(150+i*37) * time.Millisecond)
				k := genKey(t)
				h.addSecret(k.D.Text(16))
				kid := fmt.Sprintf("BSY%d%06d", ki, i)
				h.fake.AddKey(teamID, kid, &k.PublicKey, bundle) // Apple accepts old and new during a rotation
				want := creds.PublicFingerprint(&k.PublicKey)
				sw.swap(t, kid, k)
				start := time.Now()
				var took time.Duration
				for {
					if fp, state := h.fingerprintNow(); fp == want && state == "ok" {
						took = time.Since(start)
						break
					}
					if time.Since(start) > 5*time.Second {
						t.Fatalf("swap %d: the new key is not in use after %v (the reload starves while the directories are busy)", i, time.Since(start).Round(time.Millisecond))
					}
					time.Sleep(5 * time.Millisecond)
				}
				latencies[kind] = append(latencies[kind], took)
				if took > limit {
					t.Errorf("swap %d: the new key was in use only after %v, want within %v", i, took.Round(time.Millisecond), limit)
				}
				// In use: the next notification is signed with it.
				tok := h.token()
				if a := h.post("/v1/notifications", alert(tok)); a.Status != 200 {
					t.Fatalf("after swap %d: %d %s", i, a.Status, a.Raw)
				}
				for _, r := range h.fake.Requests() {
					if strings.EqualFold(r.DeviceToken, tok) && r.KeyID != kid {
						t.Errorf("after swap %d: signed with key %s, want %s", i, r.KeyID, kid)
					}
				}
			}
			stop.Store(true)
			wg.Wait()
			if n := failed.Load(); n > 0 {
				t.Errorf("%d of %d notifications failed", n, sent.Load())
			}
			t.Logf("%s: %d swaps, %d notifications sent meanwhile", kind, swaps, sent.Load())
		})
	}
	for _, kind := range kinds {
		l := slices.Clone(latencies[kind])
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		t.Logf("swap latency with busy directories, %-14s min %v  median %v  max %v  (%d swaps)", kind+":",
			l[0].Round(time.Millisecond), l[len(l)/2].Round(time.Millisecond), l[len(l)-1].Round(time.Millisecond), len(l))
	}
}
