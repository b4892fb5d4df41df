package main

import (
	"fmt"
	"io"
	"time"

	"github.com/pushproxy/pushproxy/internal/diagnose"
)

const checkUsage = `Usage: pushproxy check --config FILE [--json]

Offline diagnosis of a configuration and every credential file it names
(internal/diagnose): key files resolved and parsed as the server does, key
and team IDs, fingerprints, a freshly signed token shown decoded (never the
token), FCM service-account files (google-services.json, a legacy AAAA…
server key or an authorized_user file given instead, a non-RSA key, a
project_id mismatch, a token_uri that is not https), file modes, clock
sanity and the usual traps, each with a one-line fix. Nothing secret is
printed.

Exit status: 0 when nothing is wrong (warnings are printed but do not fail),
1 when a problem was found, 2 on a usage error.

Flags:
`

// runCheck is the check subcommand.
func runCheck(args []string, stdout, stderr io.Writer) int {
	return runCheckEnv(args, stdout, stderr, diagnose.Env{Now: time.Now, Built: diagnose.BuildTime()})
}

func runCheckEnv(args []string, stdout, stderr io.Writer, env diagnose.Env) int {
	fs := newFlagSet("check", checkUsage, stderr)
	configPath := fs.String("config", "", "configuration file to check (required)")
	asJSON := fs.Bool("json", false, "print the findings as JSON")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "pushproxy check: --config FILE is required")
		fs.Usage()
		return 2
	}
	rep := diagnose.Run(*configPath, env)
	if *asJSON {
		if err := rep.WriteJSON(stdout); err != nil {
			fmt.Fprintf(stderr, "pushproxy check: %v\n", err)
			return 1
		}
	} else {
		rep.Print(stdout)
	}
	if rep.Errors > 0 {
		return 1
	}
	return 0
}
