package store

import (
	"context"
	"time"
)

// TouchIdentity records that the member with id externalID on channel
// wrote or did something there at at: their identity's LastInboundAt
// moves forward to at (never back, so a late redelivery changes
// nothing). An id no member has yet is no error: nothing is recorded.
func (s *Store) TouchIdentity(ctx context.Context, channel, externalID string, at time.Time) error {
	_, err := s.TouchIdentityMoved(ctx, channel, externalID, at)
	return err
}

// TouchIdentityMoved is TouchIdentity that reports whether it moved the
// identity's LastInboundAt (false: no member has the id, or it was at at
// or later already).
func (s *Store) TouchIdentityMoved(ctx context.Context, channel, externalID string, at time.Time) (moved bool, err error) {
	if channel == "" || externalID == "" || at.IsZero() {
		return false, nil
	}
	at = at.UTC()
	res := s.single(ctx).Model(&MemberIdentity{}).
		Where("channel = ? AND external_id = ? AND (last_inbound_at IS NULL OR last_inbound_at < ?)", channel, externalID, at).
		Update("last_inbound_at", at)
	return res.RowsAffected > 0, translate(res.Error)
}

// LastInbound is when the member last wrote on channel (TouchIdentity),
// or the zero time.
func (p *MemberProfile) LastInbound(channel string) time.Time {
	for _, id := range p.Identities {
		if id.Channel == channel && id.LastInboundAt != nil {
			return *id.LastInboundAt
		}
	}
	return time.Time{}
}
