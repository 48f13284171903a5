package wecom

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

// errPrivateAddress refuses a media fetch that would reach an address of
// the gateway's own network.
var errPrivateAddress = errors.New("address not allowed: loopback, private or link-local (wecom.media_fetch_private)")

// mediaClient is the HTTP client that fetches the pictures and files
// messages name by URL. Unless private is true it refuses to connect to
// loopback, private, link-local, multicast and unspecified addresses; the
// check runs on the address actually dialled, after DNS and on every
// redirect, so a name that resolves inward is refused too.
func mediaClient(private bool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !private {
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
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("dialling %s: %w", ap.Addr(), errPrivateAddress)
	}
	return nil
}

// publicAddr reports whether a is an address on the internet at large.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() &&
		!cgnat.Contains(a) && !a.IsUnspecified()
}

// cgnat is the shared address space of carrier-grade NAT (RFC 6598),
// private in practice though not in netip's sense.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")
