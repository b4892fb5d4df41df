package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// newFlagSet is a subcommand's flag set: errors and usage go to stderr,
// and the usage is the subcommand's description (usage, ending with its
// "Flags:" heading) followed by its flags.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses a subcommand's flags the way Go users expect: -h,
// -help or --help prints the description and flags on standard output and
// exits 0; any other parse error, or an argument that is not a flag (no
// subcommand takes one), is printed on the flag set's output with the
// usage and exits 2. done reports whether the subcommand must return code
// at once.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (code int, done bool) {
	usage := fs.Usage
	fs.Usage = func() {} // printed below, on the right stream
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case err == nil && fs.NArg() == 0:
		return 0, false
	case err == nil: // no subcommand takes arguments
		fmt.Fprintf(fs.Output(), "pushproxy %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
	case errors.Is(err, flag.ErrHelp):
		stderr := fs.Output()
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return 0, true
	}
	fs.Usage()
	return 2, true
}
