package webpush

import (
	"net/netip"
	"testing"
)

// addrForbidden refuses every range the endpoint guard documents. The
// addresses are derived from the ranges, not written out: tests name no
// address but loopback ones.
func TestAddrForbiddenRanges(t *testing.T) {
	g := newGuard(nil, false, nil, 0)
	var addrs []netip.Addr
	for _, p := range []netip.Prefix{cgnat, thisNet, ietf, bench, reserved} {
		addrs = append(addrs, p.Addr(), p.Addr().Next())
	}
	v4 := func(b ...byte) netip.Addr { return netip.AddrFrom4([4]byte(b)) }
	addrs = append(addrs,
		v4(127, 0, 0, 1), v4(127, 9, 9, 9), netip.IPv4Unspecified(), netip.IPv6Unspecified(), netip.IPv6Loopback(),
		netip.IPv6LinkLocalAllNodes(), netip.IPv6LinkLocalAllRouters(),
		netip.AddrFrom16(v4(127, 0, 0, 1).As16()), // IPv4-mapped
	)
	// Private, link-local and multicast ranges, by their first address.
	for _, p := range privateRanges {
		addrs = append(addrs, p.Addr())
	}
	// Loopback behind NAT64 and 6to4.
	n64 := nat64.Addr().As16()
	copy(n64[12:], []byte{127, 0, 0, 1})
	s24 := sixToFou.Addr().As16()
	copy(s24[2:], []byte{127, 0, 0, 1})
	addrs = append(addrs, netip.AddrFrom16(n64), netip.AddrFrom16(s24))
	for _, a := range addrs {
		if g.addrForbidden(a) == "" {
			t.Errorf("%s allowed", a)
		}
	}
	open := newGuard(nil, true, nil, 0)
	for _, a := range addrs {
		if r := open.addrForbidden(a); r != "" {
			t.Errorf("%s refused with allow_private_networks: %s", a, r)
		}
	}
}

// The socket hook refuses what it is handed, whatever resolved it.
func TestControlChecksTheDialledAddress(t *testing.T) {
	g := newGuard(nil, false, nil, 0)
	for _, a := range []string{"127.0.0.1:443", "[::1]:443", "[::ffff:127.0.0.1]:443", "not-an-address"} {
		if err := g.control("tcp", a, nil); err == nil {
			t.Errorf("%s: dialled", a)
		}
	}
	if err := newGuard(nil, true, nil, 0).control("tcp", "127.0.0.1:443", nil); err != nil {
		t.Errorf("allow_private_networks: %v", err)
	}
}
