package adapters

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrPrivateAddress refuses a media fetch that would reach an address of
// the gateway's own network.
var ErrPrivateAddress = errors.New("address not allowed: loopback, private or link-local")

// MediaClient is the HTTP client that fetches the pictures and files
// messages name by URL (Media.HTTP). Unless allowPrivate is true it
// refuses to connect to loopback, private, link-local, multicast and
// unspecified addresses (ErrPrivateAddress); the check runs on the
// address actually dialled, after DNS and on every redirect, so a name
// that resolves inward is refused too.
func MediaClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = refusePrivate
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // a proxy would dial for us, past the check
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Timeout: mediaFetchTimeout, Transport: t}
}

// refusePrivate is a net.Dialer Control that refuses inward addresses.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dialling %s: %w", address, err)
	}
	if !PublicAddr(ap.Addr()) {
		return fmt.Errorf("dialling %s: %w", ap.Addr(), ErrPrivateAddress)
	}
	return nil
}

// PublicAddr reports whether a is an address on the internet at large.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() &&
		!cgnat.Contains(a) && !a.IsUnspecified()
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598),
// private in practice though not in netip's sense.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")
