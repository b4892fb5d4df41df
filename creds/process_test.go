package creds_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
)

// Environment of TestHelperSignToken, set only by TestTokenIdenticalAcrossProcesses.
const (
	envHelperKeyFile = "PUSHPROXY_TEST_HELPER_KEY_FILE"
	envHelperUnix    = "PUSHPROXY_TEST_HELPER_UNIX"
	envHelperKeyID   = "PUSHPROXY_TEST_HELPER_KEY_ID"
	envHelperTeamID  = "PUSHPROXY_TEST_HELPER_TEAM_ID"
	helperPrefix     = "PUSHPROXY_TOKEN="
)

// TestHelperSignToken is not a test: run as a child process by
// TestTokenIdenticalAcrossProcesses, it loads a key file, signs a provider
// token at a fixed time and prints it.
func TestHelperSignToken(t *testing.T) {
	path := os.Getenv(envHelperKeyFile)
	if path == "" {
		return
	}
	unix, err := strconv.ParseInt(os.Getenv(envHelperUnix), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", envHelperUnix, err)
		os.Exit(2)
	}
	key, spec, err := creds.LoadAPNsKey(creds.APNsSpec{
		Name: "helper", KeyFile: path,
		KeyID: os.Getenv(envHelperKeyID), TeamID: os.Getenv(envHelperTeamID),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "LoadAPNsKey:", err)
		os.Exit(2)
	}
	now := time.Unix(unix, 0)
	tok, err := creds.NewTokenSource(spec.KeyID, spec.TeamID, key, func() time.Time { return now }, nil).Token()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Token:", err)
		os.Exit(2)
	}
	fmt.Println(helperPrefix + tok)
}

func TestTokenIdenticalAcrossProcesses(t *testing.T) {
	if os.Getenv(envHelperKeyFile) != "" {
		t.Skip("running as a helper")
	}
	dir := t.TempDir()
	path := writeFile(t, dir, "AuthKey_"+testKeyID+".p8", pkcs8PEM(t, newP256(t)))
	b := bucketAligned()
	// Two processes at different moments of the same bucket.
	times := []time.Time{b.Add(3 * time.Minute), b.Add(41*time.Minute + 7*time.Second)}

	// Start both children, then collect their output.
	type child struct {
		cmd    *exec.Cmd
		stdout bytes.Buffer
		stderr bytes.Buffer
	}
	children := make([]*child, len(times))
	for i, at := range times {
		c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestHelperSignToken$", "-test.count=1")}
		c.cmd.Env = append(os.Environ(),
			envHelperKeyFile+"="+path,
			envHelperUnix+"="+strconv.FormatInt(at.Unix(), 10),
			// Key ID from the file name: the helper passes "".
			envHelperKeyID+"=",
			envHelperTeamID+"="+testTeamID,
		)
		c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
		if err := c.cmd.Start(); err != nil {
			t.Fatalf("starting helper process: %v", err)
		}
		children[i] = c
	}
	var toks []string
	for _, c := range children {
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("helper process: %v\n%s", err, c.stderr.String())
		}
		tok := ""
		sc := bufio.NewScanner(&c.stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), helperPrefix); ok {
				tok = rest
			}
		}
		if tok == "" {
			t.Fatalf("helper printed no token (%d bytes of output)", c.stdout.Len())
		}
		toks = append(toks, tok)
	}
	if toks[0] != toks[1] {
		t.Fatalf("two processes signed different tokens in one bucket: %s vs %s", fp(toks[0]), fp(toks[1]))
	}

	// This process agrees, and the next bucket's token differs.
	key, spec, err := creds.LoadAPNsKey(creds.APNsSpec{KeyFile: path, TeamID: testTeamID})
	if err != nil {
		t.Fatal(err)
	}
	same, err := creds.NewTokenSource(spec.KeyID, spec.TeamID, key, func() time.Time { return b }, nil).Token()
	if err != nil {
		t.Fatal(err)
	}
	if same != toks[0] {
		t.Errorf("the parent's token for the bucket differs from the children's")
	}
	next, err := creds.NewTokenSource(spec.KeyID, spec.TeamID, key, func() time.Time { return b.Add(creds.TokenBucket) }, nil).Token()
	if err != nil {
		t.Fatal(err)
	}
	if next == toks[0] {
		t.Errorf("the next bucket's token equals this bucket's")
	}
	header, claims := verify(t, toks[0], &key.PublicKey)
	if header["kid"] != testKeyID || claims["iss"] != testTeamID || iatOf(t, toks[0]) != b.Unix() {
		t.Errorf("child token: kid %v iss %v iat %d", header["kid"], claims["iss"], iatOf(t, toks[0]))
	}
}
