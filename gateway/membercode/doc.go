// Package membercode makes and checks the member code a member shows at
// the till (三码合一: one scan at the POS tells a member code from a
// payment or coupon code by its prefix).
//
// A code is 18 digits, the payload of both a QR code and a Code 128
// barcode:
//
//	97 d nnnnnnnnn mmmmmm
//	│  │ │         └ 6-digit HMAC-SHA256 truncation (RFC 4226 dynamic
//	│  │ │           truncation) over the time step and member number
//	│  │ └ the member number, masked by a per-step pad: (id + pad) mod 10⁹
//	│  └ the time step's last digit (60 s steps since the Unix epoch)
//	└ Prefix: scrmgw member codes (WeChat Pay uses 10–15, Alipay 25–30,
//	  UnionPay 62)
//
// Both the pad and the MAC are keyed with the brand's secret, so a code
// names a member of one brand only, looks different every minute (a
// scanner sees no stable member number) and cannot be made without the
// secret. Check accepts the current and the previous step (a code shown
// just before the minute turns still scans); an older code of the same
// brand is ErrExpired, anything that does not verify is ErrUnknown
// (another brand's code, a tampered or made-up one: the caller cannot
// tell them apart, so nothing leaks). Checking reads the brand's secrets
// and writes nothing.
//
// A link (link.go) opens the member's code page for LinkTTL: its token
// names the brand and member and carries an HMAC under the brand's
// secret. BarcodeSVG draws a code as a Code 128 barcode.
package membercode
