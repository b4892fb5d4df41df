package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/pushproxy/pushproxy/proxy"
)

// defaultConfig is the configuration file serve reads when --config is not
// given.
const defaultConfig = "config.yaml"

const serveUsage = `Usage: pushproxy [serve] [--config FILE]

Runs the proxy: the local API on the configuration's listen address, the
credential files watched and reloaded when they change (SIGHUP reloads the
configuration and every file at once). SIGTERM or SIGINT drains in-flight
requests and exits 0.

Without --config, it reads ` + defaultConfig + ` in the current directory.
config.example.yaml documents every option; pushproxy demo runs it with
throwaway keys in front of built-in fakes, with no configuration at all.

Flags:
`

func serve(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", serveUsage, stderr)
	configPath := fs.String("config", defaultConfig, "configuration `file`")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	if _, err := os.Stat(*configPath); !explicit && errors.Is(err, os.ErrNotExist) {
		fmt.Fprint(stderr, noConfigMessage())
		return 2
	}
	tuneGC() // GOGC 400 and a 64 MiB soft limit unless set in the environment: gc.go
	cfg, err := proxy.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy: %v\n", err)
		return 1
	}
	log, level := newLoggerLevel(cfg.Log, stderr)
	srv, err := proxy.New(cfg, proxy.Options{Logger: log, LogLevel: level, ConfigPath: *configPath})
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 1
	}
	ln, err := proxy.Listen(cfg.Listen)
	if err != nil {
		log.Error("cannot listen", "error", err.Error())
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the configuration and credentials")
				srv.TriggerReload("SIGHUP")
			}
		}
	}()
	if err := srv.Serve(ctx, ln); err != nil {
		log.Error("stopped with an error", "error", err.Error())
		return 1
	}
	log.Info("stopped")
	return 0
}

// noConfigMessage is what bare pushproxy says when there is no
// configuration file where it looks by default.
func noConfigMessage() string {
	where := defaultConfig
	if wd, err := os.Getwd(); err == nil {
		where = filepath.Join(wd, defaultConfig)
	}
	return "pushproxy: no configuration file: " + where + " does not exist.\n" +
		"  pushproxy --config FILE   run the proxy with FILE (config.example.yaml documents every option)\n" +
		"  pushproxy demo            try it now: throwaway keys, built-in fake APNs and Web Push, curl lines to paste\n" +
		"  pushproxy --help          every subcommand\n"
}
