package membercode

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/store"
)

// LinkPath is where the member code page is served: LinkPath + token
// (the page), + "/qr.png" and + "/barcode.svg" (the images).
const LinkPath = "/m/code/"

// CardPicturePath is a picture for the link card that carries a member
// code link (WeCom wants one for a link message); the gateway serves it.
const CardPicturePath = "/m/code-card.png"

// LinkTTL is how long a member code link opens the page. The page shows
// the code of the minute it is opened (and refreshes itself), so a link
// outlives many codes; it names the member, so it is short-lived.
const LinkTTL = 10 * time.Minute

// ErrLinkExpired and ErrLinkInvalid are the errors of a link that does
// not open the page.
var (
	ErrLinkExpired = errors.New("member code link expired")
	ErrLinkInvalid = errors.New("member code link invalid")
)

// linkMACBytes is the length of a link's MAC.
const linkMACBytes = 16

// Link returns the token of a link to the member's code page for brand,
// valid for LinkTTL: "<brand>.<member>.<expiry>.<mac>", the MAC keyed with
// the brand's member code secret (a rotation ends every link).
func (c *Codes) Link(ctx context.Context, memberID int64, brand string) (string, error) {
	secrets, err := c.secrets.EnsureMemberCodeSecret(ctx, brand, c.now())
	if err != nil {
		return "", fmt.Errorf("reading the member code secret of %s: %w", brand, err)
	}
	payload := fmt.Sprintf("%s.%d.%d", brand, memberID, c.now().Add(LinkTTL).Unix())
	return payload + "." + linkMAC(secrets[0], payload), nil
}

// LinkedCode opens a link's token: the member's current code, when it
// stops scanning, and the brand. It writes nothing.
func (c *Codes) LinkedCode(ctx context.Context, token string) (code string, validUntil time.Time, brand string, err error) {
	// Brand ids may hold dots: the last three parts are the member, the
	// expiry and the MAC.
	parts := strings.Split(token, ".")
	n := len(parts)
	if n < 4 {
		return "", time.Time{}, "", ErrLinkInvalid
	}
	parts = []string{strings.Join(parts[:n-3], "."), parts[n-3], parts[n-2], parts[n-1]}
	brand = parts[0]
	if brand == "" || len(brand) > 64 {
		return "", time.Time{}, "", ErrLinkInvalid
	}
	id, err1 := strconv.ParseInt(parts[1], 10, 64)
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || id < 1 {
		return "", time.Time{}, "", ErrLinkInvalid
	}
	now := c.now()
	secrets, err := c.secrets.MemberCodeSecrets(ctx, brand, now)
	if errors.Is(err, store.ErrNotFound) {
		return "", time.Time{}, "", ErrLinkInvalid
	}
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("reading the member code secrets of %s: %w", brand, err)
	}
	payload := strings.Join(parts[:3], ".")
	ok := false
	for _, s := range secrets {
		if hmac.Equal([]byte(linkMAC(s, payload)), []byte(parts[3])) {
			ok = true
		}
	}
	switch {
	case !ok:
		return "", time.Time{}, "", ErrLinkInvalid
	case !now.Before(time.Unix(exp, 0)):
		return "", time.Time{}, "", ErrLinkExpired
	}
	code, err = Make(secrets[0], id, now)
	if err != nil {
		return "", time.Time{}, "", err
	}
	return code, ValidUntil(now), brand, nil
}

// MemberCodeLink returns a link to the member's code page and a picture
// for a card carrying it, under PublicURL; both "" without one.
func (c *Codes) MemberCodeLink(ctx context.Context, memberID int64, brand string) (pageURL, pictureURL string, err error) {
	if c.PublicURL == "" {
		return "", "", nil
	}
	tok, err := c.Link(ctx, memberID, brand)
	if err != nil {
		return "", "", err
	}
	base := strings.TrimSuffix(c.PublicURL, "/")
	return base + LinkPath + tok, base + CardPicturePath, nil
}

func linkMAC(secret []byte, payload string) string {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("link:" + payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:linkMACBytes])
}
