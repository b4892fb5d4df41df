package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pushproxy/pushproxy/creds"
)

const vapidKeysUsage = `Usage: pushproxy vapid-keys [--out FILE [--force]]

Generates a VAPID key pair for Web Push in the web-push CLI's JSON format
({"publicKey": …, "privateKey": …}, unpadded base64url), on standard output
or into FILE (mode 0600, written whole). An existing FILE is replaced only
with --force: every subscription made with the old key fails until the
browser resubscribes.

Flags:
`

// vapidKeys generates a VAPID key pair in the web-push CLI's JSON format,
// on standard output or into --out. A key file is what every subscription
// made with it depends on, so an existing one is replaced only with
// --force. The file is written whole (a temporary file renamed into place,
// so a watcher never reads half a key) with mode 0600 (it holds the
// private key).
func vapidKeys(args []string, stdout, stderr io.Writer) int {
	flags := newFlagSet("vapid-keys", vapidKeysUsage, stderr)
	out := flags.String("out", "", "write the key pair to this file (mode 0600) instead of standard output")
	force := flags.Bool("force", false, "with --out: replace the file if it exists (subscriptions made with the old key stop working unless it stays configured under another file)")
	if code, done := parseFlags(flags, args, stdout); done {
		return code
	}
	if *force && *out == "" {
		fmt.Fprintln(stderr, "pushproxy vapid-keys: --force needs --out FILE")
		return 2
	}
	if *out != "" && !*force {
		if _, err := os.Lstat(*out); err == nil {
			fmt.Fprintln(stderr, existsMessage(*out))
			return 1
		}
	}
	data, err := creds.GenerateVAPIDKeyJSON()
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy vapid-keys: generating a key pair: %v\n", err)
		return 1
	}
	if *out == "" {
		fmt.Fprint(stdout, string(data))
		return 0
	}
	k, err := creds.ParseVAPIDKey(data)
	if err != nil {
		fmt.Fprintf(stderr, "pushproxy vapid-keys: %v\n", err)
		return 1
	}
	switch err := writeFileAtomic(*out, data, *force); {
	case errors.Is(err, fs.ErrExist):
		fmt.Fprintln(stderr, existsMessage(*out))
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "pushproxy vapid-keys: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s; public key (applicationServerKey): %s\n", *out, k.PublicB64)
	return 0
}

func existsMessage(path string) string {
	return fmt.Sprintf("pushproxy vapid-keys: %s already exists and was left as it is: it may hold the VAPID key your subscriptions were made with "+
		"(replacing it makes every one of them fail with vapid_key_mismatch until the browser resubscribes). "+
		"Write the new key to another file and list it first in webpush.keys to rotate, or add --force to replace the file.", path)
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file in the same directory, so path holds either the old content or the
// whole new one. Without replace, an existing path is an error wrapping
// fs.ErrExist, even if it appears meanwhile.
func writeFileAtomic(path string, data []byte, replace bool) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		// After a rename or link the name is gone or extra: either way
		// the temporary name must not stay.
		_ = os.Remove(tmp)
	}()
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if replace {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("replacing %s: %w", path, err)
		}
		return nil
	}
	// A hard link creates path only if it does not exist, atomically.
	err = os.Link(tmp, path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s: %w", path, fs.ErrExist)
	}
	// A file system without hard links: check, then rename (a file that
	// appears in between is replaced; nothing else can do better there).
	if _, serr := os.Lstat(path); serr == nil {
		return fmt.Errorf("%s: %w", path, fs.ErrExist)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
