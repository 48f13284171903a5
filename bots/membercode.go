package bots

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// IntentMemberCode asks for the member's code to show at the till.
const IntentMemberCode = "member_code"

// Template ids of the member code answer: the code as text, then, when
// the gateway can link it, a link card to the code page.
const (
	TemplateMemberCode     = "bot_member_code"
	TemplateMemberCodeLink = "bot_member_code_link"
)

// MemberCoder makes a member's code for the till (gateway/membercode's
// Codes is one): a short code that rotates every minute, keyed per brand.
type MemberCoder interface {
	MemberCode(ctx context.Context, memberID int64, brand string) (code string, validUntil time.Time, err error)
}

// MemberCodeLinker links a member's code page (a QR code and a barcode
// the till scans); a MemberCoder that is one gets its link card sent
// after the code. An empty pageURL sends none.
type MemberCodeLinker interface {
	MemberCodeLink(ctx context.Context, memberID int64, brand string) (pageURL, pictureURL string, err error)
}

// memberCode answers "member code": the sender's current code with the
// message's brand, if they are a member of it, as text (read out or
// keyed in at the till), then a link card to the code page with its QR
// code and barcode when the codes can be linked (http.public_url).
func (d Deps) memberCode(ctx context.Context, m *Message, member *store.MemberView, data *templates.Data) ([]Reply, error) {
	if member == nil {
		v, err := d.memberOf(ctx, m)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		member = v
	}
	if member == nil || m.Brand == "" {
		return d.render(TemplateMemberCode, m, data, nil)
	}
	for _, ms := range member.Memberships {
		if ms.BrandID != m.Brand {
			continue
		}
		code, until, err := d.MemberCodes.MemberCode(ctx, member.ID, m.Brand)
		if err != nil {
			return nil, fmt.Errorf("making the member code: %w", err)
		}
		data.Member = templates.Member{Name: member.NameFor(m.Brand), Level: ms.Level, Points: ms.Points}
		data.MemberCode = templates.MemberCode{Code: code, ValidUntil: until}
		data.TimeZone = d.memberZone(ctx, member, m.Brand)
		if l, ok := d.MemberCodes.(MemberCodeLinker); ok {
			if data.MemberCode.URL, data.MemberCode.PictureURL, err = l.MemberCodeLink(ctx, member.ID, m.Brand); err != nil {
				return nil, fmt.Errorf("linking the member code: %w", err)
			}
		}
	}
	replies, err := d.render(TemplateMemberCode, m, data, nil)
	if err != nil || data.MemberCode.URL == "" {
		return replies, err
	}
	link, err := d.render(TemplateMemberCodeLink, m, data, nil)
	if err != nil {
		return nil, err
	}
	return append(replies, link...), nil
}

// memberZone is the zone the member reads times in: their own, else
// that of their guide's store for the brand, else Asia/Shanghai.
func (d Deps) memberZone(ctx context.Context, v *store.MemberView, brand string) string {
	if v.TimeZone != "" {
		return v.TimeZone
	}
	for _, b := range v.Bindings {
		if b.BrandID != brand || b.EndedAt != nil {
			continue
		}
		if rs, err := d.Directory.RetailStore(ctx, b.StoreID, ""); err == nil && rs.TimeZone != "" {
			return rs.TimeZone
		}
	}
	return zoneOf("").String()
}
