package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/proxy"
)

// What a run talks to: the self-contained setup (a fake APNs, or a fake FCM, and pushproxy in process).

// runEnv is what one run talks to.
type runEnv struct {
	base   string           // pushproxy's base URL ("" in direct mode)
	fake   *fakeapns.Server // nil with --url and --fake
	key    *ecdsa.PrivateKey
	bundle string
	close  func() error

	// The fake APNs the direct client drives.
	fakeURL       string
	fakeRoots     *x509.CertPool
	keyID, teamID string
}

// startSelfContained starts a fake APNs and, unless direct, an in-process
// pushproxy in front of it, as proxy/harness_test.go does. close stops both
// and removes the temporary directory.
func startSelfContained(f Options) (_ *runEnv, err error) {
	env := &runEnv{bundle: benchBundle}
	if f.Topic != "" {
		env.bundle = f.Topic
	}
	var cleanups []func() error
	env.close = func() error {
		var errs []error
		for _, c := range slices.Backward(cleanups) {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = env.close()
		}
	}()

	fake, err := fakeapns.New(fakeapns.Options{})
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, fake.Close)
	env.fake = fake
	if env.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	fake.AddKey(benchTeamID, benchKeyID, &env.key.PublicKey, env.bundle)
	env.fakeURL, env.fakeRoots, env.keyID, env.teamID = fake.URL(), fake.CertPool(), benchKeyID, benchTeamID
	if f.Direct {
		return env, nil
	}

	dir, err := os.MkdirTemp("", "pushproxy-bench-")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() error { return os.RemoveAll(dir) })
	p8, err := creds.EncodeP8(env.key)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, "AuthKey_"+benchKeyID+".p8")
	if err := os.WriteFile(keyPath, p8, 0o600); err != nil {
		return nil, err
	}
	caPEM := fake.CAPEM()
	var fcmCfg []proxy.FCMConfig
	fcmURL := ""
	if f.FCM {
		var extra []byte
		if fcmCfg, fcmURL, extra, err = startFakeFCM(dir, &cleanups); err != nil {
			return nil, err
		}
		caPEM = append(caPEM, extra...)
	}
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, caPEM, 0o600); err != nil {
		return nil, err
	}

	cfg := proxy.Defaults()
	cfg.Listen = "127.0.0.1:0"
	cfg.RequestTimeout = f.Timeout
	// Room for every request the generator can have in flight, so that the
	// run measures throughput, not the overloaded answer: in batch mode each
	// of the c requests sends up to 64 entries at once.
	inFlight := f.C
	if f.Batch > 0 {
		inFlight = f.C * min(f.Batch, 64)
	}
	cfg.MaxInFlight = max(cfg.MaxInFlight, inFlight)
	cfg.MaxBatch = max(cfg.MaxBatch, f.Batch)
	cfg.APNs = []proxy.APNsConfig{{Name: "default", KeyFile: keyPath, TeamID: benchTeamID, Topics: []string{env.bundle}, Environment: "production"}}
	cfg.Upstream.APNsProductionURL = fake.URL()
	cfg.Upstream.APNsDevelopmentURL = fake.URL()
	cfg.Upstream.CAFile = caPath
	if f.FCM {
		cfg.FCM, cfg.Upstream.FCMURL = fcmCfg, fcmURL
	}
	cfg.Reload.PollInterval = 0
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	srv, err := proxy.New(&cfg, proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	ln, err := proxy.Listen(cfg.Listen)
	if err != nil {
		srv.Close() // its FCM token source runs until closed
		return nil, err
	}
	env.base = "http://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	cleanups = append(cleanups, func() error {
		cancel()
		return <-done
	})
	return env, nil
}

// startFakeFCM starts a fake FCM with a throwaway service account (its
// file written in dir) for the self-contained setup: the fcm entries,
// fcm_url and the fake's CA to trust. Its stop joins cleanups.
func startFakeFCM(dir string, cleanups *[]func() error) ([]proxy.FCMConfig, string, []byte, error) {
	const email, keyID, project = "bench@pushproxy-bench.iam.gserviceaccount.com", "benchkey0001", "pushproxy-bench"
	fake, err := fakefcm.New(fakefcm.Options{MaxRecords: 1000})
	if err != nil {
		return nil, "", nil, err
	}
	*cleanups = append(*cleanups, fake.Close)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, "", nil, err
	}
	fake.AddServiceAccount(email, keyID, &key.PublicKey, project)
	data, err := creds.EncodeServiceAccount(key, email, keyID, project, fake.TokenURL())
	if err != nil {
		return nil, "", nil, err
	}
	path := filepath.Join(dir, "service-account.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, "", nil, err
	}
	return []proxy.FCMConfig{{Name: "default", ServiceAccountFile: path}}, fake.URL(), fake.CAPEM(), nil
}
