package webpush_test

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushproxy/pushproxy/creds"
	"github.com/pushproxy/pushproxy/internal/fakepush"
	"github.com/pushproxy/pushproxy/proxy/webpush"
	"github.com/pushproxy/pushproxy/translate"
)

// fakeDNS answers every name with the same addresses (loopback ones only:
// tests never name another address) and counts look-ups.
type fakeDNS struct {
	addrs   []netip.Addr
	lookups atomic.Int64
}

func (r *fakeDNS) LookupNetIP(_ context.Context, _, _ string) ([]netip.Addr, error) {
	r.lookups.Add(1)
	return r.addrs, nil
}

func loopbackDNS(mapped bool) *fakeDNS {
	a := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if mapped {
		a = netip.AddrFrom16(a.As16())
	}
	return &fakeDNS{addrs: []netip.Addr{a}}
}

// Endpoints refused from the URL alone: no look-up, no connection.
func TestGuardRefusesURLs(t *testing.T) {
	dns := loopbackDNS(false)
	e := newEnv(t, fakepush.StyleMozilla, func(o *webpush.Options) {
		o.Resolver = dns
		o.AllowEndpoints = []string{"127.0.0.1", "*.push.example"}
	})
	s := e.subscribe(e.primary)
	port := e.fake.Port()
	path := "/push/" + s.ID
	cases := map[string]string{
		"http":                       "http://127.0.0.1:" + port + path,
		"user-info":                  "https://user@127.0.0.1:" + port + path,
		"user and password":          "https://user:pw@fcm.googleapis.com" + path,
		"look-alike suffix":          "https://x.push.apple.com.evil.example" + path,
		"host in the path":           "https://evil.example/x.push.apple.com" + path,
		"suffix without a dot":       "https://xpush.apple.com" + path,
		"bare suffix domain":         "https://push.apple.com" + path,
		"FCM look-alike":             "https://fcm.googleapis.com.evil.example" + path,
		"FCM prefix":                 "https://evilfcm.googleapis.com" + path,
		"escaped slash in host":      "https://evil.example%2f.push.apple.com" + path,
		"IP literal not listed":      "https://127.0.0.2:" + port + path,
		"IPv6 loopback not listed":   "https://[::1]:" + port + path,
		"localhost not listed":       "https://localhost:" + port + path,
		"allowed suffix's bare name": "https://push.example:" + port + path,
		"not a URL":                  "https://%zz",
		"ftp":                        "ftp://fcm.googleapis.com" + path,
	}
	for name, endpoint := range cases {
		if err := e.sender.CheckEndpoint(endpoint); err == nil || err.Code != translate.CodeDestinationForbidden {
			t.Errorf("%s: CheckEndpoint(%q) = %v", name, endpoint, err)
		}
		d := e.delivery(s, nil)
		d.Subscription.Endpoint = endpoint
		_, err := e.sender.Send(ctxFor(t, 2*time.Second), d)
		if err == nil || err.Code != translate.CodeDestinationForbidden || err.Field != "to.webpush.endpoint" || err.Action != translate.ActionFixRequest {
			t.Errorf("%s: Send = %+v", name, err)
		}
		if err != nil && strings.Contains(err.Message+err.Hint, s.ID) {
			t.Errorf("%s: the endpoint path leaks into %q", name, err.Message)
		}
	}
	if e.fake.Conns() != 0 || dns.lookups.Load() != 0 {
		t.Fatalf("%d connections, %d look-ups", e.fake.Conns(), dns.lookups.Load())
	}
}

