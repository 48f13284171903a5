package inbox

import (
	"context"
	"errors"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
)

// attribute sets the brand of a member's message that came on a channel
// account serving no single brand (in.Brand ""; a DingTalk app or a
// webhook channel without a brand) when the sender tells it, and returns
// the sender's member (nil when not a member). The brand is, in order:
// the brand the sender's identity on the channel was collected under
// (when the person is still its member), else the person's only brand.
// A person of several brands writing through an identity collected with
// no brand stays unattributed (brand ""): docs/security.md says how
// export, erasure and workflows treat such messages.
func (m *Messages) attribute(ctx context.Context, in *adapters.Inbound) (*store.MemberView, error) {
	if in.From != adapters.PartyMember || in.SenderID == "" {
		return nil, nil
	}
	v, err := m.store.MemberByIdentity(ctx, in.Channel, in.SenderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if in.Brand == "" {
		in.Brand = brandOf(v, in.Channel, in.SenderID)
	}
	return v, nil
}

// brandOf is the brand a member's message through one of their
// identities belongs to, or "" when it cannot be told.
func brandOf(v *store.MemberView, channel, externalID string) string {
	member := func(brand string) bool {
		for _, ms := range v.Memberships {
			if ms.BrandID == brand {
				return true
			}
		}
		return false
	}
	for _, id := range v.Identities {
		if id.Channel == channel && id.ExternalID == externalID && id.BrandID != "" && member(id.BrandID) {
			return id.BrandID
		}
	}
	if len(v.Memberships) == 1 {
		return v.Memberships[0].BrandID
	}
	return ""
}
