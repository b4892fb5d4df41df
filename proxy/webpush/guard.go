package webpush

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// KnownPushServices are the push service hosts endpoints may point at
// without configuration: exact host names, and "*.suffix" for any host under
// a domain (never the domain itself). Browsers' subscriptions come from:
// Chrome, Opera, Brave, Samsung Internet and other Chromium browsers
// (fcm.googleapis.com; android.googleapis.com for old GCM-era endpoints),
// Firefox (updates.push.services.mozilla.com), Safari (web.push.apple.com)
// and Edge on Windows (regional hosts under notify.windows.com).
var KnownPushServices = []string{
	"fcm.googleapis.com",
	"android.googleapis.com",
	"*.push.services.mozilla.com",
	"*.push.apple.com",
	"*.notify.windows.com",
}

// Resolver looks up a host's addresses; *net.Resolver is one. Tests inject
// their own to prove that an allowed name resolving to a private address is
// refused at dial time.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// guard is the endpoint guard (SSRF): which URLs may be requested, and
// which addresses may be dialled.
type guard struct {
	patterns     []string // lower-case; exact host or "*.suffix"
	allowPrivate bool
	resolver     Resolver
	dialer       net.Dialer
}

// ForbiddenError is a refusal of the endpoint guard: the endpoint's URL or
// the address its host resolved to. No connection was opened.
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string { return "destination forbidden: " + e.Reason }

func newGuard(allow []string, allowPrivate bool, r Resolver, dialTimeout time.Duration) *guard {
	g := &guard{allowPrivate: allowPrivate, resolver: r}
	for _, p := range append(append([]string(nil), KnownPushServices...), allow...) {
		p = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(p)), ".")
		p = strings.TrimSuffix(strings.TrimPrefix(p, "["), "]")
		if p != "" && p != "*." {
			g.patterns = append(g.patterns, p)
		}
	}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	g.dialer = net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second, Control: g.control}
	return g
}

// hostAllowed matches a host (lower case, no trailing dot, no brackets)
// against the patterns: exact, or a strict subdomain of a "*.suffix".
func (g *guard) hostAllowed(host string) bool {
	for _, p := range g.patterns {
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) && len(host) > len(suffix)+1 {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// validHostName: letters, digits, hyphens and dots only (no percent-decoded
// slashes, no spaces), or an IP literal.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.HasPrefix(h, ".") && !strings.Contains(h, "..")
}

// check decides whether an endpoint may be requested at all, before any
// connection: https, no user-info, a host on the list (IP literals only when
// listed exactly, and then only public ones unless private networks are
// allowed).
func (g *guard) check(endpoint string) (*url.URL, *ForbiddenError) {
	u, err := url.Parse(endpoint)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return nil, &ForbiddenError{"the endpoint is not an absolute URL"}
	}
	if u.Scheme != "https" {
		return nil, &ForbiddenError{"the endpoint is not https"}
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return nil, &ForbiddenError{"the endpoint carries user-info (user@host), which a push endpoint never does"}
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if !g.hostAllowed(ip.String()) && !g.hostAllowed(host) {
			return nil, &ForbiddenError{"the endpoint's host is an IP address that webpush.allow_endpoints does not list"}
		}
		if reason := g.addrForbidden(ip); reason != "" {
			return nil, &ForbiddenError{"the endpoint's address is " + reason}
		}
		return u, nil
	}
	if !validHostName(host) {
		return nil, &ForbiddenError{"the endpoint's host name is malformed"}
	}
	if !g.hostAllowed(host) {
		return nil, &ForbiddenError{"the endpoint's host is not a known push service (add it to webpush.allow_endpoints if it is one)"}
	}
	return u, nil
}

var (
	cgnat    = netip.MustParsePrefix("100.64.0.0/10")
	thisNet  = netip.MustParsePrefix("0.0.0.0/8")
	ietf     = netip.MustParsePrefix("192.0.0.0/24")
	bench    = netip.MustParsePrefix("198.18.0.0/15")
	reserved = netip.MustParsePrefix("240.0.0.0/4")
	nat64    = netip.MustParsePrefix("64:ff9b::/96")
	nat64l   = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFou = netip.MustParsePrefix("2002::/16")

	// privateRanges are the ranges netip's IsPrivate, IsLinkLocal* and
	// IsMulticast cover, listed for the tests and for readers.
	privateRanges = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7"),
		netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("ff00::/8"),
	}
)

// addrForbidden says why an address may not be dialled ("" if it may).
func (g *guard) addrForbidden(ip netip.Addr) string {
	if g.allowPrivate {
		return ""
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		return "an IPv4-mapped IPv6 address"
	}
	switch {
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsUnspecified():
		return "the unspecified address"
	case ip.IsPrivate():
		return "a private address"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "a link-local address"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	case inAny(privateRanges, ip):
		return "a private, link-local or multicast address"
	case cgnat.Contains(ip):
		return "a carrier-grade NAT address (100.64.0.0/10)"
	case thisNet.Contains(ip) || ietf.Contains(ip) || bench.Contains(ip) || reserved.Contains(ip):
		return "a reserved address"
	case nat64.Contains(ip) || nat64l.Contains(ip):
		b := ip.As16()
		if r := g.addrForbidden(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
			return r + " behind NAT64"
		}
	case sixToFou.Contains(ip):
		b := ip.As16()
		if r := g.addrForbidden(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
			return r + " inside 6to4"
		}
	}
	return ""
}

func inAny(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// control runs on every socket before it connects: the address actually
// dialled is checked, whatever resolved it.
func (g *guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &ForbiddenError{"cannot read the dialled address " + address}
	}
	if r := g.addrForbidden(ap.Addr()); r != "" {
		return &ForbiddenError{"the endpoint's host resolves to " + r}
	}
	return nil
}

// dialContext resolves the host with the guard's resolver, refuses before
// dialling if any address is forbidden (a name that resolves to a private
// address is refused outright, not tried address by address), then dials
// the addresses in turn.
func (g *guard) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		addrs, err = g.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("no address for %s", host)
		}
	}
	for _, a := range addrs {
		if r := g.addrForbidden(a); r != "" {
			return nil, &ForbiddenError{"the endpoint's host resolves to " + r}
		}
	}
	var firstErr error
	for _, a := range addrs {
		c, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		var fe *ForbiddenError
		if errors.As(err, &fe) || ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}