func TestGuardAllowsKnownServicesAndListedHosts(t *testing.T) {
	s := webpush.New(webpush.Options{AllowEndpoints: []string{"push.example.net", "*.push.example", "[::1]", "GATEWAY.example."}})
	for _, ok := range []string{
		"https://fcm.googleapis.com/fcm/send/abc:APA91b",
		"https://FCM.googleapis.com./wp/abc",
		"https://android.googleapis.com/gcm/send/abc",
		"https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
		"https://web.push.apple.com/QGk1",
		"https://wns2-par02p.notify.windows.com/w/?token=BQYAAA",
		"https://push.example.net/x",
		"https://a.push.example/x",
		"https://a.b.push.example:8443/x",
		"https://gateway.example/x",
	} {
		if err := s.CheckEndpoint(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	// [::1] is listed, but loopback needs allow_private_networks.
	if err := s.CheckEndpoint("https://[::1]:8443/x"); err == nil || !strings.Contains(err.Message, "loopback") {
		t.Errorf("listed loopback without allow_private_networks: %v", err)
	}
}

// Addresses checked where they are dialled: a listed IP literal, an
// IPv4-mapped IPv6 literal, and an allowed name whose DNS answer is
// loopback (DNS rebinding) are refused without a connection unless private
// networks are allowed.
func TestGuardRefusesPrivateAddresses(t *testing.T) {
	cases := []struct {
		name     string
		allow    []string
		host     string // endpoint host (the fake's port is added)
		dns      *fakeDNS
		lookedUp bool
	}{
		{"listed loopback literal", []string{"127.0.0.1"}, "127.0.0.1", nil, false},
		{"listed IPv6 loopback", []string{"::1"}, "[::1]", nil, false},
		{"IPv4-mapped IPv6 literal", []string{"::ffff:127.0.0.1"}, "[::ffff:127.0.0.1]", nil, false},
		{"known name resolving to loopback", nil, "fcm.googleapis.com", loopbackDNS(false), true},
		{"known name resolving to mapped loopback", nil, "updates.push.services.mozilla.com", loopbackDNS(true), true},
	}
	for _, c := range cases {
		fake, err := fakepush.New(fakepush.Options{})
		if err != nil {
			t.Fatal(err)
		}
		o := webpush.Options{RootCAs: fake.CertPool(), AllowEndpoints: c.allow}
		if c.dns != nil {
			o.Resolver = c.dns
		}
		s := webpush.New(o)
		k := newKey(t)
		sub, _ := fake.Subscribe(fakepush.SubscribeOptions{VAPIDKey: k.PublicB64})
		endpoint := "https://" + c.host + ":" + fake.Port() + "/push/" + sub.ID
		tsub, terr := translate.ValidateSubscription(&translate.WebPushRecipient{Endpoint: endpoint, Keys: translate.WebPushKeys{P256DH: sub.Keys.P256DH, Auth: sub.Keys.Auth}})
		if terr != nil {
			t.Fatal(terr)
		}
		m, _ := translate.BuildWebPush(&translate.Notification{Body: "b"}, translate.WebPushTarget{})
		_, err2 := s.Send(ctxFor(t, 2*time.Second), webpush.Delivery{Subscription: tsub, Message: m, Keys: []webpush.KeyRef{{Name: "k", Signer: newSigner(k)}}})
		if err2 == nil || err2.Code != translate.CodeDestinationForbidden {
			t.Errorf("%s: %+v", c.name, err2)
		}
		if fake.Conns() != 0 {
			t.Errorf("%s: %d connections opened", c.name, fake.Conns())
		}
		if c.dns != nil && (c.dns.lookups.Load() == 0) != !c.lookedUp {
			t.Errorf("%s: %d look-ups", c.name, c.dns.lookups.Load())
		}
		s.Close()
		_ = fake.Close()
	}
}

// With allow_private_networks, an allowed name that resolves to loopback is
// delivered: the resolver hook is the one used, and TLS verifies the name.
func TestGuardResolverHookDelivers(t *testing.T) {
	dns := loopbackDNS(false)
	e := newEnv(t, fakepush.StyleFCM, func(o *webpush.Options) { o.Resolver = dns; o.AllowEndpoints = nil })
	sub, err := e.fake.Subscribe(fakepush.SubscribeOptions{VAPIDKey: e.primary.PublicB64, Host: "fcm.googleapis.com"})
	if err != nil {
		t.Fatal(err)
	}
	res, terr := e.sender.Send(ctxFor(t, 5*time.Second), e.delivery(sub, nil))
	if terr != nil || res.Credential != primaryName {
		t.Fatalf("%+v %v", res, terr)
	}
	r := e.fake.Requests()[0]
	if dns.lookups.Load() == 0 || r.Claims["aud"] != "https://fcm.googleapis.com:"+e.fake.Port() || string(r.Plaintext) == "" {
		t.Fatalf("look-ups %d, claims %v", dns.lookups.Load(), r.Claims)
	}
}

func newSigner(k *creds.VAPIDKey) *creds.VAPIDSigner {
	return creds.NewVAPIDSigner(k, subject, nil, nil)
}
