package fakepush

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/pushproxy/pushproxy/internal/testca"
)

// newTLS: the fake's CA and a certificate for loopback and the push
// services' host names (FCM, Mozilla, Apple, a WNS host), so that a client
// whose resolver points a real name at the fake also verifies.
func newTLS() (*tls.Config, []byte, *x509.CertPool, error) {
	return testca.New("fakepush", ServiceHosts, "h2", "http/1.1")
}
