// Command floorproxy is the floor of scripts/e2e-bench.sh: the least a
// proxy built on the same libraries as pushproxy (net/http's HTTP/1.1
// server, x/net/http2's client) can cost per notification. It takes
// POST /v1/notifications, decodes {"to":{"apns":{"token":…}},"title","body"}
// with encoding/json, sends one fixed-shape request to APNs with a
// provider token signed once, and answers a fixed JSON body: no
// validation, credentials, retries, metrics or logs. Measured beside
// pushproxy in the same run, it shows how much of pushproxy's CPU is the
// libraries' and how much is pushproxy's own.
//
// With -tuned it also gets pushproxy's measured library settings (HTTP/2
// frames gathered into one write per batch, no HPACK dynamic indexing,
// no accept-encoding, GOGC=400): what the libraries cost at best.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/http2"

	"github.com/pushproxy/pushproxy/internal/batchconn"
	"github.com/pushproxy/pushproxy/internal/bench"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18583", "address to answer on")
	fake := flag.String("fake", "", "APNs base URL (the fake)")
	caFile := flag.String("ca", "", "the fake's CA (PEM)")
	keyFile := flag.String("key", "", "the .p8 key")
	keyID := flag.String("key-id", "", "key ID")
	teamID := flag.String("team-id", "", "team ID")
	topic := flag.String("topic", "com.example.app", "apns-topic")
	tuned := flag.Bool("tuned", false, "use pushproxy's library settings (see the package comment)")
	flag.Parse()

	pemCA, err := os.ReadFile(*caFile)
	check(err)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		check(fmt.Errorf("no certificate in %s", *caFile))
	}
	p8, err := os.ReadFile(*keyFile)
	check(err)
	key, err := jwt.ParseECPrivateKeyFromPEM(p8)
	check(err)
	tok, err := bench.ProviderToken(key, *keyID, *teamID)
	check(err)
	auth := "bearer " + tok

	tlsConf := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{http2.NextProtoTLS}}
	tr := &http2.Transport{TLSClientConfig: tlsConf}
	if *tuned {
		debug.SetGCPercent(400)
		tr.MaxEncoderHeaderTableSize = 1
		tr.DisableCompression = true
		tr.DialTLSContext = func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return &gathered{Conn: batchconn.New(tc), tls: tc}, nil
		}
	}
	base := strings.TrimRight(*fake, "/")
	answer := []byte(`{"id":"floor","platform":"apns","attempts":1}` + "\n")

	h := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var n struct {
			To struct {
				APNs struct {
					Token string `json:"token"`
				} `json:"apns"`
			} `json:"to"`
			Title string `json:"title"`
			Body  string `json:"body"`
		}
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		payload, _ := json.Marshal(map[string]any{"aps": map[string]any{"alert": map[string]string{"title": n.Title, "body": n.Body}}})
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/3/device/"+n.To.APNs.Token, strings.NewReader(string(payload)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Header.Set("authorization", auth)
		req.Header.Set("apns-topic", *topic)
		req.Header.Set("apns-push-type", "alert")
		req.Header.Set("apns-priority", "10")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			http.Error(w, "APNs answered "+strconv.Itoa(resp.StatusCode), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	}
	fmt.Println("floorproxy listening on", *listen)
	check(http.ListenAndServe(*listen, http.HandlerFunc(h)))
}

// gathered lets x/net see the TLS state through the batching wrapper.
type gathered struct {
	*batchconn.Conn
	tls *tls.Conn
}

func (g *gathered) ConnectionState() tls.ConnectionState { return g.tls.ConnectionState() }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorproxy:", err)
		os.Exit(1)
	}
}
