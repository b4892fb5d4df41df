package fakeapns

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/pushproxy/pushproxy/internal/testca"
)

// newTLS: the fake's CA and a certificate for loopback, localhost and
// Apple's two API host names (so a client that dials the fake while
// presenting the real server name also verifies); HTTP/2 only.
func newTLS() (*tls.Config, []byte, *x509.CertPool, error) {
	return testca.New("fakeapns", []string{"localhost", "api.push.apple.com", "api.sandbox.push.apple.com"}, "h2")
}
