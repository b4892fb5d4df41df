package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// errGraceOver is the cause with which the requests still running when
// shutdown_grace ends are cut: they are answered, not dropped.
var errGraceOver = errors.New("pushproxy is shutting down and its shutdown_grace ran out")

// answerWindow is how long the requests cut at the end of shutdown_grace
// get to write their answers before the connections are closed.
const answerWindow = 2 * time.Second

// Listen opens the configured address: host:port, or unix:///path.
func Listen(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix://"); ok {
		_ = os.Remove(path) // a stale socket from a previous run
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// Serve answers on ln until ctx ends, then fails /readyz at once, stops
// accepting, lets in-flight notifications finish within shutdown_grace,
// and returns.
//
// Requests still running when shutdown_grace ends are cut and answered
// (upstream_unavailable, saying whether the notification may have been
// delivered) within a further answerWindow; Serve then returns nil, so the
// process exits 0. It returns an error (exit 1) only if some connection
// could not be answered even then.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	base, cut := context.WithCancelCause(context.Background())
	defer cut(nil)
	hs := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: maxHeaderBytes,
		BaseContext:    func(net.Listener) context.Context { return base },
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	s.watcher.Open() // watching before the first request is answered
	wg.Go(func() { s.watcher.Run(bg) })
	defer func() {
		stopBG()
		wg.Wait()
		s.Service.Close()
	}()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("pushproxy listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	s.shuttingDown.Store(true)
	s.log.Info("shutting down", "grace", s.boot.ShutdownGrace.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.boot.ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		inFlight := len(s.sem)
		s.log.Warn("shutdown_grace ran out; answering the requests still running", "grace", s.boot.ShutdownGrace.String(), "in_flight", inFlight)
		cut(errGraceOver)
		actx, cancel := context.WithTimeout(context.Background(), answerWindow)
		defer cancel()
		err = hs.Shutdown(actx)
	}
	if err != nil {
		_ = hs.Close()
		<-errc
		return fmt.Errorf("connections still open %s after shutdown_grace (%s) ran out: %w", answerWindow, s.boot.ShutdownGrace, err)
	}
	<-errc
	return nil
}
