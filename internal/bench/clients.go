package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/translate"
)

// proxyClient posts to pushproxy's local API.
type proxyClient struct {
	base    string
	client  *http.Client
	timeout string
}

func newProxyClient(base string, c int, timeout time.Duration) *proxyClient {
	tr := &http.Transport{MaxIdleConns: c, MaxIdleConnsPerHost: c, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	return &proxyClient{
		base:    base,
		client:  &http.Client{Transport: tr, Timeout: timeout},
		timeout: strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64),
	}
}

func (p *proxyClient) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Timeout", p.timeout)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// errorKey is "<status> <code>" of a normalised error answer.
func errorKey(status int, body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	if e.Error.Code == "" {
		e.Error.Code = "no_error_code"
	}
	return strconv.Itoa(status) + " " + e.Error.Code
}

func (p *proxyClient) sendOne(ctx context.Context, body []byte) string {
	status, data, err := p.post(ctx, "/v1/notifications", body)
	switch {
	case err != nil:
		return "transport_error"
	case status != http.StatusOK:
		return errorKey(status, data)
	}
	return ""
}

func (p *proxyClient) sendBatch(ctx context.Context, body []byte, n int) []string {
	out := make([]string, n)
	status, data, err := p.post(ctx, "/v1/notifications/batch", body)
	var fail string
	switch {
	case err != nil:
		fail = "transport_error"
	case status != http.StatusOK:
		fail = errorKey(status, data)
	}
	var b struct {
		Results []struct {
			Upstream *struct {
				Status int `json:"status"`
			} `json:"upstream"`
			Error *struct {
				Code     string `json:"code"`
				Upstream *struct {
					Status int `json:"status"`
				} `json:"upstream"`
			} `json:"error"`
		} `json:"results"`
	}
	if fail == "" {
		if err := json.Unmarshal(data, &b); err != nil || len(b.Results) != n {
			fail = "200 malformed_batch_answer"
		}
	}
	for i := range out {
		switch {
		case fail != "":
			out[i] = fail
		case b.Results[i].Error != nil:
			out[i] = "batch " + b.Results[i].Error.Code
		case b.Results[i].Upstream == nil || b.Results[i].Upstream.Status != http.StatusOK:
			out[i] = "batch no_upstream_status"
		}
	}
	return out
}

// tokensSigned reads pushproxy_tokens_signed_total{kind="apns"} from /metrics.
func tokensSigned(ctx context.Context, base, kind string) (int, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `pushproxy_tokens_signed_total{kind="`+kind+`"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, false
		}
		return int(v), true
	}
	return 0, true // no sample yet: nothing signed
}

// directClient is the minimal hand-written APNs client (x/net/http2 and
// one provider token signed up front), as BenchmarkHandwritten in
// proxy/apns uses.
type directClient struct {
	tr      *http2.Transport
	base    string
	bundle  string
	jwt     string
	timeout time.Duration
}

// directPayload is what the direct client sends every time.
const directPayload = `{"aps":{"alert":{"title":"Hello","body":"World"}}}`

func newDirectClient(env *runEnv, timeout time.Duration) (*directClient, error) {
	signed, err := ProviderToken(env.key, env.keyID, env.teamID)
	if err != nil {
		return nil, err
	}
	return &directClient{
		tr:     &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: env.fakeRoots, MinVersion: tls.VersionTLS12}},
		base:   env.fakeURL,
		bundle: env.bundle, jwt: "bearer " + signed, timeout: timeout,
	}, nil
}

// ProviderToken signs an APNs provider token (ES256, kid, iss, iat now) the
// plain way a hand-written client does: the direct baselines sign one per run.
func ProviderToken(key *ecdsa.PrivateKey, keyID, teamID string) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": teamID, "iat": time.Now().Unix()})
	t.Header["kid"] = keyID
	return t.SignedString(key)
}

func (d *directClient) send(ctx context.Context, tok string) string {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/3/device/"+tok, strings.NewReader(directPayload))
	if err != nil {
		return "transport_error"
	}
	req.Header.Set("authorization", d.jwt)
	req.Header.Set("apns-topic", d.bundle)
	req.Header.Set("apns-push-type", "alert")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("content-type", "application/json")
	resp, err := d.tr.RoundTrip(req)
	if err != nil {
		return "transport_error"
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "transport_error"
	}
	if resp.StatusCode != http.StatusOK {
		reason, _ := translate.ParseAPNsBody(body)
		return strconv.Itoa(resp.StatusCode) + " " + reason
	}
	return ""
}
