package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/internal/fakeapns"
	"github.com/pushproxy/pushproxy/internal/fakefcm"
	"github.com/pushproxy/pushproxy/internal/fakepush"
)

// demoBuf is a goroutine-safe buffer for the demo's output and logs.
type demoBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *demoBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *demoBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// runningDemo is the demo running in-process on free ports.
type runningDemo struct {
	env            *Env
	stdout, stderr *demoBuf
	stop           func() error // cancels and returns Run's result
}

func startTestDemo(t *testing.T) *runningDemo {
	t.Helper()
	d := &runningDemo{stdout: &demoBuf{}, stderr: &demoBuf{}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Env, 1)
	exit := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(d.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		exit <- Run(ctx, Options{Listen: "127.0.0.1:0", LogLevel: "warn"}, d.stdout, log, func(e *Env) { ready <- e })
	}()
	select {
	case d.env = <-ready:
	case err := <-exit:
		cancel()
		t.Fatalf("demo ended before it was ready: %v\n%s", err, d.stderr)
	case <-time.After(15 * time.Second):
		cancel()
		t.Fatal("demo not ready after 15s")
	}
	var once sync.Once
	var err error
	d.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-exit:
			case <-time.After(15 * time.Second):
				t.Error("demo did not stop within 15s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = d.stop() })
	return d
}

// curlCmd is one printed curl line, parsed.
type curlCmd struct {
	Method, URL string
	Header      http.Header
	Body        []byte
	Pipe        string // what follows an unquoted "|", if anything
}

// parseCurlLine parses exactly the form the demo prints: curl, -s, the
// URL, -H 'K: V', -d '…' or -d "$(printf '…%0Nd…' 0)", and optionally a
// pipe. Anything else is an error, so a change of form shows up here.
func parseCurlLine(line string) (*curlCmd, error) {
	words, pipe, err := shellWords(line, false)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 || words[0] != "curl" {
		return nil, errors.New("not a curl command")
	}
	c := &curlCmd{Method: http.MethodGet, Header: http.Header{}, Pipe: pipe}
	for i := 1; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-s":
		case w == "-H" && i+1 < len(words):
			i++
			k, v, ok := strings.Cut(words[i], ":")
			if !ok {
				return nil, fmt.Errorf("header %q", words[i])
			}
			c.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case w == "-d" && i+1 < len(words):
			i++
			c.Method, c.Body = http.MethodPost, []byte(words[i])
		case !strings.HasPrefix(w, "-") && c.URL == "":
			c.URL = w
			if !strings.Contains(w, "://") {
				c.URL = "http://" + w
			}
		default:
			return nil, fmt.Errorf("unexpected word %q", w)
		}
	}
	if c.URL == "" {
		return nil, errors.New("no URL")
	}
	return c, nil
}

// shellWords splits a line as sh would, for the quoting the demo uses:
// single quotes, double quotes with \-escapes and $(printf …)
// substitutions; an unquoted | ends the command. nested: inside $( … ),
// which an unquoted ) ends (rest then starts with it).
func shellWords(s string, nested bool) (words []string, rest string, err error) {
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t':
			flush()
		case '|':
			flush()
			return words, strings.TrimSpace(s[i+1:]), nil
		case ')':
			if !nested {
				return nil, "", errors.New("unbalanced )")
			}
			flush()
			return words, s[i:], nil
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, "", errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord, i = true, i+1+j
		case '"':
			inWord = true
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0:
					i++
					cur.WriteByte(s[i])
				case strings.HasPrefix(s[i:], "$("):
					sub, rest, err := shellWords(s[i+2:], true)
					if err != nil {
						return nil, "", err
					}
					if !strings.HasPrefix(rest, ")") {
						return nil, "", errors.New("unterminated $(")
					}
					out, err := fakePrintf(sub)
					if err != nil {
						return nil, "", err
					}
					cur.WriteString(out)
					i = len(s) - len(rest) // at the ")"
				case s[i] == '$' || s[i] == '`':
					return nil, "", fmt.Errorf("unsupported %q in double quotes", s[i])
				default:
					cur.WriteByte(s[i])
				}
			}
			if i >= len(s) {
				return nil, "", errors.New("unterminated double quote")
			}
		case '\\', '$', '`', ';', '&', '<', '>', '(', '*', '?', '[', '#', '~':
			return nil, "", fmt.Errorf("unsupported unquoted %q", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, "", nil
}

var printfDirective = regexp.MustCompile(`%0(\d+)d`)

