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

// TemplateMemberCode answers "member code".
const TemplateMemberCode = "bot_member_code"

// MemberCoder makes a member's code for the till (gateway/membercode's
// Codes is one): a short code that rotates every minute, keyed per brand.
type MemberCoder interface {
	MemberCode(ctx context.Context, memberID int64, brand string) (code string, validUntil time.Time, err error)
}

// memberCode answers "member code": the sender's current code with the
// message's brand, if they are a member of it. The answer is text on
// every channel (no image: the code is typed or read out at the till, or
// shown for the cashier to key in).
func (d Deps) memberCode(ctx context.Context, m *Message, member *store.MemberView, data *templates.Data) ([]Reply, error) {
	if member == nil {
		v, err := d.Directory.MemberByIdentity(ctx, m.Channel, m.SenderID)
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
		data.Member = templates.Member{Name: member.Name, Level: ms.Level, Points: ms.Points}
		data.MemberCode = templates.MemberCode{Code: code, ValidUntil: until}
		data.TimeZone = d.memberZone(ctx, member)
	}
	return d.render(TemplateMemberCode, m, data, nil)
}

// memberZone is the zone the member reads times in: their own, else
// their bound store's, else Asia/Shanghai.
func (d Deps) memberZone(ctx context.Context, v *store.MemberView) string {
	if v.TimeZone != "" {
		return v.TimeZone
	}
	for _, b := range v.Bindings {
		if rs, err := d.Directory.RetailStore(ctx, b.StoreID, ""); err == nil && rs.TimeZone != "" {
			return rs.TimeZone
		}
	}
	return zoneOf("").String()
}