// fakePrintf runs printf FORMAT N for a format whose only directive is one
// %0Wd and that has no backslash escapes.
func fakePrintf(words []string) (string, error) {
	if len(words) != 3 || words[0] != "printf" {
		return "", fmt.Errorf("unsupported command substitution %q", words)
	}
	format := words[1]
	m := printfDirective.FindAllStringSubmatchIndex(format, -1)
	if len(m) != 1 || strings.Count(format, "%") != 1 || strings.Contains(format, `\`) {
		return "", fmt.Errorf("unsupported printf format %q", format)
	}
	width, _ := strconv.Atoi(format[m[0][2]:m[0][3]])
	n, err := strconv.Atoi(words[2])
	if err != nil {
		return "", fmt.Errorf("printf argument %q", words[2])
	}
	return format[:m[0][0]] + fmt.Sprintf("%0*d", width, n) + format[m[0][1]:], nil
}

func TestShellWords(t *testing.T) {
	words, pipe, err := shellWords(`curl -s x -d "a$(printf 'b%05dc' 7)d\"" -H 'K: v w' | grep '^p'`, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"curl", "-s", "x", "-d", `ab00007cd"`, "-H", "K: v w"}
	if fmt.Sprint(words) != fmt.Sprint(want) || pipe != "grep '^p'" {
		t.Errorf("%q | %q", words, pipe)
	}
	for _, bad := range []string{`curl 'x`, `curl "x`, `curl $(ls)`, `curl "$(ls)"`, `curl "$(printf '%s' 0)"`,
		`curl "$(printf 'a%03d' 0"`, "curl x; rm y", "curl x)", "curl -X PUT x", "wget x", "curl -s"} {
		if _, err := parseCurlLine(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// answer is what one line got back.
type answer struct {
	status int
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d %q: %v", a.status, a.body, err)
	}
	return m
}

func (c *curlCmd) do(t *testing.T) answer {
	t.Helper()
	req, err := http.NewRequest(c.Method, c.URL, bytes.NewReader(c.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = c.Header.Clone()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, body}
}

// runRealCurl runs the line with sh and the real curl; for a line without
// a pipe, curl also prints the status on a last line.
func runRealCurl(t *testing.T, line string, withStatus bool) answer {
	t.Helper()
	if withStatus {
		line += ` -w '\n%{http_code}'`
	}
	cmd := exec.Command("sh", "-c", line)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v\n%s", line, err, stderr.String())
	}
	if !withStatus {
		return answer{0, out}
	}
	i := bytes.LastIndexByte(out, '\n')
	status, _ := strconv.Atoi(string(out[i+1:]))
	return answer{status, out[:i]}
}

// printedCurlLines are the lines of the demo's text that start with curl.
func printedCurlLines(text string) []string {
	var out []string
	for l := range strings.Lines(text) {
		if strings.HasPrefix(l, "curl ") {
			out = append(out, strings.TrimSuffix(l, "\n"))
		}
	}
	return out
}

// TestDemoEndToEnd runs the demo command in-process on free ports,
// executes every curl line it printed (parsed, and with the real curl when
// there is one) and checks each outcome, then stops it: exit 0, keys gone.
func TestDemoEndToEnd(t *testing.T) {
	d := startTestDemo(t)
	env := d.env
	printed := printedCurlLines(d.stdout.String())
	examples := Examples(env.addrs)
	look := LookLines(env.addrs)
	if len(printed) != len(examples)+len(look) {
		t.Fatalf("printed %d curl lines, want %d:\n%s", len(printed), len(examples)+len(look), d.stdout)
	}
	for i, ex := range examples {
		if printed[i] != ex.Line {
			t.Errorf("printed line %d differs from Examples:\n%s\n%s", i, printed[i], ex.Line)
		}
	}
	_, curlErr := exec.LookPath("curl")
	_, shErr := exec.LookPath("sh")
	realCurl := curlErr == nil && shErr == nil
	if !realCurl {
		t.Log("no curl or sh: running the lines through the parser only")
	}

	for _, ex := range examples {
		t.Run(ex.Kind, func(t *testing.T) {
			c, err := parseCurlLine(ex.Line)
			if err != nil {
				t.Fatalf("%v: %s", err, ex.Line)
			}
			if c.Header.Get("Content-Type") != "application/json" || c.Method != http.MethodPost || !json.Valid(c.Body) {
				t.Fatalf("parsed %+v", c)
			}
			answers := []answer{c.do(t)}
			if realCurl {
				answers = append(answers, runRealCurl(t, ex.Line, true))
			}
			for _, a := range answers { // with a real curl, every outcome holds twice (410 persists)
				if a.status != ex.Status {
					t.Fatalf("%s: status %d, want %d: %s", ex.Kind, a.status, ex.Status, a.body)
				}
				m := a.json(t)
				if ex.Code != "" {
					if e, _ := m["error"].(map[string]any); e == nil || e["code"] != ex.Code {
						t.Errorf("%s: want code %s, got %s", ex.Kind, ex.Code, a.body)
					}
					continue
				}
				up, _ := m["upstream"].(map[string]any)
				switch ex.Kind {
				case "webpush":
					if m["platform"] != "webpush" || m["credential"] != demoVAPID || up == nil || up["status"] != 201.0 {
						t.Errorf("%s: %s", ex.Kind, a.body)
					}
				case "android":
					id, _ := up["message_id"].(string)
					if m["platform"] != "fcm" || m["credential"] != "default" || up == nil || up["status"] != 200.0 ||
						!strings.HasPrefix(id, "projects/"+demoFCMProject+"/messages/") {
						t.Errorf("%s: %s", ex.Kind, a.body)
					}
				default:
					if m["platform"] != "apns" || up == nil || up["status"] != 200.0 {
						t.Errorf("%s: %s", ex.Kind, a.body)
					}
				}
			}
			checkDemoUpstream(t, env, ex, len(answers))
		})
	}

	// The look-around lines.
	for _, line := range look {
		c, err := parseCurlLine(line)
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		a := c.do(t)
		if a.status != 200 {
			t.Errorf("%s: %d %s", line, a.status, a.body)
		}
		switch {
		case strings.HasSuffix(c.URL, "/readyz"):
			if m := a.json(t); m["status"] != "ready" {
				t.Errorf("readyz: %s", a.body)
			}
		case strings.HasSuffix(c.URL, "/metrics"):
			if !strings.Contains(string(a.body), `pushproxy_notifications_total{code="recipient_gone",platform="apns"}`) ||
				!strings.Contains(string(a.body), `pushproxy_notifications_total{code="ok",platform="webpush"}`) ||
				!strings.Contains(string(a.body), `pushproxy_notifications_total{code="ok",platform="fcm"}`) {
				t.Errorf("metrics lack the demo's counts:\n%s", a.body)
			}
			if c.Pipe != "grep '^pushproxy_notifications_total'" {
				t.Errorf("pipe %q", c.Pipe)
			}
			if realCurl {
				out := runRealCurl(t, line, false)
				if !strings.Contains(string(out.body), `pushproxy_notifications_total{code="payload_too_large",platform="apns"}`) ||
					strings.Contains(string(out.body), "# HELP") {
					t.Errorf("%s printed:\n%s", line, out.body)
				}
			}
		default:
			t.Errorf("unexpected look line %s", line)
		}
	}

	dir := env.dir
	if err := d.stop(); err != nil {
		t.Errorf("demo stopped with %v:\n%s", err, d.stderr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the key directory %s is still there (%v)", dir, err)
	}
}

// checkDemoUpstream checks what the fakes received for one example (sent
// n times).
func checkDemoUpstream(t *testing.T, env *Env, ex Example, n int) {
	t.Helper()
	apns := env.apns.Requests()
	last := func(tok string) (fakeapns.Request, int) {
		var got fakeapns.Request
		count := 0
		for _, r := range apns {
			if r.DeviceToken == tok {
				got, count = r, count+1
			}
		}
		return got, count
	}
	switch ex.Kind {
	case "alert":
		r, _ := last(demoToken)
		if r.Status != 200 || r.Header.Get("apns-push-type") != "alert" || !strings.Contains(string(r.Body), "Delivered through pushproxy") {
			t.Errorf("fake APNs saw %d %v %s", r.Status, r.Header, r.Body)
		}
	case "background":
		r, _ := last(demoToken)
		if r.Status != 200 || r.Header.Get("apns-push-type") != "background" || r.Header.Get("apns-priority") != "5" ||
			!strings.Contains(string(r.Body), `"content-available":1`) {
			t.Errorf("fake APNs saw %d %v %s", r.Status, r.Header, r.Body)
		}
	case "gone":
		r, count := last(demoGoneToken)
		if count != n || r.Status != 410 || r.Reason != "Unregistered" {
			t.Errorf("fake APNs answered the unregistered token %d times (want %d), last %d %s", count, n, r.Status, r.Reason)
		}
	case "too_large":
		for _, r := range apns {
			if strings.Contains(string(r.Body), "Too big") {
				t.Error("the too-large payload reached the fake APNs")
			}
		}
	case "android":
		var got []fakefcm.Request
		for _, r := range env.fcm.Requests() {
			if r.Token == demoFCMToken {
				got = append(got, r)
			}
		}
		if len(got) != n {
			t.Fatalf("fake FCM got %d requests, want %d", len(got), n)
		}
		for _, r := range got {
			note, _ := r.Message["notification"].(map[string]any)
			data, _ := r.Message["data"].(map[string]any)
			if r.Status != 200 || r.Project != demoFCMProject || r.Account != demoFCMEmail || note["body"] != "Delivered to an Android app" || data["order"] != "1234" {
				t.Errorf("fake FCM: %d %s %s %s (%s)", r.Status, r.Project, r.Account, r.Body, r.Reason)
			}
		}
		if f := env.fcm.TokenFetches(); len(f) != 1 || f[0].Status != 200 || f[0].KeyID != demoFCMKeyID {
			t.Errorf("fake FCM token endpoint: %d fetches, want 1 (a token reused) %+v", len(f), f)
		}
	case "webpush":
		var got []fakepush.Request
		for _, r := range env.push.Requests() {
			if r.SubscriptionID == demoSubID {
				got = append(got, r)
			}
		}
		if len(got) != n {
			t.Fatalf("fake push service got %d requests, want %d", len(got), n)
		}
		for _, r := range got {
			if r.Status != 201 || r.DecryptError != "" || !r.KeyMatches || !strings.Contains(string(r.Plaintext), "Encrypted for one browser") {
				t.Errorf("fake push service: %d %q decrypted %q", r.Status, r.DecryptError, r.Plaintext)
			}
		}
	}
}

// TestDemoTextIsDeterministic: the text depends on the addresses only, and
// the default one names the default addresses.
func TestDemoTextIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	Print(&a, demoDefaultAddrs())
	Print(&b, demoDefaultAddrs())
	if a.String() != b.String() {
		t.Fatal("two renderings differ")
	}
	text := a.String()
	for _, want := range []string{"127.0.0.1:8570/v1/notifications", "https://127.0.0.1:8572/push/" + demoSubID, "127.0.0.1:8570/readyz",
		"https://127.0.0.1:8573", `"fcm": {"token": "` + demoFCMToken + `"}`} {
		if !strings.Contains(text, want) {
			t.Errorf("the text lacks %q", want)
		}
	}
	for _, l := range printedCurlLines(text) {
		if strings.Contains(l, "\n") || !strings.HasPrefix(l, "curl -s ") {
			t.Errorf("line %q", l)
		}
		if c, err := parseCurlLine(l); err != nil {
			t.Errorf("%v: %s", err, l)
		} else if c.Method == http.MethodPost && (c.Header.Get("Content-Type") != "application/json" || !json.Valid(c.Body)) {
			t.Errorf("%s: %+v", l, c)
		}
	}
	// The demo subscription's keys are the browser's: they decrypt what is
	// encrypted to the printed p256dh.
	priv, auth := demoUserAgent()
	_, keys := demoSubscription("127.0.0.1:8572")
	if !strings.Contains(text, keys.P256DH) || !strings.Contains(text, keys.Auth) || len(auth) != 16 || priv == nil {
		t.Error("the printed subscription keys are not the demo's")
	}
}

// demoDefaultAddrs are the addresses the demo prints with its default flags.
func demoDefaultAddrs() Addrs {
	return Addrs{
		API:  demoDefaultListen,
		APNs: "127.0.0.1:" + strconv.Itoa(demoDefaultAPNsPort),
		Push: "127.0.0.1:" + strconv.Itoa(demoDefaultPushPort),
		FCM:  "127.0.0.1:" + strconv.Itoa(demoDefaultFCMPort),
	}
}

// TestDemoLinesAreInREADME: every curl line the demo prints with its
// default flags appears verbatim, as a whole line, in README.md.
//
// THIS TEST FAILS WHEN README.md AND THE DEMO DRIFT APART (on purpose): if
// you change what the demo prints, paste its new output (go run
// ./cmd/pushproxy demo) into the README's "Try it" section.
func TestDemoLinesAreInREADME(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for l := range strings.Lines(string(data)) {
		lines[strings.TrimRight(l, "\r\n")] = true
	}
	var text bytes.Buffer
	Print(&text, demoDefaultAddrs())
	for _, l := range printedCurlLines(text.String()) {
		if !lines[l] {
			t.Errorf("README.md lacks this line that `pushproxy demo` prints (README and demo drifted apart; paste the demo's output into the README's Try it section):\n%s", l)
		}
	}
}
